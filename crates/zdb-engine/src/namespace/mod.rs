//! One namespace: its segments, its in-memory index and every operation on its entries.
//!
//! Concurrency: one `RwLock` over the namespace state. Reads (GET, EXISTS, SCAN…) share it and
//! read data through memory maps (`mapped.rs`) or positional I/O; writes take it exclusively and
//! batch their appends (`append.rs`). Different namespaces never contend. Durability: a write
//! returns once both its data record and its index entry are in the OS page cache
//! (`Durability::Os`), or on disk (`Durability::Always`).

mod admin;
mod append;
mod compact;
mod copyout;
mod mapped;
mod open;
mod rebuild;
mod scan;
mod write;

pub use admin::{NamespaceInfo, SettingChange};
pub use compact::{CompactStats, SegmentUsage};
pub use copyout::Append;
pub use scan::{Cursor, Direction, HistoryItem, ScanItem, ScanPage};

use crate::error::{Error, IoContext, Result};
use crate::events::{Event, EventSink};
use crate::format::{self, IndexEntry, RecordHeader};
use crate::keymap::{KeyMap, Placement};
use crate::segment;
use crate::segrefs::{record_len, SegRefs};
use crate::settings::Settings;
use crate::{Durability, Mode};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Settings shared by every namespace of an engine.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub datasize: u64,
    pub durability: Durability,
    pub disk: Arc<crate::disk::DiskGuard>,
}

/// Outcome of a SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// Written; carries the key (in seq mode the new or updated id, 8 bytes little-endian).
    Written(Vec<u8>),
    /// The value equals the current one: nothing written.
    Unchanged,
}

/// Metadata of a key's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    pub payload_len: u32,
    pub timestamp: u32,
    pub seg: u32,
    pub data_off: u32,
}

/// The per-mode part of the in-memory index.
///
/// Code that needs one mode's index matches this once, where it looks the key up, and carries
/// what it found (a [`keymap::Slot`](crate::keymap::Slot), a [`SeqEntry`]) from there; updates
/// after an append go through [`Keys::record`], which does each mode's part. So no code path
/// assumes a mode it did not match.
pub(crate) enum Keys {
    /// User mode: every key in memory.
    User(KeyMap),
    /// Sequential mode: ids are positions in the index files; only segment starts in memory.
    Seq(SeqIndex),
}

impl Keys {
    /// Point the index at `new`, the newest version of `key`, whose index entry is at offset
    /// `idx_off` of its index segment. `old` is the version it supersedes, deleted or not
    /// (`None`: the key had none). User mode keeps every key's version and finds `old` in its
    /// map; sequential mode keeps only totals, so it is told, and an id with no `old` is the
    /// new id `next_id` named. `key` is the key as the client sent it (unused for ids).
    pub fn record(&mut self, key: &[u8], old: Option<&IndexEntry>, new: &IndexEntry, idx_off: u32) {
        match self {
            Keys::User(m) => {
                let replaced = m.put(key, Placement::of(new, idx_off));
                debug_assert_eq!(
                    replaced.map(|s| (s.seg, s.data_off)),
                    old.map(|o| (o.data_seg, o.data_off)),
                    "the caller looked up the version it replaces under the same lock"
                );
            }
            Keys::Seq(s) => {
                if old.is_none() {
                    s.next_id += 1;
                }
                s.account(old, Some(new));
            }
        }
    }
}

/// A sequential id's index entry and where that entry is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqEntry {
    pub id: u32,
    /// Index segment holding the entry.
    pub iseg: u32,
    /// Offset of the entry in that segment.
    pub off: u64,
    pub entry: IndexEntry,
}

#[derive(Default)]
pub(crate) struct SeqIndex {
    /// `(first id, segment)` for every index segment, ascending.
    pub starts: Vec<(u32, u32)>,
    pub next_id: u32,
    pub live: u64,
    pub live_bytes: u64,
    pub refs: SegRefs,
}

