//! Namespace administration: segment jumps, settings, statistics, dirty index tracking, FLUSH
//! and raw record access.

use super::{Keys, Namespace, State};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::format::{self, RecordHeader};
use crate::segment;
use crate::settings::Settings;
use crate::Mode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Statistics and settings of a namespace, the material of NSINFO.
#[derive(Debug, Clone)]
pub struct NamespaceInfo {
    pub name: String,
    pub entries: u64,
    /// Sum of the payload lengths of live entries (what `maxsize` limits; 0-db's data size).
    pub payload_bytes: u64,
    pub settings: Settings,
    pub data_bytes: u64,
    pub index_bytes: u64,
    pub current_segment: u32,
    pub current_offset: u64,
    /// Sequential mode: the id the next SET with an empty key gets.
    pub next_id: u32,
    /// I/O counters of the data files and the index files.
    pub data_io: crate::IoCounters,
    pub index_io: crate::IoCounters,
    pub data_dir: std::path::PathBuf,
    pub index_dir: std::path::PathBuf,
    pub segments: Vec<u32>,
}

/// A change to one namespace setting (NSSET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingChange {
    MaxSize(u64),
    Password(Option<String>),
    Public(bool),
    Worm(bool),
    Lock(bool),
    Freeze(bool),
    Mode(Mode),
}

impl Namespace {
    pub fn info(&self) -> NamespaceInfo {
        let st = self.state.read();
        NamespaceInfo {
            name: self.name.clone(),
            entries: st.entries(),
            payload_bytes: st.payload_bytes(),
            settings: st.settings.clone(),
            data_bytes: st.data_bytes,
            index_bytes: st.index_bytes,
            current_segment: st.cur_seg(),
            current_offset: st.data_len,
            next_id: match &st.keys {
                Keys::Seq(s) => s.next_id,
                Keys::User(_) => 0,
            },
            data_io: self.io.data.snapshot(),
            index_io: self.io.index.snapshot(),
            data_dir: self.data_dir.clone(),
            index_dir: self.index_dir.clone(),
            segments: st.segments.clone(),
        }
    }

    /// Apply and persist a setting change. Changing the mode needs an empty namespace.
    pub fn change_setting(&self, change: SettingChange) -> Result<()> {
        self.check_alive()?;
        let mut st = self.state.write();
        let mut s = st.settings.clone();
        match change {
            SettingChange::MaxSize(n) => s.maxsize = n,
            SettingChange::Password(p) => s.password = p,
            SettingChange::Public(b) => s.public = b,
            SettingChange::Worm(b) => s.worm = b,
            SettingChange::Lock(b) => s.locked = b,
            SettingChange::Freeze(b) => s.frozen = b,
            SettingChange::Mode(m) => {
                if m != s.mode {
                    if !self.never_written(&st) {
                        return Err(Error::NamespaceNotEmpty);
                    }
                    s.mode = m;
                    s.store(&self.index_dir)?;
                    st.settings = s;
                    return self.reset_locked(&mut st);
                }
            }
        }
        s.store(&self.index_dir)?;
        st.settings = s;
        Ok(())
    }

    fn never_written(&self, st: &State) -> bool {
        st.segments.len() == 1 && st.data_len == format::FILE_HEADER_LEN as u64
    }

    /// Close the current segments and open the next ones now (NSJUMP).
    pub fn jump(&self) -> Result<()> {
        self.check_alive()?;
        self.with_write(|st| self.jump_locked(st))
    }

    /// Jump if the open segment holds records and was opened more than `age` ago (`--rotate`).
    pub fn rotate_if_older(&self, age: Duration) -> Result<bool> {
        self.with_write(|st| {
            if st.data_len > format::FILE_HEADER_LEN as u64 && st.opened_at.elapsed() >= age {
                self.jump_locked(st)?;
                return Ok(true);
            }
            Ok(false)
        })
    }

    /// Hand the event sink a partial checkpoint of the open segment (see
    /// [`crate::Checkpoint::open_len`]) if records were appended since the last checkpoint
    /// and either `age` has passed since it or `bytes` were appended. Returns whether the
    /// sink kept one. Nothing closes: this bounds what a lost machine loses between jumps.
    pub fn snapshot_if(&self, age: Duration, bytes: u64) -> Result<bool> {
        self.check_alive()?;
        self.with_write(|st| {
            let grown = st.data_len.saturating_sub(st.snapshot_len);
            if grown == 0 || (grown < bytes && st.snapshot_at.elapsed() < age) {
                return Ok(false);
            }
            let kept = self.checkpoint_locked(st, Some(st.data_len))?;
            st.snapshot_len = st.data_len;
            st.snapshot_at = Instant::now();
            Ok(kept)
        })
    }

    /// Sync, then offer the sink a checkpoint of the open segment: closing (`open_len`
    /// none) or partial. The dirty ids are forgotten when the sink kept it.
    fn checkpoint_locked(&self, st: &mut State, open_len: Option<u64>) -> Result<bool> {
        // What a checkpoint names may be shipped elsewhere: make it durable first.
        self.sync_locked(st)?;
        let segment = st.cur_seg();
        let dirty: Vec<u32> = st.dirty.iter().copied().collect();
        let checkpoint = crate::events::Checkpoint {
            namespace: &self.name,
            data_dir: &self.data_dir,
            index_dir: &self.index_dir,
            segment,
            open_len,
            dirty: &dirty,
        };
        let kept =
            self.events
                .checkpoint(&checkpoint)
                .map_err(|source| Error::CheckpointFailed {
                    namespace: self.name.clone(),
                    segment,
                    source,
                })?;
        if kept {
            st.dirty.clear();
        }
        Ok(kept)
    }

