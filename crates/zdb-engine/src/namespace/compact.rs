//! Online compaction: closed segments whose records are mostly dead are emptied by copying their
//! live records (and the tombstones still needed) to the open segment, then truncating the
//! closed segment's files to their headers.
//!
//! Clients keep working: moves happen in small batches, each under the write lock for a moment.
//! Emptied segments keep their (header-only) files so segment ids stay contiguous and, in
//! sequential mode, the index segment keeps the fixed positions of its ids.
//!
//! History: a moved record is written without a link to its older versions, so HISTORY of a key
//! stops at the compacted copy; versions that were only in emptied segments are gone. That is
//! what compaction is for. A tombstone is kept (moved) while any older segment still has records,
//! so a deleted key can never come back from an older version during a later index rebuild.
//!
//! The records to move are listed under the shared lock, per mode ([`Candidates`]); each batch
//! then checks them against the index under the write lock, once per batch, and moves those
//! still current. Between the two the namespace may have been flushed and even switched mode:
//! candidates of the other mode are then simply no longer current.

use super::{AppendIndex, Keys, Namespace, SeqEntry, SeqIndex, State};
use crate::error::{Error, IoContext, Result};
use crate::format::{self, IndexEntry, FILE_HEADER_LEN};
use crate::segment;
use crate::segrefs::SegUse;
use crate::Mode;
use std::collections::BTreeSet;

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    pub segments_emptied: u32,
    pub records_moved: u64,
    pub bytes_moved: u64,
    /// Bytes of local segment files given back (segments not on this disk free none here).
    pub bytes_freed: u64,
    /// The segments emptied (each now just its header), in order.
    pub emptied: Vec<u32>,
}

/// Live records and bytes of one closed data segment (see [`Namespace::segment_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentUsage {
    pub segment: u32,
    pub live_records: u64,
    /// On-disk bytes of the live records (headers and keys included).
    pub live_bytes: u64,
}

/// Records moved per hold of the write lock: keeps pauses for other clients short.
const BATCH: usize = 256;

/// Records of one closed segment that may still be current, listed under the shared lock.
enum Candidates {
    /// User mode: `(offset in the segment's index file, key)` of each of its index entries.
    User(Vec<(u32, Vec<u8>)>),
    /// Sequential mode: the ids whose entry pointed into the segment (entries of any index
    /// segment may, since updates rewrite old entries in place).
    Seq(Vec<u32>),
}

impl Namespace {
    /// Empty every closed segment on this disk whose dead fraction of bytes is at least
    /// `min_dead` (0.0 = every closed segment, 1.0 = only segments with nothing live).
    /// Segments not on this disk (offloaded) are left to [`Namespace::compact_segments`],
    /// whose caller knows their size.
    pub fn compact(&self, min_dead: f64) -> Result<CompactStats> {
        self.check_alive()?;
        let mut picked = Vec::new();
        for u in self.segment_usage() {
            let Some(file_len) = self.data_file_len(u.segment) else {
                continue;
            };
            let area = file_len.saturating_sub(FILE_HEADER_LEN as u64);
            if area == 0 {
                continue;
            }
            let dead = 1.0 - u.live_bytes as f64 / area as f64;
            if u.live_records == 0 || dead >= min_dead {
                picked.push(u.segment);
            }
        }
        self.compact_segments(&picked)
    }

    /// Live records and bytes of every closed data segment, oldest first.
    pub fn segment_usage(&self) -> Vec<SegmentUsage> {
        let st = self.state.read();
        st.segments[..st.segments.len() - 1]
            .iter()
            .map(|&seg| {
                let used = self.seg_use(&st, seg);
                SegmentUsage {
                    segment: seg,
                    live_records: used.records,
                    live_bytes: used.bytes,
                }
            })
            .collect()
    }

    /// Empty exactly these closed segments (others are skipped): their live records move to
    /// the open segment, then each is truncated to its header. A segment that is not on this
    /// disk is fetched back for the move (`missing-data`, with the lock released); one with
    /// nothing live is not fetched: its header-only file is written afresh.
    pub fn compact_segments(&self, segments: &[u32]) -> Result<CompactStats> {
        self.check_alive()?;
        let mut stats = CompactStats::default();
        for &seg in segments {
            let (closed, used) = {
                let st = self.state.read();
                let closed = seg != st.cur_seg() && st.segments.binary_search(&seg).is_ok();
                (closed, self.seg_use(&st, seg))
            };
            if !closed {
                continue;
            }
            if used.records > 0 {
                self.move_live(seg, &mut stats)?;
            }
            if let Some(freed) = self.empty_segment(seg)? {
                stats.segments_emptied += 1;
                stats.bytes_freed += freed;
                stats.emptied.push(seg);
            }
        }
        Ok(stats)
    }

    fn seg_use(&self, st: &State, seg: u32) -> SegUse {
        match &st.keys {
            Keys::User(m) => m.refs().get(seg),
            Keys::Seq(s) => s.refs.get(seg),
        }
    }

