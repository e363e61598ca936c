//! Named background tasks.
//!
//! A daemon's loops (repair, scrub, eviction, compaction, rotation, health probes, uploads,
//! its servers) are each one [`Tasks`] entry with a name, an optional period and a status:
//! how often it ran, how long the last run took, its last error. [`Tasks::list`] is what a
//! `status` command shows; [`Tasks::write_metrics`] exports the same. One [`Tasks::stop`]
//! ends them all, bounded; [`TaskHandle::stop`] ends one before the others (a server that
//! holds a resource the shutdown must release first).
//!
//! Three shapes, one mechanism:
//! - [`Tasks::every`]: run some async work every period (the first run one period after the
//!   start) and whenever [`TaskHandle::wake`] asks; runs never overlap;
//! - [`Tasks::every_blocking`]: the same for work that blocks (engine and file-system calls
//!   run on tokio's blocking pool);
//! - [`Tasks::spawn`]: a task with a loop of its own (a server, an uploader) that watches
//!   [`Stop`] itself; its status says whether it is still running.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::metrics::{Exposition, Kind};

/// The stop signal every task watches: cheap to clone, set once.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Wait until stop is asked for (at once if it was, or if its owner is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|set| *set).await;
    }

    /// The underlying channel, for code that selects on a `watch::Receiver<bool>`.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}

/// What a task is doing and has done, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub name: String,
    /// Seconds between runs (`None`: runs only when woken, or has a loop of its own).
    pub period_secs: Option<f64>,
    /// Whether a run is under way (for [`Tasks::spawn`]ed tasks: whether the loop lives).
    pub running: bool,
    /// Runs finished, and how many of them failed.
    pub runs: u64,
    pub failures: u64,
    /// When the last run started (seconds since the Unix epoch) and how long it took.
    pub last_started: Option<u64>,
    pub last_took_secs: Option<f64>,
    /// The error of the last failed run, cleared by a run that succeeds.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Entry {
    wake: Notify,
    status: Mutex<TaskStatus>,
    /// This task's stop, set by [`TaskHandle::stop`] or [`Tasks::stop`].
    stop: watch::Sender<bool>,
    /// Told when a run (or a spawned task's loop) ends.
    ended: Notify,
}

impl Entry {
    fn status(&self) -> std::sync::MutexGuard<'_, TaskStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn started(&self) {
        let mut s = self.status();
        s.running = true;
        s.last_started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs());
    }

    fn finished(&self, name: &str, took: Duration, outcome: Result<(), String>) {
        let mut s = self.status();
        s.running = false;
        self.ended.notify_waiters();
        s.runs += 1;
        s.last_took_secs = Some(took.as_secs_f64());
        match outcome {
            Ok(()) => s.last_error = None,
            Err(e) => {
                tracing::warn!(task = name, error = %e, "background task failed");
                s.failures += 1;
                s.last_error = Some(e);
            }
        }
    }
}

/// A way to poke one task: run it now instead of at its next period.
#[derive(Debug, Clone)]
pub struct TaskHandle(Arc<Entry>);

impl TaskHandle {
    /// Ask for a run as soon as the current one (if any) ends; wakes coalesce.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// This task's status now.
    pub fn status(&self) -> TaskStatus {
        self.0.status().clone()
    }

