//! # zdb-engine: the append-only key-value engine under every other piece of QSFS-rs
//!
//! Owns namespaces on disk: data and index segments, the in-memory index, user and sequential
//! modes, history, scans, recovery after a crash, namespace settings and engine events.
//! It must not know about the network, RESP, clients, authentication or hook executables: the
//! `zdb-server` crate maps those onto this API, and other crates (zdbfs, qsfs) embed the engine
//! directly.
//!
//! Durability contract: a write returns once its data record and its index entry are in the OS
//! page cache (`Durability::Os`, survives a process crash) or on stable storage
//! (`Durability::Always`, survives a power cut). On-disk format: `docs/format/zdb.md`.

mod disk;
mod durable;
mod engine;
mod error;
pub mod events;
pub mod format;
mod iostats;
mod keymap;
mod namespace;
pub mod private;
mod segment;
mod segrefs;
mod settings;

pub use engine::{Engine, EngineConfig, DEFAULT_NAMESPACE};
pub use error::{Error, Result};
pub use events::{Checkpoint, Event, EventSink, NoEvents, SinkError};
pub use iostats::IoCounters;
pub use namespace::{
    seq_key, sync_namespaces, Append, CompactStats, Cursor, Direction, EntryMeta, HistoryItem,
    Namespace, NamespaceInfo, ScanItem, ScanPage, SegmentUsage, SetOutcome, SettingChange,
};

pub use settings::Settings;

/// How keys are chosen in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Clients choose binary keys of 1 to 255 bytes.
    User,
    /// The engine assigns ids 0, 1, 2, … (sent as 8-byte little-endian keys).
    Seq,
}

impl Mode {
    pub(crate) fn as_byte(self) -> u8 {
        match self {
            Mode::User => 0,
            Mode::Seq => 1,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Mode> {
        match b {
            0 => Some(Mode::User),
            1 => Some(Mode::Seq),
            _ => None,
        }
    }
}

/// When writes reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// In the OS page cache when acknowledged; fsync on segment close and on `sync`.
    Os,
    /// fsync of data and index before every acknowledgement.
    Always,
}
