#!/usr/bin/env bash
# The S3 gateway of qsfs on its embedded default against `cp` onto and off the same mount,
# in the same run: one large object (SIZE_MIB, 1 GiB) put and got with curl (one streamed
# request, SigV4) and with boto3's managed multipart transfer (8 MiB parts, 4 threads) and
# s3-small.py's own light multipart upload (the same parts, unsigned payloads: the
# server's cost without boto3's), and N small objects (2,000 x 64 KiB) put and got over 4 connections (s3-small.py: a light
# SigV4 client; boto3's own cost per request is above the server's).
# Every PUT is acknowledged once its file is fsync'ed and renamed into place; `cp` ends
# with one `sync -f`. MB/s and objects/s, ROUNDS rounds. qsfs's anonymous memory (RssAnon:
# its heap, not the cache files it maps) is sampled every 0.2 s; the peak is reported.
# BIG_GIB=5 adds one multipart upload and download of that many GiB, and its peak. Before
# each measured transfer qsfs is let finish uploading the previous one (SETTLE=0: not).
#
# Usage (root: FUSE mount):  scripts/bench/s3.sh      # SIZE_MIB=1024 N=2000 SMALL=65536 ROUNDS=3
# Environment: SIZE_MIB, N, SMALL, ROUNDS, BIG_GIB, BASE (scratch, default /var/tmp),
# SKIP_BUILD=1, OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
N=${N:-2000}
SMALL=${SMALL:-65536}
ROUNDS=${ROUNDS:-3}
BIG_GIB=${BIG_GIB:-0}
BASE=${BASE:-/var/tmp}
LOG_TAG=s3-bench
. "$ROOT/scripts/lib/common.sh"
need_root "FUSE mount"
for c in curl python3; do command -v $c >/dev/null || die "$c needed"; done
python3 -c 'import boto3' 2>/dev/null || die "boto3 needed (pip install boto3)"

QSFS=$TARGET_DIR/release/qsfs
build_release -p qsfs
WORK=$(mktemp -d "$BASE/qsfs-s3-bench.XXXXXX")
OUT=${OUT:-$WORK/logs}
mkdir -p "$OUT" "$WORK/small" "$WORK/back"
. "$ROOT/scripts/lib/qsfs.sh"
cleanup() {
    stop_qsfs
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK/qsfs-data" "$WORK/small" "$WORK/back" "$WORK/big" "$WORK/huge" "$WORK/mnt"
}
trap cleanup EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom >"$WORK/big"
python3 - "$WORK/small" "$N" "$SMALL" <<'PY'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    open(f"{d}/f{i:05}.bin", "wb").write(os.urandom(size))
PY

start_qsfs "S3 at"
S3=$(sed -nE 's/.*S3 at (http[^ ]+)\/ .*/\1/p' "$OUT/qsfs.log" | head -1)
[[ -n $S3 ]] || die "no S3 address in $OUT/qsfs.log"
KEYS=$(cd "$WORK" && "$QSFS" --data qsfs-data user access-key bench bench)
KEY=$(sed -nE 's/^access key id: +//p' <<<"$KEYS")
SECRET=$(sed -nE 's/^secret access key: +//p' <<<"$KEYS")
[[ -n $KEY && -n $SECRET ]] || die "no access key"
BUCKET_DIR=$WORK/mnt/home/bench/bench
mkdir -p "$BUCKET_DIR"
# A proxy's CA bundle in the environment is of no use on loopback.
unset AWS_CA_BUNDLE
small() { python3 "$ROOT/scripts/bench/s3-small.py" "$S3" "$KEY" "$SECRET" "$@"; }
# curl 7.88 signs, but does not send the payload's hash S3 asks for: it goes unsigned.
sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
# Sample qsfs's RssAnon into $OUT/peak-$1 (KiB) until stop_sampling.
SAMPLER=
sample_anon() {
    echo 0 >"$OUT/peak-$1"
    (max=0; while kill -0 "$QPID" 2>/dev/null; do
        v=$(awk '/^RssAnon/ { print $2 }' "/proc/$QPID/status")
        if (( v > max )); then max=$v; echo "$max" >"$OUT/peak-$1"; fi
        sleep 0.2
    done) &
    SAMPLER=$!
}
peak_mib() { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; echo $(( $(cat "$OUT/peak-$1") / 1024 )); }


