//! Build software inside a mount: a small C program with the system compiler, and a small
//! Rust crate with cargo (its target directory on the mount too: many small files, renames
//! and hard links), then run what was built from the mount.

mod common;

use common::TestMount;
use std::process::Command;

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn build_and_run_a_c_program() {
    let t = TestMount::new();
    let dir = t.p("cproj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sum.h"), "int sum(int n);\n").unwrap();
    std::fs::write(
        dir.join("sum.c"),
        "#include \"sum.h\"\nint sum(int n) { int s = 0; for (int i = 1; i <= n; i++) s += i; return s; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\n#include \"sum.h\"\nint main(void) { printf(\"%d\\n\", sum(100)); return 0; }\n",
    )
    .unwrap();
    let cc = Command::new("cc")
        .current_dir(&dir)
        .args(["-O2", "-o", "prog", "main.c", "sum.c"])
        .output()
        .expect("cc (scripts/test installs gcc)");
    ok(cc);
    let run = Command::new(dir.join("prog")).output().unwrap();
    assert_eq!(ok(run).trim(), "5050");
}

#[test]
fn build_and_run_a_rust_crate() {
    let t = TestMount::new();
    let dir = t.p("rproj");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"inmount\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "mod words;\nfn main() { println!(\"{}\", words::count(\"a quantum safe filesystem\")); }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/words.rs"),
        "pub fn count(s: &str) -> usize { s.split_whitespace().count() }\n",
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    ok(build);
    let run = Command::new(dir.join("target/debug/inmount"))
        .output()
        .unwrap();
    assert_eq!(ok(run).trim(), "4");
}
