//! Checksums. Files use blake2b with a 16-byte digest (identical to `b2sum -l 128`, as in
//! 0-stor v2); pieces use BLAKE3 truncated to 16 bytes, which is ~5x faster and only ever
//! compared with our own output.

use blake2::digest::consts::U16;
use blake2::{Blake2b, Digest};

/// A 16-byte digest.
pub type Digest128 = [u8; 16];

/// Incremental blake2b-128 (the file checksum, `b2sum -l 128`).
#[derive(Clone, Default)]
pub struct FileHasher(Blake2b<U16>);

impl FileHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
    /// The digest of everything fed.
    pub fn finish(self) -> Digest128 {
        self.0.finalize().into()
    }
}

/// blake2b-128 of `data` in one call.
pub fn blake2b_128(data: &[u8]) -> Digest128 {
    let mut h = FileHasher::new();
    h.update(data);
    h.finish()
}

/// blake2b-128 of the file at `path` (read with direct I/O, the hashing beside the reads).
pub fn file_checksum(path: &std::path::Path) -> std::io::Result<Digest128> {
    let mut r = crate::stream::ChunkReader::open(path, 4 << 20)?;
    while !r.next_chunk()?.is_empty() {}
    r.checksum()
        .ok_or_else(|| std::io::Error::other("file hashing thread failed"))
}

/// BLAKE3 truncated to 16 bytes, over the concatenation of `parts`.
pub fn blake3_128(parts: &[&[u8]]) -> Digest128 {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2b_128_matches_b2sum() {
        // `printf '' | b2sum -l 128` and `printf 'abc' | b2sum -l 128`
        assert_eq!(
            hex::encode(blake2b_128(b"")),
            "cae66941d9efbd404e4d88758ea67670"
        );
        assert_eq!(
            hex::encode(blake2b_128(b"abc")),
            "cf4ab791c62b8d2b2109c90275287816"
        );
    }
}
