//! Keeping stored objects whole: backend health probes, repair sweeps after a backend loss,
//! and periodic scrubs, as three named background tasks (`health`, `repair`, `scrub`) of a
//! [`Maintenance`]. `zstor monitor` runs one beside its socket; qsfs embeds one beside its
//! own cache, signals and endpoints.
//!
//! Children, one concern each: [`health`] (probe verdicts, marking backends down/up) and
//! [`repair`] (the sweeps). Writers of a metadata key take [`Maintenance::key_locks`] so a
//! repair never writes back a record older than one just stored.
//!
//! Must not touch: the pipeline, placement or metadata formats (it calls [`Store`]), or how
//! a single object is repaired (that is [`Store::rebuild`]).

pub mod health;
pub mod repair;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use service_kit::metrics::{Exposition, Kind};
use service_kit::task::TaskHandle;
use service_kit::{TaskStatus, Tasks};

use crate::probe::BackendStatus;
use crate::Store;

/// Timings, from the environment so tests can shorten them (hidden knobs, not config keys:
/// the config file keeps exactly 0-stor v2's keys).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Time between two health probes (`ZSTOR_PROBE_INTERVAL_MS`, default 10 s).
    pub probe_interval: Duration,
    /// Consecutive failed probes before a backend is marked down (`ZSTOR_PROBE_FAILURES`,
    /// default 3: a loss is noticed within about 30 s plus probe timeouts).
    pub probe_failures: u32,
    /// Time between two scrubs (`ZSTOR_SCRUB_INTERVAL_SECS`, default 24 h; 0 disables).
    pub scrub_interval: Option<Duration>,
}

/// A number from the environment variable `name`, clamped to `min..=max`; `default` when
/// unset or not a number (the latter logged).
pub fn env_u64(name: &str, default: u64, min: u64, max: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            if let Ok(n) = v.trim().parse::<u64>() {
                n.clamp(min, max)
            } else {
                tracing::warn!(variable = name, value = %v, "not a number; using {default}");
                default
            }
        }
        Err(_) => default,
    }
}

impl Settings {
    /// From the environment, each value clamped to a sane range.
    pub fn from_env() -> Self {
        let scrub = env_u64("ZSTOR_SCRUB_INTERVAL_SECS", 86_400, 0, 365 * 86_400);
        Settings {
            probe_interval: Duration::from_millis(env_u64(
                "ZSTOR_PROBE_INTERVAL_MS",
                10_000,
                50,
                600_000,
            )),
            probe_failures: u32::try_from(env_u64("ZSTOR_PROBE_FAILURES", 3, 1, 100)).unwrap_or(3),
            scrub_interval: (scrub > 0).then(|| Duration::from_secs(scrub)),
        }
    }
}

/// Counters of the repair side (exported as `zstor_*` metrics).
#[derive(Debug, Default)]
pub struct RepairCounters {
    /// Objects left in the running repair or scrub sweep.
    pub queue: AtomicU64,
    /// Objects repaired (something moved or rewritten).
    pub repaired: AtomicU64,
    /// Repairs that failed.
    pub failures: AtomicU64,
    /// Repair sweeps run.
    pub sweeps: AtomicU64,
    /// Objects checked by scrubs.
    pub scrub_checked: AtomicU64,
    /// Objects in the running scrub (0 when none runs).
    pub scrub_total: AtomicU64,
    /// Scrubs completed.
    pub scrub_runs: AtomicU64,
    /// Objects below full redundancy (pieces never written, or shards on a down or removed
    /// backend) that the last complete sweep could not repair.
    pub degraded: AtomicU64,
    /// [`crate::Store::degraded_stores`] at the last probe (a change asks for a sweep).
    pub(crate) degraded_seen: AtomicU64,
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
    /// Objects below full redundancy that the last sweep could not repair.
    #[serde(default)]
    pub degraded: u64,
}

/// The running health, repair and scrub tasks and what they share.
pub struct Maintenance {
    origin: PathBuf,
    store: RwLock<Arc<Store>>,
    health: Mutex<health::Health>,
    /// Counters of the sweeps.
    pub counters: RepairCounters,
    key_locks: KeyLocks,
    settings: Settings,
    tasks: Tasks,
    /// The `repair` task, woken for a sweep of objects on lost backends.
    repair: OnceLock<TaskHandle>,
    /// One sweep at a time (repair or scrub).
    sweeping: tokio::sync::Mutex<()>,
}

