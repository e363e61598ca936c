//! # qsfs: the quantum-safe filesystem
//!
//! A zdbfs mount over a local zdb engine that is only a cache: every closed data segment is
//! stored through zstor (compressed, encrypted, erasure-coded over many zdb backends) with a
//! consistent copy of the index, evicted locally when the cache is full, and fetched back
//! when a read needs it. A lost machine is rebuilt from the backends with `qsfs restore`.
//!
//! What each module owns:
//! - [`config`]: the configuration file (zstor's keys plus `[qsfs]`) and the embedded
//!   default written on first run;
//! - [`standin`]: local stand-in backends for the embedded default (child `zdb` processes);
//! - [`offload`]: the engine's event sink: checkpoints at each segment close and partial
//!   ones of the open segments, their upload, the fetch of evicted segments;
//! - [`manifest`]: what is stored and under which names;
//! - [`evict`]: keeping the local cache under its limit;
//! - [`restore`]: refilling an empty cache folder from the backends;
//! - [`stack`]: the running stack's state and operations (rotate, evict, its background
//!   tasks); [`compact`]: compaction of stored segments;
//! - [`metrics`]: Prometheus `/metrics` (the same data as `qsfs status`);
//! - [`run`]: start-up and shutdown of the whole stack, and nothing else; [`control`] and
//!   [`status`]: the control socket behind `qsfs status|rotate|evict|compact`.
//!
//! The web file browser is its own crate, `qsfs-web`; it sees the stack only through
//! `qsfs_web::StorageStatus`, which [`stack::Stack`] implements in [`status`]. Modules depend
//! downwards only: `run` → endpoints (`control`, `metrics`, web) → `status` → `stack`,
//! `compact` → `offload`, `evict`, `manifest`, `config`.
//!
//! Must not touch: the engine's on-disk format (files are linked or copied whole), zdbfs
//! internals (mounted through `zdbfs::mount`), zstor's object format (used through
//! `zstor::Store`).
//!
//! Durability: a write is durable on the local disk as zdbfs promises (fsync = synced); it is
//! on the backends once a checkpoint holding it was uploaded: a partial checkpoint of the open
//! segment at most `disperse_seconds` after zdbfs wrote it back (2 s), or the segment's close
//! (at `segment_size_mib`, after `rotate_seconds`, on `qsfs rotate`, on clean shutdown).
//! Losing the whole local machine loses about the last `disperse_seconds` + 2 s + one upload
//! (`qsfs status` shows it); with `fsync = "dispersed"`, nothing fsync'ed.

/// Print a line for the person running qsfs on stdout. A closed or broken stdout (`qsfs |
/// tee log` stopped with Ctrl-C kills `tee` too) is ignored, never a panic: shutdown, and
/// the offload it promises, must not depend on whoever reads the output.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] on stderr.
#[macro_export]
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod compact;
pub mod config;
pub mod control;
pub mod evict;
pub mod manifest;
pub mod metrics;
pub mod offload;
pub mod restore;
pub mod run;
pub mod stack;
pub mod standin;
pub mod status;

pub use config::Config;
