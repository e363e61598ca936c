//! 0-db-fs's ioctls on a real mount: statistics (`stats_t` v2) and snapshot (flush).

mod common;

use std::os::fd::AsRawFd;

use common::TestMount;
use stack_abi::zdbfs_stats::{
    FIELDS as STATS_FIELDS, IOCTL_SNAPSHOT, IOCTL_STATISTICS, LEN as STATS_LEN,
};

fn field(buf: &[u8], name: &str) -> u64 {
    let i = STATS_FIELDS.iter().position(|f| *f == name).unwrap();
    u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap())
}

#[test]
fn statistics_and_snapshot_answer_like_0db_fs() {
    let m = TestMount::new();
    std::fs::write(m.p("file"), vec![5u8; 300_000]).unwrap();
    // Out of the kernel's page cache (which keeps a file's pages across opens), so that the
    // read below reaches the server.
    let f = std::fs::File::open(m.p("file")).unwrap();
    f.sync_all().unwrap();
    // SAFETY: plain advice on an open descriptor.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    assert_eq!(std::fs::read(m.p("file")).unwrap().len(), 300_000);
    std::fs::create_dir(m.p("dir")).unwrap();
    std::os::unix::fs::symlink("file", m.p("dir/link")).unwrap();
    std::fs::hard_link(m.p("file"), m.p("dir/hard")).unwrap();
    std::fs::rename(m.p("dir/hard"), m.p("dir/moved")).unwrap();
    std::fs::remove_file(m.p("dir/moved")).unwrap();
    std::fs::remove_file(m.p("dir/link")).unwrap();
    assert_eq!(std::fs::read_dir(m.p("dir")).unwrap().count(), 0);
    std::fs::remove_dir(m.p("dir")).unwrap();

    let root = std::fs::File::open(m.p("")).unwrap();
    let mut buf = [0u8; STATS_LEN];
    // SAFETY: `buf` is as large as the size the command encodes; the fd is open.
    let r = unsafe { libc::ioctl(root.as_raw_fd(), IOCTL_STATISTICS.into(), buf.as_mut_ptr()) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    assert_eq!(field(&buf, "version"), 2);
    assert!(field(&buf, "write_bytes") >= 300_000);
    assert!(field(&buf, "syscall_write") >= 1);
    // Each of these kinds of request was made at least once above.
    let kinds = [
        "syscall_create",
        "syscall_open",
        "syscall_read",
        "syscall_write",
        "syscall_mkdir",
        "syscall_symlink",
        "syscall_link",
        "syscall_rename",
        "syscall_unlink",
        "syscall_readdir",
        "syscall_rmdir",
    ];
    for k in kinds {
        assert!(field(&buf, k) >= 1, "{k} counted");
    }
    let counted: u64 = STATS_FIELDS
        .iter()
        .filter(|f| f.starts_with("syscall_"))
        .map(|f| field(&buf, f))
        .sum();
    assert!(
        field(&buf, "fuse_reqs") > counted,
        "every request counts in fuse_reqs"
    );
    assert_eq!(field(&buf, "syscall_ioctl"), 1, "this very ioctl");

    let mut now = 0u64;
    // SAFETY: as above, 8 bytes for an 8-byte command.
    let r = unsafe { libc::ioctl(root.as_raw_fd(), IOCTL_SNAPSHOT.into(), &raw mut now) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(unix) < 60, "snapshot answers the time: {now}");
    // An unknown command is refused.
    // SAFETY: `root` is open and `now` is a live u64 the size the command encodes.
    let r = unsafe { libc::ioctl(root.as_raw_fd(), 0x8008_4563u32.into(), &raw mut now) };
    assert_eq!(r, -1);
}
