//! Typed engine errors. Where 0-db has a fixed reply text for a condition, the `Display` text
//! here is exactly that text, so the server can forward it as `-{error}` unchanged. Errors that
//! come from elsewhere (I/O, an event sink's [`SinkError`]) are kept as their `source`, with
//! what the engine was doing alongside.

use crate::events::SinkError;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Invalid key format")]
    InvalidKey,
    #[error("Key too large")]
    KeyTooLarge,
    #[error("Payload too large")]
    PayloadTooLarge,
    #[error("No space left on this namespace")]
    NamespaceFull,
    /// The disk of the data folder is down to its reserve (see `disk.rs`).
    #[error(
        "No space left on device: {available} bytes free in {path}, {reserve} of them kept \
         for deletes and compaction"
    )]
    DiskFull {
        path: PathBuf,
        available: u64,
        reserve: u64,
    },
    #[error("Namespace is temporarily locked (read-only)")]
    Locked,
    #[error("Namespace is temporarily frozen (read-write disabled)")]
    Frozen,
    #[error("Namespace is protected by worm mode")]
    WormOverwrite,
    #[error("Cannot delete a key when namespace is in worm mode")]
    WormDelete,
    #[error("Invalid argument, key needed")]
    KeyNeeded,
    #[error("Invalid key, only update authorized")]
    SeqUpdateOnly,
    #[error("Key not found")]
    KeyNotFound,
    #[error("Namespace not found")]
    NamespaceNotFound,
    #[error("Namespace already exists")]
    NamespaceExists,
    #[error("Invalid namespace name")]
    InvalidNamespaceName,
    #[error("Namespace too long")]
    NamespaceTooLong,
    #[error("Namespace is not empty")]
    NamespaceNotEmpty,
    #[error("Your active namespace is not available anymore (probably removed).")]
    NamespaceGone,
    #[error("Invalid argument")]
    InvalidArgument,
    #[error("Operation not supported in this mode")]
    WrongMode,
    #[error("No more data")]
    NoMoreData,
    #[error("Data segment {path} is missing")]
    MissingSegment { path: PathBuf },
    /// A closed data segment is not on this disk (offloaded); `read` is the range the read
    /// that met it needs, when known. Reads that meet it release the namespace lock, get the
    /// range from the sink or raise `missing-data`, and try again ([`crate::Namespace`]'s
    /// `fetching`); callers only see this if a code path forgot to.
    #[error("Data segment {seg} is offloaded")]
    Offloaded {
        seg: u32,
        read: Option<(u64, usize)>,
    },
    #[error("Corrupted data in {path} at offset {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: &'static str,
    },
    /// A batch could not be written out; nothing of it was acknowledged. Every item of the
    /// batch that would have been written reports the one error that stopped the write-out.
    #[error("Write failed: {0}")]
    WriteFailed(#[source] Arc<Error>),
    /// A blocking start-up event (`event`, e.g. `namespaces-init`) was refused by the sink.
    #[error("Start refused by hook: {source}")]
    HookRefused {
        event: &'static str,
        #[source]
        source: SinkError,
    },
    /// The event sink could not record the checkpoint of data segment `segment`; the segment
    /// was not closed.
    #[error("Checkpoint failed: {source}")]
    CheckpointFailed {
        namespace: String,
        segment: u32,
        #[source]
        source: SinkError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is a lack of space: the namespace's limit, the disk's reserve, or the
    /// disk itself (ENOSPC, EDQUOT), also inside a failed write-out.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::NamespaceFull | Error::DiskFull { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ),
            Error::WriteFailed(inner) => inner.is_no_space(),
            _ => false,
        }
    }
}

/// Attach a path to an `io::Error`, which otherwise never says which file failed.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
