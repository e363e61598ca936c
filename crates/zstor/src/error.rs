//! The crate-wide error type for encoding, decoding, metadata and backend operations.
//! Configuration and placement have their own error types ([`crate::ConfigError`],
//! [`crate::PlacementError`]) which convert into this one.

use crate::{config::ConfigError, placement::PlacementError};

/// Everything that can go wrong storing or retrieving an object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// AES-256-GCM refused the ciphertext: wrong key, or the data was tampered with.
    #[error("decryption failed")]
    DecryptionFailed,
    /// Fewer intact pieces (or reachable backends) than the code needs.
    #[error("not enough intact shards: {available} usable, {needed} needed")]
    TooFewPieces {
        /// Pieces that passed their checksum.
        available: usize,
        /// Pieces needed (`k`).
        needed: usize,
    },
    /// A chunk of a stored file could not be read: too few of its pieces came back.
    #[error("chunk {chunk}: {available} of the {needed} pieces needed could be read (last failure: {reason})")]
    ChunkUnavailable {
        /// Chunk index.
        chunk: u64,
        /// Intact pieces received.
        available: usize,
        /// Pieces needed (`k`).
        needed: usize,
        /// The last backend failure or rejection seen for it.
        reason: String,
    },
    /// Fewer backends answered than the operation needs.
    #[error("not enough backends reachable: {reachable} reachable, {needed} needed")]
    TooFewBackends {
        /// Backends that answered.
        reachable: usize,
        /// Backends needed.
        needed: usize,
    },
    /// Code parameters outside what the codec supports.
    #[error("invalid code parameters: {0}")]
    InvalidCode(String),
    /// A chunk larger than the codec was configured for.
    #[error("chunk of {len} bytes exceeds the limit of {max} bytes")]
    ChunkTooLarge {
        /// Length given.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A decrypted chunk whose content contradicts its header (cannot happen without a bug or a
    /// forged key).
    #[error("corrupt chunk: {0}")]
    CorruptChunk(&'static str),
    /// The compressor failed.
    #[error("compression failed: {0}")]
    Compression(String),
    /// The metadata record could not be encoded or decoded.
    #[error("metadata: {0}")]
    Meta(String),
    /// The retrieved file does not match its stored checksum.
    #[error("file checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// Hex checksum from the metadata.
        expected: String,
        /// Hex checksum of what was rebuilt.
        actual: String,
    },
    /// No metadata stored under this key.
    #[error("no metadata for {0}")]
    NotFound(String),
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No valid shard placement.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// A backend request failed.
    #[error("backend {address}: {source}")]
    Backend {
        /// `address/namespace` of the backend.
        address: String,
        /// What the client reported.
        source: zdb_client::ClientError,
    },
    /// A backend marked down after its connection failed or went silent: not asked again
    /// before its retry time.
    #[error(
        "backend {address}: not answering for {silent_for:.1?} (tried again in {retry_in:.1?})"
    )]
    BackendDown {
        /// `address/namespace` of the backend.
        address: String,
        /// Since its first failure.
        silent_for: std::time::Duration,
        /// Until the next attempt.
        retry_in: std::time::Duration,
    },
    /// A background task or thread died (a bug, or the runtime shutting down).
    #[error("internal error: {0}")]
    Internal(String),
    /// A command-line path that cannot name a stored file.
    #[error("{path}: {reason}")]
    InvalidPath {
        /// The path given (or resolved).
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// Local file I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}