impl SeqIndex {
    /// Account for an id's entry changing from `old` to `new` (either may be absent).
    pub fn account(&mut self, old: Option<&IndexEntry>, new: Option<&IndexEntry>) {
        if let Some(o) = old {
            if !o.is_deleted() {
                self.live -= 1;
                self.live_bytes -= u64::from(o.payload_len);
            }
            self.refs.sub(o.data_seg, record_len(4, o.payload_len));
        }
        if let Some(n) = new {
            if !n.is_deleted() {
                self.live += 1;
                self.live_bytes += u64::from(n.payload_len);
            }
            self.refs.add(n.data_seg, record_len(4, n.payload_len));
        }
    }

    /// Index segment and offset of the entry for `id`.
    pub fn locate(&self, id: u32) -> Option<(u32, u64)> {
        if id >= self.next_id {
            return None;
        }
        let i = self
            .starts
            .partition_point(|&(first, _)| first <= id)
            .checked_sub(1)?;
        let (first, seg) = self.starts[i];
        Some((
            seg,
            (format::FILE_HEADER_LEN + (id - first) as usize * format::SEQ_ENTRY_LEN) as u64,
        ))
    }
}

pub(crate) struct State {
    pub settings: Settings,
    pub keys: Keys,
    /// Segments that exist, ascending; the last one is open for appends.
    pub segments: Vec<u32>,
    pub data: Arc<File>,
    /// Read map of the open data segment, made on first read.
    pub data_map: std::sync::OnceLock<Option<Arc<mapped::Mapped>>>,
    pub data_len: u64,
    pub index: Arc<File>,
    pub index_len: u64,
    /// Bytes in all data / index segment files.
    pub data_bytes: u64,
    pub index_bytes: u64,
    /// Index segment ids modified since the last `INDEX DIRTY RESET`.
    pub dirty: BTreeSet<u32>,
    pub opened_at: Instant,
    /// Length of the open data segment at its last checkpoint (partial or the jump that
    /// opened it) and when that was: what [`Namespace::snapshot_if`] measures from.
    pub snapshot_len: u64,
    pub snapshot_at: Instant,
    /// Writes not yet fsync'ed (for `Durability::Os`).
    pub unsynced: bool,
    /// Closed index segments whose entries were rewritten in place (sequential updates)
    /// since the last sync: synced with the open segment (for `Durability::Os`).
    pub unsynced_index: Vec<u32>,
    pub scratch: Vec<u8>,
    /// Appends not yet handed to the OS (see `append.rs`).
    pub pending: append::Pending,
    /// Events raised under the lock, emitted once it is released (hooks may be slow).
    pub events: Vec<Event>,
}

impl State {
    pub fn cur_seg(&self) -> u32 {
        *self
            .segments
            .last()
            .expect("a namespace always has an open segment")
    }

    pub fn mode(&self) -> Mode {
        match self.keys {
            Keys::User(_) => Mode::User,
            Keys::Seq(_) => Mode::Seq,
        }
    }

    pub fn entries(&self) -> u64 {
        match &self.keys {
            Keys::User(m) => m.live(),
            Keys::Seq(s) => s.live,
        }
    }

    /// Sum of the payload lengths of live entries: what `maxsize` limits.
    pub fn payload_bytes(&self) -> u64 {
        match &self.keys {
            Keys::User(m) => m.live_bytes(),
            Keys::Seq(s) => s.live_bytes,
        }
    }

    /// 0-db's rule: the live payload after this write may not exceed the limit.
    fn check_room(&self, new_len: usize, replaced_len: u64) -> Result<()> {
        let max = self.settings.maxsize;
        if max > 0 && self.payload_bytes() + new_len as u64 > max + replaced_len {
            return Err(Error::NamespaceFull);
        }
        Ok(())
    }
}

/// Bytes handed over by the sink, by (segment, offset): the bytes and the reads using them.
type Provided = HashMap<(u32, u64), (Arc<[u8]>, usize)>;

