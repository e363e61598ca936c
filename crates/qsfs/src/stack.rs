//! The running stack's state and the operations on it: the configuration, the local engine,
//! the offloader (its event sink), the mounted filesystem and the background tasks; rotate
//! and evict here, compaction in [`crate::compact`], status in [`crate::status`].
//!
//! Owns: what the control socket, the metrics, the web UI's health panel and the background
//! tasks act on. Must not touch: start-up and shutdown order ([`crate::run`]), or how any of
//! these is served.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use service_kit::Tasks;
use zdb_engine::Engine;

use crate::config::{Config, FsyncMode};
use crate::evict::{self, EvictReport};
use crate::offload::Offloader;

/// How often the eviction pass runs.
const EVICT_EVERY: Duration = Duration::from_secs(2);

/// How often rotation by age and dispersal look at the open segments, and closed handles
/// are released.
const TICK: Duration = Duration::from_secs(1);
/// How long an fsync in strict mode (`fsync = "dispersed"`) waits for the backends.
const FSYNC_DISPERSE_WAIT: Duration = Duration::from_secs(60);

/// A running qsfs.
pub struct Stack {
    pub config: Config,
    pub engine: Arc<Engine>,
    pub offloader: Arc<Offloader>,
    pub fs: Arc<zdbfs::Fs>,
    /// Every background task (uploads, rotation, eviction, compaction, the servers).
    pub tasks: Tasks,
    /// One eviction at a time (the task and `qsfs evict`).
    evicting: std::sync::Mutex<()>,
    /// The web drive's requests per protocol (web, WebDAV, S3), for `/metrics`.
    pub traffic: Arc<qsfs_web::traffic::Traffic>,
}

impl Stack {
    pub fn new(
        config: Config,
        engine: Arc<Engine>,
        offloader: Arc<Offloader>,
        fs: Arc<zdbfs::Fs>,
    ) -> Arc<Stack> {
        Arc::new(Stack {
            config,
            engine,
            offloader,
            fs,
            tasks: Tasks::new(),
            evicting: Default::default(),
            traffic: Arc::default(),
        })
    }

    /// Start the storage tasks: uploads, handle release, rotation by age, eviction and
    /// compaction (each listed in `qsfs status`).
    pub fn start_tasks(self: &Arc<Self>) {
        let offloader = self.offloader.clone();
        self.tasks
            .spawn("upload", |stop| offloader.run_uploader(stop.receiver()));
        let s = self.clone();
        self.tasks.every_blocking("release", Some(TICK), move || {
            s.engine.release_handles();
            anyhow::Ok(())
        });
        let (s, age) = (
            self.clone(),
            Duration::from_secs(self.config.qsfs.rotate_seconds),
        );
        self.tasks.every_blocking("rotate", Some(TICK), move || {
            s.engine
                .rotate_all(age)
                .context("closing old open segments")
        });
        let q = &self.config.qsfs;
        if q.disperse_seconds > 0 {
            let (s, age, bytes) = (
                self.clone(),
                Duration::from_secs(q.disperse_seconds),
                q.disperse_mib << 20,
            );
            self.tasks
                .every_blocking("disperse", Some(TICK), move || s.disperse(age, bytes));
        }
        if q.fsync == FsyncMode::Dispersed {
            let s = Arc::downgrade(self);
            self.fs.set_fsync_barrier(Box::new(move || {
                let s = s.upgrade().ok_or("qsfs is stopping")?;
                s.disperse(Duration::ZERO, 0)
                    .map_err(|e| format!("{e:#}"))?;
                s.offloader.wait_dispersed(FSYNC_DISPERSE_WAIT)
            }));
        }
        let s = self.clone();
        self.tasks
            .every_blocking("evict", Some(EVICT_EVERY), move || {
                s.evict(false, false).map(drop)
            });
        let every = Duration::from_secs(self.config.qsfs.compact_seconds);
        let s = self.clone();
        self.tasks
            .every_blocking("compact", (!every.is_zero()).then_some(every), move || {
                s.compact(s.config.qsfs.compact_dead_percent).map(drop)
            });
    }

    /// Flush the filesystem and close every non-empty open segment (each closing stages a
    /// checkpoint).
    pub fn rotate(&self) -> anyhow::Result<()> {
        self.fs
            .flush_all(false)
            .context("flushing the filesystem")?;
        self.engine
            .rotate_all(Duration::ZERO)
            .context("closing open segments")?;
        Ok(())
    }

    /// Partial checkpoints of zdbfs's namespaces whose open segment grew (see
    /// [`zdb_engine::Namespace::snapshot_if`]), taken between two flushes of the filesystem
    /// (so no metadata transaction is half applied) and metadata first (so the data is at
    /// least as new as what the metadata names).
    pub fn disperse(&self, age: Duration, bytes: u64) -> anyhow::Result<()> {
        let order = [zdbfs::Ns::Meta, zdbfs::Ns::Data].map(|n| n.default_name());
        self.fs
            .between_flushes(|| self.engine.snapshot_all(&order, age, bytes))
            .context("dispersing the open segments")
    }

    /// One eviction pass: to the configured limit, or everything stored with `all`; zdbfs's
    /// metadata only with `metadata`. A disk fuller than the limit says (another user of it,
    /// or a limit larger than the disk) is made room on as well: stored segments go until a
    /// [`evict::keep_free`] of it is free.
    pub fn evict(&self, all: bool, metadata: bool) -> anyhow::Result<EvictReport> {
        let _one = self.evicting.lock().unwrap_or_else(|p| p.into_inner());
        let data = self.config.zdb_dir().join("data");
        let limit = match (all, self.config.cache_limit()) {
            (true, _) => 0,
            (false, Some(l)) => l.max(1),
            (false, None) => u64::MAX,
        };
        let limit = if all {
            limit
        } else {
            limit.min(evict::disk_room_limit(&data)?.max(1))
        };
        let report = evict::pass(&data, &self.offloader.manifest(), limit, metadata)
            .with_context(|| format!("evicting from {}", data.display()))?;
        if report.evicted_files > 0 {
            self.engine.release_handles();
        }
        Ok(report)
    }
}
