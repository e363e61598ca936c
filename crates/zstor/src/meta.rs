//! The per-file metadata record: what is needed to find, check and rebuild a stored file.
//!
//! Owns: [`ObjectMeta`] and its versioned binary encoding (`"ZSM1"` ‖ postcard), its
//! encryption with the *metadata* key and 2+2 dispersal ([`MetaCodec`]: the same chunk codec
//! as data, one chunk, k = 2, m = 2, object id = the path hash, so any 2 of the 4 metadata
//! backends give it back and a wrong key is [`Error::DecryptionFailed`]), and the storage key
//! [`meta_key`]. Must not touch: backends (callers store piece `i` on metadata backend `i`),
//! the data pipeline's buffers, or the config file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hash::{blake2b_128, Digest128};
use crate::pipeline::{
    ChunkDecoder, ChunkEncoder, CodecParams, Compression, DataKey, ObjectId, MAX_CHUNK_SIZE,
};
use crate::Error;

/// Current metadata format version.
pub const META_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"ZSM1";
/// The metadata code: 2 data + 2 parity pieces over the 4 metadata backends.
pub const META_PARAMS: CodecParams = CodecParams {
    k: 2,
    m: 2,
    compression: Compression::Snappy,
    chunk_size: MAX_CHUNK_SIZE,
};

/// The key recorded for a piece that was never written: its backend was down or failed
/// while the object was stored (a degraded write). Never a real id (zdb's sequential ids
/// are 32-bit); repair writes the piece and records its id in its place. A reader that
/// does not know this value asks for it and finds it absent, which is what it is.
pub const MISSING_PIECE: u64 = u64::MAX;

/// Encryption algorithm of an object (only AES-256-GCM today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncryptionAlgorithm {
    /// AES-256-GCM, random 96-bit nonce per chunk.
    Aes256Gcm,
}

/// Where a shard lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BackendRef {
    /// `host:port`.
    pub address: String,
    /// zdb namespace (`None`: the server default).
    pub namespace: Option<String>,
}

/// One shard of a file: piece `index` of every chunk, on one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// Shard index, `0..k` data, `k..k+m` parity.
    pub index: u8,
    /// Backend holding every piece of this shard.
    pub backend: BackendRef,
    /// zdb sequential key of the piece of chunk `c` at position `c`
    /// ([`MISSING_PIECE`] where it was never written).
    pub keys: Vec<u64>,
    /// BLAKE3-128 over the concatenated 16-byte checksums of the shard's pieces, in chunk
    /// order (see [`shard_checksum`]).
    pub checksum: Digest128,
}

/// Everything needed to rebuild a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Format version ([`META_VERSION`]).
    pub version: u16,
    /// Random id bound into every chunk's AAD and piece header.
    pub object_id: ObjectId,
    /// blake2b-128 of the file (`b2sum -l 128`).
    pub checksum: Digest128,
    /// File size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Data shards.
    pub k: u8,
    /// Parity shards.
    pub m: u8,
    /// Compression requested (a chunk may still be stored raw).
    pub compression: Compression,
    /// Encryption algorithm.
    pub encryption: EncryptionAlgorithm,
    /// `k + m` shards, in index order.
    pub shards: Vec<ShardMeta>,
}

