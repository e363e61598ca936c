//! The control socket a daemon's command-line tool talks to.
//!
//! Framing: one request per connection, as one line of JSON; one answer, as one line of JSON
//! (serde_json never writes a raw newline inside a value). A person can talk to it too:
//! `echo '{"op":"status"}' | socat - UNIX-CONNECT:<socket>`. A connection closed before any
//! request is a reachability probe and gets no answer.
//!
//! The socket is created mode 0600 (only its owner, normally root, may talk to the daemon);
//! binding refuses when another daemon answers on the path and removes a stale file.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;

use crate::task::Stop;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 1 << 20;
/// Longest answer line a client accepts.
pub const MAX_ANSWER: usize = 64 << 20;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take before the daemon counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What can go wrong on either end.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing accepts connections on the socket.
    #[error("no daemon answers on {path}: {error}")]
    Unreachable {
        path: PathBuf,
        /// Why (in the message, not a `source`: printed once).
        error: std::io::Error,
    },
    /// Another daemon already answers on the socket.
    #[error("another daemon is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// Local I/O on the socket.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    /// A line that is too long, not JSON, or not of the expected shape.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The peer closed the connection before a whole line.
    #[error("connection closed before a whole message")]
    Closed,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlError {
    let context = context.into();
    move |error| ControlError::Io { context, error }
}

/// What a daemon serves on its control socket.
pub trait Service: Send + Sync + 'static {
    type Request: DeserializeOwned + Send;
    type Answer: Serialize + Send;
    /// Execute one request.
    fn answer(self: Arc<Self>, request: Self::Request)
        -> impl Future<Output = Self::Answer> + Send;
    /// The answer to a request that could not be read (`why` says what was wrong).
    fn refuse(&self, why: String) -> Self::Answer;
}

/// `value` as one JSON line.
pub fn encode_line<T: Serialize>(value: &T) -> Result<Vec<u8>, ControlError> {
    let mut line = serde_json::to_vec(value).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

/// Write `value` as one JSON line.
pub async fn write_line<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), ControlError> {
    let line = encode_line(value)?;
    w.write_all(&line).await.map_err(io("write"))?;
    w.flush().await.map_err(io("write"))
}

/// Read one JSON line of at most `max` bytes.
pub async fn read_line<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: R,
    max: usize,
) -> Result<T, ControlError> {
    let mut line = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    BufReader::new(r.take(limit))
        .read_until(b'\n', &mut line)
        .await
        .map_err(io("read"))?;
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > max {
            ControlError::Protocol(format!("line longer than {max} bytes"))
        } else {
            ControlError::Closed
        });
    }
    serde_json::from_slice(&line).map_err(|e| ControlError::Protocol(e.to_string()))
}

async fn connect(path: &Path) -> Result<UnixStream, ControlError> {
    let unreachable = |error| ControlError::Unreachable {
        path: path.to_path_buf(),
        error,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(unreachable(e)),
        Err(_) => Err(unreachable(std::io::ErrorKind::TimedOut.into())),
    }
}

/// Whether something accepts connections on `path` (bounded by 2 s).
pub async fn reachable(path: &Path) -> Result<(), ControlError> {
    connect(path).await.map(drop)
}

/// Send `request` to the daemon on `path` and wait for its answer (no time bound: an
/// operation takes as long as it takes; a daemon that dies closes the connection).
pub async fn call<Req: Serialize, Ans: DeserializeOwned>(
    path: &Path,
    request: &Req,
) -> Result<Ans, ControlError> {
    let stream = connect(path).await?;
    let (r, mut w) = stream.into_split();
    write_line(&mut w, request).await?;
    read_line(r, MAX_ANSWER).await
}

/// Bind the socket: refuse if a daemon already answers there, else replace a stale file;
/// the socket is made mode 0600.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if path.exists() {
        if reachable(path).await.is_ok() {
            return Err(ControlError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path)
            .map_err(io(format!("removing the stale socket {}", path.display())))?;
    }
    let listener = UnixListener::bind(path).map_err(io(format!("binding {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod {}", path.display())))?;
    Ok(listener)
}

/// Answer requests until `stop`, then let those in flight finish within `drain` (the rest
/// are aborted).
pub async fn serve<S: Service>(
    listener: UnixListener,
    service: Arc<S>,
    mut stop: Stop,
    drain: Duration,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { conns.spawn(handle(stream, service.clone())); }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            left = conns.len(),
            "control requests not finished in time; aborted"
        );
        conns.abort_all();
    }
}

async fn handle<S: Service>(stream: UnixStream, service: Arc<S>) {
    let (r, mut w) = stream.into_split();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, read_line::<_, S::Request>(r, MAX_REQUEST));
    let answer = match read.await {
        Ok(Ok(request)) => service.answer(request).await,
        Ok(Err(ControlError::Closed)) | Err(_) => return,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "bad control request");
            service.refuse(e.to_string())
        }
    };
    let line = match encode_line(&answer) {
        Ok(line) => line,
        Err(e) => {
            tracing::error!(error = %e, "control answer not encodable");
            return;
        }
    };
    if let Err(e) = w.write_all(&line).await {
        tracing::info!(error = %e, "control client left before the answer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tasks;

    struct Echo;

    impl Service for Echo {
        type Request = String;
        type Answer = Result<String, String>;
        async fn answer(self: Arc<Self>, request: String) -> Self::Answer {
            Ok(request.to_uppercase())
        }
        fn refuse(&self, why: String) -> Self::Answer {
            Err(why)
        }
    }

    #[tokio::test]
    async fn round_trip_refusal_and_second_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let listener = bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let tasks = Tasks::new();
        tasks.spawn("control", |stop| {
            serve(listener, Arc::new(Echo), stop, Duration::from_secs(1))
        });
        let got: Result<String, String> = call(&path, &"hi\nthere").await.unwrap();
        assert_eq!(got, Ok("HI\nTHERE".to_owned()));
        // Not a string: refused with a reason, not dropped.
        let got: Result<String, String> = call(&path, &42).await.unwrap();
        assert!(got.unwrap_err().contains("protocol"));
        assert!(matches!(
            bind(&path).await,
            Err(ControlError::AlreadyRunning(_))
        ));
        tasks.stop(Duration::from_secs(5)).await;
        // The daemon is gone: its file is stale and the next bind takes it over.
        assert!(call::<_, Result<String, String>>(&path, &"x")
            .await
            .is_err());
        bind(&path).await.unwrap();
    }

    #[tokio::test]
    async fn overlong_line_is_a_protocol_error() {
        let data = [b'a'; 100];
        let got = read_line::<_, String>(&data[..], 10).await;
        assert!(matches!(got, Err(ControlError::Protocol(_))));
        let got = read_line::<_, String>(&b"\"abc"[..], 10).await;
        assert!(matches!(got, Err(ControlError::Closed)));
    }
}
