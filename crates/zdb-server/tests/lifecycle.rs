//! Process lifecycle against the real binary: restart persistence, kill -9 durability with
//! `--sync`, hooks, timers, unix socket, command-line flags, `--dump`, `--background`.

mod common;
use common::*;
use resp::Frame;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn zdb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zdb"))
}

/// A hook script appending its argv to `<dir>/hooks.log`; exits 1 for `refuse_event`.
fn hook_script(dir: &Path, refuse_event: &str) -> (PathBuf, PathBuf) {
    let log = dir.join("hooks.log");
    let script = dir.join("hook.sh");
    let body = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\n[ \"$1\" = '{refuse_event}' ] && exit 1\nexit 0\n",
        log.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn data_survives_a_graceful_restart() {
    let mut z = Zdb::start(&[]);
    {
        let mut r = z.raw();
        r.cmd(&["SET", "k", "v"]);
        r.cmd(&["NSNEW", "n"]);
        r.cmd(&["SELECT", "n"]);
        r.cmd(&["SET", "k2", "v2"]);
        r.cmd(&["NSSET", "n", "password", "pw"]);
        r.cmd(&["NSSET", "n", "lock", "1"]);
    }
    assert!(z.stop().success(), "SIGTERM exits 0");
    z.restart();
    let mut r = z.raw();
    assert_eq!(r.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(r.cmd(&["SELECT", "n", "pw"]), ok());
    assert_eq!(r.cmd(&["GET", "k2"]), bulk("v2"));
    assert_eq!(
        r.cmd(&["SET", "k3", "x"]),
        err("Namespace is temporarily locked (read-only)"),
        "lock is persisted"
    );
}

#[test]
fn kill9_with_sync_keeps_every_acknowledged_write() {
    let mut z = Zdb::start(&["--sync"]);
    let port = z.port;
    let writer = std::thread::spawn(move || {
        let mut r = Raw::connect(port);
        let mut acked = Vec::new();
        for i in 0u64.. {
            let key = format!("key{i}");
            let value = format!("value-{i}-{}", "x".repeat((i % 97) as usize));
            match r.try_cmd(&[b"SET", key.as_bytes(), value.as_bytes()]) {
                Some(f) if f == bulk(&key) => acked.push((key, value)),
                _ => break,
            }
        }
        acked
    });
    // Let a few hundred writes through, then kill mid-stream.
    wait::until("some writes", WAIT, || {
        let mut r = Raw::connect(port);
        matches!(r.cmd(&["DBSIZE"]), Frame::Integer(n) if n >= 200)
    });
    z.kill9();
    let acked = writer.join().unwrap();
    assert!(acked.len() >= 200);
    z.restart();
    let mut r = z.raw();
    for (k, v) in &acked {
        assert_eq!(r.cmd(&["GET", k]), bulk(v), "acknowledged {k} lost");
    }
}

#[test]
fn hooks_run_with_argv_and_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(tmp.path(), "none");
    let mut z = Zdb::start_in(tmp.path(), &["--hook", script.to_str().unwrap()]);
    let instance = format!("tcp://127.0.0.1:{}", z.port);
    let index = z.index_dir();
    let data = z.data_dir();
    let lines = log_lines(&log);
    assert_eq!(
        lines[0],
        format!(
            "namespaces-init {instance} {} {}",
            index.display(),
            data.display()
        )
    );
    assert_eq!(lines[1], format!("ready {instance}"));
    let mut r = z.raw();
    r.cmd(&["SET", "k", "v"]);
    assert_eq!(r.cmd(&["NSJUMP"]), ok());
    let (i0, i1) = (index.join("default/i0"), index.join("default/i1"));
    let (d0, d1) = (data.join("default/d0"), data.join("default/d1"));
    wait::until("jump hooks", WAIT, || {
        let l = log_lines(&log);
        l.iter().any(|x| {
            x.starts_with(&format!(
                "jump-index {instance} {} {} ",
                i0.display(),
                i1.display()
            ))
        }) && l.contains(&format!(
            "jump-data {instance} {} {}",
            d0.display(),
            d1.display()
        ))
    });
    // The jump-index hook exited 0: the ids it was given are no longer dirty (as in 0-db).
    let Frame::Array(dirty) = r.cmd(&["INDEX", "DIRTY"]) else {
        panic!("INDEX DIRTY")
    };
    assert!(!dirty.contains(&int(0)), "{dirty:?}");
    assert_eq!(r.cmd(&["NSNEW", "made"]), ok());
    assert_eq!(r.cmd(&["NSSET", "made", "public", "0"]), ok());
    wait::until("namespace hooks", WAIT, || {
        let l = log_lines(&log);
        l.contains(&format!("namespace-created {instance} made"))
            && l.contains(&format!("namespace-updated {instance} made"))
    });
    let Frame::Array(runs) = r.cmd(&["HOOKS"]) else {
        panic!("HOOKS")
    };
    let ready = runs
        .iter()
        .find_map(|run| match run {
            Frame::Array(f) if f.len() == 6 && f[0] == bulk("ready") => Some(f.clone()),
            _ => None,
        })
        .expect("ready run listed");
    assert_eq!(ready[1], Frame::Array(vec![]));
    assert!(matches!(ready[2], Frame::Integer(pid) if pid > 0));
    assert!(matches!(ready[4], Frame::Integer(t) if t > 0));
    assert_eq!(ready[5], int(0));
    drop(r);
    assert!(z.stop().success());
    let l = log_lines(&log);
    assert!(l.contains(&format!("close {instance}")), "{l:?}");
    wait::until("namespace-closing", WAIT, || {
        log_lines(&log)
            .iter()
            .any(|x| x.starts_with("namespace-closing "))
    });
}

#[test]
fn ready_hook_refusal_aborts_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (script, log) = hook_script(tmp.path(), "ready");
    let out = zdb()
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--hook",
            script.to_str().unwrap(),
        ])
        .arg("--data")
        .arg(tmp.path().join("data"))
        .arg("--index")
        .arg(tmp.path().join("index"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ready hook refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log_lines(&log).iter().any(|l| l.starts_with("ready ")));
}

