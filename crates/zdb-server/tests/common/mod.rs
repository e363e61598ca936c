//! Test harness: start the real `zdb` binary (this crate's own; other suites use test-kit's
//! in-process server) on 127.0.0.1 with temp dirs, wait for readiness by polling (test-kit's
//! waits, no fixed sleeps), talk to it with the `redis` crate or a raw RESP client, and kill
//! it on drop.
#![allow(dead_code)]

use bytes::BytesMut;
use resp::{Frame, Limits};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
pub use test_kit::net::free_port;
pub use test_kit::wait;

/// How long a start may take (debug builds on a busy machine).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running `zdb` process.
pub struct Zdb {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    /// Removed on drop (after the process is killed).
    tmp: Option<tempfile::TempDir>,
}

/// One PING round trip on a fresh connection.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Zdb {
    /// Start with fresh directories under a new temp dir, removed on drop.
    pub fn start(args: &[&str]) -> Zdb {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut z = Zdb::start_in(tmp.path(), args);
        z.tmp = Some(tmp);
        z
    }

    /// Start with `<dir>/data` and `<dir>/index`.
    pub fn start_in(dir: &Path, args: &[&str]) -> Zdb {
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        for _ in 0..5 {
            let port = free_port();
            let mut z = Zdb {
                child: None,
                port,
                dir: dir.to_path_buf(),
                args: args.clone(),
                tmp: None,
            };
            if z.spawn() {
                return z;
            }
        }
        panic!("zdb did not start");
    }

    /// Spawn and wait until it accepts connections; false if it exited (e.g. port race).
    fn spawn(&mut self) -> bool {
        let child = Command::new(env!("CARGO_BIN_EXE_zdb"))
            .args(["--listen", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--data")
            .arg(self.dir.join("data"))
            .arg("--index")
            .arg(self.dir.join("index"))
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn zdb");
        self.child = Some(child);
        let mut exited = None;
        // The port is bound before the engine opens and the ready hook runs: ready means a
        // PING is answered.
        wait::until("zdb to answer PING", START_DEADLINE, || {
            exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            exited.is_some() || ping(self.port)
        });
        if let Some(st) = exited {
            eprintln!("zdb exited during start: {st}");
            self.child = None;
            return false;
        }
        true
    }

    /// Restart on the same directories and flags (after stop or kill).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        for _ in 0..5 {
            if self.spawn() {
                return;
            }
            self.port = free_port();
        }
        panic!("zdb did not restart");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.dir.join("index")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait (graceful shutdown).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        wait::exit("zdb (SIGTERM)", &mut child, Duration::from_secs(30))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("client")
            .get_connection()
            .expect("connect")
    }

    /// A raw RESP connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }
}

impl Drop for Zdb {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal RESP client that shows replies exactly (status vs bulk, exact error text).
pub struct Raw {
    pub s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Raw {
            s,
            buf: BytesMut::new(),
        }
    }

    /// Send a request of binary arguments and read its reply.
    pub fn cmdb(&mut self, args: &[&[u8]]) -> Frame {
        self.send_cmd(args);
        self.read().expect("reply")
    }

    /// Send a request of text arguments and read its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmdb(&a)
    }

    /// Like [`Raw::cmdb`] but None on any I/O failure (server killed).
    pub fn try_cmd(&mut self, args: &[&[u8]]) -> Option<Frame> {
        let mut out = BytesMut::new();
        resp::write_command(&mut out, args);
        self.s.write_all(&out).ok()?;
        loop {
            if let Some(f) = resp::decode(&mut self.buf, &Limits::default()).ok()? {
                return Some(f);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        let mut out = BytesMut::new();
        resp::write_command(&mut out, args);
        self.s.write_all(&out).expect("write");
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// The next reply frame; None on EOF.
    pub fn read(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = resp::decode(&mut self.buf, &Limits::default()).expect("valid reply") {
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                // A child exiting (SIGCHLD) may interrupt the read: just read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next reply if one arrives within `wait`.
    pub fn try_read(&mut self, wait: Duration) -> Option<Frame> {
        if let Some(f) = resp::decode(&mut self.buf, &Limits::default()).expect("valid reply") {
            return Some(f);
        }
        self.s.set_read_timeout(Some(wait)).expect("timeout");
        let mut chunk = [0u8; 65536];
        let got = match self.s.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => false,
        };
        self.s
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        if got {
            self.read()
        } else {
            None
        }
    }

    /// True when the server closed the connection (after any pending replies are read).
    pub fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

pub fn ok() -> Frame {
    Frame::simple("OK")
}

pub fn status(s: &str) -> Frame {
    Frame::Simple(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

pub fn err(s: &str) -> Frame {
    Frame::Error(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

pub fn bulk(b: impl AsRef<[u8]>) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(b.as_ref()))
}

pub fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

pub fn nil() -> Frame {
    Frame::Null
}

/// The `key: value` lines of an INFO/NSINFO bulk reply.
pub fn fields(f: &Frame) -> Vec<(String, String)> {
    let text = f.to_text().expect("bulk text");
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn field(f: &Frame, key: &str) -> Option<String> {
    fields(f)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Seq-mode id as sent on the wire (8 bytes LE).
pub fn id(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// Bound of a test's wait for something to happen (`wait::until(what, WAIT, …)`).
pub const WAIT: Duration = Duration::from_secs(20);