    /// Stop this task alone and wait, at most `bound`, until it has ended (a spawned task:
    /// its loop returned; a periodic one: no run in progress, and none will start). `false`
    /// if it was still running at the bound.
    pub async fn stop(&self, bound: Duration) -> bool {
        let _ = self.0.stop.send(true);
        let ended = async {
            loop {
                let notified = self.0.ended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !self.0.status().running {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(bound, ended).await.is_ok()
    }
}

/// The set of a daemon's background tasks and their one stop.
#[derive(Debug)]
pub struct Tasks {
    stop: watch::Sender<bool>,
    entries: Mutex<Vec<Arc<Entry>>>,
    joins: Mutex<JoinSet<()>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self::new()
    }
}

impl Tasks {
    pub fn new() -> Self {
        Tasks {
            stop: watch::channel(false).0,
            entries: Mutex::new(Vec::new()),
            joins: Mutex::new(JoinSet::new()),
        }
    }

    /// The signal [`Tasks::stop`] sets.
    pub fn stop_signal(&self) -> Stop {
        Stop(self.stop.subscribe())
    }

    fn register(&self, name: &str, period: Option<Duration>) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            wake: Notify::new(),
            status: Mutex::new(TaskStatus {
                name: name.to_owned(),
                period_secs: period.map(|p| p.as_secs_f64()),
                ..TaskStatus::default()
            }),
            // A task added after `Tasks::stop` is stopped from the start.
            stop: watch::channel(*self.stop.borrow()).0,
            ended: Notify::new(),
        });
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry.clone());
        entry
    }

    fn join_set(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.joins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `work` every `period` (never, with `None`, unless woken) until stop. A failed
    /// run is logged and kept in the status; the next run comes as usual.
    pub fn every<F, Fut, E>(&self, name: &str, period: Option<Duration>, mut work: F) -> TaskHandle
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: std::fmt::Display,
    {
        let entry = self.register(name, period);
        let (mut stop, e, name) = (Stop(entry.stop.subscribe()), entry.clone(), name.to_owned());
        self.join_set().spawn(async move {
            let mut ticker = period.map(|p| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                tokio::select! {
                    biased;
                    _ = stop.wait() => return,
                    _ = e.wake.notified() => {}
                    _ = async {
                        match ticker.as_mut() {
                            Some(t) => { t.tick().await; }
                            None => std::future::pending::<()>().await,
                        }
                    } => {}
                }
                e.started();
                let began = Instant::now();
                let outcome = work().await.map_err(|err| err.to_string());
                e.finished(&name, began.elapsed(), outcome);
            }
        });
        TaskHandle(entry)
    }

    /// [`Tasks::every`] for work that blocks: each run goes to tokio's blocking pool.
    pub fn every_blocking<F, E>(&self, name: &str, period: Option<Duration>, work: F) -> TaskHandle
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let work = Arc::new(work);
        self.every(name, period, move || {
            let work = work.clone();
            async move {
                match tokio::task::spawn_blocking(move || work().map_err(|e| e.to_string())).await {
                    Ok(r) => r,
                    Err(e) => Err(format!("panicked: {e}")),
                }
            }
        })
    }

    /// A task with a loop of its own; it must return once `Stop` is set.
    pub fn spawn<F, Fut>(&self, name: &str, task: F) -> TaskHandle
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let entry = self.register(name, None);
        entry.started();
        let (e, name) = (entry.clone(), name.to_owned());
        let fut = task(Stop(entry.stop.subscribe()));
        self.join_set().spawn(async move {
            let began = Instant::now();
            fut.await;
            e.finished(&name, began.elapsed(), Ok(()));
        });
        TaskHandle(entry)
    }

    /// Every task's status, in the order they were added.
    pub fn list(&self) -> Vec<TaskStatus> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.status().clone())
            .collect()
    }

    /// `<prefix>_task_runs_total`, `_task_failures_total` and `_task_running`, by task.
    pub fn write_metrics(&self, out: &mut Exposition, prefix: &str) {
        let list = self.list();
        type Family = (&'static str, Kind, &'static str, fn(&TaskStatus) -> u64);
        let families: [Family; 3] = [
            (
                "task_runs_total",
                Kind::Counter,
                "Runs of a background task.",
                |s| s.runs,
            ),
            (
                "task_failures_total",
                Kind::Counter,
                "Runs of a background task that failed.",
                |s| s.failures,
            ),
            (
                "task_running",
                Kind::Gauge,
                "Whether a background task is running now.",
                |s| u64::from(s.running),
            ),
        ];
        for (suffix, kind, help, value) in families {
            let name = format!("{prefix}_{suffix}");
            out.family(&name, kind, help);
            for s in &list {
                out.sample(&name, &[("task", &s.name)], value(s));
            }
        }
    }

    /// Set stop and wait for every task, at most `bound`; those still running then are
    /// aborted (a blocking run in progress finishes on its own thread, unobserved).
    pub async fn stop(&self, bound: Duration) {
        let _ = self.stop.send(true);
        for e in self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = e.stop.send(true);
        }
        // A task added after this sees stop set at once and ends by itself.
        let mut joins = std::mem::take(&mut *self.join_set());
        let drained =
            tokio::time::timeout(bound, async { while joins.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                left = joins.len(),
                "background tasks did not stop in time; aborted"
            );
            joins.abort_all();
            while joins.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn woken_task_runs_and_records_failures() {
        let tasks = Tasks::new();
        let count = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let c = count.clone();
        let handle = tasks.every("flaky", None, move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
                if n == 0 {
                    Err("first run fails")
                } else {
                    Ok(())
                }
            }
        });
        handle.wake();
        rx.recv().await.unwrap();
        // The status is written after the work returns: wait for it.
        while handle.status().runs < 1 {
            tokio::task::yield_now().await;
        }
        let s = handle.status();
        assert_eq!((s.runs, s.failures), (1, 1));
        assert_eq!(s.last_error.as_deref(), Some("first run fails"));
        handle.wake();
        rx.recv().await.unwrap();
        while handle.status().runs < 2 {
            tokio::task::yield_now().await;
        }
        let s = handle.status();
        assert_eq!((s.runs, s.failures, s.last_error), (2, 1, None));
        tasks.stop(Duration::from_secs(5)).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "no run without a wake or a period"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_task_runs_each_period_and_stops() {
        let tasks = Tasks::new();
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let handle = tasks.every_blocking("tick", Some(Duration::from_secs(10)), move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        });
        assert_eq!(handle.status().period_secs, Some(10.0));
        while handle.status().runs < 3 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tasks.stop(Duration::from_secs(5)).await;
        let after = count.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            after,
            "stopped tasks stay stopped"
        );
    }

    #[tokio::test]
    async fn spawned_task_is_listed_and_stops_on_signal() {
        let tasks = Tasks::new();
        tasks.spawn("server", |mut stop| async move { stop.wait().await });
        let list = tasks.list();
        assert_eq!(list.len(), 1);
        assert!(list[0].running);
        tasks.stop(Duration::from_secs(5)).await;
        let s = &tasks.list()[0];
        assert!(!s.running);
        assert_eq!(s.runs, 1);
        let mut out = Exposition::new();
        tasks.write_metrics(&mut out, "x");
        assert!(out
            .finish()
            .contains("x_task_runs_total{task=\"server\"} 1\n"));
    }

    #[tokio::test]
    async fn one_task_stops_alone_and_its_stop_waits_for_the_end() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let web = tasks.spawn("web", |mut stop| async move {
            stop.wait().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(());
        });
        let other = tasks.spawn("control", |mut stop| async move { stop.wait().await });
        assert!(web.stop(Duration::from_secs(5)).await);
        assert!(!web.status().running);
        assert!(rx.await.is_ok(), "the task had finished its loop");
        assert!(other.status().running, "the others go on");
        tasks.stop(Duration::from_secs(5)).await;
        assert!(!other.status().running);
    }
}
