#!/usr/bin/env bash
# Whole-system benchmark: the release `zdb` server against redis-server (AOF, fsync everysec),
# both on 127.0.0.1, measured with redis-benchmark in the same run, plus a memory / restart test.
#
# Usage:  scripts/bench/zdb.sh                 # full run (~4-5 min on 2 cores, after the build)
#         N=20000 ROUNDS=1 MEM_KEYS=100000 scripts/bench/zdb.sh   # quick smoke test
#
# Environment (all optional):
#   N          requests for each SET row                   (default 300000)
#   TESTS      rows to run, in order: SET (distinct values), GET, SETSAME (redis-benchmark's
#              -t set: the same value every time)      (default "SET GET SETSAME")
#   GET_MULT   GET rows use N*GET_MULT requests            (default 2)
#   PIPE_MULT  GET rows with pipeline > 1: *PIPE_MULT more (default 4)
#              (so on the reference machine each row takes roughly 3-15 s)
#   CLIENTS    parallel connections                        (default 50)
#   PIPELINES  space-separated pipeline depths             (default "1 16")
#   VALUE      value size in bytes for SET/GET             (default 4096)
#   KEYSPACE   -r for SET/GET (random keys 0..KEYSPACE-1)  (default 100000)
#   ROUNDS     repeat every row, report the median         (default 3)
#   MEM_KEYS   SETs for the memory/restart test            (default 1000000)
#   SKIP_BUILD=1  use the existing target/release/zdb
#   ZDB        the zdb binary to measure (default target/release/zdb: compare two builds)
#   SKIP_MEM=1    skip the memory/restart test
#   OUT        directory for raw logs                      (default: a fresh temp dir, kept)
# Everything listens on 127.0.0.1 only; every wait loop is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
N=${N:-300000}
GET_MULT=${GET_MULT:-2}
PIPE_MULT=${PIPE_MULT:-4}
TESTS=${TESTS:-"SET GET SETSAME"}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-"1 16"}
VALUE=${VALUE:-4096}
KEYSPACE=${KEYSPACE:-100000}
ROUNDS=${ROUNDS:-3}
MEM_KEYS=${MEM_KEYS:-1000000}
MEM_KEYLEN=16    # redis-benchmark's key:__rand_int__ -> "key:" + 12 digits
MEM_VALUE=64
HOST=127.0.0.1

LOG_TAG=bench
. "$ROOT/scripts/lib/common.sh"

# ---------------------------------------------------------------- tools
need_apt=()
for t in redis-server redis-cli redis-benchmark; do
    command -v "$t" >/dev/null 2>&1 || need_apt=(redis-server redis-tools)
done
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
install_packages ${need_apt[@]+"${need_apt[@]}"} || die "packages missing"
# The Debian package starts a system redis on 6379; we never use it (our ports are random).

ZDB=${ZDB:-$TARGET_DIR/release/zdb}
build_release -p zdb-server
[[ -x $ZDB ]] || die "$ZDB not found"

# ---------------------------------------------------------------- scratch + cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zdb-bench.XXXXXX")
OUT=${OUT:-$WORK/logs}
mkdir -p "$OUT"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do stop_pid "$p" 2>/dev/null || true; done
    rm -rf "$WORK/zdb-data" "$WORK/zdb-index" "$WORK/redis" "$WORK"/mem-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# launcher: starts a server detached (own session, output to a log), then polls it with a RESP
# PING every 5 ms until +PONG (max 120 s). Prints "<pid> <ms from spawn to first PONG>".
LAUNCH=$WORK/launch.py
cat >"$LAUNCH" <<'PY'
import socket, subprocess, sys, time
port, logf, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ping = b"*1\r\n$4\r\nPING\r\n"
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(logf, "ab"),
                     stderr=subprocess.STDOUT, start_new_session=True)
deadline = t0 + 120
while True:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(ping)
            if s.recv(64).startswith(b"+PONG"):
                break
    except OSError:
        pass
    if p.poll() is not None:
        sys.exit(f"server exited with {p.returncode} before answering PING (see {logf})")
    if time.perf_counter() > deadline:
        p.kill()
        sys.exit("server did not answer PING within 120 s")
    time.sleep(0.005)
print(p.pid, "%.1f" % ((time.perf_counter() - t0) * 1000))
PY

