//! The append path: records and index entries of the open segment are gathered in memory while
//! the exclusive lock is held and handed to the OS in one `pwrite` per file before the lock is
//! released (`with_write`), so a pipelined batch of writes costs two system calls, not two per
//! write. Readers never see the buffer: it is always empty when the lock is free.
//!
//! If handing the buffer to the OS fails, nothing of the batch is acknowledged and the in-memory
//! index is reloaded from disk, so it never points at bytes that were not written.

use super::{AppendIndex, Namespace, State};
use crate::durable::SyncFile;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, IndexEntry, RecordHeader, NO_PREV};
use crate::{segment, Durability, Mode};
use std::os::unix::fs::FileExt;

/// Bytes appended to the open segment but not yet written to its files.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    data: Vec<u8>,
    /// File offset of `data[0]`.
    data_at: u64,
    index: Vec<u8>,
    /// File offset of `index[0]`.
    index_at: u64,
    /// Sequential mode: in-place rewrites of existing entries `(index segment, offset, entry)`,
    /// written after the data they point at.
    overwrites: Vec<(u32, u64, [u8; format::SEQ_ENTRY_LEN])>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// File offset where the pending data starts (valid when not empty).
    pub fn data_start(&self) -> u64 {
        self.data_at
    }

    /// A pending in-place rewrite of the seq entry at `(seg, off)`, newest first.
    fn overwrite(&self, seg: u32, off: u64) -> Option<&[u8]> {
        self.overwrites
            .iter()
            .rev()
            .find(|(s, o, _)| *s == seg && *o == off)
            .map(|(_, _, e)| &e[..])
    }

    /// The pending bytes at `[off, off + len)` of the open data (or index) file, if there.
    fn slice(&self, data: bool, off: u64, len: usize) -> Option<&[u8]> {
        let (buf, at) = if data {
            (&self.data, self.data_at)
        } else {
            (&self.index, self.index_at)
        };
        if buf.is_empty() || off < at {
            return None;
        }
        let start = (off - at) as usize;
        buf.get(start..start + len)
    }
}

impl Namespace {
    /// Fill `buf` from offset `off` of a data or index segment, from the pending buffer when
    /// those bytes have not been written out yet.
    pub(crate) fn read_into(
        &self,
        st: &State,
        data: bool,
        seg: u32,
        off: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let len = buf.len();
        let rewritten = if data {
            None
        } else {
            st.pending.overwrite(seg, off).filter(|e| e.len() == len)
        };
        let appended = if seg == st.cur_seg() {
            st.pending.slice(data, off, len)
        } else {
            None
        };
        if let Some(b) = rewritten.or(appended) {
            buf.copy_from_slice(b);
            return Ok(());
        }
        if data && self.copy_mapped(st, seg, off, buf)? {
            self.io.data.read(&Ok::<(), ()>(()), len);
            return Ok(());
        }
        let f = self.handle(st, data, seg)?;
        let r = f.read_exact_at(buf, off);
        self.io.of(data).read(&r, len);
        r.map_err(|source| Error::Io {
            path: self.seg_path(data, seg),
            source,
        })
    }

