//! The uploader: staged checkpoints to the backends, side by side.
//!
//! Over a wide-area link each stored object costs a few round trips besides its bytes, so
//! one object after another leaves the link idle most of the time. A pass takes up to
//! [`BATCH`] staged checkpoints and stores all their objects (data segments, index copies,
//! descriptors) at once, at most [`PARALLEL`] in flight (each holds a few chunks of pieces
//! in memory). Then, in checkpoint order, every checkpoint whose objects are all stored is
//! folded into the next manifest, stopping at the first one that is not (a later checkpoint
//! of a namespace must never be named before an earlier one); the manifest is stored once
//! for the batch, and only then are the staging folders and the superseded copies deleted.
//! A failed object leaves its checkpoint (and those after it) staged for the next pass; the
//! objects that were stored are found unchanged then and not sent again.
//!
//! Must not touch: staging (the event sink's) or fetching.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;

use super::{io_text, lock, Offloader, RETRY_PAUSE};
use crate::manifest::{self, Manifest, StoredSegment};

/// Staged checkpoints per pass: the manifest naming them waits for the whole batch.
const BATCH: usize = 8;

/// Objects stored at once.
const PARALLEL: usize = 6;

/// One object of a staged checkpoint.
enum Part {
    /// Data segment `d`, stored under `version` (`None`: the segment this checkpoint closed).
    Data {
        d: u32,
        version: Option<u32>,
    },
    Index {
        i: u32,
    },
    Descriptor,
}

/// What storing one object gave.
struct Stored {
    checkpoint: usize,
    part: Part,
    size: u64,
    checksum: String,
}

/// A staged checkpoint of the batch.
struct Staged {
    ns: String,
    seg: u32,
    dir: PathBuf,
    parts: usize,
}

