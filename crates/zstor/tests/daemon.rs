//! The real `zstor monitor` binary against in-process zdb servers on 127.0.0.1 (8 data
//! backends for a 4+2 code, so a lost one can be replaced; 4 metadata backends): the CLI
//! goes through the socket, `/metrics` answers, a stopped backend is marked down and its
//! object repaired, SIGUSR1 with a broken config keeps the old one, SIGTERM drains and
//! removes the socket and pid file. Every wait is a bounded poll.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rand::{RngCore, SeedableRng};

mod common;
use common::run::*;
use common::TestZdb;

/// The daemon; killed if the test fails before stopping it.
struct Daemon {
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid}");
}

struct Setup {
    data: Vec<TestZdb>,
    _meta: Vec<TestZdb>,
    rt: tokio::runtime::Runtime,
    port: u16,
    socket: PathBuf,
    pid_file: PathBuf,
    good: String,
    daemon_cfg: PathBuf,
    cli_cfg: PathBuf,
    log: PathBuf,
}

/// `data_backends` data zdbs and 4 metadata zdbs, a config with `socket`, `pid_file` and
/// `prometheus_port`, written twice (the daemon's, which a test may break, and the CLI's).
fn setup(dir: &Path, data_backends: usize) -> Setup {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (data, meta, base) = rt.block_on(common::cluster(dir, data_backends, &"42".repeat(32)));
    let port = test_kit::net::free_port();
    let socket = dir.join("zstor.sock");
    let pid_file = dir.join("zstor.pid");
    let good = format!(
        "socket = \"{}\"\npid_file = \"{}\"\nprometheus_port = {port}\n{base}",
        socket.display(),
        pid_file.display()
    );
    let daemon_cfg = dir.join("daemon.toml");
    let cli_cfg = dir.join("cli.toml");
    std::fs::write(&daemon_cfg, &good).expect("config");
    std::fs::write(&cli_cfg, &good).expect("config");
    Setup {
        data,
        _meta: meta,
        rt,
        port,
        socket,
        pid_file,
        good,
        daemon_cfg,
        cli_cfg,
        log: dir.join("daemon.log"),
    }
}

/// Start `zstor monitor` (short probe interval) and wait until its socket and `/metrics`
/// answer.
fn start_daemon(s: &Setup, scrub_secs: &str) -> (Daemon, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_zstor"))
        .arg("-c")
        .arg(&s.daemon_cfg)
        .arg("monitor")
        .env("ZSTOR_PROBE_INTERVAL_MS", "200")
        .env("ZSTOR_PROBE_FAILURES", "2")
        .env("ZSTOR_SCRUB_INTERVAL_SECS", scrub_secs)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&s.log).expect("log"))
        .spawn()
        .expect("spawn monitor");
    let pid = child.id();
    let daemon = Daemon { child: Some(child) };
    wait_for("the socket", &s.log, || {
        std::os::unix::net::UnixStream::connect(&s.socket).is_ok()
    });
    // The first probe runs at start; its verdicts are on /metrics once it finished.
    wait_for("the first backend probe on /metrics", &s.log, || {
        scrape(s.port).is_some_and(|m| m.contains("zstor_backend_reachable{"))
    });
    (daemon, pid)
}

/// Store a 2-chunk random file as `/virtualroot/dir/input.bin` through the daemon.
fn store_input(s: &Setup, dir: &Path) -> Vec<u8> {
    let input = dir.join("input.bin");
    let mut bytes = vec![0u8; (5 << 20) + 77];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut bytes);
    std::fs::write(&input, &bytes).expect("input");
    let out = store_file(&s.cli_cfg, &input, "/virtualroot/dir");
    ok(&out);
    assert!(
        !text(&out.stderr).contains("in-process"),
        "{}",
        text(&out.stderr)
    );
    bytes
}

fn retrieve_exact(s: &Setup, out: &Path, bytes: &[u8]) {
    ok(&retrieve_file(
        &s.cli_cfg,
        "/virtualroot/dir/input.bin",
        out,
    ));
    assert!(std::fs::read(out).expect("retrieved") == bytes);
}

