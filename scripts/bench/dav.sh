#!/usr/bin/env bash
# WebDAV of qsfs on its embedded default against `cp` onto and off the same mount, in the
# same run: one large file (SIZE_MIB, 1 GiB) put and got with curl, and N small files
# (2,000 x 64 KiB) put and got over 4 keep-alive connections (dav-small.py), and copied in
# and out with rclone's webdav remote (4 transfers; Debian's rclone 1.60 waits 10 ms
# between any two requests, which bounds it near 100 requests/s). Every PUT is
# acknowledged once its file is fsync'ed and renamed into place; `cp` ends with one
# `sync -f`. MB/s and files/s, ROUNDS rounds. LARGE_DIR=100000 then times a PROPFIND
# (Depth: 1, every property) of a folder of that many empty files, beside `ls -l` of it.
#
# Usage (root: FUSE mount):  scripts/bench/dav.sh      # SIZE_MIB=1024 N=2000 SMALL=65536 ROUNDS=3
# Environment: SIZE_MIB, N, SMALL, ROUNDS, LARGE_DIR (0), BASE (scratch, default /var/tmp), SKIP_BUILD=1, OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
N=${N:-2000}
SMALL=${SMALL:-65536}
ROUNDS=${ROUNDS:-3}
LARGE_DIR=${LARGE_DIR:-0}
BASE=${BASE:-/var/tmp}
LOG_TAG=dav-bench
. "$ROOT/scripts/lib/common.sh"
need_root "FUSE mount"
for c in curl rclone python3; do command -v $c >/dev/null || die "$c needed"; done

QSFS=$TARGET_DIR/release/qsfs
build_release -p qsfs
WORK=$(mktemp -d "$BASE/qsfs-dav-bench.XXXXXX")
OUT=${OUT:-$WORK/logs}
mkdir -p "$OUT" "$WORK/small" "$WORK/back"
. "$ROOT/scripts/lib/qsfs.sh"
cleanup() {
    stop_qsfs
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK/qsfs-data" "$WORK/small" "$WORK/back" "$WORK/big" "$WORK/mnt"
}
trap cleanup EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom >"$WORK/big"
python3 - "$WORK/small" "$N" "$SMALL" <<'PY'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    open(f"{d}/f{i:05}.bin", "wb").write(os.urandom(size))
PY

start_qsfs "WebDAV at"
DAV=$(sed -nE 's/.*WebDAV at (http[^ ]+\/) .*/\1/p' "$OUT/qsfs.log" | head -1)
[[ -n $DAV ]] || die "no WebDAV address in $OUT/qsfs.log"
APP=$(cd "$WORK" && "$QSFS" --data qsfs-data user app-password bench bench | grep -E '^[a-z2-7]{5}(-[a-z2-7]{1,5}){5}$')
[[ -n $APP ]] || die "no app password"
HOME_DIR=$WORK/mnt/home/bench
export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_DAV_TYPE=webdav RCLONE_CONFIG_DAV_URL=$DAV \
    RCLONE_CONFIG_DAV_VENDOR=other RCLONE_CONFIG_DAV_USER=bench
RCLONE_CONFIG_DAV_PASS=$(rclone obscure "$APP")
export RCLONE_CONFIG_DAV_PASS


log "$SIZE_MIB MiB with curl; $N files of $SMALL bytes over 4 connections and with rclone; $ROUNDS rounds"
{
    echo "| round | big: cp in | PUT | PUT/cp | cp out | GET | GET/cp | small: cp in | PUT | PUT/cp | rclone in | cp out | GET | GET/cp | rclone out |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} | tee "$OUT/report.md"
AUTH="bench:$APP"
for r in $(seq 1 "$ROUNDS"); do
    settle_qsfs
    s_cp_in=$(seconds_of cp_in "$WORK/big" "$HOME_DIR/cp$r.bin")
    settle_qsfs
    s_put=$(seconds_of curl -sf -u "$AUTH" -T "$WORK/big" "${DAV}put$r.bin")
    settle_qsfs
    s_cp_out=$(seconds_of cp "$HOME_DIR/cp$r.bin" "$WORK/back/cp.bin")
    settle_qsfs
    s_get=$(seconds_of curl -sf -u "$AUTH" -o "$WORK/back/get.bin" "${DAV}put$r.bin")
    cmp -s "$WORK/big" "$WORK/back/get.bin" || die "GET round $r: content differs"
    settle_qsfs
    t_cp_in=$(seconds_of cp_tree_in "$WORK/small" "$HOME_DIR/tree-cp$r")
    settle_qsfs
    r_put=$(python3 "$ROOT/scripts/bench/dav-small.py" "$DAV" bench "$APP" put "$WORK/small" "put-small$r")
    settle_qsfs
    r_get=$(python3 "$ROOT/scripts/bench/dav-small.py" "$DAV" bench "$APP" get "$WORK/back/get-small" "put-small$r" "$WORK/small")
    diff -qr "$WORK/small" "$WORK/back/get-small" >/dev/null || die "GET small round $r: trees differ"
    settle_qsfs
    t_rc_in=$(seconds_of rclone copy --transfers 4 "$WORK/small" "dav:tree-rc$r")
    settle_qsfs
    t_cp_out=$(seconds_of cp -r "$HOME_DIR/tree-cp$r" "$WORK/back/tree-cp$r")
    settle_qsfs
    t_rc_out=$(seconds_of rclone copy --transfers 4 "dav:tree-rc$r" "$WORK/back/tree-rc$r")
    diff -qr "$WORK/small" "$WORK/back/tree-rc$r" >/dev/null || die "rclone round $r: trees differ"
    rm -rf "$WORK/back"/*
    awk -v r="$r" -v mib="$SIZE_MIB" -v n="$N" \
        -v a="$s_cp_in" -v b="$s_put" -v c="$s_cp_out" -v d="$s_get" \
        -v e="$t_cp_in" -v f="$t_rc_in" -v g="$t_cp_out" -v h="$t_rc_out" -v p="$r_put" -v q="$r_get" 'BEGIN {
        printf "| %d | %.0f MB/s | %.0f MB/s | %.2f | %.0f MB/s | %.0f MB/s | %.2f | %.0f/s | %.0f/s | %.2f | %.0f/s | %.0f/s | %.0f/s | %.2f | %.0f/s |\n",
            r, mib * 1.048576 / a, mib * 1.048576 / b, a / b, mib * 1.048576 / c, mib * 1.048576 / d, c / d,
            n / e, p, p * e / n, n / f, n / g, q, q * g / n, n / h }' | tee -a "$OUT/report.md"
done
if ((LARGE_DIR > 0)); then
    python3 - "$HOME_DIR/large" "$LARGE_DIR" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(n):
    os.close(os.open(f"{d}/f{i:06}", os.O_CREAT | os.O_WRONLY, 0o644))
PY
    sync -f "$HOME_DIR/large"
    settle_qsfs
    s_ls=$(seconds_of ls -l "$HOME_DIR/large")
    s_pf=$(seconds_of curl -sf -u "$AUTH" -X PROPFIND -H "Depth: 1" "${DAV}large/")
    hrefs=$(curl -sf -u "$AUTH" -X PROPFIND -H "Depth: 1" "${DAV}large/" | grep -o "<D:href>" | wc -l)
    echo "PROPFIND Depth: 1 of a folder of $LARGE_DIR files: $s_pf s ($hrefs hrefs); ls -l of it: $s_ls s" | tee -a "$OUT/report.md"
fi
log "report: $OUT/report.md"
