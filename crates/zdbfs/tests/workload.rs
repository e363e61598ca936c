//! Real workloads on a mount: untar a source tree and diff it, git init/commit/fsck.

mod common;

use common::*;
use std::process::Command;

fn sh(script: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh")
}

#[test]
fn untar_and_diff_a_source_tree() {
    let t = TestMount::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let out = sh(&format!(
        "tar -C {s} -cf - . | tar -C {m} -xf - && diff -r {s} {m}",
        s = src.display(),
        m = t.mnt.display()
    ));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn git_commit_and_fsck() {
    if sh("command -v git").stdout.is_empty() {
        eprintln!("git not installed: skipped");
        return;
    }
    let t = TestMount::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let out = sh(&format!(
        "cd {m} && git init -q repo && cp -r {s} repo/src && cd repo && git add -A && \
         git -c user.email=t@t -c user.name=t commit -qm one && \
         echo change >> src/lib.rs && git -c user.email=t@t -c user.name=t commit -qam two && \
         git fsck --strict && test $(git rev-list --count HEAD) = 2",
        m = t.mnt.display(),
        s = src.display()
    ));
    assert!(out.status.success(), "{out:?}");
}
