//! The filesystem model, independent of FUSE: inodes, directories and file blocks kept in a
//! [`Store`], with an in-memory cache of dirty state flushed in ordered, journaled batches.
//!
//! Concurrency: one mutex over [`State`]; every operation runs under it, backend I/O included,
//! except the loading of uncached blocks for reads (fetched unlocked, then validated) and the
//! storing of dirty blocks (`blocks`: snapshot under the lock, store unlocked, reconcile). The
//! FUSE session is multi-threaded, so requests queue on the lock rather than in the kernel.
//!
//! Memory: inodes and directories are loaded on demand and dropped again once the kernel has
//! forgotten them (FUSE `forget`) and nothing about them is dirty or open; clean blocks are
//! evicted past `cache_limit`; dirty ones are stored by the background flusher (`background`)
//! past half of `dirty_limit` or after `dirty_expire`, and by writers themselves at the limit.
//!
//! Modules: `dir` (bucketed directory), `namei` (create/unlink/rename/link…), `data`
//! (open/read/write/truncate), `xattr`, `blocks` (storing dirty blocks unlocked), `flush`
//! (cache → journal → store), `background` (the flusher's side), `recover` (journal replay and
//! fsck at mount).

mod background;
mod blocks;
mod data;
mod dir;
mod direct;
mod flush;
mod namei;
mod recover;
mod xattr;

pub use dir::Dir;
pub use namei::{NewNode, RenameMode, SetAttr};
pub use recover::FsckReport;

use crate::error::{Errno, FsResult, Result};
use crate::inode::{Inode, Kind, Ts, BLOCK};
use crate::metrics::Metrics;
use crate::record::{self, Superblock, TAG_INODE};
use crate::store::{Ns, Store};
use parking_lot::{Mutex, RwLock};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Inode number of the root directory (meta record 1; record 0 is the superblock).
pub const ROOT: u64 = 1;

/// Tunables of a mounted filesystem.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// Size reported by statfs (ThreeFold's `size` option). Default 10 GiB.
    pub size: u64,
    /// Bytes of dirty blocks at which writers stop and store blocks themselves; the
    /// background flusher starts at 3/4 of it (`dirty=SIZE`).
    pub dirty_limit: usize,
    /// How long a dirty block of an open file may wait in memory (`expire=SECS`; close and
    /// fsync store at once; full new blocks, i.e. sequential writes, go as soon as the
    /// flusher gets to them).
    pub dirty_expire: Duration,
    /// Bytes of clean blocks kept for reads (0 with `nocache`).
    pub cache_limit: usize,
    /// Ask the kernel for its writeback cache (FUSE_WRITEBACK_CACHE): writes land in the page
    /// cache and reach us in large batches; `nowbcache` turns it off.
    pub writeback_cache: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            size: 10 << 30,
            dirty_limit: default_dirty_limit(),
            dirty_expire: Duration::from_secs(30),
            cache_limit: 128 << 20,
            writeback_cache: true,
        }
    }
}

/// An eighth of the RAM, between 64 MiB and 2 GiB: 4 KiB random writes into a file that fits
/// coalesce in their 128 KiB blocks (each block stored once, not once per write: the write
/// amplification was 30x with 64 MiB, and still ~20x when the dirty set was half the file);
/// small machines keep a small dirty set.
fn default_dirty_limit() -> usize {
    // SAFETY: sysinfo only writes into the zeroed struct it is given.
    let ram = unsafe {
        let mut si: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&raw mut si) == 0 {
            (si.totalram as u64).saturating_mul(u64::from(si.mem_unit))
        } else {
            0
        }
    };
    (ram / 8).clamp(64 << 20, 2 << 30) as usize
}

/// A cached block of a file: bytes past `data.len()` (up to the block size) read as zeros.
#[derive(Debug)]
pub(crate) struct CBlock {
    /// Shared with a store in progress (which runs without the state lock), so a change
    /// copies them first: see [`CBlock::bytes_mut`].
    pub data: Arc<Vec<u8>>,
    pub dirty: bool,
    /// Bumped by every change: a store marks the block clean only if it did not move.
    pub gen: u64,
    /// The `gen` this cache entry started with: tells a block recreated after a truncate
    /// from the one a store began with.
    pub born: u64,
    /// When the block last went from clean to dirty: stores go oldest first.
    pub dirty_since: Instant,
}

