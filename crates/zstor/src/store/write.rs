//! Writing a new object, a child of [`crate::store`]: where its `n` shards go, the
//! chunk-by-chunk upload, and its record.
//!
//! With every backend reachable, the shards go where [`crate::placement`] says over the
//! reachable backends. With some down, the store still succeeds when every chunk gets at
//! least [`Config::write_shards`] pieces (`k + 1` by default, never fewer): a degraded
//! write. Shards are then placed over the configured backends as if all were up, each one
//! on a down backend moved to an unused reachable backend of its group when there is one;
//! the rest are recorded as [`MISSING_PIECE`] and written later by repair
//! ([`Store::rebuild`]), onto their backend when it is back or onto a spare. A backend
//! that fails during the upload, or lags far behind the others (one slow node must not set
//! the pace of every store), loses its shard from that chunk on, under the same rule.
//! Compare MinIO's write quorum; 0-stor v2 refuses such stores.
//!
//! [`Config::write_shards`]: crate::Config::write_shards
//! [`Store::rebuild`]: crate::Store::rebuild

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::RngCore;
use tokio::task::JoinSet;

use super::{io, Store};
use crate::backend::Backend;
use crate::config;
use crate::hash::Digest128;
use crate::meta::{
    shard_checksum, BackendRef, EncryptionAlgorithm, ObjectMeta, ShardMeta, META_VERSION,
    MISSING_PIECE,
};
use crate::pipeline::{ChunkEncoder, CodecParams, PieceHeader};
use crate::placement::{self, PlacementError};
use crate::stream::ChunkReader;
use crate::Error;

/// Chunks whose pieces upload while the next one is encoded.
const UPLOAD_AHEAD: usize = 2;

/// A piece upload still running this many times later than the chunk's quorum took, and
/// at least [`STRAGGLER_FLOOR`] later, is given up on (its shard left to repair).
const STRAGGLER_FACTOR: u32 = 4;
const STRAGGLER_FLOOR: Duration = Duration::from_secs(1);

/// One chunk's uploads: shard index, the id the backend returned, and the buffer back.
type Uploads = JoinSet<(usize, Result<u64, Error>, Vec<u8>)>;

/// Where one shard of a new object goes.
struct Target<'a> {
    conf: &'a config::Backend,
    backend: &'a Backend,
    /// Written now; otherwise left to repair.
    live: bool,
}

