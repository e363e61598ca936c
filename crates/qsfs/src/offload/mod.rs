//! Offload: the engine's event sink that stages a checkpoint of every closed segment, the
//! uploader that stores staged checkpoints through zstor, and the fetch of evicted segments
//! on a read.
//!
//! A checkpoint is taken under the namespace lock at each jump (`EventSink::checkpoint`):
//! the closed data segment is hard-linked and the changed index files and the descriptor are
//! copied into `staging/<ns>/<N>.tmp`, synced, and renamed to `staging/<ns>/<N>`: a crash
//! leaves either a whole staged checkpoint or none, and the engine only forgets its dirty
//! index ids once the rename is done. The first checkpoint of each namespace in a run copies
//! every index file, because the engine's dirty set does not survive a restart.
//!
//! A checkpoint also carries the data segments compaction emptied since the namespace's
//! previous one ([`Offloader::note_emptied`]): their records moved to segments this checkpoint
//! (or an earlier one) holds, so from this checkpoint on the header-only file replaces the
//! stored copy.
//!
//! The uploader ([`upload`]) stores staged checkpoints' objects side by side, without
//! pauses, and meanwhile manifests naming the complete ones in order, then deletes their
//! staging folders and the copies the new manifest no longer names (older index and descriptor versions, data
//! segments' pre-compaction copies). A failure leaves its checkpoint staged and is retried
//! after a pause; nothing it needs is deleted meanwhile.
//!
//! Must not touch: the engine's files other than by hard link, copy or reading (the engine
//! owns them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use zdb_engine::{Checkpoint, Event, EventSink, SinkError};

use crate::manifest::{self, Manifest, Version};

mod upload;

/// zdbfs's temporary namespace: never offloaded (nor evicted).
pub use zstor::cache::TEMP_NAMESPACE;

/// How long a read waits for an evicted segment to come back before failing.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Stored segments fetched in the background after the one a read needed.
const READ_AHEAD: u32 = 2;

/// Pause after a failed upload before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Counters shown by `qsfs status`.
#[derive(Debug, Default)]
pub struct OffloadStats {
    pub checkpoints_staged: AtomicU64,
    pub checkpoints_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub upload_failures: AtomicU64,
    pub segments_fetched: AtomicU64,
    /// Reads of evicted segments served from the chunks covering them, ahead of the segment.
    pub ranges_fetched: AtomicU64,
    /// Fetches put off because the cache's disk had no room for the segment (its reads are
    /// served range by range meanwhile).
    pub fetches_without_room: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub fetch_failures: AtomicU64,
    /// Stored data segments compaction emptied, and the records it moved out of them.
    pub segments_compacted: AtomicU64,
    pub records_moved: AtomicU64,
    /// Stored copies replaced by emptied ones, and the stored bytes that gave back.
    pub copies_replaced: AtomicU64,
    pub bytes_given_back: AtomicU64,
}

/// Shared between the engine (as its event sink), the uploader and the control socket.
pub struct Offloader {
    staging: PathBuf,
    manifest_path: PathBuf,
    store: Arc<zstor::Store>,
    /// zstor's health and repair loops; their key locks keep a repair from writing back an
    /// older record of an object (the manifest) that is being replaced.
    maintenance: Arc<zstor::maintenance::Maintenance>,
    runtime: tokio::runtime::Handle,
    manifest: Mutex<Manifest>,
    /// Namespaces whose first checkpoint of this run is done (later ones copy dirty files).
    full_done: Mutex<std::collections::HashSet<String>>,
    /// Per namespace, where the next piece of an open segment starts: (segment, offset).
    /// Only this run's pieces count: a start closes any open segment the last run left.
    open_end: Mutex<HashMap<String, (u32, u64)>>,
    /// Per namespace, the newest checkpoint staged in this run (what an fsync in strict
    /// mode waits for).
    staged: Mutex<HashMap<String, Version>>,
    /// Notified whenever a manifest is published (with `manifest` updated).
    published: std::sync::Condvar,
    /// When the newest checkpoint the published manifest names was staged (this run).
    published_staged_at: Mutex<Option<std::time::SystemTime>>,
    started: std::time::SystemTime,
    /// Data segments compaction emptied, by namespace, waiting for its next checkpoint. Lost
    /// in a crash: the old copies then stay stored (wasted space, never wrong data).
    emptied: Mutex<BTreeMap<String, BTreeSet<u32>>>,
    /// Segments being fetched, by a read or ahead of one: each is fetched once.
    inflight: Arc<InFlight>,
    wake: Notify,
    /// One upload pass at a time (the uploader task and `qsfs rotate` both run them).
    uploading: tokio::sync::Mutex<()>,
    last_error: Mutex<Option<String>>,
    pub stats: Arc<OffloadStats>,
}

