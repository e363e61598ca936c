#!/usr/bin/env bash
# 0-db's own C test suite (threefoldtech/0-db, tests/, built with hiredis) against our `zdb`,
# in the five server set-ups of its tests/run.sh; the expectation is what 0-db's own `zdb`
# (its release build, as deployed: a debug build also serves STOP) passes in the same
# set-ups, run here first.
#
# Usage (as root or with write access to /tmp; needs gcc, make, libhiredis-dev):
#   scripts/compat/0db-suite.sh /path/to/0-db-checkout
# CI has no network, so this runs where a checkout is given (e.g. one brought by `git clone`).
# Exit status 1 when a test 0-db passes fails on ours. Results: $OUT (default a temp dir).
# Servers use /tmp/zdb.sock and 127.0.0.1:9900, as the suite expects; every wait is bounded.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
. "$ROOT/scripts/lib/procs.sh"
SRC=${1:?usage: $0 /path/to/0-db-checkout}
SRC=$(cd "$SRC" && pwd)
OUT=${OUT:-$(mktemp -d /tmp/0db-suite.XXXXXX)}
DATA=/tmp/zdbtest-data
INDEX=/tmp/zdbtest-index
SOCK=/tmp/zdb.sock

LOG_TAG=0db-suite
DIE_STATUS=2
. "$ROOT/scripts/lib/common.sh"

command -v make >/dev/null || install_packages make
[[ -e /usr/include/hiredis/hiredis.h ]] || install_packages libhiredis-dev pkg-config
log "building 0-db's zdb and test suite in $SRC"
make -C "$SRC/libzdb" -s release >"$OUT/build.log" 2>&1 || die "building libzdb failed (see $OUT/build.log)"
make -C "$SRC/zdbd" -s release >>"$OUT/build.log" 2>&1 || die "building 0-db's zdbd failed"
make -C "$SRC/tests" -s >>"$OUT/build.log" 2>&1 || die "building the test suite failed"
THEIRS=$SRC/zdbd/zdb
OURS=$TARGET_DIR/release/zdb
build_release -p zdb-server

SERVER=
stop_server() {
    stop_process "$SERVER" INT 100
    SERVER=
}
trap 'stop_server; rm -rf "$DATA" "$INDEX" "$SOCK"' EXIT

# ready: the server answers PING on the socket or port of its set-up
ready() {
    if [[ $1 == tcp ]]; then
        redis-cli -h 127.0.0.1 -p 9900 PING 2>/dev/null | grep -q PONG
    else
        redis-cli -s "$SOCK" PING 2>/dev/null | grep -q PONG
    fi
}
command -v redis-cli >/dev/null || install_packages redis-tools

# The five set-ups of tests/run.sh that run the suite (its --background replaced by running
# the server as a child of this script, so it can be stopped and waited for).
SETUPS=(
    "socket|--socket $SOCK --hook /bin/true --datasize $((128 << 20))"
    "socket|--socket $SOCK --hook /bin/true --datasize $((518 << 10))"
    "socket|--socket $SOCK --admin protect --synctime 10 --mode user"
    "tcp|--listen 127.0.0.1 --port 9900 --admin root --sync"
    "socket|--socket $SOCK --mode seq"
)

# run_suite NAME BINARY: every set-up, one result file per set-up: "test-name result" lines
run_suite() {
    local name=$1 bin=$2 i kind args n
    for i in "${!SETUPS[@]}"; do
        kind=${SETUPS[$i]%%|*}
        args=${SETUPS[$i]#*|}
        rm -rf "$DATA" "$INDEX" "$SOCK"
        # shellcheck disable=SC2086
        "$bin" --data "$DATA" --index "$INDEX" $args >"$OUT/$name-$i.server.log" 2>&1 &
        SERVER=$!
        for ((n = 0; n < 200; n++)); do
            ready "$kind" && break
            kill -0 "$SERVER" 2>/dev/null || die "$name server of set-up $i exited (see $OUT/$name-$i.server.log)"
            sleep 0.1
        done
        ready "$kind" || die "$name server of set-up $i not ready"
        (cd "$SRC" && timeout 600 ./tests/zdbtests) >"$OUT/$name-$i.out" 2>&1 || true
        stop_server
        # "[+] >> name: success" / "[-] >> name: failed" (colours stripped)
        sed 's/\x1b\[[0-9;]*m//g' "$OUT/$name-$i.out" |
            awk '/^\[.\] >> / && !/: running$/ { sub(/^\[.\] >> /, ""); n = index($0, ": ");
                 print substr($0, 1, n - 1), substr($0, n + 2) }' >"$OUT/$name-$i.results"
        log "$name set-up $i ($args): $(grep -c ' success$' "$OUT/$name-$i.results") passed," \
            "$(grep -c ' failed' "$OUT/$name-$i.results") failed," \
            "$(grep -c ' skipped$' "$OUT/$name-$i.results") skipped"
    done
}

run_suite 0db "$THEIRS"
run_suite ours "$OURS"

status=0
for i in "${!SETUPS[@]}"; do
    # Tests 0-db passes that do not pass on ours.
    join <(grep ' success$' "$OUT/0db-$i.results" | cut -d' ' -f1 | sort) \
        <(grep -v ' success$' "$OUT/ours-$i.results" | sort) >"$OUT/regressions-$i" || true
    if [[ -s $OUT/regressions-$i ]]; then
        status=1
        log "set-up $i: passes on 0-db, not on ours:"
        sed 's/^/    /' "$OUT/regressions-$i" >&2
    fi
done
echo "| set-up | 0-db passed | ours passed | passed on 0-db, not on ours |"
echo "|---|---:|---:|---:|"
for i in "${!SETUPS[@]}"; do
    echo "| ${SETUPS[$i]#*|} | $(grep -c ' success$' "$OUT/0db-$i.results") |" \
        "$(grep -c ' success$' "$OUT/ours-$i.results") | $(wc -l <"$OUT/regressions-$i") |"
done
exit $status
