//! The uploader: staged checkpoints to the backends, side by side, without pauses.
//!
//! Over a wide-area link each stored object costs a few round trips besides its bytes, so
//! one object after another leaves the link idle most of the time. The uploader keeps
//! [`PARALLEL`] objects (data segments, pieces, index copies, descriptors) of the staged
//! checkpoints in flight, taken in checkpoint order (each holds a few chunks of pieces in
//! memory), and takes newly staged checkpoints as the earlier ones' objects are sent.
//! Whenever no manifest is being stored, the checkpoints whose objects are all stored,
//! from the oldest on and stopping at the first that is not (a later checkpoint of a
//! namespace must never be named before an earlier one), are folded into the next manifest,
//! which is stored while the uploads go on; only then are their staging folders deleted,
//! and the copies it no longer names (deleted while the next manifest may already be
//! stored: the pass ends once they are). A failed object or manifest stops the pass (what is
//! complete before it is still published); its checkpoint stays staged for the next pass,
//! and the objects that were stored are found unchanged then and not sent again.
//!
//! Must not touch: staging (the event sink's) or fetching.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::{io_text, lock, Offloader, RETRY_PAUSE};
use crate::manifest::{self, Manifest, OpenSegment, Piece, StoredSegment, Version};

/// Staged checkpoints taken and not yet published, at most (bounds a manifest's fold).
const TAKEN: usize = 64;

/// Objects stored at once.
const PARALLEL: usize = 6;

/// One object of a staged checkpoint.
enum Part {
    /// Data segment `d`, stored under `version` (`None`: the segment this checkpoint closed).
    Data {
        d: u32,
        version: Option<Version>,
    },
    /// A partial checkpoint's piece of its open segment, from offset `start` to `end` (the
    /// file given with it is the segment's: the piece is cut from it when it is sent).
    Piece {
        start: u64,
        end: u64,
    },
    Index {
        i: u32,
    },
    Descriptor,
}

/// What storing one object gave.
struct Stored {
    part: Part,
    size: u64,
    checksum: String,
}

/// A staged checkpoint taken by the running pass: its objects not sent yet, in flight and
/// stored.
struct Taken {
    id: u64,
    staged: Staged,
    unsent: VecDeque<(Part, PathBuf, PathBuf)>,
    in_flight: usize,
    done: Vec<Stored>,
    failed: bool,
}

impl Taken {
    fn complete(&self) -> bool {
        self.unsent.is_empty() && self.in_flight == 0 && !self.failed
    }
}

/// A staged checkpoint being uploaded.
struct Staged {
    ns: String,
    version: Version,
    dir: PathBuf,
    staged_at: std::time::SystemTime,
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

