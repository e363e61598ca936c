//! Persistence: remount keeps everything; kill -9 keeps everything fsync'ed and leaves a
//! consistent tree; big directories; backend growth stays close to the data written.

mod common;

use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn remount_keeps_tree_contents_and_attributes() {
    let mut t = TestMount::new();
    fs::create_dir_all(t.p("a/b/c")).unwrap();
    fs::write(t.p("a/b/c/f"), pattern(1, 700_000)).unwrap();
    fs::write(t.p("a/small"), b"tiny").unwrap();
    fs::hard_link(t.p("a/small"), t.p("a/b/link")).unwrap();
    std::os::unix::fs::symlink("../small", t.p("a/b/sym")).unwrap();
    let c = cstr(&t.p("a/small"));
    // SAFETY: valid path, name and value.
    unsafe { libc::setxattr(c.as_ptr(), c"user.k".as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    for i in 0..500 {
        fs::write(t.p(&format!("a/many-{i}")), format!("{i}")).unwrap();
    }
    fs::remove_file(t.p("a/many-7")).unwrap();
    let before = fs::metadata(t.p("a/b/c/f")).unwrap();
    t.remount();
    assert_eq!(fs::read(t.p("a/b/c/f")).unwrap(), pattern(1, 700_000));
    let after = fs::metadata(t.p("a/b/c/f")).unwrap();
    assert_eq!(
        (before.mtime(), before.mtime_nsec()),
        (after.mtime(), after.mtime_nsec())
    );
    assert_eq!(fs::metadata(t.p("a/small")).unwrap().nlink(), 2);
    assert_eq!(fs::read(t.p("a/b/link")).unwrap(), b"tiny");
    assert_eq!(fs::read(t.p("a/b/sym")).unwrap(), b"tiny");
    let mut v = [0u8; 4];
    // SAFETY: valid path, name and buffer.
    let n = unsafe { libc::getxattr(c.as_ptr(), c"user.k".as_ptr(), v.as_mut_ptr().cast(), 4) };
    assert_eq!(n, 1);
    assert_eq!(fs::read_dir(t.p("a")).unwrap().count(), 2 + 499);
    assert_eq!(fs::read(t.p("a/many-499")).unwrap(), b"499");
    assert_eq!(io_errno(fs::metadata(t.p("a/many-7"))), libc::ENOENT);
    assert_eq!(fs::metadata(t.p("a")).unwrap().nlink(), 3);
}

/// The `zdbfs` binary in a child process; killed (and its mount detached) on drop.
struct Daemon {
    child: Child,
    mnt: PathBuf,
}

impl Daemon {
    fn start(mnt: &Path, engine: &Path) -> Daemon {
        Self::start_with(mnt, engine, "flush=30")
    }

    fn start_with(mnt: &Path, engine: &Path, opts: &str) -> Daemon {
        watchdog(mnt);
        fs::create_dir_all(mnt).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zdbfs"))
            .arg(mnt)
            .arg("--engine")
            .arg(engine)
            .args(["-o", opts])
            .spawn()
            .expect("spawn zdbfs");
        let d = Daemon {
            child,
            mnt: mnt.to_path_buf(),
        };
        wait_mounted(mnt, true);
        d
    }

    fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
        let _ = zdbfs::lazy_umount(&self.mnt);
        wait_mounted(&self.mnt, false);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&self.mnt) {
            let _ = zdbfs::lazy_umount(&self.mnt);
        }
    }
}

/// Every entry can be stat'ed and every file read to its size: no dangling entry, no EIO.
fn check_tree(dir: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        n += 1;
        if m.is_dir() {
            n += check_tree(&e.path());
        } else if m.is_file() {
            assert_eq!(
                fs::read(e.path()).unwrap().len() as u64,
                m.len(),
                "{:?}",
                e.path()
            );
        }
    }
    n
}

