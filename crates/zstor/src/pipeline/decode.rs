//! [`ChunkDecoder`]: any `k` intact pieces → the chunk, reusing its buffers. A piece that
//! fails its checksum or does not describe itself as the expected shard is treated as
//! missing; a wrong key or tampered ciphertext gives [`Error::DecryptionFailed`].

use aws_lc_rs::aead::{Aad, Nonce};

use super::compress::Compression;
use super::encode::ObjectCodec;
use super::piece::PieceHeader;
use super::{chunk_aad, CodecParams, DataKey, ObjectId, STRIPE_HEADER_LEN, TAG_LEN};
use crate::config::MAX_SHARDS;
use crate::Error;

/// Decodes the chunks of one object.
pub struct ChunkDecoder {
    obj: ObjectCodec,
    work: Vec<(Vec<u8>, bool)>,
    out: Vec<u8>,
    /// Where the last decoded chunk is: in `stripe` (stored raw) or in `out`, and its length.
    last: (bool, usize),
    bad: Vec<usize>,
}

fn u32_at(b: &[u8], at: usize) -> usize {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x) as usize
}

impl ChunkDecoder {
    /// A decoder for object `object_id` under `key`.
    pub fn new(params: CodecParams, key: &DataKey, object_id: ObjectId) -> Result<Self, Error> {
        Ok(Self {
            obj: ObjectCodec::new(params, key, object_id)?,
            work: (0..params.n()).map(|_| (Vec::new(), false)).collect(),
            out: Vec::new(),
            last: (false, 0),
            bad: Vec::new(),
        })
    }

    /// Shard indices whose piece was given but rejected (bitrot, wrong object, wrong chunk) in
    /// the last [`ChunkDecoder::decode`] call: candidates for repair.
    pub fn bad_pieces(&self) -> &[usize] {
        &self.bad
    }

    /// The chunk returned by the last successful [`ChunkDecoder::decode`] (empty before).
    pub fn output(&self) -> &[u8] {
        match self.last {
            (true, len) => &self.obj.stripe[STRIPE_HEADER_LEN..STRIPE_HEADER_LEN + len],
            (false, len) => &self.out[..len],
        }
    }

    /// Decode chunk `index` from `pieces[i]` = shard `i`'s piece, `None` when missing.
    pub fn decode(&mut self, index: u64, pieces: &[Option<&[u8]>]) -> Result<&[u8], Error> {
        let p = self.obj.params;
        let n = p.n();
        if pieces.len() != n {
            return Err(Error::InvalidCode(format!(
                "{} pieces given for a {}+{} code",
                pieces.len(),
                p.k,
                p.m
            )));
        }
        self.bad.clear();
        self.last = (false, 0);
        let mut payloads: [Option<&[u8]>; MAX_SHARDS] = [None; MAX_SHARDS];
        let mut shard_len = None;
        let mut valid = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let Some(piece) = piece else { continue };
            let header = PieceHeader {
                object_id: self.obj.object_id,
                chunk: index,
                shard: i as u8,
                k: p.k as u8,
                m: p.m as u8,
            };
            match header.verify(piece) {
                Some(payload) if shard_len.is_none_or(|l| l == payload.len()) => {
                    shard_len = Some(payload.len());
                    payloads[i] = Some(payload);
                    valid += 1;
                }
                _ => self.bad.push(i),
            }
        }
        if valid < p.k {
            return Err(Error::TooFewPieces {
                available: valid,
                needed: p.k,
            });
        }
        let shard_len = shard_len.unwrap_or(0);
        self.obj.stripe.clear();
        if payloads[..p.k].iter().all(Option::is_some) {
            for payload in payloads[..p.k].iter().flatten() {
                self.obj.stripe.extend_from_slice(payload);
            }
        } else {
            let rs = self.obj.rs.as_ref().ok_or(Error::TooFewPieces {
                available: valid,
                needed: p.k,
            })?;
            for (w, payload) in self.work.iter_mut().zip(&payloads[..n]) {
                w.0.clear();
                match payload {
                    Some(bytes) => w.0.extend_from_slice(bytes),
                    None => w.0.resize(shard_len, 0),
                }
                w.1 = payload.is_some();
            }
            rs.reconstruct_data(&mut self.work)
                .map_err(|e| Error::InvalidCode(format!("Reed-Solomon reconstruct: {e:?}")))?;
            for w in &self.work[..p.k] {
                self.obj.stripe.extend_from_slice(&w.0);
            }
        }
        self.open(index)
    }

    /// Decrypt and decompress the stripe now in `self.obj.stripe`.
    fn open(&mut self, index: u64) -> Result<&[u8], Error> {
        if self.obj.stripe.len() < STRIPE_HEADER_LEN + TAG_LEN {
            return Err(Error::CorruptChunk("stripe shorter than its header"));
        }
        let mut header = [0u8; STRIPE_HEADER_LEN];
        header.copy_from_slice(&self.obj.stripe[..STRIPE_HEADER_LEN]);
        let plain_len = u32_at(&header, 4);
        let sealed_len = u32_at(&header, 8);
        if sealed_len < TAG_LEN || STRIPE_HEADER_LEN + sealed_len > self.obj.stripe.len() {
            return Err(Error::DecryptionFailed);
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&header[12..24]);
        let aad = chunk_aad(&self.obj.object_id, index, &header);
        let sealed = &mut self.obj.stripe[STRIPE_HEADER_LEN..STRIPE_HEADER_LEN + sealed_len];
        let body = self
            .obj
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                sealed,
            )
            .map_err(|_| Error::DecryptionFailed)?;
        // Authenticated from here on: a mismatch means a forged key or a bug, not bitrot.
        let algo =
            Compression::from_code(header[0]).ok_or(Error::CorruptChunk("unknown compression"))?;
        if plain_len > self.obj.params.chunk_size {
            return Err(Error::CorruptChunk("chunk longer than the chunk size"));
        }
        if algo == Compression::None {
            if body.len() != plain_len {
                return Err(Error::CorruptChunk("stored length mismatch"));
            }
            self.last = (true, plain_len);
            return Ok(self.output());
        }
        if self.out.len() < plain_len {
            self.out.resize(plain_len, 0);
        }
        self.obj
            .codecs
            .decompress(algo, body, &mut self.out[..plain_len])
            .ok_or(Error::CorruptChunk("decompression failed"))?;
        self.last = (false, plain_len);
        Ok(self.output())
    }
}
