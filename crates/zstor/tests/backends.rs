//! Store and retrieve over real in-process zdb servers on 127.0.0.1: 6 data backends (4+2)
//! and 4 metadata backends; bitrot, lost backends, too few backends and a wrong key.

use std::path::{Path, PathBuf};

use zdb_client::{Client, ClientConfig};
use zstor::{Config, Error, Store};

mod common;
use common::{cluster, sample, TestZdb};

fn sample_file(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
    let path = dir.join("input.bin");
    let bytes = sample(&path, len, 7);
    (path, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_retrieve_survives_bitrot_and_two_lost_backends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "42".repeat(32);
    let (mut data, mut meta, text) = cluster(tmp.path(), 6, &key).await;
    let config = Config::from_toml(&text).expect("valid config");
    let store = Store::new(config.clone())
        .expect("store")
        .with_chunk_size(64 << 10);

    // A multi-chunk file (15 full chunks and a partial one) and an empty one.
    let (input, bytes) = sample_file(tmp.path(), (15 << 16) + 12345);
    let name = Path::new("/virtualroot/dir/input.bin");
    let meta_rec = store.store_as(&input, name).await.expect("store");
    assert_eq!(meta_rec.chunk_count(), 16);
    assert_eq!(meta_rec.checksum, zstor::hash::blake2b_128(&bytes));
    let out = tmp.path().join("out.bin");
    store.retrieve_file(name, &out).await.expect("retrieve");
    assert_eq!(std::fs::read(&out).expect("read out"), bytes);

    // Ranges: within a chunk, across chunks, into the short last one, past the end.
    let len = bytes.len() as u64;
    for (offset, n) in [
        (0u64, 1u64),
        (70_000, 10),
        ((1 << 16) - 5, 200_000),
        (len - 100, 1000),
        (len, 10),
    ] {
        let got = store
            .retrieve_range(&meta_rec, offset, n)
            .await
            .expect("range");
        let from = offset.min(len) as usize;
        let to = (offset + n).min(len) as usize;
        assert_eq!(got, bytes[from..to], "range {offset}+{n}");
    }

    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").expect("write empty");
    store
        .store_as(&empty, Path::new("/virtualroot/empty"))
        .await
        .expect("store empty");
    let empty_out = tmp.path().join("empty.out");
    store
        .retrieve_file(Path::new("/virtualroot/empty"), &empty_out)
        .await
        .expect("retrieve empty");
    assert_eq!(std::fs::read(&empty_out).expect("read"), b"");

    // Bitrot: rewrite chunk 3's piece on shards 0 and 1 with garbage; still exact.
    for shard in &meta_rec.shards[..2] {
        let c = Client::new(
            ClientConfig::new(shard.backend.address.parse().expect("endpoint"))
                .with_namespace("data", None),
        )
        .expect("client");
        c.update_seq(shard.keys[3], b"rotten piece")
            .await
            .expect("corrupt");
    }
    std::fs::remove_file(&out).expect("rm");
    store
        .retrieve_file(name, &out)
        .await
        .expect("retrieve despite bitrot");
    assert_eq!(std::fs::read(&out).expect("read out"), bytes);

    // Wrong data key: a clean error and no output file.
    let wrong = Config::from_toml(&text.replace(&key, &"43".repeat(32))).expect("config");
    let bad_store = Store::new(wrong).expect("store");
    let wrong_out = tmp.path().join("wrong.bin");
    let err = bad_store.retrieve_file(name, &wrong_out).await.unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err}");
    assert!(!wrong_out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path())
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("zstor-tmp"))
            .count(),
        0
    );

    // Lose the two data backends holding shards 0 and 1 (so chunk 3, whose pieces there are
    // rotten, still has 4 intact ones) and two metadata backends.
    let lost: Vec<String> = meta_rec.shards[..2]
        .iter()
        .map(|s| s.backend.address.clone())
        .collect();
    for z in data.iter_mut().filter(|z| lost.contains(&z.addr)) {
        z.stop();
    }
    meta[0].stop();
    meta[3].stop();
    let out2 = tmp.path().join("out2.bin");
    store
        .retrieve_file(name, &out2)
        .await
        .expect("retrieve with 2 backends lost");
    assert_eq!(std::fs::read(&out2).expect("read out2"), bytes);

    // A store needs at least k + 1 = 5 shards written (a degraded write), only 4 answer;
    // metadata writes need all 4.
    let err = store
        .store_as(&input, Path::new("/virtualroot/again"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooFewBackends {
                reachable: 4,
                needed: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "not enough backends reachable: 4 reachable, 5 needed"
    );

    // `check`: the stored checksum, from any 2 metadata backends.
    let sum = store.checksum(name).await.expect("checksum");
    assert_eq!(sum, zstor::hash::blake2b_128(&bytes));
    // With a third metadata backend gone, reads say how many answered and how many are needed.
    meta[1].stop();
    let err = store.retrieve_file(name, &out2).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "not enough backends reachable: 1 reachable, 2 needed"
    );
    assert!(matches!(
        store.checksum(Path::new("/virtualroot/missing")).await,
        Err(Error::TooFewBackends {
            reachable: 1,
            needed: 2
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_not_found() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_data, _meta, text) = cluster(tmp.path(), 6, &"42".repeat(32)).await;
    let store = Store::new(Config::from_toml(&text).expect("config")).expect("store");
    let err = store
        .checksum(Path::new("/virtualroot/nothing"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

/// Live pieces on the data backends (DBSIZE counts entries not deleted).
async fn live_pieces(data: &[TestZdb]) -> u64 {
    let mut total = 0;
    for z in data {
        let c = Client::new(
            ClientConfig::new(z.addr.parse().expect("endpoint")).with_namespace("data", None),
        )
        .expect("client");
        total += c.dbsize().await.expect("dbsize");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwritten_and_deleted_objects_leave_no_pieces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, _meta, text) = cluster(tmp.path(), 6, &"24".repeat(32)).await;
    let store = Store::new(Config::from_toml(&text).expect("config"))
        .expect("store")
        .with_chunk_size(64 << 10);
    let (input, _) = sample_file(tmp.path(), (3 << 16) + 5);
    let name = Path::new("/virtualroot/again.bin");
    let first = store.store_as(&input, name).await.expect("store");
    let per_version = (first.chunk_count() * 6) as u64;
    assert_eq!(live_pieces(&data).await, per_version);
    // The same content again is not stored again.
    let same = store.store_as(&input, name).await.expect("store same");
    assert_eq!(
        same.object_id, first.object_id,
        "unchanged: the record stays"
    );
    assert_eq!(live_pieces(&data).await, per_version);
    // Overwrite: the old version's pieces go once the new record is written.
    std::fs::write(&input, b"a much shorter second version").expect("rewrite");
    store.store_as(&input, name).await.expect("store again");
    assert_eq!(live_pieces(&data).await, 6, "one chunk on each backend");
    let out = tmp.path().join("out");
    store.retrieve_file(name, &out).await.expect("retrieve");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        b"a much shorter second version"
    );
    // Delete: record and pieces gone.
    store.delete(name).await.expect("delete");
    assert_eq!(live_pieces(&data).await, 0);
    assert!(matches!(
        store.retrieve_file(name, &out).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_mismatch_leaves_no_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_data, _meta, text) = cluster(tmp.path(), 6, &"33".repeat(32)).await;
    let store = Store::new(Config::from_toml(&text).expect("config"))
        .expect("store")
        .with_chunk_size(64 << 10);
    let (input, _) = sample_file(tmp.path(), (2 << 16) + 99);
    let mut meta = store
        .store_as(&input, Path::new("/virtualroot/sum.bin"))
        .await
        .expect("store");
    // Every piece decodes, but the whole file is not what the record says.
    meta.checksum[0] ^= 1;
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let err = store
        .retrieve_meta(meta, &out_dir.join("sum.bin"), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out_dir).expect("ls").collect();
    assert!(left.is_empty(), "no output, no temporary file: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_in_another_format_is_named_as_such() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_data, meta, text) = cluster(tmp.path(), 6, &"42".repeat(32)).await;
    let store = Store::new(Config::from_toml(&text).expect("config")).expect("store");
    // What 0-stor v2 leaves under the same key: values that are no pieces of ours.
    let name = Path::new("/virtualroot/theirs.bin");
    let (key, _) = store.meta().key_of(name);
    for z in &meta {
        let c = Client::connect(
            ClientConfig::new(z.addr.parse().unwrap()).with_namespace("meta", None),
        )
        .await
        .expect("connect");
        c.set(key.as_bytes(), b"\x92\x01another program's record")
            .await
            .expect("set");
    }
    let err = store
        .retrieve_file(name, &tmp.path().join("out"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not in this zstor's format"),
        "{err}"
    );
}
