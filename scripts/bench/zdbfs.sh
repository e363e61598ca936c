#!/usr/bin/env bash
# zdbfs (FUSE, in-process zdb engine) against a plain directory on the same local filesystem,
# measured with fio and tar in the same run:
#   seq write  SIZE of random data in 1 MiB blocks, then fsync(2) of the file
#   seq read   the same file, 1 MiB blocks, after a cache drop (and a remount for zdbfs)
#   rand read  4 KiB random reads of that file for RUNTIME s, after a cache drop (and remount)
#   rand write 4 KiB random writes into that file for RUNTIME s, then fsync(2)
#   tar        `tar -xf` of a tarball of TAR_SRC (default /usr/include), then sync
# plus the backend bytes (size of the engine directory) after the sequential write.
#
# Usage (as root: apt, drop_caches and FUSE mounts need it):
#   scripts/bench/zdbfs.sh                       # full run: SIZE=1G RUNTIME=30, ~3 min a round
#   SIZE=64M RUNTIME=5 scripts/bench/zdbfs.sh    # smoke test, ~1 min after the build
#
# Environment (all optional):
#   SIZE         sequential file size, fio syntax (default 1G); the random jobs use that file
#   RUNTIME      seconds for each random 4 KiB job (default 30)
#   RAND_DIRECT  1: random jobs with O_DIRECT on both sides (default), 0: buffered
#   TAR_SRC      tree to tar and extract (default /usr/include)
#   BASE         where the scratch dir goes; must be a disk filesystem, not tmpfs
#                (default: /var/tmp)
#   ROUNDS       repeat everything on fresh directories, report medians (default 1)
#   ZDBFS_OPTS   extra -o options for zdbfs (e.g. "threads=8,cachesize=2048")
#   URING        1: turn the kernel's fuse.enable_uring switch on for the run, so zdbfs takes
#                requests over io_uring (default); 0: leave the switch as it is
#   SKIP_BUILD=1 use the existing target/release/zdbfs
#   KEEP=1       keep the engine, mount and local data dirs (default: removed, logs kept)
#   OUT          directory for logs, fio JSON and report.md (default: <scratch>/logs)
#
# What is measured, precisely:
# - fio 1 job, ioengine=psync, iodepth 1, fallocate=none, refill_buffers (every block random).
#   Sequential jobs are buffered I/O. zdbfs opens files without FOPEN_DIRECT_IO (and without
#   FOPEN_KEEP_CACHE) and asks for the kernel's writeback cache (unless -o nowbcache): reads
#   go through the kernel's page cache (readahead sends FUSE READs of 256 KiB), write()s land
#   in it and reach zdbfs as FUSE WRITEs of up to 1 MiB (the kernel limits a FUSE mount's
#   dirty pages: bdi max_ratio 1, strict_limit). Rates = bytes (or I/Os) / (fio's
#   job_runtime + the time of the final fsync of the file, `sync FILE`, for the write jobs).
# - Random jobs: O_DIRECT on both sides by default. On zdbfs that only bypasses the kernel's
#   page cache: a 4 KiB read still goes through zdbfs's 128 KiB block cache and the engine's
#   buffered reads of its segment files.
# - Before every read phase: `sync; echo 3 > /proc/sys/vm/drop_caches` and, for zdbfs, an
#   unmount/mount cycle so its own block cache (default 128 MiB) is empty too: reads come from
#   the engine's files on disk, not from a cache.
# - tar: the tarball is made once and read once (warm) before both extracts; the timed part is
#   `tar -xf T -C DEST; sync DEST; sync` (sync DEST = fsync of the directory: on zdbfs that is a
#   complete flush plus fdatasync of the namespaces; the global sync then covers ext4).
# Every wait loop is bounded; zdbfs is stopped by umount (then SIGTERM, then umount -l) on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/packages.sh"
SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-30}
RAND_DIRECT=${RAND_DIRECT:-1}
TAR_SRC=${TAR_SRC:-/usr/include}
BASE=${BASE:-/var/tmp}
ZDBFS_OPTS=${ZDBFS_OPTS:-}
ROUNDS=${ROUNDS:-1}

LOG_TAG=bench
. "$ROOT/scripts/lib/common.sh"

