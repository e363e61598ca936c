//! A directory held in memory: its entries grouped by hash bucket, exactly as they are stored,
//! so a create or unlink dirties one small bucket record and a lookup is one hash probe.
//! When the average bucket holds more than [`BUCKET_LOAD`] entries the bucket count doubles.

use crate::record::{name_hash, Dirent};
use std::collections::{BTreeSet, HashMap};

/// Average entries per bucket before the directory doubles its bucket count.
pub const BUCKET_LOAD: usize = 64;

#[derive(Debug, Default)]
pub struct Dir {
    /// One map per bucket; `buckets.len()` equals the directory inode's bucket count.
    pub buckets: Vec<HashMap<Vec<u8>, Dirent>>,
    /// Buckets changed since the last flush.
    pub dirty: BTreeSet<usize>,
    pub len: usize,
}

impl Dir {
    pub fn with_buckets(n: usize) -> Dir {
        Dir {
            buckets: (0..n.max(1)).map(|_| HashMap::new()).collect(),
            dirty: BTreeSet::new(),
            len: 0,
        }
    }

    fn slot(&self, name: &[u8]) -> usize {
        name_hash(name) as usize % self.buckets.len()
    }

    pub fn get(&self, name: &[u8]) -> Option<Dirent> {
        self.buckets[self.slot(name)].get(name).copied()
    }

    /// Insert or replace; returns whether the bucket count grew (the inode must record it).
    pub fn insert(&mut self, name: Vec<u8>, e: Dirent) -> bool {
        let s = self.slot(&name);
        if self.buckets[s].insert(name, e).is_none() {
            self.len += 1;
        }
        self.dirty.insert(s);
        if self.len > self.buckets.len() * BUCKET_LOAD {
            self.grow();
            return true;
        }
        false
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Dirent> {
        let s = self.slot(name);
        let e = self.buckets[s].remove(name)?;
        self.len -= 1;
        self.dirty.insert(s);
        Some(e)
    }

    fn grow(&mut self) {
        let n = self.buckets.len() * 2;
        let old = std::mem::take(&mut self.buckets);
        self.buckets = (0..n).map(|_| HashMap::new()).collect();
        for (name, e) in old.into_iter().flatten() {
            let s = self.slot(&name);
            self.buckets[s].insert(name, e);
        }
        self.dirty = (0..n).collect();
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, bucket by bucket (the order readdir uses).
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Dirent)> {
        self.buckets.iter().flat_map(|b| b.iter())
    }
}
