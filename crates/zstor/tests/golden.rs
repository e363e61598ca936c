//! Frozen bytes: a metadata record (plaintext encoding and its 4 encrypted, dispersed pieces)
//! and the data pieces of a tiny 3-chunk file, written once by an earlier build
//! (`tests/golden/v1`, see its README), decoded by today's code and checked field by field
//! against `docs/format/zstor.md`. A format change made to both the encoder and the decoder
//! passes the round-trip tests but fails here.
//!
//! Regenerating is NOT a way to make this test pass: see `tests/golden/v1/README.md`.

use std::path::{Path, PathBuf};
use zstor::hash::{blake2b_128, blake3_128};
use zstor::meta::{
    meta_key, shard_checksum, BackendRef, EncryptionAlgorithm, MetaCodec, ObjectMeta, ShardMeta,
    META_VERSION,
};
use zstor::pipeline::{PieceHeader, PIECE_HEADER_LEN};
use zstor::{ChunkDecoder, ChunkEncoder, CodecParams, Compression, DataKey, Error};

const VERSION_DIR: &str = "tests/golden/v1";

/// Test keys, never used anywhere else (the fixture is public).
const DATA_KEY: [u8; 32] = *b"zstor golden v1 data key 32bytes";
const META_KEY: [u8; 32] = *b"zstor golden v1 meta key 32bytes";
const OBJECT_ID: [u8; 16] = *b"golden-object-01";
const PREFIX: &str = "golden";
const ROOT: &str = "/virtualroot";
const PATH: &str = "/virtualroot/golden/file.txt";
/// `/{PREFIX}/meta/{hex(blake2b-128("golden/file.txt"))}`, the hash computed outside this code
/// (Python `hashlib.blake2b(b"golden/file.txt", digest_size=16)`).
const META_KEY_STRING: &str = "/golden/meta/f210261a477a12c9ad81cec1ae2412b8";
/// `b2sum -l 128 tests/golden/v1/file.bin`, computed outside this code.
const FILE_B2SUM: &str = "2d4888bae1da49acdb4a3e07c2e03a75";
const CHUNK_SIZE: u32 = 1024;
const K: u8 = 2;
const M: u8 = 1;
/// Chunks 0 and 2 are text (zstd shrinks them), chunk 1 is noise (stored raw).
const FILE_LEN: usize = 2 * CHUNK_SIZE as usize + 452;
const CHUNKS: u64 = 3;

fn file_content() -> Vec<u8> {
    let text = b"golden fixture text, compressible on purpose. ";
    let mut v: Vec<u8> = text
        .iter()
        .copied()
        .cycle()
        .take(CHUNK_SIZE as usize)
        .collect();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..CHUNK_SIZE {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x >> 7) as u8);
    }
    v.extend(text.iter().copied().cycle().take(452));
    assert_eq!(v.len(), FILE_LEN);
    v
}

fn backend(i: u8) -> BackendRef {
    BackendRef {
        address: format!("10.0.0.{}:9900", i + 1),
        // Shard 1 on the server's default namespace: covers the `None` encoding.
        namespace: (i != 1).then(|| format!("golden-data-{i}")),
    }
}

fn keys(i: u8) -> Vec<u64> {
    (0..CHUNKS).map(|c| 100 * u64::from(i) + c).collect()
}