#[test]
fn kill_9_keeps_fsynced_files_and_a_consistent_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let engine = dir.path().join("engine");
    let mut d = Daemon::start(&mnt, &engine);
    fs::create_dir_all(mnt.join("keep/deep")).unwrap();
    let mut f = File::create(mnt.join("keep/deep/synced")).unwrap();
    f.write_all(&pattern(3, 1_000_000)).unwrap();
    f.sync_all().unwrap();
    drop(f);
    // Changes after the fsync, some never flushed: whatever survives must be consistent.
    for i in 0..200 {
        fs::write(mnt.join(format!("keep/tmp-{i}")), pattern(i as u8, 5000)).unwrap();
    }
    fs::rename(mnt.join("keep/tmp-1"), mnt.join("keep/deep/moved")).unwrap();
    fs::remove_file(mnt.join("keep/tmp-2")).unwrap();
    let open = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(mnt.join("keep/unlinked"))
        .unwrap();
    fs::remove_file(mnt.join("keep/unlinked")).unwrap();
    let mut g = File::create(mnt.join("second")).unwrap();
    g.write_all(b"second file").unwrap();
    g.sync_data().unwrap();
    d.kill9();
    drop(open);
    let mut t = TestMountAt::new(&mnt, &engine);
    let rep = t.0.mounted().fs().recovery().cloned();
    assert!(
        rep.is_some(),
        "a killed mount must be checked at the next mount"
    );
    eprintln!("repairs: {rep:?}");
    assert_eq!(
        fs::read(mnt.join("keep/deep/synced")).unwrap(),
        pattern(3, 1_000_000)
    );
    assert_eq!(fs::read(mnt.join("second")).unwrap(), b"second file");
    assert!(check_tree(&mnt) >= 4);
    // The repaired tree keeps working and survives a clean remount.
    fs::write(mnt.join("keep/after"), b"after").unwrap();
    t.remount();
    assert_eq!(fs::read(mnt.join("keep/after")).unwrap(), b"after");
    check_tree(&mnt);
}

