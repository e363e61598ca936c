//! Running the real `zstor` binary from tests: bounded runs, output checks, polling, and
//! scraping the daemon's `/metrics` (test-kit's scrape).

#[allow(unused_imports)] // each test binary uses a part
pub use test_kit::metrics::{scrape, value};

use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

pub const RUN_LIMIT: Duration = Duration::from_secs(120);
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Run `zstor -c config args…`, killing it if it outlives [`RUN_LIMIT`].
pub fn zstor(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zstor"));
    cmd.arg("-c").arg(config).args(args);
    run(cmd)
}

pub fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn zstor");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(out) = rx.recv_timeout(RUN_LIMIT) {
        out.expect("wait for zstor")
    } else {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("zstor {cmd:?} did not finish within {RUN_LIMIT:?}");
    }
}

/// `zstor -c config store -f <file> -k <key_dir>`.
pub fn store_file(config: &Path, file: &Path, key_dir: &str) -> Output {
    let file = file.to_str().expect("utf8");
    zstor(config, &["store", "-f", file, "-k", key_dir])
}

/// `zstor -c config retrieve -f <key> -o <out>`.
pub fn retrieve_file(config: &Path, key: &str, out: &Path) -> Output {
    let out = out.to_str().expect("utf8");
    zstor(config, &["retrieve", "-f", key, "-o", out])
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "zstor failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[track_caller]
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "zstor should have failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// Poll `cond` until it holds; after [`WAIT_LIMIT`], panic with the daemon's log.
#[track_caller]
pub fn wait_for(what: &str, log: &Path, cond: impl FnMut() -> bool) {
    test_kit::wait::until_or(what, WAIT_LIMIT, cond, || {
        format!(
            "daemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
}

/// The value of `series` on the daemon's `/metrics`, -1 when absent or not answering.
pub fn metric(port: u16, series: &str) -> f64 {
    test_kit::metrics::get(port, series).unwrap_or(-1.0)
}
