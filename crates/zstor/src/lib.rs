//! zstor: store files on many zdb servers so that any `k` of `n` shards rebuild them, and no
//! server holds anything readable (compress → AES-256-GCM → Reed-Solomon, chunk by chunk).
//!
//! # What this crate owns
//!
//! * [`config`]: the TOML configuration, with exactly 0-stor v2's keys, and its validation
//!   (every error names the field and the reason).
//! * [`pipeline`]: the per-chunk codec turning a bounded chunk of plaintext into `k + m`
//!   self-checking shard pieces and back, reusing its buffers from chunk to chunk.
//! * [`placement`]: which backends of which `groups` receive the `n` shards so that the
//!   configured group and node losses still leave `k` shards.
//! * [`meta`]: the per-file metadata record, its binary encoding, its encryption with the
//!   metadata key and its 2+2 dispersal over the 4 metadata backends, and its storage key.
//! * [`backend`]: putting pieces on zdb backends and getting them back (via `zdb-client`),
//!   and what was measured of each backend (round trip, down mark) bounding its requests.
//! * [`store`]: streaming store/retrieve of whole files over the backends (degraded writes
//!   with backends down, hedged reads with backends slow), and rebuild (repair of lost,
//!   corrupt or never written shards, or re-encoding with a new code).
//! * [`stream`]: reading and writing whole files without the page cache (direct I/O, read
//!   ahead and written behind on a thread).
//! * [`hash`]: the checksums used above (blake2b-128 for files, BLAKE3-128 for pieces).
//! * [`cache`]: the local zdb data folder as a cache: its segments, which may be evicted,
//!   least recently used first (the one evictor's mechanism, used by `monitor` and qsfs).
//! * [`maintenance`]: backend health probes, repair sweeps after a loss and periodic scrubs,
//!   as named background tasks (run by `zstor monitor`, embedded by qsfs).
//! * [`keys`]: how file paths become metadata keys (`root` stripped, `--key-path`), shared
//!   by the command line, the daemon and cache eviction.
//! * [`probe`]: backend health probes (reachability, namespace, space), used by `status`,
//!   the daemon's health loop and the checks of `test`.
//!
//! The `zstor` binary (`src/bin/zstor/`) owns what only it needs: the command line, the
//! `monitor` daemon (its socket server, metrics endpoint, cache eviction, zdbfs statistics,
//! signals).
//!
//! # What this crate must not touch
//!
//! * The RESP wire format and connection handling live in `zdb-client`/`resp`; this crate
//!   only calls typed client methods.
//! * No server behaviour and no on-disk zdb format: backends are opaque key-value stores.
//!
//! Formats are documented in `docs/format/zstor.md`.

pub mod backend;
pub mod cache;
pub mod config;
mod error;
pub mod hash;
pub mod keys;
pub mod maintenance;
pub mod meta;
pub mod pipeline;
pub mod placement;
pub mod probe;
pub mod store;
pub mod stream;

pub use config::{Config, ConfigError};
pub use error::Error;
pub use pipeline::{ChunkDecoder, ChunkEncoder, CodecParams, Compression, DataKey};
pub use placement::{PlacementError, Rules};
pub use store::Store;
