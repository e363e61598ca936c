#!/usr/bin/env bash
# Uploads to the web drive of qsfs on its embedded default: N files of SIZE bytes (1,000 x
# 64 KiB) through the page's two upload paths (scripts/bench/web-upload.py: plain PUT and
# tus POST+PATCH with a SHA-1 checksum, three at a time as the page runs them), beside
# `cp -r` of the same files onto the mount and onto the local disk, in the same run.
# Files per second; ROUNDS rounds, alternating the methods.
#
# Usage (root: FUSE mount):  scripts/bench/web-upload.sh      # N=1000 SIZE=65536 ROUNDS=3
# Environment: N, SIZE, ROUNDS, BASE (scratch, default /var/tmp), SKIP_BUILD=1, OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${N:-1000}
SIZE=${SIZE:-65536}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-/var/tmp}
LOG_TAG=web-bench
. "$ROOT/scripts/lib/common.sh"
need_root "FUSE mount"
command -v python3 >/dev/null || die "python3 needed"

QSFS=$TARGET_DIR/release/qsfs
build_release -p qsfs
WORK=$(mktemp -d "$BASE/qsfs-web-bench.XXXXXX")
OUT=${OUT:-$WORK/logs}
mkdir -p "$OUT" "$WORK/src" "$WORK/local"
. "$ROOT/scripts/lib/qsfs.sh"
cleanup() {
    stop_qsfs
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK/qsfs-data" "$WORK/local" "$WORK/src" "$WORK/mnt"
}
trap cleanup EXIT

python3 - "$WORK/src" "$N" "$SIZE" <<'PY'
import sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    open(f"{d}/f{i:05}.bin", "wb").write((i.to_bytes(4, "big") * (size // 4 + 1))[:size])
PY

start_qsfs "web UI at"
URL=$(sed -nE 's/.*web UI at (http[^ ]+)\/ .*/\1/p' "$OUT/qsfs.log" | head -1)
[[ -n $URL ]] || die "no web UI address in $OUT/qsfs.log"

now() { date +%s.%N; }
cp_rate() { # TARGET_DIR -> files/s
    local t0 t1
    t0=$(now)
    cp -r "$WORK/src" "$1"
    sync -f "$1"
    t1=$(now)
    awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }'
}
log "$N files of $SIZE bytes, $ROUNDS rounds (files per second)"
printf "| round | cp onto the mount | cp onto the local disk | PUT | tus | PUT / cp mount | tus / cp mount |\n| --- | --- | --- | --- | --- | --- | --- |\n" | tee "$OUT/report.md"
for r in $(seq 1 "$ROUNDS"); do
    mount_rate=$(cp_rate "$WORK/mnt/home/bench/cp$r")
    local_rate=$(cp_rate "$WORK/local/cp$r")
    put=$(python3 "$ROOT/scripts/bench/web-upload.py" "$URL" bench "bench password" put "/put$r" "$N" "$SIZE")
    tus=$(python3 "$ROOT/scripts/bench/web-upload.py" "$URL" bench "bench password" tus "/tus$r" "$N" "$SIZE")
    awk -v r="$r" -v m="$mount_rate" -v l="$local_rate" -v p="$put" -v t="$tus" \
        'BEGIN { printf "| %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |\n", r, m, l, p, t, p / m, t / m }' | tee -a "$OUT/report.md"
done
for m in put tus; do
    n=$(find "$WORK/mnt/home/bench/${m}1" -type f | wc -l)
    ((n == N)) || die "$m: $n of $N files on the mount"
    cmp -s "$WORK/src/f00007.bin" "$WORK/mnt/home/bench/${m}1/f00007.bin" || die "$m: f00007.bin differs"
done
log "report: $OUT/report.md"
