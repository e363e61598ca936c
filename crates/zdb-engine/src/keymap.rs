//! In-memory index of a user-mode namespace: key → location of its current version.
//!
//! Built for memory: keys live back to back in one arena, fixed-size slots in one vector, and the
//! hash table stores only a 4-byte slot number. That is about 45 bytes per key beyond the key
//! itself, against ~250 for 0-db. Deleted keys keep their slot (flagged) so history still works.

use crate::segrefs::{record_len, SegRefs};
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Where the current version of a key lives, data and index side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    key_off: u32,
    /// Segment id of both the data record and the index entry (they always share it).
    pub seg: u32,
    pub data_off: u32,
    pub idx_off: u32,
    pub payload_len: u32,
    pub timestamp: u32,
    pub payload_crc: u32,
    key_len: u8,
    pub flags: u8,
}

impl Slot {
    pub fn is_deleted(&self) -> bool {
        self.flags & crate::format::FLAG_DELETED != 0
    }

    /// The index entry this slot was made from (the key and index offset aside).
    pub fn entry(&self) -> crate::format::IndexEntry {
        crate::format::IndexEntry {
            data_seg: self.seg,
            data_off: self.data_off,
            payload_len: self.payload_len,
            timestamp: self.timestamp,
            payload_crc: self.payload_crc,
            flags: self.flags,
        }
    }
}

/// What a caller records about a key's newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub seg: u32,
    pub data_off: u32,
    pub idx_off: u32,
    pub payload_len: u32,
    pub timestamp: u32,
    pub payload_crc: u32,
    pub flags: u8,
}

impl Placement {
    /// The placement an index entry at `idx_off` describes.
    pub fn of(e: &crate::format::IndexEntry, idx_off: u32) -> Placement {
        Placement {
            seg: e.data_seg,
            data_off: e.data_off,
            idx_off,
            payload_len: e.payload_len,
            timestamp: e.timestamp,
            payload_crc: e.payload_crc,
            flags: e.flags,
        }
    }
}

#[derive(Default)]
pub struct KeyMap {
    table: HashTable<u32>,
    slots: Vec<Slot>,
    arena: Vec<u8>,
    hasher: FixedState,
    live: u64,
    live_bytes: u64,
    refs: SegRefs,
}

impl KeyMap {
    pub fn new() -> Self {
        Self::default()
    }

    fn key_of<'a>(arena: &'a [u8], s: &Slot) -> &'a [u8] {
        &arena[s.key_off as usize..s.key_off as usize + s.key_len as usize]
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        self.table
            .find(h, |&i| {
                Self::key_of(&self.arena, &self.slots[i as usize]) == key
            })
            .copied()
    }

    /// Current slot of `key`, deleted or not.
    pub fn get(&self, key: &[u8]) -> Option<&Slot> {
        self.find(key).map(|i| &self.slots[i as usize])
    }

    /// Number of keys whose newest version is not a deletion.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// References into each data segment (live versions and tombstones).
    pub fn refs(&self) -> &SegRefs {
        &self.refs
    }

    /// Forget `key` entirely (compaction dropped its last tombstone).
    pub fn remove(&mut self, key: &[u8]) {
        let h = self.hasher.hash_one(key);
        let (arena, slots) = (&self.arena, &self.slots);
        if let Ok(entry) = self
            .table
            .find_entry(h, |&i| Self::key_of(arena, &slots[i as usize]) == key)
        {
            let (i, _) = entry.remove();
            let s = self.slots[i as usize];
            if !s.is_deleted() {
                self.live -= 1;
                self.live_bytes -= u64::from(s.payload_len);
            }
            self.refs.sub(s.seg, record_len(key.len(), s.payload_len));
        }
    }

    /// Sum of the payload lengths of live keys.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Record `p` as the newest version of `key`; returns the previous slot if there was one.
    pub fn put(&mut self, key: &[u8], p: Placement) -> Option<Slot> {
        let deleted = p.flags & crate::format::FLAG_DELETED != 0;
        if let Some(i) = self.find(key) {
            let s = &mut self.slots[i as usize];
            let old = *s;
            self.refs
                .sub(old.seg, record_len(key.len(), old.payload_len));
            self.refs.add(p.seg, record_len(key.len(), p.payload_len));
            if !old.is_deleted() {
                self.live_bytes -= u64::from(old.payload_len);
            }
            if !deleted {
                self.live_bytes += u64::from(p.payload_len);
            }
            s.seg = p.seg;
            s.data_off = p.data_off;
            s.idx_off = p.idx_off;
            s.payload_len = p.payload_len;
            s.timestamp = p.timestamp;
            s.payload_crc = p.payload_crc;
            s.flags = p.flags;
            match (old.is_deleted(), deleted) {
                (true, false) => self.live += 1,
                (false, true) => self.live -= 1,
                _ => {}
            }
            return Some(old);
        }
        let idx =
            u32::try_from(self.slots.len()).expect("more than 4 billion keys in one namespace");
        let key_off =
            u32::try_from(self.arena.len()).expect("key arena beyond 4 GiB in one namespace");
        self.arena.extend_from_slice(key);
        self.refs.add(p.seg, record_len(key.len(), p.payload_len));
        self.slots.push(Slot {
            key_off,
            seg: p.seg,
            data_off: p.data_off,
            idx_off: p.idx_off,
            payload_len: p.payload_len,
            timestamp: p.timestamp,
            payload_crc: p.payload_crc,
            key_len: key.len() as u8,
            flags: p.flags,
        });
        let (arena, slots, hasher) = (&self.arena, &self.slots, &self.hasher);
        let h = hasher.hash_one(key);
        self.table.insert_unique(h, idx, |&i| {
            hasher.hash_one(Self::key_of(arena, &slots[i as usize]))
        });
        if !deleted {
            self.live += 1;
            self.live_bytes += u64::from(p.payload_len);
        }
        None
    }

    /// Drop spare capacity after a bulk load.
    pub fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.slots.shrink_to_fit();
        let (arena, slots, hasher) = (&self.arena, &self.slots, &self.hasher);
        self.table
            .shrink_to_fit(|&i| hasher.hash_one(Self::key_of(arena, &slots[i as usize])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seg: u32, flags: u8) -> Placement {
        Placement {
            seg,
            data_off: 1,
            idx_off: 2,
            payload_len: 3,
            timestamp: 4,
            payload_crc: 5,
            flags,
        }
    }

    #[test]
    fn put_get_overwrite_delete() {
        let mut m = KeyMap::new();
        for i in 0..10_000u32 {
            assert!(m.put(&i.to_be_bytes(), p(i, 0)).is_none());
        }
        assert_eq!(m.live(), 10_000);
        assert_eq!(m.get(&5u32.to_be_bytes()).unwrap().seg, 5);
        let old = m.put(&5u32.to_be_bytes(), p(77, 0)).unwrap();
        assert_eq!(old.seg, 5);
        assert_eq!(m.get(&5u32.to_be_bytes()).unwrap().seg, 77);
        m.put(&6u32.to_be_bytes(), p(1, crate::format::FLAG_DELETED));
        assert_eq!(m.live(), 9_999);
        assert!(m.get(&6u32.to_be_bytes()).unwrap().is_deleted());
        m.put(&6u32.to_be_bytes(), p(1, 0));
        assert_eq!(m.live(), 10_000);
        assert!(m.get(b"absent").is_none());
        m.shrink();
        assert_eq!(m.get(&9_999u32.to_be_bytes()).unwrap().seg, 9_999);
    }
}