# start_server NAME PORT CMD... -> sets STARTED_PID, STARTED_MS
start_server() {
    local name=$1 port=$2
    shift 2
    local res
    res=$(python3 "$LAUNCH" "$port" "$OUT/$name.log" "$@") || die "$name did not start"
    STARTED_PID=${res% *}
    STARTED_MS=${res#* }
    PIDS+=("$STARTED_PID")
    # the shell-level readiness check asked for: a real client answers too
    redis-cli -h $HOST -p "$port" PING | grep -q PONG || die "$name: redis-cli PING failed"
}

# stop_pid PID: SIGTERM, wait up to 60 s, then SIGKILL
stop_pid() {
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < 6000; i++)); do
        [[ -e /proc/$p ]] || return 0
        grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && return 0
        sleep 0.01
    done
    log "pid $p ignored SIGTERM for 60 s; killing"
    kill -KILL "$p" 2>/dev/null || true
}

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

start_zdb() { # name port datadir indexdir
    start_server "$1" "$2" "$ZDB" --listen $HOST --port "$2" --data "$3" --index "$4"
}
start_redis() { # name port dir
    start_server "$1" "$2" redis-server --port "$2" --bind $HOST --appendonly yes \
        --appendfsync everysec --save '' --dir "$3" --daemonize no --protected-mode yes
}

# The value of the SET row: VALUE bytes ending in a random 12-digit number, so (almost) every SET
# changes the stored value. redis-benchmark's own `-t set` sends the same value every time, and
# zdb (like 0-db) answers a SET whose value is unchanged with nil without writing anything: that
# cheaper path is measured separately as the "SET same value" row.
RAND_VALUE=$(head -c $((VALUE - 12)) /dev/zero | tr '\0' x)__rand_int__
# bench PORT PIPELINE TEST N TAG -> prints req/s (raw CSV kept in $OUT/TAG.csv)
bench() {
    local port=$1 pl=$2 test=$3 n=$4 tag=$5
    local cmd=(timeout 900 redis-benchmark -h $HOST -p "$port" -n "$n" -c "$CLIENTS" -P "$pl"
        -r "$KEYSPACE" -d "$VALUE" --csv)
    case $test in
    SET) cmd+=(SET key:__rand_int__ "$RAND_VALUE") ;;
    GET) cmd+=(-t get) ;;
    SETSAME) cmd+=(-t set) ;;
    esac
    "${cmd[@]}" >"$OUT/$tag.csv" 2>"$OUT/$tag.err" ||
        die "redis-benchmark failed on port $port (see $OUT/$tag.err)"
    # line 1 is the CSV header, line 2 the result: "test","rps",...
    awk -F'"' 'NR==2{print $4}' "$OUT/$tag.csv" | grep . || die "no result in $OUT/$tag.csv"
}

median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2} }'; }

# ---------------------------------------------------------------- throughput
# Each round starts both servers on fresh directories (so disk use stays bounded and rounds are
# independent samples), then runs every row against zdb and redis back to back, alternating
# which server goes first.
rows_n() { # test pipeline -> request count for that row
    local n=$N
    # SET rows write VALUE bytes per request and run at disk speed whatever the pipeline;
    # GET rows are CPU-bound and much faster with pipelining.
    if [[ $1 == GET ]]; then
        n=$((n * GET_MULT))
        (($2 > 1)) && n=$((n * PIPE_MULT))
    fi
    echo $n
}
declare -A RES
for ((r = 1; r <= ROUNDS; r++)); do
    ZPORT=$(free_port)
    RPORT=$(free_port)
    while [[ $RPORT == "$ZPORT" ]]; do RPORT=$(free_port); done
    rm -rf "$WORK/zdb-data" "$WORK/zdb-index" "$WORK/redis"
    mkdir -p "$WORK/zdb-data" "$WORK/zdb-index" "$WORK/redis"
    start_zdb zdb-r$r "$ZPORT" "$WORK/zdb-data" "$WORK/zdb-index"
    ZPID=$STARTED_PID
    start_redis redis-r$r "$RPORT" "$WORK/redis"
    RPID=$STARTED_PID
    log "round $r/$ROUNDS: zdb pid $ZPID port $ZPORT; redis pid $RPID port $RPORT; logs in $OUT"
    for pl in $PIPELINES; do
        if ((r % 2)); then order="zdb redis"; else order="redis zdb"; fi
        for srv in $order; do
            port=$ZPORT
            [[ $srv == redis ]] && port=$RPORT
            for test in $TESTS; do
                n=$(rows_n $test "$pl")
                rps=$(bench "$port" "$pl" "$test" "$n" "$srv-$test-P$pl-r$r")
                RES[$srv,$test,$pl]+="$rps "
                log "    round $r  P=$pl  $srv  $test  n=$n  $rps req/s"
            done
        done
    done
    ZDB_DISK=$(du -sh "$WORK/zdb-data" | cut -f1)
    REDIS_DISK=$(du -sh "$WORK/redis" | cut -f1)
    stop_pid "$ZPID"
    stop_pid "$RPID"
