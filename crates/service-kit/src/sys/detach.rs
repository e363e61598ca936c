//! Running in the background: re-execute the program detached (a new session, no
//! controlling terminal) and return in the parent once the child says it is ready.
//!
//! Re-executing, rather than forking, keeps the child a fresh process whatever threads the
//! parent had. The child gets [`CHILD_ENV`] set, stdin `/dev/null`, stdout a pipe to the
//! parent and stderr the log file (appended to) or the parent's stderr. When ready it calls
//! [`notify_ready`], which prints [`READY_MARKER`] and points its stdout at `/dev/null`.
//! The parent forwards any other line, returns on the marker, and fails if the child dies
//! first.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Set in the environment of the detached child.
pub const CHILD_ENV: &str = "QSFS_DETACHED_CHILD";
/// Line the child prints on stdout once ready.
pub const READY_MARKER: &str = "QSFS-DETACHED-READY";

/// Why the background start failed.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("the background process exited before being ready ({0})")]
    Died(std::process::ExitStatus),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DetachError {
    let context = context.into();
    move |error| DetachError::Io { context, error }
}

/// Whether this process is the detached child of a background start.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Parent side: start the detached child with our own arguments and wait for it to be
/// ready; returns its pid.
pub fn spawn_and_wait(logfile: Option<&Path>) -> Result<u32, DetachError> {
    let exe = std::env::current_exe().map_err(io("finding our own executable"))?;
    let stderr = match logfile {
        Some(p) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(io(format!("opening log file {}", p.display())))?,
        ),
        None => Stdio::inherit(),
    };
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // SAFETY: the closure runs in the forked child before exec and only calls setsid(2),
    // which is async-signal-safe and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| rustix::process::setsid().map(drop).map_err(Into::into));
    }
    let mut child = cmd.spawn().map_err(io("starting the background process"))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(io("reading from the background process"))?;
            if line == READY_MARKER {
                return Ok(child.id());
            }
            println!("{line}");
        }
    }
    let status = child
        .wait()
        .map_err(io("waiting for the background process"))?;
    Err(DetachError::Died(status))
}

/// Child side: tell the parent we are ready, then detach stdout from it.
pub fn notify_ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{READY_MARKER}");
    let _ = out.flush();
    drop(out);
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}
