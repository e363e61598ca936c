//! qsfs with its cache on a disk smaller than its cache limit (the limit says 2 GiB, the disk
//! holds 64 MiB): `df` on the mount shows the disk, a write that finds no room fails with
//! ENOSPC (never EIO) while reads go on, stored segments are evicted to give the disk its
//! room back by themselves, `qsfs compact` works on the full disk, and with no room left for
//! fetching, evicted files are still read, range by range from the backends.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use test_kit::mount::SmallDisk;

const DISK_MIB: u32 = 64;

fn available(path: &Path) -> u64 {
    service_kit::sys::space(path).unwrap().available
}

/// Random bytes that do not compress, 1 MiB at a time, until `limit` MiB or an error.
fn fill(path: &Path, limit: usize) -> Option<std::io::Error> {
    let mut f = std::fs::File::create(path).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..limit {
        for b in &mut chunk {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if let Err(e) = f.write_all(&chunk) {
            return Some(e);
        }
    }
    f.sync_all().err()
}

#[test]
fn a_full_cache_disk_refuses_writes_keeps_reads_and_gets_its_room_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let disk = SmallDisk::new(DISK_MIB);
    std::fs::create_dir_all(root.join("qsfs-data")).unwrap();
    std::os::unix::fs::symlink(&disk.path, root.join("qsfs-data/cache")).unwrap();
    let q = Qsfs::start(
        root,
        &["--mountpoint", "mnt", "--segment-mib", "4"],
        "run.log",
    );
    let sf = service_kit::sys::space(&q.mount).unwrap();
    assert!(
        sf.total <= u64::from(DISK_MIB) << 20,
        "df on the mount shows the disk, not the cache limit: {sf:?}"
    );
    write_files(&q.mount, 0..12, true);

    // More than the disk holds: refused with ENOSPC, and what was there still reads.
    let e = fill(&q.mount.join("big"), 2 * DISK_MIB as usize).expect("the disk filled");
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    read_all_exact(&q.mount, 0..12);

    // The stored part of "big" is evicted by itself until a fifth of the disk is free.
    wait::until_or(
        "eviction to give the disk room back",
        Duration::from_secs(120),
        || available(&disk.path) > 12 << 20,
        || qsfs_cmd(root, &["status"]),
    );
    std::fs::remove_file(q.mount.join("big")).unwrap();
    let out = qsfs_cmd(root, &["compact"]);
    assert!(out.contains("compact"), "{out}");
    assert!(
        fill(&q.mount.join("after"), 4).is_none(),
        "a write after the room came back"
    );

    // Everything evicted, then the disk filled from outside: no room to fetch a segment
    // back, and the files still read exactly.
    qsfs_cmd(root, &["rotate"]);
    qsfs_cmd(root, &["evict"]);
    let left = available(&disk.path).saturating_sub(2 << 20) / (1 << 20);
    let filler = disk.path.join("filler");
    let _ = fill(&filler, left as usize);
    read_all_exact(&q.mount, 0..12);
    let status: serde_json::Value =
        serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
    let put_off = status["offload"]["fetches_without_room"].as_u64().unwrap();
    assert!(
        put_off > 0,
        "no fetch was put off for lack of room: {status}"
    );
    // A fetch that fails for lack of room is what a sequential read would see as EIO.
    let failed = status["offload"]["fetch_failures"].as_u64().unwrap();
    assert_eq!(failed, 0, "fetches were tried without room: {status}");
    std::fs::remove_file(&filler).unwrap();
    q.stop(false);
}
