//! Helpers shared by the qsfs end-to-end tests: the binary as a child process on a temp
//! folder, its mount, its stand-in backends, deterministic file contents.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use test_kit::wait;

pub const BIN: &str = env!("CARGO_BIN_EXE_qsfs");
/// The 4+2 code of the embedded default.
pub const M: usize = 2;
pub const MARKER: &str = "QSFS-PLAINTEXT-MARKER";

pub struct Qsfs {
    child: Option<Child>,
    pub mount: PathBuf,
    log: PathBuf,
}

/// Every stand-in backend's `zdb.log` under `root` (to say why one did not start).
fn standin_logs(root: &Path) -> String {
    let mut out = String::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) && !path.ends_with("mnt") {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "zdb.log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.push_str(&format!("--- {}:\n{text}\n", path.display()));
            }
        }
    }
    out
}

impl Qsfs {
    /// Start `qsfs` with `args` and wait until the mount is up.
    pub fn start(root: &Path, args: &[&str], log_name: &str) -> Qsfs {
        let mount = root.join("mnt");
        let log = root.join(log_name);
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .current_dir(root)
            .args(args)
            // Probe backends often so a loss shows in `status` within a second or two.
            .env("ZSTOR_PROBE_INTERVAL_MS", "200")
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
        // The binary prints this line once its mount answers (a dead mount of a crashed
        // run may still look mounted for a moment).
        let log = q.log.clone();
        wait::until_or(
            "the qsfs mount",
            Duration::from_secs(120),
            || {
                if let Some(status) = q.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "qsfs exited ({status}):\n{}\n{}",
                        q.log_text(),
                        standin_logs(root)
                    );
                }
                q.log_text().contains("qsfs: mounted at") && is_mounted(&q.mount)
            },
            || {
                format!(
                    "log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            },
        );
        q
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid, sig) };
    }

    /// kill -9, as a crash would; the dead mount is left for the next start to clear.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit. With `backends_down`, the offload of the last
    /// segments cannot finish: wait for qsfs to say so, then stop it again.
    pub fn stop(mut self, backends_down: bool) {
        self.signal(libc::SIGTERM);
        if backends_down {
            wait::until(
                "qsfs to report staged checkpoints",
                Duration::from_secs(120),
                || {
                    self.log_text()
                        .contains("checkpoints waiting for the backends")
                },
            );
            self.signal(libc::SIGTERM);
        }
        let mut child = self.child.take().unwrap();
        let status = wait::exit_or("qsfs", &mut child, Duration::from_secs(120), || {
            format!("log:\n{}", self.log_text())
        });
        assert!(status.success(), "qsfs failed:\n{}", self.log_text());
        assert!(!is_mounted(&self.mount));
        let log = self.log_text();
        assert!(
            !log.contains("unmount failed"),
            "a clean stop unmounts at once (nothing holds the mount):\n{log}"
        );
    }
}

impl Drop for Qsfs {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = zdbfs::lazy_umount(&self.mount);
        }
    }
}

/// A live zdbfs mount at `path` (a dead one left by a crash fails `stat` with ENOTCONN).
pub fn is_mounted(path: &Path) -> bool {
    test_kit::mount::is_live(path, "zdbfs")
}

/// How often a wait that runs `qsfs status` asks.
pub const STATUS_POLL: Duration = Duration::from_millis(50);

/// `qsfs ARGS`; its output (it must succeed).
pub fn qsfs_cmd(root: &Path, args: &[&str]) -> String {
    qsfs_cmd_with_input(root, args, "")
}

/// `qsfs ARGS` with `input` on its standard input; its output (it must succeed).
pub fn qsfs_cmd_with_input(root: &Path, args: &[&str], input: &str) -> String {
    let mut child = Command::new(BIN)
        .current_dir(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qsfs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "qsfs {args:?}: {text}");
    text
}

/// Deterministic file contents: text with the marker, or incompressible bytes.
pub fn content(i: usize) -> Vec<u8> {
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
    if i.is_multiple_of(2) {
        (0..len).map(|_| next() as u8).collect()
    } else {
        let line = format!("{MARKER} file {i}: the quick brown fox\n");
        line.bytes().cycle().take(len).collect()
    }
}

pub fn path_of(mount: &Path, i: usize) -> PathBuf {
    mount
        .join(format!("dir{}", i % 7))
        .join(format!("file-{i}.bin"))
}

