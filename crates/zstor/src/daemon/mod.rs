//! The `zstor monitor` daemon: one long-running process that serves the CLI over a unix
//! socket, watches backend health, repairs objects that lost shards, scrubs, and exports
//! Prometheus metrics.
//!
//! Owns: start-up (pid file, socket, metrics listener), the shared state every task sees
//! ([`Shared`]: the current [`Store`], metrics, backend health), signal handling (SIGUSR1
//! reloads and validates the config, keeping the old one when the new one is bad;
//! SIGTERM/SIGINT stop accepting, drain in-flight requests for a bounded time, remove the
//! socket and pid file) and the tunables read from the environment.
//!
//! Children, one concern each: [`server`] (socket protocol, request execution, the CLI's
//! client side), [`health`] (probe loop, marking backends down/up), [`repair`] (repair
//! sweeps and scrub), [`metrics`] (counters and the `/metrics` HTTP endpoint), [`evict`]
//! (keeping `zdb_data_dir_path` under `max_zdb_data_dir_size`), [`zdbfs`] (the statistics of
//! the zdbfs at `zdbfs_mountpoint`).
//!
//! [`Maintenance`] runs the health and repair loops alone for programs that embed the store
//! (qsfs).
//!
//! Must not touch: the pipeline, placement or metadata formats (it calls [`Store`]).

mod embedded;
pub mod evict;
pub mod health;
pub mod metrics;
pub mod repair;
pub mod server;
pub mod zdbfs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Semaphore};

use crate::config::{Config, ConfigError};
use crate::Store;

pub use embedded::{Maintenance, RepairSummary};

/// What can stop the daemon or a call to it.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Local I/O (socket, pid file, listener).
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error (in the message, not a `source`: printed once).
        error: std::io::Error,
    },
    /// The daemon's socket does not accept connections (the CLI falls back in-process).
    #[error("daemon socket {path} not reachable: {error}")]
    Unreachable {
        /// Socket path.
        path: PathBuf,
        /// Why (in the message, not a `source`: printed once).
        error: std::io::Error,
    },
    /// Another daemon already answers on the socket.
    #[error("another daemon is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// A malformed or oversized message, or a socket failure.
    #[error(transparent)]
    Control(service_kit::control::ControlError),
    /// The config has no `socket`.
    #[error("config field `socket`: required by `monitor`")]
    NoSocket,
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store refused the configuration.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<service_kit::control::ControlError> for DaemonError {
    fn from(e: service_kit::control::ControlError) -> Self {
        use service_kit::control::ControlError as C;
        match e {
            C::Unreachable { path, error } => DaemonError::Unreachable { path, error },
            C::AlreadyRunning(path) => DaemonError::AlreadyRunning(path),
            e => DaemonError::Control(e),
        }
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let context = context.into();
    move |error| DaemonError::Io { context, error }
}

/// Timings, from the environment so tests can shorten them (hidden knobs, not config keys:
/// the config file keeps exactly 0-stor v2's keys).
#[derive(Debug, Clone, Copy)]
pub struct Tunables {
    /// Time between two health probes (`ZSTOR_PROBE_INTERVAL_MS`, default 10 s).
    pub probe_interval: Duration,
    /// Consecutive failed probes before a backend is marked down (`ZSTOR_PROBE_FAILURES`,
    /// default 3: a loss is noticed within about 30 s plus probe timeouts).
    pub probe_failures: u32,
    /// Time between two scrubs (`ZSTOR_SCRUB_INTERVAL_SECS`, default 24 h; 0 disables).
    pub scrub_interval: Option<Duration>,
    /// How long SIGTERM waits for in-flight requests (`ZSTOR_DRAIN_SECS`, default 30 s).
    pub drain: Duration,
    /// Requests executed at once (`ZSTOR_MAX_REQUESTS`, default 4).
    pub max_requests: usize,
    /// Time between two cache eviction passes (`ZSTOR_EVICT_INTERVAL_MS`, default 30 s).
    pub evict_interval: Duration,
}

fn env_u64(name: &str, default: u64, min: u64, max: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) => n.clamp(min, max),
            Err(_) => {
                tracing::warn!(variable = name, value = %v, "not a number; using {default}");
                default
            }
        },
        Err(_) => default,
    }
}