/// A namespace, shared by every connection attached to it.
pub struct Namespace {
    name: String,
    data_dir: PathBuf,
    index_dir: PathBuf,
    shared: Shared,
    events: Arc<dyn EventSink>,
    state: RwLock<State>,
    /// Read handles of closed segments, opened on first use.
    files: Mutex<HashMap<(bool, u32), Arc<File>>>,
    /// Read maps of closed data segments, made on first read.
    maps: RwLock<HashMap<u32, Arc<mapped::Mapped>>>,
    /// Streams of large reads through those maps, read ahead.
    read_ahead: mapped::ReadAhead,
    /// Bytes of offloaded segments the sink handed over for reads in progress, by (segment,
    /// offset), with the number of reads using them (see `fetching`).
    provided: Mutex<Provided>,
    deleted: AtomicBool,
    /// Held by [`Namespace::sync`] while its fdatasyncs run without the state lock: a
    /// second sync waits for the first, so it never answers before the bytes are durable.
    syncing: Mutex<()>,
    /// New values may use the disk's reserve (see [`Namespace::use_reserve`]).
    into_reserve: AtomicBool,
    io: crate::iostats::IoStats,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this namespace was deleted while still referenced.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Let this namespace's writes use the disk reserve kept for deletes and compaction: for
    /// small records that deleting needs (a filesystem's metadata). Not persisted.
    pub fn use_reserve(&self, yes: bool) {
        self.into_reserve.store(yes, Ordering::Relaxed);
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    fn check_alive(&self) -> Result<()> {
        if self.is_deleted() {
            return Err(Error::NamespaceGone);
        }
        Ok(())
    }

    /// A snapshot of the persisted settings.
    pub fn settings(&self) -> Settings {
        self.state.read().settings.clone()
    }

    pub fn mode(&self) -> Mode {
        self.state.read().mode()
    }

    /// Number of live entries (DBSIZE).
    pub fn len(&self) -> u64 {
        self.state.read().entries()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the namespace is frozen (every command refused).
    pub fn is_frozen(&self) -> bool {
        self.state.read().settings.frozen
    }

    fn check_readable(st: &State) -> Result<()> {
        if st.settings.frozen {
            return Err(Error::Frozen);
        }
        Ok(())
    }

    fn check_writable(st: &State) -> Result<()> {
        Self::check_readable(st)?;
        if st.settings.locked {
            return Err(Error::Locked);
        }
        Ok(())
    }

    /// Current payload of `key`, `None` when absent or deleted. The payload checksum is verified:
    /// corrupt bytes are an error, never a reply.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, |v| v.map(<[u8]>::to_vec))
    }

    /// Like [`Namespace::get`], but hands the payload to `f` instead of allocating it: the
    /// bytes are read into a per-thread buffer reused across calls, and `f` runs after the
    /// namespace lock is released. `f` must not call `get_with` itself.
    pub fn get_with<T>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> T) -> Result<T> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        self.check_alive()?;
        let mut f = Some(f);
        let mut call = |v: Option<&[u8]>| f.take().expect("called once")(v);
        let found = self.fetching(|| {
            let st = self.state.read();
            let Some(Located { m, key_len, len }) = self.locate(&st, key)? else {
                return Ok(None);
            };
            let payload = len - m.payload_len as usize..len;
            // Mapped: verify and hand over the bytes in place, a single copy in all.
            let off = u64::from(m.data_off);
            let mapped = self.with_mapped(&st, m.seg, off, len, |rec| -> Result<T> {
                self.check_record(rec, m.seg, m.data_off, key_len, m.payload_len)?;
                Ok(call(Some(&rec[payload.clone()])))
            })?;
            if let Some(out) = mapped {
                self.io.data.read(&Ok::<(), ()>(()), len);
                return Ok(Some(Ok(out?)));
            }
            BUF.with_borrow_mut(|buf| -> Result<()> {
                if buf.len() < len {
                    buf.resize(len, 0);
                }
                self.read_into(&st, true, m.seg, off, &mut buf[..len])?;
                self.check_record(&buf[..len], m.seg, m.data_off, key_len, m.payload_len)?;
                Ok(())
            })?;
            Ok(Some(Err(payload)))
        })?;
        Ok(match found {
            None => call(None),
            Some(Ok(out)) => out,
            // Read into the buffer: `f` runs with the lock released.
            Some(Err(range)) => BUF.with_borrow(|buf| call(Some(&buf[range]))),
        })
    }

    /// Metadata of the current, non-deleted version of `key`.
    pub fn meta(&self, key: &[u8]) -> Result<Option<EntryMeta>> {
        self.check_alive()?;
        let st = self.state.read();
        Self::check_readable(&st)?;
        self.lookup(&st, key)
    }

    /// Whether the stored payload of `key` still matches its checksum (`None` if absent).
    pub fn check(&self, key: &[u8]) -> Result<Option<bool>> {
        self.check_alive()?;
        self.fetching(|| {
            let st = self.state.read();
            Self::check_readable(&st)?;
            let Some(m) = self.lookup(&st, key)? else {
                return Ok(None);
            };
            let key_len = record_key_len(&st, key);
            match self.read_record(&st, m.seg, m.data_off, key_len, m.payload_len) {
                Ok(_) => Ok(Some(true)),
                Err(Error::Corrupt { .. }) => Ok(Some(false)),
                Err(e) => Err(e),
            }
        })
    }

    /// Where the live record of `key` is, for a read (refused while frozen).
    pub(crate) fn locate(&self, st: &State, key: &[u8]) -> Result<Option<Located>> {
        Self::check_readable(st)?;
        let Some(m) = self.lookup(st, key)? else {
            return Ok(None);
        };
        let key_len = record_key_len(st, key);
        let len = format::RECORD_HEADER_LEN + key_len + m.payload_len as usize;
        Ok(Some(Located { m, key_len, len }))
    }

    fn lookup(&self, st: &State, key: &[u8]) -> Result<Option<EntryMeta>> {
        match &st.keys {
            Keys::User(m) => Ok(m.get(key).filter(|s| !s.is_deleted()).map(|s| EntryMeta {
                payload_len: s.payload_len,
                timestamp: s.timestamp,
                seg: s.seg,
                data_off: s.data_off,
            })),
            Keys::Seq(s) => {
                let Ok(id) = seq_id(key) else { return Ok(None) };
                Ok(self
                    .seq_entry(st, s, id)?
                    .map(|e| e.entry)
                    .filter(|e| !e.is_deleted())
                    .map(|e| EntryMeta {
                        payload_len: e.payload_len,
                        timestamp: e.timestamp,
                        seg: e.data_seg,
                        data_off: e.data_off,
                    }))
            }
        }
    }

    /// The index entry of sequential id `id` (`s` is `st`'s sequential index), `None` if never
    /// allocated.
    pub(crate) fn seq_entry(&self, st: &State, s: &SeqIndex, id: u32) -> Result<Option<SeqEntry>> {
        let Some((seg, off)) = s.locate(id) else {
            return Ok(None);
        };
        let mut b = [0u8; format::SEQ_ENTRY_LEN];
        self.read_into(st, false, seg, off, &mut b)?;
        let (e, _, _) = format::decode_entry(&b).map_err(|_| {
            self.io.index.fault();
            Error::Corrupt {
                path: self.seg_path(false, seg),
                offset: off,
                what: "index entry checksum mismatch",
            }
        })?;
        Ok(Some(SeqEntry {
            id,
            iseg: seg,
            off,
            entry: e,
        }))
    }

    /// Read and verify the record at `(seg, off)`; returns its header and payload.
    pub(crate) fn read_record(
        &self,
        st: &State,
        seg: u32,
        off: u32,
        key_len: usize,
        payload_len: u32,
    ) -> Result<(RecordHeader, Vec<u8>)> {
        let len = format::RECORD_HEADER_LEN + key_len + payload_len as usize;
        let mut b = vec![0u8; len];
        self.read_into(st, true, seg, u64::from(off), &mut b)?;
        let h = self.check_record(&b, seg, off, key_len, payload_len)?;
        b.drain(..format::RECORD_HEADER_LEN + key_len);
        Ok((h, b))
    }

    /// Verify that `b` is the whole record the index promised at `(seg, off)`.
    fn check_record(
        &self,
        b: &[u8],
        seg: u32,
        off: u32,
        key_len: usize,
        payload_len: u32,
    ) -> Result<RecordHeader> {
        let h = self.check_record_header(b, seg, off, key_len, payload_len)?;
        let payload = &b[format::RECORD_HEADER_LEN + key_len..h.record_len()];
        if crc32fast::hash(payload) != h.payload_crc {
            return Err(self.corrupt_record(seg, off, "record payload checksum mismatch"));
        }
        Ok(h)
    }

    /// Verify the header of the record at `(seg, off)` in `b` and that `b` holds the whole
    /// record the index promised; the payload is not checksummed.
    fn check_record_header(
        &self,
        b: &[u8],
        seg: u32,
        off: u32,
        key_len: usize,
        payload_len: u32,
    ) -> Result<RecordHeader> {
        let corrupt = |what| self.corrupt_record(seg, off, what);
        let (h, _) = format::decode_record_header(b).map_err(|e| match e {
            format::DecodeError::Short { .. } => corrupt("record shorter than indexed"),
            format::DecodeError::Corrupt(w) => corrupt(w),
        })?;
        if h.payload_len != payload_len || h.key_len as usize != key_len {
            return Err(corrupt("record does not match its index entry"));
        }
        if b.len() < h.record_len() {
            return Err(corrupt("record shorter than indexed"));
        }
        Ok(h)
    }

    /// Path of data (`data == true`) or index segment `seg`.
    pub(crate) fn seg_path(&self, data: bool, seg: u32) -> PathBuf {
        if data {
            segment::data_path(&self.data_dir, seg)
        } else {
            segment::index_path(&self.index_dir, seg)
        }
    }

    /// A handle on a segment, with its path (for error messages).
    pub(crate) fn file(&self, st: &State, data: bool, seg: u32) -> Result<(Arc<File>, PathBuf)> {
        Ok((self.handle(st, data, seg)?, self.seg_path(data, seg)))
    }

    /// Run `attempt`, which takes the namespace lock itself; when it stops at an offloaded
    /// data segment ([`Error::Offloaded`]), bring that segment back with no lock held (a slow
    /// fetch then delays this caller only, not the namespace's writers) and run it again.
    /// Each segment is fetched once: still absent after its fetch, it is missing.
    ///
    /// When the read's range is known, the sink is first asked for just those bytes
    /// ([`EventSink::read_missing`]): served from them, the read does not wait for the whole
    /// segment (records read that way are still verified against their checksums).
    pub(crate) fn fetching<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut fetched = Vec::new();
        let mut provided = Vec::new();
        let result = loop {
            match attempt() {
                Err(Error::Offloaded {
                    seg,
                    read: Some((off, len)),
                }) if !provided.contains(&(seg, off)) && !fetched.contains(&seg) => {
                    if self.provide(seg, off, len) {
                        provided.push((seg, off));
                    } else if let Err(e) = self.fetch_segment(seg) {
                        break Err(e);
                    } else {
                        fetched.push(seg);
                    }
                }
                Err(Error::Offloaded { seg, .. }) if !fetched.contains(&seg) => {
                    if let Err(e) = self.fetch_segment(seg) {
                        break Err(e);
                    }
                    fetched.push(seg);
                }
                Err(Error::Offloaded { seg, .. }) => {
                    break Err(Error::MissingSegment {
                        path: self.seg_path(true, seg),
                    })
                }
                r => break r,
            }
        };
        if !provided.is_empty() {
            let mut held = self.provided.lock();
            for key in provided {
                if let Some((_, users)) = held.get_mut(&key) {
                    *users -= 1;
                    if *users == 0 {
                        held.remove(&key);
                    }
                }
            }
        }
        result
    }

    /// Ask the sink for `len` bytes at `off` of offloaded data segment `seg` (no lock held)
    /// and keep them for the retry; `false` when it offers none.
    fn provide(&self, seg: u32, off: u64, len: usize) -> bool {
        let path = self.seg_path(true, seg);
        match self.events.read_missing(&self.name, &path, off, len) {
            Ok(Some(bytes)) if bytes.len() == len => {
                let mut held = self.provided.lock();
                let entry = held.entry((seg, off)).or_insert((bytes.into(), 0));
                entry.1 += 1;
                true
            }
            Ok(Some(bytes)) => {
                tracing::warn!(namespace = %self.name, path = %path.display(), off, len, got = bytes.len(), "sink handed over a wrong range");
                false
            }
            Ok(None) => false,
            Err(why) => {
                let why: &(dyn std::error::Error + 'static) = &why;
                tracing::warn!(namespace = %self.name, path = %path.display(), why, "reading a range of an offloaded segment failed");
                false
            }
        }
    }

    /// Raise the blocking `missing-data` event for data segment `seg` (no lock held).
    fn fetch_segment(&self, seg: u32) -> Result<()> {
        let path = self.seg_path(true, seg);
        let ev = Event::MissingData {
            namespace: self.name.clone(),
            path: path.clone(),
        };
        self.events.emit(&ev).map_err(|why| {
            let why: &(dyn std::error::Error + 'static) = &why;
            tracing::warn!(namespace = %self.name, path = %path.display(), why, "missing-data hook failed");
            Error::MissingSegment { path }
        })
    }

    /// A handle on data (`data == true`) or index segment `seg`, without building its path on
    /// the hot path. A closed data segment that is not on disk is [`Error::Offloaded`]: the
    /// caller runs under [`Namespace::fetching`], which brings it back without the lock.
    pub(crate) fn handle(&self, st: &State, data: bool, seg: u32) -> Result<Arc<File>> {
        if seg == st.cur_seg() {
            // The open segment is served by the write handles, never evicted.
            return Ok(if data {
                st.data.clone()
            } else {
                st.index.clone()
            });
        }
        if let Some(f) = self.files.lock().get(&(data, seg)) {
            return Ok(f.clone());
        }
        let path = self.seg_path(data, seg);
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(!data)
                .open(&path)
        };
        let f = match open() {
            Ok(f) => f,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && data
                    && st.segments.binary_search(&seg).is_ok() =>
            {
                return Err(Error::Offloaded { seg, read: None })
            }
            Err(e) => return Err(e).at(&path),
        };
        let f = Arc::new(f);
        self.files.lock().insert((data, seg), f.clone());
        Ok(f)
    }

    /// fsync the open segments (and closed index segments rewritten in place) if anything
    /// was written since the last sync (see [`sync_namespaces`]).
    pub fn sync(&self) -> Result<()> {
        sync_namespaces(&[self])
    }

    /// The first half of a sync: pending bytes handed to the OS and the files to make
    /// durable taken, `None` when nothing is unsynced. Holds `syncing` until finished.
    fn begin_sync(&self) -> Result<Option<BegunSync<'_>>> {
        let one = self.syncing.lock();
        let mut st = self.state.write();
        if !st.unsynced {
            return Ok(None);
        }
        self.flush_pending(&mut st)?;
        let older = std::mem::take(&mut st.unsynced_index);
        match self.sync_files(&st, &older) {
            Ok(files) => {
                st.unsynced = false;
                Ok(Some(BegunSync {
                    ns: self,
                    _one: one,
                    files,
                    older,
                }))
            }
            Err(e) => {
                st.unsynced_index = older;
                Err(e)
            }
        }
    }
}

