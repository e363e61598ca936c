#!/usr/bin/env bash
# The tar figure with its floor: `tar -xf` of a tarball of TAR_SRC (default /usr/include),
# then sync, onto the local disk, onto zdbfs over memory (crates/zdbfs/examples/floor.rs: the
# same FUSE transport and zdbfs code, no storage at all) and onto zdbfs on its in-process
# engine, in turn, ROUNDS times; medians and per-round ratios to the local disk.
#
# Usage (as root):  scripts/bench/fuse-floor.sh          # ROUNDS=3, ~1 min after the build
# Environment: ROUNDS (3), TAR_SRC, BASE (scratch on a real disk, default /var/tmp),
# SKIP_BUILD=1, CARGO_TARGET_DIR. Every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/procs.sh"
ROUNDS=${ROUNDS:-3}
TAR_SRC=${TAR_SRC:-/usr/include}
BASE=${BASE:-/var/tmp}

LOG_TAG=floor
. "$ROOT/scripts/lib/common.sh"
need_root "drop_caches, FUSE mounts"

build_release -p zdbfs --bin zdbfs --example floor
ZDBFS=$TARGET_DIR/release/zdbfs
FLOOR=$TARGET_DIR/release/examples/floor
[[ -x $ZDBFS && -x $FLOOR ]] || die "$ZDBFS or $FLOOR not found"

WORK=$(mktemp -d "$BASE/fuse-floor.XXXXXX")
MNT=$WORK/mnt
TARBALL=$WORK/tree.tar
mkdir -p "$MNT"
PID=
unmount() {
    [[ -n $PID ]] || return 0
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    stop_process "$PID" 0 1200 # the final flush after the unmount, then it exits
    PID=
}
trap 'unmount; rm -rf "$WORK/engine" "$WORK/local" "$TARBALL"' EXIT
trap 'exit 130' INT TERM

mount_with() { # command...
    "$@" >>"$WORK/mount.log" 2>&1 &
    PID=$!
    wait_fuse_mount "$PID" "$MNT" 600 || die "$1 did not mount (see $WORK/mount.log)"
}

tar -cf "$TARBALL" -C "$(dirname "$TAR_SRC")" "$(basename "$TAR_SRC")" 2>/dev/null
ENTRIES=$(tar -tf "$TARBALL" | wc -l)
declare -A T
for ((r = 1; r <= ROUNDS; r++)); do
    for side in local floor zdbfs; do
        rm -rf "$WORK/engine" "$WORK/local"
        case $side in
        local)
            mkdir -p "$WORK/local"
            dest=$WORK/local
            ;;
        floor)
            mount_with "$FLOOR" "$MNT"
            dest=$MNT
            ;;
        zdbfs)
            mount_with "$ZDBFS" "$MNT" --engine "$WORK/engine"
            dest=$MNT
            ;;
        esac
        sync
        echo 3 >/proc/sys/vm/drop_caches
        cat "$TARBALL" >/dev/null
        t0=$(date +%s.%N)
        tar -xf "$TARBALL" -C "$dest"
        sync "$dest"
        sync
        t1=$(date +%s.%N)
        T[$side/$r]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
        [[ $(find "$dest" | wc -l) -gt $ENTRIES ]] || die "$side: the tree is incomplete"
        unmount
        log "round $r $side: ${T[$side/$r]} s"
    done
done

median() { tr " " "\n" | grep . | sort -g | awk '{a[NR]=$1} END{ if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
transport=$(grep -q 'uring=true' "$WORK/mount.log" && echo io_uring || echo /dev/fuse)
echo "tar -xf + sync of $TAR_SRC ($ENTRIES entries), ROUNDS=$ROUNDS, FUSE over $transport (medians; per-round times / local)"
echo
echo "| target | seconds | x local, per round |"
echo "|---|---:|---|"
for side in local floor zdbfs; do
    vals="" ratios=""
    for ((r = 1; r <= ROUNDS; r++)); do
        vals="$vals ${T[$side/$r]}"
        ratios="$ratios $(awk -v a="${T[$side/$r]}" -v b="${T[local/$r]}" 'BEGIN{printf "%.2f", a / b}')"
    done
    echo "| $side | $(median <<<"$vals") | $ratios |"
done
