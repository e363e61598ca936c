//! POSIX battery on a real mount: results and errno of every ordinary operation.

mod common;

use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};

#[test]
fn files_create_open_flags_read_write() {
    let t = TestMount::new();
    let f = t.p("a.txt");
    fs::write(&f, b"hello world").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hello world");
    // O_EXCL on an existing file.
    let r = OpenOptions::new().write(true).create_new(true).open(&f);
    assert_eq!(io_errno(r), libc::EEXIST);
    // O_APPEND.
    let mut a = OpenOptions::new().append(true).open(&f).unwrap();
    a.write_all(b"!!").unwrap();
    drop(a);
    assert_eq!(fs::read(&f).unwrap(), b"hello world!!");
    // O_TRUNC.
    let mut w = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&f)
        .unwrap();
    w.write_all(b"new").unwrap();
    drop(w);
    assert_eq!(fs::read(&f).unwrap(), b"new");
    assert_eq!(fs::metadata(&f).unwrap().len(), 3);
    // ENOENT, EISDIR, ENOTDIR.
    assert_eq!(io_errno(File::open(t.p("missing"))), libc::ENOENT);
    fs::create_dir(t.p("d")).unwrap();
    assert_eq!(
        io_errno(OpenOptions::new().write(true).open(t.p("d"))),
        libc::EISDIR
    );
    assert_eq!(io_errno(File::open(t.p("a.txt/x"))), libc::ENOTDIR);
    // Renaming to another filesystem: EXDEV.
    let other = tempfile::tempdir().unwrap();
    assert_eq!(
        io_errno(fs::rename(&f, other.path().join("x"))),
        libc::EXDEV
    );
    assert_eq!(
        io_errno(fs::hard_link(&f, other.path().join("x"))),
        libc::EXDEV
    );
    // Names longer than 255 bytes.
    let long = "x".repeat(256);
    assert_eq!(io_errno(File::create(t.p(&long))), libc::ENAMETOOLONG);
    fs::write(t.p(&"y".repeat(255)), b"ok").unwrap();
}

#[test]
fn random_and_sparse_writes_and_truncate() {
    let t = TestMount::new();
    let p = t.p("sparse");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    // A write far past the end leaves a hole of zeros.
    f.write_all_at(b"tail", 1_000_000).unwrap();
    f.write_all_at(b"head", 0).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 1_000_004);
    let mut buf = vec![1u8; 1_000_004];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..4], b"head");
    assert!(buf[4..1_000_000].iter().all(|&b| b == 0));
    assert_eq!(&buf[1_000_000..], b"tail");
    // Random overwrite across a block boundary.
    let pat: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    f.write_all_at(&pat, 100_000).unwrap();
    let mut back = vec![0u8; pat.len()];
    f.read_exact_at(&mut back, 100_000).unwrap();
    assert_eq!(back, pat);
    // Truncate down then up: the regrown range reads as zeros.
    f.set_len(150_000).unwrap();
    f.set_len(500_000).unwrap();
    let mut back = vec![1u8; 500_000];
    f.read_exact_at(&mut back, 0).unwrap();
    assert_eq!(&back[100_000..150_000], &pat[..50_000]);
    assert!(
        back[150_000..].iter().all(|&b| b == 0),
        "truncate up must zero-fill"
    );
    // fallocate: grow, then punch a hole across a block boundary.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    f.write_all_at(&vec![9u8; 400_000], 0).unwrap();
    // SAFETY: fallocate on an open descriptor.
    assert_eq!(unsafe { libc::fallocate(fd, 0, 0, 600_000) }, 0);
    assert_eq!(f.metadata().unwrap().len(), 600_000);
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fallocate(fd, punch, 100_000, 200_000) }, 0);
    let mut back = vec![1u8; 600_000];
    f.read_exact_at(&mut back, 0).unwrap();
    assert!(back[..100_000].iter().all(|&b| b == 9));
    assert!(back[100_000..300_000].iter().all(|&b| b == 0));
    assert!(back[300_000..400_000].iter().all(|&b| b == 9));
    assert!(back[400_000..].iter().all(|&b| b == 0));
    drop(f);
    // Files beyond 4 GiB.
    let big = t.p("big");
    let f = File::create(&big).unwrap();
    let off = (5u64 << 30) + 17;
    f.write_all_at(b"far", off).unwrap();
    f.sync_all().unwrap();
    assert_eq!(fs::metadata(&big).unwrap().len(), off + 3);
    let mut r = File::open(&big).unwrap();
    r.seek(SeekFrom::Start(off - 2)).unwrap();
    let mut s = Vec::new();
    r.read_to_end(&mut s).unwrap();
    assert_eq!(s, b"\0\0far");
    // SEEK_DATA / SEEK_HOLE see the hole before the data.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&r);
    // SAFETY: lseek on an open descriptor.
    let data = unsafe { libc::lseek(fd, 0, libc::SEEK_DATA) };
    assert_eq!(data as u64, off / (128 << 10) * (128 << 10));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::lseek(fd, 0, libc::SEEK_HOLE) }, 0);
    // SAFETY: as above.
    let hole = unsafe { libc::lseek(fd, off as i64, libc::SEEK_HOLE) };
    assert_eq!(hole as u64, off + 3);
}