/// Where the index entry of an appended record goes.
#[derive(Debug, Clone, Copy)]
enum AppendIndex {
    /// A new entry at the end of the open index segment.
    Append,
    /// Sequential mode: rewrite an existing id's fixed-size entry in place, at offset `off` of
    /// index segment `iseg` (from its [`SeqEntry`]; a jump never moves existing ids).
    Overwrite { iseg: u32, off: u64 },
}

impl AppendIndex {
    /// Rewrite the entry of `e` in place.
    fn overwrite(e: &SeqEntry) -> AppendIndex {
        AppendIndex::Overwrite {
            iseg: e.iseg,
            off: e.off,
        }
    }
}

/// The id a seq-mode key names: 8 bytes little-endian as 0-db replies, or 4 bytes.
pub(crate) fn seq_id(key: &[u8]) -> Result<u32> {
    let wide = match key.len() {
        4 => u64::from(u32::from_le_bytes([key[0], key[1], key[2], key[3]])),
        8 => u64::from_le_bytes(key.try_into().map_err(|_| Error::InvalidKey)?),
        _ => return Err(Error::InvalidKey),
    };
    u32::try_from(wide).map_err(|_| Error::InvalidKey)
}

/// The key a seq-mode id is known by on the wire (8 bytes little-endian, as 0-db).
pub fn seq_key(id: u32) -> [u8; 8] {
    u64::from(id).to_le_bytes()
}