impl Maintenance {
    /// Start the tasks on the current tokio runtime. `origin` names the configuration in
    /// logs.
    pub fn start(origin: &Path, store: Arc<Store>, settings: Settings) -> Arc<Maintenance> {
        let m = Arc::new(Maintenance {
            origin: origin.to_path_buf(),
            store: RwLock::new(store),
            health: Mutex::new(health::Health::default()),
            counters: RepairCounters::default(),
            key_locks: KeyLocks::default(),
            settings,
            tasks: Tasks::new(),
            repair: OnceLock::new(),
            sweeping: tokio::sync::Mutex::new(()),
        });
        let (stop, me) = (m.tasks.stop_signal(), Arc::clone(&m));
        let repair = m.tasks.every("repair", None, move || {
            let (me, stop) = (Arc::clone(&me), stop.clone());
            async move { me.sweep(repair::Sweep::Lost, &stop).await }
        });
        let _ = m.repair.set(repair);
        let (stop, me) = (m.tasks.stop_signal(), Arc::clone(&m));
        m.tasks.every("scrub", settings.scrub_interval, move || {
            let (me, stop) = (Arc::clone(&me), stop.clone());
            async move { me.sweep(repair::Sweep::Scrub, &stop).await }
        });
        let (me, mut probes) = (Arc::clone(&m), 0u64);
        let health = m
            .tasks
            .every("health", Some(settings.probe_interval), move || {
                probes = probes.wrapping_add(1);
                let (me, probe) = (Arc::clone(&me), probes);
                async move {
                    me.probe(probe).await;
                    Ok::<(), String>(())
                }
            });
        // The first probe at once: status and /metrics know the backends from the start,
        // not one probe interval (10 s by default) later.
        health.wake();
        m
    }

    /// Where the configuration came from (for logs).
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The store built from the current config.
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Use `store` from now on (a reloaded config), and sweep: backends may have left.
    pub fn replace_store(&self, store: Store) {
        *self.store.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(store);
        self.request_repair();
    }

    /// Ask for a sweep of the objects on lost backends (coalesced with one already asked).
    pub fn request_repair(&self) {
        if let Some(r) = self.repair.get() {
            r.wake();
        }
    }

    /// Per metadata key writer locks shared with the repair task.
    pub fn key_locks(&self) -> &KeyLocks {
        &self.key_locks
    }

    fn health(&self) -> std::sync::MutexGuard<'_, health::Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last probe of every backend, and the data backends marked down.
    pub fn backends(&self) -> (Option<crate::probe::Status>, Vec<String>) {
        let h = self.health();
        (h.last.clone(), h.down_labels())
    }

    /// Health and repair counters.
    pub fn summary(&self) -> RepairSummary {
        let c = &self.counters;
        RepairSummary {
            down: self.health().down_labels(),
            queue: c.queue.load(Relaxed),
            repaired: c.repaired.load(Relaxed),
            failures: c.failures.load(Relaxed),
            sweeps: c.sweeps.load(Relaxed),
            scrubs: c.scrub_runs.load(Relaxed),
            scrub_checked: c.scrub_checked.load(Relaxed),
            degraded: c.degraded.load(Relaxed),
        }
    }

    /// The tasks' status.
    pub fn tasks(&self) -> Vec<TaskStatus> {
        self.tasks.list()
    }

    /// The repair, scrub and backend families (`zstor_*`, as `zstor monitor` exports them)
    /// and the tasks' runs (`zstor_task_*`).
    pub fn write_metrics(&self, out: &mut Exposition) {
        let c = &self.counters;
        for (name, kind, help, v) in [
            (
                "zstor_repair_queue_length",
                Kind::Gauge,
                "Objects left in the running repair or scrub sweep.",
                &c.queue,
            ),
            (
                "zstor_objects_repaired_total",
                Kind::Counter,
                "Objects whose shards were moved or rewritten by the daemon.",
                &c.repaired,
            ),
            (
                "zstor_repair_failures_total",
                Kind::Counter,
                "Object repairs that failed.",
                &c.failures,
            ),
            (
                "zstor_repair_sweeps_total",
                Kind::Counter,
                "Repair sweeps run (after a backend loss or a config reload).",
                &c.sweeps,
            ),
            (
                "zstor_scrub_objects_checked_total",
                Kind::Counter,
                "Objects read and verified by scrubs.",
                &c.scrub_checked,
            ),
            (
                "zstor_scrub_objects_in_run",
                Kind::Gauge,
                "Objects in the running scrub (0: none running).",
                &c.scrub_total,
            ),
            (
                "zstor_scrub_runs_total",
                Kind::Counter,
                "Scrubs completed.",
                &c.scrub_runs,
            ),
            (
                "zstor_objects_degraded",
                Kind::Gauge,
                "Objects below full redundancy the last sweep could not repair (missing pieces, shards on down backends).",
                &c.degraded,
            ),
        ] {
            out.single(name, kind, help, v.load(Relaxed));
        }
        let store = self.store();
        out.single(
            "zstor_hedged_reads_total",
            Kind::Counter,
            "Piece requests made because an answer was late (retrieve).",
            store.hedged_reads(),
        );
        out.single(
            "zstor_degraded_stores_total",
            Kind::Counter,
            "Stores that succeeded below full redundancy (backends down, failing or lagging).",
            store.degraded_stores(),
        );
        self.write_backend_metrics(out);
        self.tasks.write_metrics(out, "zstor");
    }

