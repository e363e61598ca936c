#!/usr/bin/env bash
# Whole-system benchmark of the `zstor` CLI (issue 4): store and retrieve of a random file and a
# text file on 6 local data zdbs (4+2, snappy, AES) plus 4 metadata zdbs, every zdb a separate
# real `target/release/zdb` process on 127.0.0.1 with its data on the local disk.
# Reports wall seconds, MiB/s (1 MiB = 2^20 bytes) and peak RSS from /usr/bin/time -v.
#
# Usage:  scripts/bench/zstor.sh                # full run: two 1 GiB files
#         SIZE=64M scripts/bench/zstor.sh       # quick smoke test
#
# Environment (all optional):
#   SIZE        file size, as understood by `head -c` (default 1G)
#   FILES       which files, in order (default "random text")
#   WORK        scratch directory on the local disk (default: mktemp -d under /var/tmp;
#               must not be tmpfs). Removed on exit unless KEEP=1.
#   SKIP_BUILD=1  use the existing target/release/{zdb,zstor}
#   NO_DROP=1   do not drop the page cache before each run (drop needs root)
# Every wait loop is bounded; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
SIZE=${SIZE:-1G}
FILES=${FILES:-"random text"}
HOST=127.0.0.1
LOG_TAG=zstor-bench
. "$ROOT/scripts/lib/common.sh"

# ---------------------------------------------------------------- tools
need_apt=()
[[ -x /usr/bin/time ]] || need_apt+=(time)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
install_packages ${need_apt[@]+"${need_apt[@]}"} || die "packages missing"

ZDB=$TARGET_DIR/release/zdb
ZSTOR=$TARGET_DIR/release/zstor
build_release -p zdb-server -p zstor
[[ -x $ZDB && -x $ZSTOR ]] || die "$ZDB or $ZSTOR not found"

# ---------------------------------------------------------------- scratch + cleanup
WORK=${WORK:-$(mktemp -d /var/tmp/zstor-bench.XXXXXX)}
mkdir -p "$WORK"
fstype=$(stat -f -c %T "$WORK")
[[ $fstype != tmpfs && $fstype != ramfs ]] || die "$WORK is on $fstype; use a disk-backed WORK"
PIDS=()
cleanup() {
    local p i
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for ((i = 0; i < 500; i++)); do # ≤ 5 s each, then SIGKILL
            kill -0 "$p" 2>/dev/null || break
            sleep 0.01
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/scripts/lib/zdbs.sh"

log "starting 4 metadata zdbs (user) and 6 data zdbs (seq) under $WORK"
META=() DATA=()
for i in 1 2 3 4; do start_zdb meta$i user meta; META+=("$ADDR"); done
for i in 1 2 3 4 5 6; do start_zdb data$i seq data; DATA+=("$ADDR"); done
log "zdb pids: ${PIDS[*]}"

CFG=$WORK/zstor_config.toml
zstor_config "$CFG" "${META[@]}" -- "${DATA[@]}"
"$ZSTOR" -c "$CFG" test >"$WORK/test.out" 2>&1 || { cat "$WORK/test.out" >&2; die "zstor test failed"; }

# ---------------------------------------------------------------- input files
mkdir -p "$WORK/files" "$WORK/out"
make_text() { # out: SIZE bytes of English-ish text (docs + man pages, repeated)
    local seed=$WORK/seed.txt i
    {
        find /usr/share/doc /usr/share/common-licenses -type f \( -name copyright -o -name '*.txt' \
            -o -name 'README*' -o -name 'changelog*' -o -name 'NEWS*' \) 2>/dev/null | head -3000 |
            while read -r f; do
                case $f in *.gz) gzip -dc "$f" 2>/dev/null || true ;; *) cat "$f" 2>/dev/null || true ;; esac
            done
        find /usr/share/man -type f -name '*.gz' 2>/dev/null | head -3000 |
            while read -r f; do gzip -dc "$f" 2>/dev/null || true; done
    } | head -c 256M >"$seed" || true
    [[ -s $seed ]] || yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c 64M >"$seed"
    log "text seed: $(stat -c %s "$seed") bytes of docs/man text, repeated to $SIZE"
    for ((i = 0; i < 100000; i++)); do cat "$seed" || break; done 2>/dev/null | head -c "$SIZE" >"$1" || true
    rm -f "$seed"
}
declare -A SRC
for f in $FILES; do
    SRC[$f]=$WORK/files/$f.bin
    log "generating $f file ($SIZE)"
    case $f in
    random) head -c "$SIZE" /dev/urandom >"${SRC[$f]}" ;;
    text) make_text "${SRC[$f]}" ;;
    *) die "unknown file kind $f" ;;
    esac
