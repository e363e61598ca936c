//! A scripted RESP server for testing the client's own logic (connection handling,
//! pipelining, pooling, reply parsing). It is a test double, not a zdb: each test gives it
//! a handler that maps a decoded request to canned reply bytes.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use resp::Limits;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use zdb_client::Endpoint;

/// What the server does with one request.
pub enum Action {
    /// Write these bytes.
    Reply(Vec<u8>),
    /// Write these bytes one at a time, yielding between bytes.
    Trickle(Vec<u8>),
    /// Write these bytes one at a time with this pause before each: a slow but live peer.
    Drip(std::time::Duration, Vec<u8>),
    /// Wait, then write these bytes.
    Delay(std::time::Duration, Vec<u8>),
    /// Write these bytes, then close the connection.
    ReplyThenClose(Vec<u8>),
    /// Close the connection without replying.
    Close,
    /// Never reply (the connection stays open).
    Silent,
}

/// Shared record of every request: (connection number, arguments).
pub type Log = Arc<Mutex<Vec<(usize, Vec<String>)>>>;

/// Request handler: (connection number, arguments) → action.
pub type Handler = Arc<dyn Fn(usize, &[Bytes]) -> Action + Send + Sync>;

/// Reply bytes helpers.
pub fn ok() -> Action {
    Action::Reply(b"+OK\r\n".to_vec())
}

pub fn bulk(data: &[u8]) -> Action {
    let mut out = BytesMut::new();
    resp::write_bulk(&mut out, data);
    Action::Reply(out.to_vec())
}

pub fn err(text: &str) -> Action {
    Action::Reply(format!("-{text}\r\n").into_bytes())
}

pub fn raw(bytes: &[u8]) -> Action {
    Action::Reply(bytes.to_vec())
}

/// Arguments as lossy strings, for assertions.
pub fn strings(args: &[Bytes]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Uppercased command name.
pub fn cmd(args: &[Bytes]) -> String {
    args.first()
        .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
        .unwrap_or_default()
}

pub struct FakeServer {
    pub endpoint: Endpoint,
    /// Every request received: (connection number, arguments).
    pub log: Log,
    /// Number of connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    handler: Handler,
    log: Log,
    accepted: Arc<AtomicUsize>,
    /// Hold all replies on a connection until this many requests arrived on it.
    hold_until: usize,
}

impl FakeServer {
    /// Listens on 127.0.0.1 with an ephemeral port.
    pub async fn tcp(handler: impl Fn(usize, &[Bytes]) -> Action + Send + Sync + 'static) -> Self {
        Self::tcp_holding(0, handler).await
    }

    /// Like [`FakeServer::tcp`], but replies on each connection are withheld until
    /// `hold_until` requests have been received on it, then sent in one write.
    pub async fn tcp_holding(
        hold_until: usize,
        handler: impl Fn(usize, &[Bytes]) -> Action + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = Self::shared(hold_until, handler);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let id = s.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, id, s.clone()));
            }
        });
        FakeServer {
            endpoint: Endpoint::Tcp(addr.to_string()),
            log: shared.log,
            accepted: shared.accepted,
            task,
        }
    }

    /// Listens on a unix socket inside `dir`.
    pub async fn unix(
        dir: &Path,
        handler: impl Fn(usize, &[Bytes]) -> Action + Send + Sync + 'static,
    ) -> Self {
        let path = dir.join("zdb.sock");
        let listener = UnixListener::bind(&path).expect("bind unix");
        let shared = Self::shared(0, handler);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let id = s.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, id, s.clone()));
            }
        });
        FakeServer {
            endpoint: Endpoint::Unix(path),
            log: shared.log,
            accepted: shared.accepted,
            task,
        }
    }

    fn shared(
        hold_until: usize,
        handler: impl Fn(usize, &[Bytes]) -> Action + Send + Sync + 'static,
    ) -> Shared {
        Shared {
            handler: Arc::new(handler),
            log: Arc::default(),
            accepted: Arc::default(),
            hold_until,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<(usize, Vec<String>)> {
        self.log.lock().unwrap().clone()
    }

    /// Requests received so far whose command name is `name`.
    pub fn count(&self, name: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(_, a)| a.first().is_some_and(|c| c.eq_ignore_ascii_case(name)))
            .count()
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, id: usize, s: Shared) {
    let limits = Limits::default().with_max_bulk_len(64 * 1024 * 1024);
    let mut decoder = resp::Decoder::new(limits);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut held: Vec<u8> = Vec::new();
    let mut received = 0usize;
    loop {
        loop {
            let args = match decoder.decode_request(&mut buf) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(_) => return,
            };
            received += 1;
            s.log.lock().unwrap().push((id, strings(&args)));
            match (s.handler)(id, &args) {
                Action::Reply(bytes) if received < s.hold_until => held.extend(bytes),
                Action::Reply(bytes) => {
                    held.extend(bytes);
                    if stream.write_all(&held).await.is_err() {
                        return;
                    }
                    held.clear();
                }
                Action::Trickle(bytes) => {
                    for b in bytes {
                        if stream.write_all(&[b]).await.is_err() {
                            return;
                        }
                        let _ = stream.flush().await;
                        tokio::task::yield_now().await;
                    }
                }
                Action::Drip(pause, bytes) => {
                    for b in bytes {
                        tokio::time::sleep(pause).await;
                        if stream.write_all(&[b]).await.is_err() {
                            return;
                        }
                        let _ = stream.flush().await;
                    }
                }
                Action::Delay(wait, bytes) => {
                    tokio::time::sleep(wait).await;
                    held.extend(bytes);
                    if stream.write_all(&held).await.is_err() {
                        return;
                    }
                    held.clear();
                }
                Action::ReplyThenClose(bytes) => {
                    held.extend(bytes);
                    let _ = stream.write_all(&held).await;
                    return;
                }
                Action::Close => return,
                Action::Silent => {}
            }
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