impl Store {
    /// The backends of a new object's shards, in shard order.
    async fn targets(&self) -> Result<Vec<Target<'_>>, Error> {
        let rules = self.config.rules();
        let up = self.reachable().await;
        let reachable: usize = up.iter().map(Vec::len).sum();
        let seed = rand::thread_rng().next_u64();
        let at = |g: usize, i: usize, live: bool| {
            let (conf, backend) = &self.groups[g][i];
            Target {
                conf,
                backend,
                live,
            }
        };
        let sizes: Vec<usize> = up.iter().map(Vec::len).collect();
        match placement::choose(&sizes, &rules, seed) {
            Ok(slots) => {
                return Ok(slots
                    .iter()
                    .map(|s| at(s.group, up[s.group][s.backend], true))
                    .collect())
            }
            Err(PlacementError::TooFewBackends { .. })
                if reachable >= self.config.write_shards() => {}
            Err(PlacementError::TooFewBackends { .. }) => {
                return Err(Error::TooFewBackends {
                    reachable,
                    needed: self.config.write_shards(),
                })
            }
            Err(other) => {
                tracing::warn!(reachable, "no placement over the reachable backends");
                return Err(Error::Placement(other));
            }
        }
        // Degraded: placed over every configured backend, down ones swapped for unused
        // reachable ones of the same group while there are any.
        let all: Vec<usize> = self.groups.iter().map(Vec::len).collect();
        let slots = placement::choose(&all, &rules, seed)?;
        let mut used: Vec<(usize, usize)> = slots.iter().map(|s| (s.group, s.backend)).collect();
        let mut targets = Vec::with_capacity(slots.len());
        for (j, s) in slots.iter().enumerate() {
            let g = s.group;
            if up[g].contains(&s.backend) {
                targets.push(at(g, s.backend, true));
                continue;
            }
            match up[g].iter().copied().find(|i| !used.contains(&(g, *i))) {
                Some(i) => {
                    used[j] = (g, i);
                    targets.push(at(g, i, true));
                }
                None => targets.push(at(g, s.backend, false)),
            }
        }
        let live = targets.iter().filter(|t| t.live).count();
        if live < self.config.write_shards() {
            return Err(Error::TooFewBackends {
                reachable: live,
                needed: self.config.write_shards(),
            });
        }
        tracing::warn!(
            written = live,
            shards = targets.len(),
            "backends down: storing a degraded object; repair writes the missing shards"
        );
        Ok(targets)
    }

    /// Store `source` with its record under a storage key (see
    /// [`crate::backend::MetaStore::key_of`]/[`crate::backend::MetaStore::parse_key`]).
    pub(super) async fn store_at(
        &self,
        source: &Path,
        key: &str,
        hash: Digest128,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ObjectMeta, Error> {
        // The record this one replaces: an identical file is not stored again (as 0-stor v2),
        // and a different one's pieces become garbage once the new record is written.
        let previous = self.meta.get_at(key, hash, key).await.ok();
        if let Some(old) = &previous {
            if self.unchanged(old, source).await? {
                tracing::debug!(key, "unchanged since stored; not stored again");
                progress(old.size);
                return Ok(old.clone());
            }
        }
        let targets = self.targets().await?;
        let rules = self.config.rules();
        let params = CodecParams {
            k: rules.k,
            m: rules.n - rules.k,
            compression: self.config.compression()?,
            chunk_size: self.chunk_size,
        };
        let mut object_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut object_id);
        let mut encoder = ChunkEncoder::new(params, &self.data_key, object_id)?;
        let mut reader = ChunkReader::open(source, self.chunk_size)
            .map_err(io(format!("open {}", source.display())))?;
        let n = params.n();
        let mut live: Vec<bool> = targets.iter().map(|t| t.live).collect();
        let mut keys: Vec<Vec<u64>> = vec![Vec::new(); n];
        let mut sums: Vec<Vec<Digest128>> = vec![Vec::new(); n];
        let mut size = 0u64;
        // Up to UPLOAD_AHEAD chunks upload while the next one is encoded (and the reader's
        // threads read and hash the ones after). The encoder's piece buffers go to the
        // upload tasks (no copy) and come back to it, so steady state allocates nothing.
        let mut in_flight: VecDeque<(Chunk, usize)> = VecDeque::new();
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut uploaded = Uploaded {
            keys: &mut keys,
            live: &mut live,
            spare: &mut spare,
            needed: self.config.write_shards(),
        };
        for chunk in 0u64.. {
            let data = reader
                .next_chunk()
                .map_err(io(format!("read {}", source.display())))?;
            let len = data.len();
            if len == 0 {
                break;
            }
            size += len as u64;
            encoder.encode(chunk, data)?;
            for buf in uploaded.spare.drain(..) {
                encoder.recycle(buf);
            }
            let mut uploads = JoinSet::new();
            for (i, t) in targets.iter().enumerate() {
                let owned = encoder.take_piece(i);
                if let Some(sum) = PieceHeader::stored_checksum(&owned) {
                    sums[i].push(sum);
                }
                if !uploaded.live[i] {
                    uploaded.spare.push(owned);
                    continue;
                }
                let b = t.backend.clone();
                uploads.spawn(async move {
                    let r = b.put_piece(&owned).await;
                    (i, r, owned)
                });
            }
            let sent = Chunk {
                spawned: uploaded.live.to_vec(),
                uploads,
                at: Instant::now(),
            };
            in_flight.push_back((sent, len));
            if in_flight.len() > UPLOAD_AHEAD {
                if let Some((previous, done)) = in_flight.pop_front() {
                    uploaded.collect(previous).await?;
                    progress(done as u64);
                }
            }
            if len < self.chunk_size {
                break;
            }
        }
        while let Some((last, done)) = in_flight.pop_front() {
            uploaded.collect(last).await?;
            progress(done as u64);
        }
        let checksum = reader
            .checksum()
            .ok_or_else(|| Error::Internal("file hashing thread failed".into()))?;
        let shards = (0..n)
            .map(|i| ShardMeta {
                index: i as u8,
                backend: BackendRef {
                    address: targets[i].conf.address.clone(),
                    namespace: targets[i].conf.namespace.clone(),
                },
                keys: std::mem::take(&mut keys[i]),
                checksum: shard_checksum(&sums[i]),
            })
            .collect();
        let meta = ObjectMeta {
            version: META_VERSION,
            object_id,
            checksum,
            size,
            chunk_size: self.chunk_size as u32,
            k: params.k as u8,
            m: params.m as u8,
            compression: params.compression,
            encryption: EncryptionAlgorithm::Aes256Gcm,
            shards,
        };
        self.meta.put_at(key, hash, &meta).await?;
        let missing = meta.missing_pieces();
        if missing > 0 {
            self.degraded_stores
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                key,
                missing,
                "stored below full redundancy; repair writes the rest"
            );
        }
        if let Some(old) = previous {
            self.release_pieces(&old, Some(&meta)).await;
        }
        Ok(meta)
    }
}

