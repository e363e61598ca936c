//! The daemon's unix-socket protocol and its two ends.
//!
//! Owns: the wire format (one request per connection: a 4-byte big-endian length then that
//! many bytes of JSON, answered by one frame of the same shape; see `docs/format/zstor.md`),
//! [`Request`]/[`Response`], binding the socket (stale file removed, mode 0600), the accept
//! loop with bounded concurrency and drain on shutdown, executing requests on the current
//! [`crate::Store`], and [`call`], the CLI's side. Must not touch: path resolution (the CLI
//! sends absolute paths and resolved keys) or output formatting.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::metrics::Op;
use super::{io_err, DaemonError, Shared};
use crate::cli::status::{self, Status};
use crate::store::RebuildTarget;

/// Largest frame accepted either way.
pub const MAX_FRAME: usize = 16 << 20;
/// Background stores (`store -n`) waiting or running at most; more are refused.
pub const MAX_QUEUED: usize = 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the CLI asks the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Store the file at absolute path `source` under the metadata path `key`; with
    /// `delete`, remove `source` once the metadata reads back with the same checksum.
    Store {
        /// Absolute path of the local file (read by the daemon).
        source: PathBuf,
        /// Path the metadata is keyed by.
        key: PathBuf,
        /// Delete after a verified upload.
        delete: bool,
        /// Answer `queued` at once and store in the background (`store -n`).
        #[serde(default)]
        background: bool,
    },
    /// Retrieve `key` into the absolute path `out`.
    Retrieve {
        /// Path the file was stored under.
        key: PathBuf,
        /// Absolute output path (its directory exists).
        out: PathBuf,
    },
    /// The stored checksum of `key`.
    Check {
        /// Path the file was stored under.
        key: PathBuf,
    },
    /// Rebuild by path or by raw metadata key.
    Rebuild {
        /// Path the file was stored under.
        path: Option<PathBuf>,
        /// Raw metadata key.
        key: Option<String>,
    },
    /// Backend and daemon status.
    Status,
}

/// What the daemon knows beyond the backends: health verdicts and repair progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// Data backends marked down (`address/namespace`).
    pub down: Vec<String>,
    /// Objects waiting in the current repair or scrub sweep.
    pub repair_queue: u64,
    /// Objects repaired (something rewritten or moved) since start.
    pub repaired: u64,
    /// Repairs that failed since start.
    pub repair_failures: u64,
    /// Objects checked by scrubs since start.
    pub scrubbed: u64,
    /// Scrubs completed since start.
    pub scrub_runs: u64,
    /// The local zdb data directory's cache, when `zdb_data_dir_path` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStatus>,
}

/// `zdb_data_dir_path` kept under `max_zdb_data_dir_size` (see [`super::evict`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStatus {
    /// Bytes in the directory at the last eviction pass.
    pub bytes: u64,
    /// The limit in bytes (0: none).
    pub limit_bytes: u64,
    /// Segments evicted since start.
    pub evicted_files: u64,
    /// Their bytes.
    pub evicted_bytes: u64,
    /// Segments kept over the limit (not storable or not verified) since start.
    pub skipped: u64,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Stored.
    Stored {
        /// File size.
        size: u64,
        /// Hex blake2b-128.
        checksum: String,
        /// `delete` asked and the file could not be removed: why.
        delete_error: Option<String>,
    },
    /// Accepted for a background store (`store -n`); its outcome is logged and counted.
    Queued,
    /// Retrieved and verified.
    Retrieved {
        /// File size.
        size: u64,
    },
    /// `check`: hex blake2b-128.
    Checksum {
        /// Hex digest.
        checksum: String,
    },
    /// Rebuild report.
    Rebuilt {
        /// Re-encoded with the current code.
        reencoded: bool,
        /// Shard indices moved.
        moved: Vec<usize>,
        /// Pieces written.
        pieces_written: usize,
    },
    /// Status.
    Status {
        /// Backends, as `zstor status` shows them.
        status: Status,
        /// Daemon health and repair progress.
        daemon: DaemonStatus,
    },
    /// Nothing stored under that name.
    NotFound {
        /// Name asked for.
        name: String,
    },
    /// The operation failed.
    Error {
        /// Why (the library's error text).
        message: String,
    },
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), DaemonError> {
    let body = serde_json::to_vec(value).map_err(|e| DaemonError::Protocol(e.to_string()))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| DaemonError::Protocol(format!("frame of {} bytes", body.len())))?;
    w.write_all(&len.to_be_bytes())
        .await
        .map_err(io_err("write frame"))?;
    w.write_all(&body).await.map_err(io_err("write frame"))?;
    w.flush().await.map_err(io_err("write frame"))
}