#[test]
fn rotate_jumps_old_segments() {
    let z = Zdb::start(&["--rotate", "1", "--synctime", "1"]);
    let mut r = z.raw();
    r.cmd(&["SET", "k", "v"]);
    wait::until("rotation", WAIT, || {
        z.data_dir().join("default/d1").exists()
    });
    assert_eq!(r.cmd(&["GET", "k"]), bulk("v"));
}

#[test]
fn unix_socket_with_dualnet() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("zdb.sock");
    let z = Zdb::start_in(
        tmp.path(),
        &["--socket", sock.to_str().unwrap(), "--dualnet"],
    );
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    assert_eq!(z.raw().cmd(&["PING"]), status("PONG"));
}

#[test]
fn command_line_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        zdb()
            .args(args)
            .arg("--data")
            .arg(tmp.path().join("d"))
            .arg("--index")
            .arg(tmp.path().join("i"))
            .args(["--listen", "127.0.0.1", "--port", "0"])
            .output()
            .unwrap()
    };
    assert!(!run(&["--datasize", "8G"]).status.success());
    assert!(!run(&["--datasize", "32"]).status.success());
    assert!(!run(&["--mode", "bogus"]).status.success());
    assert!(!run(&["--unknown-flag"]).status.success());
    let out = run(&["--protect"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--protect needs --admin"));
    let out = zdb().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("zdb "));
}