fn io_text(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Offloader {
    /// `cache` is the cache folder (staging and the manifest copy live there).
    pub fn new(
        cache: &Path,
        store: Arc<zstor::Store>,
        maintenance: Arc<zstor::maintenance::Maintenance>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Offloader, manifest::ManifestError> {
        let manifest_path = cache.join("manifest.json");
        let manifest = Manifest::load(&manifest_path)?;
        let staging = cache.join("staging");
        // Half-staged checkpoints of a crashed run: their jump never completed.
        if let Ok(namespaces) = std::fs::read_dir(&staging) {
            for ns in namespaces.flatten() {
                for entry in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                    if entry.file_name().to_string_lossy().ends_with(".tmp") {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        Ok(Offloader {
            staging,
            manifest_path,
            store,
            maintenance,
            runtime,
            manifest: Mutex::new(manifest),
            full_done: Mutex::default(),
            open_end: Mutex::default(),
            staged: Mutex::default(),
            published: std::sync::Condvar::new(),
            published_staged_at: Mutex::new(None),
            started: std::time::SystemTime::now(),
            emptied: Mutex::default(),
            inflight: Arc::default(),
            wake: Notify::new(),
            uploading: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
            stats: Arc::default(),
        })
    }

    /// A copy of the manifest (what is stored).
    pub fn manifest(&self) -> Manifest {
        lock(&self.manifest).clone()
    }

    /// The zstor store offloading goes through.
    pub fn store(&self) -> &Arc<zstor::Store> {
        &self.store
    }

    /// zstor's health and repair loops.
    pub fn maintenance(&self) -> &Arc<zstor::maintenance::Maintenance> {
        &self.maintenance
    }

    /// Store `source` as object `name`, holding the object's writer lock.
    async fn store_object(
        &self,
        source: &Path,
        name: &Path,
    ) -> Result<zstor::meta::ObjectMeta, zstor::Error> {
        let (key, _) = self.store.meta().key_of(name);
        let _writer = self.maintenance.key_locks().lock(&key).await;
        self.store.store_as(source, name).await
    }

    /// The last upload error, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Compaction left these data segments of `ns` as just their header: the namespace's
    /// next checkpoint stores them in place of their old copies.
    pub fn note_emptied(&self, ns: &str, segments: &[u32]) {
        if !segments.is_empty() {
            let mut emptied = lock(&self.emptied);
            emptied.entry(ns.to_string()).or_default().extend(segments);
        }
    }

    /// Block until the published manifest names, for every namespace, the newest checkpoint
    /// staged so far (or a later one); an error after `timeout` (the checkpoints stay staged
    /// and go when the backends take them).
    pub fn wait_dispersed(&self, timeout: Duration) -> Result<(), String> {
        let targets = lock(&self.staged).clone();
        self.wake.notify_one();
        let deadline = std::time::Instant::now() + timeout;
        let mut manifest = lock(&self.manifest);
        loop {
            let behind = targets.iter().find(|(ns, v)| {
                manifest
                    .namespaces
                    .get(*ns)
                    .is_none_or(|n| n.version() < **v)
            });
            let Some((ns, version)) = behind else {
                return Ok(());
            };
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{ns} checkpoint {version} not on the backends after {timeout:?} ({})",
                    self.last_error()
                        .unwrap_or_else(|| "still uploading".into())
                ));
            }
            manifest = self
                .published
                .wait_timeout(manifest, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// What losing this machine now would lose: bytes of data segments (open or closed) the
    /// published manifest does not hold, and the seconds since the newest checkpoint it
    /// names was taken (0 when nothing is exposed). zdbfs's own write-back comes on top.
    pub fn exposure(&self, engine: &zdb_engine::Engine) -> Exposure {
        let manifest = self.manifest();
        let mut bytes = 0;
        for name in engine.list() {
            let Some(ns) = engine.namespace(&name).filter(|_| name != TEMP_NAMESPACE) else {
                continue;
            };
            let info = ns.info();
            let stored = manifest.namespaces.get(&name);
            let header = zdb_engine::format::FILE_HEADER_LEN as u64;
            for &seg in &info.segments {
                if stored.is_some_and(|m| m.data.contains_key(&seg)) {
                    continue;
                }
                let (len, dispersed) = if seg == info.current_segment {
                    let pieces = stored
                        .and_then(|m| m.open.as_ref())
                        .filter(|o| o.segment == seg)
                        .map_or(0, |o| o.len());
                    (info.current_offset, pieces.max(header))
                } else {
                    let path = info.data_dir.join(format!("d{seg}"));
                    let len = std::fs::metadata(path).map_or(0, |m| m.len());
                    (len, header)
                };
                bytes += len.saturating_sub(dispersed);
            }
        }
        let since = lock(&self.published_staged_at).unwrap_or(self.started);
        let seconds = if bytes == 0 {
            0.0
        } else {
            since.elapsed().map_or(0.0, |d| d.as_secs_f64())
        };
        Exposure { bytes, seconds }
    }

    /// Staged checkpoints not uploaded yet, in upload order: each namespace's in the order
    /// they were taken, the namespaces' interleaved by staging time. (Partial checkpoints of
    /// zdbfs's metadata are taken just before those of its data, so a manifest never names
    /// metadata newer than the blocks it refers to.)
    pub fn pending(&self) -> Vec<Pending> {
        let mut out = Vec::new();
        for ns in std::fs::read_dir(&self.staging)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = ns.file_name().to_string_lossy().into_owned();
            for entry in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if let Some(version) = Version::parse(&file) {
                    let staged_at = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    out.push(Pending {
                        ns: name.clone(),
                        version,
                        dir: entry.path(),
                        staged_at,
                    });
                }
            }
        }
        upload_order(&mut out);
        out
    }

    fn stage(&self, cp: &Checkpoint<'_>) -> Result<(), String> {
        let version = Version {
            segment: cp.segment,
            open_len: cp.open_len,
        };
        let ns_dir = self.staging.join(cp.namespace);
        let tmp = ns_dir.join(format!("{version}.tmp"));
        let done = ns_dir.join(version.to_string());
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io_text("create", &tmp, e))?;
        let data = cp.data_dir.join(format!("d{}", cp.segment));
        // Copies first, syncs after: the first fsync's journal commit carries the others'
        // data too, so the lock is held for about one commit, not one per file.
        let mut copies = Vec::new();
        let mut emptied = Vec::new();
        if let Some(len) = cp.open_len {
            // The open segment's bytes since the previous piece: appends never change
            // what is before `len` (synced already), so the pieces concatenate to the
            // segment, and the uploader reads them from the segment itself: only a
            // reference is written here, under the lock, not the bytes. The segment stays
            // local until its piece is stored (it is evicted only once stored whole, which
            // its close's checkpoint does after this one).
            let start = match lock(&self.open_end).get(cp.namespace).copied() {
                Some((seg, end)) if seg == cp.segment => end,
                _ => 0,
            };
            if len < start {
                return Err(format!(
                    "{}: the open segment shrank below its last piece ({len} < {start})",
                    data.display()
                ));
            }
            let piece = tmp.join(format!("d{}+{start}.ref", cp.segment));
            let reference = PieceRef {
                segment_file: data.clone(),
                end: len,
            };
            std::fs::write(&piece, reference.encode()).map_err(|e| io_text("write", &piece, e))?;
            copies.push(piece);
        } else {
            // The closed segment is immutable (and already synced): a link costs nothing
            // and survives eviction.
            let staged_data = tmp.join(format!("d{}", cp.segment));
            if std::fs::hard_link(&data, &staged_data).is_err() {
                copies.push(copy(&data, &staged_data)?);
            }
            // Emptied segments are header-only from now on (compaction skips them):
            // links too.
            emptied = lock(&self.emptied)
                .get(cp.namespace)
                .map(|s| s.range(..cp.segment).copied().collect())
                .unwrap_or_default();
            for seg in &emptied {
                let (from, to) = (
                    cp.data_dir.join(format!("d{seg}")),
                    tmp.join(format!("d{seg}")),
                );
                if std::fs::hard_link(&from, &to).is_err() {
                    copies.push(copy(&from, &to)?);
                }
            }
        }
        let full = !lock(&self.full_done).contains(cp.namespace);
        let index: Vec<u32> = if full {
            index_segments(cp.index_dir)?
                .into_iter()
                .filter(|&i| i <= cp.segment)
                .collect()
        } else {
            cp.dirty.to_vec()
        };
        for i in index {
            let from = cp.index_dir.join(format!("i{i}"));
            copies.push(copy(&from, &tmp.join(format!("i{i}")))?);
        }
        copies.push(copy(
            &cp.index_dir.join("zdb-namespace"),
            &tmp.join("zdb-namespace"),
        )?);
        for path in &copies {
            std::fs::File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_text("sync", path, e))?;
        }
        sync_dir(&tmp)?;
        std::fs::rename(&tmp, &done).map_err(|e| io_text("rename", &tmp, e))?;
        sync_dir(&ns_dir)?;
        lock(&self.full_done).insert(cp.namespace.to_string());
        if let Some(waiting) = lock(&self.emptied).get_mut(cp.namespace) {
            waiting.retain(|seg| !emptied.contains(seg));
        }
        let end = cp
            .open_len
            .map_or((cp.segment + 1, 0), |len| (cp.segment, len));
        lock(&self.open_end).insert(cp.namespace.to_string(), end);
        lock(&self.staged).insert(cp.namespace.to_string(), version);
        self.stats.checkpoints_staged.fetch_add(1, Relaxed);
        self.wake.notify_one();
        Ok(())
    }

    /// Bring back evicted data segment `path` of `ns` (blocking the calling read only), then
    /// start fetching the next [`READ_AHEAD`] stored segments in the background: a
    /// sequential read then finds them local or on their way.
    fn fetch(&self, ns: &str, path: &Path) -> Result<(), String> {
        if ns == TEMP_NAMESPACE {
            return Err("the temp namespace is never offloaded".into());
        }
        let seg = path
            .file_name()
            .and_then(|n| manifest::segment_number(&n.to_string_lossy(), 'd'))
            .ok_or_else(|| format!("{} is not a data segment", path.display()))?;
        // Not claimed: brought back meanwhile, by another read or a read-ahead (waited for).
        let result = if self.inflight.claim(path) {
            self.wait_for(self.retrieve_job(ns, seg, path))
        } else {
            Ok(())
        };
        for ahead in 1..=READ_AHEAD {
            self.fetch_ahead(
                ns,
                seg + ahead,
                &path.with_file_name(format!("d{}", seg + ahead)),
            );
        }
        result
    }

    /// The first read of an evicted segment: fetch only the chunk(s) covering `offset..+len`
    /// and hand them to the engine, then bring the whole segment back in the background.
    /// `None` (the engine then waits for the whole segment) when a fetch of
    /// it is already under way, the read looks sequential, or it is not a stored segment.
    /// On a disk without room for the segment every read of it is served this way, and
    /// nothing is fetched.
    fn read_range(
        &self,
        ns: &str,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, String> {
        let seg = path
            .file_name()
            .and_then(|n| manifest::segment_number(&n.to_string_lossy(), 'd'));
        let Some(seg) = seg.filter(|_| ns != TEMP_NAMESPACE) else {
            return Ok(None);
        };
        let (name, size) = {
            let manifest = lock(&self.manifest);
            let Some(stored) = manifest.namespaces.get(ns).and_then(|m| m.data.get(&seg)) else {
                return Ok(None);
            };
            (manifest.data_object(ns, seg), stored.size)
        };
        let fits = self.fetch_fits(path, size);
        // A read going on from the previous segment (local: just read, or fetched) is
        // sequential: whole segments serve it best (a range would be fetched twice).
        let previous = seg
            .checked_sub(1)
            .is_some_and(|p| path.with_file_name(format!("d{p}")).exists());
        if fits && (previous || self.inflight.busy(path)) {
            return Ok(None);
        }
        let store = Arc::clone(&self.store);
        let bytes = self.wait_for(async move {
            let r = tokio::time::timeout(FETCH_TIMEOUT, async {
                let meta = store.meta().get(&name).await?;
                store.retrieve_range(&meta, offset, len as u64).await
            })
            .await;
            match r {
                Ok(r) => r.map_err(|e| format!("{}: {e}", name.display())),
                Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
            }
        })?;
        self.stats.ranges_fetched.fetch_add(1, Relaxed);
        // The segment alone, with the whole link: a next read of it waits for this fetch
        // (missing-data), and that starts the read-ahead of the following segments.
        if fits {
            self.fetch_ahead(ns, seg, path);
        }
        Ok(Some(bytes))
    }

    /// Whether data segment `path` (`size` bytes when fetched) fits on the cache's disk now;
    /// counted when it does not.
    fn fetch_fits(&self, path: &Path, size: u64) -> bool {
        let fits = path
            .parent()
            .is_none_or(|dir| crate::evict::fetch_fits(dir, size));
        if !fits {
            self.stats.fetches_without_room.fetch_add(1, Relaxed);
        }
        fits
    }

    /// Run `job` on the runtime and wait for it on the calling thread (an engine read's:
    /// never one of the runtime's own).
    fn wait_for<T: Send + 'static>(
        &self,
        job: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(job.await);
        });
        rx.recv().unwrap_or_else(|_| Err("runtime stopped".into()))
    }

    /// Fetch stored segment `seg` of `ns` into `path` in the background, unless it is local
    /// or already coming.
    fn fetch_ahead(&self, ns: &str, seg: u32, path: &Path) {
        let size = lock(&self.manifest)
            .namespaces
            .get(ns)
            .and_then(|m| m.data.get(&seg))
            .map(|s| s.size);
        let Some(size) = size else { return };
        if self.fetch_fits(path, size) && self.inflight.try_claim(path) {
            let job = self.retrieve_job(ns, seg, path);
            self.runtime.spawn(async move {
                let _ = job.await;
            });
        }
    }

    /// Retrieve segment `seg` of `ns` into `path` (claimed in `inflight`), count it, and
    /// release the claim.
    fn retrieve_job(
        &self,
        ns: &str,
        seg: u32,
        path: &Path,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let name = lock(&self.manifest).data_object(ns, seg);
        let (store, stats, inflight) = (
            Arc::clone(&self.store),
            Arc::clone(&self.stats),
            Arc::clone(&self.inflight),
        );
        let out = path.to_path_buf();
        let fetched = path.with_extension("fetched");
        async move {
            let r = tokio::time::timeout(FETCH_TIMEOUT, async {
                let meta = store
                    .retrieve_file(&name, &fetched)
                    .await
                    .map_err(|e| e.to_string())?;
                place_fetched(&fetched, &out).map_err(|e| io_text("placing", &out, e))?;
                Ok::<_, String>(meta)
            })
            .await;
            inflight.release(&out);
            let result = match r {
                Ok(Ok(meta)) => {
                    stats.segments_fetched.fetch_add(1, Relaxed);
                    stats.bytes_fetched.fetch_add(meta.size, Relaxed);
                    tracing::info!(path = %out.display(), bytes = meta.size, "evicted segment fetched");
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
            };
            if let Err(e) = &result {
                stats.fetch_failures.fetch_add(1, Relaxed);
                tracing::error!(path = %out.display(), error = %e, "cannot fetch evicted segment");
            }
            result
        }
    }
}

