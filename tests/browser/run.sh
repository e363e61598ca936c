#!/usr/bin/env bash
# Browser test of the web UI on a real qsfs (embedded default, real FUSE mount), with
# Debian's chromium and playwright-core (installed here when missing; needs root for apt).
# Called by scripts/test after the cargo tests. Screenshots: $ARTIFACTS
# (default target/browser-artifacts).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QSFS=${QSFS:-$ROOT/target/debug/qsfs}
export ARTIFACTS=${ARTIFACTS:-$ROOT/target/browser-artifacts}

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
. "$HERE/../../scripts/lib/packages.sh"
install_packages ${need[@]+"${need[@]}"} || { echo "browser test: ${need[*]} needed" >&2; exit 1; }
(cd "$HERE" && npm ci --no-audit --no-fund --silent)
[ -x "$QSFS" ] || { echo "browser test: $QSFS missing (cargo build first)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/qsfs-browser.XXXXXX)
PID=
stop() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 600); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
        umount -l "$WORK/mnt" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop EXIT

(cd "$WORK" && exec "$QSFS" --data data --mountpoint mnt --segment-mib 4 </dev/null >"$WORK/qsfs.log" 2>&1) &
PID=$!
for _ in $(seq 1 600); do
    grep -q "web UI at" "$WORK/qsfs.log" && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/qsfs.log" >&2; exit 1; }
    sleep 0.1
done
line=$(grep "web UI at" "$WORK/qsfs.log") || { cat "$WORK/qsfs.log" >&2; exit 1; }
export QSFS_URL=$(sed -E 's/.*web UI at (http[^ ]+).*/\1/' <<<"$line")
export QSFS_TOKEN=$(sed -E 's/.*access token: ([0-9a-f]+).*/\1/' <<<"$line")
export QSFS_MOUNT=$WORK/mnt
(cd "$WORK" && "$QSFS" --data data user add tester --password-stdin <<<"tester's password")
cd "$HERE" && node browser.test.mjs
