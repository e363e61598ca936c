#!/usr/bin/env bash
# zstor over emulated wide-area links (issue 14): 4 metadata zdbs and 6 data zdbs (4+2), each a
# real `zdb` process on 127.0.0.1 behind its own link of the `wan-rig` binary (one-way delay,
# bandwidth cap per direction, optional loss). Reports each figure with the link limit for
# file data: k data links x rate (4 x 12.5 MB/s = 47.7 MiB/s on the default profile).
#
# Then qsfs on the same links: QSFS_SIZE written through the mount (segments of 16 MiB), the
# time until `qsfs rotate` says everything is offloaded, and the first byte of a small file
# read after the cache was evicted.
#
# Usage:  scripts/bench/wan.sh                       # full profile: 50 ms round trip, 100 Mbit/s
#         SIZE=16M FILES=20 QSFS_SIZE=64M scripts/bench/wan.sh     # quick
#
# Environment (all optional):
#   PROFILE     every link's profile (default delay=25ms,rate=100mbit)
#   SIZE        the large file (default 128M); FILES small files of SMALL (default 200 x 16K)
#   QSFS_SIZE   written through qsfs (default 256M); QSFS=0 skips the qsfs rows
#   ZSTOR_V2    path of ThreeFold's `zstor_v2` binary: run the same rows with it, same rig
#   WORK        scratch folder on a disk (default mktemp under /var/tmp); KEEP=1 keeps it
#   SKIP_BUILD=1  use the existing target/release/{zdb,zstor,wan-rig}
# Every process started here is stopped on exit; every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
. "$ROOT/scripts/lib/procs.sh"
PROFILE=${PROFILE:-delay=25ms,rate=100mbit}
SIZE=${SIZE:-128M}
FILES=${FILES:-200}
SMALL=${SMALL:-16K}
HOST=127.0.0.1
LOG_TAG=wan-bench
. "$ROOT/scripts/lib/common.sh"

command -v redis-cli >/dev/null 2>&1 || install_packages redis-tools || die "redis-cli missing"
ZDB=$TARGET_DIR/release/zdb
ZSTOR=$TARGET_DIR/release/zstor
RIG=$TARGET_DIR/release/wan-rig
QSFS_BIN=$TARGET_DIR/release/qsfs
build_release -p zdb-server -p zstor -p qsfs -p wan-rig
[[ -x $ZDB && -x $ZSTOR && -x $RIG ]] || die "binaries missing under $TARGET_DIR/release"