done
BYTES=$(stat -c %s "${SRC[${FILES%% *}]}")
log "file size: $BYTES bytes; snappy ratio of text seen in backend usage below"

# ---------------------------------------------------------------- runs
drop_caches() {
    sync
    if [[ ${NO_DROP:-0} != 1 ]]; then
        echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || log "cannot drop caches (not root?)"
    fi
}
# timed NAME CMD... -> sets SECS and RSS_MIB from /usr/bin/time -v
timed() {
    local name=$1
    shift
    drop_caches
    /usr/bin/time -v -o "$WORK/$name.time" timeout 1800 "$@" >"$WORK/$name.out" 2>&1 || {
        cat "$WORK/$name.out" "$WORK/$name.time" >&2
        die "$name failed"
    }
    SECS=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/$name.time")
    RSS_MIB=$(awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$WORK/$name.time")
    CPU=$(awk -F': ' '/Percent of CPU/{print $2}' "$WORK/$name.time")
}
rate() { awk -v b="$BYTES" -v s="$1" 'BEGIN{ if (s>0) printf "%.1f", b/1048576/s; else print "inf" }'; }

ROWS=()
for f in $FILES; do
    timed "store-$f" "$ZSTOR" -c "$CFG" store -f "${SRC[$f]}"
    ROWS+=("| $f | store | $SECS | $(rate "$SECS") | $RSS_MIB | $CPU |")
    log "store $f: ${SECS}s, peak RSS ${RSS_MIB} MiB"
done
USAGE=$(for i in 1 2 3 4 5 6; do printf '| data%s | %s |\n' $i "$(du -sm "$WORK/data$i/data" | cut -f1)"; done
    for i in 1 2 3 4; do printf '| meta%s | %s |\n' $i "$(du -sm "$WORK/meta$i/data" | cut -f1)"; done)
TOTAL_DATA=$(du -scm "$WORK"/data?/data | tail -1 | cut -f1)
for f in $FILES; do
    timed "retrieve-$f" "$ZSTOR" -c "$CFG" retrieve -f "${SRC[$f]}" -o "$WORK/out/$f.bin"
    cmp "${SRC[$f]}" "$WORK/out/$f.bin" || die "retrieved $f differs from the original"
    ROWS+=("| $f | retrieve | $SECS | $(rate "$SECS") | $RSS_MIB | $CPU |")
    log "retrieve $f: ${SECS}s, peak RSS ${RSS_MIB} MiB (cmp ok)"
    rm -f "$WORK/out/$f.bin"
done

# ---------------------------------------------------------------- report
echo
echo "zstor $SIZE per file ($BYTES bytes), 4+2, snappy + AES-256-GCM, 6 data + 4 meta zdbs on $HOST,"
echo "$(nproc) cores, page cache dropped before each run; MB/s = MiB/s (2^20 bytes/s) of the file size."
echo
echo "| file | op | seconds | MiB/s | peak RSS MiB | CPU |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
echo
echo "Backend disk usage after the stores (du -m of each zdb's data dir; total data ${TOTAL_DATA} MiB):"
echo
echo "| backend | MiB |"
echo "| --- | --- |"
echo "$USAGE"