#[test]
fn monitor_serves_the_cli_repairs_reloads_and_drains() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut s = setup(dir, 8);
    let (port, socket, pid_file, log) =
        (s.port, s.socket.clone(), s.pid_file.clone(), s.log.clone());
    let (good, daemon_cfg, cli_cfg) = (s.good.clone(), s.daemon_cfg.clone(), s.cli_cfg.clone());
    // A stale socket file from a dead daemon is replaced.
    std::fs::write(&socket, b"").expect("stale socket");
    let (mut daemon, pid) = start_daemon(&s, "0");
    // A second daemon on the same socket is refused; the first keeps its socket.
    let out = zstor(&daemon_cfg, &["monitor"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already listening"),
        "{}",
        text(&out.stderr)
    );
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    // `monitor` needs a socket.
    let no_socket = dir.join("no-socket.toml");
    let first_line = good.lines().next().expect("socket line");
    assert!(first_line.starts_with("socket = "));
    std::fs::write(&no_socket, good.replacen(first_line, "", 1)).expect("config");
    let out = zstor(&no_socket, &["monitor"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`socket`"),
        "{}",
        text(&out.stderr)
    );
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let written_pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(written_pid.trim(), pid.to_string());

    // store / check / retrieve through the daemon.
    let bytes = store_input(&s, dir);
    let m = scrape(port).expect("metrics");
    assert_eq!(value(&m, "zstor_requests_total{op=\"store\"}"), Some(1.0));
    assert_eq!(value(&m, "zstor_bytes_in_total"), Some(bytes.len() as f64));
    assert_eq!(
        value(&m, "zstor_request_duration_seconds_count{op=\"store\"}"),
        Some(1.0)
    );
    assert!(m.contains("# TYPE zstor_request_duration_seconds summary"));
    // Every backend up and quick: the store was whole and nothing was asked twice.
    assert_eq!(value(&m, "zstor_degraded_stores_total"), Some(0.0));
    assert_eq!(value(&m, "zstor_hedged_reads_total"), Some(0.0));
    let want = hex::encode(zstor::hash::blake2b_128(&bytes));
    let sum = ok(&zstor(
        &cli_cfg,
        &["check", "-f", "/virtualroot/dir/input.bin"],
    ));
    assert_eq!(sum.trim(), want);
    retrieve_exact(&s, &dir.join("out/first.bin"), &bytes);
    let m = scrape(port).expect("metrics");
    assert_eq!(
        value(&m, "zstor_requests_total{op=\"retrieve\"}"),
        Some(1.0)
    );
    assert_eq!(value(&m, "zstor_requests_total{op=\"check\"}"), Some(1.0));
    let d0 = format!(
        "address=\"{}\",namespace=\"data\",kind=\"data\"",
        s.data[0].addr
    );
    assert_eq!(
        value(&m, &format!("zstor_backend_reachable{{{d0}}}")),
        Some(1.0)
    );
    for series in ["entries", "data_size_bytes", "free_bytes", "io_errors"] {
        assert!(
            value(&m, &format!("zstor_backend_{series}{{{d0}}}")).is_some(),
            "{series}: {m}"
        );
    }
    // `store -n`: queued in the daemon, the command returns; the store completes there.
    let second = dir.join("second.bin");
    std::fs::write(&second, b"queued in the background").expect("second");
    let out = zstor(
        &cli_cfg,
        &[
            "store",
            "-n",
            "-f",
            second.to_str().expect("utf8"),
            "-k",
            "/virtualroot/dir",
        ],
    );
    ok(&out);
    assert!(
        !text(&out.stderr).contains("in-process"),
        "{}",
        text(&out.stderr)
    );
    wait_for("the background store", &log, || {
        metric(port, "zstor_requests_total{op=\"store\"}") == 2.0
            && metric(port, "zstor_store_queue_length") == 0.0
    });
    assert_eq!(
        metric(port, "zstor_request_errors_total{op=\"store\"}"),
        0.0
    );
    let status = ok(&zstor(&cli_cfg, &["status", "--json"]));
    let st: serde_json::Value = serde_json::from_str(&status).expect("status json");
    assert_eq!(st["daemon"]["repaired"], 0, "{status}");

    // Lose a data backend holding a shard: marked down, the object repaired elsewhere.
    let config = zstor::Config::from_toml(&good).expect("config");
    let store = zstor::Store::new(config).expect("store");
    let key = Path::new("/virtualroot/dir/input.bin");
    let before = s.rt.block_on(store.meta().get(key)).expect("meta");
    let lost_addr = before.shards[0].backend.address.clone();
    let lost = s
        .data
        .iter()
        .position(|z| z.addr == lost_addr)
        .expect("shard backend");
    s.data[lost].stop();
    let dl = format!("address=\"{lost_addr}\",namespace=\"data\",kind=\"data\"");
    wait_for("the backend marked down", &log, || {
        metric(port, &format!("zstor_backend_down{{{dl}}}")) == 1.0
    });
    wait_for("the object repaired", &log, || {
        metric(port, "zstor_objects_repaired_total") >= 1.0
            && s.rt
                .block_on(store.meta().get(key))
                .is_ok_and(|m| m.shards.iter().all(|sh| sh.backend.address != lost_addr))
    });
    let status = ok(&zstor(&cli_cfg, &["status"]));
    let repaired: u64 = status
        .lines()
        .find_map(|l| l.trim().strip_prefix("objects repaired"))
        .and_then(|v| v.trim().parse().ok())
        .expect("repaired count in status");
    assert!(repaired >= 1, "{status}");
    assert!(status.contains(&lost_addr), "{status}");
    let after = s.rt.block_on(store.meta().get(key)).expect("meta");
    assert!(
        after
            .shards
            .iter()
            .all(|sh| sh.backend.address != lost_addr),
        "{after:?}"
    );

    // Lose m = 2 more backends holding shards: k = 4 remain, the file comes back exact.
    let mut stopped = 0;
    for shard in &after.shards {
        if stopped == 2 {
            break;
        }
        if let Some(z) = s.data.iter_mut().find(|z| z.addr == shard.backend.address) {
            z.stop();
            stopped += 1;
        }
    }
    retrieve_exact(&s, &dir.join("out/second.bin"), &bytes);

    // SIGUSR1 with a broken config: refused (field named), the old config keeps serving.
    std::fs::write(
        &daemon_cfg,
        good.replace("minimal_shards = 4", "minimal_shards = 9"),
    )
    .expect("broken config");
    signal(pid, "USR1");
    wait_for("the reload refusal", &log, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("config reload refused"))
    });
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("minimal_shards"), "{logged}");
    let sum = ok(&zstor(
        &cli_cfg,
        &["check", "-f", "/virtualroot/dir/input.bin"],
    ));
    assert_eq!(sum.trim(), want);
    assert_eq!(metric(port, "zstor_config_reloads_total"), 0.0);
    assert_eq!(metric(port, "zstor_requests_total{op=\"check\"}"), 2.0);

    // SIGTERM: exit 0, socket and pid file removed.
    signal(pid, "TERM");
    let mut child = daemon.child.take().expect("child");
    let code = test_kit::wait::exit("monitor (SIGTERM)", &mut child, WAIT_LIMIT);
    assert!(code.success(), "monitor exit: {code}");
    assert!(!socket.exists(), "socket removed");
    assert!(!pid_file.exists(), "pid file removed");

    // Without the daemon, the CLI warns and runs in-process.
    let out = zstor(&cli_cfg, &["check", "-f", "/virtualroot/dir/input.bin"]);
    assert_eq!(ok(&out).trim(), want);
    assert!(text(&out.stderr).contains("running in-process"));
}

