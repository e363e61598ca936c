# Sourced by the benchmarks of qsfs's web drive (after common.sh): `start_qsfs` runs
# $QSFS on its embedded default in $WORK (data in qsfs-data, mount in mnt, log in
# $OUT/qsfs.log) until the line matching $1 is logged, with an account `bench` (password
# "bench password"); `stop_qsfs` (trapped at exit) stops it and frees the mount.
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
