//! `--background`: re-execute ourselves detached (new session, no controlling terminal) and
//! return once the child reports it is ready.
//!
//! The child gets `ZDB_DAEMON_CHILD=1`, stdin `/dev/null`, stdout a pipe to the parent and
//! stderr the `--logfile` (truncated) or the parent's stderr. Once listening (after the
//! `ready` hook), the child prints [`READY_MARKER`] and points its stdout at `/dev/null`.
//! The parent forwards any other line, exits 0 on the marker and 1 if the child dies first.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Set in the environment of the detached child.
pub const CHILD_ENV: &str = "ZDB_DAEMON_CHILD";
/// Line the child prints on stdout once ready.
const READY_MARKER: &str = "ZDB-READY";

/// Whether this process is the detached child of a `--background` start.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Parent side: start the detached child and wait for its readiness.
pub fn spawn_and_wait(logfile: Option<&Path>) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find our own executable")?;
    let stderr = match logfile {
        Some(p) => Stdio::from(
            std::fs::File::create(p)
                .with_context(|| format!("cannot open logfile {}", p.display()))?,
        ),
        None => Stdio::inherit(),
    };
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it runs in
    // the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the background process")?;
    let out = child.stdout.take().context("child stdout missing")?;
    for line in BufReader::new(out).lines() {
        let line = line.context("reading from the background process")?;
        if line == READY_MARKER {
            println!("zdb: running in background (pid {})", child.id());
            return Ok(());
        }
        println!("{line}");
    }
    let status = child.wait().context("waiting for the background process")?;
    bail!("the background process exited before being ready ({status})")
}

/// Child side: tell the parent we are ready, then detach stdout from it.
pub fn notify_ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{READY_MARKER}");
    let _ = out.flush();
    drop(out);
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: both descriptors are valid and open; dup2 replaces fd 1 atomically.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}
