//! Streaming store and retrieve of whole files: read a chunk, encode it, send its `n` pieces
//! to their backends in parallel, repeat; memory is a few chunks whatever the file size.
//!
//! Owns: the file ↔ chunks loop, which backends are reachable, and writing the output to a
//! temporary file renamed only once verified. Its children: `write` (a new object: where
//! its shards go through [`crate::placement`], degraded writes, the upload, the
//! [`ObjectMeta`]), `fetch` (which backends a retrieve asks for each chunk, hedging late
//! pieces) and `rebuild` (repair and re-encoding). Must not touch: the codec's internals,
//! piece formats, or how the metadata is encrypted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::RngCore;
use tokio::task::JoinSet;

use crate::backend::{Backend, MetaStore};
use crate::config::Config;
use crate::hash::Digest128;
use crate::meta::{BackendRef, ObjectMeta, MISSING_PIECE};
use crate::pipeline::{ChunkDecoder, DataKey, DEFAULT_CHUNK_SIZE};
use crate::stream::ChunkWriter;
use crate::Error;

mod fetch;
mod rebuild;
mod write;
pub use rebuild::{RebuildReport, RebuildTarget};

/// A configured store: data backends by group, metadata store, keys.
pub struct Store {
    config: Config,
    data_key: DataKey,
    groups: Vec<Vec<(crate::config::Backend, Backend)>>,
    meta: MetaStore,
    chunk_size: usize,
    /// The last answer of [`Store::reachable`] and when it was asked; behind an async lock so
    /// that stores starting together ping once.
    reachability: tokio::sync::Mutex<Option<(Instant, Vec<Vec<usize>>)>>,
    /// Pieces asked of another backend because one was late (retrieve), since start.
    hedged_reads: AtomicU64,
    /// Objects stored below full redundancy (backends down), since start.
    degraded_stores: AtomicU64,
}

/// How long a reachability answer is reused: files stored side by side (a folder, a
/// checkpoint's index files) do not each pay a round trip of pings, and a backend that comes
/// back is used again within this. A failed store forgets it at once.
const REACHABILITY_TTL: Duration = Duration::from_secs(5);

/// How long the pings still out get once enough backends answered: this many times the
/// time that took, at least the floor.
const PING_GRACE_FACTOR: u32 = 4;
const PING_GRACE_FLOOR: Duration = Duration::from_millis(200);

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

impl Store {
    /// From a config (validated here).
    pub fn new(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let groups = config
            .groups
            .iter()
            .map(|g| {
                g.backends
                    .iter()
                    .map(|b| Ok((b.clone(), Backend::new(b)?)))
                    .collect::<Result<Vec<_>, Error>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            data_key: config.data_key()?,
            meta: MetaStore::new(&config)?,
            groups,
            config,
            chunk_size: DEFAULT_CHUNK_SIZE,
            reachability: tokio::sync::Mutex::new(None),
            hedged_reads: AtomicU64::new(0),
            degraded_stores: AtomicU64::new(0),
        })
    }

    /// Use another chunk size (tests, tuning).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// The configuration this store was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pieces asked of another backend because one was late, since this store was made.
    pub fn hedged_reads(&self) -> u64 {
        self.hedged_reads.load(Relaxed)
    }

    /// Objects stored below full redundancy since this store was made (their missing
    /// pieces are repair's to write).
    pub fn degraded_stores(&self) -> u64 {
        self.degraded_stores.load(Relaxed)
    }

    /// The metadata store.
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// Indices of the reachable data backends, by group (asked at most every
    /// [`REACHABILITY_TTL`]).
    async fn reachable(&self) -> Vec<Vec<usize>> {
        let mut known = self.reachability.lock().await;
        if let Some((at, up)) = known.as_ref() {
            if at.elapsed() < REACHABILITY_TTL {
                return up.clone();
            }
        }
        let up = self.ping_all().await;
        *known = Some((Instant::now(), up.clone()));
        up
    }

    /// Ask again at the next store (one just failed: a backend may have gone).
    async fn forget_reachability(&self) {
        *self.reachability.lock().await = None;
    }

    /// Open a connection to every backend (data and metadata) now, through the pools that
    /// requests use, so that the first request does not pay the connect, authentication and
    /// namespace round trips (four or so over a wide-area link). Failures are only noted.
    pub async fn warm_up(&self) {
        let data = self.groups.iter().flatten().map(|(_, b)| b);
        let all: Vec<&Backend> = data.chain(self.meta.backends()).collect();
        futures_util::future::join_all(all.into_iter().map(|b| b.ping())).await;
    }