/// Read one frame.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> Result<T, DaemonError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(io_err("read frame"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(DaemonError::Protocol(format!(
            "frame of {len} bytes exceeds {MAX_FRAME}"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .await
        .map_err(io_err("read frame"))?;
    serde_json::from_slice(&body).map_err(|e| DaemonError::Protocol(e.to_string()))
}

/// Whether something accepts connections on `socket` (2 s bound).
pub async fn reachable(socket: &Path) -> Result<(), DaemonError> {
    let unreachable = |error| DaemonError::Unreachable {
        path: socket.to_path_buf(),
        error,
    };
    match tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(socket)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e)),
        Err(_) => Err(unreachable(std::io::ErrorKind::TimedOut.into())),
    }
}

/// Send `request` to the daemon on `socket` and wait for its answer (no time bound: a
/// store of a large file takes as long as it takes; a dead daemon closes the connection).
pub async fn call(socket: &Path, request: &Request) -> Result<Response, DaemonError> {
    let unreachable = |error| DaemonError::Unreachable {
        path: socket.to_path_buf(),
        error,
    };
    let mut stream =
        match tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(socket)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e)),
            Err(_) => return Err(unreachable(std::io::ErrorKind::TimedOut.into())),
        };
    write_frame(&mut stream, request).await?;
    read_frame(&mut stream).await
}

/// Bind the socket: refuse if a daemon already answers there, else remove a stale file;
/// the socket is made mode 0600 (only its owner may talk to the daemon).
pub async fn bind(socket: &Path) -> Result<UnixListener, DaemonError> {
    if socket.exists() {
        if reachable(socket).await.is_ok() {
            return Err(DaemonError::AlreadyRunning(socket.to_path_buf()));
        }
        std::fs::remove_file(socket)
            .map_err(io_err(format!("remove stale socket {}", socket.display())))?;
    }
    let listener =
        UnixListener::bind(socket).map_err(io_err(format!("bind {}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("chmod {}", socket.display())))?;
    Ok(listener)
}

/// Accept until `stop`, then drain in-flight connections within the configured bound.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(handle(stream, Arc::clone(&shared)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(shared.tunables.drain, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(left = conns.len(), "drain bound reached; aborting requests");
        conns.abort_all();
    }
}

async fn handle(mut stream: UnixStream, shared: Arc<Shared>) {
    let request: Request = match tokio::time::timeout(READ_TIMEOUT, read_frame(&mut stream)).await {
        Ok(Ok(r)) => r,
        // A connection closed before any request: the CLI checking that the daemon answers.
        Ok(Err(DaemonError::Io { error, .. }))
            if error.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            return
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "bad request");
            let _ = write_frame(
                &mut stream,
                &Response::Error {
                    message: e.to_string(),
                },
            )
            .await;
            return;
        }
        Err(_) => return,
    };
    let response = if let Request::Store {
        background: true, ..
    } = &request
    {
        queue(&shared, request)
    } else {
        run_limited(&shared, request).await
    };
    if let Err(e) = write_frame(&mut stream, &response).await {
        tracing::info!(error = %e, "client left before the answer");
    }
}

/// [`execute`] under the concurrency limit.
async fn run_limited(shared: &Shared, request: Request) -> Response {
    let Ok(_permit) = shared.requests.acquire().await else {
        return failed("daemon shutting down");
    };
    let m = &shared.metrics;
    m.inc(&m.in_flight);
    let response = execute(shared, request).await;
    m.sub(&m.in_flight, 1);
    response
}

/// Queue a background store; refused when [`MAX_QUEUED`] are already waiting or running.
fn queue(shared: &Arc<Shared>, request: Request) -> Response {
    let mut jobs = match shared.background.lock() {
        Ok(j) => j,
        Err(p) => p.into_inner(),
    };
    while jobs.try_join_next().is_some() {}
    if jobs.len() >= MAX_QUEUED {
        return failed(format!("store queue full ({MAX_QUEUED} waiting)"));
    }
    let m = &shared.metrics;
    m.inc(&m.store_queue);
    let sh = Arc::clone(shared);
    jobs.spawn(async move {
        let response = run_limited(&sh, request).await;
        sh.metrics.sub(&sh.metrics.store_queue, 1);
        if let Response::Error { message } = response {
            tracing::warn!(%message, "background store failed");
        }
    });
    Response::Queued
}

fn failed(e: impl std::fmt::Display) -> Response {
    Response::Error {
        message: e.to_string(),
    }
}

