//! Creating and loading a namespace, with recovery.
//!
//! Loading replays the index segments. Then the open data segment is reconciled with its index:
//! records written after the last indexed one (crash between the two writes) are indexed again,
//! and a torn or corrupt tail is cut. A damaged closed index segment, or an index that points
//! past its data, makes the whole index be rebuilt from the data segments, which hold every key.

use super::{Keys, Namespace, SeqIndex, Shared, State};
use crate::error::{Error, IoContext, Result};
use crate::events::EventSink;
use crate::format::{self, FileHeader, FileKind, IndexEntry, FILE_HEADER_LEN};
use crate::keymap::{KeyMap, Placement};
use crate::segment;
use crate::settings::{sync_dir, Settings};
use crate::Mode;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Progress of a replay: what the in-memory index looks like so far.
struct Replay {
    keys: Keys,
    /// End of the furthest record of the last segment referenced by an index entry.
    indexed_end: u64,
}

impl Namespace {
    /// Open the namespace stored in `data_dir`/`index_dir`, creating it with `defaults` if new.
    pub(crate) fn open(
        name: &str,
        data_dir: PathBuf,
        index_dir: PathBuf,
        shared: Shared,
        defaults: Settings,
        events: Arc<dyn EventSink>,
    ) -> Result<Namespace> {
        crate::private::private_dir(&data_dir).at(&data_dir)?;
        crate::private::private_dir(&index_dir).at(&index_dir)?;
        let settings = if let Some(s) = Settings::load(&index_dir)? {
            s
        } else {
            defaults.store(&index_dir)?;
            defaults
        };
        let restore = |path: &Path| restore_missing(name, &*events, path);
        let state = load_state(&data_dir, &index_dir, settings, &restore)?;
        Ok(Namespace {
            name: name.to_string(),
            data_dir,
            index_dir,
            shared,
            events,
            state: RwLock::new(state),
            files: Mutex::new(HashMap::new()),
            maps: RwLock::new(HashMap::new()),
            read_ahead: super::mapped::ReadAhead::default(),
            provided: Mutex::new(HashMap::new()),
            deleted: AtomicBool::new(false),
            syncing: Mutex::new(()),
            into_reserve: AtomicBool::new(false),
            io: Default::default(),
        })
    }

    /// Re-read everything from disk (RELOAD), dropping cached handles.
    pub fn reload(&self) -> Result<()> {
        let mut st = self.state.write();
        self.sync_locked(&mut st)?;
        self.reload_locked(&mut st)
    }

    pub(crate) fn reload_locked(&self, st: &mut State) -> Result<()> {
        let settings = Settings::load(&self.index_dir)?.unwrap_or_else(|| st.settings.clone());
        let restore = |path: &Path| restore_missing(&self.name, &*self.events, path);
        *st = load_state(&self.data_dir, &self.index_dir, settings, &restore)?;
        self.files.lock().clear();
        self.maps.write().clear();
        Ok(())
    }

    /// Start over with no entries at all: every segment removed, segment 0 created (FLUSH, and
    /// NSSET mode on an empty namespace).
    pub(crate) fn reset_locked(&self, st: &mut State) -> Result<()> {
        for &seg in &st.segments {
            for p in [
                segment::data_path(&self.data_dir, seg),
                segment::index_path(&self.index_dir, seg),
            ] {
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&p),
                    _ => {}
                }
            }
        }
        self.files.lock().clear();
        self.maps.write().clear();
        let settings = st.settings.clone();
        *st = fresh_state(&self.data_dir, &self.index_dir, settings)?;
        Ok(())
    }
}

fn fresh_state(data_dir: &Path, index_dir: &Path, settings: Settings) -> Result<State> {
    let mode = settings.mode;
    let (data, index) = create_segment(data_dir, index_dir, mode, 0, 0)?;
    let keys = match mode {
        Mode::User => Keys::User(KeyMap::new()),
        Mode::Seq => Keys::Seq(SeqIndex {
            starts: vec![(0, 0)],
            ..SeqIndex::default()
        }),
    };
    Ok(State {
        settings,
        keys,
        segments: vec![0],
        data: Arc::new(data),
        data_map: Default::default(),
        data_len: FILE_HEADER_LEN as u64,
        index: Arc::new(index),
        index_len: FILE_HEADER_LEN as u64,
        data_bytes: FILE_HEADER_LEN as u64,
        index_bytes: FILE_HEADER_LEN as u64,
        dirty: BTreeSet::from([0]),
        opened_at: Instant::now(),
        snapshot_len: FILE_HEADER_LEN as u64,
        snapshot_at: Instant::now(),
        unsynced: false,
        unsynced_index: Vec::new(),
        scratch: Vec::new(),
        events: Vec::new(),
        pending: Default::default(),
    })
}