pub fn drop_caches() {
    // Root only; without it the kernel may answer from its page cache, which is still right.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

pub fn read_all_exact(mount: &Path, files: std::ops::Range<usize>) {
    drop_caches();
    for i in files {
        let got = std::fs::read(path_of(mount, i)).unwrap_or_else(|e| panic!("file {i}: {e}"));
        assert!(
            got == content(i),
            "file {i}: wrong bytes ({} read)",
            got.len()
        );
    }
}

/// Write files `files` through the mount; with `fsync`, each is fsync'ed before the next.
pub fn write_files(mount: &Path, files: std::ops::Range<usize>, fsync: bool) {
    use std::io::Write;
    for i in files {
        let p = path_of(mount, i);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&content(i)).unwrap();
        if fsync {
            f.sync_all().unwrap();
        }
    }
}

pub fn kill_data_backends(root: &Path, which: std::ops::Range<usize>) {
    for d in which {
        let pid_file = root.join(format!("qsfs-data/backends/data-{d}/zdb.pid"));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) of a stand-in this test's qsfs started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait::until("the backend to die", Duration::from_secs(30), || {
            // SAFETY: signal 0 only checks the pid exists.
            let gone = unsafe { libc::kill(pid, 0) != 0 };
            gone || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
        });
    }
}

/// Segments fetched back from the backends by the running qsfs.
pub fn fetched(root: &Path) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
    status["offload"]["segments_fetched"].as_u64().unwrap()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

/// The body of `GET /metrics` from the qsfs of `root`'s embedded default.
pub fn scrape_metrics(root: &Path) -> String {
    let config = std::fs::read_to_string(root.join("qsfs-data/qsfs.toml")).unwrap();
    let port: u16 = config
        .lines()
        .find_map(|l| l.strip_prefix("prometheus_port = "))
        .expect("prometheus_port in the embedded default")
        .trim()
        .parse()
        .unwrap();
    test_kit::metrics::scrape(port).unwrap_or_else(|| panic!("no 200 on :{port}/metrics"))
}

/// The manifest of `root`'s embedded default (its local copy).
pub fn manifest(root: &Path) -> qsfs::manifest::Manifest {
    qsfs::manifest::Manifest::load(&root.join("qsfs-data/cache/manifest.json")).unwrap()
}

/// With qsfs stopped: the backends hold exactly the objects the manifest names (superseded
/// copies were deleted). Starts the stand-ins for the count.
pub fn assert_backends_hold_what_the_manifest_names(root: &Path) {
    let config = qsfs::Config::load(&root.join("qsfs-data/qsfs.toml")).unwrap();
    let named: usize = 1 + manifest(root)
        .namespaces
        .values()
        .map(|n| n.data.len() + n.index.len() + 1 + n.open.as_ref().map_or(0, |o| o.pieces.len()))
        .sum::<usize>();
    let _backends = qsfs::standin::Standins::start(
        Path::new(BIN),
        &root.join("qsfs-data/backends"),
        &qsfs::standin::specs(&config).unwrap(),
        config.qsfs.standin_admin_password.as_deref(),
    )
    .unwrap();
    let stored = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { config.store().unwrap().meta().keys().await.unwrap() });
    assert_eq!(
        stored.len(),
        named,
        "objects on the backends vs named by the manifest"
    );
}

/// `qsfs status --json` of the qsfs running with `config` (relative to `root`).
pub fn status_of(root: &Path, config: &str) -> serde_json::Value {
    serde_json::from_str(&qsfs_cmd(root, &["--config", config, "status", "--json"])).unwrap()
}

/// Wait (bounded by `within`) until the qsfs running with `config` has nothing left that
/// losing the machine would lose: no exposed bytes, no staged checkpoint.
pub fn wait_dispersed(root: &Path, config: &str, within: Duration) {
    wait::until_every(
        "the written files to be dispersed",
        within,
        Duration::from_millis(200),
        || {
            let s = status_of(root, config);
            s["offload"]["exposure"]["bytes"] == 0 && s["offload"]["pending"] == 0
        },
        || format!("{:#}", status_of(root, config)["offload"]),
    );
}

/// Lose the machine: kill -9, delete the cache, `qsfs restore` with `config` from the
/// backends alone.
pub fn lose_and_restore(q: Qsfs, root: &Path, config: &str, log: &str) -> Qsfs {
    q.kill9();
    std::fs::remove_dir_all(root.join("qsfs-data/cache")).unwrap();
    Qsfs::start(root, &["restore", "--config", config], log)
}

/// Switch `config` (relative to `root`) to `fsync = "dispersed"` with the periodic
/// dispersal off, so that only fsync can put data on the backends.
pub fn make_strict(root: &Path, config: &str) {
    let path = root.join(config);
    let text = std::fs::read_to_string(&path).unwrap();
    let strict = text
        .replace("fsync = \"local\"", "fsync = \"dispersed\"")
        .replace("disperse_seconds = 4", "disperse_seconds = 0");
    assert_ne!(strict, text, "{config} has the defaults");
    std::fs::write(path, strict).unwrap();
}
