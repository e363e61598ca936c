//! Compaction of offloaded segments through the binary: deleted files give backend space
//! back (`qsfs compact`), the files left read back evicted, after a restart and after a
//! restore into an empty cache, and the backends hold exactly what the manifest names.

mod common;

use common::*;

/// Bytes of data segments the manifest says are stored.
fn stored_data_bytes(root: &std::path::Path) -> u64 {
    manifest(root)
        .namespaces
        .values()
        .flat_map(|n| n.data.values())
        .map(|s| s.size)
        .sum()
}

/// The `compaction` part of `qsfs status --json`.
fn compaction_status(root: &std::path::Path) -> serde_json::Value {
    let status: serde_json::Value =
        serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
    status["compaction"].clone()
}

fn read_kept(mount: &std::path::Path, kept: &[usize], gone: &[usize]) {
    drop_caches();
    for &i in kept {
        let got = std::fs::read(path_of(mount, i)).unwrap_or_else(|e| panic!("file {i}: {e}"));
        assert!(got == content(i), "file {i}: wrong bytes ({})", got.len());
    }
    for &i in gone {
        let e = std::fs::metadata(path_of(mount, i)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "file {i}");
    }
}

#[test]
fn compaction_gives_backend_space_back_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = ["--config", "qsfs-data/qsfs.toml"];
    let q = Qsfs::start(
        root,
        &["--mountpoint", "mnt", "--segment-mib", "1"],
        "run1.log",
    );
    write_files(&q.mount, 0..80, false);
    qsfs_cmd(root, &["rotate"]);
    let (kept, gone): (Vec<usize>, Vec<usize>) = (0..80).partition(|i| i % 4 == 0);
    for &i in &gone {
        std::fs::remove_file(path_of(&q.mount, i)).unwrap();
    }
    qsfs_cmd(root, &["rotate"]);
    qsfs_cmd(root, &["evict"]);
    let before = stored_data_bytes(root);
    let reclaimable = compaction_status(root)["reclaimable_bytes"]
        .as_u64()
        .unwrap();
    assert!(
        reclaimable > before / 4,
        "{reclaimable} of {before} stored bytes dead"
    );

    let out = qsfs_cmd(root, &["compact"]);
    assert!(out.contains("compacted"), "{out}");
    let c = compaction_status(root);
    assert!(c["segments_compacted"].as_u64().unwrap() > 0, "{c}");
    assert!(c["copies_replaced"].as_u64().unwrap() > 0, "{c}");
    // Given back, less what the moved records take in the segments they went to.
    let given_back = c["bytes_given_back"].as_u64().unwrap();
    assert!(given_back >= before - stored_data_bytes(root), "{c}");
    assert!(
        c["reclaimable_bytes"].as_u64().unwrap() < reclaimable / 2,
        "{c}"
    );
    let emptied = manifest(root)
        .namespaces
        .values()
        .flat_map(|n| n.data.values())
        .filter(|s| s.version.is_some())
        .count();
    assert!(emptied > 0, "no stored segment was replaced: {out}");
    let after = stored_data_bytes(root);
    assert!(
        after < before * 3 / 4,
        "stored data bytes {before} -> {after} after deleting most files"
    );
    // Compacted segments were fetched back for the move; what is left reads back evicted.
    qsfs_cmd(root, &["evict"]);
    read_kept(&q.mount, &kept, &gone);
    // A second pass finds nothing more to do.
    let again = qsfs_cmd(root, &["compact"]);
    assert!(again.contains("compacted 0 segments"), "{again}");
    q.stop(false);
    assert_backends_hold_what_the_manifest_names(root);

    let q = Qsfs::start(root, &config, "run2.log");
    qsfs_cmd(root, &["evict"]);
    read_kept(&q.mount, &kept, &gone);
    q.stop(false);

    // The machine is lost: the backends alone bring the same tree back.
    std::fs::remove_dir_all(root.join("qsfs-data/cache")).unwrap();
    let q = Qsfs::start(
        root,
        &["restore", "--config", "qsfs-data/qsfs.toml"],
        "restore.log",
    );
    read_kept(&q.mount, &kept, &gone);
    q.stop(false);
}