fn params() -> CodecParams {
    CodecParams {
        k: K as usize,
        m: M as usize,
        compression: Compression::Zstd,
        chunk_size: CHUNK_SIZE as usize,
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(VERSION_DIR)
}

fn read(name: &str) -> Vec<u8> {
    let p = golden_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn piece_name(chunk: u64, shard: u8) -> String {
    format!("data/chunk{chunk}.shard{shard}")
}

/// The expected record, all fields from the constants above; the two checksum fields are
/// computed from the frozen file and the frozen pieces.
fn expected_meta() -> ObjectMeta {
    ObjectMeta {
        version: META_VERSION,
        object_id: OBJECT_ID,
        checksum: blake2b_128(&file_content()),
        size: FILE_LEN as u64,
        chunk_size: CHUNK_SIZE,
        k: K,
        m: M,
        compression: Compression::Zstd,
        encryption: EncryptionAlgorithm::Aes256Gcm,
        shards: (0..=K)
            .map(|i| {
                let sums: Vec<[u8; 16]> = (0..CHUNKS)
                    .map(|c| PieceHeader::stored_checksum(&read(&piece_name(c, i))).unwrap())
                    .collect();
                ShardMeta {
                    index: i,
                    backend: backend(i),
                    keys: keys(i),
                    checksum: shard_checksum(&sums),
                }
            })
            .collect(),
    }
}

/// The documented piece header, byte by byte.
fn check_piece_header(p: &[u8], shard: u8, k: u8, m: u8, oid: &[u8; 16], chunk: u64, what: &str) {
    assert!(p.len() > PIECE_HEADER_LEN, "{what}: length");
    assert_eq!(&p[0..4], b"ZSP1", "{what}: magic");
    assert_eq!(p[4], 1, "{what}: version");
    assert_eq!((p[5], p[6], p[7]), (shard, k, m), "{what}: shard, k, m");
    assert_eq!(&p[8..24], oid, "{what}: object id");
    assert_eq!(p[24..32], chunk.to_le_bytes(), "{what}: chunk index");
    let len = (p.len() - PIECE_HEADER_LEN) as u32;
    assert_eq!(p[32..36], len.to_le_bytes(), "{what}: payload length");
    assert_eq!(p[36..40], [0; 4], "{what}: reserved");
    assert_eq!(
        p[40..56],
        blake3_128(&[&p[..40], &p[PIECE_HEADER_LEN..]]),
        "{what}: checksum"
    );
    let h = PieceHeader {
        object_id: *oid,
        chunk,
        shard,
        k,
        m,
    };
    assert!(h.verify(p).is_some(), "{what}: today's verify refuses it");
}

/// The stripe header at the start of data shard 0 (it is not encrypted).
fn check_stripe_header(p0: &[u8], encoding: u8, plain_len: usize, k: usize, what: &str) {
    let payload = &p0[PIECE_HEADER_LEN..];
    assert_eq!(payload[0], encoding, "{what}: encoding");
    assert_eq!(payload[1..4], [0; 3], "{what}: reserved");
    assert_eq!(
        payload[4..8],
        (plain_len as u32).to_le_bytes(),
        "{what}: plaintext length"
    );
    let sealed = u32::from_le_bytes(payload[8..12].try_into().unwrap()) as usize;
    assert_eq!(
        payload.len(),
        (24 + sealed).div_ceil(k),
        "{what}: shard length from the sealed length"
    );
    if encoding == 0 {
        assert_eq!(sealed, plain_len + 16, "{what}: raw chunk sealed length");
    } else {
        assert!(
            sealed < plain_len + 16,
            "{what}: compressed chunk not smaller"
        );
    }
}

#[test]
fn golden_v1_file_checksum_and_key() {
    let file = read("file.bin");
    assert!(
        file == file_content(),
        "file.bin is the generator's content"
    );
    assert_eq!(hex::encode(blake2b_128(&file)), FILE_B2SUM);
    let (key, hash) = meta_key(PREFIX, Some(Path::new(ROOT)), Path::new(PATH));
    assert_eq!(key, META_KEY_STRING);
    assert_eq!(key, String::from_utf8(read("meta.key")).unwrap().trim_end());
    assert_eq!(hash, blake2b_128(b"golden/file.txt"));
}

#[test]
fn golden_v1_metadata_plaintext_decodes_and_reencodes() {
    let plain = read("meta.plain");
    assert_eq!(&plain[..4], b"ZSM1");
    let meta = ObjectMeta::from_bytes(&plain).unwrap();
    let want = expected_meta();
    assert_eq!(meta.version, 1);
    assert_eq!(meta.object_id, want.object_id);
    assert_eq!(hex::encode(meta.checksum), FILE_B2SUM);
    assert_eq!(meta.size, want.size);
    assert_eq!(meta.chunk_size, want.chunk_size);
    assert_eq!((meta.k, meta.m), (K, M));
    assert_eq!(meta.compression, Compression::Zstd);
    assert_eq!(meta.encryption, EncryptionAlgorithm::Aes256Gcm);
    assert_eq!(meta.shards.len(), 3);
    for (s, w) in meta.shards.iter().zip(&want.shards) {
        assert_eq!(s, w, "shard {}", w.index);
    }
    assert_eq!(meta, want);
    assert_eq!(meta.chunk_count(), CHUNKS);
    // Both directions of the encoding are pinned: decoded and re-encoded gives the frozen
    // bytes, and so does encoding the record built from the constants.
    assert!(meta.to_bytes().unwrap() == plain, "re-encoding differs");
    assert!(want.to_bytes().unwrap() == plain, "encoding differs");
    // postcard layout spot checks: version varint right after the magic, then the object id.
    assert_eq!(plain[4], 1);
    assert_eq!(&plain[5..21], &OBJECT_ID);
    assert_eq!(&plain[21..37], &want.checksum);
}

#[test]
fn golden_v1_metadata_pieces_decrypt_from_any_two() {
    let plain = read("meta.plain");
    let (_, path_hash) = meta_key(PREFIX, Some(Path::new(ROOT)), Path::new(PATH));
    let pieces: Vec<Vec<u8>> = (0..4).map(|i| read(&format!("meta.piece{i}"))).collect();
    for (i, p) in pieces.iter().enumerate() {
        check_piece_header(p, i as u8, 2, 2, &path_hash, 0, &format!("meta piece {i}"));
    }
    check_stripe_header(&pieces[0], 1, plain.len(), 2, "meta stripe");
    let codec = MetaCodec::new(DataKey::new(META_KEY));
    let want = ObjectMeta::from_bytes(&plain).unwrap();
    for a in 0..4 {
        for b in a + 1..4 {
            let mut given: Vec<Option<&[u8]>> = vec![None; 4];
            given[a] = Some(&pieces[a]);
            given[b] = Some(&pieces[b]);
            let got = codec.open(path_hash, &given).unwrap();
            assert_eq!(got, want, "pieces {a} and {b}");
            assert!(got.to_bytes().unwrap() == plain);
        }
    }
    let all: Vec<Option<&[u8]>> = pieces.iter().map(|p| Some(p.as_slice())).collect();
    let wrong = MetaCodec::new(DataKey::new(DATA_KEY));
    assert!(matches!(
        wrong.open(path_hash, &all),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn golden_v1_data_pieces_decode_to_the_file() {
    let meta = ObjectMeta::from_bytes(&read("meta.plain")).unwrap();
    assert_eq!(meta.params(), params());
    let file = file_content();
    let mut dec = ChunkDecoder::new(meta.params(), &DataKey::new(DATA_KEY), OBJECT_ID).unwrap();
    let mut out = Vec::new();
    for c in 0..CHUNKS {
        let pieces: Vec<Vec<u8>> = (0..=K).map(|i| read(&piece_name(c, i))).collect();
        let start = c as usize * CHUNK_SIZE as usize;
        let chunk = &file[start..(start + CHUNK_SIZE as usize).min(file.len())];
        for (i, p) in pieces.iter().enumerate() {
            check_piece_header(
                p,
                i as u8,
                K,
                M,
                &OBJECT_ID,
                c,
                &format!("chunk {c} piece {i}"),
            );
        }
        let encoding = if c == 1 { 0 } else { 3 };
        check_stripe_header(&pieces[0], encoding, chunk.len(), K as usize, "data stripe");
        let all: Vec<Option<&[u8]>> = pieces.iter().map(|p| Some(p.as_slice())).collect();
        let got = dec.decode(c, &all).unwrap().to_vec();
        assert!(dec.bad_pieces().is_empty(), "chunk {c}: rejected pieces");
        assert!(got == chunk, "chunk {c}: content");
        out.extend_from_slice(&got);
        // Every data shard missing in turn: the parity rebuilds it.
        for missing in 0..K as usize {
            let mut given = all.clone();
            given[missing] = None;
            assert!(
                dec.decode(c, &given).unwrap() == chunk,
                "chunk {c} without {missing}"
            );
        }
    }
    assert_eq!(blake2b_128(&out), meta.checksum);
}

/// Writes the fixture. Run once per format version, never to make a test pass:
/// `cargo test -p zstor --test golden -- --ignored regenerate`
/// (refuses to overwrite an existing version folder).
#[test]
#[ignore = "writes the frozen fixture; see tests/golden/v1/README.md"]
fn regenerate() {
    let out = golden_dir();
    assert!(
        !out.join("meta.plain").exists() && !out.join("data").exists(),
        "{} already holds a fixture: a format change adds a new version folder, it never \
         rewrites an old one",
        out.display()
    );
    std::fs::create_dir_all(out.join("data")).unwrap();
    let file = file_content();
    std::fs::write(out.join("file.bin"), &file).unwrap();
    let mut enc = ChunkEncoder::new(params(), &DataKey::new(DATA_KEY), OBJECT_ID).unwrap();
    let mut sums: Vec<Vec<[u8; 16]>> = vec![Vec::new(); (K + M) as usize];
    for (c, chunk) in file.chunks(CHUNK_SIZE as usize).enumerate() {
        let pieces = enc.encode(c as u64, chunk).unwrap();
        for (i, p) in pieces.iter().enumerate() {
            std::fs::write(out.join(piece_name(c as u64, i as u8)), p).unwrap();
            sums[i].push(PieceHeader::stored_checksum(p).unwrap());
        }
    }
    let meta = ObjectMeta {
        version: META_VERSION,
        object_id: OBJECT_ID,
        checksum: blake2b_128(&file),
        size: file.len() as u64,
        chunk_size: CHUNK_SIZE,
        k: K,
        m: M,
        compression: Compression::Zstd,
        encryption: EncryptionAlgorithm::Aes256Gcm,
        shards: (0..=K)
            .map(|i| ShardMeta {
                index: i,
                backend: backend(i),
                keys: keys(i),
                checksum: shard_checksum(&sums[i as usize]),
            })
            .collect(),
    };
    meta.validate().unwrap();
    std::fs::write(out.join("meta.plain"), meta.to_bytes().unwrap()).unwrap();
    let (key, path_hash) = meta_key(PREFIX, Some(Path::new(ROOT)), Path::new(PATH));
    std::fs::write(out.join("meta.key"), format!("{key}\n")).unwrap();
    let pieces = MetaCodec::new(DataKey::new(META_KEY))
        .seal(path_hash, &meta)
        .unwrap();
    for (i, p) in pieces.iter().enumerate() {
        std::fs::write(out.join(format!("meta.piece{i}")), p).unwrap();
    }
    eprintln!("meta key: {key}");
}
