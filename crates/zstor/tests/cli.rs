//! The real `zstor` binary against in-process zdb servers on 127.0.0.1 (6 data backends for a
//! 4+2 code, 4 metadata backends): store / check / retrieve / status / test, directory
//! stores, a bad config, a wrong key and a lost backend. Every run of the binary is bounded
//! in time.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::run::*;
use common::{config_text, sample, TestZdb};

/// The checksum `zstor check` must print: `b2sum -l 128` when installed, else the library's.
fn expected_sum(path: &Path) -> String {
    if let Ok(out) = Command::new("b2sum")
        .arg("-l")
        .arg("128")
        .arg(path)
        .output()
    {
        if out.status.success() {
            let line = text(&out.stdout);
            return line.split_whitespace().next().expect("b2sum output").into();
        }
    }
    hex::encode(zstor::hash::blake2b_128(
        &std::fs::read(path).expect("read"),
    ))
}

struct Cluster {
    data: Vec<TestZdb>,
    _meta: Vec<TestZdb>,
    text: String,
}

fn cluster(dir: &Path, key: &str, data_backends: usize) -> Cluster {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (data, meta, text) = rt.block_on(common::cluster(dir, data_backends, key));
    Cluster {
        data,
        _meta: meta,
        text,
    }
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn tmp_leftovers(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("zstor-tmp"))
        .count()
}

