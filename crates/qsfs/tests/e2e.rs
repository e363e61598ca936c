//! End to end, through the `qsfs` binary and a real FUSE mount on the embedded default:
//! mixed files (some larger than a segment) → rotate → evict the whole cache → stop m data
//! backends → every file byte-exact; no backend holds plaintext; delete the cache folder →
//! `qsfs restore` → every file byte-exact; then with m+1 data backends stopped, reads of
//! evicted data fail with EIO, promptly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_qsfs");
/// The 4+2 code of the embedded default.
const M: usize = 2;
const MARKER: &str = "QSFS-PLAINTEXT-MARKER";

struct Qsfs {
    child: Option<Child>,
    mount: PathBuf,
    log: PathBuf,
}

impl Qsfs {
    /// Start `qsfs` with `args` and wait until the mount is up.
    fn start(root: &Path, args: &[&str], log_name: &str) -> Qsfs {
        let mount = root.join("mnt");
        let log = root.join(log_name);
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .current_dir(root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start qsfs");
        let mut q = Qsfs {
            child: Some(child),
            mount,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !is_mounted(&q.mount) {
            if let Some(status) = q.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("qsfs exited ({status}):\n{}", q.log_text());
            }
            assert!(Instant::now() < deadline, "no mount:\n{}", q.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        q
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid, sig) };
    }

    /// SIGTERM and wait for a clean exit. With `backends_down`, the offload of the last
    /// segments cannot finish: wait for qsfs to say so, then stop it again.
    fn stop(mut self, backends_down: bool) {
        self.signal(libc::SIGTERM);
        if backends_down {
            wait_for(
                Duration::from_secs(120),
                "qsfs to report staged checkpoints",
                || {
                    self.log_text()
                        .contains("checkpoints waiting for the backends")
                },
            );
            self.signal(libc::SIGTERM);
        }
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "qsfs did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "qsfs failed:\n{}", self.log_text());
        assert!(!is_mounted(&self.mount));
    }
}

impl Drop for Qsfs {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

fn is_mounted(path: &Path) -> bool {
    let Ok(abs) = std::fs::canonicalize(path) else {
        return false;
    };
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let abs = abs.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*abs) && l.contains("zdbfs"))
}

fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn qsfs_cmd(root: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .current_dir(root)
        .args(args)
        .output()
        .expect("run qsfs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "qsfs {args:?}: {text}");
    text
}

/// Deterministic file contents: text with the marker, or incompressible bytes.
fn content(i: usize) -> Vec<u8> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = match i % 10 {
        0 => 1_200_000 + (next() % 1_300_000) as usize, // larger than a 1 MiB segment
        1 => 0,
        _ => (next() % 40_000) as usize,
    };
    if i % 2 == 0 {
        (0..len).map(|_| next() as u8).collect()
    } else {
        let line = format!("{MARKER} file {i}: the quick brown fox\n");
        line.bytes().cycle().take(len).collect()
    }
}

fn path_of(mount: &Path, i: usize) -> PathBuf {
    mount
        .join(format!("dir{}", i % 7))
        .join(format!("file-{i}.bin"))
}

fn drop_caches() {
    // Root only; without it the kernel may answer from its page cache, which is still right.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

fn read_all_exact(mount: &Path, n: usize) {
    drop_caches();
    for i in 0..n {
        let got = std::fs::read(path_of(mount, i)).unwrap_or_else(|e| panic!("file {i}: {e}"));
        assert!(
            got == content(i),
            "file {i}: wrong bytes ({} read)",
            got.len()
        );
    }
}

fn kill_data_backends(root: &Path, which: std::ops::Range<usize>) {
    for d in which {
        let pid_file = root.join(format!("qsfs-data/backends/data-{d}/zdb.pid"));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) of a stand-in this test's qsfs started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_for(Duration::from_secs(30), "the backend to die", || {
            // SAFETY: signal 0 only checks the pid exists.
            let gone = unsafe { libc::kill(pid, 0) != 0 };
            gone || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
        });
    }
}

/// Segments fetched back from the backends by the running qsfs.
fn fetched(root: &Path) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
    status["offload"]["segments_fetched"].as_u64().unwrap()
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

#[test]
fn offload_evict_lose_backends_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let n = 300;
    let create = [
        "--mountpoint",
        "mnt",
        "--segment-mib",
        "1",
        "--cache-mib",
        "4",
    ];

    // 1. Embedded default; mixed files through the mount.
    let q = Qsfs::start(root, &create, "run1.log");
    for i in 0..n {
        let p = path_of(&q.mount, i);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content(i)).unwrap();
    }
    assert!(
        q.log_text().contains("WARNING: back up"),
        "key warning shown"
    );

    // 2. Force rotation (waits for the offload), evict everything stored.
    let out = qsfs_cmd(root, &["rotate"]);
    assert!(out.contains("everything is offloaded"), "{out}");
    let out = qsfs_cmd(root, &["evict"]);
    assert!(out.contains("evicted"), "{out}");
    let status: serde_json::Value =
        serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
    let evicted: u64 = status["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["evicted_segments"].as_u64().unwrap())
        .sum();
    assert!(evicted >= 3, "segments evicted: {status}");

    // 3. m data backends gone: everything still reads back exactly.
    kill_data_backends(root, 0..M);
    read_all_exact(&q.mount, n);
    let status = qsfs_cmd(root, &["status"]);
    assert!(status.contains("backends   8/10 up"), "{status}");
    assert!(fetched(root) >= 3, "reads went to the backends: {status}");

    // 4. No backend stores any plaintext.
    let mut stored = Vec::new();
    files_under(&root.join("qsfs-data/backends"), &mut stored);
    assert!(stored.len() > 10);
    for f in &stored {
        let bytes = std::fs::read(f).unwrap();
        let hit = bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes());
        assert!(!hit, "plaintext found in {}", f.display());
    }
    q.stop(true);

    // 5. The local cache folder is lost; restore brings the same tree back, lazily.
    std::fs::remove_dir_all(root.join("qsfs-data/cache")).unwrap();
    let q = Qsfs::start(
        root,
        &["restore", "--config", "qsfs-data/qsfs.toml"],
        "restore.log",
    );
    read_all_exact(&q.mount, n);
    assert!(fetched(root) >= 3, "evicted segments came back lazily");
    let listed: usize = (0..7)
        .map(|d| {
            std::fs::read_dir(q.mount.join(format!("dir{d}")))
                .unwrap()
                .count()
        })
        .sum();
    assert_eq!(listed, n, "no file more, no file less");
    qsfs_cmd(root, &["rotate"]);
    q.stop(false);

    // 6. Cold start, cache evicted, m+1 data backends gone: EIO, not wrong bytes, no hang.
    let q = Qsfs::start(root, &["--config", "qsfs-data/qsfs.toml"], "run3.log");
    qsfs_cmd(root, &["evict"]);
    kill_data_backends(root, 0..M + 1);
    drop_caches();
    let mount = q.mount.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let results: Vec<_> = [0, 10, 20, 3]
            .iter()
            .map(|&i| std::fs::read(path_of(&mount, i)).map_err(|e| e.raw_os_error()))
            .collect();
        let _ = tx.send(results);
    });
    let results = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("reads must fail promptly, not hang");
    for r in results {
        assert_eq!(r.map(|b| b.len()), Err(Some(libc::EIO)));
    }
    q.stop(true);
}
