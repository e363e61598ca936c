//! Engine events: what the engine tells the outside world about its files and namespaces.
//!
//! The engine only emits; the `zdb` server maps events onto its `--hook` executable, and other
//! crates (qsfs) subscribe in-process by implementing [`EventSink`]. Blocking events (those whose
//! outcome the engine waits for) are marked by [`Event::is_blocking`]. Events raised by writes
//! are emitted after the namespace lock is released, so a slow sink delays only the write that
//! caused the event, never other clients.
//!
//! A sink that refuses or fails says why with a [`SinkError`]; where that matters to a caller,
//! the engine wraps it in its own [`crate::Error`] with what it was doing
//! ([`crate::Error::HookRefused`], [`crate::Error::CheckpointFailed`]).

use std::path::{Path, PathBuf};

/// Why an [`EventSink`] refused or failed an event: a message for people, and the error behind
/// it when there is one (reachable through [`std::error::Error::source`], not repeated in the
/// message).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// A refusal or failure the message alone explains.
    pub fn new(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `source`; `message` says what the sink was doing.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> SinkError {
        SinkError {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for SinkError {
    fn from(message: String) -> SinkError {
        SinkError::new(message)
    }
}

impl From<&str> for SinkError {
    fn from(message: &str) -> SinkError {
        SinkError::new(message)
    }
}

/// Something that happened, or is about to happen, inside the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The engine finished loading; blocking: a refusal aborts start-up.
    Ready,
    /// The engine is shutting down cleanly.
    Close,
    /// A namespace closed its data segment `old` and opened `new`.
    JumpData {
        namespace: String,
        old: PathBuf,
        new: PathBuf,
    },
    /// A namespace closed its index segment `old` and opened `new`; `dirty` lists the index
    /// segment ids modified since the last reset of the dirty set.
    JumpIndex {
        namespace: String,
        old: PathBuf,
        new: PathBuf,
        dirty: Vec<u32>,
    },
    /// A data segment needed for a read is not on disk; blocking: the sink may bring it back
    /// (e.g. from zstor) before the engine retries.
    MissingData {
        namespace: String,
        path: PathBuf,
    },
    /// Namespaces are about to be loaded; blocking.
    NamespacesInit {
        index_root: PathBuf,
        data_root: PathBuf,
    },
    NamespaceCreated {
        namespace: String,
    },
    NamespaceUpdated {
        namespace: String,
    },
    NamespaceDeleted {
        namespace: String,
    },
    NamespaceReloaded {
        namespace: String,
    },
    /// A namespace is being closed (deleted or shut down) with its current files.
    NamespaceClosing {
        namespace: String,
        index: PathBuf,
        data: PathBuf,
        dirty: Vec<u32>,
    },
}

impl Event {
    /// The hook name 0-db uses for this event.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Ready => "ready",
            Event::Close => "close",
            Event::JumpData { .. } => "jump-data",
            Event::JumpIndex { .. } => "jump-index",
            Event::MissingData { .. } => "missing-data",
            Event::NamespacesInit { .. } => "namespaces-init",
            Event::NamespaceCreated { .. } => "namespace-created",
            Event::NamespaceUpdated { .. } => "namespace-updated",
            Event::NamespaceDeleted { .. } => "namespace-deleted",
            Event::NamespaceReloaded { .. } => "namespace-reloaded",
            Event::NamespaceClosing { .. } => "namespace-closing",
        }
    }

    /// Whether the engine waits for the sink's verdict before going on.
    pub fn is_blocking(&self) -> bool {
        matches!(
            self,
            Event::Ready | Event::MissingData { .. } | Event::NamespacesInit { .. }
        )
    }
}

/// A namespace's state at the moment its data segment `segment` is closed, or snapshotted
/// while it stays open, handed to [`EventSink::checkpoint`] while the namespace is still
/// locked: data segments up to `segment` (the open one up to `open_len`) and the index files
/// as they are now form one consistent snapshot, which stops being true as soon as the lock
/// is released (seq-mode updates rewrite older index entries in place, pointing them at the
/// next segment). Every byte named is synced to disk before the sink is called.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    pub namespace: &'a str,
    /// Where the namespace's data segments (`d<N>`) live.
    pub data_dir: &'a Path,
    /// Where its index segments (`i<N>`) and descriptor (`zdb-namespace`) live.
    pub index_dir: &'a Path,
    /// The data segment being closed (immutable from now on), or the open one.
    pub segment: u32,
    /// `None`: `segment` closes. `Some(len)`: a *partial* checkpoint; `segment` stays open
    /// and only its first `len` bytes belong to the snapshot (later appends go past them,
    /// nothing before them changes).
    pub open_len: Option<u64>,
    /// Index segments changed since the last checkpoint the sink accepted (at a close, this
    /// holds `segment` unless a partial checkpoint took its last change).
    pub dirty: &'a [u32],
}

/// Receives engine events. Called synchronously from the thread doing the work, so a sink
/// must hand slow non-blocking work to a thread of its own.
pub trait EventSink: Send + Sync {
    /// Handle `event`. For blocking events, `Err` means refusal (start-up aborts) or failure
    /// (the missing segment is still missing); for others the result is ignored.
    fn emit(&self, event: &Event) -> Result<(), SinkError>;

    /// Whether an `Ok` from `jump-index` means the dirty index segments it listed were shipped
    /// elsewhere, so the engine may forget them (0-db resets its dirty list when the hook exits 0).
    fn ships_dirty_index(&self) -> bool {
        false
    }

    /// A read needs bytes `offset..offset + len` of data segment `path`, which is not on disk
    /// (offloaded). Return exactly those bytes to serve this read without waiting for the
    /// whole segment (the sink may bring that back in the background); `Ok(None)`: not
    /// offered, the engine raises the blocking `missing-data` event as before. Called with no
    /// lock held; the engine still verifies the record it reads from them.
    fn read_missing(
        &self,
        _namespace: &str,
        _path: &Path,
        _offset: u64,
        _len: usize,
    ) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(None)
    }

    /// Called under the namespace lock when a segment closes, before the next one opens, and
    /// for a partial checkpoint of the open one ([`crate::Namespace::snapshot_if`]). Must
    /// be quick and local (copy or link files, queue work): every client of the namespace
    /// waits. `Ok(true)`: the sink kept the snapshot, the engine forgets the dirty ids.
    /// `Ok(false)`: not interested. `Err`: the jump fails (the write that caused it too) and
    /// the segment stays open, so no closed segment ever misses its checkpoint (a failed
    /// partial checkpoint fails only the snapshot).
    fn checkpoint(&self, _checkpoint: &Checkpoint<'_>) -> Result<bool, SinkError> {
        Ok(false)
    }
}

/// A sink that ignores everything; the default when nobody listens.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &Event) -> Result<(), SinkError> {
        Ok(())
    }
}
