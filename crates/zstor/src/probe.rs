//! Health of every configured backend, from `NSINFO` (what `zstor status` shows).
//!
//! Free space is the namespace's remaining quota when it has a size limit, else the free
//! space of the disk holding its data; usage is `used / (used + free)`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use zdb_client::{Client, ClientConfig, Endpoint};

use crate::config::{Backend, Config};

/// One backend as seen now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// `host:port`.
    pub address: String,
    /// Namespace (`default` when the config names none).
    pub namespace: String,
    /// Connected, selected its namespace and answered `NSINFO`.
    pub reachable: bool,
    /// `sequential` or `userkey`.
    pub mode: Option<String>,
    /// Entries (live keys).
    pub objects: Option<u64>,
    /// Payload bytes.
    pub used_bytes: Option<u64>,
    /// Bytes that can still be written (quota left, else free disk space).
    pub free_bytes: Option<u64>,
    /// The namespace's size limit (`None` or 0: no limit).
    #[serde(default)]
    pub limit_bytes: Option<u64>,
    /// Index bytes.
    #[serde(default)]
    pub index_bytes: Option<u64>,
    /// I/O errors the server counted on the namespace's index and data files.
    #[serde(default)]
    pub io_errors: Option<u64>,
    /// `used / (used + free)`, in percent.
    pub usage_percent: Option<f64>,
    /// Why it is not reachable.
    pub error: Option<String>,
}

/// All backends of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The 4 metadata backends, in config order.
    pub meta: Vec<BackendStatus>,
    /// Data backends, group by group, in config order.
    pub groups: Vec<Vec<BackendStatus>>,
}

impl BackendStatus {
    /// A backend not (yet) seen answering: nothing known but where it is.
    pub fn unreachable(address: &str, namespace: &str) -> BackendStatus {
        BackendStatus {
            address: address.into(),
            namespace: namespace.into(),
            reachable: false,
            mode: None,
            objects: None,
            used_bytes: None,
            free_bytes: None,
            limit_bytes: None,
            index_bytes: None,
            io_errors: None,
            usage_percent: None,
            error: None,
        }
    }
}

/// Probe one backend: connect (3 s timeout), select its namespace, `NSINFO`.
pub async fn probe(conf: &Backend) -> BackendStatus {
    let namespace = conf.namespace.clone().unwrap_or_else(|| "default".into());
    let mut st = BackendStatus::unreachable(&conf.address, &namespace);
    let info = async {
        let endpoint: Endpoint = conf.address.parse()?;
        let mut cc = ClientConfig::new(endpoint)
            .with_pool_size(1)
            .with_connect_timeout(Duration::from_secs(3))
            .with_request_timeout(Duration::from_secs(10));
        if let Some(ns) = &conf.namespace {
            cc = cc.with_namespace(ns, conf.password.clone());
        }
        Client::new(cc)?.nsinfo(&namespace).await
    }
    .await;
    match info {
        Err(e) => st.error = Some(e.to_string()),
        Ok(info) => {
            let used = info.data_size_bytes().unwrap_or(0);
            let free = match info.data_limits_bytes() {
                Some(limit) if limit > 0 => Some(limit.saturating_sub(used)),
                _ => info.data_disk_freespace_bytes(),
            };
            st.reachable = true;
            st.mode = info.mode().map(str::to_owned);
            st.objects = info.entries();
            st.used_bytes = Some(used);
            st.free_bytes = free;
            st.limit_bytes = info.data_limits_bytes();
            st.index_bytes = info.index_size_bytes();
            st.io_errors = match (
                info.get_u64("stats_index_io_errors"),
                info.get_u64("stats_data_io_errors"),
            ) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
            };
            st.usage_percent = free.map(|free| match used.saturating_add(free) {
                0 => 0.0,
                total => used as f64 * 100.0 / total as f64,
            });
        }
    }
    st
}

/// Probe every backend of `config` in parallel.
pub async fn status(config: &Config) -> Status {
    let mut tasks = JoinSet::new();
    let meta = &config.meta.config.backends;
    for (i, b) in meta.iter().enumerate() {
        let b = b.clone();
        tasks.spawn(async move { (None, i, probe(&b).await) });
    }
    for (g, group) in config.groups.iter().enumerate() {
        for (i, b) in group.backends.iter().enumerate() {
            let b = b.clone();
            tasks.spawn(async move { (Some(g), i, probe(&b).await) });
        }
    }
    let unknown = |b: &Backend| BackendStatus {
        error: Some("probe task failed".into()),
        ..BackendStatus::unreachable(&b.address, b.namespace.as_deref().unwrap_or("default"))
    };
    let mut out = Status {
        meta: meta.iter().map(unknown).collect(),
        groups: config
            .groups
            .iter()
            .map(|g| g.backends.iter().map(unknown).collect())
            .collect(),
    };
    while let Some(r) = tasks.join_next().await {
        let Ok((group, i, st)) = r else { continue };
        let slot = match group {
            None => out.meta.get_mut(i),
            Some(g) => out.groups.get_mut(g).and_then(|g| g.get_mut(i)),
        };
        if let Some(slot) = slot {
            *slot = st;
        }
    }
    out
}
