//! Per-segment reference counts: how many index entries point at records of each data segment,
//! and how many bytes those records take. Compaction uses them to find segments that are mostly
//! (or entirely) dead.

use std::collections::HashMap;

/// Records and bytes still referenced in one data segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegUse {
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct SegRefs(HashMap<u32, SegUse>);

/// Segment id used by placeholder entries that point at no record.
pub const NO_SEGMENT: u32 = u32::MAX;

impl SegRefs {
    pub fn add(&mut self, seg: u32, bytes: u64) {
        if seg != NO_SEGMENT {
            let u = self.0.entry(seg).or_default();
            u.records += 1;
            u.bytes += bytes;
        }
    }

    pub fn sub(&mut self, seg: u32, bytes: u64) {
        if let Some(u) = self.0.get_mut(&seg) {
            u.records = u.records.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(bytes);
            if u.records == 0 {
                self.0.remove(&seg);
            }
        }
    }

    pub fn get(&self, seg: u32) -> SegUse {
        self.0.get(&seg).copied().unwrap_or_default()
    }
}

/// On-disk length of a record with this key length and payload length.
pub fn record_len(key_len: usize, payload_len: u32) -> u64 {
    (crate::format::RECORD_HEADER_LEN + key_len) as u64 + u64::from(payload_len)
}
