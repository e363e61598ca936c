//! Codec round trips, erasures, corruption and bad keys (unit and property tests).

use super::*;
use proptest::prelude::*;

const KEY: [u8; 32] = [7; 32];
const OID: ObjectId = [9; 16];

fn params(k: usize, m: usize, compression: Compression, chunk_size: usize) -> CodecParams {
    CodecParams {
        k,
        m,
        compression,
        chunk_size,
    }
}

fn encode(p: CodecParams, index: u64, data: &[u8]) -> Vec<Vec<u8>> {
    let mut enc = ChunkEncoder::new(p, &DataKey::new(KEY), OID).unwrap();
    let pieces = enc.encode(index, data).unwrap();
    pieces.iter().map(<[u8]>::to_vec).collect()
}

fn decode(
    p: CodecParams,
    key: [u8; 32],
    index: u64,
    pieces: &[Option<Vec<u8>>],
) -> Result<Vec<u8>, Error> {
    let mut dec = ChunkDecoder::new(p, &DataKey::new(key), OID)?;
    let refs: Vec<Option<&[u8]>> = pieces.iter().map(|p| p.as_deref()).collect();
    dec.decode(index, &refs).map(<[u8]>::to_vec)
}

fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

#[test]
fn round_trip_every_compression() {
    for c in [
        Compression::None,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let p = params(4, 2, c, 1 << 16);
        let data = text(50_000);
        let pieces = encode(p, 3, &data);
        assert_eq!(pieces.len(), 6);
        if c != Compression::None {
            // compressible text shrinks
            assert!(pieces[0].len() < 50_000 / 4, "{c:?}");
        }
        let got = decode(p, KEY, 3, &pieces.into_iter().map(Some).collect::<Vec<_>>()).unwrap();
        assert_eq!(got, data, "{c:?}");
    }
}

#[test]
fn incompressible_chunks_skip_compression_and_mixed_ones_keep_it() {
    use rand::{RngCore, SeedableRng};
    let mut random = vec![0u8; 1 << 20];
    rand::rngs::StdRng::seed_from_u64(3).fill_bytes(&mut random);
    // Random where sampled, text in between: a wrong guess (stored raw) still round-trips.
    let mut mixed = random.clone();
    mixed[(16 << 10)..(500 << 10)].copy_from_slice(&text(484 << 10));
    for c in [Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let p = params(4, 2, c, 1 << 20);
        let mut enc = ChunkEncoder::new(p, &DataKey::new(KEY), OID).unwrap();
        assert!(enc.looks_incompressible(c, &random).unwrap(), "{c:?}");
        assert!(
            !enc.looks_incompressible(c, &text(1 << 20)).unwrap(),
            "{c:?}"
        );
        for data in [&random, &mixed] {
            let pieces = encode(p, 1, data);
            let all = pieces.into_iter().map(Some).collect::<Vec<_>>();
            assert_eq!(&decode(p, KEY, 1, &all).unwrap(), data, "{c:?}");
        }
    }
}

#[test]
fn wrong_key_is_a_clean_error() {
    let p = params(2, 1, Compression::Snappy, 4096);
    let pieces: Vec<_> = encode(p, 0, &text(3000)).into_iter().map(Some).collect();
    let err = decode(p, [8; 32], 0, &pieces).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed));
    assert_eq!(err.to_string(), "decryption failed");
}

#[test]
fn chunks_cannot_be_swapped() {
    let p = params(2, 1, Compression::Snappy, 4096);
    let pieces = encode(p, 5, &text(3000));
    // Asking for chunk 6 with chunk 5's pieces: every piece is rejected by its header.
    let all: Vec<_> = pieces.iter().cloned().map(Some).collect();
    assert!(matches!(
        decode(p, KEY, 6, &all),
        Err(Error::TooFewPieces {
            available: 0,
            needed: 2
        })
    ));
    // Another object id: rejected too.
    let mut dec = ChunkDecoder::new(p, &DataKey::new(KEY), [1; 16]).unwrap();
    let refs: Vec<_> = pieces.iter().map(|p| Some(p.as_slice())).collect();
    assert!(dec.decode(5, &refs).is_err());
    assert_eq!(dec.bad_pieces(), &[0, 1, 2]);
}