    fn data_file_len(&self, seg: u32) -> Option<u64> {
        std::fs::metadata(segment::data_path(&self.data_dir, seg))
            .ok()
            .map(|m| m.len())
    }

    /// Whether every segment older than `seg` is empty, so tombstones in `seg` shadow nothing.
    /// A segment that is not on this disk (offloaded) counts as holding records: a rebuild
    /// that fetches it back would otherwise see an older version of a key whose tombstone was
    /// dropped, and the deleted key would return.
    fn oldest_with_records(&self, st: &State, seg: u32) -> bool {
        st.segments.iter().take_while(|&&s| s < seg).all(|&s| {
            self.data_file_len(s)
                .is_some_and(|l| l <= FILE_HEADER_LEN as u64)
        })
    }

    /// Copy the record at `(seg, off)` to the open segment; returns the new entry.
    fn copy_record(
        &self,
        st: &mut State,
        seg: u32,
        off: u32,
        key: &[u8],
        payload_len: u32,
        target: AppendIndex,
    ) -> Result<(IndexEntry, u32)> {
        let (h, payload) = self.read_record(st, seg, off, key.len(), payload_len)?;
        self.append(st, key, &payload, h.timestamp, h.flags, None, target)
    }

    /// Move every record of closed segment `seg` that is still current to the open segment.
    fn move_live(&self, seg: u32, stats: &mut CompactStats) -> Result<()> {
        let candidates = {
            let st = self.state.read();
            match &st.keys {
                Keys::User(_) => Candidates::User(self.user_candidates(&st, seg)?),
                Keys::Seq(s) => Candidates::Seq(self.seq_candidates(&st, s, seg)?),
            }
        };
        // A batch that meets the segment evicted meanwhile fetches it back and runs again:
        // records it already moved are skipped then (their index no longer points here).
        match candidates {
            Candidates::User(entries) => {
                for batch in entries.chunks(BATCH) {
                    self.fetching(|| {
                        self.with_write(|st| self.move_user_batch(st, seg, batch, stats))
                    })?;
                }
            }
            Candidates::Seq(ids) => {
                let mut touched = BTreeSet::new();
                for batch in ids.chunks(BATCH) {
                    self.fetching(|| {
                        self.with_write(|st| {
                            self.move_seq_batch(st, seg, batch, stats, &mut touched)
                        })
                    })?;
                }
                // The rewritten entries must be durable before their old records disappear.
                let st = self.state.read();
                for iseg in touched {
                    let (f, path) = self.file(&st, false, iseg)?;
                    f.sync_data().at(&path)?;
                }
            }
        }
        Ok(())
    }

    /// Every index entry of user-mode segment `seg`, current or not.
    fn user_candidates(&self, st: &State, seg: u32) -> Result<Vec<(u32, Vec<u8>)>> {
        let (f, path) = self.file(st, false, seg)?;
        let len = f.metadata().at(&path)?.len();
        let mut c = Vec::new();
        let end = segment::walk_entries(&f, &path, FILE_HEADER_LEN as u64, len, |off, _, key| {
            c.push((off as u32, key.to_vec()));
            Ok(())
        })?;
        if end.stopped.is_some() {
            return Err(Error::Corrupt {
                path,
                offset: end.valid_end,
                what: "index entry checksum mismatch",
            });
        }
        Ok(c)
    }

