//! State shared by every connection of one server: engine, configuration, counters, waiters,
//! hooks and identity.

use crate::admission::Registry;
use crate::config::ServerConfig;
use crate::hooks::HookRunner;
use crate::stats::Stats;
use crate::wait::Waiters;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use zdb_engine::{Engine, Namespace, DEFAULT_NAMESPACE};

/// Shared by all connections through an `Arc`.
pub(crate) struct ServerState {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    pub stats: Stats,
    pub waiters: Waiters,
    pub hooks: Arc<HookRunner>,
    /// INFO `instance_id`: random, new each boot.
    pub instance_id: u32,
    pub boot_time: u64,
    /// Monotonic boot instant, for INFO `uptime`.
    pub boot_instant: Instant,
    /// Live connections (for `--max-clients`).
    pub clients: AtomicUsize,
    /// Their silence, for giving an idle one's slot to a new client.
    pub admission: Registry,
    next_conn_id: AtomicU64,
}

impl ServerState {
    pub fn new(engine: Arc<Engine>, config: ServerConfig, hooks: Arc<HookRunner>) -> Self {
        ServerState {
            engine,
            config,
            stats: Stats::default(),
            waiters: Waiters::default(),
            hooks,
            instance_id: rand::random::<u32>() % (1 << 30) + 1,
            boot_time: unix_now(),
            boot_instant: Instant::now(),
            clients: AtomicUsize::new(0),
            admission: Registry::default(),
            next_conn_id: AtomicU64::new(1),
        }
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether admin commands are open to everybody (no `--admin`).
    pub fn everyone_admin(&self) -> bool {
        self.config.admin.is_none()
    }

    /// The password protecting `ns`: its own, or under `--protect` the admin password for
    /// `default` (held in memory only, as 0-db does).
    pub fn ns_password(&self, ns: &Namespace) -> Option<String> {
        let own = ns.settings().password;
        if own.is_none() && self.config.protect && ns.name() == DEFAULT_NAMESPACE {
            return self.config.admin.clone();
        }
        own
    }

    /// The namespace every connection starts on.
    pub fn default_namespace(&self) -> Option<Arc<Namespace>> {
        self.engine.namespace(DEFAULT_NAMESPACE)
    }
}

/// Seconds since the unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
