//! Walking a namespace: SCAN/RSCAN over the index in write order, KEYCUR, and HISTORY through
//! the previous-version links of data records.
//!
//! A cursor names one index entry by position (segment, offset). Positions never move (entries
//! are only appended, or rewritten in place in seq mode), so a cursor stays valid for life.

use super::{Keys, Namespace, State};
use crate::error::{Error, Result};
use crate::format::{self, FILE_HEADER_LEN};
use crate::segment;
use crate::Mode;

/// Opaque position of an index entry (SCAN) or of a data record (HISTORY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub seg: u32,
    pub off: u32,
}

impl Cursor {
    pub const LEN: usize = 8;

    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.seg.to_le_bytes());
        b[4..].copy_from_slice(&self.off.to_le_bytes());
        b
    }

    /// `None` when `b` cannot be a cursor.
    pub fn decode(b: &[u8]) -> Option<Cursor> {
        if b.len() != Self::LEN {
            return None;
        }
        let c = Cursor {
            seg: format::u32le(b, 0),
            off: format::u32le(b, 4),
        };
        (c.off as usize >= FILE_HEADER_LEN).then_some(c)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest to newest (SCAN).
    Forward,
    /// Newest to oldest (RSCAN).
    Backward,
}

/// One live entry met by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanItem {
    pub key: Vec<u8>,
    pub payload_len: u32,
    pub timestamp: u32,
    pub cursor: Cursor,
}

/// A batch of scan results; `next` continues after the last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    pub items: Vec<ScanItem>,
    pub next: Cursor,
}

/// One version of a key, as HISTORY returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    pub timestamp: u32,
    pub payload: Vec<u8>,
    pub deleted: bool,
    /// Where this version lies.
    pub at: Cursor,
    /// The version before this one, if any.
    pub prev: Option<Cursor>,
}

const CHUNK: u64 = 64 * 1024;

impl Namespace {
    /// Up to `max` live entries strictly after (forward) or before (backward) `from`; from the
    /// start or the end without a cursor. `Err(NoMoreData)` when there is none.
    pub fn scan(&self, from: Option<Cursor>, dir: Direction, max: usize) -> Result<ScanPage> {
        self.check_alive()?;
        let st = self.state.read();
        Self::check_readable(&st)?;
        let mut items = Vec::new();
        let max = max.max(1);
        match dir {
            Direction::Forward => self.scan_forward(&st, from, max, &mut items)?,
            Direction::Backward => self.scan_backward(&st, from, max, &mut items)?,
        }
        let next = items.last().map(|i| i.cursor).ok_or(Error::NoMoreData)?;
        Ok(ScanPage { items, next })
    }

    fn index_len(&self, st: &State, seg: u32) -> Result<u64> {
        if seg == st.cur_seg() {
            return Ok(st.index_len);
        }
        let (f, path) = self.file(st, false, seg)?;
        Ok(f.metadata()
            .map_err(|e| Error::Io { path, source: e })?
            .len())
    }

    /// Read the index entry at a cursor; a cursor that names no entry is an invalid key.
    fn entry_at(&self, st: &State, c: Cursor) -> Result<usize> {
        if !st.segments.contains(&c.seg) {
            return Err(Error::InvalidKey);
        }
        let end = self.index_len(st, c.seg)?;
        let (f, path) = self.file(st, false, c.seg)?;
        let want = (format::ENTRY_FIXED_LEN as u64 + 255).min(end.saturating_sub(u64::from(c.off)));
        let b = segment::read_at(&f, &path, u64::from(c.off), want as usize)
            .map_err(|_| Error::InvalidKey)?;
        let (_, _, n) = format::decode_entry(&b).map_err(|_| Error::InvalidKey)?;
        Ok(n)
    }