need_root "apt-get, drop_caches, FUSE mount"
[[ -e /dev/fuse ]] || die "/dev/fuse missing"

# ---------------------------------------------------------------- tools
command -v fio >/dev/null 2>&1 || install_packages fio || die "fio missing"
for t in fio jq awk tar mountpoint du df; do
    command -v $t >/dev/null 2>&1 || die "$t not found"
done

ZDBFS=$TARGET_DIR/release/zdbfs
build_release -p zdbfs
[[ -x $ZDBFS ]] || die "$ZDBFS not found"

# ---------------------------------------------------------------- scratch on a real disk
mkdir -p "$BASE"
FSTYPE=$(df --output=fstype "$BASE" | tail -1 | tr -d ' ')
case $FSTYPE in
tmpfs | ramfs | overlay | fuse*) die "$BASE is on $FSTYPE; set BASE to a directory on a local disk" ;;
esac
# Space: the file twice (zdbfs + local) plus what the random writes add to the append-only
# backend (a 4 KiB write into a block not dirty in zdbfs's cache stores a whole 128 KiB block
# later: ~0.5 GiB per second of the job before dirty blocks were kept to coalesce; kept as
# the bound for a small dirty set, -o dirty=...).
SIZE_BYTES=$(numfmt --from=iec "${SIZE%[bB]}") || die "SIZE=$SIZE: not a size"
NEED=$((2 * SIZE_BYTES + RUNTIME * (1 << 30) + (1 << 30))) # per round: data is reset
FREE=$(($(df --output=avail -k "$BASE" | tail -1) * 1024))
((FREE > NEED)) || die "$BASE has $((FREE >> 30)) GiB free; this run needs about $((NEED >> 30)) GiB"
WORK=$(mktemp -d "$BASE/zdbfs-bench.XXXXXX")
OUT=${OUT:-$WORK/logs}
mkdir -p "$OUT"
ENGINE=$WORK/engine
MNT=$WORK/mnt
LOCAL=$WORK/local
TARBALL=$WORK/tree.tar
mkdir -p "$ENGINE" "$MNT" "$LOCAL"
ZLOG=$OUT/zdbfs-r1.log
ZPID=
log "scratch $WORK on $(df --output=source "$BASE" | tail -1) ($FSTYPE); logs in $OUT"

# ---------------------------------------------------------------- mount / unmount
mount_zdbfs() {
    local o="logfile=$ZLOG" i
    [[ -n $ZDBFS_OPTS ]] && o="$o,$ZDBFS_OPTS"
    mountpoint -q "$MNT" && die "$MNT already mounted"
    "$ZDBFS" "$MNT" --engine "$ENGINE" -o "$o" </dev/null >>"$OUT/zdbfs.stderr" 2>&1 &
    ZPID=$!
    for ((i = 0; i < 600; i++)); do # 60 s
        if mountpoint -q "$MNT" && [[ $(stat -f -c %T "$MNT" 2>/dev/null) == fuse* ]]; then
            return 0
        fi
        kill -0 "$ZPID" 2>/dev/null || {
            wait "$ZPID" || true
            ZPID=
            die "zdbfs exited before the mount was ready (see $ZLOG, $OUT/zdbfs.stderr)"
        }
        sleep 0.1
    done
    die "zdbfs not mounted after 60 s"
}

