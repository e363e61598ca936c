# Sourced by the compatibility and benchmark scripts: stopping the processes they start and
# waiting for their mounts, bounded. `stop_process PID SIGNAL TENTHS`: send SIGNAL, wait up to TENTHS tenths of a second
# for the process to exit, then SIGKILL it; reaps it if it is a child of the caller.
stop_process() {
    local pid=$1 sig=$2 n=$3 i
    [[ -n $pid ]] || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < n; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# `wait_fuse_mount PID MOUNTPOINT TENTHS`: wait until MOUNTPOINT is a FUSE mount served by the
# just-started process PID. Fails (status 1, saying why on stderr) when PID exits first or
# after TENTHS tenths of a second.
wait_fuse_mount() {
    local pid=$1 mnt=$2 n=$3 i
    for ((i = 0; i < n; i++)); do
        [[ $(stat -f -c %T "$mnt" 2>/dev/null) == fuse* ]] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid exited before $mnt was mounted" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$mnt not mounted after $((n / 10)) s" >&2
    return 1
}
