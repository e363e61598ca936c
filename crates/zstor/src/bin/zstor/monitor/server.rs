//! The daemon's unix-socket protocol and its two ends.
//!
//! Owns: [`Request`]/[`Response`], executing requests on the current [`zstor::Store`] with
//! bounded concurrency and the background-store queue. The framing (one request per
//! connection, one JSON line each way; see `docs/format/zstor.md`), binding (stale file
//! removed, mode 0600), the accept loop with drain on shutdown and the client side are
//! service-kit's control socket. Must not touch: path resolution (the CLI
//! sends absolute paths and resolved keys) or output formatting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use service_kit::control;
use tokio::net::UnixListener;

use super::metrics::Op;
use super::{Monitor, MonitorError};
use zstor::probe::{self, Status};
use zstor::store::RebuildTarget;

/// Background stores (`store -n`) waiting or running at most; more are refused.
pub const MAX_QUEUED: usize = 1024;

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
    /// Objects below full redundancy the last sweep could not repair.
    #[serde(default)]
    pub degraded: u64,
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

/// Whether the daemon accepts connections on `socket` (2 s bound).
pub async fn reachable(socket: &Path) -> Result<(), MonitorError> {
    control::reachable(socket).await.map_err(MonitorError::from)
}

/// Send `request` to the daemon on `socket` and wait for its answer (no time bound: a
/// store of a large file takes as long as it takes; a dead daemon closes the connection).
pub async fn call(socket: &Path, request: &Request) -> Result<Response, MonitorError> {
    control::call(socket, request)
        .await
        .map_err(MonitorError::from)
}

/// Bind the socket: refuse if a daemon already answers there, else remove a stale file;
/// the socket is made mode 0600 (only its owner may talk to the daemon).
pub async fn bind(socket: &Path) -> Result<UnixListener, MonitorError> {
    control::bind(socket).await.map_err(MonitorError::from)
}

/// The control-socket service of the monitor.
pub struct ControlService(pub Arc<Monitor>);

impl control::Service for ControlService {
    type Request = Request;
    type Answer = Response;

    async fn answer(self: Arc<Self>, request: Request) -> Response {
        if let Request::Store {
            background: true, ..
        } = &request
        {
            queue(&self.0, request)
        } else {
            run_limited(&self.0, request).await
        }
    }

    fn refuse(&self, why: String) -> Response {
        failed(why)
    }
}

/// Accept until `stop`, then drain in-flight requests within the configured bound.
pub async fn serve(listener: UnixListener, shared: Arc<Monitor>, stop: service_kit::Stop) {
    let drain = shared.tunables.drain;
    control::serve(listener, Arc::new(ControlService(shared)), stop, drain).await;
}

/// [`execute`] under the concurrency limit.
async fn run_limited(shared: &Monitor, request: Request) -> Response {
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
fn queue(shared: &Arc<Monitor>, request: Request) -> Response {
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
pub async fn execute(shared: &Monitor, request: Request) -> Response {
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
            let _writer = shared
                .maintenance
                .key_locks()
                .lock(&store.meta().key_of(&key).0)
                .await;
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
                Err(zstor::Error::NotFound(name)) => Response::NotFound { name },
                Err(e) => failed(e),
            };
            (Op::Retrieve, r)
        }
        Request::Check { key } => {
            let r = match store.checksum(&key).await {
                Ok(sum) => Response::Checksum {
                    checksum: hex::encode(sum),
                },
                Err(zstor::Error::NotFound(name)) => Response::NotFound { name },
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
                Some(k) => Some(shared.maintenance.key_locks().lock(k).await),
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
                    Err(zstor::Error::NotFound(name)) => Response::NotFound { name },
                    Err(e) => failed(e),
                },
            };
            (Op::Rebuild, r)
        }
        Request::Status => {
            let st = probe::status(store.config()).await;
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
pub fn daemon_status(shared: &Monitor) -> DaemonStatus {
    let m = &shared.metrics;
    let r = shared.maintenance.summary();
    DaemonStatus {
        down: r.down,
        repair_queue: r.queue,
        repaired: r.repaired,
        repair_failures: r.failures,
        scrubbed: r.scrub_checked,
        scrub_runs: r.scrubs,
        degraded: r.degraded,
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
    async fn requests_round_trip_as_json_lines_and_bad_input_is_refused() {
        let req = Request::Store {
            source: "/a/b".into(),
            key: "/virtualroot/b".into(),
            delete: true,
            background: false,
        };
        let line = control::encode_line(&req).expect("encode");
        let got: Request = control::read_line(&line[..], control::MAX_REQUEST)
            .await
            .expect("read");
        assert_eq!(got, req);

        // Not JSON of a known request.
        let err = control::read_line::<_, Request>(&b"{\"x\":1}\n"[..], control::MAX_REQUEST)
            .await
            .unwrap_err();
        assert!(matches!(err, control::ControlError::Protocol(_)), "{err}");

        // The wire shape documented in docs/format/zstor.md.
        let json = serde_json::to_string(&Request::Check { key: "/k".into() }).expect("json");
        assert_eq!(json, r#"{"op":"check","key":"/k"}"#);
    }
}
