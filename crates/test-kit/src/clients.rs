//! Running real client programs (rclone, restic, s3fs, davfs2...) against the servers under
//! test, and the trees they copy: a command's output or a panic with what it printed, a
//! tree worth copying, a byte-for-byte comparison of two trees.

use std::path::Path;
use std::process::Command;

/// Run `cmd` to its end: its standard output, or a panic with everything it printed.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fill `dir` with a tree worth copying: nested folders with names that need quoting in
/// URLs (spaces, `+`, `%`, non-ASCII), files from empty to 30 KB, and one file of
/// `big_len` bytes (`big.bin`).
pub fn make_tree(dir: &Path, big_len: usize) {
    let mut seed = 11u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for d in 0..5 {
        let sub = dir.join(format!("folder {d}")).join("inner ünïcødé + 100%");
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..15 {
            let len = (next() % 30_000) as usize;
            let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            std::fs::write(sub.join(format!("file {f}.bin")), body).unwrap();
        }
        std::fs::write(dir.join(format!("folder {d}")).join("empty"), b"").unwrap();
    }
    let big: Vec<u8> = (0..big_len).map(|_| next() as u8).collect();
    std::fs::write(dir.join("big.bin"), big).unwrap();
}

/// Panic unless trees `a` and `b` hold the same names and bytes (`diff -r`).
#[track_caller]
pub fn same_trees(a: &Path, b: &Path) {
    run(Command::new("diff").arg("-r").arg(a).arg(b));
}

/// An `rclone` command with remote `qs:` on the S3 service at `endpoint`, signed with key
/// `key` and `secret` (path-style; no config file).
pub fn rclone_s3(endpoint: &str, key: &str, secret: &str) -> Command {
    let mut c = Command::new("rclone");
    // A CA bundle for AWS's SDK in the environment (a proxy's) trips rclone's plain-HTTP
    // transport.
    c.env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_QS_TYPE", "s3")
        .env("RCLONE_CONFIG_QS_PROVIDER", "Other")
        .env("RCLONE_CONFIG_QS_ENDPOINT", endpoint)
        .env("RCLONE_CONFIG_QS_ACCESS_KEY_ID", key)
        .env("RCLONE_CONFIG_QS_SECRET_ACCESS_KEY", secret)
        .env("RCLONE_CONFIG_QS_FORCE_PATH_STYLE", "true");
    c
}
