//! kill -9 of qsfs: with the local cache intact nothing fsync'ed is lost and the staged
//! checkpoints reach the backends after the restart; with the local cache lost too, a restore
//! brings back a consistent tree with at least everything up to the last rotation (the open
//! segment's dispersal, tests/loss_window.rs, brings back more).

mod common;

use common::*;

/// Wait until no checkpoint is staged or uploading.
fn wait_uploads_done(root: &std::path::Path) {
    wait::until_every(
        "uploads to finish",
        std::time::Duration::from_secs(60),
        STATUS_POLL,
        || {
            let s: serde_json::Value =
                serde_json::from_str(&qsfs_cmd(root, &["status", "--json"])).unwrap();
            s["offload"]["pending"] == 0
        },
        String::new,
    );
}

#[test]
fn kill9_keeps_fsynced_files_and_a_lost_cache_keeps_the_last_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let create = ["--mountpoint", "mnt", "--segment-mib", "1"];
    let config = ["--config", "qsfs-data/qsfs.toml"];

    // Set A offloaded by a rotation; set B only fsync'ed locally; then a crash.
    let q = Qsfs::start(root, &create, "run1.log");
    write_files(&q.mount, 0..60, false);
    qsfs_cmd(root, &["rotate"]);
    write_files(&q.mount, 60..120, true);
    // Crash between uploads: an upload cut by kill -9 leaves objects no manifest names (not
    // deleted yet: see docs/STATUS.md), which the count at the end would see.
    wait_uploads_done(root);
    q.kill9();

    // Restart on the same cache: the dead mount is cleared, A and B are intact, and B
    // reaches the backends with the next rotation.
    let q = Qsfs::start(root, &config, "run2.log");
    read_all_exact(&q.mount, 0..120);
    // A second qsfs on the same cache is refused before it touches anything.
    let second = std::process::Command::new(BIN)
        .current_dir(root)
        .args(config)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another qsfs is running"));
    let out = qsfs_cmd(root, &["rotate"]);
    assert!(out.contains("everything is offloaded"), "{out}");

    // Set C written after that rotation, then the machine is lost: crash and cache gone.
    write_files(&q.mount, 120..180, true);
    wait_uploads_done(root);
    q.kill9();
    std::fs::remove_dir_all(root.join("qsfs-data/cache")).unwrap();

    // A plain start on the empty cache would begin a new, empty filesystem: it is refused.
    let plain = std::process::Command::new(BIN)
        .current_dir(root)
        .args(config)
        .output()
        .unwrap();
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("qsfs restore --config"));

    let q = Qsfs::start(
        root,
        &["restore", "--config", "qsfs-data/qsfs.toml"],
        "restore.log",
    );
    read_all_exact(&q.mount, 0..120);
    // Of set C, whatever the tree still names must read without error (it may be absent).
    for i in 120..180 {
        match std::fs::read(path_of(&q.mount, i)) {
            Ok(bytes) => assert!(
                bytes.len() <= content(i).len(),
                "file {i}: {} bytes, more than ever written",
                bytes.len()
            ),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "file {i}: {e}"),
        }
    }
    q.stop(false);

    // Superseded copies are deleted: the backends hold exactly what the manifest names.
    assert_backends_hold_what_the_manifest_names(root);
}

/// `qsfs 2>&1 | tee log`, then Ctrl-C: the terminal's SIGINT ends `tee` as well, so qsfs's
/// output pipe is broken while it shuts down. The shutdown still unmounts, offloads the open
/// segments and exits 0 (it used to panic on "failed printing to stdout").
#[test]
fn ctrl_c_with_a_broken_output_pipe_still_offloads() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut child = std::process::Command::new(BIN)
        .current_dir(root)
        .args(["--mountpoint", "mnt", "--segment-mib", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mount = root.join("mnt");
    // Read the output as `tee` would until the mount is announced, then close the pipe.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("qsfs: mounted at") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "qsfs ended its output"
        );
    }
    wait::until("the mount", std::time::Duration::from_secs(60), || {
        is_mounted(&mount)
    });
    drop(out);
    write_files(&mount, 0..20, true);
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait::exit("qsfs", &mut child, std::time::Duration::from_secs(120));
    assert!(status.success(), "qsfs: {status}");
    assert!(!is_mounted(&mount));
    // Everything written reached the backends: a restore from them alone gives it back
    // (`restore` takes the embedded default's configuration, like every other command).
    std::fs::remove_dir_all(root.join("qsfs-data/cache")).unwrap();
    let q = Qsfs::start(root, &["restore"], "restored.log");
    read_all_exact(&q.mount, 0..20);
    assert!(
        q.log_text().contains("restored the last checkpoint of"),
        "{}",
        q.log_text()
    );
    q.stop(false);
}