impl EventSink for Offloader {
    fn emit(&self, event: &Event) -> Result<(), SinkError> {
        match event {
            Event::MissingData { namespace, path } => {
                self.fetch(namespace, path).map_err(SinkError::new)
            }
            _ => Ok(()),
        }
    }

    fn read_missing(
        &self,
        namespace: &str,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, SinkError> {
        self.read_range(namespace, path, offset, len).map_err(|e| {
            tracing::warn!(path = %path.display(), error = %e, "cannot read a range of an evicted segment");
            SinkError::new(e)
        })
    }

    fn checkpoint(&self, cp: &Checkpoint<'_>) -> Result<bool, SinkError> {
        if cp.namespace == TEMP_NAMESPACE {
            return Ok(false);
        }
        self.stage(cp).map(|()| true).map_err(|e| {
            tracing::error!(namespace = cp.namespace, error = %e, "cannot stage checkpoint");
            SinkError::new(e)
        })
    }
}

/// See [`Offloader::exposure`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub bytes: u64,
    pub seconds: f64,
}

/// A staged checkpoint waiting for upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub ns: String,
    pub version: Version,
    pub dir: PathBuf,
    pub staged_at: std::time::SystemTime,
}

/// Sort by staging time, then put each namespace's checkpoints, in the slots it got, into
/// version order (a clock step must never reorder one namespace's checkpoints).
fn upload_order(pending: &mut [Pending]) {
    pending.sort_by(|a, b| (a.staged_at, &a.ns, a.version).cmp(&(b.staged_at, &b.ns, b.version)));
    let mut slots: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in pending.iter().enumerate() {
        slots.entry(p.ns.clone()).or_default().push(i);
    }
    for slots in slots.values() {
        let mut mine: Vec<Pending> = slots.iter().map(|&i| pending[i].clone()).collect();
        mine.sort_by_key(|p| p.version);
        for (&i, p) in slots.iter().zip(mine) {
            pending[i] = p;
        }
    }
}