impl Tunables {
    /// From the environment, each value clamped to a sane range.
    pub fn from_env() -> Self {
        let scrub = env_u64("ZSTOR_SCRUB_INTERVAL_SECS", 86_400, 0, 365 * 86_400);
        Self {
            probe_interval: Duration::from_millis(env_u64(
                "ZSTOR_PROBE_INTERVAL_MS",
                10_000,
                50,
                600_000,
            )),
            probe_failures: env_u64("ZSTOR_PROBE_FAILURES", 3, 1, 100) as u32,
            scrub_interval: (scrub > 0).then(|| Duration::from_secs(scrub)),
            drain: Duration::from_secs(env_u64("ZSTOR_DRAIN_SECS", 30, 0, 3600)),
            max_requests: env_u64("ZSTOR_MAX_REQUESTS", 4, 1, 256) as usize,
            evict_interval: Duration::from_millis(env_u64(
                "ZSTOR_EVICT_INTERVAL_MS",
                30_000,
                50,
                3_600_000,
            )),
        }
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
        match self.map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
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

/// State shared by the daemon's tasks.
pub struct Shared {
    config_path: PathBuf,
    store: RwLock<Arc<Store>>,
    /// Counters exported on `/metrics`.
    pub metrics: metrics::Metrics,
    /// Backend health as last probed.
    pub health: Mutex<health::Health>,
    requests: Semaphore,
    /// Per metadata key writer locks.
    pub key_locks: KeyLocks,
    /// Background stores (`store -n`), drained on SIGTERM.
    background: Mutex<tokio::task::JoinSet<()>>,
    sweeps: mpsc::Sender<repair::Sweep>,
    tunables: Tunables,
    /// The last statistics of the zdbfs at `zdbfs_mountpoint`, if it answered.
    pub zdbfs: Mutex<Option<stack_abi::zdbfs_stats::Stats>>,
}

impl Shared {
    /// The state for `store`, and the receiving end of the repair worker's sweep requests.
    fn new(
        config_path: &Path,
        store: Arc<Store>,
        tunables: Tunables,
    ) -> (Arc<Shared>, mpsc::Receiver<repair::Sweep>) {
        let (sweep_tx, sweep_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            config_path: config_path.to_path_buf(),
            store: RwLock::new(store),
            metrics: metrics::Metrics::default(),
            health: Mutex::new(health::Health::default()),
            requests: Semaphore::new(tunables.max_requests),
            key_locks: KeyLocks::default(),
            background: Mutex::new(tokio::task::JoinSet::new()),
            sweeps: sweep_tx,
            tunables,
            zdbfs: Mutex::new(None),
        });
        (shared, sweep_rx)
    }

    /// The store built from the current config.
    pub fn store(&self) -> Arc<Store> {
        match self.store.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Ask the repair worker for a sweep (coalesced: dropped if one is already queued).
    pub fn request_sweep(&self, sweep: repair::Sweep) {
        let _ = self.sweeps.try_send(sweep);
    }

    /// SIGUSR1: load and validate the config; install it only if valid.
    fn reload(&self) {
        let config = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; keeping the current config");
                return;
            }
        };
        let old = self.store();
        if config.socket != old.config().socket
            || config.prometheus_port != old.config().prometheus_port
        {
            tracing::warn!("config reload: `socket`/`prometheus_port` changes need a restart");
        }
        match Store::new(config) {
            Ok(store) => {
                match self.store.write() {
                    Ok(mut s) => *s = Arc::new(store),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(store),
                }
                tracing::info!("config reloaded");
                self.metrics.inc(&self.metrics.config_reloads);
                // Backends may have been replaced: move shards off those that left.
                self.request_sweep(repair::Sweep::Lost);
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; keeping the current config")
            }
        }
    }
}

/// Run the daemon until SIGTERM/SIGINT. `config` was loaded from `config_path`.
pub async fn run(config_path: &Path, config: Config) -> Result<(), DaemonError> {
    let tunables = Tunables::from_env();
    let socket = config.socket.clone().ok_or(DaemonError::NoSocket)?;
    let pid_file = config.pid_file.clone();
    let prometheus_port = config.prometheus_port;
    let store = Store::new(config)?;
    let (shared, sweep_rx) = Shared::new(config_path, Arc::new(store), tunables);

    let mut term = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(io_err("SIGUSR1 handler"))?;

    if socket.exists() && server::reachable(&socket).await.is_ok() {
        return Err(DaemonError::AlreadyRunning(socket));
    }
    // The metrics port before the socket: a failure there leaves no socket file behind.
    let metrics_listener = match prometheus_port {
        Some(port) => Some(metrics::bind(port).await?),
        None => None,
    };
    let listener = server::bind(&socket).await?;
    if let Some(p) = &pid_file {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            let _ = std::fs::remove_file(&socket);
            return Err(DaemonError::Io {
                context: format!("write pid file {}", p.display()),
                error: e,
            });
        }
    }
    tracing::info!(socket = %socket.display(), "zstor monitor started");

    let tasks = service_kit::Tasks::new();
    let sh = || Arc::clone(&shared);
    tasks.spawn("health", |stop| health::run(sh(), stop.receiver()));
    tasks.spawn("repair", |stop| {
        repair::run(sh(), sweep_rx, stop.receiver())
    });
    tasks.spawn("evict", |stop| evict::run(sh(), stop.receiver()));
    tasks.spawn("zdbfs-stats", |stop| zdbfs::run(sh(), stop.receiver()));
    if let Some(l) = metrics_listener {
        tasks.spawn("metrics", |stop| metrics::serve(l, sh(), stop));
    }
    let serving = service_kit::Tasks::new();
    serving.spawn("control", |stop| server::serve(listener, sh(), stop));

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => shared.reload(),
        }
    }
    tracing::info!("stopping: draining in-flight requests");
    // The control socket stops accepting at once and drains within `tunables.drain`.
    serving.stop(tunables.drain + Duration::from_secs(5)).await;
    // Background stores already accepted (`store -n`) finish too, within the same bound.
    let mut jobs = match shared.background.lock() {
        Ok(mut j) => std::mem::take(&mut *j),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    let drained = tokio::time::timeout(tunables.drain, async {
        while jobs.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(left = jobs.len(), "background stores not finished; aborted");
        jobs.abort_all();
    }
    // Background loops check the stop flag between steps; give them a moment, then abort.
    tasks.stop(Duration::from_secs(5)).await;
    let _ = std::fs::remove_file(&socket);
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("zstor monitor stopped");
    Ok(())
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