#[test]
fn scrub_rewrites_corrupt_and_missing_pieces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // n = 6 data backends for a 4+2 code: nothing can move, pieces are rewritten in place.
    let mut s = setup(dir, 6);
    let (_daemon, _pid) = start_daemon(&s, "1");
    let bytes = store_input(&s, dir);
    let config = zstor::Config::from_toml(&s.good).expect("config");
    let store = zstor::Store::new(config).expect("store");
    let key = Path::new("/virtualroot/dir/input.bin");
    let before = s.rt.block_on(store.meta().get(key)).expect("meta");
    assert_eq!(before.chunk_count(), 2);

    // Bitrot on shard 0 (chunk 0 overwritten with garbage), shard 1's chunk 1 deleted.
    let client = |addr: &str| {
        zdb_client::Client::new(
            zdb_client::ClientConfig::new(addr.parse().expect("endpoint"))
                .with_namespace("data", None),
        )
        .expect("client")
    };
    let (b0, b1) = (&before.shards[0], &before.shards[1]);
    s.rt.block_on(async {
        client(&b0.backend.address)
            .set(&b0.keys[0].to_le_bytes(), b"garbage")
            .await
            .expect("corrupt");
        client(&b1.backend.address)
            .del(&b1.keys[1].to_le_bytes())
            .await
            .expect("delete");
    });

    wait_for("a scrub that repairs", &s.log, || {
        metric(s.port, "zstor_scrub_runs_total") >= 1.0
            && metric(s.port, "zstor_objects_repaired_total") >= 1.0
    });
    assert!(metric(s.port, "zstor_scrub_objects_checked_total") >= 1.0);
    let after = s.rt.block_on(store.meta().get(key)).expect("meta");
    assert_ne!(
        after.shards[0].keys[0], b0.keys[0],
        "corrupt piece rewritten"
    );
    assert_ne!(
        after.shards[1].keys[1], b1.keys[1],
        "missing piece rewritten"
    );
    let status = ok(&zstor(&s.cli_cfg, &["status"]));
    assert!(status.contains("scrubbed"), "{status}");

    // Only shards 0 and 1 plus two others left: the repaired pieces are needed.
    let others: Vec<String> = after.shards[2..4]
        .iter()
        .map(|sh| sh.backend.address.clone())
        .collect();
    for z in s.data.iter_mut().filter(|z| others.contains(&z.addr)) {
        z.stop();
    }
    retrieve_exact(&s, &dir.join("out.bin"), &bytes);
}