    /// The per-backend families from the last probe.
    fn write_backend_metrics(&self, out: &mut Exposition) {
        fn labels<'a>(kind: &'a str, b: &'a BackendStatus) -> [(&'static str, &'a str); 3] {
            [
                ("address", &b.address),
                ("namespace", &b.namespace),
                ("kind", kind),
            ]
        }
        type Field = fn(&BackendStatus) -> Option<u64>;
        let (status, down) = self.backends();
        let mut backends: Vec<(&str, &BackendStatus)> = Vec::new();
        if let Some(st) = &status {
            backends.extend(st.meta.iter().map(|b| ("meta", b)));
            backends.extend(st.groups.iter().flatten().map(|b| ("data", b)));
        }
        let per_backend: [(&str, &str, Field); 7] = [
            (
                "zstor_backend_reachable",
                "Backend answered the last probe (1) or not (0).",
                |b| Some(u64::from(b.reachable)),
            ),
            (
                "zstor_backend_entries",
                "Entries in the backend's namespace.",
                |b| b.objects,
            ),
            (
                "zstor_backend_data_size_bytes",
                "Data bytes in the namespace.",
                |b| b.used_bytes,
            ),
            (
                "zstor_backend_data_limit_bytes",
                "Namespace size limit (0: none).",
                |b| Some(b.limit_bytes.unwrap_or(0)),
            ),
            (
                "zstor_backend_index_size_bytes",
                "Index bytes of the namespace.",
                |b| b.index_bytes,
            ),
            (
                "zstor_backend_io_errors",
                "I/O errors on the namespace's files, as the server counts them.",
                |b| b.io_errors,
            ),
            (
                "zstor_backend_free_bytes",
                "Bytes that can still be written.",
                |b| b.free_bytes,
            ),
        ];
        for (name, help, field) in per_backend {
            out.family(name, Kind::Gauge, help);
            for (kind, b) in &backends {
                if let Some(v) = field(b) {
                    out.sample(name, &labels(kind, b), v);
                }
            }
        }
        out.family(
            "zstor_backend_down",
            Kind::Gauge,
            "Data backend marked down by the health probe (failed consecutive probes).",
        );
        for (kind, b) in backends.iter().filter(|(k, _)| *k == "data") {
            let is_down = down.contains(&format!("{}/{}", b.address, b.namespace));
            out.sample("zstor_backend_down", &labels(kind, b), u64::from(is_down));
        }
    }

    /// [`Maintenance::write_metrics`] as text.
    pub fn render_metrics(&self) -> String {
        let mut out = Exposition::new();
        self.write_metrics(&mut out);
        out.finish()
    }

    /// Stop the tasks (they finish the object in hand first, bounded by 5 s).
    pub async fn stop(&self) {
        self.tasks.stop(Duration::from_secs(5)).await;
    }
}

/// Serializes the writers of one metadata key (a client's store or rebuild, a repair) so
/// a repair cannot write back a record older than the one a concurrent store just wrote.
#[derive(Debug, Default)]
pub struct KeyLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while writing one metadata key; released (and forgotten when unused) on drop.
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for exclusive use of `key`.
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let m = Arc::clone(self.map().entry(key.to_owned()).or_default());
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(m.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut map = self.locks.map();
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn key_locks_serialize_and_forget_unused_keys() {
        let locks = KeyLocks::default();
        let a = locks.lock("a").await;
        // Another key is independent.
        drop(locks.lock("b").await);
        // The same key waits.
        let again = tokio::time::timeout(Duration::from_millis(50), locks.lock("a")).await;
        assert!(again.is_err(), "second writer of `a` must wait");
        drop(a);
        drop(locks.lock("a").await);
        assert!(locks.map().is_empty(), "unused keys are forgotten");
    }
}