    /// Ping, in the background, every data backend whose round trip is not known yet, so
    /// that a retrieve starting after a metadata read knows which backends are far or slow
    /// before it asks for pieces (see `fetch`). Returns at once.
    pub fn probe_data_backends(&self) {
        for (_, b) in self.groups.iter().flatten() {
            if b.liveness().round_trip().is_none() {
                let b = b.clone();
                tokio::spawn(async move { b.ping().await });
            }
        }
    }

    /// Each data backend's measured round trip (`None`: it has not answered yet), in the
    /// order of the configuration's groups.
    pub fn data_round_trips(&self) -> Vec<Option<Duration>> {
        self.groups
            .iter()
            .flatten()
            .map(|(_, b)| b.liveness().round_trip())
            .collect()
    }

    /// Ping every data backend at once. Once `minimal_write_shards` have answered, the
    /// others get [`PING_GRACE_FACTOR`] times as long again (at least [`PING_GRACE_FLOOR`]);
    /// one still silent then counts as reachable: whether it keeps up is for the upload to
    /// find out (a lagging shard is left to repair), and one slow backend must not add its
    /// round trips to every store. Pings left running finish in the background, and what
    /// they find still reaches the backend's liveness.
    async fn ping_all(&self) -> Vec<Vec<usize>> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = std::collections::HashSet::new();
        for (g, group) in self.groups.iter().enumerate() {
            for (i, (_, b)) in group.iter().enumerate() {
                let (b, tx) = (b.clone(), tx.clone());
                waiting.insert((g, i));
                tokio::spawn(async move {
                    let _ = tx.send((g, i, b.ping().await));
                });
            }
        }
        drop(tx);
        let start = Instant::now();
        let mut up = vec![Vec::new(); self.groups.len()];
        let (mut answered, mut deadline) = (0, None);
        loop {
            let next = match deadline {
                None => rx.recv().await,
                Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            let Some((g, i, ok)) = next else { break };
            waiting.remove(&(g, i));
            if ok {
                up[g].push(i);
                answered += 1;
                if answered >= self.config.write_shards() && deadline.is_none() {
                    let grace = (start.elapsed() * PING_GRACE_FACTOR).max(PING_GRACE_FLOOR);
                    deadline = Some(tokio::time::Instant::now() + grace);
                }
            }
        }
        for (g, i) in waiting {
            tracing::debug!(
                backend = self.groups[g][i].1.label(),
                "slow to answer a ping; used anyway"
            );
            up[g].push(i);
        }
        for idx in &mut up {
            idx.sort_unstable();
        }
        up
    }

    /// Store the file at `path` under its own path; returns the metadata written.
    pub async fn store_file(&self, path: &Path) -> Result<ObjectMeta, Error> {
        self.store_as(path, path).await
    }

    /// Store the file at `source` under the name `path`.
    pub async fn store_as(&self, source: &Path, path: &Path) -> Result<ObjectMeta, Error> {
        self.store_as_with(source, path, &|_| {}).await
    }

