//! Writing the cache to the store, in an order that keeps the stored tree consistent at every
//! instant (a kill -9 may stop a flush anywhere):
//!
//! 1. dirty file blocks (new blocks appended, existing ones updated in place; `blocks`, without
//!    the state lock);
//! 2. new directory buckets appended (nothing names them yet);
//! 3. one journal transaction in `zdbfs-temp` holding every inode and changed bucket plus the
//!    records to delete; once it is stored the flush is decided;
//! 4. the transaction applied to `zdbfs-meta` / `zdbfs-data`, the store synced if asked, then
//!    the journal records deleted.
//!
//! A single-record change skips the journal (one record update is atomic by itself).
//! At mount, a complete journal transaction is replayed and an incomplete one dropped.

use super::blocks::Pick;
use super::{Fs, State};
use crate::error::Result;
use crate::inode::Kind;
use crate::record::{self, JournalPart, Op};
use crate::store::{Ns, Store, MAX_RECORD};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest journal part (well under the backend's record limit).
const PART_BYTES: usize = MAX_RECORD / 2;

/// Synced flushes, numbered as they begin. Each stores everything changed before it began,
/// so an fsync is answered by any that begins after the fsync arrived: fsyncs arriving
/// while one runs wait for it and then share the next one (group commit), instead of
/// running one each, back to back.
#[derive(Default)]
pub(crate) struct Syncs {
    pub(crate) begun: AtomicU64,
    last_done: AtomicU64,
}

impl Fs {
    /// Flush everything changed so far; with `sync`, make it durable before returning.
    pub fn flush_all(&self, sync: bool) -> Result<()> {
        let _pass = self.flush_lock.lock();
        self.flush_locked(sync)
    }

    /// [`Fs::flush_all`] with the lock held: a synced flush takes the next number, and
    /// counts as done once it succeeded.
    fn flush_locked(&self, sync: bool) -> Result<()> {
        let number = sync.then(|| self.syncs.begun.fetch_add(1, Ordering::SeqCst) + 1);
        self.store_blocks(Pick::All)?;
        self.commit_meta(sync)?;
        if let Some(n) = number {
            self.syncs.last_done.fetch_max(n, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Make everything changed before this call durable (fsync): done at once if a synced
    /// flush that began after the call arrived has succeeded meanwhile.
    pub fn flush_synced(&self) -> Result<()> {
        self.flush_synced_since(self.syncs.begun.load(Ordering::SeqCst))
    }

    /// [`Fs::flush_synced`] for an fsync that arrived when `arrived` synced flushes had
    /// begun.
    pub(crate) fn flush_synced_since(&self, arrived: u64) -> Result<()> {
        let _pass = self.flush_lock.lock();
        if self.syncs.last_done.load(Ordering::SeqCst) > arrived {
            return Ok(());
        }
        self.flush_locked(true)
    }

    /// Run `f` while no flush stores blocks or commits metadata: the store then holds a tree
    /// a mount opens as it is (no transaction half applied), e.g. for a snapshot of it.
    pub fn between_flushes<T>(&self, f: impl FnOnce() -> T) -> T {
        let _pass = self.flush_lock.lock();
        f()
    }

    /// Whether anything waits to be flushed.
    pub fn is_dirty(&self) -> bool {
        let st = self.state.lock();
        !st.dirty_inodes.is_empty()
            || !st.in_flight.is_empty()
            || st.dirty_bytes > 0
            || !st.free_meta.is_empty()
            || !st.free_data.is_empty()
    }

    /// Steps 2-4: everything but file blocks (only stored blocks are named by inodes).
    /// The caller holds `flush_lock`. The state lock is held only while the transaction
    /// is gathered and while its outcome is recorded: storing and syncing it (most of a
    /// synced flush) runs without it, so other requests, and the fsyncs that will share
    /// the next flush, go on meanwhile. What it took is marked in flight until then (an
    /// inode in flight is never dropped from memory: the store does not hold it yet).
    pub(crate) fn commit_meta(&self, sync: bool) -> Result<()> {
        let store = &*self.store;
        let mut st = self.state.lock();
        // Journal records of an earlier failed commit must go before a newer transaction
        // exists, or a replay could bring their older state back.
        while let Some(&id) = st.stale_journal.last() {
            store.delete(Ns::Temp, id)?;
            st.stale_journal.pop();
        }
        let mut ops = Vec::new();
        let mut taken = Taken::default();
        let r = self.collect_buckets(&mut st, store, &mut ops, &mut taken.buckets);
        if let Err(e) = r {
            taken.put_back(&mut st);
            return Err(e);
        }
        taken.inodes = st.dirty_inodes.drain().collect();
        taken.inodes.sort_unstable();
        for &ino in &taken.inodes {
            if let Some(i) = st.inodes.get(&ino) {
                ops.push(Op::Put(ino, record::encode_inode(i)));
            }
        }
        taken.free_meta = std::mem::take(&mut st.free_meta);
        taken.free_data = std::mem::take(&mut st.free_data);
        ops.extend(taken.free_meta.iter().copied().map(Op::DelMeta));
        ops.extend(taken.free_data.iter().copied().map(Op::DelData));
        let txn = (!ops.is_empty()).then(|| {
            st.txn += 1;
            st.txn
        });
        st.in_flight = taken.inodes.iter().copied().collect();
        st.in_flight
            .extend(taken.buckets.iter().map(|(ino, _)| *ino));
        drop(st);
        let outcome = match txn {
            Some(txn) => commit(store, txn, ops, sync),
            None if sync => store.sync().map_err(|e| (e.into(), Vec::new())),
            None => Ok(()),
        };
        let mut st = self.state.lock();
        st.in_flight.clear();
        if let Err((e, journal)) = outcome {
            // Everything stays dirty and is retried by the next flush.
            st.stale_journal.extend(journal);
            taken.put_back(&mut st);
            return Err(e);
        }
        for &ino in &taken.inodes {
            // Clean now: drop it from memory if the kernel forgot it meanwhile.
            st.try_evict(ino);
        }
        if txn.is_some() {
            self.metrics.count_flush();
        }
        // Flushed blocks are clean now: keep the cache within its limit.
        self.evict(&mut st);
        Ok(())
    }

    /// Encode the dirty buckets of every directory: new buckets are appended at once, changed
    /// ones become puts. The dirty sets taken are returned in `taken` for a rollback.
    fn collect_buckets(
        &self,
        st: &mut State,
        store: &dyn Store,
        ops: &mut Vec<Op>,
        taken: &mut TakenBuckets,
    ) -> Result<()> {
        let dirs: Vec<u64> = st
            .dirs
            .iter()
            .filter(|(_, d)| !d.dirty.is_empty())
            .map(|(&k, _)| k)
            .collect();
        for ino in dirs {
            let Some(d) = st.dirs.get_mut(&ino) else {
                continue;
            };
            let Some(inode) = st.inodes.get_mut(&ino) else {
                continue;
            };
            let dirty = std::mem::take(&mut d.dirty);
            taken.push((ino, dirty.clone()));
            inode.buckets.resize(d.buckets.len(), None);
            for idx in dirty {
                let bucket = &d.buckets[idx];
                let rec = record::encode_bucket(
                    ino,
                    idx as u32,
                    bucket.iter().map(|(n, e)| (n.as_slice(), *e)),
                );
                match inode.buckets[idx] {
                    Some(id) => ops.push(Op::Put(id, rec)),
                    None if bucket.is_empty() => {}
                    None => {
                        inode.buckets[idx] = Some(store.append(Ns::Meta, &rec)?);
                        st.dirty_inodes.insert(ino);
                    }
                }
            }
        }
        Ok(())
    }

    /// Store the dirty blocks and the inode of one file (on close), without the journal.
    pub(crate) fn flush_file(&self, ino: u64) -> Result<()> {
        let _pass = self.flush_lock.lock();
        let stored = self.store_blocks(Pick::File(ino))?;
        let mut st = self.state.lock();
        if stored || st.dirty_inodes.contains(&ino) {
            if let Some(i) = st.inodes.get(&ino) {
                if i.kind == Kind::File && i.nlink > 0 {
                    self.store.update(Ns::Meta, ino, &record::encode_inode(i))?;
                    st.dirty_inodes.remove(&ino);
                }
            }
        }
        Ok(())
    }
}

/// Dirty bucket sets taken by a commit, per directory.
type TakenBuckets = Vec<(u64, BTreeSet<usize>)>;

/// What a metadata commit took out of the state: put back if it fails, so the next flush
/// retries it.
#[derive(Default)]
struct Taken {
    inodes: Vec<u64>,
    buckets: TakenBuckets,
    free_meta: Vec<u64>,
    free_data: Vec<u64>,
}

impl Taken {
    fn put_back(self, st: &mut State) {
        for (ino, set) in self.buckets {
            if let Some(d) = st.dirs.get_mut(&ino) {
                d.dirty.extend(set);
            }
        }
        // An inode destroyed meanwhile is not dirty any more (its record is in free_meta).
        let live: Vec<u64> = self
            .inodes
            .into_iter()
            .filter(|ino| st.inodes.contains_key(ino))
            .collect();
        st.dirty_inodes.extend(live);
        st.free_meta.splice(0..0, self.free_meta);
        st.free_data.splice(0..0, self.free_data);
    }
}

/// Store and apply one transaction. On failure, returns the journal records it left behind.
fn commit(
    store: &dyn Store,
    txn: u64,
    ops: Vec<Op>,
    sync: bool,
) -> std::result::Result<(), (crate::Error, Vec<u64>)> {
    if ops.len() == 1 {
        apply(store, &ops).map_err(|e| (e, Vec::new()))?;
        if sync {
            store.sync().map_err(|e| (e.into(), Vec::new()))?;
        }
        return Ok(());
    }
    // Split into parts that each fit a record.
    let mut parts: Vec<Vec<Op>> = vec![Vec::new()];
    let mut bytes = 0;
    for op in ops {
        let n = match &op {
            Op::Put(_, v) => v.len() + 13,
            _ => 9,
        };
        if bytes + n > PART_BYTES && !parts.last().is_some_and(|p| p.is_empty()) {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += n;
        if let Some(p) = parts.last_mut() {
            p.push(op);
        }
    }
    let total = parts.len() as u32;
    let mut ids = Vec::with_capacity(parts.len());
    let r = (|| -> Result<()> {
        for (k, p) in parts.iter().enumerate() {
            let rec = record::encode_journal(&JournalPart {
                txn,
                part: k as u32,
                parts: total,
                ops: p.clone(),
            });
            ids.push(store.append(Ns::Temp, &rec)?);
        }
        for p in &parts {
            apply(store, p)?;
        }
        if sync {
            store.sync()?;
        }
        while let Some(&id) = ids.last() {
            store.delete(Ns::Temp, id)?;
            ids.pop();
        }
        Ok(())
    })();
    r.map_err(|e| (e, ids))
}

/// Apply journal operations to the store (idempotent).
pub(crate) fn apply(store: &dyn Store, ops: &[Op]) -> Result<()> {
    for op in ops {
        match op {
            Op::Put(id, v) => store.update(Ns::Meta, *id, v)?,
            Op::DelMeta(id) => store.delete(Ns::Meta, *id)?,
            Op::DelData(id) => store.delete(Ns::Data, *id)?,
        }
    }
    Ok(())
}