    /// The ids whose entry points into data segment `seg`.
    fn seq_candidates(&self, st: &State, s: &SeqIndex, seg: u32) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for &(first, iseg) in &s.starts {
            let (f, path) = self.file(st, false, iseg)?;
            let len = if iseg == st.cur_seg() {
                st.index_len
            } else {
                f.metadata().at(&path)?.len()
            };
            let mut id = first;
            segment::walk_entries(&f, &path, FILE_HEADER_LEN as u64, len, |_, e, _| {
                if e.data_seg == seg {
                    ids.push(id);
                }
                id += 1;
                Ok(())
            })?;
        }
        Ok(ids)
    }

    fn move_user_batch(
        &self,
        st: &mut State,
        seg: u32,
        batch: &[(u32, Vec<u8>)],
        stats: &mut CompactStats,
    ) -> Result<()> {
        let drop_tombstones = self.oldest_with_records(st, seg);
        let Keys::User(m) = &mut st.keys else {
            return Ok(()); // flushed and switched to sequential mode since: nothing is current
        };
        // Sort the batch out first: moving one key's record never changes another key's slot.
        let mut current = Vec::new();
        for (off, key) in batch {
            let Some(slot) = m.get(key).copied() else {
                continue;
            };
            if slot.seg != seg || slot.idx_off != *off {
                continue; // dead, or moved meanwhile
            }
            if slot.is_deleted() && drop_tombstones {
                m.remove(key);
                continue;
            }
            current.push((key, slot));
        }
        for (key, slot) in current {
            let (e, idx_off) = self.copy_record(
                st,
                seg,
                slot.data_off,
                key,
                slot.payload_len,
                AppendIndex::Append,
            )?;
            st.keys.record(key, Some(&slot.entry()), &e, idx_off);
            stats.records_moved += 1;
            stats.bytes_moved += u64::from(e.payload_len);
        }
        Ok(())
    }

    fn move_seq_batch(
        &self,
        st: &mut State,
        seg: u32,
        batch: &[u32],
        stats: &mut CompactStats,
        touched: &mut BTreeSet<u32>,
    ) -> Result<()> {
        let drop_tombstones = self.oldest_with_records(st, seg);
        let Keys::Seq(s) = &st.keys else {
            return Ok(()); // flushed and switched to user mode since: nothing is current
        };
        // Sort the batch out first: moving one id's record rewrites only that id's entry.
        let mut current: Vec<SeqEntry> = Vec::new();
        for &id in batch {
            match self.seq_entry(st, s, id)? {
                Some(old) if old.entry.data_seg == seg => current.push(old),
                _ => {}
            }
        }
        for old in current {
            touched.insert(old.iseg);
            let new = if old.entry.is_deleted() && drop_tombstones {
                let hole = IndexEntry::hole(old.entry.timestamp);
                self.write_seq_entry(st, &old, &hole)?;
                // Checkpoints copy the index segments marked dirty (as appends mark them).
                st.dirty.insert(old.iseg);
                hole
            } else {
                let (e, _) = self.copy_record(
                    st,
                    seg,
                    old.entry.data_off,
                    &old.id.to_le_bytes(),
                    old.entry.payload_len,
                    AppendIndex::overwrite(&old),
                )?;
                stats.records_moved += 1;
                stats.bytes_moved += u64::from(e.payload_len);
                e
            };
            st.keys.record(&[], Some(&old.entry), &new, old.off as u32);
        }
        Ok(())
    }

    /// Rewrite the entry of `at` in place with `e`, straight to its file.
    fn write_seq_entry(&self, st: &State, at: &SeqEntry, e: &IndexEntry) -> Result<()> {
        let mut b = Vec::with_capacity(format::SEQ_ENTRY_LEN);
        format::encode_entry(&mut b, e, &[]);
        let (f, path) = self.file(st, false, at.iseg)?;
        std::os::unix::fs::FileExt::write_all_at(&*f, &b, at.off).at(&path)
    }

    /// Truncate segment `seg` to its headers if nothing references it any more; returns the
    /// local bytes given back. A data file that is not on this disk is written afresh as just
    /// its header (taken from the index segment's), so the emptied segment is there to store.
    fn empty_segment(&self, seg: u32) -> Result<Option<u64>> {
        let mut st = self.state.write();
        if self.seg_use(&st, seg).records > 0 || seg == st.cur_seg() {
            return Ok(None);
        }
        // Copies first, then the truncation: a crash in between leaves duplicates, never holes.
        self.sync_locked(&mut st)?;
        let ipath = segment::index_path(&self.index_dir, seg);
        let (f, _) = self.file(&st, false, seg)?;
        if st.mode() == Mode::User {
            let before = f.metadata().at(&ipath)?.len();
            f.set_len(FILE_HEADER_LEN as u64).at(&ipath)?;
            f.sync_all().at(&ipath)?;
            st.index_bytes -= before.saturating_sub(FILE_HEADER_LEN as u64);
            st.dirty.insert(seg);
        }
        // Readers copy out of maps under the shared lock, which is held exclusively here.
        self.maps.write().remove(&seg);
        // A handle from before an eviction would keep the old, unlinked file alive.
        self.files.lock().remove(&(true, seg));
        let dpath = segment::data_path(&self.data_dir, seg);
        let data =
            match std::fs::OpenOptions::new().write(true).open(&dpath) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut hb = [0u8; FILE_HEADER_LEN];
                    std::os::unix::fs::FileExt::read_exact_at(&*f, &mut hb, 0).at(&ipath)?;
                    let header = format::FileHeader::decode(&hb, format::FileKind::Index)
                        .ok_or_else(|| Error::Corrupt {
                            path: ipath.clone(),
                            offset: 0,
                            what: "invalid segment header",
                        })?;
                    let data_header = format::FileHeader {
                        kind: format::FileKind::Data,
                        ..header
                    };
                    segment::create(&dpath, &data_header)?;
                    crate::settings::sync_dir(&self.data_dir)?;
                    return Ok(Some(0));
                }
                Err(e) => return Err(e).at(&dpath),
            };
        let before = data.metadata().at(&dpath)?.len();
        data.set_len(FILE_HEADER_LEN as u64).at(&dpath)?;
        data.sync_all().at(&dpath)?;
        let freed = before.saturating_sub(FILE_HEADER_LEN as u64);
        st.data_bytes -= freed;
        Ok(Some(freed))
    }
}