#[test]
fn reload_moves_shards_off_a_removed_backend() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // 7 data backends for a 4+2 code: one is free to take a shard.
    let mut s = setup(dir, 7);
    let (_daemon, pid) = start_daemon(&s, "0");
    let bytes = store_input(&s, dir);
    let config = zstor::Config::from_toml(&s.good).expect("config");
    let store = zstor::Store::new(config).expect("store");
    let key = Path::new("/virtualroot/dir/input.bin");
    let before = s.rt.block_on(store.meta().get(key)).expect("meta");
    let gone = before.shards[0].backend.address.clone();

    // The operator replaces that backend in the config (it keeps running) and reloads.
    let entry = format!("[[groups.backends]]\naddress = \"{gone}\"\nnamespace = \"data\"\n");
    assert!(s.good.contains(&entry));
    std::fs::write(&s.daemon_cfg, s.good.replace(&entry, "")).expect("new config");
    signal(pid, "USR1");
    wait_for("the reload and the move", &s.log, || {
        metric(s.port, "zstor_config_reloads_total") == 1.0
            && metric(s.port, "zstor_objects_repaired_total") >= 1.0
    });
    let after = s.rt.block_on(store.meta().get(key)).expect("meta");
    assert!(
        after.shards.iter().all(|sh| sh.backend.address != gone),
        "{after:?}"
    );

    // The removed backend and two more shard holders stop: 4 shards are left.
    let mut victims = vec![gone];
    victims.extend(
        after.shards[..2]
            .iter()
            .map(|sh| sh.backend.address.clone()),
    );
    for z in s.data.iter_mut().filter(|z| victims.contains(&z.addr)) {
        z.stop();
    }
    retrieve_exact(&s, &dir.join("out.bin"), &bytes);
}