/// One chunk's uploads on their way.
struct Chunk {
    uploads: Uploads,
    /// The shards uploading a piece.
    spawned: Vec<bool>,
    /// When they were sent.
    at: Instant,
}

/// The upload's bookkeeping: each shard's piece ids so far, which shards are still written.
struct Uploaded<'a> {
    keys: &'a mut [Vec<u64>],
    live: &'a mut [bool],
    /// Piece buffers back from the uploads, for the encoder.
    spare: &'a mut Vec<Vec<u8>>,
    /// Pieces each chunk must get.
    needed: usize,
}

impl Uploaded<'_> {
    /// The shards whose piece of this chunk is still uploading are written no more.
    fn give_up_on(&mut self, pending: &[bool]) {
        for (i, late) in pending.iter().enumerate() {
            if *late && self.live[i] {
                tracing::warn!(
                    shard = i,
                    "piece upload lags far behind the others; the shard is left to repair"
                );
                self.live[i] = false;
            }
        }
    }

    /// Wait for one chunk's uploads and record their ids. A shard whose upload failed, or
    /// still runs [`STRAGGLER_FACTOR`] times later than the chunk's `needed` pieces took (at
    /// least [`STRAGGLER_FLOOR`]), is recorded missing for this chunk and not written any
    /// more: one slow backend must not set the pace of every store (repair writes its pieces
    /// later). A shard given up on at an earlier chunk is not waited for at all. Fewer than
    /// `needed` pieces written fails the store with the last failure.
    async fn collect(&mut self, chunk: Chunk) -> Result<(), Error> {
        let Chunk {
            mut uploads,
            spawned: mut pending,
            at: sent,
        } = chunk;
        let mut ids = vec![MISSING_PIECE; self.keys.len()];
        let mut last_failure = None;
        let mut written = 0;
        let mut deadline: Option<Instant> = None;
        loop {
            let next = match deadline {
                None => uploads.join_next().await,
                Some(at) => {
                    if let Ok(next) = tokio::time::timeout_at(at.into(), uploads.join_next()).await
                    {
                        next
                    } else {
                        self.give_up_on(&pending);
                        pending.iter_mut().for_each(|p| *p = false);
                        uploads.abort_all();
                        uploads.join_next().await
                    }
                }
            };
            let Some(r) = next else { break };
            let (i, r, buf) = match r {
                Ok(done) => done,
                Err(e) if e.is_cancelled() => continue,
                Err(e) => return Err(Error::Internal(format!("upload task: {e}"))),
            };
            pending[i] = false;
            self.spare.push(buf);
            match r {
                Ok(id) => {
                    ids[i] = id;
                    written += 1;
                    if written >= self.needed && deadline.is_none() {
                        let quorum = sent.elapsed();
                        let grace = (quorum * STRAGGLER_FACTOR).max(STRAGGLER_FLOOR);
                        deadline = Some(Instant::now() + grace);
                    }
                    // What is left are shards given up on at an earlier chunk: not waited for.
                    let only_given_up = (0..pending.len()).all(|j| !pending[j] || !self.live[j]);
                    if written >= self.needed && only_given_up {
                        deadline = Some(Instant::now());
                    }
                }
                Err(e) => {
                    if self.live[i] {
                        tracing::warn!(shard = i, error = %e, "piece upload failed; the shard is left to repair");
                    }
                    self.live[i] = false;
                    last_failure = Some(e);
                }
            }
        }
        if written < self.needed {
            return Err(last_failure.unwrap_or(Error::TooFewBackends {
                reachable: written,
                needed: self.needed,
            }));
        }
        for (list, id) in self.keys.iter_mut().zip(ids) {
            list.push(id);
        }
        Ok(())
    }
}