    /// Upload everything staged now (and what is staged meanwhile); `true` when nothing is
    /// left.
    pub async fn upload_pending(&self) -> bool {
        let _one = self.uploading.lock().await;
        // The manifest the next fold builds on: the last one published or being published.
        let mut base = self.manifest();
        let mut queue: VecDeque<Taken> = VecDeque::new();
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let (mut next_id, mut failed) = (0u64, false);
        let mut jobs = FuturesUnordered::new();
        let mut publishing = None;
        // Deletions of the copies a published manifest no longer names.
        let mut deleting = FuturesUnordered::new();
        loop {
            if !failed && queue.iter().all(|t| t.unsent.is_empty()) && queue.len() < TAKEN {
                for p in self.pending() {
                    if queue.len() >= TAKEN || !seen.insert(p.dir.clone()) {
                        continue;
                    }
                    match self.parts(&base, &p.ns, p.version, &p.dir) {
                        Ok(parts) => {
                            let staged = Staged {
                                ns: p.ns,
                                version: p.version,
                                dir: p.dir,
                                staged_at: p.staged_at,
                            };
                            queue.push_back(Taken {
                                id: next_id,
                                staged,
                                unsent: parts.into(),
                                in_flight: 0,
                                done: Vec::new(),
                                failed: false,
                            });
                            next_id += 1;
                        }
                        Err(e) => {
                            // It and the checkpoints after it wait for the next pass.
                            self.failed(&p.ns, p.version, &e);
                            failed = true;
                            break;
                        }
                    }
                }
            }
            while !failed && jobs.len() < PARALLEL {
                let Some(t) = queue.iter_mut().find(|t| !t.unsent.is_empty()) else {
                    break;
                };
                let (part, path, name) = t.unsent.pop_front().expect("not empty");
                t.in_flight += 1;
                let id = t.id;
                let dir = t.staged.dir.clone();
                jobs.push(async move {
                    let stored = match part {
                        Part::Piece { start, end } => {
                            self.store_piece(&path, start, end, &dir, &name).await
                        }
                        _ => self.store_object(&path, &name).await,
                    };
                    let r = stored
                        .map(|meta| Stored {
                            part,
                            size: meta.size,
                            checksum: hex::encode(meta.checksum),
                        })
                        .map_err(|e| format!("{}: {e}", name.display()));
                    (id, r)
                });
            }
            if publishing.is_none() {
                let complete = queue.iter().take_while(|t| t.complete()).count();
                if complete > 0 {
                    let (staged, mut done): (Vec<Staged>, Vec<Vec<Stored>>) =
                        queue.drain(..complete).map(|t| (t.staged, t.done)).unzip();
                    let folded = fold(&base, &staged, &mut done);
                    let before = std::mem::replace(&mut base, folded.next.clone());
                    publishing = Some(Box::pin(self.publish_folded(before, folded, staged)));
                }
            }
            if jobs.is_empty() && publishing.is_none() && deleting.is_empty() {
                let more = !failed && self.pending().iter().any(|p| !seen.contains(&p.dir));
                if !more {
                    return !failed && queue.is_empty();
                }
                continue;
            }
            tokio::select! {
                Some((id, r)) = jobs.next(), if !jobs.is_empty() => {
                    let Some(t) = queue.iter_mut().find(|t| t.id == id) else { continue };
                    t.in_flight -= 1;
                    match r {
                        Ok(stored) => t.done.push(stored),
                        Err(e) => {
                            self.failed(&t.staged.ns, t.staged.version, &e);
                            (t.failed, failed) = (true, true);
                        }
                    }
                }
                Some(()) = deleting.next(), if !deleting.is_empty() => {}
                r = async { publishing.as_mut().expect("checked").await }, if publishing.is_some() => {
                    publishing = None;
                    match r {
                        Ok(unnamed) => {
                            *lock(&self.last_error) = None;
                            deleting.push(self.delete_objects(unnamed));
                        }
                        Err((ns, version, e)) => {
                            self.failed(&ns, version, &e);
                            failed = true;
                            // Nothing later may be published on top of what was not.
                            queue.clear();
                        }
                    }
                }
            }
        }
    }

    /// Store bytes `start..end` of `segment_file` as object `name`, through a temporary
    /// copy in the checkpoint's staging folder `dir` (made off the namespace lock; those
    /// bytes never change).
    async fn store_piece(
        &self,
        segment_file: &Path,
        start: u64,
        end: u64,
        dir: &Path,
        name: &Path,
    ) -> Result<zstor::meta::ObjectMeta, zstor::Error> {
        let copy = dir.join(format!("piece-{start}.upload"));
        let (from, to) = (segment_file.to_path_buf(), copy.clone());
        let len = end.saturating_sub(start);
        tokio::task::spawn_blocking(move || super::copy_range(&from, start, len, &to))
            .await
            .map_err(|e| zstor::Error::Internal(format!("piece copy task: {e}")))?
            .map_err(zstor::Error::Internal)?;
        let stored = self.store_object(&copy, name).await;
        let _ = std::fs::remove_file(&copy);
        stored
    }

    fn failed(&self, ns: &str, version: Version, e: &str) {
        self.stats.upload_failures.fetch_add(1, Relaxed);
        tracing::warn!(namespace = %ns, checkpoint = %version, error = %e, "offload failed; will retry");
        *lock(&self.last_error) = Some(format!("{ns} checkpoint {version}: {e}"));
    }

