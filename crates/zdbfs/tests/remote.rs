//! zdbfs on a real `zdb` server over TCP (our server, in-process): the namespaces are created
//! with `autons`, data persists across remounts, a server that goes away makes calls fail
//! with EIO in bounded time instead of hanging, and the mount works again once it is back.

mod common;

use common::*;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};
use test_kit::zdb::TestZdb;
use zdbfs::{MountOptions, Mounted};

fn mount_remote(mnt: &Path, port: u16) -> Mounted {
    watchdog(mnt);
    fs::create_dir_all(mnt).unwrap();
    let opts: MountOptions = zdbfs::options::parse(
        &[format!(
            "host=127.0.0.1,port={port},autons,timeout=2,nocache"
        )],
        "unused".into(),
    )
    .unwrap();
    let store = zdbfs::open_store(&opts).expect("connect");
    let m = zdbfs::mount(mnt, store, &opts).expect("mount");
    wait_mounted(mnt, true);
    m
}

/// Unmounts on drop, even on panic.
struct Guard<'a>(Option<Mounted>, &'a Path);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            let _ = m.unmount();
        }
        if is_mounted(self.1) {
            let _ = zdbfs::lazy_umount(self.1);
        }
    }
}

#[test]
fn remote_backend_persists_and_fails_fast_when_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestZdb::start_in(&dir.path().join("zdb"));
    let mnt = dir.path().join("mnt");
    let mut g = Guard(Some(mount_remote(&mnt, server.port())), &mnt);
    fs::create_dir(mnt.join("d")).unwrap();
    fs::write(mnt.join("d/f"), vec![5u8; 300_000]).unwrap();
    File::create(mnt.join("d/g")).unwrap().sync_all().unwrap();
    if let Some(m) = g.0.take() {
        m.unmount().unwrap();
    }
    wait_mounted(&mnt, false);
    g.0 = Some(mount_remote(&mnt, server.port()));
    assert_eq!(fs::read(mnt.join("d/f")).unwrap(), vec![5u8; 300_000]);
    let mut f = File::create(mnt.join("d/h")).unwrap();
    // The backend goes away (sockets closed at once, as a crash): calls that need it fail
    // with EIO, within a bounded time.
    server.kill();
    let start = Instant::now();
    f.write_all(b"data").unwrap();
    assert_eq!(io_errno(f.sync_all()), libc::EIO);
    assert_eq!(io_errno(File::create(mnt.join("d/new"))), libc::EIO);
    // Pages the kernel still caches stay readable; once dropped, reading needs the backend.
    let cached = File::open(mnt.join("d/f")).unwrap();
    // SAFETY: plain advice on an open descriptor.
    let rc = unsafe { libc::posix_fadvise(cached.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    drop(cached);
    let r = fs::read(mnt.join("d/f"));
    assert_eq!(io_errno(r), libc::EIO);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    drop(f);

    // The backend comes back on the same address: the same mount serves again.
    let _server = TestZdb::options()
        .dir(&dir.path().join("zdb"))
        .port(server.port())
        .start();
    test_kit::wait::until("the mount to recover", Duration::from_secs(30), || {
        fs::read(mnt.join("d/f")).is_ok()
    });
    assert_eq!(fs::read(mnt.join("d/f")).unwrap(), vec![5u8; 300_000]);
    let mut again = File::create(mnt.join("d/after")).unwrap();
    again.write_all(b"back").unwrap();
    again.sync_all().unwrap();
    assert_eq!(fs::read(mnt.join("d/after")).unwrap(), b"back");
}

/// `autons` against every runtime mode of the server: `--mode seq` (how ThreeFold's
/// quantum-storage deploys it: the new namespaces are sequential already and NSSET mode is
/// refused), the default mixed mode (NSSET makes them sequential), and `--mode user` (no
/// sequential namespace possible: a clear error naming the fix).
#[test]
fn autons_works_on_seq_and_mixed_servers_and_explains_user_mode() {
    use test_kit::zdb::Mode;
    for mode in [Some(Mode::Seq), None] {
        let dir = tempfile::tempdir().unwrap();
        let mut options = TestZdb::options().dir(&dir.path().join("zdb"));
        if let Some(m) = mode {
            options = options.mode(m);
        }
        let server = options.start();
        let mnt = dir.path().join("mnt");
        let g = Guard(Some(mount_remote(&mnt, server.port())), &mnt);
        fs::write(mnt.join("f"), b"on a zdb server").unwrap();
        assert_eq!(
            fs::read(mnt.join("f")).unwrap(),
            b"on a zdb server",
            "{mode:?}"
        );
        drop(g);
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestZdb::options()
        .dir(&dir.path().join("zdb"))
        .mode(Mode::User)
        .start();
    let opts: MountOptions = zdbfs::options::parse(
        &[format!(
            "host=127.0.0.1,port={},autons,timeout=2",
            server.port()
        )],
        "unused".into(),
    )
    .unwrap();
    let err = zdbfs::open_store(&opts)
        .err()
        .expect("user mode refused")
        .to_string();
    assert!(err.contains("--mode seq"), "{err}");
    assert!(err.contains("single runtime mode"), "{err}");
}