#[test]
fn tampering_with_a_rechecksummed_piece_fails_decryption() {
    // An attacker who rewrites a piece *and* its checksum is caught by AES-GCM.
    let p = params(2, 0, Compression::None, 4096);
    let mut pieces = encode(p, 0, &text(1000));
    pieces[0][PIECE_HEADER_LEN + 30] ^= 1;
    let h = PieceHeader {
        object_id: OID,
        chunk: 0,
        shard: 0,
        k: 2,
        m: 0,
    };
    h.write(&mut pieces[0]);
    let all: Vec<_> = pieces.into_iter().map(Some).collect();
    assert!(matches!(
        decode(p, KEY, 0, &all),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn oversize_chunk_and_bad_params_are_errors() {
    let p = params(2, 1, Compression::Snappy, 100);
    let mut enc = ChunkEncoder::new(p, &DataKey::new(KEY), OID).unwrap();
    assert!(matches!(
        enc.encode(0, &[0; 101]),
        Err(Error::ChunkTooLarge { .. })
    ));
    assert!(ChunkEncoder::new(
        params(0, 1, Compression::Snappy, 100),
        &DataKey::new(KEY),
        OID
    )
    .is_err());
    assert!(ChunkEncoder::new(
        params(200, 100, Compression::Snappy, 100),
        &DataKey::new(KEY),
        OID
    )
    .is_err());
    let mut dec = ChunkDecoder::new(p, &DataKey::new(KEY), OID).unwrap();
    assert!(matches!(dec.decode(0, &[None]), Err(Error::InvalidCode(_))));
}

#[test]
fn buffers_are_reused_between_chunks() {
    let p = params(4, 2, Compression::Snappy, 1 << 20);
    let mut enc = ChunkEncoder::new(p, &DataKey::new(KEY), OID).unwrap();
    let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let first: Vec<*const u8> = enc
        .encode(0, &data)
        .unwrap()
        .iter()
        .map(<[u8]>::as_ptr)
        .collect();
    for i in 1..4 {
        let again: Vec<*const u8> = enc
            .encode(i, &data)
            .unwrap()
            .iter()
            .map(<[u8]>::as_ptr)
            .collect();
        assert_eq!(first, again);
    }
}

fn arb_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        any::<u8>().prop_map(|b| vec![b]),
        prop::collection::vec(any::<u8>(), 2..3000),
        (1usize..5000).prop_map(text),
    ]
}

fn arb_compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Multi-chunk objects through one encoder/decoder pair, with up to m erasures and up to m
    /// corrupted pieces per chunk in total: exact bytes back. More than m: a clean error.
    #[test]
    fn round_trip_with_erasures_and_corruption(
        data in arb_data(),
        chunk_size in prop_oneof![Just(1usize), 7usize..700, Just(4096)],
        k in 1usize..=8,
        m in 0usize..=4,
        compression in arb_compression(),
        seed in any::<u64>(),
        extra in 0usize..=2,
    ) {
        let p = params(k, m, compression, chunk_size);
        let n = k + m;
        let mut enc = ChunkEncoder::new(p, &DataKey::new(KEY), OID).unwrap();
        let mut dec = ChunkDecoder::new(p, &DataKey::new(KEY), OID).unwrap();
        let mut rng = seed;
        let mut next = move || { rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (rng >> 33) as usize };
        let chunks: Vec<&[u8]> = if data.is_empty() { vec![&data[..]] } else { data.chunks(chunk_size).collect() };
        let mut out = Vec::new();
        for (ci, chunk) in chunks.iter().enumerate() {
            let mut pieces: Vec<Option<Vec<u8>>> =
                enc.encode(ci as u64, chunk).unwrap().iter().map(|p| Some(p.to_vec())).collect();
            // `lost` pieces go bad: some erased, some corrupted (one flipped bit anywhere).
            let lost = (next() % (m + 1)) + if next() % 4 == 0 { extra } else { 0 };
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() { order.swap(i, next() % (i + 1)); }
            for &victim in order.iter().take(lost.min(n)) {
                if next() % 2 == 0 {
                    pieces[victim] = None;
                } else if let Some(piece) = pieces[victim].as_mut() {
                    let at = next() % piece.len();
                    piece[at] ^= 1 << (next() % 8);
                }
            }
            let refs: Vec<Option<&[u8]>> = pieces.iter().map(|p| p.as_deref()).collect();
            match dec.decode(ci as u64, &refs) {
                Ok(bytes) => {
                    prop_assert!(lost <= m);
                    out.extend_from_slice(bytes);
                }
                Err(Error::TooFewPieces { available, needed }) => {
                    prop_assert!(lost > m, "lost {} <= m {}", lost, m);
                    prop_assert_eq!(available, n - lost.min(n));
                    prop_assert_eq!(needed, k);
                    return Ok(());
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }
        prop_assert_eq!(out, data);
    }
}
