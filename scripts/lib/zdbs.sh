# Sourced by benchmark scripts that run a cluster of real zdb processes. The caller sets HOST
# (127.0.0.1), WORK (scratch folder), ZDB (the binary), an array PIDS (stopped by its cleanup)
# and a function die. Every wait is bounded.

# free_port -> sets PORT: a port below the kernel's ephemeral range (a port inside it can be
# the local end of a client connection or its TIME_WAIT, and then a server's bind fails
# although nothing listens there), nothing listening, not handed out before.
USED_PORTS=" "
read -r EPH_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPH_LO=32768
((EPH_LO > 11000)) || EPH_LO=32768
free_port() {
    local i p
    for ((i = 0; i < 200; i++)); do
        p=$((10000 + RANDOM % (EPH_LO - 10000)))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
            USED_PORTS+="$p "
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

# start_zdb NAME MODE NAMESPACE -> a zdb in WORK/NAME with namespace NAMESPACE made; sets
# ADDR=host:port, appends the pid to PIDS.
start_zdb() {
    local name=$1 mode=$2 ns=$3 port pid i r
    free_port
    port=$PORT
    mkdir -p "$WORK/$name/data" "$WORK/$name/index"
    setsid "$ZDB" --listen "$HOST" --port "$port" --data "$WORK/$name/data" \
        --index "$WORK/$name/index" --mode "$mode" </dev/null >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 3000; i++)); do # ≤ ~30 s
        if redis-cli -h "$HOST" -p "$port" PING 2>/dev/null | grep -q PONG; then break; fi
        kill -0 "$pid" 2>/dev/null || die "$name exited early (see $WORK/$name.log)"
        sleep 0.01
    done
    redis-cli -h "$HOST" -p "$port" PING 2>/dev/null | grep -q PONG || die "$name: no PONG in 30 s"
    r=$(redis-cli -h "$HOST" -p "$port" NSNEW "$ns" 2>&1)
    [[ $r == OK ]] || die "$name: NSNEW $ns answered: $r"
    ADDR=$HOST:$port
}

# zstor_config FILE META_ADDRS... -- DATA_ADDRS...: a 4+2 config (snappy, AES, fresh random
# keys) with files under WORK/files.
zstor_config() {
    local out=$1 a
    shift
    hexkey() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
    {
        echo "minimal_shards = 4"
        echo "expected_shards = 6"
        echo "redundant_groups = 0"
        echo "redundant_nodes = 0"
        echo "root = \"$WORK/files\""
        echo "[encryption]"
        echo "algorithm = \"AES\""
        echo "key = \"$(hexkey)\""
        echo "[compression]"
        echo "algorithm = \"snappy\""
        echo "[meta]"
        echo "type = \"zdb\""
        echo "[meta.config]"
        echo "prefix = \"bench\""
        echo "[meta.config.encryption]"
        echo "algorithm = \"AES\""
        echo "key = \"$(hexkey)\""
        while [[ $# -gt 0 && $1 != -- ]]; do
            printf '[[meta.config.backends]]\naddress = "%s"\nnamespace = "meta"\n' "$1"
            shift
        done
        shift
        echo "[[groups]]"
        for a in "$@"; do
            printf '[[groups.backends]]\naddress = "%s"\nnamespace = "data"\n' "$a"
        done
    } >"$out"
}
