#!/usr/bin/env bash
# ThreeFold's 0-db-fs (threefoldtech/0-db-fs, C) as a client of our `zdb`, the way
# quantum-storage deploys it: `zdb --mode seq` on loopback, then `zdbfs -o autons`. A tree is
# copied in, compared, the filesystem is unmounted and mounted again (on a zdb restarted on
# the same data) and compared again. (Our zdbfs has a format of its own: docs/format/zdbfs.md.)
#
# Usage (as root; needs gcc, make, libfuse3-dev, libhiredis-dev, libunwind-dev, liblzma-dev):
#   scripts/compat/0db-fs.sh /path/to/0-db-fs-checkout
# CI has no network, so this runs where a checkout is given. Exit status 0 when every
# comparison holds. Servers listen on 127.0.0.1 only; every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
. "$ROOT/scripts/lib/procs.sh"
SRC=${1:?usage: $0 /path/to/0-db-fs-checkout}
SRC=$(cd "$SRC" && pwd)
TREE=${TREE:-/usr/include/linux}
WORK=$(mktemp -d /var/tmp/0db-fs.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"

LOG_TAG=0db-fs
. "$ROOT/scripts/lib/common.sh"
need_root "FUSE mounts"

need=()
[[ -e /usr/include/fuse3/fuse.h ]] || need+=(libfuse3-dev)
[[ -e /usr/include/hiredis/hiredis.h ]] || need+=(libhiredis-dev)
[[ -e /usr/include/libunwind.h ]] || need+=(libunwind-dev)
[[ -e /usr/include/lzma.h ]] || need+=(liblzma-dev)
command -v redis-cli >/dev/null || need+=(redis-tools)
install_packages ${need[@]+"${need[@]}"}
make -C "$SRC" -s >"$WORK/build.log" 2>&1 || die "building 0-db-fs failed (see $WORK/build.log)"
THEIRS=$SRC/zdbfs
build_release -p zdb-server
ZDB=$TARGET_DIR/release/zdb
PORT=9900

SERVER=
FS=
stop() { # PID-variable-name
    local -n pid=$1
    stop_process "$pid" TERM 300
    pid=
}
cleanup() {
    mountpoint -q "$MNT" && umount -l "$MNT"
    stop FS || true
    stop SERVER || true
    rm -rf "$WORK/data" "$WORK/index"
}
trap cleanup EXIT

start_zdb() {
    "$ZDB" --listen 127.0.0.1 --port $PORT --data "$WORK/data" --index "$WORK/index" --mode seq \
        >>"$WORK/zdb.log" 2>&1 &
    SERVER=$!
    local i
    for ((i = 0; i < 200; i++)); do
        redis-cli -p $PORT PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    die "zdb not answering on 127.0.0.1:$PORT (see $WORK/zdb.log)"
}
mount_with() { # binary
    "$1" -o host=127.0.0.1,port=$PORT,autons "$MNT" >>"$WORK/fs.log" 2>&1 &
    FS=$!
    wait_fuse_mount "$FS" "$MNT" 200 || die "$1 did not mount (see $WORK/fs.log)"
}
unmount() {
    umount "$MNT" || die "umount failed"
    stop_process "$FS" 0 600 # the final flush after the unmount, then it exits
    FS=
}
same() { # what
    diff -r --no-dereference "$TREE" "$MNT/tree" >"$WORK/diff.txt" 2>&1 ||
        die "$1: the tree differs (see $WORK/diff.txt)"
    log "$1: the tree is identical ($(find "$MNT/tree" | wc -l) entries)"
}

start_zdb
mount_with "$THEIRS"
cp -a "$TREE" "$MNT/tree"
same "0-db-fs on our zdb --mode seq"
unmount
stop SERVER
start_zdb
mount_with "$THEIRS"
same "0-db-fs again, zdb restarted on the same data"
unmount
log "all comparisons hold"
