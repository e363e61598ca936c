#!/usr/bin/env bash
# qsfs on its embedded default (6 data + 4 metadata stand-in zdb processes, 4+2 code), against
# a plain directory on the same disk in the same run:
#   write      SIZE of random data with fio (1 MiB blocks, one file, fsync at the end), with
#              small segments (SEGMENT_MIB) so offload runs during the write
#   offloaded  how long after the write `qsfs rotate` returns: it closes the open segments
#              and waits until every checkpoint is on the backends
#   cold read  the whole file after `qsfs evict`, a restart of qsfs, another `qsfs evict` and a
#              page-cache drop: every segment comes back from the backends (decode, decrypt,
#              decompress, verify) on demand
#   backend    bytes stored on the stand-ins per byte written (4+2: 1.5 expected)
# Rates are wall-clock: bytes / (time of the whole command, fsync included).
#
# Usage (root: FUSE mount, drop_caches, apt for fio):
#   scripts/bench/qsfs.sh                          # SIZE=2G SEGMENT_MIB=16
#   SIZE=256M scripts/bench/qsfs.sh                # smoke run
# Environment: SIZE (fio syntax), SEGMENT_MIB, CACHE_MIB (local cache limit, default 512),
# BASE (scratch on a real disk, default /var/tmp), SKIP_BUILD=1, KEEP=1, OUT (logs, report.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
SIZE=${SIZE:-2G}
SEGMENT_MIB=${SEGMENT_MIB:-16}
CACHE_MIB=${CACHE_MIB:-512}
BASE=${BASE:-/var/tmp}

LOG_TAG=bench
. "$ROOT/scripts/lib/common.sh"

need_root "FUSE mount, drop_caches, apt-get"
command -v fio >/dev/null 2>&1 || install_packages fio || die "fio missing"
for t in fio jq awk numfmt du; do command -v $t >/dev/null || die "$t not found"; done

QSFS=$TARGET_DIR/release/qsfs
build_release -p qsfs
[[ -x $QSFS ]] || die "$QSFS not found"

SIZE_BYTES=$(numfmt --from=iec "${SIZE%[bB]}") || die "SIZE=$SIZE: not a size"
mkdir -p "$BASE"
FREE=$(($(df --output=avail -k "$BASE" | tail -1) * 1024))
((FREE > 5 * SIZE_BYTES)) || die "$BASE needs about $((5 * SIZE_BYTES >> 30)) GiB free"
WORK=$(mktemp -d "$BASE/qsfs-bench.XXXXXX")
OUT=${OUT:-$WORK/logs}
mkdir -p "$OUT" "$WORK/local"
MNT=$WORK/mnt
QPID=
log "scratch $WORK; logs in $OUT"

start_qsfs() {
    local i before
    before=$(grep -c "qsfs: mounted at" "$OUT/qsfs.log" 2>/dev/null || true)
    (cd "$WORK" && exec "$QSFS" --data qsfs-data --mountpoint mnt --segment-mib "$SEGMENT_MIB" \
        --cache-mib "$CACHE_MIB" </dev/null >>"$OUT/qsfs.log" 2>&1) &
    QPID=$!
    for ((i = 0; i < 1200; i++)); do # 120 s
        (($(grep -c "qsfs: mounted at" "$OUT/qsfs.log" || true) > before)) && return 0
        kill -0 "$QPID" 2>/dev/null || die "qsfs exited at start (see $OUT/qsfs.log)"
        sleep 0.1
    done
    die "qsfs not mounted after 120 s"
}

stop_qsfs() {
    [[ -n $QPID ]] || return 0
    local p=$QPID i
    QPID=
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 6000; i++)); do # 600 s: the last segments are offloaded first
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
        log "qsfs still running after 600 s; killing it"
        kill -KILL "$p" 2>/dev/null || true
        umount -l "$MNT" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_qsfs || true
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK/qsfs-data" "$WORK/local" "$MNT"
    ((rc == 0)) || log "failed (status $rc); logs in $OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

q() { (cd "$WORK" && "$QSFS" --data qsfs-data "$@"); }
now() { date +%s.%N; }
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f", b / t / 1048576 }'; }
drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

fio_write() { # DIR -> seconds
    local t0 t1
    t0=$(now)
    fio --name=seqwrite --directory="$1" --filename=bench.bin --rw=write --bs=1M --size="$SIZE" \
        --ioengine=psync --end_fsync=1 --refill_buffers --fallocate=none \
        --output-format=json >"$OUT/write-$(basename "$1").json"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

read_file() { # FILE -> seconds
    local t0 t1
    drop_caches
    t0=$(now)
    dd if="$1" of=/dev/null bs=1M status=none
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

log "local disk: write"
LW=$(fio_write "$WORK/local")
log "qsfs: start, write"
start_qsfs
QW=$(fio_write "$MNT")
log "qsfs: waiting until everything is offloaded"
t0=$(now)
q rotate >>"$OUT/qsfs.log" 2>&1 || die "rotate failed"
DRAIN=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
q status --json >"$OUT/status-after-write.json"
UPLOADED=$(jq .offload.bytes_uploaded "$OUT/status-after-write.json")

log "qsfs: evict, restart, evict again (cold)"
q evict >>"$OUT/qsfs.log"
stop_qsfs
start_qsfs
q evict >>"$OUT/qsfs.log"
log "cold reads"
LR=$(read_file "$WORK/local/bench.bin")
QR=$(read_file "$MNT/bench.bin")
q status --json >"$OUT/status-after-read.json"
FETCHED=$(jq .offload.bytes_fetched "$OUT/status-after-read.json")
BACKEND=$(du -sb "$WORK/qsfs-data/backends" | awk '{print $1}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
    echo "# qsfs whole-system run ($(date -u +%F), SIZE=$SIZE, SEGMENT_MIB=$SEGMENT_MIB, $(nproc) cores)"
    echo
    echo "| phase | qsfs | local disk | qsfs / local |"
    echo "| --- | --- | --- | --- |"
    echo "| write ${SIZE} (MiB/s) | $(rate "$SIZE_BYTES" "$QW") | $(rate "$SIZE_BYTES" "$LW") | $(ratio "$LW" "$QW")x |"
    echo "| offload finished after the write (s) | $DRAIN | | |"
    echo "| write + offload (MiB/s) | $(rate "$SIZE_BYTES" "$(awk -v a="$QW" -v b="$DRAIN" 'BEGIN{print a+b}')") | | |"
    echo "| cold read, all evicted (MiB/s) | $(rate "$SIZE_BYTES" "$QR") | $(rate "$SIZE_BYTES" "$LR") | $(ratio "$LR" "$QR")x |"
    echo
    echo "Uploaded $((UPLOADED >> 20)) MiB of plaintext; fetched back $((FETCHED >> 20)) MiB;" \
        "backends hold $(ratio "$BACKEND" "$SIZE_BYTES") bytes per byte written."
} | tee "$OUT/report.md"