/// Segments on their way back, so each is fetched once; a read of one waits for it.
#[derive(Default)]
struct InFlight {
    paths: Mutex<std::collections::HashSet<PathBuf>>,
    done: std::sync::Condvar,
}

impl InFlight {
    /// Claim `path` for fetching, after waiting out another fetch of it; `false` when it is
    /// on disk (nothing to fetch).
    fn claim(&self, path: &Path) -> bool {
        let mut paths = lock(&self.paths);
        while paths.contains(path) {
            paths = self.done.wait(paths).unwrap_or_else(|p| p.into_inner());
        }
        if path.exists() {
            return false;
        }
        paths.insert(path.to_path_buf())
    }

    /// Claim `path` only if nobody is fetching it and it is not on disk.
    fn try_claim(&self, path: &Path) -> bool {
        let mut paths = lock(&self.paths);
        !paths.contains(path) && !path.exists() && paths.insert(path.to_path_buf())
    }

    /// Whether a fetch of `path` is under way.
    fn busy(&self, path: &Path) -> bool {
        lock(&self.paths).contains(path)
    }

    fn release(&self, path: &Path) {
        lock(&self.paths).remove(path);
        self.done.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Index segment numbers present in `dir`.
fn index_segments(dir: &Path) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_text("list", dir, e))? {
        let e = e.map_err(|e| io_text("list", dir, e))?;
        if let Some(i) = manifest::segment_number(&e.file_name().to_string_lossy(), 'i') {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Put the fetched copy `from` in place at `to`, unless a file is there already: compaction
/// may have written an emptied segment there meanwhile, which a late (read-ahead) fetch of
/// the old copy must not replace. A link fails rather than replace, unlike a rename.
fn place_fetched(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => std::fs::remove_file(from),
    }
}

/// A staged piece: bytes up to `end` of the open segment's file, from the piece's start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PieceRef {
    pub segment_file: PathBuf,
    pub end: u64,
}

impl PieceRef {
    fn encode(&self) -> String {
        format!("{}\n{}\n", self.end, self.segment_file.display())
    }