impl Offloader {
    /// Upload staged checkpoints until `stop`; each one wakes it, and it re-checks every few
    /// seconds (retries after failures).
    pub async fn run_uploader(self: std::sync::Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let drained = self.upload_pending().await;
            let pause = if drained {
                Duration::from_secs(5)
            } else {
                RETRY_PAUSE
            };
            tokio::select! {
                _ = stop.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Upload everything staged now, batch after batch; `true` when nothing is left.
    pub async fn upload_pending(&self) -> bool {
        let _one = self.uploading.lock().await;
        loop {
            let pending = self.pending();
            if pending.is_empty() {
                return true;
            }
            let batch: Vec<(String, u32, PathBuf)> = pending.into_iter().take(BATCH).collect();
            let whole = self.upload_batch(batch).await;
            if !whole {
                return false;
            }
        }
    }

    /// Store one batch and publish what of it is complete; `true` when all of it was.
    async fn upload_batch(&self, batch: Vec<(String, u32, PathBuf)>) -> bool {
        let before = self.manifest();
        let mut jobs = Vec::new();
        let mut staged = Vec::new();
        let mut unreadable = false;
        for (c, (ns, seg, dir)) in batch.into_iter().enumerate() {
            match self.parts(&before, &ns, seg, &dir) {
                Ok(parts) => {
                    staged.push(Staged {
                        ns: ns.clone(),
                        seg,
                        dir,
                        parts: parts.len(),
                    });
                    jobs.extend(
                        parts
                            .into_iter()
                            .map(|(part, path, name)| (c, part, path, name)),
                    );
                }
                Err(e) => {
                    // It and the checkpoints after it wait for the next pass.
                    self.failed(&ns, seg, &e);
                    unreadable = true;
                    break;
                }
            }
        }
        let results: Vec<Result<Stored, (usize, String)>> = stream::iter(jobs)
            .map(|(checkpoint, part, path, name)| async move {
                match self.store_object(&path, &name).await {
                    Ok(meta) => Ok(Stored {
                        checkpoint,
                        part,
                        size: meta.size,
                        checksum: hex::encode(meta.checksum),
                    }),
                    Err(e) => Err((checkpoint, format!("{}: {e}", name.display()))),
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut done: Vec<Vec<Stored>> = staged.iter().map(|_| Vec::new()).collect();
        let mut first_failure: Option<(usize, String)> = None;
        for r in results {
            match r {
                Ok(s) => done[s.checkpoint].push(s),
                Err((c, e)) => {
                    if first_failure.as_ref().is_none_or(|(f, _)| c < *f) {
                        first_failure = Some((c, e));
                    }
                }
            }
        }
        // Checkpoints before the first failed one, and only those, are complete.
        let complete = first_failure.as_ref().map_or(staged.len(), |(c, _)| *c);
        let complete = (0..complete)
            .take_while(|&c| done[c].len() == staged[c].parts)
            .count();
        let mut whole = complete == staged.len() && !unreadable;
        if complete > 0 {
            match self
                .fold_and_publish(&before, &staged[..complete], done)
                .await
            {
                Ok(()) => *lock(&self.last_error) = None,
                Err(e) => {
                    self.failed(&staged[0].ns, staged[0].seg, &e);
                    return false;
                }
            }
        }
        if let Some((c, e)) = first_failure {
            self.failed(&staged[c].ns, staged[c].seg, &e);
            whole = false;
        }
        whole
    }

    fn failed(&self, ns: &str, seg: u32, e: &str) {
        self.stats.upload_failures.fetch_add(1, Relaxed);
        tracing::warn!(namespace = %ns, segment = seg, error = %e, "offload failed; will retry");
        *lock(&self.last_error) = Some(format!("{ns} segment {seg}: {e}"));
    }

    /// The objects of the staged checkpoint `seg` of `ns` still to store: (what, file,
    /// object name).
    fn parts(
        &self,
        manifest: &Manifest,
        ns: &str,
        seg: u32,
        dir: &Path,
    ) -> Result<Vec<(Part, PathBuf, PathBuf)>, String> {
        let entry = manifest.namespaces.get(ns);
        let mut parts = Vec::new();
        for file in std::fs::read_dir(dir).map_err(|e| io_text("list", dir, e))? {
            let file = file.map_err(|e| io_text("list", dir, e))?;
            let name = file.file_name().to_string_lossy().into_owned();
            let path = file.path();
            if let Some(d) = manifest::segment_number(&name, 'd') {
                // The closed segment is stored once, under the name it closed with (a retried
                // upload finds it stored). An emptied one gets a name of this checkpoint, so
                // the copy the published manifest names stays whole until it is replaced.
                let version = (d != seg).then_some(seg);
                let stored = entry.and_then(|e| e.data.get(&d));
                let done = match version {
                    None => stored.is_some(),
                    Some(_) => stored.is_some_and(|s| s.version == version),
                };
                if !done {
                    let object = manifest::data_name(ns, d, version);
                    parts.push((Part::Data { d, version }, path, object));
                }
            } else if let Some(i) = manifest::segment_number(&name, 'i') {
                parts.push((Part::Index { i }, path, manifest::index_name(ns, i, seg)));
            }
        }
        parts.push((
            Part::Descriptor,
            dir.join("zdb-namespace"),
            manifest::descriptor_name(ns, seg),
        ));
        Ok(parts)
    }

    /// Name the complete checkpoints in the manifest (in order), store it, then delete their
    /// staging folders and the copies no longer named.
    async fn fold_and_publish(
        &self,
        before: &Manifest,
        staged: &[Staged],
        mut done: Vec<Vec<Stored>>,
    ) -> Result<(), String> {
        let Folded {
            next,
            passed_over,
            replaced,
            given_back,
            bytes,
        } = fold(before, staged, &mut done);
        self.publish(&next).await?;
        self.stats.copies_replaced.fetch_add(replaced, Relaxed);
        self.stats.bytes_given_back.fetch_add(given_back, Relaxed);
        self.stats
            .checkpoints_uploaded
            .fetch_add(staged.len() as u64, Relaxed);
        self.stats.bytes_uploaded.fetch_add(bytes, Relaxed);
        let before = std::mem::replace(&mut *lock(&self.manifest), next.clone());
        for cp in staged {
            tracing::info!(namespace = %cp.ns, segment = cp.seg, "checkpoint offloaded");
            if let Err(e) = std::fs::remove_dir_all(&cp.dir) {
                tracing::warn!(dir = %cp.dir.display(), error = %e, "staging cleanup");
            }
        }
        let namespaces: BTreeSet<&str> = staged.iter().map(|cp| cp.ns.as_str()).collect();
        for ns in namespaces {
            self.delete_superseded(ns, &before, &next).await;
        }
        self.delete_objects(passed_over).await;
        Ok(())
    }

    /// Delete the copies `before` named and `after` (published) no longer does: older index
    /// and descriptor versions, data segments' pre-compaction copies. Best effort: a copy
    /// left behind is wasted space only.
    async fn delete_superseded(&self, ns: &str, before: &Manifest, after: &Manifest) {
        let (Some(old), Some(new)) = (before.namespaces.get(ns), after.namespaces.get(ns)) else {
            return;
        };
        let mut names: Vec<PathBuf> = old
            .index
            .iter()
            .filter(|(seg, version)| new.index.get(seg) != Some(version))
            .map(|(&seg, &version)| manifest::index_name(ns, seg, version))
            .collect();
        names.extend(
            old.data
                .iter()
                .filter(|(seg, s)| new.data.get(seg).is_some_and(|n| n.version != s.version))
                .map(|(&seg, s)| s.name(ns, seg)),
        );
        if old.descriptor != new.descriptor {
            names.push(manifest::descriptor_name(ns, old.descriptor));
        }
        self.delete_objects(names).await;
    }

    /// Delete stored objects (best effort), several at once.
    async fn delete_objects(&self, names: Vec<PathBuf>) {
        stream::iter(names)
            .for_each_concurrent(PARALLEL, |name| async move {
                let (key, _) = self.store.meta().key_of(&name);
                let _writer = self.maintenance.key_locks().lock(&key).await;
                if let Err(e) = self.store.delete(&name).await {
                    tracing::debug!(object = %name.display(), error = %e, "superseded copy not deleted");
                }
            })
            .await;
    }

    /// Store `manifest` as the manifest object, then as the local copy.
    async fn publish(&self, manifest: &Manifest) -> Result<(), String> {
        let tmp = self.manifest_path.with_extension("upload");
        manifest::write_atomic(&tmp, &manifest.encode()).map_err(|e| io_text("write", &tmp, e))?;
        self.store_object(&tmp, Path::new(manifest::MANIFEST_NAME))
            .await
            .map_err(|e| format!("manifest: {e}"))?;
        let _ = std::fs::remove_file(&tmp);
        manifest
            .save(&self.manifest_path)
            .map_err(|e| e.to_string())
    }
}

/// A manifest with complete checkpoints folded in, and what that replaced.
struct Folded {
    next: Manifest,
    /// Stored by an earlier checkpoint of the batch, replaced by a later one.
    passed_over: Vec<PathBuf>,
    replaced: u64,
    given_back: u64,
    bytes: u64,
}

/// Fold the stored objects of `staged` (complete checkpoints, in order) into `before`.
fn fold(before: &Manifest, staged: &[Staged], done: &mut [Vec<Stored>]) -> Folded {
    let mut next = before.clone();
    let (mut replaced, mut given_back, mut bytes) = (0, 0, 0);
    // Copies stored by an earlier checkpoint of this batch and replaced by a later one:
    // never named by a published manifest, so deleted here.
    let mut passed_over: Vec<PathBuf> = Vec::new();
    let mut seen = BTreeSet::new();
    for (c, cp) in staged.iter().enumerate() {
        let earlier_in_batch = !seen.insert(cp.ns.as_str());
        let published = before.namespaces.get(&cp.ns);
        let entry = next.namespaces.entry(cp.ns.clone()).or_default();
        for s in std::mem::take(&mut done[c]) {
            bytes += s.size;
            match s.part {
                Part::Data { d, version } => {
                    if let (Some(_), Some(old)) = (version, entry.data.get(&d)) {
                        given_back += old.size.saturating_sub(s.size);
                        replaced += 1;
                    }
                    let seg = StoredSegment {
                        size: s.size,
                        checksum: s.checksum,
                        version,
                    };
                    if let Some(old) = entry.data.insert(d, seg) {
                        if published.and_then(|p| p.data.get(&d)) != Some(&old) {
                            passed_over.push(old.name(&cp.ns, d));
                        }
                    }
                }
                Part::Index { i } => {
                    if let Some(old) = entry.index.insert(i, cp.seg) {
                        if published.and_then(|p| p.index.get(&i)) != Some(&old) {
                            passed_over.push(manifest::index_name(&cp.ns, i, old));
                        }
                    }
                }
                Part::Descriptor => {}
            }
        }
        let old = std::mem::replace(&mut entry.descriptor, cp.seg);
        if earlier_in_batch && old != cp.seg {
            passed_over.push(manifest::descriptor_name(&cp.ns, old));
        }
        entry.checkpoint = cp.seg;
    }
    Folded {
        next,
        passed_over,
        replaced,
        given_back,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(checkpoint: usize, part: Part, size: u64) -> Stored {
        Stored {
            checkpoint,
            part,
            size,
            checksum: "00".into(),
        }
    }

    fn staged(ns: &str, seg: u32, parts: usize) -> Staged {
        Staged {
            ns: ns.into(),
            seg,
            dir: PathBuf::new(),
            parts,
        }
    }

    #[test]
    fn a_batch_names_the_newest_copies_and_deletes_the_ones_it_passed_over() {
        let mut before = Manifest::new();
        let a = before.namespaces.entry("a".into()).or_default();
        a.index.insert(3, 1);
        a.descriptor = 1;
        a.checkpoint = 1;
        let seg = |size| StoredSegment {
            size,
            checksum: "00".into(),
            version: None,
        };
        a.data.insert(1, seg(10));
        let batch = [staged("a", 2, 4), staged("b", 2, 3), staged("a", 3, 3)];
        let data = |d| Part::Data { d, version: None };
        let mut done = vec![
            vec![
                stored(0, data(2), 20),
                stored(0, Part::Index { i: 3 }, 1),
                stored(0, Part::Index { i: 2 }, 1),
                stored(0, Part::Descriptor, 1),
            ],
            vec![
                stored(1, data(2), 5),
                stored(1, Part::Index { i: 2 }, 1),
                stored(1, Part::Descriptor, 1),
            ],
            vec![
                stored(2, data(3), 30),
                stored(2, Part::Index { i: 3 }, 1),
                stored(2, Part::Descriptor, 1),
            ],
        ];
        let f = fold(&before, &batch, &mut done);
        let a = &f.next.namespaces["a"];
        assert_eq!(a.index.get(&3), Some(&3), "the later checkpoint's copy");
        assert_eq!(a.index.get(&2), Some(&2));
        assert_eq!((a.descriptor, a.checkpoint), (3, 3));
        assert_eq!(a.data.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        let b = &f.next.namespaces["b"];
        assert_eq!(
            (b.descriptor, b.checkpoint, b.index.get(&2)),
            (2, 2, Some(&2))
        );
        // Checkpoint 2's copies of a's index 3 and descriptor were never published and are
        // replaced now; the published ones (version 1) are delete_superseded's.
        assert_eq!(
            f.passed_over,
            [
                manifest::index_name("a", 3, 2),
                manifest::descriptor_name("a", 2)
            ]
        );
        assert_eq!(f.bytes, 20 + 3 + 5 + 2 + 30 + 2);
    }
}
