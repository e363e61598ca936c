//! A real drive server on loopback (web routes and WebDAV over a temporary folder), its
//! accounts, and a small blocking HTTP client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

pub const TOKEN: &str = "dav-test-token";

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub state: Arc<qsfs_web::WebState>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tasks = service_kit::Tasks::new();
                let stop = tasks.stop_signal();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let dav = qsfs_dav::routes(Arc::clone(&st));
                let server = tokio::spawn(qsfs_web::serve(
                    qsfs_web::Listener::Plain(listener),
                    st,
                    dav,
                    stop,
                ));
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                tasks.stop(std::time::Duration::from_secs(5)).await;
                let _ = server.await;
            });
        });
        Server {
            dir,
            port,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self, name: &str) -> PathBuf {
        self.root().join(qsfs_web::users::HOMES).join(name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// An account with `password` and an app password; the app password.
    pub fn account(&self, name: &str, password: &str, quota: Option<u64>) -> String {
        self.state.users.add(name, password, false, quota).unwrap();
        let user = self.state.users.get(name).unwrap();
        self.state.app_passwords.create(&user, "tests").unwrap().1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// One request: its status and body (any status; transport errors panic).
pub fn call(
    method: &str,
    url: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut req = ureq::request(method, url);
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    // Read whole (ureq's `into_string` stops at 10 MB; a large listing is more).
    let status = r.status();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut r.into_reader(), &mut text).unwrap();
    (status, text)
}

/// A PUT as curl sends a large one (`Expect: 100-continue`): the body goes only if the
/// server asks for it. The status of the final answer.
pub fn put_expecting(port: u16, path: &str, auth: &str, body: &[u8]) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
        // Skip the headers.
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
        }
        if status != 100 {
            return status;
        }
        s.write_all(body).unwrap();
    }
}
