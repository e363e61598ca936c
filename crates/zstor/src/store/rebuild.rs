//! Rebuild of a stored object against the *current* config (`zstor rebuild`), a child of
//! [`crate::store`].
//!
//! * Same code (`k`, `n`) as the config: **repair**. Shards whose backend left the config or
//!   does not answer are *moved*: new backends are chosen among the reachable ones not
//!   holding a kept shard, group by group so that the placement rules hold. Every chunk is
//!   read from the kept shards and authenticated (AES-GCM); pieces that are missing or fail
//!   their check on a kept backend, and every piece of a moved shard, are regenerated
//!   byte-identical ([`crate::pipeline::regenerate`]) and written. Intact pieces are not
//!   rewritten. The metadata is updated only when something was written.
//! * Different code, or no valid placement that keeps the intact shards: **re-encode**: the
//!   object is retrieved into a private temporary directory, verified, and stored again
//!   with the current config under the same metadata key.
//!
//! Old pieces are not deleted (sequential namespaces): they become garbage.

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::Bytes;

use super::{as_refs, io, spawn_fetch, Store};
use crate::backend::Backend;
use crate::hash::Digest128;
use crate::meta::{BackendRef, ObjectMeta};
use crate::pipeline::{regenerate, ChunkDecoder};
use crate::placement;
use crate::Error;

/// Which object to rebuild.
#[derive(Debug, Clone)]
pub enum RebuildTarget {
    /// The path it was stored under.
    Path(PathBuf),
    /// A raw metadata key, `/{prefix}/meta/{hex}`.
    Key(String),
}

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// The object was re-encoded and stored anew (its code differed from the config's, or
    /// no placement could keep the intact shards).
    pub reencoded: bool,
    /// Shard indices moved to another backend.
    pub moved: Vec<usize>,
    /// Pieces written (regenerated).
    pub pieces_written: usize,
}

impl RebuildReport {
    /// Nothing needed doing.
    pub fn unchanged(&self) -> bool {
        !self.reencoded && self.pieces_written == 0
    }
}

impl Store {
    /// Rebuild one object with the current config (see the module documentation).
    pub async fn rebuild(&self, target: &RebuildTarget) -> Result<RebuildReport, Error> {
        let (key, hash, name) = match target {
            RebuildTarget::Path(p) => {
                let (k, h) = self.meta.key_of(p);
                (k, h, p.display().to_string())
            }
            RebuildTarget::Key(k) => {
                let (k, h) = self.meta.parse_key(k)?;
                let name = k.clone();
                (k, h, name)
            }
        };
        let meta = self.meta.get_at(&key, hash, &name).await?;
        let rules = self.config.rules();
        if meta.k as usize != rules.k || meta.k as usize + meta.m as usize != rules.n {
            return self.reencode(meta, &key, hash).await;
        }
        match self.repair(&meta, &key, hash).await? {
            Some(report) => Ok(report),
            None => self.reencode(meta, &key, hash).await,
        }
    }

    /// Retrieve into a private temporary directory, then store again under `key`.
    async fn reencode(
        &self,
        meta: ObjectMeta,
        key: &str,
        hash: Digest128,
    ) -> Result<RebuildReport, Error> {
        use rand::RngCore;
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "zstor-rebuild-{:016x}",
            rand::thread_rng().next_u64()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io(format!("create {}", dir.display())))?;
        let plain = dir.join("object");
        let result = async {
            self.retrieve_meta(meta, &plain, &|_| {}).await?;
            self.store_at(&plain, key, hash, &|_| {}).await
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        let stored = result?;
        Ok(RebuildReport {
            reencoded: true,
            moved: (0..stored.shards.len()).collect(),
            pieces_written: stored.shards.iter().map(|s| s.keys.len()).sum(),
        })
    }