    /// The objects of the staged checkpoint `version` of `ns` still to store: (what, file,
    /// object name).
    fn parts(
        &self,
        manifest: &Manifest,
        ns: &str,
        version: Version,
        dir: &Path,
    ) -> Result<Vec<(Part, PathBuf, PathBuf)>, String> {
        let entry = manifest.namespaces.get(ns);
        let seg = version.segment;
        let mut parts = Vec::new();
        for file in std::fs::read_dir(dir).map_err(|e| io_text("list", dir, e))? {
            let file = file.map_err(|e| io_text("list", dir, e))?;
            let name = file.file_name().to_string_lossy().into_owned();
            let path = file.path();
            let piece = name.strip_suffix(".ref").and_then(manifest::piece_file);
            if let Some((piece_seg, start)) = piece {
                let open = entry.and_then(|e| e.open.as_ref());
                let stored = open.is_some_and(|o| {
                    o.segment == piece_seg && o.pieces.iter().any(|p| p.start == start)
                });
                if !stored {
                    let r = super::PieceRef::read(&path)?;
                    let object = manifest::piece_name(ns, piece_seg, start);
                    let part = Part::Piece { start, end: r.end };
                    parts.push((part, r.segment_file, object));
                }
            } else if let Some(d) = manifest::segment_number(&name, 'd') {
                // The closed segment is stored once, under the name it closed with (a retried
                // upload finds it stored). An emptied one gets a name of this checkpoint, so
                // the copy the published manifest names stays whole until it is replaced.
                let version = (d != seg).then_some(version);
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
                parts.push((
                    Part::Index { i },
                    path,
                    manifest::index_name(ns, i, version),
                ));
            }
        }
        parts.push((
            Part::Descriptor,
            dir.join("zdb-namespace"),
            manifest::descriptor_name(ns, version),
        ));
        Ok(parts)
    }

    /// Store the manifest `folded` made of `before` and the complete checkpoints `staged`,
    /// then delete their staging folders; returns the stored copies the manifest no longer
    /// names (deleted by the caller while the next manifest may already be stored: no later
    /// manifest names them again). An error names the first checkpoint it leaves staged.
    async fn publish_folded(
        &self,
        before: Manifest,
        folded: Folded,
        staged: Vec<Staged>,
    ) -> Result<Vec<PathBuf>, (String, Version, String)> {
        let Folded {
            next,
            passed_over,
            replaced,
            given_back,
            bytes,
        } = folded;
        let first = |e: String| (staged[0].ns.clone(), staged[0].version, e);
        next.check()
            .map_err(|e| first(format!("refusing to publish a broken manifest: {e}")))?;
        self.publish(&next).await.map_err(first)?;
        self.stats.copies_replaced.fetch_add(replaced, Relaxed);
        self.stats.bytes_given_back.fetch_add(given_back, Relaxed);
        self.stats
            .checkpoints_uploaded
            .fetch_add(staged.len() as u64, Relaxed);
        self.stats.bytes_uploaded.fetch_add(bytes, Relaxed);
        *lock(&self.manifest) = next.clone();
        self.published.notify_all();
        if let Some(newest) = staged.iter().map(|cp| cp.staged_at).max() {
            let mut at = lock(&self.published_staged_at);
            *at = (*at).max(Some(newest));
        }
        for cp in &staged {
            tracing::debug!(namespace = %cp.ns, checkpoint = %cp.version, "checkpoint offloaded");
            if let Err(e) = std::fs::remove_dir_all(&cp.dir) {
                tracing::warn!(dir = %cp.dir.display(), error = %e, "staging cleanup");
            }
        }
        let namespaces: BTreeSet<&str> = staged.iter().map(|cp| cp.ns.as_str()).collect();
        let mut unnamed = passed_over;
        for ns in namespaces {
            unnamed.extend(superseded(ns, &before, &next));
        }
        Ok(unnamed)
    }

