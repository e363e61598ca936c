//! The separate-process deployment: `zdb --hook deploy/zdb-hook.sh` storing closed segments
//! through the `zstor` binary, and bringing a deleted segment back on a read after a restart.
//! Needs the workspace's `zdb` and `zstor` binaries next to `qsfs` (scripts/test builds them).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait;

fn sibling(name: &str) -> PathBuf {
    let p = Path::new(common::BIN).with_file_name(name);
    assert!(
        p.exists(),
        "{} missing: build the workspace first (scripts/test does)",
        p.display()
    );
    p
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    wait::until_some("the server to listen", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
}

/// Send one command, read one reply: `Ok(Some(bytes))` for a bulk or status, `Ok(None)` for a
/// nil, `Err(text)` for an error.
fn call(s: &mut TcpStream, args: &[&[u8]]) -> Result<Option<Vec<u8>>, String> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend(format!("${}\r\n", a.len()).bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let body = line[1..].trim_end().to_string();
    match line.as_bytes()[0] {
        b'+' | b':' => Ok(Some(body.into_bytes())),
        b'-' => Err(body),
        b'$' if body == "-1" => Ok(None),
        b'$' => {
            let mut buf = vec![0u8; body.parse::<usize>().unwrap() + 2];
            r.read_exact(&mut buf).unwrap();
            buf.truncate(buf.len() - 2);
            Ok(Some(buf))
        }
        other => panic!("unexpected reply type {}", other as char),
    }
}

fn zstor_config(root: &Path, meta: &[u16], data: &[u16]) -> PathBuf {
    let mut t = format!(
        "minimal_shards = 4\nexpected_shards = 6\nroot = \"{}\"\n\
         [encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n\
         [compression]\nalgorithm = \"snappy\"\n\
         [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"hook\"\n\
         [meta.config.encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n",
        root.join("zdb").display(),
        "ab".repeat(32),
        "cd".repeat(32)
    );
    for p in meta {
        t += &format!("[[meta.config.backends]]\naddress = \"127.0.0.1:{p}\"\nnamespace = \"m\"\n");
    }
    t += "[[groups]]\n";
    for p in data {
        t += &format!("[[groups.backends]]\naddress = \"127.0.0.1:{p}\"\nnamespace = \"d\"\n");
    }
    let path = root.join("zstor.toml");
    std::fs::write(&path, t).unwrap();
    path
}

fn start_zdb(root: &Path, port: u16, config: &Path) -> Kill {
    let hook = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/zdb-hook.sh");
    let zdb = root.join("zdb");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("zdb.log"))
        .unwrap();
    let child = Command::new(sibling("zdb"))
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--mode",
            "seq",
        ])
        .args(["--datasize", "1048576", "--hook"])
        .arg(&hook)
        .arg("--data")
        .arg(zdb.join("data"))
        .arg("--index")
        .arg(zdb.join("index"))
        .env("ZSTOR", sibling("zstor"))
        .env("ZSTOR_CONFIG", config)
        .env("ZDB_INDEX", zdb.join("index"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Kill(child)
}

fn value(i: u32) -> Vec<u8> {
    format!("record {i} ").repeat(3000).into_bytes()
}

#[test]
fn zdb_hook_offloads_closed_segments_and_fetches_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut ports = test_kit::net::free_ports(11);
    let zdb_port = ports.pop().unwrap();
    let _backends: Vec<Kill> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut cmd = Command::new(common::BIN);
            cmd.arg("standin")
                .arg("--dir")
                .arg(root.join(format!("b{i}")));
            cmd.args(["--port", &port.to_string()]);
            match i < 4 {
                true => cmd.args(["--namespace", "m"]),
                false => cmd.args(["--namespace", "d", "--sequential"]),
            };
            let k = Kill(cmd.stdin(Stdio::null()).spawn().unwrap());
            drop(connect(*port));
            k
        })
        .collect();
    let config = zstor_config(root, &ports[..4], &ports[4..]);
    let zdb = start_zdb(root, zdb_port, &config);
    let mut c = connect(zdb_port);
    let mut keys = Vec::new();
    for i in 0..120 {
        keys.push(call(&mut c, &[b"SET", b"", &value(i)]).unwrap().unwrap());
    }
    let d0 = root.join("zdb/data/default/d0");
    assert!(root.join("zdb/data/default/d1").exists(), "segments jumped");
    let zstor = |args: &[&str]| {
        Command::new(sibling("zstor"))
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let last_error = std::cell::RefCell::new(String::new());
    wait::until_every(
        "the hook to store d0",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            let check = zstor(&["check", "-f", d0.to_str().unwrap()]);
            *last_error.borrow_mut() = String::from_utf8_lossy(&check.stderr).into_owned();
            check.status.success()
        },
        || {
            format!(
                "{}\nzdb log:\n{}",
                last_error.borrow(),
                std::fs::read_to_string(root.join("zdb.log")).unwrap_or_default()
            )
        },
    );

    // Lose d0 locally while zdb is down; a read after the restart fetches it back.
    drop(c);
    drop(zdb);
    let local = std::fs::read(&d0).unwrap();
    std::fs::remove_file(&d0).unwrap();
    let _zdb = start_zdb(root, zdb_port, &config);
    let mut c = connect(zdb_port);
    assert_eq!(call(&mut c, &[b"GET", &keys[0]]).unwrap(), Some(value(0)));
    assert_eq!(
        std::fs::read(&d0).unwrap(),
        local,
        "the hook brought the same segment back"
    );
}
