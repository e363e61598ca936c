//! Real workloads on a mount: untar a source tree and diff it, git init/commit/fsck, one
//! directory used by many threads at once.

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

#[test]
fn one_directory_used_by_many_threads_at_once() {
    // Lookups and listings of one directory run in parallel in the kernel
    // (FUSE_PARALLEL_DIROPS) while other threads create entries in it.
    let t = TestMount::new();
    std::fs::create_dir(t.p("shared")).unwrap();
    let dir = t.p("shared");
    std::thread::scope(|s| {
        for w in 0..4 {
            let dir = dir.clone();
            s.spawn(move || {
                for i in 0..250 {
                    std::fs::write(dir.join(format!("w{w}-{i}")), format!("{w}:{i}")).unwrap();
                }
            });
        }
        for _ in 0..2 {
            let dir = dir.clone();
            s.spawn(move || {
                for round in 0..20 {
                    let names: Vec<_> = std::fs::read_dir(&dir)
                        .unwrap()
                        .map(|e| e.unwrap().file_name())
                        .collect();
                    // Every name listed is there (files are never removed here).
                    for n in names.iter().skip(round % 7).step_by(7) {
                        assert!(std::fs::metadata(dir.join(n)).unwrap().is_file());
                    }
                    // Names not created yet (or ever) are absent, and stay absent.
                    assert!(std::fs::metadata(dir.join(format!("none-{round}"))).is_err());
                }
            });
        }
    });
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..4)
        .flat_map(|w| (0..250).map(move |i| format!("w{w}-{i}")))
        .collect();
    want.sort();
    assert_eq!(names, want);
    for w in 0..4 {
        for i in (0..250).step_by(17) {
            let got = std::fs::read_to_string(dir.join(format!("w{w}-{i}"))).unwrap();
            assert_eq!(got, format!("{w}:{i}"));
        }
    }
}