WORK=${WORK:-$(mktemp -d /var/tmp/wan-bench.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_process "$p" TERM 50; done
    # A qsfs killed mid-run leaves its dead mount behind.
    umount -l "$WORK/mnt" 2>/dev/null || true
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$ROOT/scripts/lib/zdbs.sh"

# ---------------------------------------------------------------- backends behind links
log "starting 4 metadata zdbs (user) and 6 data zdbs (seq) under $WORK"
UP=() LINKS=() FRONT=()
for i in 1 2 3 4; do start_zdb meta$i user meta; UP+=("$ADDR"); done
for i in 1 2 3 4 5 6; do start_zdb data$i seq data; UP+=("$ADDR"); done
for a in "${UP[@]}"; do
    free_port
    LINKS+=(--link "$HOST:$PORT=$a")
    FRONT+=("$HOST:$PORT")
done
CTL=$WORK/rig.sock
setsid "$RIG" serve "${LINKS[@]}" --profile "$PROFILE" --control "$CTL" </dev/null >"$WORK/rig.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 300; i++)); do # ≤ 30 s
    "$RIG" ctl "$CTL" show >/dev/null 2>&1 && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "wan-rig exited (see $WORK/rig.log)"
    sleep 0.1
done
"$RIG" ctl "$CTL" show >/dev/null || die "wan-rig does not answer on $CTL"
log "links: $("$RIG" ctl "$CTL" show | cut -c1-160)..."

CFG=$WORK/zstor_config.toml
zstor_config "$CFG" "${FRONT[@]:0:4}" -- "${FRONT[@]:4}"
"$ZSTOR" -c "$CFG" test >"$WORK/test.out" 2>&1 || { cat "$WORK/test.out" >&2; die "zstor test failed"; }

# ---------------------------------------------------------------- inputs
mkdir -p "$WORK/files/small" "$WORK/out"
head -c "$SIZE" /dev/urandom >"$WORK/files/large.bin"
BYTES=$(stat -c %s "$WORK/files/large.bin")
for ((i = 0; i < FILES; i++)); do head -c "$SMALL" /dev/urandom >"$WORK/files/small/f$i"; done
RATE_BPS=$(awk -v p="$PROFILE" 'BEGIN{
    n=split(p, a, ","); r=0
    for (i=1;i<=n;i++) if (a[i] ~ /^rate=/) {
        v=substr(a[i],6); u=v; gsub(/[0-9.]/,"",v); gsub(/[^0-9.]/,"",u)
        m["bit"]=1/8; m["kbit"]=1e3/8; m["mbit"]=1e6/8; m["gbit"]=1e9/8
        m["b"]=1; m["kb"]=1e3; m["mb"]=1e6; m["gb"]=1e9
        r=u*m[tolower(v)] }
    print r }')
LIMIT=$(awk -v r="$RATE_BPS" 'BEGIN{ printf "%.1f", 4*r/1048576 }')
log "profile $PROFILE: link limit for file data $LIMIT MiB/s (4 data links x rate)"

# timed CMD... -> SECS
timed() {
    local t0 t1
    t0=$(date +%s.%N)
    timeout 1800 "$@" >"$WORK/cmd.out" 2>&1 || { cat "$WORK/cmd.out" >&2; die "failed: $*"; }
    t1=$(date +%s.%N)
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{ printf "%.2f", b-a }')
}
mibs() { awk -v b="$BYTES" -v s="$1" 'BEGIN{ printf "%.1f", b/1048576/s }'; }
of_limit() { awk -v b="$BYTES" -v s="$1" -v l="$LIMIT" 'BEGIN{ if (l>0) printf "%.0f%%", 100*b/1048576/s/l; else print "-" }'; }

ROWS=()
run_rows() { # LABEL BINARY
    local label=$1 bin=$2
    mkdir -p "$WORK/files/$label/small" # zstor_v2 writes a temporary file beside the key path
    timed "$bin" -c "$CFG" store -f "$WORK/files/large.bin" -k "$WORK/files/$label"
    ROWS+=("| $label | store $SIZE | ${SECS} s | $(mibs "$SECS") MiB/s | $(of_limit "$SECS") |")
    log "$label store: ${SECS}s"
    # To the key path (zstor_v2's retrieve has no -o); nothing is there before.
    timed "$bin" -c "$CFG" retrieve -f "$WORK/files/$label/large.bin"
    cmp -s "$WORK/files/large.bin" "$WORK/files/$label/large.bin" || die "$label: retrieved bytes differ"
    ROWS+=("| $label | retrieve $SIZE | ${SECS} s | $(mibs "$SECS") MiB/s | $(of_limit "$SECS") |")
    log "$label retrieve: ${SECS}s"
    timed "$bin" -c "$CFG" store -f "$WORK/files/small" -k "$WORK/files/$label/small"
    ROWS+=("| $label | store folder of $FILES x $SMALL | ${SECS} s | - | - |")
    log "$label folder store: ${SECS}s"
}
run_rows ours "$ZSTOR"

# One data backend slow (10x the delay, 1/10 of the rate): retrieve should not wait for it.
slow_rows() { # LABEL BINARY
    local label=$1 bin=$2 slow
    slow=$(awk -v p="$PROFILE" 'BEGIN{
        n=split(p, a, ","); out=""
        for (i=1;i<=n;i++) {
            split(a[i], kv, "="); v=kv[2]; u=v; gsub(/[0-9.]/,"",u); gsub(/[^0-9.]/,"",v)
            if (kv[1]=="delay") a[i]="delay=" v*10 u
            else if (kv[1]=="rate") a[i]="rate=" v/10 u
            out = out (out=="" ? "" : ",") a[i] }
        print out }')
    "$RIG" ctl "$CTL" profile 4 "$slow" >/dev/null || die "cannot slow link 4"
    rm -f "$WORK/files/$label/large.bin"
    timed "$bin" -c "$CFG" retrieve -f "$WORK/files/$label/large.bin"
    cmp -s "$WORK/files/large.bin" "$WORK/files/$label/large.bin" || die "$label: retrieved bytes differ"
    ROWS+=("| $label | retrieve $SIZE, data backend 1 slow ($slow) | ${SECS} s | $(mibs "$SECS") MiB/s | $(of_limit "$SECS") |")
    log "$label retrieve with a slow backend: ${SECS}s"
    cp "$WORK/files/large.bin" "$WORK/files/large2.bin"
    timed "$bin" -c "$CFG" store -f "$WORK/files/large2.bin" -k "$WORK/files/$label"
    ROWS+=("| $label | store $SIZE, data backend 1 slow | ${SECS} s | $(mibs "$SECS") MiB/s | $(of_limit "$SECS") |")
    log "$label store with a slow backend: ${SECS}s"
    "$RIG" ctl "$CTL" profile 4 "$PROFILE" >/dev/null || die "cannot restore link 4"
}
slow_rows ours "$ZSTOR"
if [[ -n ${ZSTOR_V2:-} ]]; then
    [[ -x $ZSTOR_V2 ]] || die "ZSTOR_V2=$ZSTOR_V2 is not executable"
    run_rows 0-stor-v2 "$ZSTOR_V2"
    slow_rows 0-stor-v2 "$ZSTOR_V2"
fi

# ---------------------------------------------------------------- qsfs on the same links
QPID=
start_qsfs() { # CFG MNT: start qsfs and wait (bounded) for its mount
    local i
    setsid "$QSFS_BIN" -c "$1" </dev/null >>"$WORK/qsfs.log" 2>&1 &
    QPID=$!
    PIDS+=($QPID)
    for ((i = 0; i < 600; i++)); do # ≤ 60 s
        mountpoint -q "$2" && return 0
        kill -0 $QPID 2>/dev/null || { tail -20 "$WORK/qsfs.log" >&2; die "qsfs exited"; }
        sleep 0.1
    done
    die "qsfs did not mount (see $WORK/qsfs.log)"
}
# A cold start with every stored data segment evicted (zdbfs's metadata too with a third
# argument, --metadata): no segment stays mapped by the engine.
cold_qsfs() { # CFG MNT [--metadata]
    stop_process "$QPID" INT 600
    start_qsfs "$1" "$2"
    "$QSFS_BIN" -c "$1" evict ${3:-} >"$WORK/cmd.out" 2>&1 || { cat "$WORK/cmd.out" >&2; die "qsfs evict failed"; }
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" -v f="$2" 'BEGIN{ printf f, b-a }'; }
qsfs_rows() {
    local mnt=$WORK/mnt cfg=$WORK/qsfs.toml t0
    mkdir -p "$mnt" "$WORK/qcache"
    # zstor's keys (the same backends, behind the links) plus [qsfs].
    cp "$CFG" "$cfg"
    cat >>"$cfg" <<EOT

[qsfs]
mountpoint = "$mnt"
cache_dir = "$WORK/qcache"
segment_size_mib = 16
rotate_seconds = 3600
compact_seconds = 0
EOT
    start_qsfs "$cfg" "$mnt"
    head -c "$QSFS_SIZE" /dev/urandom >"$WORK/files/qsfs.bin"
    echo "first byte" >"$mnt/small.txt"
    BYTES=$(stat -c %s "$WORK/files/qsfs.bin")
    t0=$(date +%s.%N)
    dd if="$WORK/files/qsfs.bin" of="$mnt/big.bin" bs=1M conv=fsync status=none
    log "qsfs: $QSFS_SIZE written and fsync'ed in $(since "$t0" %.2f) s; rotating"
    timeout 1800 "$QSFS_BIN" -c "$cfg" rotate >"$WORK/cmd.out" 2>&1 || { cat "$WORK/cmd.out" >&2; die "qsfs rotate failed"; }
    SECS=$(since "$t0" %.2f)
    ROWS+=("| qsfs | write $QSFS_SIZE, fsync, rotate until offloaded | ${SECS} s | $(mibs "$SECS") MiB/s | $(of_limit "$SECS") |")
    log "qsfs offload: ${SECS}s"

    cold_qsfs "$cfg" "$mnt"
    t0=$(date +%s.%N)
    head -c 1 "$mnt/small.txt" >/dev/null || die "qsfs: cold read failed"
    SECS=$(since "$t0" %.3f)
    ROWS+=("| qsfs | first byte of a small file, cold start, data evicted | ${SECS} s | - | - |")
    log "qsfs first byte: ${SECS}s"
    cold_qsfs "$cfg" "$mnt" --metadata
    t0=$(date +%s.%N)
    head -c 1 "$mnt/small.txt" >/dev/null || die "qsfs: cold read failed"
    SECS=$(since "$t0" %.3f)
    ROWS+=("| qsfs | first byte of a small file, cold start, data and metadata evicted | ${SECS} s | - | - |")
    log "qsfs first byte (metadata evicted too): ${SECS}s"
    cold_qsfs "$cfg" "$mnt"
    t0=$(date +%s.%N)
    cmp -s "$WORK/files/qsfs.bin" "$mnt/big.bin" || die "qsfs: bytes read back differ"
    SECS=$(since "$t0" %.2f)
    ROWS+=("| qsfs | read $QSFS_SIZE back, evicted | ${SECS} s | $(mibs "$SECS") MiB/s | $(of_limit "$SECS") |")
    log "qsfs cold read: ${SECS}s"

    # Every link silent (packets held, no reset) with the data evicted: the read must fail
    # within seconds; `ls` answers from the local metadata.
    cold_qsfs "$cfg" "$mnt"
    "$RIG" ctl "$CTL" partition all >/dev/null || die "cannot partition"
    t0=$(date +%s.%N)
    ls -l "$mnt" >/dev/null || die "qsfs: ls failed during the partition"
    SECS=$(since "$t0" %.3f)
    ROWS+=("| qsfs | ls during a partition of every link | ${SECS} s | - | - |")
    t0=$(date +%s.%N)
    if timeout 300 cat "$mnt/big.bin" >/dev/null 2>"$WORK/cat.err"; then
        die "qsfs: read of evicted data succeeded during the partition"
    fi
    SECS=$(since "$t0" %.2f)
    ROWS+=("| qsfs | read of evicted data during the partition fails after | ${SECS} s | $(sed 's/.*: //' "$WORK/cat.err" | head -c 40) | - |")
    log "qsfs partition: error after ${SECS}s"
    "$RIG" ctl "$CTL" heal all >/dev/null || die "cannot heal"
    loss_rows "$cfg" "$mnt"
}
exposed_bytes() { # CFG: bytes qsfs has not dispersed yet
    "$QSFS_BIN" -c "$1" status --json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["offload"]["exposure"]["bytes"])' 2>/dev/null ||
        echo unknown
}
# The loss window: a small write fsync'ed, how long until the backends hold it; then the
# frontend lost 15 s after such a write (kill -9, cache deleted) and restored elsewhere.
loss_rows() { # CFG MNT (qsfs running, links healed)
    local i t0
    head -c 300000 /dev/urandom >"$WORK/files/late.bin"
    t0=$(date +%s.%N)
    dd if="$WORK/files/late.bin" of="$2/late.bin" bs=64k conv=fsync status=none
    for ((i = 0; i < 600; i++)); do # ≤ 60 s
        [[ $(exposed_bytes "$1") == 0 ]] && break
        sleep 0.1
    done
    SECS=$(since "$t0" %.2f)
    ROWS+=("| qsfs | 300 KB written and fsync'ed: on the backends after | ${SECS} s | - | - |")
    log "qsfs dispersal of a small write: ${SECS}s"
    head -c 300000 /dev/urandom >"$WORK/files/lost.bin"
    dd if="$WORK/files/lost.bin" of="$2/lost.bin" bs=64k conv=fsync status=none
    sleep 15 # the issue's method: the machine dies 15 s after the fsync
    kill -9 "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
    umount -l "$2" 2>/dev/null || true
    rm -rf "$WORK/qcache"
    setsid "$QSFS_BIN" restore -c "$1" </dev/null >>"$WORK/qsfs.log" 2>&1 &
    QPID=$!
    PIDS+=($QPID)
    for ((i = 0; i < 1200; i++)); do # ≤ 120 s
        mountpoint -q "$2" && break
        sleep 0.1
    done
    local kept=lost
    cmp -s "$WORK/files/lost.bin" "$2/lost.bin" && cmp -s "$WORK/files/late.bin" "$2/late.bin" && kept=restored
    ROWS+=("| qsfs | frontend lost 15 s after an fsync'ed write, then \`qsfs restore\` | - | $kept | - |")
    log "qsfs frontend loss: $kept"
    stop_process "$QPID" INT 600
}
QSFS_SIZE=${QSFS_SIZE:-256M}
if [[ ${QSFS:-1} != 0 && -x $QSFS_BIN ]]; then qsfs_rows; fi

echo
echo "profile: $PROFILE per link, 10 links (4 meta + 6 data, 4+2); link limit for file data $LIMIT MiB/s"
echo "| program | work | time | rate | of link limit |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