    /// Append one record (and its index entry) to the open segment, jumping first if full.
    /// Returns the index entry written and its offset in its index segment.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append(
        &self,
        st: &mut State,
        key: &[u8],
        value: &[u8],
        ts: u32,
        flags: u8,
        prev: Option<(u32, u32)>,
        target: AppendIndex,
    ) -> Result<(IndexEntry, u32)> {
        let rec_len = format::RECORD_HEADER_LEN + key.len() + value.len();
        let has_records = st.data_len > format::FILE_HEADER_LEN as u64;
        if has_records && st.data_len + rec_len as u64 > self.shared.datasize {
            self.jump_locked(st)?;
        }
        let seg = st.cur_seg();
        let data_off = u32::try_from(st.data_len).map_err(|_| Error::InvalidArgument)?;
        let (prev_seg, prev_off) = prev.unwrap_or((NO_PREV, 0));
        let h = RecordHeader {
            payload_crc: crc32fast::hash(value),
            payload_len: value.len() as u32,
            timestamp: ts,
            prev_seg,
            prev_off,
            flags,
            key_len: key.len() as u8,
        };
        if st.pending.data.is_empty() {
            st.pending.data_at = st.data_len;
        }
        format::encode_record(&mut st.pending.data, &h, key, value);
        st.data_len += rec_len as u64;
        st.data_bytes += rec_len as u64;

        let entry = IndexEntry {
            data_seg: seg,
            data_off,
            payload_len: value.len() as u32,
            timestamp: ts,
            payload_crc: h.payload_crc,
            flags,
        };
        let idx_off = match target {
            AppendIndex::Append => {
                let key = if st.mode() == Mode::Seq { &[][..] } else { key };
                Self::append_entry(st, &entry, key)
            }
            AppendIndex::Overwrite { iseg, off } => {
                let mut buf = std::mem::take(&mut st.scratch);
                buf.clear();
                format::encode_entry(&mut buf, &entry, &[]);
                let at = st.pending.index_at;
                if iseg == seg && !st.pending.index.is_empty() && off >= at {
                    // The entry itself is still pending (created earlier in this batch).
                    let start = (off - at) as usize;
                    st.pending.index[start..start + buf.len()].copy_from_slice(&buf);
                } else {
                    let mut e = [0u8; format::SEQ_ENTRY_LEN];
                    e.copy_from_slice(&buf);
                    st.pending.overwrites.push((iseg, off, e));
                }
                st.dirty.insert(iseg);
                st.scratch = buf;
                off as u32
            }
        };
        Ok((entry, idx_off))
    }

    /// Append `entry` (stored under `key`) to the open index segment; returns its offset there.
    fn append_entry(st: &mut State, entry: &IndexEntry, key: &[u8]) -> u32 {
        if st.pending.index.is_empty() {
            st.pending.index_at = st.index_len;
        }
        let before = st.pending.index.len();
        format::encode_entry(&mut st.pending.index, entry, key);
        let n = (st.pending.index.len() - before) as u64;
        let off = st.index_len;
        st.index_len += n;
        st.index_bytes += n;
        let seg = st.cur_seg();
        st.dirty.insert(seg);
        off as u32
    }

    /// Sequential mode: spend the next id on a deleted placeholder that names no record.
    ///
    /// 0-db does this on every update of an existing id (it appends a deleted copy of the old
    /// entry before rewriting the original in place), so after SET, an update and a DEL the
    /// next new id is 2, not 1; clients that count ids rely on it.
    pub(super) fn append_seq_placeholder(st: &mut State, ts: u32) {
        let hole = IndexEntry::hole(ts);
        Self::append_entry(st, &hole, &[]);
        if let super::Keys::Seq(s) = &mut st.keys {
            s.next_id += 1;
            s.account(None, Some(&hole));
        }
    }

    /// Write the pending bytes out: data first, so an index entry never names unwritten data.
    pub(super) fn flush_pending(&self, st: &mut State) -> Result<()> {
        let seg = st.cur_seg();
        if !st.pending.data.is_empty() {
            let p = segment::data_path(&self.data_dir, seg);
            let r = st.data.write_all_at(&st.pending.data, st.pending.data_at);
            self.io.data.write(&r, st.pending.data.len());
            r.at(&p)?;
            st.pending.data.clear();
        }
        if !st.pending.index.is_empty() {
            let p = segment::index_path(&self.index_dir, seg);
            let r = st
                .index
                .write_all_at(&st.pending.index, st.pending.index_at);
            self.io.index.write(&r, st.pending.index.len());
            r.at(&p)?;
            st.pending.index.clear();
        }
        let overwrites = std::mem::take(&mut st.pending.overwrites);
        let mut touched = Vec::new();
        for (iseg, off, entry) in &overwrites {
            let (f, p) = self.file(st, false, *iseg)?;
            let r = f.write_all_at(entry, *off);
            self.io.index.write(&r, entry.len());
            r.at(&p)?;
            if *iseg != seg && !touched.contains(iseg) {
                touched.push(*iseg);
            }
        }
        if self.shared.durability == Durability::Always {
            for iseg in touched {
                let (f, p) = self.file(st, false, iseg)?;
                f.sync_data().at(&p)?;
            }
        } else {
            note_unsynced_index(st, touched);
        }
        st.pending.overwrites = overwrites;
        st.pending.overwrites.clear();
        // Don't let one huge batch pin its buffer for good.
        if st.pending.data.capacity() > 16 << 20 {
            st.pending.data = Vec::new();
        }
        Ok(())
    }

    /// After a failed write-out the in-memory index may name bytes that never reached the
    /// file: rebuild it from what is on disk.
    pub(super) fn recover_from_write_error(&self, st: &mut State) {
        st.pending = Pending::default();
        if let Err(e) = self.reload_locked(st) {
            tracing::error!(namespace = %self.name, error = %e, "reloading after a failed write also failed");
        }
    }

    pub(super) fn after_write(&self, st: &mut State) -> Result<()> {
        match self.shared.durability {
            Durability::Always => self.sync_locked(st),
            Durability::Os => {
                st.unsynced = true;
                Ok(())
            }
        }
    }

    pub(crate) fn sync_locked(&self, st: &mut State) -> Result<()> {
        self.flush_pending(st)?;
        let older = std::mem::take(&mut st.unsynced_index);
        let synced = self
            .sync_files(st, &older)
            .and_then(|files| crate::durable::sync_together(&files));
        match synced {
            Ok(()) => st.unsynced = false,
            Err(_) => note_unsynced_index(st, older),
        }
        synced
    }

    /// What a sync makes durable: the open data and index segments, then the closed index
    /// segments `older`.
    pub(super) fn sync_files(&self, st: &State, older: &[u32]) -> Result<Vec<SyncFile>> {
        let seg = st.cur_seg();
        let mut files = vec![
            (st.data.clone(), segment::data_path(&self.data_dir, seg)),
            (st.index.clone(), segment::index_path(&self.index_dir, seg)),
        ];
        // A segment compacted away meanwhile has nothing left to sync.
        for &iseg in older
            .iter()
            .filter(|s| st.segments.binary_search(s).is_ok())
        {
            files.push(self.file(st, false, iseg)?);
        }
        Ok(files)
    }
}

/// Remember closed index segments rewritten in place, for the next sync.
pub(super) fn note_unsynced_index(st: &mut State, segs: Vec<u32>) {
    for seg in segs {
        if !st.unsynced_index.contains(&seg) {
            st.unsynced_index.push(seg);
        }
    }
}
