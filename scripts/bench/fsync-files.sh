#!/usr/bin/env bash
# Small fsync'ed files on zdbfs (in-process engine) beside a local folder on the same disk,
# in the same round: the way S3 and WebDAV PUTs land an object (temporary name, write,
# fsync, close, rename, fsync of the folder), from 1 and from 4 threads, and without the
# fsyncs for scale. The latency columns are per fsync (two per file).
# This is the rate that bounds small-object PUTs over every protocol (issue 17).
#
# Usage (as root):  scripts/bench/fsync-files.sh          # FILES=2000 ROUNDS=3
# Environment: FILES (per run, default 2000), SIZE_KIB (64), ROUNDS (3), BASE (scratch on a
# real disk, default /var/tmp), ZDBFS_OPTS (extra -o), SKIP_BUILD=1, CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/procs.sh"
FILES=${FILES:-2000}
SIZE_KIB=${SIZE_KIB:-64}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-/var/tmp}
ZDBFS_OPTS=${ZDBFS_OPTS:-}

LOG_TAG=fsync-bench
. "$ROOT/scripts/lib/common.sh"
need_root "FUSE mounts"

ZDBFS=$TARGET_DIR/release/zdbfs
build_release -p zdbfs
[[ -x $ZDBFS ]] || die "$ZDBFS not found"

WORK=$(mktemp -d "$BASE/fsync-files.XXXXXX")
MNT=$WORK/mnt
mkdir -p "$MNT"
ZPID=
cleanup() {
    if [[ -n $ZPID ]]; then
        umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
        stop_process "$ZPID" 0 1200
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_on DIR THREADS [nosync]: one run of the writer in a fresh folder of DIR
run_on() {
    local dir=$1/run.$RANDOM
    mkdir "$dir"
    python3 "$ROOT/scripts/bench/fsync-files.py" "$dir" "$2" "$FILES" "$SIZE_KIB" ${3:-}
    rm -rf "$dir"
}

"$ZDBFS" "$MNT" --engine "$WORK/engine" ${ZDBFS_OPTS:+-o "$ZDBFS_OPTS"} </dev/null >>"$WORK/zdbfs.log" 2>&1 &
ZPID=$!
wait_fuse_mount "$ZPID" "$MNT" 600 || die "zdbfs did not mount (see $WORK/zdbfs.log)"
mkdir -p "$WORK/local"

echo "$FILES files of $SIZE_KIB KiB per run (create .tmp, write, fsync, close, rename, fsync the folder), ROUNDS=$ROUNDS"
echo
echo "| round | threads | local files/s | zdbfs files/s | zdbfs / local | zdbfs fsync median / p90 | zdbfs without fsync |"
echo "|---|---|---:|---:|---:|---|---:|"
for ((r = 1; r <= ROUNDS; r++)); do
    for t in 1 4; do
        loc=$(run_on "$WORK/local" "$t")
        fs=$(run_on "$MNT" "$t")
        nosync=$(run_on "$MNT" "$t" nosync)
        rate() { sed -n 's/.*files_per_s=\([0-9]*\).*/\1/p' <<<"$1"; }
        lat=$(sed -n 's/.*fsync_median_ms=\([0-9.]*\) fsync_p90_ms=\([0-9.]*\).*/\1 \/ \2 ms/p' <<<"$fs")
        ratio=$(awk -v a="$(rate "$fs")" -v b="$(rate "$loc")" 'BEGIN{printf "%.2f", a / b}')
        echo "| $r | $t | $(rate "$loc") | $(rate "$fs") | $ratio | $lat | $(rate "$nosync") |"
    done
done