    /// Delete stored objects (best effort: a copy left behind is wasted space only), several
    /// at once.
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
        let seg = cp.version.segment;
        let (ended, open) = match cp.version.open_len {
            // A partial checkpoint goes on with the open segment's pieces, or starts them.
            Some(_) if entry.open.as_ref().is_some_and(|o| o.segment == seg) => {
                (None, entry.open.take())
            }
            Some(_) => (
                entry.open.take(),
                Some(OpenSegment {
                    segment: seg,
                    pieces: Vec::new(),
                }),
            ),
            // Closing a segment ends its pieces: the whole segment is stored now.
            None if entry.open.as_ref().is_some_and(|o| o.segment <= seg) => {
                (entry.open.take(), None)
            }
            None => (None, entry.open.take()),
        };
        entry.open = open;
        if let Some(ended) = ended {
            let published_open = published.and_then(|p| p.open.as_ref());
            passed_over.extend(pieces_not_in(&ended, published_open, &cp.ns));
        }
        for s in std::mem::take(&mut done[c]) {
            bytes += s.size;
            match s.part {
                Part::Data { d, version } => {
                    if let (Some(_), Some(old)) = (version, entry.data.get(&d)) {
                        given_back += old.size.saturating_sub(s.size);
                        replaced += 1;
                    }
                    let stored = StoredSegment {
                        size: s.size,
                        checksum: s.checksum,
                        version,
                    };
                    if let Some(old) = entry.data.insert(d, stored) {
                        if published.and_then(|p| p.data.get(&d)) != Some(&old) {
                            passed_over.push(old.name(&cp.ns, d));
                        }
                    }
                }
                Part::Piece { start, .. } => {
                    if let Some(open) = entry.open.as_mut() {
                        open.pieces.push(Piece {
                            start,
                            size: s.size,
                            checksum: s.checksum,
                        });
                    }
                }
                Part::Index { i } => {
                    if let Some(old) = entry.index.insert(i, cp.version) {
                        if published.and_then(|p| p.index.get(&i)) != Some(&old) {
                            passed_over.push(manifest::index_name(&cp.ns, i, old));
                        }
                    }
                }
                Part::Descriptor => {}
            }
        }
        let old = std::mem::replace(&mut entry.descriptor, cp.version);
        if earlier_in_batch && old != cp.version {
            passed_over.push(manifest::descriptor_name(&cp.ns, old));
        }
        if cp.version.open_len.is_none() {
            entry.checkpoint = seg;
        }
    }
    Folded {
        next,
        passed_over,
        replaced,
        given_back,
        bytes,
    }
}