    /// The item for the entry at `(seg, off)` if it is the live version of its key.
    fn live_item(
        &self,
        st: &State,
        seg: u32,
        off: u64,
        e: &format::IndexEntry,
        key: &[u8],
    ) -> Option<ScanItem> {
        let cursor = Cursor {
            seg,
            off: off as u32,
        };
        match &st.keys {
            Keys::User(m) => {
                let s = m.get(key)?;
                (s.seg == seg && u64::from(s.idx_off) == off && !s.is_deleted()).then(|| ScanItem {
                    key: key.to_vec(),
                    payload_len: e.payload_len,
                    timestamp: e.timestamp,
                    cursor,
                })
            }
            Keys::Seq(s) => {
                if e.is_deleted() {
                    return None;
                }
                let &(first, _) = s.starts.iter().find(|&&(_, sg)| sg == seg)?;
                let id =
                    first + ((off - FILE_HEADER_LEN as u64) / format::SEQ_ENTRY_LEN as u64) as u32;
                Some(ScanItem {
                    key: super::seq_key(id).to_vec(),
                    payload_len: e.payload_len,
                    timestamp: e.timestamp,
                    cursor,
                })
            }
        }
    }

    fn scan_forward(
        &self,
        st: &State,
        from: Option<Cursor>,
        max: usize,
        items: &mut Vec<ScanItem>,
    ) -> Result<()> {
        let (start_seg, mut pos) = match from {
            None => (st.segments[0], FILE_HEADER_LEN as u64),
            Some(c) => (c.seg, u64::from(c.off) + self.entry_at(st, c)? as u64),
        };
        for &seg in st.segments.iter().filter(|&&s| s >= start_seg) {
            if seg != start_seg {
                pos = FILE_HEADER_LEN as u64;
            }
            let end = self.index_len(st, seg)?;
            let (f, path) = self.file(st, false, seg)?;
            while pos < end && items.len() < max {
                let len = CHUNK.min(end - pos) as usize;
                let b = segment::read_at(&f, &path, pos, len)?;
                let mut at = 0usize;
                while at < b.len() && items.len() < max {
                    match format::decode_entry(&b[at..]) {
                        Ok((e, key, n)) => {
                            items.extend(self.live_item(st, seg, pos + at as u64, &e, key));
                            at += n;
                        }
                        Err(format::DecodeError::Short { .. }) if at > 0 => break,
                        Err(_) => {
                            return Err(Error::Corrupt {
                                path,
                                offset: pos + at as u64,
                                what: "index entry checksum mismatch",
                            })
                        }
                    }
                }
                pos += at as u64;
            }
            if items.len() >= max {
                break;
            }
        }
        Ok(())
    }

    fn scan_backward(
        &self,
        st: &State,
        from: Option<Cursor>,
        max: usize,
        items: &mut Vec<ScanItem>,
    ) -> Result<()> {
        let (start_seg, mut end) = match from {
            None => (st.cur_seg(), st.index_len),
            Some(c) => {
                self.entry_at(st, c)?;
                (c.seg, u64::from(c.off))
            }
        };
        for &seg in st.segments.iter().rev().filter(|&&s| s <= start_seg) {
            if seg != start_seg {
                end = self.index_len(st, seg)?;
            }
            let (f, path) = self.file(st, false, seg)?;
            let corrupt = |offset| Error::Corrupt {
                path: path.clone(),
                offset,
                what: "index entry checksum mismatch",
            };
            while end > FILE_HEADER_LEN as u64 && items.len() < max {
                let start = end.saturating_sub(CHUNK).max(FILE_HEADER_LEN as u64);
                let b = segment::read_at(&f, &path, start, (end - start) as usize)?;
                let mut tail = b.len();
                while tail > 0 && items.len() < max {
                    let key_len = b[tail - 1] as usize;
                    let n = format::entry_len(key_len);
                    if n > tail {
                        if start == FILE_HEADER_LEN as u64 {
                            return Err(corrupt(start + tail as u64));
                        }
                        break;
                    }
                    let (e, key, _) = format::decode_entry(&b[tail - n..tail])
                        .map_err(|_| corrupt(start + (tail - n) as u64))?;
                    items.extend(self.live_item(st, seg, start + (tail - n) as u64, &e, key));
                    tail -= n;
                }
                end = start + tail as u64;
            }
            if items.len() >= max {
                break;
            }
        }
        Ok(())
    }

    /// Cursor positioned at the current entry of `key` (KEYCUR).
    pub fn key_cursor(&self, key: &[u8]) -> Result<Option<Cursor>> {
        self.check_alive()?;
        let st = self.state.read();
        Ok(match &st.keys {
            Keys::User(m) => m.get(key).filter(|s| !s.is_deleted()).map(|s| Cursor {
                seg: s.seg,
                off: s.idx_off,
            }),
            Keys::Seq(s) => {
                let Ok(id) = super::seq_id(key) else {
                    return Ok(None);
                };
                self.seq_entry(&st, s, id)?
                    .filter(|e| !e.entry.is_deleted())
                    .map(|e| Cursor {
                        seg: e.iseg,
                        off: e.off as u32,
                    })
            }
        })
    }