/// Source of [`CBlock`] generations, unique within the process.
static GEN: AtomicU64 = AtomicU64::new(1);

impl CBlock {
    pub fn new(data: Vec<u8>) -> CBlock {
        let gen = GEN.fetch_add(1, Relaxed);
        CBlock {
            data: Arc::new(data),
            dirty: false,
            gen,
            born: gen,
            dirty_since: Instant::now(),
        }
    }

    /// The bytes, to change them: copied if a store holds them, and the generation moves.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        self.gen = GEN.fetch_add(1, Relaxed);
        Arc::make_mut(&mut self.data)
    }

    /// Mark dirty; returns whether it was clean before.
    pub fn set_dirty(&mut self) -> bool {
        let was_clean = !self.dirty;
        if was_clean {
            self.dirty = true;
            self.dirty_since = Instant::now();
        }
        was_clean
    }
}

/// An open file or directory.
#[derive(Debug)]
pub(crate) enum Handle {
    File { ino: u64, append: bool },
    Dir { ino: u64, snapshot: Vec<DirItem> },
}

/// One readdir item of a directory snapshot.
#[derive(Debug, Clone)]
pub struct DirItem {
    pub ino: u64,
    pub kind: Kind,
    pub name: Vec<u8>,
}

/// Everything the filesystem keeps in memory.
#[derive(Default)]
pub(crate) struct State {
    pub inodes: HashMap<u64, Inode>,
    pub dirs: HashMap<u64, Dir>,
    pub dirty_inodes: HashSet<u64>,
    /// Inodes and directories whose records a metadata commit is storing right now (taken
    /// out of the dirty sets): kept in memory until it is done.
    pub in_flight: HashSet<u64>,
    /// Meta records (inodes, buckets) to delete at the next flush.
    pub free_meta: Vec<u64>,
    /// Data records to delete at the next flush.
    pub free_data: Vec<u64>,
    pub blocks: BTreeMap<(u64, u64), CBlock>,
    pub cached_bytes: usize,
    pub dirty_bytes: usize,
    /// Blocks that writes filled up to their end (sequential writing), counted for the
    /// flusher: such blocks are stored early.
    pub full_blocks: usize,
    /// Open handles per inode (an unlinked inode lives until its count drops to 0).
    pub open_count: HashMap<u64, u32>,
    pub handles: HashMap<u64, Handle>,
    pub next_fh: u64,
    pub txn: u64,
    /// Journal records left by a failed commit; deleted before the next transaction.
    pub stale_journal: Vec<u64>,
    /// Kernel lookup count per inode (FUSE `forget` semantics): a clean inode nobody refers to
    /// is dropped from memory.
    pub lookups: HashMap<u64, u64>,
}

/// A filesystem on a store.
pub struct Fs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) state: Mutex<State>,
    pub(crate) config: FsConfig,
    pub(crate) metrics: Metrics,
    /// What the consistency check repaired at mount (`None` after a clean unmount).
    recovery: Option<FsckReport>,
    /// Whether the kernel runs its writeback cache for this mount (set at FUSE init).
    pub(crate) kernel_writeback: AtomicBool,
    /// Held by whoever stores blocks or commits metadata: one store of a block at a time, so
    /// an older copy can never land after a newer one. Taken before `state`, never after.
    pub(crate) flush_lock: Mutex<()>,
    /// Synced flushes begun, and the number of the last one that succeeded (they run one at
    /// a time, under `flush_lock`): fsyncs that arrive together share one ([`flush::Syncs`]).
    pub(crate) syncs: flush::Syncs,
    /// Wakes the background flusher (see `background`).
    pub(crate) kick: background::Kick,
    /// Inodes known to have no xattr: the kernel asks for `security.capability` before
    /// writes, and that answer must not queue behind the filesystem mutex. Only grows with
    /// inodes asked about; setxattr removes its inode (inode numbers are never reused).
    pub(crate) no_xattrs: RwLock<HashSet<u64>>,
    /// Run by fsync once everything is durable in the store (see [`Fs::set_fsync_barrier`]).
    fsync_barrier: std::sync::OnceLock<FsyncBarrier>,
}

