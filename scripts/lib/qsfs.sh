# Sourced by the benchmarks of qsfs's web drive (after common.sh): `start_qsfs` runs
# $QSFS on its embedded default in $WORK (data in qsfs-data, mount in mnt, log in
# $OUT/qsfs.log) until the line matching $1 is logged, with an account `bench` (password
# "bench password"); `stop_qsfs` (trapped at exit) stops it and frees the mount;
# `settle_qsfs` waits until qsfs has uploaded every checkpoint it staged (unless SETTLE=0);
# `seconds_of`, `cp_in` and `cp_tree_in` time what the benchmarks compare.
QPID=
start_qsfs() {
    (cd "$WORK" && exec "$QSFS" --data qsfs-data --mountpoint mnt </dev/null >"$OUT/qsfs.log" 2>&1) &
    QPID=$!
    for _ in $(seq 1 1200); do
        grep -q "$1" "$OUT/qsfs.log" && break
        kill -0 "$QPID" 2>/dev/null || die "qsfs exited (see $OUT/qsfs.log)"
        sleep 0.1
    done
    grep -q "$1" "$OUT/qsfs.log" || die "qsfs did not log '$1' (see $OUT/qsfs.log)"
    (cd "$WORK" && "$QSFS" --data qsfs-data user add bench --password-stdin <<<"bench password") >/dev/null
}
stop_qsfs() {
    [[ -n $QPID ]] || return 0
    kill -TERM "$QPID" 2>/dev/null || true
    for _ in $(seq 1 3000); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$QPID" 2>/dev/null || true
    umount -l "$WORK/mnt" 2>/dev/null || true
}
# settle_qsfs: wait (at most 10 min) until no staged checkpoint is left to upload, so a
# measured transfer does not share the machine with the upload of the one before it (the
# background upload of 1 GiB takes a core for seconds: without this, whatever runs
# second pays for whatever ran first). SETTLE=0 measures without waiting.
settle_qsfs() {
    [[ ${SETTLE:-1} == 1 ]] || return 0
    local url
    url=$(sed -nE 's/.*metrics at (http[^ ]+).*/\1/p' "$OUT/qsfs.log" | head -1)
    [[ -n $url ]] || die "no metrics address in $OUT/qsfs.log"
    for _ in $(seq 1 6000); do
        curl -sf "$url" | grep -qx 'qsfs_offload_pending 0' && return 0
        sleep 0.1
    done
    die "qsfs still uploading after 10 min"
}

# seconds_of CMD...: run CMD (its output dropped), print the seconds it took; stop if it fails.
seconds_of() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null || die "$1 failed"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
# cp_in FILE DEST / cp_tree_in DIR DEST: what the protocols are measured beside, ended by
# one sync of the mount.
cp_in() { cp "$1" "$2" && sync -f "$2"; }
cp_tree_in() { cp -r "$1" "$2" && sync -f "$2"; }