/// Create data and index segment `seg` (index header carrying `first_id` for seq mode).
pub(crate) fn create_segment(
    data_dir: &Path,
    index_dir: &Path,
    mode: Mode,
    seg: u32,
    first_id: u32,
) -> Result<(File, File)> {
    let created = unix_now();
    let create = |kind, path: &Path| {
        let header = FileHeader {
            kind,
            mode,
            segment: seg,
            first_id,
            created,
        };
        segment::create(path, &header)
    };
    let data = create(FileKind::Data, &segment::data_path(data_dir, seg))?;
    let index = create(FileKind::Index, &segment::index_path(index_dir, seg))?;
    sync_dir(data_dir)?;
    sync_dir(index_dir)?;
    Ok((data, index))
}

/// Ask the event sink to bring back a missing data segment; true if it is there afterwards.
fn restore_missing(name: &str, events: &dyn EventSink, path: &Path) -> bool {
    let ev = crate::events::Event::MissingData {
        namespace: name.to_string(),
        path: path.to_path_buf(),
    };
    if let Err(why) = events.emit(&ev) {
        let why: &(dyn std::error::Error + 'static) = &why;
        tracing::warn!(namespace = name, path = %path.display(), why, "missing-data hook failed");
    }
    path.exists()
}

fn load_state(
    data_dir: &Path,
    index_dir: &Path,
    settings: Settings,
    restore: &dyn Fn(&Path) -> bool,
) -> Result<State> {
    let mut data_segs = segment::list_segments(data_dir, "d")?;
    let index_segs = segment::list_segments(index_dir, "i")?;
    if data_segs.is_empty() && index_segs.is_empty() {
        return fresh_state(data_dir, index_dir, settings);
    }
    // The open (last) segment must be on disk: it is never offloaded.
    if let Some(&last) = index_segs.last() {
        if data_segs.last() != Some(&last) {
            let path = segment::data_path(data_dir, last);
            if !restore(&path) {
                return Err(Error::MissingSegment { path });
            }
            data_segs = segment::list_segments(data_dir, "d")?;
        }
    }
    let mode = settings.mode;
    if let Some(state) = replay_index(data_dir, index_dir, mode, &index_segs, &data_segs)? {
        finish(data_dir, index_dir, settings, index_segs, state)
    } else {
        tracing::warn!(index = %index_dir.display(), "index damaged or missing: rebuilding it from the data segments");
        // A rebuild needs every data segment from the first to the last.
        let (first, last) = (
            data_segs[0].min(index_segs.first().copied().unwrap_or(u32::MAX)),
            *data_segs.last().expect("checked"),
        );
        for seg in first..=last {
            let path = segment::data_path(data_dir, seg);
            if !path.exists() && !restore(&path) {
                return Err(Error::MissingSegment { path });
            }
        }
        let data_segs: Vec<u32> = (first..=last).collect();
        let segs = super::rebuild::rebuild_from_data(data_dir, index_dir, mode, &data_segs)?;
        let state =
            replay_index(data_dir, index_dir, mode, &segs, &segs)?.ok_or(Error::Corrupt {
                path: index_dir.to_path_buf(),
                offset: 0,
                what: "index rebuilt from data does not load",
            })?;
        finish(data_dir, index_dir, settings, segs, state)
    }
}

/// Replay every index segment. `None` means the index cannot be trusted and must be rebuilt.
fn replay_index(
    data_dir: &Path,
    index_dir: &Path,
    mode: Mode,
    index_segs: &[u32],
    data_segs: &[u32],
) -> Result<Option<Replay>> {
    // Index and data segments go in pairs; the last data segment must have its index.
    let (Some(&last), Some(&last_data)) = (index_segs.last(), data_segs.last()) else {
        return Ok(None);
    };
    if last != last_data {
        return Ok(None);
    }
    let mut keys = match mode {
        Mode::User => Keys::User(KeyMap::new()),
        Mode::Seq => Keys::Seq(SeqIndex::default()),
    };
    let mut indexed_end = FILE_HEADER_LEN as u64;
    // Sequential mode: the entry at the last position of the open index segment that names a
    // record of the open data segment, as (record offset, record end).
    let mut last_seq_entry: Option<(u32, u64)> = None;
    for &seg in index_segs {
        let path = segment::index_path(index_dir, seg);
        let (f, header, len) = match segment::open_rw(&path, FileKind::Index) {
            Ok(x) => x,
            Err(Error::Corrupt { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if header.mode != mode || header.segment != seg {
            return Ok(None);
        }
        if let Keys::Seq(s) = &mut keys {
            if header.first_id != s.next_id {
                return Ok(None);
            }
            s.starts.push((header.first_id, seg));
        }
        let end = segment::walk_entries(&f, &path, FILE_HEADER_LEN as u64, len, |off, e, key| {
            if e.data_seg == last {
                let key_len = if mode == Mode::Seq { 4 } else { key.len() };
                let rec_end = u64::from(e.data_off)
                    + (format::RECORD_HEADER_LEN + key_len) as u64
                    + u64::from(e.payload_len);
                match mode {
                    Mode::User => indexed_end = indexed_end.max(rec_end),
                    Mode::Seq if seg == last => last_seq_entry = Some((e.data_off, rec_end)),
                    Mode::Seq => {}
                }
            }
            apply_entry(&mut keys, off, e, key);
            Ok(())
        })?;
        if let Some(why) = end.stopped {
            if seg != last {
                tracing::warn!(path = %path.display(), offset = end.valid_end, ?why, "closed index segment damaged");
                return Ok(None);
            }
            let torn_tail = matches!(why, format::DecodeError::Short { .. })
                || len - end.valid_end < (format::ENTRY_FIXED_LEN + 255) as u64
                    && mode == Mode::User
                || len - end.valid_end < format::SEQ_ENTRY_LEN as u64 * 2 && mode == Mode::Seq;
            if !torn_tail {
                tracing::warn!(path = %path.display(), offset = end.valid_end, ?why, "index segment damaged before its tail");
                return Ok(None);
            }
            tracing::warn!(path = %path.display(), offset = end.valid_end, "cutting torn index tail");
            f.set_len(end.valid_end).at(&path)?;
            f.sync_all().at(&path)?;
        }
    }
    let data_path = segment::data_path(data_dir, last);
    let data_len = std::fs::metadata(&data_path).at(&data_path)?.len();
    if let Some((off, end)) = last_seq_entry {
        indexed_end = seq_indexed_end(&data_path, off, end)?;
    }
    if indexed_end > data_len {
        tracing::warn!(path = %data_path.display(), "index points past the end of its data");
        return Ok(None);
    }
    Ok(Some(Replay { keys, indexed_end }))
}

/// How far the open data segment of a sequential namespace is surely indexed. Entries are
/// rewritten in place by updates, so the last one may name a record written after new ids
/// whose entries were lost: only when it names the first version of its id (a record with no
/// link to an older one: an append, or a record compaction moved, which it synced) do all
/// records up to it have their entries. Otherwise the whole open segment is walked again;
/// updates walked that were not lost change nothing (`finish`).
fn seq_indexed_end(data_path: &Path, off: u32, end: u64) -> Result<u64> {
    let f = File::open(data_path).at(data_path)?;
    let mut head = [0u8; format::RECORD_HEADER_LEN + 4];
    if f.read_exact_at(&mut head, u64::from(off)).is_err() {
        return Ok(end); // past the end of the data: the caller has the index rebuilt
    }
    Ok(match format::decode_record_header(&head) {
        Ok((h, _)) if h.prev().is_none() => end,
        _ => FILE_HEADER_LEN as u64,
    })
}

/// Fold one index entry (at offset `off` of its index segment) into the in-memory index.
fn apply_entry(keys: &mut Keys, off: u64, e: &IndexEntry, key: &[u8]) {
    match keys {
        Keys::User(m) => {
            m.put(key, Placement::of(e, off as u32));
        }
        Keys::Seq(s) => {
            s.next_id += 1;
            s.account(None, Some(e));
        }
    }
}

/// Open the last segment for appends, re-index records written after the last index entry and
/// cut a torn data tail.
fn finish(
    data_dir: &Path,
    index_dir: &Path,
    settings: Settings,
    segments: Vec<u32>,
    replay: Replay,
) -> Result<State> {
    let last = *segments.last().expect("replay checked there is a segment");
    let dpath = segment::data_path(data_dir, last);
    let ipath = segment::index_path(index_dir, last);
    let (data, _, data_len) = segment::open_rw(&dpath, FileKind::Data)?;
    let (index, _, index_len) = segment::open_rw(&ipath, FileKind::Index)?;
    let mut keys = replay.keys;
    let mode = settings.mode;
    let mut index_len = index_len;
    let mut entries = Vec::new();
    // Sequential mode: the newest record walked of each existing id (the newest wins).
    let mut overwrites: std::collections::BTreeMap<u32, IndexEntry> = Default::default();
    // Updates re-applied from the data tail whose id placeholder may also be lost.
    let mut unplaced_holes = 0u32;
    let end = segment::walk_records(
        &data,
        &dpath,
        replay.indexed_end,
        data_len,
        |off, h, key, _| {
            let e = IndexEntry::for_record(last, off as u32, h);
            match &mut keys {
                Keys::User(m) => {
                    let idx_off = index_len + entries.len() as u64;
                    format::encode_entry(&mut entries, &e, key);
                    m.put(key, Placement::of(&e, idx_off as u32));
                }
                Keys::Seq(s) => {
                    let id = key.try_into().map(u32::from_le_bytes).unwrap_or(u32::MAX);
                    if id < s.next_id {
                        overwrites.insert(id, e);
                        if !e.is_deleted() {
                            unplaced_holes += 1;
                        }
                        return Ok(());
                    }
                    // Each update spent an id on a placeholder entry; those lost with the
                    // index tail show as a gap before the next new id. There are no more of
                    // them than updates walked here (the walk starts at the last appended
                    // entry's record, see `replay`), so nothing else can open a gap.
                    let gap = id - s.next_id;
                    if gap > unplaced_holes {
                        return Ok(());
                    }
                    unplaced_holes -= gap;
                    let hole = IndexEntry::hole(h.timestamp);
                    for _ in 0..gap {
                        format::encode_entry(&mut entries, &hole, &[]);
                        s.next_id += 1;
                        s.account(None, Some(&hole));
                    }
                    format::encode_entry(&mut entries, &e, &[]);
                    s.next_id += 1;
                    s.account(None, Some(&e));
                }
            }
            Ok(())
        },
    )?;
    if end.valid_end < data_len {
        tracing::warn!(path = %dpath.display(), offset = end.valid_end, why = ?end.stopped, "cutting torn data tail");
        data.set_len(end.valid_end).at(&dpath)?;
        data.sync_all().at(&dpath)?;
    }
    if !entries.is_empty() {
        tracing::warn!(path = %ipath.display(), bytes = entries.len(), "re-indexing records written after the last index entry");
        index.write_all_at(&entries, index_len).at(&ipath)?;
        index_len += entries.len() as u64;
        index.sync_data().at(&ipath)?;
    }
    let mut data_bytes = 0;
    let mut index_bytes = 0;
    for &seg in &segments {
        data_bytes += std::fs::metadata(segment::data_path(data_dir, seg))
            .map(|m| m.len())
            .unwrap_or(0);
        index_bytes += std::fs::metadata(segment::index_path(index_dir, seg))
            .map(|m| m.len())
            .unwrap_or(0);
    }
    if let Keys::User(m) = &mut keys {
        m.shrink();
    }
    let mut state = State {
        settings,
        keys,
        segments,
        data: Arc::new(data),
        data_map: Default::default(),
        data_len: end.valid_end,
        index: Arc::new(index),
        index_len,
        data_bytes,
        index_bytes,
        dirty: BTreeSet::new(),
        opened_at: Instant::now(),
        snapshot_len: end.valid_end,
        snapshot_at: Instant::now(),
        unsynced: false,
        unsynced_index: Vec::new(),
        scratch: Vec::new(),
        events: Vec::new(),
        pending: Default::default(),
    };
    for (id, e) in overwrites {
        rewrite_seq_entry(index_dir, &mut state, id, &e, mode)?;
    }
    Ok(state)
}

/// Recovery of an in-place sequential update whose index write was lost.
fn rewrite_seq_entry(
    index_dir: &Path,
    st: &mut State,
    id: u32,
    e: &IndexEntry,
    mode: Mode,
) -> Result<()> {
    debug_assert_eq!(mode, Mode::Seq);
    let Keys::Seq(s) = &mut st.keys else {
        return Ok(());
    };
    let Some((seg, off)) = s.locate(id) else {
        return Ok(());
    };
    let path = segment::index_path(index_dir, seg);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .at(&path)?;
    let old = segment::read_at(&f, &path, off, format::SEQ_ENTRY_LEN)?;
    let old = format::decode_entry(&old).ok().map(|(o, _, _)| o);
    if old.as_ref() == Some(e) {
        return Ok(()); // the update was not lost, only walked again
    }
    s.account(old.as_ref(), Some(e));
    let mut b = Vec::with_capacity(format::SEQ_ENTRY_LEN);
    format::encode_entry(&mut b, e, &[]);
    f.write_all_at(&b, off).at(&path)?;
    f.sync_data().at(&path)?;
    st.dirty.insert(seg);
    Ok(())
}