    pub(super) fn jump_locked(&self, st: &mut State) -> Result<()> {
        let old = st.cur_seg();
        let new = old.checked_add(1).ok_or(Error::InvalidArgument)?;
        self.checkpoint_locked(st, None)?;
        let first_id = match &st.keys {
            Keys::Seq(s) => s.next_id,
            Keys::User(_) => 0,
        };
        let (data, index) =
            super::open::create_segment(&self.data_dir, &self.index_dir, st.mode(), new, first_id)?;
        {
            let mut files = self.files.lock();
            files.insert((true, old), st.data.clone());
            files.insert((false, old), st.index.clone());
        }
        st.data = Arc::new(data);
        // The old segment is mapped again at its exact length when next read.
        st.data_map = Default::default();
        st.index = Arc::new(index);
        st.data_len = format::FILE_HEADER_LEN as u64;
        st.index_len = format::FILE_HEADER_LEN as u64;
        st.data_bytes += format::FILE_HEADER_LEN as u64;
        st.index_bytes += format::FILE_HEADER_LEN as u64;
        st.segments.push(new);
        st.opened_at = Instant::now();
        st.snapshot_len = st.data_len;
        st.snapshot_at = st.opened_at;
        if let Keys::Seq(s) = &mut st.keys {
            s.starts.push((first_id, new));
        }
        st.dirty.insert(new);
        let ns = self.name.clone();
        st.events.push(Event::JumpData {
            namespace: ns.clone(),
            old: segment::data_path(&self.data_dir, old),
            new: segment::data_path(&self.data_dir, new),
        });
        st.events.push(Event::JumpIndex {
            namespace: ns,
            old: segment::index_path(&self.index_dir, old),
            new: segment::index_path(&self.index_dir, new),
            dirty: st.dirty.iter().copied().collect(),
        });
        Ok(())
    }

    /// Close the cached handles of closed segments. A segment moved away or deleted by someone
    /// else (offloading) then really frees its disk space, and the next read of it reopens the
    /// file or raises `missing-data`.
    pub fn release_handles(&self) {
        // Keep what still names the same file: dropping a hot map costs page faults later.
        self.maps
            .write()
            .retain(|&seg, m| m.still_at(&self.seg_path(true, seg)));
        self.files.lock().retain(|&(data, seg), f| {
            let path = self.seg_path(data, seg);
            match (f.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    (a.dev(), a.ino()) == (b.dev(), b.ino())
                }
                _ => false,
            }
        });
    }

    /// Forget the given ids from the dirty set (a hook confirmed it shipped them).
    pub fn clear_dirty(&self, ids: &[u32]) {
        let mut st = self.state.write();
        for id in ids {
            st.dirty.remove(id);
        }
    }

    /// Index segment ids modified since the last reset; `reset` clears the set afterwards.
    pub fn dirty_segments(&self, reset: bool) -> Vec<u32> {
        let mut st = self.state.write();
        let ids = st.dirty.iter().copied().collect();
        if reset {
            st.dirty.clear();
        }
        ids
    }

    /// Remove every entry and segment (FLUSH).
    pub fn flush(&self) -> Result<()> {
        self.check_alive()?;
        let mut st = self.state.write();
        Self::check_writable(&st)?;
        self.reset_locked(&mut st)
    }

    /// The raw record at `(seg, off)`: header, key and payload, checksums verified (DATA RAW).
    pub fn raw_record(&self, seg: u32, off: u32) -> Result<(RecordHeader, Vec<u8>, Vec<u8>)> {
        self.check_alive()?;
        self.fetching(|| self.raw_record_locked(seg, off))
    }

    fn raw_record_locked(&self, seg: u32, off: u32) -> Result<(RecordHeader, Vec<u8>, Vec<u8>)> {
        let st = self.state.read();
        let (f, path) = self.file(&st, true, seg)?;
        let corrupt = |what| Error::Corrupt {
            path: path.clone(),
            offset: u64::from(off),
            what,
        };
        let head = segment::read_at(&f, &path, u64::from(off), format::RECORD_HEADER_LEN)?;
        let key_len = head[25] as usize;
        let payload_len = format::u32le(&head, 8) as usize;
        if payload_len > format::MAX_PAYLOAD_LEN {
            return Err(corrupt("record payload length out of range"));
        }
        let b = segment::read_at(
            &f,
            &path,
            u64::from(off),
            format::RECORD_HEADER_LEN + key_len + payload_len,
        )?;
        let (h, key, payload) =
            format::decode_record(&b).map_err(|_| corrupt("record checksum mismatch"))?;
        let (key, payload) = (key.to_vec(), payload.to_vec());
        Ok((h, key, payload))
    }

    /// Paths of the open segment files (for NamespaceClosing and hooks).
    pub fn current_paths(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        let st = self.state.read();
        let seg = st.cur_seg();
        (
            segment::index_path(&self.index_dir, seg),
            segment::data_path(&self.data_dir, seg),
        )
    }
}
