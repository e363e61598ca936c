//! Real S3 clients round-trip through the gateway: rclone's s3 remote (copy a tree in with
//! multipart for the large file, `rclone check`, copy it out) and restic (init, backup,
//! `check --read-data`, restore), each compared byte for byte.

mod common;

use std::process::Command;

use test_kit::clients::{make_tree, rclone_s3, run, same_trees};

/// Above rclone's multipart cutoff with `--s3-upload-cutoff 5M`.
const BIG: usize = (13 << 20) + 12345;

#[test]
fn rclone_copies_a_tree_in_and_out() {
    let server = common::Server::start();
    let (key, secret) = server.account("alice", None);
    let work = tempfile::tempdir().unwrap();
    let (src, out) = (work.path().join("src"), work.path().join("out"));
    make_tree(&src, BIG);
    let endpoint = server.endpoint();
    let rclone = |args: &[&str]| {
        let mut c = rclone_s3(&endpoint, &key, &secret);
        c.args(args)
            .args(["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"]);
        run(&mut c)
    };
    rclone(&["mkdir", "qs:backup"]);
    rclone(&["copy", src.to_str().unwrap(), "qs:backup/tree"]);
    // Sizes and MD5s (the big file's multipart ETag is no MD5: rclone keeps its own).
    rclone(&["check", src.to_str().unwrap(), "qs:backup/tree"]);
    same_trees(&src, &server.home("alice").join("backup/tree"));
    rclone(&["copy", "qs:backup/tree", out.to_str().unwrap()]);
    same_trees(&src, &out);
    let listed = rclone(&["lsf", "-R", "qs:backup"]);
    assert!(listed.contains("tree/big.bin"), "{listed}");
    rclone(&["purge", "qs:backup/tree"]);
    assert!(!server.home("alice").join("backup/tree").exists());
}

#[test]
fn restic_backs_up_checks_and_restores() {
    let server = common::Server::start();
    let (key, secret) = server.account("alice", None);
    let work = tempfile::tempdir().unwrap();
    let (src, out) = (work.path().join("src"), work.path().join("out"));
    make_tree(&src, BIG);
    let repo = format!("s3:{}/restic/repo", server.endpoint());
    let restic = |args: &[&str]| {
        let mut c = Command::new("restic");
        c.args(args)
            .env("RESTIC_REPOSITORY", &repo)
            .env("RESTIC_PASSWORD", "restic test password")
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("RESTIC_CACHE_DIR", work.path().join("cache"));
        run(&mut c)
    };
    // restic makes its bucket itself when it is missing.
    restic(&["init"]);
    restic(&["backup", "--quiet", "--host", "test", src.to_str().unwrap()]);
    restic(&["check", "--read-data"]);
    restic(&["restore", "latest", "--target", out.to_str().unwrap()]);
    same_trees(&src, &out.join(src.strip_prefix("/").unwrap()));
    assert!(server.home("alice").join("restic/repo/config").is_file());
}