done
rm -rf "$WORK/zdb-data" "$WORK/zdb-index" "$WORK/redis"

CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && [[ -n $(git status --porcelain 2>/dev/null) ]] && echo "+dirty" || true)

echo
echo "### Throughput ($(date -u +%Y-%m-%d), $(nproc) cores, $CPU, git $REV$DIRTY)"
echo
echo "redis-benchmark -n <n> -c $CLIENTS -r $KEYSPACE -d $VALUE -P <pipeline> --csv <test>; n = $N (GET: x $GET_MULT, and x $PIPE_MULT more for P>1)."
echo 'SET = `SET key:__rand_int__ <'$((VALUE - 12))' x'"'"'s>__rand_int__` (every value differs, so every SET writes);'
echo 'GET = `-t get`; SET same value = `-t set` (constant value: zdb skips unchanged values, as 0-db does);'
echo "median of $ROUNDS round(s), each on freshly started servers with empty directories;"
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') --appendonly yes --appendfsync everysec --save ''; zdb default mode (user), no --sync."
echo
echo "| test | pipeline | zdb req/s | redis req/s | zdb/redis |"
echo "|---|---:|---:|---:|---:|"
label() { case $1 in SETSAME) echo "SET same value" ;; *) echo "$1" ;; esac; }
for test in $TESTS; do
    for pl in $PIPELINES; do
        z=$(tr ' ' '\n' <<<"${RES[zdb,$test,$pl]:-}" | grep . | median)
        rr=$(tr ' ' '\n' <<<"${RES[redis,$test,$pl]:-}" | grep . | median)
        ratio=$(awk -v a="$z" -v b="$rr" 'BEGIN{ if (b+0>0) printf "%.2f", a/b; else print "n/a" }')
        printf '| %s | %s | %.0f | %.0f | %s |\n' "$(label $test)" "$pl" "$z" "$rr" "$ratio"
    done
done
echo
for srv in zdb redis; do
    echo -n "Raw req/s per round, $srv:"
    for test in $TESTS; do for pl in $PIPELINES; do echo -n " $test/P$pl=[${RES[$srv,$test,$pl]% }]"; done; done
    echo
done
echo "On-disk after the last round: zdb data $ZDB_DISK, redis AOF dir $REDIS_DISK."

[[ ${SKIP_MEM:-0} == 1 ]] && exit 0

# ---------------------------------------------------------------- memory + restart
# Key load: redis-benchmark -t set with random 12-digit ids -> 16-byte keys, 64-byte values.
# -r 1000000000 gives ~MEM_KEYS^2/2e9 repeated keys (~500 for 1M); the real count is DBSIZE.
load_keys() { # port tag
    timeout 900 redis-benchmark -h $HOST -p "$1" -t set -n "$MEM_KEYS" -c "$CLIENTS" -P 64 \
        -r 1000000000 -d $MEM_VALUE --csv >"$OUT/$2.csv" 2>"$OUT/$2.err" ||
        die "key load failed (see $OUT/$2.err)"
    awk -F'"' '$2=="SET"{print $4}' "$OUT/$2.csv"
}
dbsize() { redis-cli -h $HOST -p "$1" DBSIZE | tr -dc '0-9'; }

