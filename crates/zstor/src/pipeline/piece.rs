//! The piece: one shard's part of one chunk, as stored on a backend. It carries enough to
//! recognise itself (object, chunk, shard, code) and a checksum, so bitrot or a stray value
//! at a reused key is detected before decoding and the piece is treated as missing.
//!
//! ```text
//! 0  magic "ZSP1"        4  version (1)   5  shard index   6  k   7  m
//! 8  object id (16)      24 chunk index (u64 LE)           32 payload length (u32 LE)
//! 36 reserved (0, 4)     40 BLAKE3-128 of bytes 0..40 ‖ payload (16)      56 payload
//! ```

use super::ObjectId;
use crate::hash::blake3_128;

/// Bytes before the payload.
pub const PIECE_HEADER_LEN: usize = 56;
const MAGIC: &[u8; 4] = b"ZSP1";
const VERSION: u8 = 1;

/// The identifying fields of a piece header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceHeader {
    /// Object the piece belongs to.
    pub object_id: ObjectId,
    /// Chunk number within the object.
    pub chunk: u64,
    /// Shard index (0..k are data, k..k+m parity).
    pub shard: u8,
    /// Data shards of the code.
    pub k: u8,
    /// Parity shards of the code.
    pub m: u8,
}

impl PieceHeader {
    /// Write the header (with checksum) in front of `piece[PIECE_HEADER_LEN..]`.
    pub(crate) fn write(&self, piece: &mut [u8]) {
        let payload_len = (piece.len() - PIECE_HEADER_LEN) as u32;
        let h = &mut piece[..PIECE_HEADER_LEN];
        h[..4].copy_from_slice(MAGIC);
        h[4] = VERSION;
        h[5] = self.shard;
        h[6] = self.k;
        h[7] = self.m;
        h[8..24].copy_from_slice(&self.object_id);
        h[24..32].copy_from_slice(&self.chunk.to_le_bytes());
        h[32..36].copy_from_slice(&payload_len.to_le_bytes());
        h[36..40].fill(0);
        let sum = blake3_128(&[&piece[..40], &piece[PIECE_HEADER_LEN..]]);
        piece[40..PIECE_HEADER_LEN].copy_from_slice(&sum);
    }

    /// The payload of `piece` if it is intact and is exactly the piece `self` describes.
    pub fn verify<'a>(&self, piece: &'a [u8]) -> Option<&'a [u8]> {
        if piece.len() < PIECE_HEADER_LEN {
            return None;
        }
        let (h, payload) = piece.split_at(PIECE_HEADER_LEN);
        let len = u32::from_le_bytes(h[32..36].try_into().ok()?) as usize;
        let ok = &h[..4] == MAGIC
            && h[4] == VERSION
            && h[5] == self.shard
            && h[6] == self.k
            && h[7] == self.m
            && h[8..24] == self.object_id
            && h[24..32] == self.chunk.to_le_bytes()
            && len == payload.len()
            && h[40..56] == blake3_128(&[&h[..40], payload]);
        ok.then_some(payload)
    }

    /// The checksum stored in an (unverified) piece, if it is long enough.
    pub fn stored_checksum(piece: &[u8]) -> Option<[u8; 16]> {
        piece.get(40..PIECE_HEADER_LEN)?.try_into().ok()
    }
}
