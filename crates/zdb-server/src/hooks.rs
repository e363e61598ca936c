//! The `--hook` executable: an [`EventSink`] that runs `exe <event> <instance-id> [args…]`
//! (no shell) for engine and server events, and remembers recent runs for `HOOKS`.
//!
//! Blocking events (`ready`, `close`, `namespaces-init`, `missing-data`, `jump-index`) wait for
//! the hook to exit, bounded by a timeout, and a non-zero exit is a refusal; as in 0-db, a
//! `jump-index` hook that exits 0 resets the dirty index ids it was given. Other events are
//! spawned and reaped by a small thread. The engine emits write-path events after releasing
//! the namespace lock, so a slow hook delays only the write that caused it.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zdb_engine::{Event, EventSink, SinkError};

use crate::state::unix_now;

/// How long a blocking hook may run before it is killed and counted as a refusal.
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(300);
/// Finished runs are forgotten this long after they finished (0-db: 300 s).
const RETENTION_SECS: u64 = 300;
/// At most this many runs are remembered.
const MAX_RUNS: usize = 128;

/// One run of the hook executable, as `HOOKS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// Event name (`ready`, `jump-data`, …).
    pub event: String,
    /// Arguments after the instance id.
    pub args: Vec<String>,
    pub pid: u32,
    /// Unix time the hook was started.
    pub started: u64,
    /// Unix time it exited, 0 while running.
    pub finished: u64,
    /// Exit code, or 128 + signal; -1 while running or when it could not be started.
    pub status: i32,
}

/// Runs the hook executable for events; a no-op sink without one.
#[derive(Debug)]
pub struct HookRunner {
    exe: Option<PathBuf>,
    instance: String,
    runs: Mutex<VecDeque<Arc<Mutex<HookRun>>>>,
}

impl HookRunner {
    /// A runner for `exe` (None: events are ignored), passing `instance` as second argument.
    pub fn new(exe: Option<PathBuf>, instance: String) -> Self {
        HookRunner {
            exe,
            instance,
            runs: Mutex::new(VecDeque::new()),
        }
    }

    /// Recent runs, oldest first; finished runs older than 300 s are dropped.
    pub fn runs(&self) -> Vec<HookRun> {
        let now = unix_now();
        let mut runs = self.runs.lock();
        runs.retain(|r| {
            let r = r.lock();
            r.finished == 0 || now.saturating_sub(r.finished) < RETENTION_SECS
        });
        runs.iter().map(|r| r.lock().clone()).collect()
    }

    fn record(&self, run: HookRun) -> Arc<Mutex<HookRun>> {
        let run = Arc::new(Mutex::new(run));
        let mut runs = self.runs.lock();
        if runs.len() >= MAX_RUNS {
            runs.pop_front();
        }
        runs.push_back(run.clone());
        run
    }

    fn spawn(&self, exe: &PathBuf, name: &str, args: &[OsString]) -> Result<Child, String> {
        Command::new(exe)
            .arg(name)
            .arg(&self.instance)
            .args(args)
            .spawn()
            .map_err(|e| format!("cannot run hook {}: {e}", exe.display()))
    }

    /// Run the hook for `name` with `args`; wait for it when `blocking`.
    fn run(&self, name: &str, args: Vec<OsString>, blocking: bool) -> Result<(), String> {
        let Some(exe) = &self.exe else { return Ok(()) };
        let shown = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut run = HookRun {
            event: name.to_string(),
            args: shown,
            pid: 0,
            started: unix_now(),
            finished: 0,
            status: -1,
        };
        let mut child = match self.spawn(exe, name, &args) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(event = name, "{e}");
                run.finished = unix_now();
                self.record(run);
                return Err(e);
            }
        };
        run.pid = child.id();
        let slot = self.record(run);
        if !blocking {
            let spawned = std::thread::Builder::new()
                .name("zdb-hook-reaper".into())
                .spawn({
                    let slot = slot.clone();
                    move || {
                        let status = child.wait();
                        finish(&slot, status.ok());
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(event = name, error = %e, "cannot start hook reaper thread");
            }
            return Ok(());
        }
        let deadline = Instant::now() + BLOCKING_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    finish(&slot, None);
                    return Err(format!(
                        "hook {name} timed out after {}s",
                        BLOCKING_TIMEOUT.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    finish(&slot, None);
                    return Err(format!("waiting for hook {name}: {e}"));
                }
            }
        };
        let code = finish(&slot, status);
        if code == 0 {
            Ok(())
        } else {
            Err(format!("hook {name} exited with status {code}"))
        }
    }
}

/// Record the exit of a run; returns its status code.
fn finish(slot: &Mutex<HookRun>, status: Option<ExitStatus>) -> i32 {
    let code = status.map_or(-1, |s| {
        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
    });
    let mut r = slot.lock();
    r.finished = unix_now();
    r.status = code;
    code
}

fn ids(dirty: &[u32]) -> OsString {
    dirty
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}

/// The hook arguments of an event (after the instance id), 0-db's order.
fn hook_args(ev: &Event) -> Vec<OsString> {
    match ev {
        Event::Ready | Event::Close => vec![],
        Event::JumpData { old, new, .. } => vec![old.into(), new.into()],
        Event::JumpIndex {
            old, new, dirty, ..
        } => vec![old.into(), new.into(), ids(dirty)],
        Event::MissingData { path, .. } => vec![path.into()],
        Event::NamespacesInit {
            index_root,
            data_root,
        } => vec![index_root.into(), data_root.into()],
        Event::NamespaceCreated { namespace }
        | Event::NamespaceUpdated { namespace }
        | Event::NamespaceDeleted { namespace }
        | Event::NamespaceReloaded { namespace } => vec![namespace.into()],
        Event::NamespaceClosing {
            namespace,
            index,
            data,
            dirty,
        } => {
            vec![namespace.into(), index.into(), data.into(), ids(dirty)]
        }
    }
}

impl EventSink for HookRunner {
    fn emit(&self, event: &Event) -> Result<(), SinkError> {
        let blocking = event.is_blocking() || matches!(event, Event::Close);
        self.run(event.name(), hook_args(event), blocking)
            .map_err(SinkError::new)
    }

    fn ships_dirty_index(&self) -> bool {
        self.exe.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_follow_0db() {
        let ev = Event::JumpIndex {
            namespace: "n".into(),
            old: "/i/n/i0".into(),
            new: "/i/n/i1".into(),
            dirty: vec![0, 1],
        };
        assert_eq!(
            hook_args(&ev),
            vec![OsString::from("/i/n/i0"), "/i/n/i1".into(), "0 1".into()]
        );
        let ev = Event::NamespaceClosing {
            namespace: "n".into(),
            index: "i".into(),
            data: "d".into(),
            dirty: vec![],
        };
        assert_eq!(hook_args(&ev).last(), Some(&OsString::from("")));
    }

    #[test]
    fn no_exe_is_a_noop() {
        let h = HookRunner::new(None, "tcp://:::9900".into());
        assert!(h.emit(&Event::Ready).is_ok());
        assert!(h.runs().is_empty());
    }

    #[test]
    fn blocking_hook_status_is_reported() {
        let h = HookRunner::new(Some("/bin/false".into()), "x".into());
        assert!(h.emit(&Event::Ready).is_err());
        let runs = h.runs();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].event.as_str(), runs[0].status), ("ready", 1));
        let h = HookRunner::new(Some("/bin/true".into()), "x".into());
        assert!(h.emit(&Event::Ready).is_ok());
    }
}
