#!/usr/bin/env bash
# zstor over emulated wide-area links (issue 14): 4 metadata zdbs and 6 data zdbs (4+2), each a
# real `zdb` process on 127.0.0.1 behind its own link of the `wan-rig` binary (one-way delay,
# bandwidth cap per direction, optional loss). Reports each figure with the link limit for
# file data: k data links x rate (4 x 12.5 MB/s = 47.7 MiB/s on the default profile).
#
# Usage:  scripts/bench/wan.sh                       # full profile: 50 ms round trip, 100 Mbit/s
#         SIZE=16M FILES=20 scripts/bench/wan.sh     # quick
#
# Environment (all optional):
#   PROFILE     every link's profile (default delay=25ms,rate=100mbit)
#   SIZE        the large file (default 128M); FILES small files of SMALL (default 200 x 16K)
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
log() { echo "[wan-bench] $*" >&2; }
die() { echo "[wan-bench] error: $*" >&2; exit 1; }

command -v redis-cli >/dev/null 2>&1 || install_packages redis-tools || die "redis-cli missing"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ZDB=$TARGET_DIR/release/zdb
ZSTOR=$TARGET_DIR/release/zstor
RIG=$TARGET_DIR/release/wan-rig
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building zdb, zstor and wan-rig (release)"
    (cd "$ROOT" && cargo build --release -q -p zdb-server -p zstor -p wan-rig) || die "cargo build failed"
fi
[[ -x $ZDB && -x $ZSTOR && -x $RIG ]] || die "binaries missing under $TARGET_DIR/release"

WORK=${WORK:-$(mktemp -d /var/tmp/wan-bench.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_process "$p" TERM 50; done
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
if [[ -n ${ZSTOR_V2:-} ]]; then
    [[ -x $ZSTOR_V2 ]] || die "ZSTOR_V2=$ZSTOR_V2 is not executable"
    run_rows 0-stor-v2 "$ZSTOR_V2"
fi

echo
echo "profile: $PROFILE per link, 10 links (4 meta + 6 data, 4+2); link limit for file data $LIMIT MiB/s"
echo "| program | work | time | rate | of link limit |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
