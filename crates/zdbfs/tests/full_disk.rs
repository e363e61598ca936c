//! zdbfs on a disk that fills up: `df` on the mount shows the disk's real room (not the
//! `size` option's 10 GiB), a write that finds no room fails with ENOSPC (not EIO), and
//! deleting files and reading the others keep working.

mod common;

use common::*;
use std::io::Write;
use test_kit::mount::SmallDisk;

#[test]
fn a_full_disk_is_enospc_and_deleting_and_reading_go_on() {
    let disk = SmallDisk::new(64);
    let dir = tempfile::tempdir().unwrap();
    let t = TestMount::at(&dir.path().join("mnt"), &disk.path.join("engine"));
    std::fs::write(t.p("kept"), b"kept before the disk filled").unwrap();

    let sf = statfs(&t.p(""));
    let total = sf.f_blocks * sf.f_bsize as u64;
    let free = sf.f_bavail * sf.f_bsize as u64;
    assert!(total <= 64 << 20, "df shows the disk, not 10 GiB: {total}");
    assert!(free > 16 << 20 && free <= total, "free {free} of {total}");

    // More than the disk holds, in 1 MiB writes of data that does not compress.
    let mut f = std::fs::File::create(t.p("big")).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut failure = None;
    for _ in 0..96 {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if let Err(e) = f.write_all(&chunk) {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.or_else(|| f.sync_all().err());
    let e = failure.expect("writing more than the disk holds failed");
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    drop(f);

    assert_eq!(
        std::fs::read(t.p("kept")).unwrap(),
        b"kept before the disk filled"
    );
    std::fs::remove_file(t.p("big")).unwrap();
    assert!(!t.p("big").exists());
    std::fs::create_dir(t.p("made on a full disk")).unwrap();
    assert_eq!(
        std::fs::read(t.p("kept")).unwrap(),
        b"kept before the disk filled"
    );
}