/// Run one request on the current store, counting it in the metrics.
pub async fn execute(shared: &Shared, request: Request) -> Response {
    let store = shared.store();
    let m = &shared.metrics;
    let started = Instant::now();
    let (op, response) = match request {
        Request::Store {
            source,
            key,
            delete,
            ..
        } => {
            let _writer = shared.key_locks.lock(&store.meta().key_of(&key).0).await;
            let r = match store.store_as(&source, &key).await {
                Err(e) => failed(e),
                Ok(meta) => {
                    m.add(&m.bytes_in, meta.size);
                    let delete_error = if delete {
                        match store.checksum(&key).await {
                            Ok(sum) if sum == meta.checksum => {
                                std::fs::remove_file(&source).err().map(|e| e.to_string())
                            }
                            Ok(_) => Some("metadata read back differs; file kept".into()),
                            Err(e) => Some(format!("verifying before delete: {e}")),
                        }
                    } else {
                        None
                    };
                    Response::Stored {
                        size: meta.size,
                        checksum: hex::encode(meta.checksum),
                        delete_error,
                    }
                }
            };
            (Op::Store, r)
        }
        Request::Retrieve { key, out } => {
            let r = match store.retrieve_file(&key, &out).await {
                Ok(meta) => {
                    m.add(&m.bytes_out, meta.size);
                    Response::Retrieved { size: meta.size }
                }
                Err(crate::Error::NotFound(name)) => Response::NotFound { name },
                Err(e) => failed(e),
            };
            (Op::Retrieve, r)
        }
        Request::Check { key } => {
            let r = match store.checksum(&key).await {
                Ok(sum) => Response::Checksum {
                    checksum: hex::encode(sum),
                },
                Err(crate::Error::NotFound(name)) => Response::NotFound { name },
                Err(e) => failed(e),
            };
            (Op::Check, r)
        }
        Request::Rebuild { path, key } => {
            let target = match (path, key) {
                (Some(p), None) => Some(RebuildTarget::Path(p)),
                (None, Some(k)) => Some(RebuildTarget::Key(k)),
                _ => None,
            };
            let storage_key = match &target {
                Some(RebuildTarget::Path(p)) => Some(store.meta().key_of(p).0),
                Some(RebuildTarget::Key(k)) => Some(k.clone()),
                None => None,
            };
            let _writer = match &storage_key {
                Some(k) => Some(shared.key_locks.lock(k).await),
                None => None,
            };
            let r = match target {
                None => failed("rebuild: give exactly one of path or key"),
                Some(t) => match store.rebuild(&t).await {
                    Ok(rep) => Response::Rebuilt {
                        reencoded: rep.reencoded,
                        moved: rep.moved,
                        pieces_written: rep.pieces_written,
                    },
                    Err(crate::Error::NotFound(name)) => Response::NotFound { name },
                    Err(e) => failed(e),
                },
            };
            (Op::Rebuild, r)
        }
        Request::Status => {
            let st = status::status(store.config()).await;
            (
                Op::Status,
                Response::Status {
                    status: st,
                    daemon: daemon_status(shared),
                },
            )
        }
    };
    m.record(
        op,
        started.elapsed(),
        !matches!(response, Response::Error { .. }),
    );
    response
}

/// The daemon's view for `status`.
pub fn daemon_status(shared: &Shared) -> DaemonStatus {
    let m = &shared.metrics;
    let down = match shared.health.lock() {
        Ok(h) => h.down_labels(),
        Err(p) => p.into_inner().down_labels(),
    };
    DaemonStatus {
        down,
        repair_queue: m.get(&m.repair_queue),
        repaired: m.get(&m.repaired),
        repair_failures: m.get(&m.repair_failures),
        scrubbed: m.get(&m.scrub_checked),
        scrub_runs: m.get(&m.scrub_runs),
        cache: shared
            .store()
            .config()
            .zdb_data_dir_path
            .is_some()
            .then(|| CacheStatus {
                bytes: m.get(&m.cache_bytes),
                limit_bytes: m.get(&m.cache_limit_bytes),
                evicted_files: m.get(&m.evicted_files),
                evicted_bytes: m.get(&m.evicted_bytes),
                skipped: m.get(&m.evict_skipped),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_reject_bad_input() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let req = Request::Store {
            source: "/a/b".into(),
            key: "/virtualroot/b".into(),
            delete: true,
            background: false,
        };
        write_frame(&mut a, &req).await.expect("write");
        let got: Request = read_frame(&mut b).await.expect("read");
        assert_eq!(got, req);

        // Oversized length prefix: refused before allocating.
        a.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
        let err = read_frame::<_, Request>(&mut b).await.unwrap_err();
        assert!(matches!(err, DaemonError::Protocol(_)), "{err}");

        // Not JSON of a known request.
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&5u32.to_be_bytes()).await.expect("write");
        a.write_all(b"{\"x\":").await.expect("write");
        let err = read_frame::<_, Request>(&mut b).await.unwrap_err();
        assert!(matches!(err, DaemonError::Protocol(_)), "{err}");

        // The wire shape documented in docs/format/zstor.md.
        let json = serde_json::to_string(&Request::Check { key: "/k".into() }).expect("json");
        assert_eq!(json, r#"{"op":"check","key":"/k"}"#);
    }
}