log "memory: empty zdb"
P=$(free_port)
D=$WORK/mem-zdb-data I=$WORK/mem-zdb-index
mkdir -p "$D" "$I"
start_zdb zdb-empty "$P" "$D" "$I"
Z_EMPTY_MS=$STARTED_MS
Z_EMPTY_RSS=$(rss_kib "$STARTED_PID")
stop_pid "$STARTED_PID"
# restart the empty server too, so both RSS figures come from the same path (start -> PONG)
start_zdb zdb-empty2 "$P" "$D" "$I"
Z_EMPTY_RSS2=$(rss_kib "$STARTED_PID")
log "memory: loading $MEM_KEYS SETs into zdb"
Z_LOAD_RPS=$(load_keys "$P" zdb-load)
Z_KEYS=$(dbsize "$P")
Z_RSS_LOADED=$(rss_kib "$STARTED_PID")
stop_pid "$STARTED_PID"
Z_DISK=$(du -sk "$D" "$I" | awk '{s+=$1} END{print s}')
log "memory: restarting zdb with $Z_KEYS keys"
start_zdb zdb-restart "$P" "$D" "$I"
Z_RESTART_MS=$STARTED_MS
Z_RSS=$(rss_kib "$STARTED_PID")
Z_KEYS2=$(dbsize "$P")
sleep 1 # not a readiness wait: lets any background loading show up in a second RSS sample
Z_RSS_1S=$(rss_kib "$STARTED_PID")
stop_pid "$STARTED_PID"
# second restart: the page cache is warm in both, the number to compare across runs
start_zdb zdb-restart2 "$P" "$D" "$I"
Z_RESTART2_MS=$STARTED_MS
stop_pid "$STARTED_PID"
rm -rf "$D" "$I"

log "memory: redis reference"
P=$(free_port)
RD=$WORK/mem-redis
mkdir -p "$RD"
start_redis redis-empty "$P" "$RD"
R_EMPTY_RSS=$(rss_kib "$STARTED_PID")
R_LOAD_RPS=$(load_keys "$P" redis-load)
R_KEYS=$(dbsize "$P")
R_RSS_LOADED=$(rss_kib "$STARTED_PID")
R_USED=$(redis-cli -h $HOST -p "$P" INFO memory | awk -F: '/^used_memory:/{print $2}' | tr -dc '0-9')
stop_pid "$STARTED_PID"
R_DISK=$(du -sk "$RD" | cut -f1)
start_redis redis-restart "$P" "$RD"
R_RESTART_MS=$STARTED_MS
R_RSS=$(rss_kib "$STARTED_PID")
R_KEYS2=$(dbsize "$P")
stop_pid "$STARTED_PID"
rm -rf "$RD"

per_key() { awk -v a="$1" -v e="$2" -v k="$3" -v kl="$4" 'BEGIN{ if (k>0) printf "%.1f", (a-e)*1024/k-kl; else print "n/a" }'; }

echo
echo "### Memory and restart ($MEM_KEYS SETs, ${MEM_KEYLEN}-byte keys, ${MEM_VALUE}-byte values)"
echo
echo "redis-benchmark -t set -n $MEM_KEYS -c $CLIENTS -P 64 -r 1000000000 -d $MEM_VALUE; RSS = VmRSS right after the first PONG."
echo "bytes/key = (RSS after restart - RSS of an empty server) / keys - $MEM_KEYLEN."
echo
echo "| server | keys (DBSIZE) | load req/s | empty RSS | RSS after load | RSS after restart | bytes/key beyond key | restart to PONG | on disk |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '| zdb | %s | %.0f | %s KiB | %s KiB | %s KiB (%s KiB 1 s later) | %s | %s ms (warm: %s ms) | %s KiB |\n' \
    "$Z_KEYS" "$Z_LOAD_RPS" "$Z_EMPTY_RSS" "$Z_RSS_LOADED" "$Z_RSS" "$Z_RSS_1S" \
    "$(per_key "$Z_RSS" "$Z_EMPTY_RSS2" "$Z_KEYS" $MEM_KEYLEN)" "$Z_RESTART_MS" "$Z_RESTART2_MS" "$Z_DISK"
printf '| redis (AOF) | %s | %.0f | %s KiB | %s KiB | %s KiB | %s | %s ms | %s KiB |\n' \
    "$R_KEYS" "$R_LOAD_RPS" "$R_EMPTY_RSS" "$R_RSS_LOADED" "$R_RSS" \
    "$(per_key "$R_RSS" "$R_EMPTY_RSS" "$R_KEYS" $MEM_KEYLEN)" "$R_RESTART_MS" "$R_DISK"
echo
echo "zdb: empty start to PONG $Z_EMPTY_MS ms; empty RSS on the restart path $Z_EMPTY_RSS2 KiB; DBSIZE after restart $Z_KEYS2 (before: $Z_KEYS)."
echo "redis: used_memory after load $R_USED bytes; DBSIZE after restart $R_KEYS2 (before: $R_KEYS)."
[[ $Z_KEYS2 == "$Z_KEYS" ]] || echo "**WARNING: zdb DBSIZE changed across restart ($Z_KEYS -> $Z_KEYS2)**"
echo
echo "Goals: zdb >= redis on every throughput row; < 100 bytes/key beyond the key; restart < 500 ms."
