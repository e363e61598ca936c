//! Cache-size keeping in the real `zstor monitor` against in-process zdb servers: a fake zdb
//! data directory over `max_zdb_data_dir_size` is brought under it by deleting only closed,
//! stored and verified data segments; open segments, `zdbfs-temp`, index files and
//! descriptors stay; evicted segments come back byte-identical; a segment changed after its
//! store is stored again before it is evicted. Every wait is a bounded poll.

use std::fs::{File, FileTimes};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use rand::{RngCore, SeedableRng};

mod common;
use common::run::*;
use common::{cluster, TestZdb};

const KIB: usize = 1024;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Write `size` seeded random bytes to `path`, last used `age_secs` ago.
fn segment(path: &Path, size: usize, seed: u64, age_secs: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    std::fs::write(path, &bytes).expect("write segment");
    age(path, age_secs);
    bytes
}

fn age(path: &Path, age_secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(age_secs);
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_times(FileTimes::new().set_accessed(t).set_modified(t)))
        .expect("set times");
}

struct Fixture {
    data: Vec<TestZdb>,
    _meta: Vec<TestZdb>,
    dir: std::path::PathBuf,
    cache: std::path::PathBuf,
    port: u16,
    cli_cfg: std::path::PathBuf,
    daemon_cfg: std::path::PathBuf,
    log: std::path::PathBuf,
    /// Contents written, by path relative to the cache.
    files: Vec<(&'static str, Vec<u8>)>,
    /// `a/d1` after its change, and its stored (old) and new checksums.
    a1: Vec<u8>,
    old_sum: String,
    new_sum: String,
}

impl Fixture {
    fn bytes(&self, name: &str) -> &[u8] {
        match self.files.iter().find(|(n, _)| *n == name) {
            Some((_, b)) => b,
            None => panic!("no file {name}"),
        }
    }

    fn path_str(&self, rel: &str) -> String {
        self.cache.join(rel).to_str().expect("utf8").to_owned()
    }

    fn start_daemon(&self) -> Daemon {
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_zstor"))
                .arg("-c")
                .arg(&self.daemon_cfg)
                .arg("monitor")
                .env("ZSTOR_EVICT_INTERVAL_MS", "200")
                .env("ZSTOR_SCRUB_INTERVAL_SECS", "0")
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&self.log).expect("log"))
                .spawn()
                .expect("spawn monitor"),
        )
    }
}

