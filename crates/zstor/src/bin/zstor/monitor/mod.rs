//! `zstor monitor`: one long-running process that serves the CLI over a unix socket, runs
//! the store's maintenance (health probes, repair, scrub: [`zstor::maintenance`]), keeps
//! the local zdb data folder under its limit, and exports Prometheus metrics.
//!
//! Owns: start-up (pid file, socket, metrics listener), the state every task sees
//! ([`Monitor`]: the maintenance with the current store, request metrics, the background
//! store queue), signal handling (SIGUSR1 reloads and validates the config, keeping the old
//! one when the new one is bad; SIGTERM/SIGINT stop accepting, drain in-flight requests for
//! a bounded time, remove the socket and pid file) and the tunables read from the
//! environment. Every loop is a named service-kit task.
//!
//! Children, one concern each: [`server`] (requests and their execution, the CLI's client
//! side), [`metrics`] (counters and the `/metrics` endpoint), [`evict`] (keeping
//! `zdb_data_dir_path` under `max_zdb_data_dir_size`), [`zdbfs`] (the statistics of the zdbfs
//! at `zdbfs_mountpoint`).
//!
//! Must not touch: the pipeline, placement or metadata formats (it calls [`Store`]).

pub mod evict;
pub mod metrics;
pub mod server;
pub mod zdbfs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;
use zstor::config::{Config, ConfigError};
use zstor::maintenance::{env_u64, Maintenance, Settings};
use zstor::Store;

/// What can stop the daemon or a call to it.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
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
    Store(#[from] zstor::Error),
}

impl From<service_kit::control::ControlError> for MonitorError {
    fn from(e: service_kit::control::ControlError) -> Self {
        use service_kit::control::ControlError as C;
        match e {
            C::Unreachable { path, error } => MonitorError::Unreachable { path, error },
            C::AlreadyRunning(path) => MonitorError::AlreadyRunning(path),
            e => MonitorError::Control(e),
        }
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> MonitorError {
    let context = context.into();
    move |error| MonitorError::Io { context, error }
}

/// The monitor's own timings, from the environment like [`Settings`] (hidden knobs, not
/// config keys: the config file keeps exactly 0-stor v2's keys).
#[derive(Debug, Clone, Copy)]
pub struct Tunables {
    /// How long SIGTERM waits for in-flight requests (`ZSTOR_DRAIN_SECS`, default 30 s).
    pub drain: Duration,
    /// Requests executed at once (`ZSTOR_MAX_REQUESTS`, default 4).
    pub max_requests: usize,
    /// Time between two cache eviction passes (`ZSTOR_EVICT_INTERVAL_MS`, default 30 s).
    pub evict_interval: Duration,
}

impl Tunables {
    /// From the environment, each value clamped to a sane range.
    pub fn from_env() -> Self {
        Self {
            drain: Duration::from_secs(env_u64("ZSTOR_DRAIN_SECS", 30, 0, 3600)),
            max_requests: usize::try_from(env_u64("ZSTOR_MAX_REQUESTS", 4, 1, 256)).unwrap_or(4),
            evict_interval: Duration::from_millis(env_u64(
                "ZSTOR_EVICT_INTERVAL_MS",
                30_000,
                50,
                3_600_000,
            )),
        }
    }
}

/// State shared by the monitor's tasks.
pub struct Monitor {
    config_path: PathBuf,
    /// Health, repair and scrub, with the current store.
    pub maintenance: Arc<Maintenance>,
    /// Counters exported on `/metrics`.
    pub metrics: metrics::Metrics,
    requests: Semaphore,
    /// Background stores (`store -n`), drained on SIGTERM.
    background: Mutex<tokio::task::JoinSet<()>>,
    tunables: Tunables,
    /// The last statistics of the zdbfs at `zdbfs_mountpoint`, if it answered.
    pub zdbfs: Mutex<Option<stack_abi::zdbfs_stats::Stats>>,
}

impl Monitor {
    /// The store built from the current config.
    pub fn store(&self) -> Arc<Store> {
        self.maintenance.store()
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
                // Backends may have been replaced: the maintenance sweeps shards off those
                // that left.
                self.maintenance.replace_store(store);
                tracing::info!("config reloaded");
                self.metrics.inc(&self.metrics.config_reloads);
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; keeping the current config");
            }
        }
    }
}

/// Run the daemon until SIGTERM/SIGINT. `config` was loaded from `config_path`.
pub async fn run(config_path: &Path, config: Config) -> Result<(), MonitorError> {
    let tunables = Tunables::from_env();
    let socket = config.socket.clone().ok_or(MonitorError::NoSocket)?;
    let pid_file = config.pid_file.clone();
    let prometheus_port = config.prometheus_port;
    let store = Store::new(config)?;
    let shared = Arc::new(Monitor {
        config_path: config_path.to_path_buf(),
        maintenance: Maintenance::start(config_path, Arc::new(store), Settings::from_env()),
        metrics: metrics::Metrics::default(),
        requests: Semaphore::new(tunables.max_requests),
        background: Mutex::new(tokio::task::JoinSet::new()),
        tunables,
        zdbfs: Mutex::new(None),
    });

    let mut term = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(io_err("SIGUSR1 handler"))?;

    if socket.exists() && server::reachable(&socket).await.is_ok() {
        return Err(MonitorError::AlreadyRunning(socket));
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
            return Err(MonitorError::Io {
                context: format!("write pid file {}", p.display()),
                error: e,
            });
        }
    }
    tracing::info!(socket = %socket.display(), "zstor monitor started");

    let tasks = service_kit::Tasks::new();
    let sh = || Arc::clone(&shared);
    let (me, stop) = (sh(), tasks.stop_signal());
    tasks.every("evict", Some(tunables.evict_interval), move || {
        let (me, stop) = (Arc::clone(&me), stop.clone());
        async move { evict::pass(&me, &stop).await }
    });
    let me = sh();
    tasks.every("zdbfs-stats", Some(zdbfs::POLL_EVERY), move || {
        zdbfs::poll(Arc::clone(&me))
    });
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
    // Background tasks check the stop flag between steps; give them a moment, then abort.
    tasks.stop(Duration::from_secs(5)).await;
    shared.maintenance.stop().await;
    let _ = std::fs::remove_file(&socket);
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("zstor monitor stopped");
    Ok(())
}
