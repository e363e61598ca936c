//! End to end, through the `qsfs` binary and a real FUSE mount on the embedded default:
//! mixed files (some larger than a segment) → rotate → evict the whole cache → stop m data
//! backends → every file byte-exact; no backend holds plaintext; delete the cache folder →
//! `qsfs restore` → every file byte-exact; then with m+1 data backends stopped, reads of
//! evicted data fail with EIO, promptly.

mod common;

use common::*;
use std::time::Duration;

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
    write_files(&q.mount, 0..n, false);
    assert!(
        q.log_text().contains("WARNING: back up"),
        "key warning shown"
    );

    // The cache holds what the mount holds in plaintext; no other local user may read it.
    let secret = format!("SECRET-{}", std::process::id());
    let mut f = std::fs::File::create(q.mount.join("secret.txt")).unwrap();
    std::io::Write::write_all(&mut f, secret.repeat(100).as_bytes()).unwrap();
    f.sync_all().unwrap();
    drop(f);
    private_to_root(root, &secret);
    standins_refuse_strangers(root);
    // An account of the web drive: kept in the filesystem, so dispersed with it.
    qsfs_cmd_with_input(
        root,
        &["user", "add", "alice", "--quota", "1G", "--password-stdin"],
        "alice's password\n",
    );
    assert!(q.mount.join("home/alice").is_dir());
    let users = qsfs_cmd(root, &["user", "list"]);
    assert!(
        users.contains("alice\tuser\tquota 1073741824 bytes"),
        "{users}"
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
    read_all_exact(&q.mount, 0..n);
    let status = qsfs_cmd(root, &["status"]);
    assert!(status.contains("backends   8/10 up"), "{status}");
    assert!(fetched(root) >= 3, "reads went to the backends: {status}");
    let ranges: serde_json::Value =
        serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
    assert!(
        ranges["offload"]["ranges_fetched"].as_u64().unwrap() >= 1,
        "a first read was served from the chunk covering it: {status}"
    );
    let metrics = scrape_metrics(root);
    let down = metrics
        .lines()
        .filter(|l| l.starts_with("qsfs_backend_up{role=\"data\"") && l.ends_with(" 0"))
        .count();
    assert_eq!(down, M, "{metrics}");
    assert!(metrics.contains("zdbfs_reads_total "), "{metrics}");
    wait::until_every(
        "the health probe to mark them down",
        Duration::from_secs(60),
        STATUS_POLL,
        || {
            let status: serde_json::Value =
                serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
            status["repair"]["down"].as_array().unwrap().len() == M
        },
        String::new,
    );
    assert!(
        scrape_metrics(root).contains("zstor_repair"),
        "zstor's repair metrics exported"
    );

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
    read_all_exact(&q.mount, 0..n);
    assert!(fetched(root) >= 3, "evicted segments came back lazily");
    let listed: usize = (0..7)
        .map(|d| {
            std::fs::read_dir(q.mount.join(format!("dir{d}")))
                .unwrap()
                .count()
        })
        .sum();
    assert_eq!(listed, n, "no file more, no file less");
    let users = qsfs_cmd(root, &["user", "list"]);
    assert!(
        users.contains("alice\tuser"),
        "the accounts came back: {users}"
    );
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

/// `grep -rl secret qsfs-data` finds the secret in the cache as root, and nothing as the
/// user nobody (the test's root folder opened to everyone first, as a home folder may be).
fn private_to_root(root: &std::path::Path, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let grep = |as_nobody: bool| {
        let mut cmd = std::process::Command::new(if as_nobody { "setpriv" } else { "grep" });
        if as_nobody {
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "grep"]);
        }
        let out = cmd
            .args(["-rl", secret, "qsfs-data"])
            .current_dir(root)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        grep(false).contains("qsfs-data/cache/"),
        "the secret is in the cache"
    );
    assert_eq!(grep(true), "", "another local user reads the cache");
    let mode = |p: &str| {
        std::fs::metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("qsfs-data"), 0o700);
    assert_eq!(mode("qsfs-data/qsfs.toml"), 0o600);
}

/// The stand-ins have an admin password and their namespaces passwords: a local user who
/// finds a port can neither delete a namespace nor read one.
fn standins_refuse_strangers(root: &std::path::Path) {
    let config = std::fs::read_to_string(root.join("qsfs-data/qsfs.toml")).unwrap();
    let ports: Vec<u16> = config
        .lines()
        .filter_map(|l| l.strip_prefix("address = \"127.0.0.1:"))
        .map(|p| p.trim_end_matches('"').parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 10, "{config}");
    for (port, ns) in [(ports[0], "qsfs-meta"), (ports[9], "qsfs-data")] {
        let reply = |args: &[&str]| {
            use std::io::{BufRead, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut req = format!("*{}\r\n", args.len());
            for a in args {
                req += &format!("${}\r\n{a}\r\n", a.len());
            }
            s.write_all(req.as_bytes()).unwrap();
            let mut line = String::new();
            std::io::BufReader::new(s).read_line(&mut line).unwrap();
            line
        };
        assert!(reply(&["NSDEL", ns]).starts_with('-'), "NSDEL {ns} refused");
        assert!(
            reply(&["SELECT", ns]).starts_with('-'),
            "SELECT {ns} refused"
        );
        assert_eq!(reply(&["PING"]), "+PONG\r\n");
    }
}
