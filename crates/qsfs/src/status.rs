//! `qsfs status`: backends, code, cache use, segments local/offloaded, offload and fetch
//! activity, filesystem counters. Gathered by the running qsfs, sent over the control socket
//! as JSON, printed by the CLI.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use crate::manifest::segment_number;
use crate::stack::Stack;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub mountpoint: String,
    pub config: String,
    /// `k+m`.
    pub code: String,
    pub cache: Cache,
    pub namespaces: Vec<Namespace>,
    pub offload: Offload,
    pub compaction: Compaction,
    pub backends: Vec<Backend>,
    /// zdbfs's counters.
    pub filesystem: zdbfs::metrics::Snapshot,
    /// zstor's health and repair loops.
    pub repair: zstor::maintenance::RepairSummary,
    /// qsfs's background tasks and endpoints.
    #[serde(default)]
    pub tasks: Vec<service_kit::TaskStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cache {
    pub dir: String,
    /// Bytes of local data segments.
    pub bytes: u64,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    pub open_segment: u32,
    /// Data segments on local disk (including the open one).
    pub local_segments: usize,
    /// Data segments stored on the backends.
    pub offloaded_segments: usize,
    /// Stored and not on local disk (fetched back on read).
    pub evicted_segments: usize,
    /// Last checkpoint on the backends.
    pub checkpoint: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offload {
    /// Checkpoints staged locally and not uploaded yet.
    pub pending: usize,
    /// What losing this machine now would lose (bytes and age; see `Offloader::exposure`).
    #[serde(default)]
    pub exposure: crate::offload::Exposure,
    pub checkpoints_uploaded: u64,
    pub bytes_uploaded: u64,
    pub upload_failures: u64,
    pub last_error: Option<String>,
    pub segments_fetched: u64,
    /// First reads of evicted segments served from the chunk covering them.
    #[serde(default)]
    pub ranges_fetched: u64,
    /// Fetches put off for lack of room on the cache's disk.
    #[serde(default)]
    pub fetches_without_room: u64,
    pub bytes_fetched: u64,
    pub fetch_failures: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Compaction {
    /// Bytes of stored data segments no live record uses (what compaction could give back).
    pub reclaimable_bytes: u64,
    pub segments_compacted: u64,
    pub records_moved: u64,
    /// Stored copies replaced by emptied ones, and the stored bytes that gave back.
    pub copies_replaced: u64,
    pub bytes_given_back: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backend {
    /// `meta` or `data`.
    pub role: String,
    pub address: String,
    pub namespace: Option<String>,
    pub up: bool,
}

impl Status {
    pub async fn gather(stack: &Stack) -> Status {
        let config = &stack.config;
        let manifest = stack.offloader.manifest();
        let data_dir = config.zdb_dir().join("data");
        let mut namespaces = Vec::new();
        let mut reclaimable_bytes = 0;
        for name in stack.engine.list() {
            let Some(ns) = stack.engine.namespace(&name) else {
                continue;
            };
            if name == zdb_engine::DEFAULT_NAMESPACE && ns.is_empty() {
                continue;
            }
            let local: BTreeSet<u32> = std::fs::read_dir(data_dir.join(&name))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| segment_number(&e.file_name().to_string_lossy(), 'd'))
                .collect();
            let m = manifest.namespaces.get(&name);
            let stored: BTreeSet<u32> = m
                .map(|m| m.data.keys().copied().collect())
                .unwrap_or_default();
            if let Some(m) = m {
                reclaimable_bytes += crate::compact::stored_usage(&ns, m)
                    .map(|u| u.dead())
                    .sum::<u64>();
            }
            namespaces.push(Namespace {
                open_segment: ns.info().current_segment,
                local_segments: local.len(),
                offloaded_segments: stored.len(),
                evicted_segments: stored.difference(&local).count(),
                checkpoint: m.map(|m| m.checkpoint),
                name,
            });
        }
        let s = &stack.offloader.stats;
        let offload = Offload {
            pending: stack.offloader.pending().len(),
            exposure: stack.offloader.exposure(&stack.engine),
            checkpoints_uploaded: s.checkpoints_uploaded.load(Relaxed),
            bytes_uploaded: s.bytes_uploaded.load(Relaxed),
            upload_failures: s.upload_failures.load(Relaxed),
            last_error: stack.offloader.last_error(),
            segments_fetched: s.segments_fetched.load(Relaxed),
            ranges_fetched: s.ranges_fetched.load(Relaxed),
            fetches_without_room: s.fetches_without_room.load(Relaxed),
            bytes_fetched: s.bytes_fetched.load(Relaxed),
            fetch_failures: s.fetch_failures.load(Relaxed),
        };
        let compaction = Compaction {
            reclaimable_bytes,
            segments_compacted: s.segments_compacted.load(Relaxed),
            records_moved: s.records_moved.load(Relaxed),
            copies_replaced: s.copies_replaced.load(Relaxed),
            bytes_given_back: s.bytes_given_back.load(Relaxed),
        };
        Status {
            mountpoint: config.qsfs.mountpoint.display().to_string(),
            config: config.path.display().to_string(),
            code: format!(
                "{}+{}",
                config.zstor.minimal_shards,
                config.zstor.expected_shards - config.zstor.minimal_shards
            ),
            cache: Cache {
                dir: config.qsfs.cache_dir.display().to_string(),
                bytes: crate::evict::local_bytes(&data_dir).unwrap_or(0),
                limit: config.cache_limit(),
            },
            namespaces,
            offload,
            compaction,
            backends: backends(&config.zstor).await,
            filesystem: stack.fs.metrics().snapshot(),
            repair: stack.offloader.maintenance().summary(),
            tasks: stack.tasks.list(),
        }
    }

    /// The human-readable form.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let _ = writeln!(o, "mount      {}", self.mountpoint);
        let _ = writeln!(o, "config     {}", self.config);
        let _ = writeln!(
            o,
            "code       {} (any {} of the data backends rebuild a file)",
            self.code,
            self.code.split('+').next().unwrap_or("?")
        );
        let limit = self
            .cache
            .limit
            .map(|l| format!("{:.0} MiB", mib(l)))
            .unwrap_or("none".into());
        let _ = writeln!(
            o,
            "cache      {:.1} MiB of {limit} in {}",
            mib(self.cache.bytes),
            self.cache.dir
        );
        let _ = writeln!(o, "namespaces");
        for n in &self.namespaces {
            let cp = n.checkpoint.map(|c| c.to_string()).unwrap_or("-".into());
            let _ = writeln!(
                o,
                "  {:<12} open segment {:>4}  local {:>4}  offloaded {:>4}  evicted {:>4}  last checkpoint {cp}",
                n.name, n.open_segment, n.local_segments, n.offloaded_segments, n.evicted_segments
            );
        }
        let f = &self.offload;
        let _ = writeln!(
            o,
            "offload    {} pending, {} uploaded ({:.1} MiB), {} failures{}",
            f.pending,
            f.checkpoints_uploaded,
            mib(f.bytes_uploaded),
            f.upload_failures,
            f.last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "exposure   {:.1} MiB written in the last {:.0} s are not on the backends yet",
            mib(f.exposure.bytes),
            f.exposure.seconds
        );
        let _ = writeln!(
            o,
            "fetch      {} segments ({:.1} MiB), {} first reads served ahead of their segment, {} failures",
            f.segments_fetched,
            mib(f.bytes_fetched),
            f.ranges_fetched,
            f.fetch_failures
        );
        if f.fetches_without_room > 0 {
            let _ = writeln!(
                o,
                "           {} fetches put off: no room on the cache's disk (reads served range by range)",
                f.fetches_without_room
            );
        }
        let c = &self.compaction;
        let _ = writeln!(
            o,
            "compaction {:.1} MiB reclaimable; {} segments emptied, {} copies replaced, {:.1} MiB given back",
            mib(c.reclaimable_bytes),
            c.segments_compacted,
            c.copies_replaced,
            mib(c.bytes_given_back)
        );
        let up = self.backends.iter().filter(|b| b.up).count();
        let _ = writeln!(o, "backends   {up}/{} up", self.backends.len());
        for b in &self.backends {
            let _ = writeln!(
                o,
                "  {:<4} {:<22} {:<12} {}",
                b.role,
                b.address,
                b.namespace.as_deref().unwrap_or("default"),
                if b.up { "up" } else { "DOWN" }
            );
        }
        let x = &self.filesystem;
        let _ = writeln!(
            o,
            "filesystem {} ops, {} reads ({:.1} MiB), {} writes ({:.1} MiB), cache {} hits / {} misses, \
             {} errors, {} refused (unsupported or not allowed, e.g. ACLs, file clones)",
            x.ops, x.calls.read, mib(x.bytes_read), x.calls.write, mib(x.bytes_written), x.cache_hits, x.cache_misses,
            x.errors, x.refused
        );
        let r = &self.repair;
        let down = if r.down.is_empty() {
            "no backend marked down".to_string()
        } else {
            format!("marked down: {}", r.down.join(", "))
        };
        let _ = writeln!(
            o,
            "repair     {down}; {} repaired, {} failed, {} left in the sweep, {} below full redundancy; {} scrubs ({} objects checked)",
            r.repaired, r.failures, r.queue, r.degraded, r.scrubs, r.scrub_checked
        );
        let _ = writeln!(o, "tasks");
        for t in &self.tasks {
            let every = t
                .period_secs
                .map(|p| format!("every {p:.0} s"))
                .unwrap_or_else(|| "on demand".into());
            let state = if t.running { "running" } else { "idle" };
            let error = t
                .last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {:<10} {every:<14} {state:<8} {} runs, {} failed{error}",
                t.name, t.runs, t.failures
            );
        }
        o
    }
}

/// The web UI's health panel shows what `qsfs status --json` shows.
impl qsfs_web::StorageStatus for Stack {
    fn status(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send + '_>> {
        Box::pin(async move {
            serde_json::to_value(Status::gather(self).await).unwrap_or(serde_json::Value::Null)
        })
    }
}

async fn backends(config: &zstor::Config) -> Vec<Backend> {
    let mut list: Vec<(&str, &zstor::config::Backend)> = config
        .meta
        .config
        .backends
        .iter()
        .map(|b| ("meta", b))
        .collect();
    list.extend(config.backends().map(|b| ("data", b)));
    let probes = list.iter().map(|(_, b)| {
        let b = (*b).clone();
        async move {
            match zstor::backend::Backend::new(&b) {
                Ok(conn) => conn.ping().await,
                Err(_) => false,
            }
        }
    });
    let up = futures_util::future::join_all(probes).await;
    list.into_iter()
        .zip(up)
        .map(|((role, b), up)| Backend {
            role: role.into(),
            address: b.address.clone(),
            namespace: b.namespace.clone(),
            up,
        })
        .collect()
}
