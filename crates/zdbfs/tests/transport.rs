//! Both ways the kernel's requests reach zdbfs: `/dev/fuse` always, FUSE over io_uring when
//! the kernel offers it (its `fuse.enable_uring` switch on, which zdbfs as root turns on;
//! `scripts/test` runs the suite over each). The same work gives the same results over each.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use zdbfs::options::Uring;

/// Whether a default mount gets FUSE over io_uring: the kernel has the switch, and it is on
/// or zdbfs runs as root (and so turns it on).
fn default_mount_uses_uring() -> bool {
    std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        // SAFETY: geteuid has no preconditions.
        .is_ok_and(|v| v.trim() == "Y" || unsafe { libc::geteuid() } == 0)
}

/// Files, a directory listing, a rename, attributes, xattrs, a symlink, an unlink, a
/// remount: what each transport must carry identically.
fn workload(t: &mut TestMount) {
    std::fs::create_dir(t.p("d")).unwrap();
    for i in 0..200 {
        std::fs::write(t.p(&format!("d/f{i}")), format!("file {i}").repeat(i + 1)).unwrap();
    }
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(t.p("big"), &big).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(t.p("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 200);
    std::fs::rename(t.p("d/f7"), t.p("moved")).unwrap();
    std::fs::set_permissions(t.p("moved"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("moved", t.p("link")).unwrap();
    std::fs::remove_file(t.p("d/f8")).unwrap();
    assert_eq!(
        setxattr(&t.p("moved"), "user.k", b"value"),
        0,
        "setxattr: errno {}",
        errno()
    );
    t.remount();
    assert_eq!(std::fs::read(t.p("big")).unwrap(), big);
    assert_eq!(std::fs::read(t.p("link")).unwrap(), b"file 7".repeat(8));
    assert_eq!(
        std::fs::metadata(t.p("moved")).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(std::fs::read_dir(t.p("d")).unwrap().count(), 198);
    assert_eq!(
        getxattr(&t.p("moved"), "user.k").as_deref(),
        Some(&b"value"[..])
    );
    assert_eq!(
        io_errno(std::fs::metadata(t.p("d/f8"))),
        libc::ENOENT,
        "an unlinked name stays gone"
    );
}

#[test]
fn requests_over_dev_fuse_and_over_io_uring_give_the_same_results() {
    for (uring, expect_ring) in [
        (Uring::Off, false),
        (Uring::Auto, default_mount_uses_uring()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TestMount::at(&dir.path().join("mnt"), &dir.path().join("engine"));
        t.unmount();
        t.uring = uring;
        t.mount();
        assert_eq!(t.mounted().uses_uring(), expect_ring, "{uring:?}");
        workload(&mut t);
        assert_eq!(
            t.mounted().uses_uring(),
            expect_ring,
            "{uring:?} after remount"
        );
        assert!(t.mounted().fs().metrics().snapshot().requests > 0);
    }
}

fn setxattr(p: &std::path::Path, name: &str, value: &[u8]) -> i32 {
    let (p, n) = (cstr(p), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid C strings and a buffer of the given length.
    unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    }
}

fn getxattr(p: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (cstr(p), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: as above; the kernel writes at most `buf.len()` bytes.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}