/// What an fsync waits for beyond the store's own durability (e.g. copies elsewhere); its
/// error fails the fsync with EIO (the data stays written and durable locally).
pub type FsyncBarrier = Box<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

/// Attributes as returned to stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub perm: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub size: u64,
    pub blocks: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
}

impl Attr {
    pub fn of(i: &Inode) -> Attr {
        Attr {
            ino: i.ino,
            kind: i.kind,
            perm: i.perm,
            nlink: i.nlink,
            uid: i.uid,
            gid: i.gid,
            rdev: i.rdev,
            size: i.size,
            blocks: i.size.div_ceil(512),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
        }
    }
}

/// Who asks: the caller's credentials (for ownership of new inodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl Fs {
    /// Open the filesystem on `store`: format empty namespaces, replay the journal and run the
    /// consistency check after an unclean shutdown, then mark the filesystem in use.
    pub fn open(store: Arc<dyn Store>, config: FsConfig) -> Result<Fs> {
        let mut fs = Fs {
            recovery: None,
            store,
            state: Mutex::new(State {
                next_fh: 1,
                ..State::default()
            }),
            config,
            metrics: Metrics::default(),
            kernel_writeback: AtomicBool::new(false),
            flush_lock: Mutex::new(()),
            syncs: flush::Syncs::default(),
            kick: background::Kick::default(),
            no_xattrs: RwLock::new(HashSet::new()),
            fsync_barrier: std::sync::OnceLock::new(),
        };
        match fs.store.get(Ns::Meta, 0)? {
            None => fs.format()?,
            Some(b) => {
                let sb = record::decode_super(&b)?;
                recover::replay_journal(&*fs.store)?;
                if !sb.clean {
                    tracing::warn!("filesystem was not cleanly unmounted: checking it");
                    let report = recover::fsck(&*fs.store)?;
                    tracing::warn!(?report, "consistency check done");
                    fs.recovery = Some(report);
                }
            }
        }
        fs.write_super(false)?;
        Ok(fs)
    }

    fn format(&self) -> Result<()> {
        if !self.store.ids(Ns::Meta)?.is_empty() {
            return Err(crate::Error::NotZdbfs(
                "meta namespace is not empty but has no superblock".into(),
            ));
        }
        let sb = Superblock {
            block_size: BLOCK as u32,
            clean: true,
        };
        let id = self.store.append(Ns::Meta, &record::encode_super(&sb))?;
        let root_id = self.store.append(Ns::Meta, &record::encode_placeholder())?;
        if id != 0 || root_id != ROOT {
            return Err(crate::Error::NotZdbfs(format!(
                "unexpected ids {id}/{root_id} for superblock and root"
            )));
        }
        let mut root = Inode::new(ROOT, Kind::Dir, 0o755, 0, 0);
        root.parent = ROOT;
        self.store
            .update(Ns::Meta, ROOT, &record::encode_inode(&root))?;
        self.store.sync()?;
        tracing::info!("formatted a new filesystem");
        Ok(())
    }

    pub(crate) fn write_super(&self, clean: bool) -> Result<()> {
        let sb = Superblock {
            block_size: BLOCK as u32,
            clean,
        };
        self.store.update(Ns::Meta, 0, &record::encode_super(&sb))?;
        self.store.sync()?;
        Ok(())
    }

    /// Flush everything, mark the filesystem clean and sync. Idempotent; called on unmount.
    pub fn shutdown(&self) -> Result<()> {
        {
            // The kernel is gone and holds no inode: the unlinked ones it held go now.
            let mut st = self.state.lock();
            st.lookups.clear();
            let unlinked: Vec<u64> = st
                .inodes
                .iter()
                .filter(|(_, i)| i.nlink == 0)
                .map(|(ino, _)| *ino)
                .collect();
            for ino in unlinked {
                st.destroy_if_unused(ino);
            }
        }
        self.flush_all(true)?;
        self.write_super(true)?;
        tracing::info!(metrics = ?self.metrics.snapshot(), "filesystem flushed and marked clean");
        Ok(())
    }

    /// The repairs made at mount after an unclean shutdown (`None` if it was clean).
    pub fn recovery(&self) -> Option<&FsckReport> {
        self.recovery.as_ref()
    }

    /// Record whether the kernel's writeback cache is on (decided at FUSE init).
    pub fn set_kernel_writeback(&self, on: bool) {
        self.kernel_writeback.store(on, Relaxed);
    }

    /// Operation counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let mut st = self.state.lock();
        Ok(Attr::of(st.inode(&*self.store, ino)?))
    }

    /// The kernel dropped `n` references to `ino` (FUSE forget).
    pub fn forget(&self, ino: u64, n: u64) {
        self.state.lock().forget(ino, n);
    }

    /// Number of inodes held in memory.
    pub fn cached_inodes(&self) -> usize {
        self.state.lock().inodes.len()
    }

    /// Number of blocks held in memory (clean and dirty).
    pub fn cached_blocks(&self) -> usize {
        self.state.lock().blocks.len()
    }

    /// Filesystem statistics: `(total bytes, used bytes, inodes in use)`.
    /// `(total, used, files)` bytes for statfs: on a store that knows its disk, what is
    /// used plus what new data may still take (so `df` shows the real room left); otherwise
    /// the `size` option.
    pub fn statfs(&self) -> FsResult<(u64, u64, u64)> {
        let used = self.store.used_bytes(Ns::Data)?;
        // An estimate: inode records average well under 256 bytes.
        let files = self.store.used_bytes(Ns::Meta)? / 256;
        let total = match self.store.available_bytes()? {
            Some(available) => used + available,
            None => self.config.size.max(used),
        };
        Ok((total, used, files))
    }
}