    /// One version of `key`: the newest without `at`, else the version `at` names (a cursor
    /// returned by an earlier HISTORY call). `None` when the key never existed.
    pub fn history(&self, key: &[u8], at: Option<Cursor>) -> Result<Option<HistoryItem>> {
        self.check_alive()?;
        self.fetching(|| self.history_locked(key, at))
    }

    fn history_locked(&self, key: &[u8], at: Option<Cursor>) -> Result<Option<HistoryItem>> {
        let st = self.state.read();
        Self::check_readable(&st)?;
        let stored_key: Vec<u8> = match st.mode() {
            Mode::User => key.to_vec(),
            Mode::Seq => match super::seq_id(key) {
                Ok(id) => id.to_le_bytes().to_vec(),
                Err(_) => return Ok(None),
            },
        };
        let loc = match at {
            Some(c) => Some((c.seg, c.off)),
            None => match &st.keys {
                Keys::User(m) => m.get(key).map(|s| (s.seg, s.data_off)),
                Keys::Seq(s) => {
                    let Ok(id) = super::seq_id(key) else {
                        return Ok(None);
                    };
                    self.seq_entry(&st, s, id)?
                        .map(|e| (e.entry.data_seg, e.entry.data_off))
                }
            },
        };
        let Some((seg, off)) = loc else {
            return Ok(None);
        };
        if !st.segments.contains(&seg) {
            return Err(Error::InvalidKey);
        }
        let (f, path) = self.file(&st, true, seg)?;
        let head = segment::read_at(
            &f,
            &path,
            u64::from(off),
            format::RECORD_HEADER_LEN + stored_key.len(),
        )
        .map_err(|_| Error::InvalidKey)?;
        let (h, k) = format::decode_record_header(&head).map_err(|_| Error::InvalidKey)?;
        if k != stored_key.as_slice() {
            return Err(Error::InvalidKey);
        }
        let (h2, payload) = self.read_record(&st, seg, off, k.len(), h.payload_len)?;
        Ok(Some(HistoryItem {
            timestamp: h2.timestamp,
            payload,
            deleted: h2.is_deleted(),
            at: Cursor { seg, off },
            prev: h2.prev().map(|(seg, off)| Cursor { seg, off }),
        }))
    }

    /// Whether `key` is a sequential id spent on a placeholder (an update of another id
    /// took it, as 0-db does): it names no record and never had a value.
    fn is_placeholder(&self, key: &[u8]) -> Result<bool> {
        let st = self.state.read();
        let (Keys::Seq(s), Ok(id)) = (&st.keys, super::seq_id(key)) else {
            return Ok(false);
        };
        Ok(self
            .seq_entry(&st, s, id)?
            .is_some_and(|e| e.entry.data_seg == crate::segrefs::NO_SEGMENT))
    }

    /// The end of everything written so far: a point to read the namespace as of later
    /// ([`Namespace::get_at`]).
    pub fn point(&self) -> Cursor {
        let st = self.state.read();
        Cursor {
            seg: st.cur_seg(),
            off: u32::try_from(st.data_len).unwrap_or(u32::MAX),
        }
    }

    /// The value `key` had at `point` (from [`Namespace::point`]): its newest version
    /// written before the point, `None` if there was none or it was a deletion. Versions
    /// are found through the history chain, so a point stays readable while its versions
    /// are kept (compaction moves live records only and starts their chain afresh).
    pub fn get_at(&self, key: &[u8], point: Cursor) -> Result<Option<Vec<u8>>> {
        if self.is_placeholder(key)? {
            return Ok(None);
        }
        let before = |c: Cursor| (c.seg, c.off) < (point.seg, point.off);
        let mut at = None;
        loop {
            let Some(item) = self.history(key, at)? else {
                return Ok(None);
            };
            if before(item.at) {
                return Ok((!item.deleted).then_some(item.payload));
            }
            match item.prev {
                Some(prev) => at = Some(prev),
                None => return Ok(None),
            }
        }
    }
}