/// 6 data and 4 metadata zdbs, configs whose `root` is the temp dir, and a fake zdb data
/// directory of 2 244 KiB with a 1 MiB limit. Untouchable: 708 KiB (open segments,
/// zdbfs-temp, an index file, a descriptor), so all 3 closed segments must go to get under
/// it. `a/d0` and `a/d1` are stored beforehand, then `a/d1` changes; `b/d0` is never stored.
fn fixture(dir: &Path) -> Fixture {
    let dir = dir.canonicalize().expect("canonical tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (data, meta, base) = rt.block_on(cluster(&dir, 6, &"42".repeat(32)));
    let port = test_kit::net::free_port();
    let cache = dir.join("cache");
    let base = base.replace(
        "root = \"/virtualroot\"",
        &format!("root = \"{}\"", dir.display()),
    );
    let cli_cfg = dir.join("cli.toml");
    std::fs::write(&cli_cfg, &base).expect("config");
    let daemon_cfg = dir.join("daemon.toml");
    std::fs::write(
        &daemon_cfg,
        format!(
            "socket = \"{}\"\nprometheus_port = {port}\nzdb_data_dir_path = \"{}\"\n\
             max_zdb_data_dir_size = 1\n{base}",
            dir.join("zstor.sock").display(),
            cache.display()
        ),
    )
    .expect("config");

    for ns in ["a", "b", "zdbfs-temp"] {
        std::fs::create_dir_all(cache.join(ns)).expect("mkdir");
    }
    // (path, size, seed, age in seconds)
    let layout: [(&'static str, usize, u64, u64); 9] = [
        ("a/d0", 512 * KIB, 1, 3000),
        ("a/d1", 512 * KIB, 2, 2000),
        ("a/d2", 256 * KIB, 3, 5000), // open, though the oldest segment
        ("a/i0", 4 * KIB, 4, 9000),
        ("a/zdb-namespace", 100, 5, 9000),
        ("b/d0", 512 * KIB, 6, 1000), // never stored
        ("b/d1", 128 * KIB, 7, 9000), // open
        ("zdbfs-temp/d0", 256 * KIB, 8, 9000),
        ("zdbfs-temp/d1", 64 * KIB, 9, 9000),
    ];
    let mut files: Vec<(&'static str, Vec<u8>)> = layout
        .iter()
        .map(|&(f, size, seed, secs)| (f, segment(&cache.join(f), size, seed, secs)))
        .collect();

    for f in ["a/d0", "a/d1"] {
        let p = cache.join(f);
        ok(&zstor(
            &cli_cfg,
            &["store", "-f", p.to_str().expect("utf8")],
        ));
    }
    let a1_old = files[1].1.clone();
    let mut a1 = a1_old.clone();
    a1[1000] ^= 0xff;
    std::fs::write(cache.join("a/d1"), &a1).expect("change a/d1");
    age(&cache.join("a/d1"), 2000);
    files[1].1 = a1.clone();
    let old_sum = hex::encode(zstor::hash::blake2b_128(&a1_old));
    let new_sum = hex::encode(zstor::hash::blake2b_128(&a1));
    let a1_str = cache.join("a/d1").to_str().expect("utf8").to_owned();
    assert_eq!(
        ok(&zstor(&cli_cfg, &["check", "-f", &a1_str])).trim(),
        old_sum
    );
    Fixture {
        data,
        _meta: meta,
        log: dir.join("daemon.log"),
        dir,
        cache,
        port,
        cli_cfg,
        daemon_cfg,
        files,
        a1,
        old_sum,
        new_sum,
    }
}

const UNTOUCHABLE: [&str; 6] = [
    "a/d2",
    "a/i0",
    "a/zdb-namespace",
    "b/d1",
    "zdbfs-temp/d0",
    "zdbfs-temp/d1",
];

#[test]
fn monitor_keeps_the_data_dir_under_its_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = fixture(tmp.path());
    let port = f.port;
    let _daemon = f.start_daemon();
    let limit = (1u64 << 20) as f64;
    wait_for("the data directory under its limit", &f.log, || {
        let bytes = metric(port, "zstor_cache_bytes");
        (0.0..=limit).contains(&bytes) && metric(port, "zstor_evicted_files_total") == 3.0
    });
    assert_eq!(metric(port, "zstor_cache_limit_bytes"), limit);
    assert_eq!(
        metric(port, "zstor_evicted_bytes_total"),
        (3 * 512 * KIB) as f64
    );
    assert_eq!(metric(port, "zstor_evict_skipped_total"), 0.0);

    // Only the closed segments went; everything else is untouched.
    for gone in ["a/d0", "a/d1", "b/d0"] {
        assert!(!f.cache.join(gone).exists(), "{gone} should be evicted");
    }
    for kept in UNTOUCHABLE {
        assert!(
            std::fs::read(f.cache.join(kept)).expect(kept) == f.bytes(kept),
            "{kept} changed"
        );
    }

    // Evicted segments come back identical; the changed one was stored again first.
    let out = f.dir.join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    for (i, name) in ["a/d0", "a/d1", "b/d0"].into_iter().enumerate() {
        let dst = out.join(i.to_string());
        ok(&retrieve_file(&f.cli_cfg, &f.path_str(name), &dst));
        assert!(
            std::fs::read(&dst).expect(name) == f.bytes(name),
            "{name} differs"
        );
    }
    assert!(f.bytes("a/d1") == f.a1.as_slice());
    assert_eq!(
        ok(&zstor(&f.cli_cfg, &["check", "-f", &f.path_str("a/d1")])).trim(),
        f.new_sum
    );

    // `status` through the daemon shows the cache line.
    let status = ok(&zstor(&f.daemon_cfg, &["status"]));
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("cache"))
        .unwrap_or_else(|| panic!("no cache line: {status}"));
    assert!(line.contains("3 segment(s) evicted"), "{line}");
}

/// With too few data backends to store, only the segment already stored with the same
/// checksum is evicted; the changed and the never-stored ones are kept (and counted).
#[test]
fn segments_that_cannot_be_stored_are_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut f = fixture(tmp.path());
    let port = f.port;
    for z in f.data.iter_mut().take(3) {
        z.stop();
    }
    let _daemon = f.start_daemon();
    wait_for("a pass that kept the unverifiable segments", &f.log, || {
        metric(port, "zstor_evicted_files_total") == 1.0
            && metric(port, "zstor_evict_skipped_total") >= 2.0
    });
    assert!(!f.cache.join("a/d0").exists(), "a/d0 was stored as it is");
    for kept in UNTOUCHABLE.into_iter().chain(["a/d1", "b/d0"]) {
        assert!(
            std::fs::read(f.cache.join(kept)).expect(kept) == f.bytes(kept),
            "{kept} changed or deleted"
        );
    }
    // The older copy of a/d1 is still what is stored.
    assert_eq!(
        ok(&zstor(&f.cli_cfg, &["check", "-f", &f.path_str("a/d1")])).trim(),
        f.old_sum
    );
    assert!(metric(port, "zstor_cache_bytes") > (1u64 << 20) as f64);
}