impl State {
    /// The inode `ino`, loaded from the store if not cached. ENOENT if absent.
    pub fn inode(&mut self, store: &dyn Store, ino: u64) -> FsResult<&mut Inode> {
        match self.inodes.entry(ino) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            // Destroyed, its record not yet deleted: it must not come back from the store.
            Entry::Vacant(_) if self.free_meta.contains(&ino) => Err(Errno::ENOENT),
            Entry::Vacant(v) => Ok(v.insert(load_inode(store, ino)?)),
        }
    }

    /// The entries of directory `ino`, loaded from its buckets if not cached. ENOTDIR if `ino`
    /// is not a directory.
    pub fn dir(&mut self, store: &dyn Store, ino: u64) -> FsResult<&mut Dir> {
        let i = self.inode(store, ino)?;
        if i.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let ids = i.buckets.clone();
        match self.dirs.entry(ino) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(v) => Ok(v.insert(load_dir(store, ino, &ids)?)),
        }
    }

    /// The kernel holds one more reference to `ino`.
    pub fn remember(&mut self, ino: u64) {
        *self.lookups.entry(ino).or_insert(0) += 1;
    }

    /// The kernel dropped `n` references to `ino` (or never got them).
    pub fn forget(&mut self, ino: u64, n: u64) {
        let left = match self.lookups.get_mut(&ino) {
            Some(c) => {
                *c = c.saturating_sub(n);
                *c
            }
            None => return,
        };
        if left == 0 {
            self.lookups.remove(&ino);
            if !self.destroy_if_unused(ino) {
                self.try_evict(ino);
            }
        }
    }

    /// Destroy `ino` if it has no link left and nothing holds it: no open handle and no
    /// kernel reference. The kernel may still open or stat an unlinked inode it holds (a
    /// lookup raced with the unlink, an open file's /proc link): until its FORGET, the
    /// inode and its blocks stay. Whether it was destroyed.
    pub fn destroy_if_unused(&mut self, ino: u64) -> bool {
        let unused = self.inodes.get(&ino).is_some_and(|i| i.nlink == 0)
            && !self.open_count.contains_key(&ino)
            && !self.lookups.contains_key(&ino);
        if unused {
            self.destroy(ino);
        }
        unused
    }

    /// Drop `ino` from memory if nothing needs it there: no kernel reference, no open handle,
    /// nothing dirty. It is loaded again from the store when next needed.
    pub fn try_evict(&mut self, ino: u64) {
        if ino == ROOT
            || self.lookups.contains_key(&ino)
            || self.open_count.contains_key(&ino)
            || self.dirty_inodes.contains(&ino)
            || self.in_flight.contains(&ino)
            || self.dirs.get(&ino).is_some_and(|d| !d.dirty.is_empty())
            || self
                .blocks
                .range((ino, 0)..=(ino, u64::MAX))
                .any(|(_, b)| b.dirty)
        {
            return;
        }
        if self.inodes.remove(&ino).is_none() {
            return;
        }
        self.dirs.remove(&ino);
        for k in self.cached_blocks(ino) {
            self.drop_block(k);
        }
    }

    /// The cache keys of `ino`'s cached blocks.
    fn cached_blocks(&self, ino: u64) -> Vec<(u64, u64)> {
        self.blocks
            .range((ino, 0)..=(ino, u64::MAX))
            .map(|(k, _)| *k)
            .collect()
    }

    pub fn mark(&mut self, ino: u64) {
        self.dirty_inodes.insert(ino);
    }

    /// Forget an inode whose last link and last handle are gone: its blocks, buckets and
    /// record are deleted at the next flush.
    pub fn destroy(&mut self, ino: u64) {
        let Some(i) = self.inodes.remove(&ino) else {
            return;
        };
        self.dirty_inodes.remove(&ino);
        self.free_data.extend(i.blocks.values().copied());
        self.free_meta.extend(i.buckets.iter().flatten().copied());
        self.free_meta.push(ino);
        self.dirs.remove(&ino);
        for k in self.cached_blocks(ino) {
            self.drop_block(k);
        }
    }

    /// Remove a cached block (truncated, punched or destroyed), keeping the byte counts.
    pub fn drop_block(&mut self, key: (u64, u64)) {
        if let Some(b) = self.blocks.remove(&key) {
            self.cached_bytes -= b.data.len();
            if b.dirty {
                self.dirty_bytes -= b.data.len();
            }
        }
    }

    /// Drop one link of `ino`; destroy it when no link, no open handle and no kernel
    /// reference remain (else at the last release or forget).
    pub fn unlink_inode(&mut self, store: &dyn Store, ino: u64) -> FsResult<()> {
        let i = self.inode(store, ino)?;
        i.nlink = i
            .nlink
            .saturating_sub(if i.kind == Kind::Dir { 2 } else { 1 });
        if i.kind == Kind::Dir {
            i.nlink = 0;
        }
        i.touch_changed();
        self.mark(ino);
        self.destroy_if_unused(ino);
        Ok(())
    }
}

fn load_inode(store: &dyn Store, ino: u64) -> FsResult<Inode> {
    if ino == 0 {
        return Err(Errno::ENOENT);
    }
    let Some(b) = store.get(Ns::Meta, ino)? else {
        return Err(Errno::ENOENT);
    };
    if b.first() != Some(&TAG_INODE) {
        return Err(Errno::ENOENT);
    }
    let i = record::decode_inode(&b)?;
    if i.ino != ino {
        tracing::error!(ino, found = i.ino, "inode record names another inode");
        return Err(Errno::EIO);
    }
    Ok(i)
}

fn load_dir(store: &dyn Store, ino: u64, ids: &[Option<u64>]) -> FsResult<Dir> {
    let mut d = Dir::with_buckets(ids.len());
    for (idx, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let Some(b) = store.get(Ns::Meta, *id)? else {
            tracing::error!(dir = ino, bucket = id, "directory bucket missing");
            return Err(Errno::EIO);
        };
        let (_, _, entries) = record::decode_bucket(&b)?;
        for (name, e) in entries {
            if d.buckets[idx].insert(name, e).is_none() {
                d.len += 1;
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
