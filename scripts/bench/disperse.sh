#!/usr/bin/env bash
# What the open segment's dispersal (partial checkpoints, `[qsfs] disperse_seconds`) costs
# writers: qsfs on its embedded default (64 MiB segments, local stand-in backends), SIZE of
# random data written with `dd bs=1M conv=fsync` ROUNDS times per start, with dispersal on
# (disperse_seconds = 4, the default) and off (0), the two alternating RUNS times on fresh
# data folders. Reports MiB/s per write; compare the two columns (the machine is noisy).
#
# Usage (root: FUSE mount):  scripts/bench/disperse.sh        # SIZE=1G RUNS=2 ROUNDS=2
# Environment: SIZE, RUNS, ROUNDS, BASE (scratch on a real disk, default /var/tmp),
# SKIP_BUILD=1 (use target/release/qsfs). Every wait is bounded; qsfs is stopped on exit.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/procs.sh"
SIZE=${SIZE:-1G}
RUNS=${RUNS:-2}
ROUNDS=${ROUNDS:-2}
BASE=${BASE:-/var/tmp}
LOG_TAG=disperse-bench
. "$ROOT/scripts/lib/common.sh"

need_root "FUSE mount"
QSFS=$TARGET_DIR/release/qsfs
build_release -p qsfs
[[ -x $QSFS ]] || die "$QSFS not found"
WORK=$(mktemp -d "$BASE/disperse-bench.XXXXXX")
QPID=
cleanup() {
    stop_process "$QPID" INT 6000
    umount -l "$WORK/run/mnt" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
head -c "$SIZE" /dev/urandom >"$WORK/source.bin"
BYTES=$(stat -c %s "$WORK/source.bin")

start() { # LOG [ARGS...]: start qsfs in $WORK/run, wait (bounded) for its mount
    local log=$1 i
    shift
    (cd "$WORK/run" && exec "$QSFS" "$@" </dev/null >>"$log" 2>&1) &
    QPID=$!
    for ((i = 0; i < 1200; i++)); do # 120 s
        grep -q "qsfs: mounted at" "$log" 2>/dev/null && mountpoint -q "$WORK/run/mnt" && return 0
        kill -0 "$QPID" 2>/dev/null || die "qsfs exited (see $log)"
        sleep 0.1
    done
    die "qsfs not mounted after 120 s (see $log)"
}

one() { # SECONDS: a fresh qsfs with disperse_seconds = SECONDS; prints the write rates
    local secs=$1 r t0 t1
    rm -rf "$WORK/run"
    mkdir -p "$WORK/run"
    start "$WORK/run/first.log" --mountpoint mnt # writes the embedded default
    stop_process "$QPID" INT 6000
    QPID=
    sed -i "s/^disperse_seconds = .*/disperse_seconds = $secs/" "$WORK/run/qsfs-data/qsfs.toml"
    start "$WORK/run/run.log" --config qsfs-data/qsfs.toml
    for ((r = 1; r <= ROUNDS; r++)); do
        t0=$(date +%s.%N)
        dd if="$WORK/source.bin" of="$WORK/run/mnt/f$r" bs=1M conv=fsync status=none ||
            die "write $r failed (see $WORK/run/run.log)"
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" -v n="$BYTES" 'BEGIN { printf " %.0f", n / 1048576 / (b - a) }'
    done
    stop_process "$QPID" INT 6000
    QPID=
}

echo "qsfs write of $SIZE (dd bs=1M conv=fsync, $ROUNDS per start), MiB/s"
echo "| run | dispersal on (4 s) | dispersal off |"
echo "| --- | --- | --- |"
for ((i = 1; i <= RUNS; i++)); do
    on=$(one 4) || exit 1
    off=$(one 0) || exit 1
    echo "| $i |$on |$off |"
done