    /// Repair in place; `None` when no placement keeps the intact shards.
    async fn repair(
        &self,
        meta: &ObjectMeta,
        key: &str,
        hash: Digest128,
    ) -> Result<Option<RebuildReport>, Error> {
        let up = self.reachable().await;
        let position: HashMap<(&str, Option<&str>), (usize, usize)> =
            self.groups
                .iter()
                .enumerate()
                .flat_map(|(g, group)| {
                    group.iter().enumerate().map(move |(i, (c, _))| {
                        ((c.address.as_str(), c.namespace.as_deref()), (g, i))
                    })
                })
                .collect();
        let n = meta.shards.len();
        // Where each shard stays, or None when it must move.
        let mut home: Vec<Option<(usize, usize)>> = meta
            .shards
            .iter()
            .map(|s| {
                let at =
                    position.get(&(s.backend.address.as_str(), s.backend.namespace.as_deref()));
                at.copied().filter(|&(g, i)| up[g].contains(&i))
            })
            .collect();
        let moved: Vec<usize> = (0..n).filter(|&s| home[s].is_none()).collect();
        let mut counts = vec![0usize; self.groups.len()];
        for &(g, _) in home.iter().flatten() {
            counts[g] += 1;
        }
        let mut free: Vec<Vec<usize>> = up
            .iter()
            .enumerate()
            .map(|(g, idx)| {
                idx.iter()
                    .copied()
                    .filter(|&i| !home.contains(&Some((g, i))))
                    .collect()
            })
            .collect();
        let rules = self.config.rules();
        for &s in &moved {
            // The group whose extra shard keeps the most shards through the allowed losses;
            // ties go to the group with the fewest shards.
            let best = (0..free.len())
                .filter(|&g| !free[g].is_empty())
                .max_by_key(|&g| {
                    let mut c = counts.clone();
                    c[g] += 1;
                    (placement::surviving(&c, &rules), usize::MAX - counts[g])
                });
            let Some(g) = best else {
                return Err(Error::TooFewBackends {
                    reachable: up.iter().map(Vec::len).sum(),
                    needed: n,
                });
            };
            let i = free[g].remove(0);
            counts[g] += 1;
            home[s] = Some((g, i));
        }
        if placement::surviving(&counts, &rules) < rules.k {
            tracing::info!("no placement keeps the intact shards; re-encoding");
            return Ok(None);
        }
        let targets: Vec<(BackendRef, Backend)> = home
            .iter()
            .map(|h| {
                let (g, i) = h.ok_or_else(|| Error::Internal("shard without a home".into()))?;
                let (conf, b) = &self.groups[g][i];
                Ok((
                    BackendRef {
                        address: conf.address.clone(),
                        namespace: conf.namespace.clone(),
                    },
                    b.clone(),
                ))
            })
            .collect::<Result<_, Error>>()?;

        let params = meta.params();
        let mut decoder = ChunkDecoder::new(params, &self.data_key, meta.object_id)?;
        let mut new_meta = meta.clone();
        let mut written = 0usize;
        let kept: Vec<usize> = (0..n).filter(|s| !moved.contains(s)).collect();
        let readers: Vec<Backend> = targets.iter().map(|(_, b)| b.clone()).collect();
        for chunk in 0..meta.chunk_count() {
            let pieces: Vec<Option<Bytes>> = spawn_fetch(meta, &readers, chunk, kept.clone())
                .await
                .map_err(|e| Error::Internal(format!("download task: {e}")))?;
            let refs = as_refs(&pieces);
            // Authenticate the chunk before regenerating anything from it.
            decoder.decode(chunk, &refs)?;
            let bad = decoder.bad_pieces().to_vec();
            let needed: Vec<usize> = (0..n)
                .filter(|&s| moved.contains(&s) || pieces[s].is_none() || bad.contains(&s))
                .collect();
            if needed.is_empty() {
                continue;
            }
            let all = regenerate(&params, meta.object_id, chunk, &refs)?;
            for s in needed {
                let id = targets[s].1.put_piece(&all[s]).await?;
                let slot = new_meta.shards[s]
                    .keys
                    .get_mut(chunk as usize)
                    .ok_or_else(|| Error::Meta(format!("shard {s} lacks chunk {chunk}")))?;
                *slot = id;
                written += 1;
            }
        }
        for &s in &moved {
            new_meta.shards[s].backend = targets[s].0.clone();
        }
        if written > 0 || !moved.is_empty() {
            self.meta.put_at(key, hash, &new_meta).await?;
            // Replaced pieces (corrupt, or on a backend that left) are garbage now.
            self.release_pieces(meta, Some(&new_meta)).await;
        }
        Ok(Some(RebuildReport {
            reencoded: false,
            moved,
            pieces_written: written,
        }))
    }
}