#[test]
fn unlinked_open_file_stays_readable() {
    let t = TestMount::new();
    let p = t.p("gone");
    fs::write(&p, vec![7u8; 200_000]).unwrap();
    let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    assert_eq!(io_errno(fs::metadata(&p)), libc::ENOENT);
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    assert_eq!(v, vec![7u8; 200_000]);
    f.write_all_at(b"more", 0).unwrap();
    assert_eq!(f.metadata().unwrap().nlink(), 0);
    drop(f);
    assert!(fs::read_dir(&t.mnt).unwrap().next().is_none());
}

#[test]
fn directories_rmdir_nlink_and_errors() {
    let t = TestMount::new();
    fs::create_dir(t.p("d")).unwrap();
    assert_eq!(io_errno(fs::create_dir(t.p("d"))), libc::EEXIST);
    fs::create_dir(t.p("d/sub")).unwrap();
    fs::create_dir(t.p("d/sub2")).unwrap();
    fs::write(t.p("d/f"), b"x").unwrap();
    assert_eq!(fs::metadata(t.p("d")).unwrap().nlink(), 4);
    assert_eq!(io_errno(fs::remove_dir(t.p("d"))), libc::ENOTEMPTY);
    assert_eq!(io_errno(fs::remove_dir(t.p("d/f"))), libc::ENOTDIR);
    assert_eq!(io_errno(fs::remove_file(t.p("d/sub"))), libc::EISDIR);
    assert_eq!(io_errno(fs::remove_dir(t.p("nope"))), libc::ENOENT);
    fs::remove_dir(t.p("d/sub2")).unwrap();
    assert_eq!(fs::metadata(t.p("d")).unwrap().nlink(), 3);
    let mut names: Vec<String> = fs::read_dir(t.p("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["f", "sub"]);
    fs::remove_file(t.p("d/f")).unwrap();
    fs::remove_dir(t.p("d/sub")).unwrap();
    fs::remove_dir(t.p("d")).unwrap();
    assert_eq!(fs::metadata(&t.mnt).unwrap().nlink(), 2);
}

#[test]
fn rename_variants() {
    let t = TestMount::new();
    fs::create_dir_all(t.p("a/b")).unwrap();
    fs::create_dir(t.p("c")).unwrap();
    fs::write(t.p("a/f"), b"one").unwrap();
    fs::write(t.p("c/g"), b"two").unwrap();
    // Replace across directories.
    fs::rename(t.p("a/f"), t.p("c/g")).unwrap();
    assert_eq!(fs::read(t.p("c/g")).unwrap(), b"one");
    assert_eq!(io_errno(fs::metadata(t.p("a/f"))), libc::ENOENT);
    // Directory moves update nlink of both parents.
    fs::rename(t.p("a/b"), t.p("c/b")).unwrap();
    assert_eq!(fs::metadata(t.p("a")).unwrap().nlink(), 2);
    assert_eq!(fs::metadata(t.p("c")).unwrap().nlink(), 3);
    // Over a non-empty directory: ENOTEMPTY; dir over file: ENOTDIR; file over dir: EISDIR.
    fs::create_dir(t.p("e")).unwrap();
    fs::write(t.p("e/x"), b"").unwrap();
    assert_eq!(io_errno(fs::rename(t.p("c/b"), t.p("e"))), libc::ENOTEMPTY);
    assert_eq!(io_errno(fs::rename(t.p("c/b"), t.p("c/g"))), libc::ENOTDIR);
    assert_eq!(io_errno(fs::rename(t.p("c/g"), t.p("c/b"))), libc::EISDIR);
    // Into its own subtree: EINVAL.
    assert_eq!(
        io_errno(fs::rename(t.p("c"), t.p("c/b/inside"))),
        libc::EINVAL
    );
    // Over an empty directory works.
    fs::create_dir(t.p("empty")).unwrap();
    fs::rename(t.p("c/b"), t.p("empty")).unwrap();
    assert!(fs::metadata(t.p("empty")).unwrap().is_dir());
    // RENAME_NOREPLACE and RENAME_EXCHANGE.
    fs::write(t.p("p"), b"P").unwrap();
    fs::write(t.p("q"), b"Q").unwrap();
    assert_eq!(
        renameat2(&t.p("p"), &t.p("q"), libc::RENAME_NOREPLACE),
        Err(libc::EEXIST)
    );
    renameat2(&t.p("p"), &t.p("r"), libc::RENAME_NOREPLACE).unwrap();
    renameat2(&t.p("r"), &t.p("q"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(t.p("r")).unwrap(), b"Q");
    assert_eq!(fs::read(t.p("q")).unwrap(), b"P");
    assert_eq!(
        renameat2(&t.p("r"), &t.p("zz"), libc::RENAME_EXCHANGE),
        Err(libc::ENOENT)
    );
    // Exchange a file and a directory in different parents.
    renameat2(&t.p("q"), &t.p("e"), libc::RENAME_EXCHANGE).unwrap();
    assert!(fs::metadata(t.p("q/x")).is_ok());
    assert_eq!(fs::read(t.p("e")).unwrap(), b"P");
}

#[test]
fn links_symlinks_fifos() {
    let t = TestMount::new();
    fs::write(t.p("f"), b"data").unwrap();
    fs::hard_link(t.p("f"), t.p("h")).unwrap();
    assert_eq!(fs::metadata(t.p("f")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(t.p("f")).unwrap().ino(),
        fs::metadata(t.p("h")).unwrap().ino()
    );
    assert_eq!(io_errno(fs::hard_link(t.p("f"), t.p("h"))), libc::EEXIST);
    fs::create_dir(t.p("d")).unwrap();
    assert_eq!(io_errno(fs::hard_link(t.p("d"), t.p("d2"))), libc::EPERM);
    fs::remove_file(t.p("f")).unwrap();
    assert_eq!(fs::read(t.p("h")).unwrap(), b"data");
    assert_eq!(fs::metadata(t.p("h")).unwrap().nlink(), 1);
    std::os::unix::fs::symlink("h", t.p("s")).unwrap();
    assert_eq!(fs::read_link(t.p("s")).unwrap().to_str(), Some("h"));
    assert_eq!(fs::read(t.p("s")).unwrap(), b"data");
    assert!(fs::symlink_metadata(t.p("s"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(io_errno(fs::read_link(t.p("h"))), libc::EINVAL);
    // A symlink replaced by another one under the same name: the new target is seen (the
    // kernel caches targets per inode, FUSE_CACHE_SYMLINKS).
    fs::write(t.p("h2"), b"other").unwrap();
    std::os::unix::fs::symlink("h2", t.p("s.new")).unwrap();
    fs::rename(t.p("s.new"), t.p("s")).unwrap();
    assert_eq!(fs::read_link(t.p("s")).unwrap().to_str(), Some("h2"));
    assert_eq!(fs::read(t.p("s")).unwrap(), b"other");
    // FIFO via mknod.
    let c = cstr(&t.p("fifo"));
    // SAFETY: valid path.
    check(i64::from(unsafe {
        libc::mknod(c.as_ptr(), libc::S_IFIFO | 0o640, 0)
    }))
    .unwrap();
    let st = lstat(&t.p("fifo")).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(st.st_mode & 0o777, 0o640 & !umask());
}

fn umask() -> u32 {
    // SAFETY: umask is always safe; restored at once.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    }
}

#[test]
fn attributes_times_and_statfs() {
    let t = TestMount::new();
    let p = t.p("f");
    fs::write(&p, b"x").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
    std::os::unix::fs::chown(&p, Some(1234), Some(5678)).unwrap();
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    // utimens with nanoseconds.
    let c = cstr(&p);
    let ts = [
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 123_456_789,
        },
        libc::timespec {
            tv_sec: 1_500_000_000,
            tv_nsec: 987_654_321,
        },
    ];
    // SAFETY: valid path and two timespecs.
    check(i64::from(unsafe {
        libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), 0)
    }))
    .unwrap();
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 987_654_321));
    // A write moves mtime and ctime forward.
    let before = fs::metadata(&p).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all(b"y")
        .unwrap();
    let after = fs::metadata(&p).unwrap();
    assert!(after.mtime() > before.mtime());
    assert!((after.ctime(), after.ctime_nsec()) > (before.ctime(), before.ctime_nsec()));
    // relatime: a read after a modification moves atime.
    let m0 = fs::metadata(&p).unwrap();
    fs::read(&p).unwrap();
    let m1 = fs::metadata(&p).unwrap();
    assert!((m1.atime(), m1.atime_nsec()) >= (m0.mtime(), m0.mtime_nsec()));
    // Creating an entry moves the directory's mtime.
    let d0 = fs::metadata(&t.mnt).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(t.p("g"), b"").unwrap();
    let d1 = fs::metadata(&t.mnt).unwrap();
    assert!((d1.mtime(), d1.mtime_nsec()) > (d0.mtime(), d0.mtime_nsec()));
    // statfs.
    let c = cstr(&t.mnt);
    // SAFETY: zeroed statvfs is a valid out-buffer.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    check(i64::from(unsafe { libc::statvfs(c.as_ptr(), &raw mut sv) })).unwrap();
    assert_eq!(sv.f_namemax, 255);
    assert!(sv.f_blocks > 0 && sv.f_bfree <= sv.f_blocks);
    // fsync / fdatasync.
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.sync_all().unwrap();
    f.sync_data().unwrap();
}

#[test]
fn extended_attributes() {
    let t = TestMount::new();
    let p = t.p("f");
    fs::write(&p, b"x").unwrap();
    let c = cstr(&p);
    let set = |name: &str, v: &[u8], flags: i32| {
        let n = std::ffi::CString::new(name).unwrap();
        // SAFETY: valid path, name and value buffer.
        check(i64::from(unsafe {
            libc::setxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), flags)
        }))
    };
    let get = |name: &str| -> Result<Vec<u8>, i32> {
        let n = std::ffi::CString::new(name).unwrap();
        let mut buf = vec![0u8; 1024];
        // SAFETY: valid path, name and buffer of the given length.
        let r = check(unsafe {
            libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        } as i64)?;
        buf.truncate(r as usize);
        Ok(buf)
    };
    set("user.color", b"blue", 0).unwrap();
    assert_eq!(get("user.color").unwrap(), b"blue");
    assert_eq!(
        set("user.color", b"red", libc::XATTR_CREATE),
        Err(libc::EEXIST)
    );
    assert_eq!(
        set("user.size", b"1", libc::XATTR_REPLACE),
        Err(libc::ENODATA)
    );
    set("user.size", b"12", 0).unwrap();
    assert_eq!(get("user.none"), Err(libc::ENODATA));
    let mut list = vec![0u8; 256];
    // SAFETY: valid path and buffer.
    let n = unsafe { libc::listxattr(c.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    list.truncate(n as usize);
    assert_eq!(list, b"user.color\0user.size\0");
    let n = std::ffi::CString::new("user.color").unwrap();
    // SAFETY: valid path and name.
    check(i64::from(unsafe {
        libc::removexattr(c.as_ptr(), n.as_ptr())
    }))
    .unwrap();
    assert_eq!(get("user.color"), Err(libc::ENODATA));
}

#[test]
fn permission_checks_for_non_root() {
    let t = TestMount::new();
    let secret = t.p("secret");
    fs::write(&secret, b"s").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let open = t.p("open");
    fs::write(&open, b"o").unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
    let run = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(args[0])
            .args(&args[1..])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("spawn")
    };
    let out = run(&["cat", secret.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = run(&["cat", open.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"o");
    let out = run(&["touch", t.p("newfile").to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "root-owned 0755 dir must refuse creates"
    );
}

/// With FUSE_HANDLE_KILLPRIV_V2 negotiated, clearing set-id bits and file capabilities on a
/// modification is the filesystem's job: a write or truncate by a non-root user clears
/// set-user-id and (group-executable) set-group-id, any write drops security.capability.
#[test]
fn modifications_clear_set_id_bits_and_capabilities() {
    let t = TestMount::new();
    let p = t.p("prog");
    fs::write(&p, b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().mode() & 0o7777;
    let as_nobody = |script: &str| {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("spawn");
        assert!(out.status.success(), "{script}: {out:?}");
    };
    let path = p.to_str().unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o6775)).unwrap();
    as_nobody(&format!("echo x >> {path}"));
    assert_eq!(mode(&p), 0o775, "write by the owner");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o4777)).unwrap();
    as_nobody(&format!("truncate -s 3 {path}"));
    assert_eq!(mode(&p), 0o777, "truncate by the owner");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o4777)).unwrap();
    as_nobody(&format!("fallocate -l 3 {path}"));
    assert_eq!(mode(&p), 0o777, "fallocate by the owner");
    // security.capability, format v2: permitted CAP_NET_RAW.
    let mut cap = [0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0000u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
    let c = cstr(&p);
    let n = std::ffi::CString::new("security.capability").unwrap();
    // SAFETY: valid path, name and value buffer.
    check(i64::from(unsafe {
        libc::setxattr(c.as_ptr(), n.as_ptr(), cap.as_ptr().cast(), cap.len(), 0)
    }))
    .unwrap();
    OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"y")
        .unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: valid path, name and buffer.
    let r = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 64) };
    assert_eq!(r, -1, "security.capability survived a write");
    assert_eq!(fs::read(&p).unwrap(), b"#!/y");
}

