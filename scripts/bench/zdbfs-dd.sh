#!/usr/bin/env bash
# zdbfs sequential throughput measured plainly with dd, on both stores, beside the local disk
# in the same run (the method of issue 15; scripts/bench/zdbfs.sh measures with fio):
#   write  dd if=<SIZE of random data> of=MOUNT/f bs=1M conv=fsync   (the source is warm)
#   read   unmount, drop caches, mount, dd if=MOUNT/f of=/dev/null bs=1M
# for zdbfs on the in-process engine (--engine DIR), zdbfs on a local `zdb` server (127.0.0.1,
# its data on the same disk), and a plain directory on the same disk. Rates are bytes / dd's
# whole run (the fsync included for writes). Each round runs the three in turn; medians.
#
# Usage (as root):  scripts/bench/zdbfs-dd.sh        # SIZE=1G ROUNDS=3, ~3 min after the build
#                   SIZE=128M ROUNDS=1 scripts/bench/zdbfs-dd.sh   # smoke run
# Environment: SIZE (dd count in MiB, default 1024), ROUNDS (3), BASE (scratch on a real disk,
# default /var/tmp), ZDBFS_OPTS (extra -o), SKIP_BUILD=1, CARGO_TARGET_DIR.
# Everything listens on 127.0.0.1; every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/procs.sh"
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-/var/tmp}
ZDBFS_OPTS=${ZDBFS_OPTS:-}

LOG_TAG=dd-bench
. "$ROOT/scripts/lib/common.sh"
need_root "drop_caches, FUSE mounts"

ZDBFS=$TARGET_DIR/release/zdbfs
ZDB=$TARGET_DIR/release/zdb
build_release -p zdbfs -p zdb-server
[[ -x $ZDBFS && -x $ZDB ]] || die "$ZDBFS or $ZDB not found"

WORK=$(mktemp -d "$BASE/zdbfs-dd.XXXXXX")
MNT=$WORK/mnt
SRC=$WORK/source.bin
mkdir -p "$MNT"
ZPID=
SPID=
cleanup() {
    umount_zdbfs || true
    stop_process "$SPID" TERM 100
    rm -rf "$WORK/engine" "$WORK/zdb" "$WORK/local" "$SRC"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION TENTHS COMMAND...: poll COMMAND until it succeeds (bounded).
wait_for() {
    local what=$1 n=$2 i
    shift 2
    for ((i = 0; i < n; i++)); do
        "$@" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$what: not ready after $((n / 10)) s"
}
mount_zdbfs() { # store-args...
    "$ZDBFS" "$MNT" "$@" ${ZDBFS_OPTS:+-o "$ZDBFS_OPTS"} </dev/null >>"$WORK/zdbfs.log" 2>&1 &
    ZPID=$!
    wait_fuse_mount "$ZPID" "$MNT" 600 || die "zdbfs did not mount (see $WORK/zdbfs.log)"
}
umount_zdbfs() {
    [[ -n $ZPID ]] || return 0
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    stop_process "$ZPID" 0 1200 # the final flush after the unmount, then it exits
    ZPID=
}
drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}
# dd_rate ARGS...: MB/s of one dd run (bytes / its whole wall time)
dd_rate() {
    local t0 t1
    t0=$(date +%s.%N)
    dd "$@" bs=1M status=none
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v n=$((SIZE << 20)) 'BEGIN{printf "%.0f", n / (b - a) / 1e6}'
}

log "making $SIZE MiB of random data in $WORK"
head -c $((SIZE << 20)) /dev/urandom >"$SRC"

declare -A W R
for ((r = 1; r <= ROUNDS; r++)); do
    for side in local engine server; do
        rm -rf "$WORK/engine" "$WORK/zdb" "$WORK/local"
        cat "$SRC" >/dev/null # the source is warm for every side
        case $side in
        local)
            mkdir -p "$WORK/local"
            dest=$WORK/local
            ;;
        engine)
            mount_zdbfs --engine "$WORK/engine"
            dest=$MNT
            ;;
        server)
            port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
            "$ZDB" --listen 127.0.0.1 --port "$port" --data "$WORK/zdb/data" --index "$WORK/zdb/index" \
                --mode seq >"$WORK/zdb.log" 2>&1 &
            SPID=$!
            wait_for "zdb on $port" 300 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
            mount_zdbfs -o "host=127.0.0.1,port=$port,autons"
            dest=$MNT
            ;;
        esac
        W[$side/$r]=$(dd_rate if="$SRC" of="$dest/f" conv=fsync)
        if [[ $side == local ]]; then
            drop_caches
        else
            umount_zdbfs
            drop_caches
            if [[ $side == engine ]]; then
                mount_zdbfs --engine "$WORK/engine"
            else
                mount_zdbfs -o "host=127.0.0.1,port=$port,autons"
            fi
        fi
        R[$side/$r]=$(dd_rate if="$dest/f" of=/dev/null)
        cmp -s "$SRC" "$dest/f" || die "$side: the file read back differs"
        umount_zdbfs
        stop_process "$SPID" TERM 100
        SPID=
        log "round $r $side: write ${W[$side/$r]} MB/s, read ${R[$side/$r]} MB/s"
    done
done

median() { tr " " "\n" | grep . | sort -g | awk '{a[NR]=$1} END{ if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
col() { # ARRAY SIDE
    local -n arr=$1
    local out="" r
    for ((r = 1; r <= ROUNDS; r++)); do out="$out ${arr[$2/$r]}"; done
    echo $out
}
ratios() { # ARRAY SIDE: per-round ratio to local
    local -n arr=$1
    local out="" r
    for ((r = 1; r <= ROUNDS; r++)); do
        out="$out $(awk -v a="${arr[$2/$r]}" -v b="${arr[local/$r]}" 'BEGIN{printf "%.2f", a / b}')"
    done
    echo $out
}
echo "dd bs=1M, $SIZE MiB of random data, ROUNDS=$ROUNDS (medians; per-round ratios to the local disk)"
echo
echo "| store | write MB/s (conv=fsync) | write / local | read MB/s (cold) | read / local |"
echo "|---|---:|---|---:|---|"
for side in local engine server; do
    echo "| $side | $(col W $side | median) | $(ratios W $side) | $(col R $side | median) | $(ratios R $side) |"
done
