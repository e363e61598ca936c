//! [`ChunkEncoder`]: chunk → `k + m` pieces, reusing its buffers.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};
use rand::RngCore;
use reed_solomon_erasure::galois_8::ReedSolomon;

use super::compress::{Codecs, Compression};
use super::piece::{PieceHeader, PIECE_HEADER_LEN};
use super::{chunk_aad, CodecParams, DataKey, ObjectId, STRIPE_HEADER_LEN, TAG_LEN};
use crate::Error;

/// One piece buffer: header then payload. `AsRef`/`AsMut` expose the payload only, which is
/// what Reed-Solomon codes over.
pub(crate) struct PieceBuf(Vec<u8>);

impl AsRef<[u8]> for PieceBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0[PIECE_HEADER_LEN..]
    }
}

impl AsMut<[u8]> for PieceBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0[PIECE_HEADER_LEN..]
    }
}

/// The pieces of the last encoded chunk; piece `i` goes to shard `i`'s backend.
#[derive(Clone, Copy)]
pub struct Pieces<'a>(&'a [PieceBuf]);

impl<'a> Pieces<'a> {
    /// `k + m`.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Never true for a valid code.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Piece `i` (header and payload), as stored.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.0.get(i).map(|p| p.0.as_slice())
    }
    /// All pieces in shard order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        self.0.iter().map(|p| p.0.as_slice())
    }
}

/// Build the Reed-Solomon codec, or `None` when there is no parity.
pub(crate) fn rs_codec(params: &CodecParams) -> Result<Option<ReedSolomon>, Error> {
    if params.m == 0 {
        return Ok(None);
    }
    ReedSolomon::new(params.k, params.m)
        .map(Some)
        .map_err(|e| Error::InvalidCode(format!("k = {}, m = {}: {e:?}", params.k, params.m)))
}

/// What encoding and decoding one object share: its parameters, AEAD key and id, the
/// Reed-Solomon codec (`None` without parity), the compressors and the stripe buffer.
pub(crate) struct ObjectCodec {
    pub(crate) params: CodecParams,
    pub(crate) key: LessSafeKey,
    pub(crate) object_id: ObjectId,
    pub(crate) rs: Option<ReedSolomon>,
    pub(crate) codecs: Codecs,
    pub(crate) stripe: Vec<u8>,
}

impl ObjectCodec {
    pub(crate) fn new(
        params: CodecParams,
        key: &DataKey,
        object_id: ObjectId,
    ) -> Result<Self, Error> {
        params.check()?;
        let rs = rs_codec(&params)?;
        Ok(Self {
            params,
            key: key.aead(),
            object_id,
            rs,
            codecs: Codecs::new(),
            stripe: Vec::new(),
        })
    }
}

/// Encodes the chunks of one object.
pub struct ChunkEncoder {
    obj: ObjectCodec,
    /// Scratch for compressibility samples.
    probe: Vec<u8>,
    pieces: Vec<PieceBuf>,
    /// Piece buffers handed back by [`ChunkEncoder::recycle`], reused before allocating.
    spare: Vec<Vec<u8>>,
}

