//! What losing the whole machine (kill -9 and the cache folder gone) loses: with the
//! defaults, only the last seconds (the open segment is dispersed as pieces every few
//! seconds, not only when it closes); with `fsync = "dispersed"`, nothing fsync'ed.

mod common;

use common::*;
use std::time::Duration;

const CONFIG: &str = "qsfs-data/qsfs.toml";

#[test]
fn a_lost_machine_loses_seconds_not_the_open_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Segments far larger than what is written: nothing closes, no rotation happens.
    let q = Qsfs::start(
        root,
        &["--mountpoint", "mnt", "--segment-mib", "256"],
        "run1.log",
    );
    write_files(&q.mount, 0..40, true);
    wait_dispersed(root, CONFIG, Duration::from_secs(60));
    let m = manifest(root);
    let data = &m.namespaces["zdbfs-data"];
    assert!(
        data.open.as_ref().is_some_and(|o| !o.pieces.is_empty()) && data.data.is_empty(),
        "dispersed as pieces of the open segment, nothing closed: {data:?}"
    );

    let q = lose_and_restore(q, root, CONFIG, "restore.log");
    read_all_exact(&q.mount, 0..40);
    // Going on after the restore: the restored open segment closes and is stored whole;
    // its pieces are deleted (the count below would see them).
    write_files(&q.mount, 40..50, true);
    read_all_exact(&q.mount, 0..50);
    q.stop(false);
    let m = manifest(root);
    assert!(m.namespaces.values().all(|n| n.open.is_none()));
    assert_backends_hold_what_the_manifest_names(root);
}

#[test]
fn strict_fsync_returns_once_the_backends_hold_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // First run writes the embedded default; strict mode is switched on in it, and the
    // periodic dispersal off, so only fsync can have put the files on the backends.
    Qsfs::start(root, &["--mountpoint", "mnt"], "run1.log").stop(false);
    make_strict(root, CONFIG);

    let q = Qsfs::start(root, &["--config", CONFIG], "run2.log");
    write_files(&q.mount, 0..20, true);
    // The last fsync has returned: the machine may go now.
    let q = lose_and_restore(q, root, CONFIG, "restore.log");
    read_all_exact(&q.mount, 0..20);
    q.stop(false);
}