/// Length of the key as stored in data records (seq mode stores the 4-byte id).
/// A live record found for a read: its index entry, its key's length on disk, and the
/// whole record's length.
pub(crate) struct Located {
    pub(crate) m: EntryMeta,
    pub(crate) key_len: usize,
    pub(crate) len: usize,
}

fn record_key_len(st: &State, key: &[u8]) -> usize {
    match st.mode() {
        Mode::User => key.len(),
        Mode::Seq => 4,
    }
}

/// A sync begun by [`Namespace::begin_sync`]: its files still to make durable.
struct BegunSync<'a> {
    ns: &'a Namespace,
    _one: parking_lot::MutexGuard<'a, ()>,
    files: Vec<crate::durable::SyncFile>,
    older: Vec<u32>,
}

impl BegunSync<'_> {
    /// The fdatasyncs failed: what they were to cover is still unsynced.
    fn failed(self) {
        let mut st = self.ns.state.write();
        st.unsynced = true;
        append::note_unsynced_index(&mut st, self.older);
    }
}

/// Sync `namespaces`: every file any of them has to make durable is fdatasync'ed at the
/// same time ([`crate::durable`]), without the namespaces' locks, so their readers and
/// writers go on meanwhile; what they write after this call began is left to the next
/// sync. A second sync of a namespace waits for one in progress, so it never answers
/// before the bytes are durable.
pub fn sync_namespaces(namespaces: &[&Namespace]) -> Result<()> {
    // One order for everyone who syncs several: no two callers wait on each other.
    let mut order: Vec<&Namespace> = namespaces.to_vec();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    order.dedup_by(|a, b| std::ptr::eq(*a, *b));
    let mut begun = Vec::with_capacity(order.len());
    for ns in order {
        match ns.begin_sync() {
            Ok(Some(b)) => begun.push(b),
            Ok(None) => {}
            Err(e) => {
                begun.into_iter().for_each(BegunSync::failed);
                return Err(e);
            }
        }
    }
    let files: Vec<_> = begun.iter().flat_map(|b| b.files.iter().cloned()).collect();
    let synced = crate::durable::sync_together(&files);
    if synced.is_err() {
        begun.into_iter().for_each(BegunSync::failed);
    }
    synced
}

#[cfg(test)]
mod tests {
    use crate::{Engine, EngineConfig, Mode, NoEvents, SettingChange};
    use std::sync::Arc;

    #[test]
    fn a_sync_covers_closed_index_segments_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("index"));
        let engine = Engine::open(config, Arc::new(NoEvents)).unwrap();
        let ns = engine.create("seq").unwrap();
        ns.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
        let crate::SetOutcome::Written(id) = ns.set(b"", b"one", None).unwrap() else {
            panic!("a new value is written");
        };
        let closed = ns.state.read().cur_seg();
        ns.jump().unwrap();
        // The update rewrites id 0's entry in the closed index segment.
        ns.set(&id, b"two", None).unwrap();
        assert_eq!(ns.state.read().unsynced_index, vec![closed]);
        ns.sync().unwrap();
        let st = ns.state.read();
        assert!(st.unsynced_index.is_empty() && !st.unsynced);
    }
}