/// `cp -a` asks for what zdbfs does not do (ACL xattrs, reflink clones, copy offload): those
/// answers are counted as refusals, apart from real failures, which must stay at zero.
#[test]
fn cp_a_refusals_are_not_counted_as_errors() {
    let t = TestMount::new();
    let src = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(src.path().join(format!("f{i}")), vec![b'x'; 10_000 + i]).unwrap();
    }
    let before = t.mounted().fs().metrics().snapshot();
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(src.path())
        .arg(t.p("copy"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = t.mounted().fs().metrics().snapshot();
    assert_eq!(after.errors, before.errors, "nothing failed");
    assert!(
        after.refused > before.refused,
        "cp -a met refusals: {after:?}"
    );
    assert_eq!(std::fs::read(t.p("copy/f3")).unwrap().len(), 10_003);
}

/// As root the mount reads ahead 4 MiB (the kernel gives FUSE 128 KiB) and has the ordinary
/// dirty-page limits: sequential reads keep several large READs in flight.
#[test]
fn the_mount_reads_ahead_4_mib_as_root() {
    use std::os::unix::fs::MetadataExt;
    let t = TestMount::new();
    let dev = std::fs::metadata(t.p("")).unwrap().dev();
    let bdi = format!("/sys/class/bdi/{}:{}", libc::major(dev), libc::minor(dev));
    let knob = |name: &str| std::fs::read_to_string(format!("{bdi}/{name}")).unwrap();
    assert_eq!(knob("read_ahead_kb").trim(), "4096");
    assert_eq!(knob("strict_limit").trim(), "0");
}