log "$SIZE_MIB MiB with curl and boto3 multipart; $N objects of $SMALL bytes over 4 connections; $ROUNDS rounds"
{
    echo "| round | big: cp in | curl PUT | PUT/cp | multipart in | /cp | light multipart in | /cp | cp out | curl GET | GET/cp | multipart out | /cp | small: cp in | PUT | PUT/cp | cp out | GET | GET/cp |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} | tee "$OUT/report.md"
sample_anon rounds
for r in $(seq 1 "$ROUNDS"); do
    settle_qsfs
    s_cp_in=$(seconds_of cp_in "$WORK/big" "$BUCKET_DIR/cp$r.bin")
    settle_qsfs
    s_put=$(seconds_of curl -sf "${sig[@]}" -T "$WORK/big" "$S3/bench/put$r.bin")
    settle_qsfs
    m_in=$(small upload "$WORK/big" bench "multi$r.bin")
    settle_qsfs
    l_in=$(small parts "$WORK/big" bench "light$r.bin")
    settle_qsfs
    s_cp_out=$(seconds_of cp "$BUCKET_DIR/cp$r.bin" "$WORK/back/cp.bin")
    settle_qsfs
    s_get=$(seconds_of curl -sf "${sig[@]}" -o "$WORK/back/get.bin" "$S3/bench/put$r.bin")
    cmp -s "$WORK/big" "$WORK/back/get.bin" || die "GET round $r: content differs"
    settle_qsfs
    m_out=$(small download "$WORK/back/multi.bin" bench "multi$r.bin")
    cmp -s "$WORK/big" "$WORK/back/multi.bin" || die "multipart round $r: content differs"
    settle_qsfs
    t_cp_in=$(seconds_of cp_tree_in "$WORK/small" "$BUCKET_DIR/tree-cp$r")
    settle_qsfs
    r_put=$(small put "$WORK/small" bench "small$r")
    settle_qsfs
    t_cp_out=$(seconds_of cp -r "$BUCKET_DIR/tree-cp$r" "$WORK/back/tree-cp$r")
    settle_qsfs
    r_get=$(small get "$WORK/back/get-small" bench "small$r" "$WORK/small")
    diff -qr "$WORK/small" "$WORK/back/get-small" >/dev/null || die "GET small round $r: trees differ"
    rm -rf "$WORK/back"/*
    awk -v r="$r" -v mib="$SIZE_MIB" -v n="$N" -v a="$s_cp_in" -v b="$s_put" -v mi="$m_in" -v li="$l_in" \
        -v c="$s_cp_out" -v d="$s_get" -v mo="$m_out" -v e="$t_cp_in" -v p="$r_put" \
        -v g="$t_cp_out" -v q="$r_get" 'BEGIN {
        cin = mib * 1.048576 / a; cout = mib * 1.048576 / c
        printf "| %d | %.0f MB/s | %.0f MB/s | %.2f | %.0f MB/s | %.2f | %.0f MB/s | %.2f | %.0f MB/s | %.0f MB/s | %.2f | %.0f MB/s | %.2f | %.0f/s | %.0f/s | %.2f | %.0f/s | %.0f/s | %.2f |\n",
            r, cin, mib * 1.048576 / b, a / b, mi, mi / cin, li, li / cin, cout, mib * 1.048576 / d, c / d, mo, mo / cout,
            n / e, p, p * e / n, n / g, q, q * g / n }' | tee -a "$OUT/report.md"
done
echo "qsfs peak anonymous memory during the rounds: $(peak_mib rounds) MiB" | tee -a "$OUT/report.md"
if (( BIG_GIB > 0 )); then
    head -c $((BIG_GIB << 30)) /dev/urandom >"$WORK/huge"
    sample_anon huge
    m_in=$(small upload "$WORK/huge" bench huge.bin)
    m_out=$(small download "$WORK/back/huge" bench huge.bin)
    cmp -s "$WORK/huge" "$WORK/back/huge" || die "$BIG_GIB GiB: content differs"
    echo "$BIG_GIB GiB multipart: in $m_in MB/s, out $m_out MB/s; qsfs peak anonymous memory $(peak_mib huge) MiB" | tee -a "$OUT/report.md"
fi
log "report: $OUT/report.md"