/// The per-shard checksum from the pieces' own checksums, in chunk order.
pub fn shard_checksum<'a>(piece_checksums: impl IntoIterator<Item = &'a Digest128>) -> Digest128 {
    let mut h = blake3::Hasher::new();
    for c in piece_checksums {
        h.update(c);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

impl ObjectMeta {
    /// The codec parameters of this object.
    pub fn params(&self) -> CodecParams {
        CodecParams {
            k: self.k as usize,
            m: self.m as usize,
            compression: self.compression,
            chunk_size: self.chunk_size as usize,
        }
    }

    /// Number of chunks (0 for an empty file).
    pub fn chunk_count(&self) -> u64 {
        match self.chunk_size {
            0 => 0,
            cs => self.size.div_ceil(u64::from(cs)),
        }
    }

    /// Pieces recorded as never written ([`MISSING_PIECE`]).
    pub fn missing_pieces(&self) -> usize {
        self.shards
            .iter()
            .flat_map(|s| &s.keys)
            .filter(|&&k| k == MISSING_PIECE)
            .count()
    }

    /// Check internal consistency (after decoding untrusted bytes, before use).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Meta(why));
        if self.version != META_VERSION {
            return bad(format!("unsupported version {}", self.version));
        }
        self.params().check()?;
        if self.shards.len() != self.k as usize + self.m as usize {
            return bad(format!(
                "{} shards listed for a {}+{} code",
                self.shards.len(),
                self.k,
                self.m
            ));
        }
        let chunks = self.chunk_count();
        for (i, s) in self.shards.iter().enumerate() {
            if s.index as usize != i {
                return bad(format!("shard {i} is listed with index {}", s.index));
            }
            if s.keys.len() as u64 != chunks {
                return bad(format!(
                    "shard {i} lists {} keys for {chunks} chunks",
                    s.keys.len()
                ));
            }
        }
        // A degraded write still wrote at least k + 1 pieces of every chunk; fewer than k
        // could never be read back.
        for c in 0..self.shards.first().map_or(0, |s| s.keys.len()) {
            let written = self
                .shards
                .iter()
                .filter(|s| s.keys[c] != MISSING_PIECE)
                .count();
            if written < self.k as usize {
                return bad(format!(
                    "chunk {c} has {written} pieces written, {} needed",
                    self.k
                ));
            }
        }
        Ok(())
    }

    /// `"ZSM1"` ‖ postcard(self).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = MAGIC.to_vec();
        postcard::to_io(self, &mut out).map_err(|e| Error::Meta(format!("encode: {e}")))?;
        Ok(out)
    }

    /// Inverse of [`ObjectMeta::to_bytes`], validated.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| Error::Meta("not a zstor metadata record".into()))?;
        let (version, _) = postcard::take_from_bytes::<u16>(body)
            .map_err(|e| Error::Meta(format!("decode: {e}")))?;
        if version != META_VERSION {
            return Err(Error::Meta(format!("unsupported version {version}")));
        }
        let meta: Self =
            postcard::from_bytes(body).map_err(|e| Error::Meta(format!("decode: {e}")))?;
        meta.validate()?;
        Ok(meta)
    }
}

/// The storage key of a file's metadata: `/{prefix}/meta/{hex(blake2b-128(path))}`, where
/// `path` has `root` stripped when it lies under it. Also returns the path hash, which is
/// the metadata's object id.
pub fn meta_key(prefix: &str, root: Option<&Path>, path: &Path) -> (String, Digest128) {
    let rel = root.and_then(|r| path.strip_prefix(r).ok()).unwrap_or(path);
    let hash = blake2b_128(rel.as_os_str().as_encoded_bytes());
    (format!("/{prefix}/meta/{}", hex::encode(hash)), hash)
}

/// Encrypts and disperses metadata records (2+2), and back.
pub struct MetaCodec {
    key: DataKey,
}

impl MetaCodec {
    /// A codec under the metadata key.
    pub fn new(key: DataKey) -> Self {
        Self { key }
    }

    /// The 4 pieces of `meta`, piece `i` for metadata backend `i`.
    pub fn seal(&self, path_hash: Digest128, meta: &ObjectMeta) -> Result<[Vec<u8>; 4], Error> {
        let blob = meta.to_bytes()?;
        if blob.len() > MAX_CHUNK_SIZE {
            return Err(Error::Meta(format!(
                "record of {} bytes exceeds {MAX_CHUNK_SIZE}",
                blob.len()
            )));
        }
        let mut enc = ChunkEncoder::new(META_PARAMS, &self.key, path_hash)?;
        let pieces = enc.encode(0, &blob)?;
        let piece = |i: usize| pieces.get(i).map(<[u8]>::to_vec).unwrap_or_default();
        Ok([piece(0), piece(1), piece(2), piece(3)])
    }

    /// The record from any 2 intact pieces (`pieces[i]` from metadata backend `i`).
    pub fn open(
        &self,
        path_hash: Digest128,
        pieces: &[Option<&[u8]>],
    ) -> Result<ObjectMeta, Error> {
        let mut dec = ChunkDecoder::new(META_PARAMS, &self.key, path_hash)?;
        ObjectMeta::from_bytes(dec.decode(0, pieces)?)
    }
}

#[cfg(test)]
#[path = "meta_tests.rs"]
mod tests;