#[test]
fn sigterm_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let engine = dir.path().join("engine");
    let mut d = Daemon::start(&mnt, &engine);
    fs::create_dir(mnt.join("d")).unwrap();
    for i in 0..50 {
        fs::write(mnt.join(format!("d/f{i}")), pattern(i as u8, 3000)).unwrap();
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    let status = test_kit::wait::exit("zdbfs (SIGTERM)", &mut d.child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    wait_mounted(&mnt, false);
    let t = TestMountAt::new(&mnt, &engine);
    assert!(
        t.0.mounted().fs().recovery().is_none(),
        "SIGTERM must unmount cleanly"
    );
    for i in 0..50 {
        assert_eq!(
            fs::read(mnt.join(format!("d/f{i}"))).unwrap(),
            pattern(i as u8, 3000)
        );
    }
}

/// A [`TestMount`] on given paths.
struct TestMountAt(TestMount);

impl TestMountAt {
    fn new(mnt: &Path, engine: &Path) -> TestMountAt {
        TestMountAt(TestMount::at(mnt, engine))
    }
    fn remount(&mut self) {
        self.0.remount();
    }
}

#[test]
fn large_directory_lists_linearly() {
    // Metadata is committed here only by the explicit flushes below, never by the timer: how
    // much a commit writes then depends on the work done, not on how fast this machine is.
    let t = TestMount::configured(|o| o.flush_interval = Duration::from_secs(3600));
    fs::create_dir(t.p("big")).unwrap();
    let (n, commits) = (100_000, 10);
    let start = Instant::now();
    for i in 0..n {
        File::create(t.p(&format!("big/entry-{i:06}"))).unwrap();
        if (i + 1) % (n / commits) == 0 {
            t.mounted().fs().flush_all(true).unwrap();
        }
    }
    let created = start.elapsed();
    let start = Instant::now();
    let count = fs::read_dir(t.p("big")).unwrap().count();
    eprintln!("{n} creates: {created:?}, readdir: {:?}", start.elapsed());
    assert_eq!(count, n);
    assert!(fs::metadata(t.p("big/entry-054321")).is_ok());
    // Each commit rewrites the buckets it changed (here nearly all: names hash apart), never
    // the directory per create: 10 commits of a growing directory plus its doublings and the
    // inodes stay well under 1 KiB per file; one rewrite per create would be ~n/2 times more.
    let meta =
        dir_bytes(&t.engine.join("data/zdbfs-meta")) + dir_bytes(&t.engine.join("data/zdbfs-temp"));
    eprintln!("meta+journal bytes: {meta} ({} per file)", meta / n as u64);
    assert!(
        meta < n as u64 * 1024,
        "metadata grew {meta} bytes for {n} files"
    );
}

fn dir_bytes(p: &Path) -> u64 {
    fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn data_growth_close_to_bytes_written() {
    let t = TestMount::new();
    let before = dir_bytes(&t.engine.join("data/zdbfs-data"));
    let mut f = File::create(t.p("stream")).unwrap();
    let chunk = pattern(9, 1 << 20);
    for _ in 0..32 {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let grown = dir_bytes(&t.engine.join("data/zdbfs-data")) - before;
    eprintln!("32 MiB written, data namespace grew {grown}");
    assert!(grown < (32 << 20) + (2 << 20), "grew {grown}");
}

#[test]
fn concurrent_writers_and_readers() {
    let t = TestMount::new();
    let files: Vec<PathBuf> = (0..4).map(|i| t.p(&format!("w{i}"))).collect();
    std::thread::scope(|s| {
        for (i, p) in files.iter().enumerate() {
            s.spawn(move || {
                let f = File::create(p).unwrap();
                let data = pattern(i as u8, 2 << 20);
                // Write chunks in a scrambled order.
                for k in (0..32).map(|k| (k * 7) % 32) {
                    let off = k * (64 << 10);
                    std::os::unix::fs::FileExt::write_all_at(
                        &f,
                        &data[off..off + (64 << 10)],
                        off as u64,
                    )
                    .unwrap();
                }
            });
            s.spawn(move || {
                for _ in 0..20 {
                    let _ = fs::read(p);
                    let _ = fs::read_dir(p.parent().unwrap()).unwrap().count();
                }
            });
        }
    });
    for (i, p) in files.iter().enumerate() {
        assert_eq!(fs::read(p).unwrap(), pattern(i as u8, 2 << 20));
    }
}

#[test]
fn background_mode_detaches_once_mounted_and_logs_to_file() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let log = dir.path().join("zdbfs.log");
    watchdog(&mnt);
    fs::create_dir_all(&mnt).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_zdbfs"))
        .arg(&mnt)
        .arg("--engine")
        .arg(dir.path().join("engine"))
        .arg("-o")
        .arg(format!("background,logfile={}", log.display()))
        .status()
        .expect("run zdbfs");
    // The parent returns only once the mount is up.
    assert!(status.success());
    let mounted = is_mounted(&mnt);
    if mounted {
        fs::write(mnt.join("f"), b"bg").unwrap();
        assert_eq!(fs::read(mnt.join("f")).unwrap(), b"bg");
        // Unmounting from outside stops the daemon, which flushes and logs.
        zdbfs::lazy_umount(&mnt).unwrap();
    }
    assert!(mounted, "background zdbfs not mounted");
    test_kit::wait::until(
        "a clean shutdown in the log",
        Duration::from_secs(20),
        || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("clean shutdown")
        },
    );
}

#[test]
fn several_processes_write_and_read_at_once() {
    let t = TestMount::new();
    let procs: Vec<Child> = (0..4)
        .map(|k| {
            let script = format!(
                "cd {m} && for i in $(seq 1 200); do echo line-$i >> log{k}; \
                 cat log{k} > /dev/null; mkdir -p d{k}/$i && rmdir d{k}/$i; done",
                m = t.mnt.display()
            );
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .spawn()
                .expect("sh")
        })
        .collect();
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }
    for k in 0..4 {
        let text = fs::read_to_string(t.p(&format!("log{k}"))).unwrap();
        let want: String = (1..=200).map(|i| format!("line-{i}\n")).collect();
        assert_eq!(text, want);
        assert_eq!(fs::read_dir(t.p(&format!("d{k}"))).unwrap().count(), 0);
    }
}

