//! The daemon's maintenance without the daemon: backend health probes and repair/scrub
//! sweeps for a program that embeds the store (qsfs), which keeps its own cache, signals and
//! endpoints. Writers of a metadata key in that program take [`Maintenance::key_locks`] so a
//! repair never writes back a record older than one it just stored.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{health, metrics, repair, KeyLocks, Shared, Tunables};
use crate::Store;

/// Running health and repair loops; [`Maintenance::stop`] ends them.
pub struct Maintenance {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: tokio::sync::Mutex<JoinSet<()>>,
}

/// What the repair side is doing, for status displays.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepairSummary {
    /// Data backends marked down (`address/namespace`).
    pub down: Vec<String>,
    /// Objects left in the running sweep.
    pub queue: u64,
    /// Objects repaired (a shard moved or rewritten).
    pub repaired: u64,
    /// Repairs that failed (e.g. too few healthy backends to place every shard).
    pub failures: u64,
    /// Repair sweeps run after a backend loss.
    pub sweeps: u64,
    /// Scrubs completed, and objects they checked.
    pub scrubs: u64,
    pub scrub_checked: u64,
}

impl Maintenance {
    /// Start the loops on the current tokio runtime. `origin` names the configuration in
    /// logs. Timings come from the same environment knobs as `zstor monitor`.
    pub fn start(origin: &Path, store: Arc<Store>) -> Maintenance {
        let (shared, sweeps) = Shared::new(origin, store, Tunables::from_env());
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(health::run(Arc::clone(&shared), stop_rx.clone()));
        tasks.spawn(repair::run(Arc::clone(&shared), sweeps, stop_rx));
        Maintenance {
            shared,
            stop,
            tasks: tokio::sync::Mutex::new(tasks),
        }
    }

    /// Per metadata key writer locks shared with the repair loop.
    pub fn key_locks(&self) -> &KeyLocks {
        &self.shared.key_locks
    }

    /// Health and repair counters.
    pub fn summary(&self) -> RepairSummary {
        let m = &self.shared.metrics;
        let down = match self.shared.health.lock() {
            Ok(h) => h.down_labels(),
            Err(p) => p.into_inner().down_labels(),
        };
        RepairSummary {
            down,
            queue: m.repair_queue.load(Relaxed),
            repaired: m.repaired.load(Relaxed),
            failures: m.repair_failures.load(Relaxed),
            sweeps: m.repair_sweeps.load(Relaxed),
            scrubs: m.scrub_runs.load(Relaxed),
            scrub_checked: m.scrub_checked.load(Relaxed),
        }
    }

    /// The `zstor_*` metric families (Prometheus text), as `zstor monitor` exports them.
    pub fn render_metrics(&self) -> String {
        metrics::render(&self.shared)
    }

    /// Stop the loops (they finish the object in hand first, bounded by 5 s).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let mut tasks = self.tasks.lock().await;
        let drained = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
    }
}
