//! boto3 (the AWS SDK for Python) through every call the gateway answers
//! (`tests/boto3_check.py`), then a look at what landed in the drive.

mod common;

use std::process::Command;

#[test]
fn boto3_gets_the_answers_s3_gives() {
    let server = common::Server::start();
    let (key, secret) = server.account("alice", None);
    let (other_key, other_secret) = server.account("bob", None);
    let work = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3_check.py");
    let out = test_kit::clients::run(
        Command::new("python3")
            .arg(script)
            .args([&server.endpoint(), &key, &secret, &other_key, &other_secret])
            .env("WORK", work.path()),
    );
    assert!(out.contains("all calls answered"), "{out}");
    // Objects are the account's files, by their paths; nothing of the uploads is left.
    let bucket = server.home("alice").join("photos");
    let hello = std::fs::read(bucket.join("notes/hello.txt")).unwrap();
    assert_eq!(hello, b"hello, quantum safe world\n".repeat(100));
    assert_eq!(
        std::fs::metadata(bucket.join("big/in-order.bin"))
            .unwrap()
            .len(),
        3 * (5 << 20) + 777
    );
    assert!(bucket.join("empty-folder").is_dir());
    let leftovers: Vec<_> = std::fs::read_dir(&bucket)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".qsfs-upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!server.home("bob").join("photos").exists());
}