# wait_gone PID TENTHS: poll until PID has exited (bounded); 0 if gone
wait_gone() {
    local p=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        kill -0 "$p" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

umount_zdbfs() {
    [[ -n $ZPID ]] || return 0
    local p=$ZPID rc=0
    ZPID=
    if mountpoint -q "$MNT"; then
        umount "$MNT" 2>/dev/null || log "umount $MNT failed (busy?); sending SIGTERM"
    fi
    if ! wait_gone "$p" 1200; then # 120 s for the final flush
        log "zdbfs $p still running 120 s after umount; SIGTERM"
        kill -TERM "$p" 2>/dev/null || true
        if ! wait_gone "$p" 300; then
            log "zdbfs $p ignored SIGTERM for 30 s; umount -l and SIGKILL"
            umount -l "$MNT" 2>/dev/null || true
            kill -KILL "$p" 2>/dev/null || true
            wait_gone "$p" 100 || true
        fi
    fi
    wait "$p" 2>/dev/null || rc=$?
    if mountpoint -q "$MNT"; then
        umount -l "$MNT" 2>/dev/null || true
    fi
    ((rc == 0)) || log "zdbfs exited with status $rc (see $ZLOG)"
    return $rc
}

cleanup() {
    local rc=$?
    umount_zdbfs || true
    [[ ${URING_RESTORE:-0} == 1 ]] && echo N >"$URING_SWITCH"
    if [[ ${KEEP:-0} != 1 && -n ${WORK:-} ]]; then
        mountpoint -q "$MNT" || rm -rf "$ENGINE" "$LOCAL" "$TARBALL" "$MNT"
    fi
    ((rc == 0)) || log "failed (status $rc); logs in $OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- FUSE over io_uring
URING_SWITCH=/sys/module/fuse/parameters/enable_uring
if [[ ${URING:-1} == 1 && -w $URING_SWITCH && $(cat "$URING_SWITCH") != Y ]]; then
    log "turning on $URING_SWITCH for this run (restored at exit)"
    echo Y >"$URING_SWITCH"
    URING_RESTORE=1
fi

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# ---------------------------------------------------------------- zdbfs internals per phase
# SIGUSR1 makes zdbfs log its counters; CPU time from /proc/PID/stat (utime+stime).
CLK_TCK=$(getconf CLK_TCK)
# metrics -> "reads writes bytes_read bytes_written hits misses blocks_stored block_bytes cpu_ticks"
zmetrics() {
    [[ -n $ZPID ]] || {
        echo "0 0 0 0 0 0 0 0 0"
        return
    }
    local before i line cpu
    before=$(grep -c 'metrics=' "$ZLOG" 2>/dev/null || true)
    kill -USR1 "$ZPID"
    for ((i = 0; i < 50; i++)); do # 5 s
        (($(grep -c 'metrics=' "$ZLOG" 2>/dev/null || true) > before)) && break
        sleep 0.1
    done
    line=$(grep 'metrics=' "$ZLOG" | tail -1 || true)
    cpu=$(awk '{print $14 + $15}' "/proc/$ZPID/stat" 2>/dev/null || echo 0)
    local f out=""
    for f in read write bytes_read bytes_written cache_hits cache_misses blocks_stored block_bytes_stored; do
        out="$out $(grep -o "[^_]$f: [0-9]*" <<<"$line" | grep -o '[0-9]*$' || echo 0)"
    done
    echo "$out $cpu"
}
INTERNALS=()
# record_internals ROUND PHASE "before" "after" SECONDS
record_internals() {
    local phase=$2 wall=$5
    read -r r0 w0 br0 bw0 h0 m0 bs0 bb0 c0 <<<"$3"
    read -r r1 w1 br1 bw1 h1 m1 bs1 bb1 c1 <<<"$4"
    INTERNALS+=("$(awk -v p="$1 | $phase" -v r=$((r1 - r0)) -v w=$((w1 - w0)) -v br=$((br1 - br0)) \
        -v bw=$((bw1 - bw0)) -v h=$((h1 - h0)) -v m=$((m1 - m0)) -v bs=$((bs1 - bs0)) \
        -v bb=$((bb1 - bb0)) -v c=$((c1 - c0)) -v tck="$CLK_TCK" -v wall="$wall" 'BEGIN {
        printf "| %s | %d | %s | %d | %s | %d / %d | %.1f MiB | %.1f s (%.0f%%) |", p, r,
            (r ? sprintf("%.0f KiB", br / r / 1024) : "-"), w,
            (w ? sprintf("%.1f KiB", bw / w / 1024) : "-"), h, m, bb / 1048576,
            c / tck, 100 * c / tck / wall }')")
}

# ---------------------------------------------------------------- fio
now() { date +%s.%N; }
FIO_COMMON=(--ioengine=psync --iodepth=1 --numjobs=1 --fallocate=none --refill_buffers
    --randrepeat=0 --group_reporting --output-format=json)
declare -A RATE IOPS SECS
# fio_job SIDE DIR NAME FSYNC args... ; sets RATE[NAME/SIDE] (MB/s), IOPS[..], SECS[..].
# Time = fio's job_runtime (the I/O itself, without fio's ~0.3 s start-up) plus, with FSYNC=1,
# the time of an fsync(2) of the file right after fio exits (`sync FILE`). fio's own end_fsync
# is not used because fio leaves its time out of job_runtime and bandwidth.
fio_job() {
    local side=$1 dir=$2 name=$3 fsync=$4
    shift 4
    local json=$OUT/r$R-$name-$side.json t0 t1 m0 m1 w0 w1 fs=0 k=$name/$side/$R
    m0=$([[ $side == zdbfs ]] && zmetrics || echo "0 0 0 0 0 0 0 0 0")
    w0=$(now)
    timeout 1800 fio --name="$name" --directory="$dir" --filename=bench.dat --size="$SIZE" \
        "${FIO_COMMON[@]}" "$@" >"$json" 2>"$OUT/r$R-$name-$side.err" ||
        die "fio $name on $side failed (see $OUT/r$R-$name-$side.err)"
    if [[ $fsync == 1 ]]; then
        t0=$(now)
        timeout 600 sync "$dir/bench.dat" || die "fsync of $dir/bench.dat failed"
        t1=$(now)
        fs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
    fi
    w1=$(now)
    local bytes ios run
    bytes=$(jq '[.jobs[0].read.io_bytes, .jobs[0].write.io_bytes] | add' "$json")
    ios=$(jq '[.jobs[0].read.total_ios, .jobs[0].write.total_ios] | add' "$json")
    run=$(jq '.jobs[0].job_runtime / 1000' "$json")
    SECS[$k]=$(awk -v a="$run" -v b="$fs" 'BEGIN{printf "%.3f", a + b}')
    RATE[$k]=$(awk -v b="$bytes" -v w="${SECS[$k]}" 'BEGIN{printf "%.1f", b / w / 1e6}')
    IOPS[$k]=$(awk -v n="$ios" -v w="${SECS[$k]}" 'BEGIN{printf "%.0f", n / w}')
    log "round $R $name on $side: $bytes bytes, $ios I/Os; fio runtime ${run} s + fsync ${fs} s:" \
        "${RATE[$k]} MB/s, ${IOPS[$k]} IOPS (fio process wall time" \
        "$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.2f", b - a}') s)"
    if [[ $side == zdbfs ]]; then
        m1=$(zmetrics)
        record_internals "$R" "$name" "$m0" "$m1" "${SECS[$k]}"
    fi
}

# fresh_reads: the state before every read phase
fresh_reads() {
    umount_zdbfs || die "zdbfs did not stop cleanly"
    drop_caches
    mount_zdbfs
}

RAND_OPTS=(--bs=4k --time_based --runtime="$RUNTIME")
[[ $RAND_DIRECT == 1 ]] && RAND_OPTS+=(--direct=1)

log "making the tarball of $TAR_SRC"
tar -cf "$TARBALL" -C "$(dirname "$TAR_SRC")" "$(basename "$TAR_SRC")" 2>"$OUT/tar-create.err" ||
    die "tar -cf of $TAR_SRC failed"
NFILES=$(tar -tf "$TARBALL" | wc -l)
TARBYTES=$(stat -c %s "$TARBALL")

declare -A TART BACKEND BACKEND_ALLOC BACKEND_END WRITTEN
tar_job() { # side dest
    local side=$1 dest=$2 t0 t1 m0 m1
    mkdir -p "$dest"
    drop_caches
    cat "$TARBALL" >/dev/null # the source is warm for both sides
    m0=$([[ $side == zdbfs ]] && zmetrics || echo "0 0 0 0 0 0 0 0 0")
    t0=$(now)
    timeout 1800 tar -xf "$TARBALL" -C "$dest" || die "tar -xf into $dest failed"
    sync "$dest"
    sync
    t1=$(now)
    TART[$side/$R]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
    log "round $R tar extract on $side: ${TART[$side/$R]} s"
    if [[ $side == zdbfs ]]; then
        m1=$(zmetrics)
        record_internals "$R" tar "$m0" "$m1" "${TART[$side/$R]}"
    fi
}

# One round: fresh engine dir and local dir, every job on zdbfs then on the local dir.
run_round() {
    ZLOG=$OUT/zdbfs-r$R.log
    rm -rf "$ENGINE" "$LOCAL"
    mkdir -p "$ENGINE" "$LOCAL"
    mount_zdbfs
    log "round $R/$ROUNDS: zdbfs pid $ZPID mounted on $MNT (engine $ENGINE)"
    if [[ $RAND_DIRECT == 1 ]]; then
        # O_DIRECT must work on both sides, or the random rows would compare different things.
        local d
        for d in "$MNT" "$LOCAL"; do
            dd if=/dev/zero of="$d/odirect.probe" bs=4k count=1 oflag=direct status=none 2>/dev/null ||
                die "O_DIRECT not supported on $d; rerun with RAND_DIRECT=0"
            rm -f "$d/odirect.probe"
        done
    fi

    # 1. sequential write (fsync at the end)
    drop_caches
    fio_job zdbfs "$MNT" seqwrite 1 --rw=write --bs=1M
    drop_caches
    fio_job local "$LOCAL" seqwrite 1 --rw=write --bs=1M
    WRITTEN[$R]=$(jq '.jobs[0].write.io_bytes' "$OUT/r$R-seqwrite-zdbfs.json")
    BACKEND[$R]=$(du -sb "$ENGINE" | cut -f1)
    BACKEND_ALLOC[$R]=$(($(du -sk "$ENGINE" | cut -f1) * 1024))
    log "round $R backend after the sequential write: ${BACKEND[$R]} bytes" \
        "(allocated ${BACKEND_ALLOC[$R]}) for ${WRITTEN[$R]} written"
    du -ab "$ENGINE" >"$OUT/r$R-engine-after-seqwrite.txt"

    # 2. sequential read (cold: caches dropped, zdbfs remounted)
    fresh_reads
    fio_job zdbfs "$MNT" seqread 0 --rw=read --bs=1M
    drop_caches
    fio_job local "$LOCAL" seqread 0 --rw=read --bs=1M

    # 3. random 4 KiB read, then write, over the same file
    fresh_reads
    fio_job zdbfs "$MNT" randread 0 --rw=randread "${RAND_OPTS[@]}"
    drop_caches
    fio_job local "$LOCAL" randread 0 --rw=randread "${RAND_OPTS[@]}"
    drop_caches
    fio_job zdbfs "$MNT" randwrite 1 --rw=randwrite "${RAND_OPTS[@]}"
    drop_caches
    fio_job local "$LOCAL" randwrite 1 --rw=randwrite "${RAND_OPTS[@]}"
    BACKEND_END[$R]=$(du -sb "$ENGINE" | cut -f1)

    # 4. tar extract
    tar_job zdbfs "$MNT/tree"
    tar_job local "$LOCAL/tree"
    local n_mnt n_loc
    n_mnt=$(find "$MNT/tree" | wc -l)
    n_loc=$(find "$LOCAL/tree" | wc -l)
    [[ $n_mnt == "$n_loc" ]] || die "extracted trees differ: $n_mnt entries on zdbfs, $n_loc local"
    diff -r --no-dereference "$MNT/tree" "$LOCAL/tree" >/dev/null 2>&1 ||
        die "extracted trees differ in content"
    umount_zdbfs || die "zdbfs did not stop cleanly"
    grep -q 'clean shutdown' "$ZLOG" || die "no clean shutdown in $ZLOG"
}

for ((R = 1; R <= ROUNDS; R++)); do
    run_round
done

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { # value op goal
    awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN{ ok = (op == ">=") ? v >= g : (op == "<=") ? v <= g : v < g; print ok ? "yes" : "**no**" }'
}
median() { tr " " "\n" | grep . | sort -g | awk '{a[NR]=$1} END{ if (NR % 2) printf "%g\n", a[(NR+1)/2]; else printf "%g\n", (a[NR/2]+a[NR/2+1])/2 }'; }
# col ARRAY KEY-PREFIX -> the per-round values, space-separated
col() {
    local -n arr=$1
    local r out=""
    for ((r = 1; r <= ROUNDS; r++)); do out="$out ${arr[$2$r]}"; done
    echo $out
}
# per-round ratios of two columns
ratios() {
    local a=($1) b=($2) i out=""
    for i in "${!a[@]}"; do out="$out $(ratio "${a[$i]}" "${b[$i]}")"; done
    echo $out
}
gib() { awk -v b="$1" 'BEGIN{printf "%.3f GiB", b / 2^30}'; }
REPORT=$OUT/report.md
{
    mode=$([[ $RAND_DIRECT == 1 ]] && echo "O_DIRECT" || echo "buffered")
    echo "fio $(fio --version | sed 's/^fio-//'), SIZE=$SIZE, RUNTIME=${RUNTIME}s, random jobs $mode, ROUNDS=$ROUNDS" \
        "(median of the rounds; the ratio column is the median of the per-round ratios);" \
        "zdbfs -o ${ZDBFS_OPTS:-<defaults>} on the in-process engine, requests over" \
        "$(grep -q 'uring=true' "$OUT"/zdbfs-r*.log 2>/dev/null && echo io_uring || echo /dev/fuse)" \
        "(fuse.enable_uring=$(cat "$URING_SWITCH" 2>/dev/null || echo absent)); local = $FSTYPE directory on the same disk."
    echo
    echo "| test | zdbfs | local | zdbfs/local | per-round ratios | goal | met |"
    echo "|---|---:|---:|---:|---|---|---|"
    for j in seqwrite seqread randread randwrite; do
        case $j in
        seqwrite) label="seq write 1 MiB + fsync" unit="MB/s" goal=0.8 ;;
        seqread) label="seq read 1 MiB (cold)" unit="MB/s" goal=0.8 ;;
        randread) label="rand read 4 KiB (cold)" unit="IOPS" goal=0.5 ;;
        randwrite) label="rand write 4 KiB + fsync" unit="IOPS" goal=0.5 ;;
        esac
        if [[ $unit == MB/s ]]; then
            z=$(col RATE "$j/zdbfs/") l=$(col RATE "$j/local/")
        else
            z=$(col IOPS "$j/zdbfs/") l=$(col IOPS "$j/local/")
        fi
        rs=$(ratios "$z" "$l")
        r=$(median <<<"$rs")
        echo "| $label | $(median <<<"$z") $unit | $(median <<<"$l") $unit | $r | $rs | >= $goal | $(verdict "$r" ">=" $goal) |"
    done
    z=$(col TART "zdbfs/") l=$(col TART "local/")
    rs=$(ratios "$z" "$l")
    r=$(median <<<"$rs")
    echo "| tar -xf + sync ($NFILES entries, $((TARBYTES >> 20)) MiB) | $(median <<<"$z") s | $(median <<<"$l") s | ${r}x time | $rs | <= 2.0x | $(verdict "$r" "<=" 2.0) |"
    b=$(col BACKEND "") w=$(col WRITTEN "")
    rs=$(ratios "$b" "$w")
    r=$(median <<<"$rs")
    echo "| backend bytes after seq write | $(gib "$(median <<<"$b")") | $(gib "$(median <<<"$w")") written | $r per byte | $rs | < 1.10 | $(verdict "$r" "<" 1.1) |"
    echo
    echo "Backend (du -sb of the engine dir) after the random writes too, per round: $(for x in $(col BACKEND_END ""); do gib "$x"; echo -n "; "; done)" \
        "allocated after the seq write: $(for x in $(col BACKEND_ALLOC ""); do gib "$x"; echo -n "; "; done)"
    echo "Rates are bytes (or I/Os) / (fio job_runtime + the fsync of the file after the write jobs). Raw fio JSON: $OUT."
    echo
    echo "Per round, zdbfs then local: seq write MB/s $(col RATE seqwrite/zdbfs/) | $(col RATE seqwrite/local/);" \
        "seq read MB/s $(col RATE seqread/zdbfs/) | $(col RATE seqread/local/);" \
        "rand read IOPS $(col IOPS randread/zdbfs/) | $(col IOPS randread/local/);" \
        "rand write IOPS $(col IOPS randwrite/zdbfs/) | $(col IOPS randwrite/local/);" \
        "tar s $(col TART zdbfs/) | $(col TART local/)."
    echo
    echo "zdbfs internals per phase (counters logged on SIGUSR1; CPU = zdbfs user+sys, % of the phase's time):"
    echo
    echo "| round | phase | FUSE reads | avg read | FUSE writes | avg write | block cache hits / misses | blocks stored | zdbfs CPU |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${INTERNALS[@]}"
} >"$REPORT"
cat "$REPORT"