/// The copies `before` named for `ns` and `after` (published) no longer does: older index
/// and descriptor versions, data segments' pre-compaction copies, pieces of a closed segment.
fn superseded(ns: &str, before: &Manifest, after: &Manifest) -> Vec<PathBuf> {
    let (Some(old), Some(new)) = (before.namespaces.get(ns), after.namespaces.get(ns)) else {
        return Vec::new();
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
    if let Some(open) = &old.open {
        names.extend(pieces_not_in(open, new.open.as_ref(), ns));
    }
    names
}

/// The objects of `open`'s pieces that `kept` (a later state of the namespace) does not
/// name.
fn pieces_not_in(open: &OpenSegment, kept: Option<&OpenSegment>, ns: &str) -> Vec<PathBuf> {
    let named = |start: u64| {
        kept.is_some_and(|k| k.segment == open.segment && k.pieces.iter().any(|p| p.start == start))
    };
    open.pieces
        .iter()
        .filter(|p| !named(p.start))
        .map(|p| manifest::piece_name(ns, open.segment, p.start))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(_checkpoint: usize, part: Part, size: u64) -> Stored {
        Stored {
            part,
            size,
            checksum: "00".into(),
        }
    }

    fn staged(ns: &str, version: Version, _parts: usize) -> Staged {
        Staged {
            ns: ns.into(),
            version,
            dir: PathBuf::new(),
            staged_at: std::time::UNIX_EPOCH,
        }
    }

    fn closed(seg: u32) -> Version {
        Version::closed(seg)
    }

    #[test]
    fn a_batch_names_the_newest_copies_and_deletes_the_ones_it_passed_over() {
        let mut before = Manifest::new();
        let a = before.namespaces.entry("a".into()).or_default();
        a.index.insert(3, closed(1));
        a.descriptor = closed(1);
        a.checkpoint = 1;
        let seg = |size| StoredSegment {
            size,
            checksum: "00".into(),
            version: None,
        };
        a.data.insert(1, seg(10));
        let batch = [
            staged("a", closed(2), 4),
            staged("b", closed(2), 3),
            staged("a", closed(3), 3),
        ];
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
        assert_eq!(
            a.index.get(&3),
            Some(&closed(3)),
            "the later checkpoint's copy"
        );
        assert_eq!(a.index.get(&2), Some(&closed(2)));
        assert_eq!((a.descriptor, a.checkpoint), (closed(3), 3));
        assert_eq!(a.data.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        let b = &f.next.namespaces["b"];
        assert_eq!(
            (b.descriptor, b.checkpoint, b.index.get(&2)),
            (closed(2), 2, Some(&closed(2)))
        );
        // Checkpoint 2's copies of a's index 3 and descriptor were never published and are
        // replaced now; the published ones (version 1) are superseded's.
        assert_eq!(
            f.passed_over,
            [
                manifest::index_name("a", 3, closed(2)),
                manifest::descriptor_name("a", closed(2))
            ]
        );
        assert_eq!(f.bytes, 20 + 3 + 5 + 2 + 30 + 2);
    }

    /// Partial checkpoints add pieces to the open segment; the close of that segment names
    /// it whole and lets its pieces go: the published ones after the manifest is stored
    /// (superseded), the ones of this batch at once (passed over).
    #[test]
    fn pieces_follow_each_other_until_their_segment_closes() {
        let mut before = Manifest::new();
        let a = before.namespaces.entry("a".into()).or_default();
        let p = |start, size| Piece {
            start,
            size,
            checksum: "00".into(),
        };
        a.open = Some(OpenSegment {
            segment: 4,
            pieces: vec![p(0, 100)],
        });
        a.descriptor = Version::partial(4, 100);
        let (p1, p2) = (Version::partial(4, 250), Version::partial(4, 300));
        let piece = |start| Part::Piece { start, end: 0 };
        // Two more pieces of segment 4: they follow the published one.
        let batch = [staged("a", p1, 2), staged("a", p2, 2)];
        let mut done = vec![
            vec![stored(0, piece(100), 150), stored(0, Part::Descriptor, 1)],
            vec![stored(1, piece(250), 50), stored(1, Part::Descriptor, 1)],
        ];
        let f = fold(&before, &batch, &mut done);
        let open = f.next.namespaces["a"].open.clone().unwrap();
        assert_eq!((open.segment, open.len(), open.pieces.len()), (4, 300, 3));
        assert_eq!(f.next.namespaces["a"].version(), p2);
        f.next.check().unwrap();

        // Then a piece and the close of 4 in one batch: 4 is named whole, the batch's own
        // piece is passed over, the published ones go with superseded.
        let published = f.next;
        let batch = [
            staged("a", Version::partial(4, 400), 2),
            staged("a", closed(4), 2),
        ];
        let mut done = vec![
            vec![stored(0, piece(300), 100), stored(0, Part::Descriptor, 1)],
            vec![
                stored(
                    1,
                    Part::Data {
                        d: 4,
                        version: None,
                    },
                    400,
                ),
                stored(1, Part::Descriptor, 1),
            ],
        ];
        let f = fold(&published, &batch, &mut done);
        let a = &f.next.namespaces["a"];
        assert_eq!((a.open.clone(), a.checkpoint), (None, 4));
        assert_eq!(a.data[&4].size, 400);
        assert!(f.passed_over.contains(&manifest::piece_name("a", 4, 300)));
        assert!(!f.passed_over.contains(&manifest::piece_name("a", 4, 0)));
        let superseded = pieces_not_in(
            published.namespaces["a"].open.as_ref().unwrap(),
            a.open.as_ref(),
            "a",
        );
        assert_eq!(superseded.len(), 3, "{superseded:?}");
    }
}