    pub(crate) fn read(path: &Path) -> Result<PieceRef, String> {
        let text = std::fs::read_to_string(path).map_err(|e| io_text("read", path, e))?;
        let (end, file) = text
            .strip_suffix('\n')
            .and_then(|t| t.split_once('\n'))
            .ok_or_else(|| format!("{}: not a piece reference", path.display()))?;
        Ok(PieceRef {
            segment_file: PathBuf::from(file),
            end: end
                .parse()
                .map_err(|_| format!("{}: not a piece reference", path.display()))?,
        })
    }
}

/// Copy `len` bytes of `from` from offset `start` into a new file `to` (not synced).
pub(crate) fn copy_range(from: &Path, start: u64, len: u64, to: &Path) -> Result<(), String> {
    use std::io::{Read, Seek};
    let mut source = std::fs::File::open(from).map_err(|e| io_text("open", from, e))?;
    source
        .seek(std::io::SeekFrom::Start(start))
        .map_err(|e| io_text("seek", from, e))?;
    let mut out = std::fs::File::create(to).map_err(|e| io_text("create", to, e))?;
    let copied =
        std::io::copy(&mut source.take(len), &mut out).map_err(|e| io_text("copy", from, e))?;
    if copied != len {
        return Err(format!(
            "{}: {copied} bytes at {start}, {len} expected",
            from.display()
        ));
    }
    Ok(())
}

/// Copy `from` to `to` (not synced yet); returns `to`.
fn copy(from: &Path, to: &Path) -> Result<PathBuf, String> {
    std::fs::copy(from, to).map_err(|e| io_text("copy", from, e))?;
    Ok(to.to_path_buf())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_text("sync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_reference_reads_back_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d3+32.ref");
        let r = PieceRef {
            segment_file: PathBuf::from("/cache/zdb/data/zdbfs-data/d3"),
            end: 4096,
        };
        std::fs::write(&path, r.encode()).unwrap();
        assert_eq!(PieceRef::read(&path).unwrap(), r);
        for bad in ["", "4096", "x\n/file\n", "4096\n/file"] {
            std::fs::write(&path, bad).unwrap();
            assert!(PieceRef::read(&path).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uploads_keep_each_namespaces_order_whatever_the_clock_says() {
        let at = |s| std::time::UNIX_EPOCH + Duration::from_secs(s);
        let p = |ns: &str, version, staged_at| Pending {
            ns: ns.into(),
            version,
            dir: PathBuf::from(format!("{ns}/{version}")),
            staged_at,
        };
        // The clock stepped back between a's two checkpoints.
        let mut pending = vec![
            p("a", Version::partial(2, 100), at(50)),
            p("b", Version::closed(7), at(20)),
            p("a", Version::closed(1), at(60)),
        ];
        upload_order(&mut pending);
        let order: Vec<(String, Version)> =
            pending.into_iter().map(|p| (p.ns, p.version)).collect();
        assert_eq!(
            order,
            [
                ("b".to_string(), Version::closed(7)),
                ("a".to_string(), Version::closed(1)),
                ("a".to_string(), Version::partial(2, 100)),
            ]
        );
    }
}
