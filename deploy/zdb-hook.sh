#!/bin/sh
# Hook for `zdb --hook` in ThreeFold's deployment shape (zdb, zstor and zdbfs as separate
# processes): closed segments go to the backends through `zstor`, missing ones come back.
#
#   zdb --data /data/data --index /data/index --mode seq --datasize 67108864 --rotate 900 \
#       --hook /usr/local/lib/qsfs/zdb-hook.sh
#
# Environment (set in zdb.service): ZSTOR (default: zstor on PATH), ZSTOR_CONFIG (default:
# /etc/zstor/config.toml; its `root` should be the common parent of --data and --index, e.g.
# /data, so that stored keys do not depend on where this machine keeps its files).
#
# Arguments follow 0-db: <event> <instance-id> [args...]. Blocking events (jump-index,
# missing-data, ready, close) make zdb wait for the exit status: jump-index exiting 0 resets
# zdb's dirty index list, so it exits 0 only when every listed index file is stored.
#
# Note: this shape stores index files after the jump, so a seq-mode update made in between can
# be shipped with its new data segment not yet stored; a restore from it may need zdb to
# rebuild the index from data. The `qsfs` binary avoids that with checkpoints taken under the
# namespace lock (see crates/qsfs).
set -u

ZSTOR=${ZSTOR:-zstor}
CONFIG=${ZSTOR_CONFIG:-/etc/zstor/config.toml}
event=${1:-}
[ $# -ge 2 ] && shift 2 || shift $#

store() {
    "$ZSTOR" -c "$CONFIG" store -f "$1"
}

case "$event" in
jump-data)
    # args: old data file, new data file. Not blocking: zdb does not wait.
    store "$1"
    ;;
jump-index)
    # args: old index file, new index file, dirty ids ("" or space-separated).
    old=$1
    dir=$(dirname "$old")
    status=0
    store "$old" || status=1
    for id in ${3:-}; do
        [ "$dir/i$id" = "$old" ] && continue
        store "$dir/i$id" || status=1
    done
    store "$dir/zdb-namespace" || status=1
    exit $status
    ;;
namespace-created | namespace-updated)
    # arg: namespace name; its descriptor lives next to its index files.
    index_root=${ZDB_INDEX:-/data/index}
    store "$index_root/$1/zdb-namespace"
    ;;
namespace-closing)
    # args: namespace, current index file, current data file, dirty ids.
    store "$2"
    store "$3"
    ;;
missing-data)
    # arg: full path of the missing data file; exit 0 makes zdb retry the read.
    exec "$ZSTOR" -c "$CONFIG" retrieve -f "$1"
    ;;
*)
    # ready, close, namespaces-init, namespace-deleted, namespace-reloaded: nothing to do.
    exit 0
    ;;
esac