#[test]
fn store_check_retrieve_status_test_and_failures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "42".repeat(32);
    let mut c = cluster(tmp.path(), &key, 6);
    let config = write_config(tmp.path(), "zstor_config.toml", &c.text);

    // `test`: everything reachable, placement possible.
    let out = ok(&zstor(&config, &["test"]));
    assert!(out.contains("test passed"), "{out}");

    // Store a 2-chunk file under the virtual root with -k; quiet when stderr is not a tty.
    let input = tmp.path().join("input.bin");
    let bytes = sample(&input, (5 << 20) + 123, 1);
    let out = store_file(&config, &input, "/virtualroot/dir");
    ok(&out);
    assert!(
        out.stderr.is_empty(),
        "store is quiet: {}",
        text(&out.stderr)
    );

    // `check`: the absolute key, and the same key relative to the root.
    let want = expected_sum(&input);
    let sum = ok(&zstor(
        &config,
        &["check", "-f", "/virtualroot/dir/input.bin"],
    ));
    assert_eq!(sum.trim(), want);
    let sum = ok(&zstor(&config, &["check", "-f", "dir/input.bin"]));
    assert_eq!(sum.trim(), want);
    let err = fails(&zstor(&config, &["check", "-f", "/virtualroot/nothing"]));
    assert!(err.contains("not stored"), "{err}");

    // On a terminal (through `script`, when installed) the progress bars run and are
    // cleared; the result is the same.
    let tty_out = tmp.path().join("tty.bin");
    let line = format!(
        "{} -c {} store -f {} -k /virtualroot/tty && {} -c {} retrieve -f /virtualroot/tty/input.bin -o {}",
        env!("CARGO_BIN_EXE_zstor"),
        config.display(),
        input.display(),
        env!("CARGO_BIN_EXE_zstor"),
        config.display(),
        tty_out.display()
    );
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_script {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]);
        let out = run(cmd);
        ok(&out);
        assert_eq!(std::fs::read(&tty_out).expect("tty retrieve"), bytes);
    }

    // `retrieve -o`: byte-exact.
    let out_file = tmp.path().join("out.bin");
    ok(&retrieve_file(
        &config,
        "/virtualroot/dir/input.bin",
        &out_file,
    ));
    assert_eq!(std::fs::read(&out_file).expect("read out"), bytes);

    // `status --json`: 4 metadata backends holding one record per stored file, 6 data
    // backends holding one piece per chunk (2 chunks per file) each.
    let stored = if has_script { 2 } else { 1 };
    let json = ok(&zstor(&config, &["status", "--json"]));
    let st: serde_json::Value = serde_json::from_str(&json).expect("status JSON");
    let meta = st["meta"].as_array().expect("meta array");
    assert_eq!(meta.len(), 4);
    for b in meta {
        assert_eq!(b["reachable"], true, "{b}");
        assert_eq!(b["objects"], stored, "{b}");
        assert_eq!(b["mode"], "userkey", "{b}");
    }
    let groups = st["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1);
    let data = groups[0].as_array().expect("group 0");
    assert_eq!(data.len(), 6);
    for b in data {
        assert_eq!(b["reachable"], true, "{b}");
        assert_eq!(b["objects"], 2 * stored, "{b}");
        assert!(b["used_bytes"].as_u64().expect("used") > 0, "{b}");
        let usage = b["usage_percent"].as_f64().expect("usage");
        assert!((0.0..=100.0).contains(&usage), "{b}");
    }
    let table = ok(&zstor(&config, &["status"]));
    assert!(
        table.contains("metadata backends") && table.contains("data backends"),
        "{table}"
    );
    assert!(table.contains(&c.data[0].addr), "{table}");

    // Wrong data key: a clean error, no output file, no temporary left behind.
    let wrong = write_config(
        tmp.path(),
        "wrong.toml",
        &c.text.replace(&key, &"43".repeat(32)),
    );
    let wrong_out = tmp.path().join("wrong.bin");
    let err = fails(&retrieve_file(
        &wrong,
        "/virtualroot/dir/input.bin",
        &wrong_out,
    ));
    assert!(err.contains("decryption failed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!wrong_out.exists());
    assert_eq!(tmp_leftovers(tmp.path()), 0);

    // Directory store without a root: recursive, -d deletes after the verified upload, and
    // `retrieve` without -o writes back to the original path.
    let no_root = write_config(
        tmp.path(),
        "noroot.toml",
        &c.text.replace("root = \"/virtualroot\"\n", ""),
    );
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).expect("mkdir");
    let files = [
        (tree.join("a.txt"), sample(&tree.join("a.txt"), 1000, 2)),
        (
            tree.join("sub/b.bin"),
            sample(&tree.join("sub/b.bin"), 70_000, 3),
        ),
        (
            tree.join("sub/deeper/c"),
            sample(&tree.join("sub/deeper/c"), 10, 4),
        ),
    ];
    let sums: Vec<String> = files.iter().map(|(p, _)| expected_sum(p)).collect();
    ok(&zstor(
        &no_root,
        &["store", "-f", tree.to_str().expect("utf8"), "-d", "-e"],
    ));
    for ((path, bytes), sum) in files.iter().zip(&sums) {
        assert!(!path.exists(), "{} deleted after upload", path.display());
        let p = path.to_str().expect("utf8");
        assert_eq!(ok(&zstor(&no_root, &["check", "-f", p])).trim(), sum);
        ok(&zstor(&no_root, &["retrieve", "-f", p]));
        assert_eq!(&std::fs::read(path).expect("retrieved in place"), bytes);
    }
    // A file outside the root is refused, naming the root.
    let err = fails(&zstor(
        &config,
        &["store", "-f", input.to_str().expect("utf8")],
    ));
    assert!(err.contains("outside the config's root"), "{err}");
    // A directory whose files all fail: reported, exit 0 as 0-stor v2; with -e, exit 1.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    sample(&outside.join("x"), 10, 6);
    sample(&outside.join("y"), 10, 7);
    let dir = outside.to_str().expect("utf8");
    let out = zstor(&config, &["store", "-f", dir]);
    ok(&out);
    let err = text(&out.stderr);
    assert!(err.contains("2 of 2 files"), "{err}");
    let err = fails(&zstor(&config, &["store", "-f", dir, "-e"]));
    assert!(err.contains("outside the config's root"), "{err}");

    // Lose one data backend: `test` says how many answered and how many are needed;
    // `store` still stores (a degraded write: 5 of 6 shards) and says so; `status` marks
    // it unreachable.
    let lost = c.data[5].addr.clone();
    c.data[5].stop();
    let err = fails(&zstor(&config, &["test"]));
    assert!(err.contains(&lost) && err.contains("unreachable"), "{err}");
    assert!(err.contains("5 reachable, 6 needed"), "{err}");
    let out = store_file(&config, &input, "/virtualroot/again");
    ok(&out);
    let err = text(&out.stderr);
    assert!(err.contains("stored below full redundancy"), "{err}");
    // Rebuild has nowhere to move the lost shard.
    let err = fails(&zstor(
        &config,
        &["rebuild", "-f", "/virtualroot/dir/input.bin"],
    ));
    assert!(err.contains("5 reachable, 6 needed"), "{err}");
    let st: serde_json::Value =
        serde_json::from_str(&ok(&zstor(&config, &["status", "--json"]))).expect("JSON");
    let down: Vec<&serde_json::Value> = st["groups"][0]
        .as_array()
        .expect("group")
        .iter()
        .filter(|b| b["reachable"] == false)
        .collect();
    assert_eq!(down.len(), 1);
    assert_eq!(down[0]["address"], lost.as_str());
    // Still retrievable from 5 of 6.
    std::fs::remove_file(&out_file).expect("rm");
    ok(&retrieve_file(
        &config,
        "/virtualroot/dir/input.bin",
        &out_file,
    ));
    assert_eq!(std::fs::read(&out_file).expect("read out"), bytes);
}

#[test]
fn rebuild_moves_lost_shards_repairs_bitrot_and_reencodes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "42".repeat(32);
    let mut c = cluster(tmp.path(), &key, 7);
    let config = write_config(tmp.path(), "zstor_config.toml", &c.text);
    let input = tmp.path().join("input.bin");
    let bytes = sample(&input, (4 << 20) + 4321, 5);
    let name = "/virtualroot/r/input.bin";
    ok(&store_file(&config, &input, "/virtualroot/r"));

    // Healthy: nothing to do, by path and by raw metadata key.
    let out = ok(&zstor(&config, &["rebuild", "-f", name]));
    assert!(out.contains("healthy"), "{out}");
    let (raw_key, _) =
        zstor::meta::meta_key("test", Some(Path::new("/virtualroot")), Path::new(name));
    let out = ok(&zstor(&config, &["rebuild", "-k", &raw_key]));
    assert!(out.contains("healthy"), "{out}");

    // Rot chunk 1 of shard 0, lose the backend of shard 1.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store =
        zstor::Store::new(zstor::Config::from_toml(&c.text).expect("config")).expect("store");
    let meta = rt
        .block_on(store.meta().get(Path::new(name)))
        .expect("metadata");
    assert_eq!(meta.chunk_count(), 2);
    rt.block_on(async {
        let s0 = &meta.shards[0];
        let client = zdb_client::Client::new(
            zdb_client::ClientConfig::new(s0.backend.address.parse().expect("endpoint"))
                .with_namespace("data", None),
        )
        .expect("client");
        client
            .update_seq(s0.keys[1], b"rotten")
            .await
            .expect("corrupt");
    });
    let addr_of = |s: usize| meta.shards[s].backend.address.clone();
    let (lost1, lost2, lost3) = (addr_of(1), addr_of(2), addr_of(3));
    c.data
        .iter_mut()
        .filter(|z| z.addr == lost1)
        .for_each(TestZdb::stop);
    let out = ok(&zstor(&config, &["rebuild", "-f", name]));
    assert!(
        out.contains("3 piece(s) rewritten") && out.contains("[1]"),
        "{out}"
    );
    let after = rt
        .block_on(store.meta().get(Path::new(name)))
        .expect("metadata");
    assert_ne!(after.shards[1].backend.address, lost1);
    assert_eq!(after.shards[0].backend, meta.shards[0].backend);
    assert_ne!(after.shards[0].keys[1], meta.shards[0].keys[1]);
    assert_eq!(after.shards[4], meta.shards[4]);

    // Now lose shards 2 and 3 too: only the repaired 0, the moved 1, and 4 and 5 remain.
    c.data
        .iter_mut()
        .filter(|z| z.addr == lost2 || z.addr == lost3)
        .for_each(TestZdb::stop);
    let out_file = tmp.path().join("out.bin");
    ok(&retrieve_file(&config, name, &out_file));
    assert_eq!(std::fs::read(&out_file).expect("read"), bytes);

    // Another code (4+0 over the 4 backends left): re-encoded, and still byte-exact.
    let live: Vec<&TestZdb> = c
        .data
        .iter()
        .filter(|z| ![&lost1, &lost2, &lost3].contains(&&z.addr))
        .collect();
    assert_eq!(live.len(), 4);
    let mut text = c.text.replace("expected_shards = 6", "expected_shards = 5");
    for z in &c.data {
        if !live.iter().any(|l| l.addr == z.addr) {
            text = text.replace(
                &format!(
                    "[[groups.backends]]\naddress = \"{}\"\nnamespace = \"data\"\n",
                    z.addr
                ),
                "",
            );
        }
    }
    // 4+1 needs 5 backends: only 4 are configured, and the config says so.
    let smaller = write_config(tmp.path(), "smaller.toml", &text);
    let err = fails(&zstor(&smaller, &["rebuild", "-f", name]));
    assert!(
        err.contains("`groups`") && err.contains("only 4 available"),
        "{err}"
    );
    // 3+1 fits.
    let text = text
        .replace("minimal_shards = 4", "minimal_shards = 3")
        .replace("expected_shards = 5", "expected_shards = 4");
    let smaller = write_config(tmp.path(), "smaller.toml", &text);
    let out = ok(&zstor(&smaller, &["rebuild", "-f", name]));
    assert!(out.contains("re-encoded"), "{out}");
    std::fs::remove_file(&out_file).expect("rm");
    ok(&retrieve_file(&smaller, name, &out_file));
    assert_eq!(std::fs::read(&out_file).expect("read"), bytes);
    let sum = ok(&zstor(&smaller, &["check", "-f", name]));
    assert_eq!(sum.trim(), expected_sum(&input));
}

