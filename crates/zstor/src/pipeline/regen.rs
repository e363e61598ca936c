//! Regenerating lost pieces for repair: from any `k` intact pieces of a chunk, every piece of
//! that chunk, byte-identical to what the encoder wrote (same stripe, same Reed-Solomon
//! parts, same headers), so the shard checksums in the metadata stay valid. No decryption
//! happens here: callers authenticate the chunk with [`super::ChunkDecoder`] first.

use super::encode::rs_codec;
use super::piece::{PieceHeader, PIECE_HEADER_LEN};
use super::{CodecParams, ObjectId};
use crate::Error;

/// All `k + m` pieces of chunk `chunk` of `object_id`, from `pieces[i]` = shard `i`'s piece
/// (`None` when missing; pieces failing their check are ignored).
pub fn regenerate(
    params: &CodecParams,
    object_id: ObjectId,
    chunk: u64,
    pieces: &[Option<&[u8]>],
) -> Result<Vec<Vec<u8>>, Error> {
    let (k, n) = (params.k, params.n());
    let header = |i: usize| PieceHeader {
        object_id,
        chunk,
        shard: i as u8,
        k: k as u8,
        m: params.m as u8,
    };
    let mut parts: Vec<Option<Vec<u8>>> = (0..n)
        .map(|i| {
            let piece = pieces.get(i).copied().flatten()?;
            header(i).verify(piece).map(<[u8]>::to_vec)
        })
        .collect();
    let mut lens = parts.iter().flatten().map(Vec::len);
    let len = lens.next().unwrap_or(0);
    let valid = parts.iter().flatten().count();
    if valid < k || lens.any(|l| l != len) {
        return Err(Error::TooFewPieces {
            available: valid,
            needed: k,
        });
    }
    if valid < n {
        let rs = rs_codec(params)?.ok_or(Error::TooFewPieces {
            available: valid,
            needed: n,
        })?;
        rs.reconstruct(&mut parts)
            .map_err(|e| Error::InvalidCode(format!("Reed-Solomon reconstruct: {e:?}")))?;
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let part = part.ok_or_else(|| Error::Internal("shard not reconstructed".into()))?;
            let mut piece = vec![0u8; PIECE_HEADER_LEN];
            piece.extend_from_slice(&part);
            header(i).write(&mut piece);
            Ok(piece)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{ChunkEncoder, Compression, DataKey};

    #[test]
    fn regenerated_pieces_are_identical() {
        let params = CodecParams {
            k: 4,
            m: 2,
            compression: Compression::Snappy,
            chunk_size: 1 << 16,
        };
        let key = DataKey::from_hex(&"11".repeat(32)).expect("key");
        let mut enc = ChunkEncoder::new(params, &key, [7; 16]).expect("encoder");
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let pieces: Vec<Vec<u8>> = enc
            .encode(3, &data)
            .expect("encode")
            .iter()
            .map(<[u8]>::to_vec)
            .collect();
        let mut given: Vec<Option<&[u8]>> = pieces.iter().map(|p| Some(&p[..])).collect();
        given[0] = None;
        given[5] = None;
        let mut rotten = pieces[2].clone();
        rotten[60] ^= 1;
        given[2] = Some(&rotten);
        let all = regenerate(&params, [7; 16], 3, &given);
        assert!(matches!(all, Err(Error::TooFewPieces { available: 3, .. })));
        given[2] = Some(&pieces[2]);
        assert_eq!(
            regenerate(&params, [7; 16], 3, &given).expect("regen"),
            pieces
        );
    }
}
