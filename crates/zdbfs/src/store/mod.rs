//! Where zdbfs keeps its records: three sequential-mode zdb namespaces, behind the [`Store`]
//! trait so the filesystem runs the same on the in-process engine ([`EngineStore`], no network
//! hop, the default) and on a `zdb` server ([`RemoteStore`]).
//!
//! Every call returns once the backend has taken the write (engine: in the OS page cache, so a
//! kill -9 of zdbfs loses nothing written); [`Store::sync`] makes everything durable on disk.

mod engine;
pub mod remote;

pub use engine::EngineStore;
pub use remote::{RemoteConfig, RemoteStore};

use crate::error::StoreError;

/// The three namespaces of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ns {
    /// Superblock, inodes and directory buckets (`zdbfs-meta`).
    Meta,
    /// File blocks (`zdbfs-data`).
    Data,
    /// The metadata journal (`zdbfs-temp`).
    Temp,
}

impl Ns {
    pub const ALL: [Ns; 3] = [Ns::Meta, Ns::Data, Ns::Temp];

    /// Default namespace name, as ThreeFold's zdbfs.
    pub fn default_name(self) -> &'static str {
        match self {
            Ns::Meta => "zdbfs-meta",
            Ns::Data => "zdbfs-data",
            Ns::Temp => "zdbfs-temp",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Ns::Meta => 0,
            Ns::Data => 1,
            Ns::Temp => 2,
        }
    }
}

/// Blob storage by id in three sequential namespaces. Ids are assigned by the backend on append
/// and never reused.
pub trait Store: Send + Sync + 'static {
    /// Append a new record; returns its id.
    fn append(&self, ns: Ns, value: &[u8]) -> Result<u64, StoreError>;
    /// Replace the record `id` (which must exist).
    fn update(&self, ns: Ns, id: u64, value: &[u8]) -> Result<(), StoreError>;
    /// The record `id`, `None` when absent or deleted.
    fn get(&self, ns: Ns, id: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Append each part of a record to `out`, in order: exactly `len` bytes per part (zeros
    /// past the record's end). Stops at the first part whose record is absent and returns
    /// how many parts it appended. Reads of whole blocks go straight into the reply this
    /// way; a store across a network fetches all the records in one round trip, one on the
    /// same machine copies each from its page cache once.
    fn append_parts(&self, ns: Ns, parts: &[Part], out: &mut Vec<u8>) -> Result<usize, StoreError> {
        for (n, part) in parts.iter().enumerate() {
            match self.get(ns, part.id)? {
                Some(record) => part.append(&record, out),
                None => return Ok(n),
            }
        }
        Ok(parts.len())
    }
    /// Delete the record `id`; deleting an absent record is not an error.
    fn delete(&self, ns: Ns, id: u64) -> Result<(), StoreError>;
    /// Every live id of a namespace, ascending (used by recovery).
    fn ids(&self, ns: Ns) -> Result<Vec<u64>, StoreError>;
    /// Make every write so far durable on stable storage.
    fn sync(&self) -> Result<(), StoreError>;
    /// Payload bytes held by live records of a namespace (for statfs).
    fn used_bytes(&self, ns: Ns) -> Result<u64, StoreError>;
    /// Bytes new data may still take, when the store knows (its disk, above the reserve it
    /// keeps for deletes); `None`: unknown (statfs reports the `size` option instead).
    fn available_bytes(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}

/// Largest record the backends accept (0-db's limit).
pub const MAX_RECORD: usize = 8 * 1024 * 1024;

/// `len` bytes of record `id` from byte `from` on (see [`Store::append_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub id: u64,
    pub from: usize,
    pub len: usize,
}

impl Part {
    /// Append this part of `record` to `out`, zeros past its end.
    pub fn append(&self, record: &[u8], out: &mut Vec<u8>) {
        let have = record.get(self.from..).unwrap_or_default();
        let take = have.len().min(self.len);
        out.extend_from_slice(&have[..take]);
        out.resize(out.len() + self.len - take, 0);
    }
}
