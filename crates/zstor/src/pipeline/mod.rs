//! The per-chunk codec: a bounded chunk of plaintext becomes `k + m` self-checking shard
//! pieces, any `k` of which give the chunk back.
//!
//! ```text
//! chunk ─ compress (snappy | lz4 | zstd, or stored raw if that is not smaller)
//!       ─ AES-256-GCM (fresh random 96-bit nonce; AAD = object id, chunk index, header)
//!       ─ stripe = header ‖ ciphertext ‖ tag ‖ zero padding to a multiple of k
//!       ─ Reed-Solomon k + m over the stripe's k equal parts
//!       ─ piece i = piece header (object id, chunk index, shard i, k, m, BLAKE3-128) ‖ part i
//! ```
//!
//! Owns: the stripe and piece formats (documented in `docs/format/zstor.md`), the kernels
//! chosen for each step, and buffer reuse: [`ChunkEncoder`] and [`ChunkDecoder`] keep their
//! buffers between chunks, so steady-state streaming allocates nothing. Must not touch:
//! files, backends, metadata or placement — callers feed chunks and route pieces.
//!
//! Chunk size: [`DEFAULT_CHUNK_SIZE`] is 4 MiB. Pieces are then `4 MiB / k` (1 MiB at k = 4,
//! 512 KiB at k = 8), big enough that zdb's per-request cost is negligible and small enough
//! that even k = 1 stays under zdb's 8 MiB value limit for incompressible data; one chunk in
//! flight costs about `(2 + n/k) × 4 MiB` of buffers, so a few chunks in flight per file stay
//! far below the 256 MiB budget.

mod compress;
mod decode;
mod encode;
mod key;
mod piece;
mod regen;

pub use compress::Compression;
pub use decode::ChunkDecoder;
pub use encode::ChunkEncoder;
pub use key::DataKey;
pub use piece::{PieceHeader, PIECE_HEADER_LEN};
pub use regen::regenerate;

use crate::Error;

/// Default chunk size: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;
/// Largest chunk size accepted (the stripe header stores lengths in 32 bits; zdb values are
/// limited to 8 MiB, and this keeps pieces under that for k >= 8).
pub const MAX_CHUNK_SIZE: usize = 64 << 20;
/// Object ids are 16 random bytes.
pub type ObjectId = [u8; 16];

/// Bytes of the stripe header before the ciphertext: encoding (1), reserved (3), plaintext
/// length (4), sealed length (4), nonce (12).
pub(crate) const STRIPE_HEADER_LEN: usize = 24;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Domain separation for the chunk AAD.
pub(crate) const CHUNK_AAD_DOMAIN: &[u8; 14] = b"zstor/chunk/v1";

/// The code and chunking of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecParams {
    /// Data shards (`k`, 1..=255).
    pub k: usize,
    /// Parity shards (`m`, 0..; `k + m <= 255`).
    pub m: usize,
    /// Compression applied to each chunk.
    pub compression: Compression,
    /// Plaintext bytes per chunk (the last chunk may be shorter).
    pub chunk_size: usize,
}

impl CodecParams {
    /// `k + m`.
    pub fn n(&self) -> usize {
        self.k + self.m
    }

    /// Check the parameters are usable.
    pub fn check(&self) -> Result<(), Error> {
        if self.k == 0 || self.n() > crate::config::MAX_SHARDS {
            return Err(Error::InvalidCode(format!(
                "k = {}, m = {}: need 1 <= k and k + m <= {}",
                self.k,
                self.m,
                crate::config::MAX_SHARDS
            )));
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::InvalidCode(format!(
                "chunk size {} outside 1..={MAX_CHUNK_SIZE}",
                self.chunk_size
            )));
        }
        Ok(())
    }
}

/// The associated data binding a chunk to its object and position.
pub(crate) fn chunk_aad(object_id: &ObjectId, index: u64, header: &[u8]) -> [u8; 50] {
    let mut aad = [0u8; 50];
    aad[..14].copy_from_slice(CHUNK_AAD_DOMAIN);
    aad[14..30].copy_from_slice(object_id);
    aad[30..38].copy_from_slice(&index.to_le_bytes());
    aad[38..50].copy_from_slice(&header[..12]);
    aad
}

#[cfg(test)]
mod tests;