#[test]
fn inodes_the_kernel_forgets_leave_memory() {
    let t = TestMount::new();
    fs::create_dir(t.p("many")).unwrap();
    for i in 0..2000 {
        fs::write(t.p(&format!("many/f{i}")), format!("content {i}")).unwrap();
    }
    let fs_ = t.mounted().fs().clone();
    fs_.flush_all(false).unwrap();
    let before = fs_.cached_inodes();
    // Make the kernel drop its dentries and inodes: it sends FORGET for each.
    fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs_.cached_inodes() > before / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = fs_.cached_inodes();
    eprintln!("inodes in memory: {before} -> {after}");
    assert!(after < before / 2, "{before} -> {after}");

    // A listing with attributes (READDIRPLUS: each entry a lookup the kernel will forget).
    let mut sizes = 0;
    for e in fs::read_dir(t.p("many")).unwrap() {
        let e = e.unwrap();
        let n: usize = e.file_name().to_str().unwrap()[1..].parse().unwrap();
        assert_eq!(
            e.metadata().unwrap().len(),
            format!("content {n}").len() as u64
        );
        sizes += 1;
    }
    assert_eq!(sizes, 2000);
    let listed = fs_.cached_inodes();
    assert!(
        listed > before / 2,
        "the listing loaded the inodes: {listed}"
    );
    fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs_.cached_inodes() > before / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = fs_.cached_inodes();
    assert!(
        again < before / 2,
        "listed inodes leave memory too: {listed} -> {again}"
    );
    for i in (0..2000).step_by(7) {
        assert_eq!(
            fs::read_to_string(t.p(&format!("many/f{i}"))).unwrap(),
            format!("content {i}")
        );
    }
}

/// Metadata-heavy work until the mount dies; errors (ENOTCONN after the kill) end it.
fn churn(root: &Path, seed: usize) {
    for i in 0.. {
        let d = root.join(format!("c{}", (i + seed) % 5));
        let r = (|| -> std::io::Result<()> {
            fs::create_dir_all(&d)?;
            fs::write(d.join(format!("f{i}")), pattern(i as u8, 1000 + i % 3000))?;
            if i % 3 == 0 {
                fs::rename(
                    d.join(format!("f{i}")),
                    root.join(format!("c{}/r{i}", (i + 1) % 5)),
                )?;
            }
            if i % 4 == 0 && i >= 8 {
                let _ = fs::remove_file(d.join(format!("f{}", i - 8)));
            }
            Ok(())
        })();
        if r.is_err() && !is_mounted(root) {
            return;
        }
        if i > 100_000 {
            return;
        }
    }
}

#[test]
fn kill_9_during_metadata_churn_repeatedly() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let engine = dir.path().join("engine");
    for round in 0..3u64 {
        let mut d = Daemon::start_with(&mnt, &engine, "flush=0.02");
        let marker = mnt.join(format!("marker{round}"));
        let mut f = File::create(&marker).unwrap();
        f.write_all(&pattern(round as u8, 10_000)).unwrap();
        f.sync_all().unwrap();
        drop(f);
        std::thread::scope(|s| {
            let m = mnt.clone();
            s.spawn(move || churn(&m, round as usize));
            std::thread::sleep(Duration::from_millis(300 + 150 * round));
            d.kill9();
        });
        let t = TestMount::at(&mnt, &engine);
        assert!(t.mounted().fs().recovery().is_some());
        for r in 0..=round {
            assert_eq!(
                fs::read(mnt.join(format!("marker{r}"))).unwrap(),
                pattern(r as u8, 10_000)
            );
        }
        let n = check_tree(&mnt);
        eprintln!(
            "round {round}: {n} entries, repairs {:?}",
            t.mounted().fs().recovery()
        );
        drop(t);
        wait_mounted(&mnt, false);
    }
}
