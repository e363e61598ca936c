//! Metadata encoding, keys, dispersal and failures.

use super::*;
use proptest::prelude::*;

fn sample(chunks: u64) -> ObjectMeta {
    let chunk_size = 4u32 << 20;
    ObjectMeta {
        version: META_VERSION,
        object_id: [3; 16],
        checksum: blake2b_128(b"x"),
        size: chunks * u64::from(chunk_size) - 5,
        chunk_size,
        k: 4,
        m: 2,
        compression: Compression::Snappy,
        encryption: EncryptionAlgorithm::Aes256Gcm,
        shards: (0..6)
            .map(|i| ShardMeta {
                index: i,
                backend: BackendRef {
                    address: format!("127.0.0.1:{}", 9900 + u16::from(i)),
                    namespace: Some("data".into()),
                },
                keys: (0..chunks).map(|c| c * 3 + u64::from(i)).collect(),
                checksum: [i; 16],
            })
            .collect(),
    }
}

#[test]
fn binary_round_trip_and_validation() {
    let m = sample(10);
    let bytes = m.to_bytes().unwrap();
    assert_eq!(&bytes[..4], b"ZSM1");
    assert_eq!(ObjectMeta::from_bytes(&bytes).unwrap(), m);
    assert!(ObjectMeta::from_bytes(b"nope").is_err());
    assert!(ObjectMeta::from_bytes(&bytes[..bytes.len() - 3]).is_err());
    let mut wrong = m.clone();
    wrong.shards[2].keys.pop();
    assert!(matches!(
        ObjectMeta::from_bytes(&wrong.to_bytes().unwrap()),
        Err(Error::Meta(_))
    ));
    let mut future = m.clone();
    future.version = 2;
    let err = ObjectMeta::from_bytes(&future.to_bytes().unwrap()).unwrap_err();
    assert!(err.to_string().contains("unsupported version 2"), "{err}");
}

#[test]
fn empty_file_has_no_chunks() {
    let mut m = sample(1);
    m.size = 0;
    for s in &mut m.shards {
        s.keys.clear();
    }
    assert_eq!(m.chunk_count(), 0);
    m.validate().unwrap();
}

#[test]
fn key_strips_root() {
    let (key, hash) = meta_key(
        "pre",
        Some(Path::new("/virtualroot")),
        Path::new("/virtualroot/a/b.txt"),
    );
    assert_eq!(
        key,
        format!("/pre/meta/{}", hex::encode(blake2b_128(b"a/b.txt")))
    );
    assert_eq!(hash, blake2b_128(b"a/b.txt"));
    let (outside, _) = meta_key(
        "pre",
        Some(Path::new("/virtualroot")),
        Path::new("/other/a"),
    );
    assert_eq!(
        outside,
        format!("/pre/meta/{}", hex::encode(blake2b_128(b"/other/a")))
    );
    let (noroot, _) = meta_key("pre", None, Path::new("/x"));
    assert_eq!(
        noroot,
        format!("/pre/meta/{}", hex::encode(blake2b_128(b"/x")))
    );
}

#[test]
fn any_two_of_four_pieces_rebuild_it() {
    let codec = MetaCodec::new(DataKey::new([1; 32]));
    let m = sample(300);
    let hash = blake2b_128(b"path");
    let pieces = codec.seal(hash, &m).unwrap();
    for a in 0..4 {
        for b in (a + 1)..4 {
            let mut given: Vec<Option<&[u8]>> = vec![None; 4];
            given[a] = Some(&pieces[a]);
            given[b] = Some(&pieces[b]);
            assert_eq!(codec.open(hash, &given).unwrap(), m, "pieces {a},{b}");
        }
    }
    let one: Vec<Option<&[u8]>> = vec![Some(&pieces[0]), None, None, None];
    assert!(matches!(
        codec.open(hash, &one),
        Err(Error::TooFewPieces {
            available: 1,
            needed: 2
        })
    ));
}

#[test]
fn wrong_meta_key_or_path_fails_cleanly() {
    let m = sample(2);
    let hash = blake2b_128(b"path");
    let pieces = MetaCodec::new(DataKey::new([1; 32]))
        .seal(hash, &m)
        .unwrap();
    let all: Vec<Option<&[u8]>> = pieces.iter().map(|p| Some(p.as_slice())).collect();
    let err = MetaCodec::new(DataKey::new([2; 32]))
        .open(hash, &all)
        .unwrap_err();
    assert_eq!(err.to_string(), "decryption failed");
    // pieces of another path are rejected by their headers
    let other = MetaCodec::new(DataKey::new([1; 32])).open(blake2b_128(b"other"), &all);
    assert!(matches!(
        other,
        Err(Error::TooFewPieces { available: 0, .. })
    ));
}

#[test]
fn metadata_is_not_readable_on_a_backend() {
    let m = sample(2);
    let pieces = MetaCodec::new(DataKey::new([1; 32]))
        .seal([0; 16], &m)
        .unwrap();
    for p in &pieces {
        assert!(!p.windows(9).any(|w| w == b"127.0.0.1"));
    }
}

proptest! {
    /// Any consistent record survives encode → seal → open with any 2 pieces.
    #[test]
    fn random_records_round_trip(
        chunks in 0u64..50,
        k in 1u8..=8,
        m in 0u8..=4,
        seed in any::<u64>(),
        ns in proptest::option::of("[a-z]{1,8}"),
        drop_a in 0usize..4,
        drop_b in 0usize..4,
    ) {
        let chunk_size = 1u32 << 16;
        let mut object_id = [0u8; 16];
        object_id[..8].copy_from_slice(&seed.to_le_bytes());
        let meta = ObjectMeta {
            version: META_VERSION,
            object_id,
            checksum: blake2b_128(&seed.to_le_bytes()),
            size: chunks * u64::from(chunk_size),
            chunk_size,
            k,
            m,
            compression: Compression::Lz4,
            encryption: EncryptionAlgorithm::Aes256Gcm,
            shards: (0..k + m)
                .map(|i| ShardMeta {
                    index: i,
                    backend: BackendRef { address: format!("[::1]:{}", 9000 + u16::from(i)), namespace: ns.clone() },
                    keys: (0..chunks).map(|c| seed.wrapping_add(c * 977 + u64::from(i))).collect(),
                    checksum: [i; 16],
                })
                .collect(),
        };
        prop_assert_eq!(ObjectMeta::from_bytes(&meta.to_bytes().unwrap()).unwrap(), meta.clone());
        let codec = MetaCodec::new(DataKey::new([5; 32]));
        let pieces = codec.seal([1; 16], &meta).unwrap();
        let mut given: Vec<Option<&[u8]>> = pieces.iter().map(|p| Some(p.as_slice())).collect();
        given[drop_a] = None;
        given[drop_b] = None;
        prop_assert_eq!(codec.open([1; 16], &given).unwrap(), meta);
    }
}