#[test]
fn sigterm_finishes_an_in_flight_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let s = setup(dir, 6);
    let (mut daemon, pid) = start_daemon(&s, "0");
    let input = dir.join("big.bin");
    let mut bytes = vec![0u8; 48 << 20];
    rand::rngs::StdRng::seed_from_u64(9).fill_bytes(&mut bytes);
    std::fs::write(&input, &bytes).expect("input");
    let mut store = Command::new(env!("CARGO_BIN_EXE_zstor"))
        .arg("-c")
        .arg(&s.cli_cfg)
        .args([
            "store",
            "-f",
            input.to_str().expect("utf8"),
            "-k",
            "/virtualroot/dir",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn store");
    // SIGTERM while the store executes in the daemon (if it finished first, the drain
    // has nothing to wait for and the rest still holds).
    let mut in_flight = false;
    wait_for("the store to start", &s.log, || {
        in_flight = metric(s.port, "zstor_requests_in_flight") >= 1.0;
        in_flight || store.try_wait().ok().flatten().is_some()
    });
    signal(pid, "TERM");
    let mut child = daemon.child.take().expect("child");
    let code = test_kit::wait::exit("monitor (SIGTERM)", &mut child, WAIT_LIMIT);
    assert!(code.success(), "monitor exit: {code}");
    test_kit::wait::exit("the store", &mut store, WAIT_LIMIT);
    let out = store.wait_with_output().expect("store output");
    ok(&out);
    assert!(
        !text(&out.stderr).contains("in-process"),
        "served by the daemon (in flight seen: {in_flight})"
    );
    assert!(!s.socket.exists(), "socket removed");
    // The daemon is gone: the CLI runs in-process and finds the drained store complete.
    let sum = ok(&zstor(
        &s.cli_cfg,
        &["check", "-f", "/virtualroot/dir/big.bin"],
    ));
    assert_eq!(sum.trim(), hex::encode(zstor::hash::blake2b_128(&bytes)));
    eprintln!("in flight at SIGTERM: {in_flight}");
}

/// The repair walk lists metadata keys over every SCAN page, not just the first (0-stor
/// v2's bug); a page holds at most 1000 entries.
#[test]
fn meta_keys_follow_every_scan_page() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = setup(tmp.path(), 6);
    let config = zstor::Config::from_toml(&s.good).expect("config");
    let meta = zstor::backend::MetaStore::new(&config).expect("meta store");
    let first = config.meta.config.backends[0].clone();
    let b = zstor::backend::Backend::new(&first).expect("backend");
    let want: Vec<String> = s.rt.block_on(async {
        let mut want = Vec::new();
        for i in 0..2500u32 {
            let key = format!("/test/meta/{i:032x}");
            b.put_key(key.as_bytes(), b"x").await.expect("set");
            want.push(key);
        }
        // Keys of another prefix are not listed.
        b.put_key(b"/other/meta/00", b"x").await.expect("set");
        want
    });
    let got = s.rt.block_on(meta.keys()).expect("keys");
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

#[test]
fn metrics_carry_the_statistics_of_the_zdbfs_mount() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = setup(dir.path(), 6);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).expect("mountpoint");
    let engine = dir.path().join("engine");
    let opts = zdbfs::MountOptions::engine(&engine);
    let store = zdbfs::open_store(&opts).expect("store");
    let mounted = zdbfs::mount(&mnt, store, &opts).expect("mount");
    std::fs::write(mnt.join("file"), vec![3u8; 200_000]).expect("write");
    let config = format!("zdbfs_mountpoint = \"{}\"\n{}", mnt.display(), s.good);
    std::fs::write(&s.daemon_cfg, config).expect("config");
    let (_daemon, _) = start_daemon(&s, "0");
    wait_for("zdbfs statistics on /metrics", &s.log, || {
        scrape(s.port)
            .and_then(|m| value(&m, "fs_bytes_written"))
            .is_some_and(|v| v >= 200_000.0)
    });
    let m = scrape(s.port).expect("metrics");
    assert!(
        value(&m, "fs_syscalls{syscall=\"write\"}").is_some_and(|v| v >= 1.0),
        "{m}"
    );
    assert!(m.contains("# TYPE fs_cache_blocks gauge"), "{m}");
    mounted.unmount().expect("unmount");
}