    /// [`Store::store_as`], calling `progress` with the plaintext bytes of each chunk once
    /// its pieces are all uploaded (for progress bars).
    pub async fn store_as_with(
        &self,
        source: &Path,
        path: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ObjectMeta, Error> {
        let (key, hash) = self.meta.key_of(path);
        match self.store_at(source, &key, hash, progress).await {
            // A backend failed: the reachability answer may be from before it went. Ask
            // again and try once more (the first attempt's pieces stay as wasted space,
            // named by no record, as with an upload cut short).
            Err(e @ (Error::Backend { .. } | Error::BackendDown { .. })) => {
                tracing::debug!(error = %e, "store failed on a backend; pinging again");
                self.forget_reachability().await;
                self.store_at(source, &key, hash, progress).await
            }
            other => other,
        }
    }

    /// Whether `source` has the size and checksum `old` recorded (hashed only when the
    /// sizes match).
    async fn unchanged(&self, old: &ObjectMeta, source: &Path) -> Result<bool, Error> {
        let len = std::fs::metadata(source)
            .map_err(io(format!("stat {}", source.display())))?
            .len();
        if len != old.size {
            return Ok(false);
        }
        let path = source.to_path_buf();
        let sum = tokio::task::spawn_blocking(move || crate::hash::file_checksum(&path))
            .await
            .map_err(|e| Error::Internal(format!("hash task: {e}")))?
            .map_err(io(format!("read {}", source.display())))?;
        Ok(sum == old.checksum)
    }

    /// Delete the pieces of `old` that `new` does not use (all of them without `new`). Best
    /// effort: a piece on an unreachable backend stays as wasted space, never as a risk.
    /// Returns how many were deleted.
    pub(crate) async fn release_pieces(&self, old: &ObjectMeta, new: Option<&ObjectMeta>) -> usize {
        let kept: std::collections::HashSet<(&str, Option<&str>, u64)> = new
            .iter()
            .flat_map(|m| &m.shards)
            .flat_map(|s| {
                let (a, ns) = (s.backend.address.as_str(), s.backend.namespace.as_deref());
                s.keys.iter().map(move |&k| (a, ns, k))
            })
            .collect();
        let mut tasks = JoinSet::new();
        for shard in &old.shards {
            let (a, ns) = (
                shard.backend.address.as_str(),
                shard.backend.namespace.as_deref(),
            );
            let garbage: Vec<u64> = shard
                .keys
                .iter()
                .copied()
                .filter(|&k| k != MISSING_PIECE && !kept.contains(&(a, ns, k)))
                .collect();
            if garbage.is_empty() {
                continue;
            }
            let Ok(b) = self.backend_for(&shard.backend) else {
                continue;
            };
            tasks.spawn(async move {
                let mut n = 0;
                for id in garbage {
                    match b.delete_piece(id).await {
                        Ok(()) => n += 1,
                        Err(e) => {
                            tracing::debug!(error = %e, "superseded piece not deleted");
                            break;
                        }
                    }
                }
                n
            });
        }
        let mut deleted = 0;
        while let Some(r) = tasks.join_next().await {
            deleted += r.unwrap_or(0);
        }
        deleted
    }

    /// Delete the object stored under `path`: its record first (so nothing ever points at
    /// missing pieces), then its pieces. Returns the record it had.
    pub async fn delete(&self, path: &Path) -> Result<ObjectMeta, Error> {
        let (key, hash) = self.meta.key_of(path);
        let meta = self
            .meta
            .get_at(&key, hash, &path.display().to_string())
            .await?;
        self.meta.delete_at(&key).await?;
        self.release_pieces(&meta, None).await;
        Ok(meta)
    }

    /// The stored blake2b-128 checksum of `path` (what `zstor check` prints; equal to
    /// `b2sum -l 128` of the original file).
    pub async fn checksum(&self, path: &Path) -> Result<Digest128, Error> {
        Ok(self.meta.get(path).await?.checksum)
    }

    /// The backend holding a shard, from the current config.
    fn backend_for(&self, r: &BackendRef) -> Result<Backend, Error> {
        let found = self
            .groups
            .iter()
            .flatten()
            .find(|(c, _)| c.address == r.address && c.namespace == r.namespace);
        match found {
            Some((_, b)) => Ok(b.clone()),
            None => Backend::new(&crate::config::Backend {
                address: r.address.clone(),
                namespace: r.namespace.clone(),
                password: None,
            }),
        }
    }

    /// Retrieve `path` into `out`: written to a temporary file next to `out`, renamed only
    /// after every chunk decoded and the file checksum matched.
    pub async fn retrieve_file(&self, path: &Path, out: &Path) -> Result<ObjectMeta, Error> {
        self.probe_data_backends();
        let meta = self.meta.get(path).await?;
        self.retrieve_meta(meta, out, &|_| {}).await
    }

    /// [`Store::retrieve_file`] from an already loaded record, calling `progress` with the
    /// plaintext bytes of each chunk once written (for progress bars; the total is
    /// `meta.size`).
    pub async fn retrieve_meta(
        &self,
        meta: ObjectMeta,
        out: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ObjectMeta, Error> {
        let (backends, mut decoder) = self.readers_of(&meta)?;
        let tmp = temp_name(out);
        let mut writer = ChunkWriter::create(&tmp, meta.chunk_size as usize)
            .map_err(io(format!("create {}", tmp.display())))?;
        let result = self
            .retrieve_into(&meta, &backends, &mut decoder, &mut writer, progress)
            .await;
        let result = result.and_then(|()| {
            let (file, actual) = writer
                .finish()
                .map_err(io(format!("write {}", tmp.display())))?;
            if actual != meta.checksum {
                return Err(Error::ChecksumMismatch {
                    expected: hex::encode(meta.checksum),
                    actual: hex::encode(actual),
                });
            }
            file.sync_all()
                .map_err(io(format!("sync {}", tmp.display())))?;
            std::fs::rename(&tmp, out).map_err(io(format!("rename to {}", out.display())))?;
            // Make the rename itself durable (best effort: some filesystems refuse dir fsync).
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| meta)
    }

    /// Bytes `offset..offset + len` of the object `meta` describes (cut at its end), from
    /// the chunks that cover them alone: a read of a few bytes of a large object waits for
    /// one chunk, not the whole file. Each chunk is authenticated on its own (AES-GCM over
    /// the object id and chunk index); the whole-file checksum needs every chunk and is not
    /// checked here.
    pub async fn retrieve_range(
        &self,
        meta: &ObjectMeta,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, Error> {
        let end = offset.saturating_add(len).min(meta.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let chunk = u64::from(meta.chunk_size).max(1);
        let (first, last) = (offset / chunk, (end - 1) / chunk);
        let (backends, mut decoder) = self.readers_of(meta)?;
        let mut fetcher = fetch::Fetcher::range(meta, &backends, first..last + 1);
        let mut out = Vec::with_capacity((end - offset) as usize);
        for c in first..=last {
            let decoded = fetcher.decode_next(c, &mut decoder).await;
            self.hedged_reads.fetch_add(fetcher.hedged, Relaxed);
            fetcher.hedged = 0;
            decoded?;
            let bytes = decoded_chunk(meta, c, &decoder)?;
            let start = c * chunk;
            let from = offset.saturating_sub(start) as usize;
            let to = ((end - start) as usize).min(bytes.len());
            out.extend_from_slice(&bytes[from..to]);
        }
        Ok(out)
    }

    async fn retrieve_into(
        &self,
        meta: &ObjectMeta,
        backends: &[Backend],
        decoder: &mut ChunkDecoder,
        file: &mut ChunkWriter,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), Error> {
        let mut fetcher = fetch::Fetcher::new(meta, backends);
        let result = Self::write_chunks(meta, &mut fetcher, decoder, file, progress).await;
        self.hedged_reads.fetch_add(fetcher.hedged, Relaxed);
        result
    }

    async fn write_chunks(
        meta: &ObjectMeta,
        fetcher: &mut fetch::Fetcher<'_>,
        decoder: &mut ChunkDecoder,
        file: &mut ChunkWriter,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), Error> {
        for chunk in 0..meta.chunk_count() {
            fetcher.decode_next(chunk, decoder).await?;
            let bytes = decoded_chunk(meta, chunk, decoder)?;
            file.write(bytes).map_err(io("write output"))?;
            progress(bytes.len() as u64);
        }
        Ok(())
    }

    /// The backends holding `meta`'s shards (in shard order) and a decoder for its chunks.
    fn readers_of(&self, meta: &ObjectMeta) -> Result<(Vec<Backend>, ChunkDecoder), Error> {
        let backends = meta
            .shards
            .iter()
            .map(|s| self.backend_for(&s.backend))
            .collect::<Result<_, _>>()?;
        let decoder = ChunkDecoder::new(meta.params(), &self.data_key, meta.object_id)?;
        Ok((backends, decoder))
    }
}

/// Chunk `chunk` of `meta` as `decoder` just decoded it, checked against the length the
/// record gives it (every chunk is `chunk_size` long, the last one what is left).
fn decoded_chunk<'d>(
    meta: &ObjectMeta,
    chunk: u64,
    decoder: &'d ChunkDecoder,
) -> Result<&'d [u8], Error> {
    let start = chunk * u64::from(meta.chunk_size);
    let expected = meta
        .size
        .saturating_sub(start)
        .min(u64::from(meta.chunk_size));
    let bytes = decoder.output();
    if bytes.len() as u64 != expected {
        return Err(Error::CorruptChunk(
            "chunk length differs from the metadata",
        ));
    }
    Ok(bytes)
}

fn as_refs(pieces: &[Option<Bytes>]) -> Vec<Option<&[u8]>> {
    pieces.iter().map(|p| p.as_deref()).collect()
}

/// Fetch the pieces of `chunk` for `shards` in parallel, in a task of its own; the result
/// has one entry per shard of the object, `None` where missing or failed.
fn spawn_fetch(
    meta: &ObjectMeta,
    backends: &[Backend],
    chunk: u64,
    shards: impl IntoIterator<Item = usize>,
) -> tokio::task::JoinHandle<Vec<Option<Bytes>>> {
    let n = backends.len();
    let jobs: Vec<(usize, Backend, u64)> = shards
        .into_iter()
        .filter_map(|i| {
            let id = *meta.shards.get(i)?.keys.get(chunk as usize)?;
            (id != MISSING_PIECE).then_some(())?;
            Some((i, backends.get(i)?.clone(), id))
        })
        .collect();
    tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        for (i, b, id) in jobs {
            tasks.spawn(async move { (i, b.get_piece(id).await) });
        }
        let mut pieces = vec![None; n];
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok((i, Ok(piece))) => pieces[i] = piece,
                Ok((i, Err(e))) => tracing::debug!(shard = i, error = %e, "piece unavailable"),
                Err(e) => tracing::debug!(error = %e, "fetch task failed"),
            }
        }
        pieces
    })
}

fn temp_name(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".zstor-tmp-{:08x}", rand::thread_rng().next_u32()));
    out.with_file_name(name)
}