#[test]
fn forced_mode_must_match_the_dataset() {
    let mut z = Zdb::start(&[]);
    z.raw().cmd(&["SET", "a", "1"]);
    z.stop();
    let out = zdb()
        .args(["--listen", "127.0.0.1", "--port", "0", "--mode", "seq"])
        .arg("--data")
        .arg(z.data_dir())
        .arg("--index")
        .arg(z.index_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--mode forces"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dump_prints_namespaces() {
    let mut z = Zdb::start(&[]);
    {
        let mut r = z.raw();
        r.cmd(&["SET", "a", "1"]);
        r.cmd(&["SET", "b", "2"]);
        r.cmd(&["NSNEW", "other"]);
    }
    z.stop();
    let out = zdb()
        .arg("--dump")
        .arg("--data")
        .arg(z.data_dir())
        .arg("--index")
        .arg(z.index_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("namespace default: mode userkey, entries 2"),
        "{text}"
    );
    assert!(text.contains("namespace other:"), "{text}");
}

#[test]
fn background_detaches_once_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let logfile = tmp.path().join("zdb.log");
    let out = zdb()
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--background",
        ])
        .arg("--logfile")
        .arg(&logfile)
        .arg("--data")
        .arg(tmp.path().join("d"))
        .arg("--index")
        .arg(tmp.path().join("i"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = text
        .split("pid ")
        .nth(1)
        .and_then(|s| s.trim().trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"));
    // Ready means listening: no polling needed.
    let mut r = Raw::connect(port);
    assert_eq!(r.cmd(&["PING"]), status("PONG"));
    drop(r);
    // SAFETY: kill(2) on the daemon we started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    wait::until("daemon exit", WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    wait::until("log written", WAIT, || {
        std::fs::read_to_string(&logfile).is_ok_and(|l| l.contains("shutting down"))
    });
}

/// The offload cycle qsfs relies on: a closed data segment moved away is brought back by the
/// blocking `missing-data` hook on the next read; if the hook cannot, the read fails cleanly
/// (an error, never wrong bytes) and other segments keep serving.
#[test]
fn missing_data_hook_restores_an_offloaded_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("offloaded");
    std::fs::create_dir_all(&store).unwrap();
    let log = tmp.path().join("hooks.log");
    let script = tmp.path().join("hook.sh");
    // missing-data <instance> <path>: copy the file back from the "remote" store if it is there.
    let body = format!(
        "#!/bin/sh\necho \"$@\" >> '{log}'\nif [ \"$1\" = missing-data ]; then\n  \
         cp '{store}'/\"$(basename \"$3\")\" \"$3\" || exit 1\nfi\nexit 0\n",
        log = log.display(),
        store = store.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let z = Zdb::start_in(tmp.path(), &["--hook", script.to_str().unwrap()]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["SET", "old", "in segment zero"]), bulk("old"));
    assert_eq!(r.cmd(&["NSJUMP"]), ok());
    assert_eq!(r.cmd(&["SET", "new", "in segment one"]), bulk("new"));
    let d0 = z.data_dir().join("default/d0");
    std::fs::rename(&d0, store.join("d0")).unwrap();

    assert_eq!(r.cmd(&["EXISTS", "old"]), int(1), "the index alone answers");
    // Handles of closed segments are released every second; then the read goes to the hook.
    wait::until("missing-data hook", WAIT, || {
        assert_eq!(r.cmd(&["GET", "old"]), bulk("in segment zero"));
        log_lines(&log)
            .iter()
            .any(|l| l.starts_with("missing-data ") && l.ends_with(&d0.display().to_string()))
    });
    assert!(d0.exists(), "the hook brought the segment back");

    // Gone for good: a clean error, and the other segment still serves.
    drop(r);
    drop(z);
    std::fs::remove_file(&d0).unwrap();
    std::fs::remove_file(store.join("d0")).unwrap();
    let z = Zdb::start_in(tmp.path(), &["--hook", script.to_str().unwrap()]);
    let mut r = z.raw();
    assert!(matches!(r.cmd(&["GET", "old"]), Frame::Error(_)));
    assert_eq!(r.cmd(&["GET", "new"]), bulk("in segment one"));
}