#[test]
fn bad_config_names_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = TestZdb::start_in(&tmp.path().join("z"));
    let good = config_text(&[&fake; 6], &[&fake; 4], &"42".repeat(32));
    // Field checks run in order: these fail before the duplicated backends would.
    let bad = good.replace("minimal_shards = 4", "minimal_shards = 0");
    let config = write_config(tmp.path(), "bad.toml", &bad);
    let err = fails(&zstor(&config, &["test"]));
    assert!(err.contains("minimal_shards"), "{err}");
    assert!(err.contains("bad.toml"), "{err}");

    let bad = good.replace("algorithm = \"snappy\"", "algorithm = \"gzip\"");
    let config = write_config(tmp.path(), "bad2.toml", &bad);
    let err = fails(&zstor(&config, &["status"]));
    assert!(err.contains("compression.algorithm"), "{err}");

    let missing = tmp.path().join("absent.toml");
    let err = fails(&zstor(&missing, &["check", "-f", "/x"]));
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn monitor_needs_a_config_and_help_lists_v2_flags() {
    let missing = Path::new("/nonexistent/zstor_config.toml");
    let err = fails(&zstor(missing, &["monitor"]));
    assert!(err.contains("cannot read config"), "{err}");
    // --log_file: errors go to the file as well.
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("zstor.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zstor"));
    cmd.arg("--log_file")
        .arg(&log)
        .arg("-d")
        .arg("-c")
        .arg(missing);
    cmd.args(["check", "-f", "/x"]);
    fails(&run(cmd));
    let logged = std::fs::read_to_string(&log).expect("log file");
    assert!(logged.contains("cannot read config"), "{logged}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zstor"));
    cmd.arg("store").arg("--help");
    let help = ok(&run(cmd));
    assert!(help.contains("--error-on-failure") && help.contains("--notblocking"));
}