impl ChunkEncoder {
    /// An encoder for object `object_id` under `key`.
    pub fn new(params: CodecParams, key: &DataKey, object_id: ObjectId) -> Result<Self, Error> {
        Ok(Self {
            obj: ObjectCodec::new(params, key, object_id)?,
            probe: Vec::new(),
            spare: Vec::new(),
            pieces: (0..params.n()).map(|_| PieceBuf(Vec::new())).collect(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &CodecParams {
        &self.obj.params
    }

    /// Whether three small samples (start, middle, end) of a large chunk all fail to shrink
    /// by 3%: then the whole chunk is stored raw without spending a full compression pass on
    /// it (random or already compressed data). A wrong guess only costs compression ratio.
    pub(super) fn looks_incompressible(
        &mut self,
        algo: Compression,
        plain: &[u8],
    ) -> Result<bool, Error> {
        const SAMPLE: usize = 16 << 10;
        if plain.len() < 16 * SAMPLE {
            return Ok(false);
        }
        let room = algo.max_len(SAMPLE);
        if self.probe.len() < room {
            self.probe.resize(room, 0);
        }
        for at in [0, plain.len() / 2, plain.len() - SAMPLE] {
            let n =
                self.obj
                    .codecs
                    .compress(algo, &plain[at..at + SAMPLE], &mut self.probe[..room])?;
            if n * 100 < SAMPLE * 97 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Encode chunk number `index` (at most `chunk_size` bytes) into `k + m` pieces.
    /// Take piece `i` of the last [`ChunkEncoder::encode`] (header and payload, as stored)
    /// instead of copying it; hand the buffer back with [`ChunkEncoder::recycle`] once sent.
    pub fn take_piece(&mut self, i: usize) -> Vec<u8> {
        self.pieces
            .get_mut(i)
            .map(|p| std::mem::take(&mut p.0))
            .unwrap_or_default()
    }

    /// Return a buffer from [`ChunkEncoder::take_piece`] for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 4 * self.pieces.len().max(1) {
            self.spare.push(buf);
        }
    }

    pub fn encode(&mut self, index: u64, plain: &[u8]) -> Result<Pieces<'_>, Error> {
        let p = self.obj.params;
        if plain.len() > p.chunk_size {
            return Err(Error::ChunkTooLarge {
                len: plain.len(),
                max: p.chunk_size,
            });
        }
        let room = p.compression.max_len(plain.len()).max(plain.len());
        let need = STRIPE_HEADER_LEN + room + TAG_LEN + p.k;
        if self.obj.stripe.len() < need {
            self.obj.stripe.resize(need, 0);
        }

        // Compress, or store raw when that does not pay.
        let mut algo = p.compression;
        if algo != Compression::None && self.looks_incompressible(algo, plain)? {
            algo = Compression::None;
        }
        let body = &mut self.obj.stripe[STRIPE_HEADER_LEN..STRIPE_HEADER_LEN + room];
        let mut len = self.obj.codecs.compress(algo, plain, body)?;
        if algo != Compression::None && len >= plain.len() {
            body[..plain.len()].copy_from_slice(plain);
            len = plain.len();
            algo = Compression::None;
        }

        // Header, then seal in place.
        let sealed_len = len + TAG_LEN;
        let mut header = [0u8; STRIPE_HEADER_LEN];
        header[0] = algo.code();
        header[4..8].copy_from_slice(&(plain.len() as u32).to_le_bytes());
        header[8..12].copy_from_slice(&(sealed_len as u32).to_le_bytes());
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        header[12..24].copy_from_slice(&nonce);
        self.obj.stripe[..STRIPE_HEADER_LEN].copy_from_slice(&header);
        let aad = chunk_aad(&self.obj.object_id, index, &header);
        let tag = self
            .obj
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut self.obj.stripe[STRIPE_HEADER_LEN..STRIPE_HEADER_LEN + len],
            )
            .map_err(|_| Error::InvalidCode("AES-GCM refused the chunk".into()))?;
        let end = STRIPE_HEADER_LEN + len;
        self.obj.stripe[end..end + TAG_LEN].copy_from_slice(tag.as_ref());

        // Split into k equal parts (zero padded) and add parity.
        let total = end + TAG_LEN;
        let shard_len = total.div_ceil(p.k);
        self.obj.stripe[total..p.k * shard_len].fill(0);
        for (i, piece) in self.pieces.iter_mut().enumerate() {
            if piece.0.capacity() == 0 {
                piece.0 = self.spare.pop().unwrap_or_default();
            }
            piece.0.clear();
            piece.0.resize(PIECE_HEADER_LEN, 0);
            if i < p.k {
                piece
                    .0
                    .extend_from_slice(&self.obj.stripe[i * shard_len..(i + 1) * shard_len]);
            } else {
                piece.0.resize(PIECE_HEADER_LEN + shard_len, 0);
            }
        }
        if let Some(rs) = &self.obj.rs {
            let (data, parity) = self.pieces.split_at_mut(p.k);
            rs.encode_sep(data, parity)
                .map_err(|e| Error::InvalidCode(format!("Reed-Solomon encode: {e:?}")))?;
        }
        for (i, piece) in self.pieces.iter_mut().enumerate() {
            PieceHeader {
                object_id: self.obj.object_id,
                chunk: index,
                shard: i as u8,
                k: p.k as u8,
                m: p.m as u8,
            }
            .write(&mut piece.0);
        }
        Ok(Pieces(&self.pieces))
    }
}
