//! The control socket (`<cache>/qsfs.sock`, mode 0600) and its client: one JSON request line,
//! one JSON answer line. Used by `qsfs status`, `qsfs rotate`, `qsfs evict` and `qsfs compact`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::evict::EvictReport;
use crate::node::{CompactReport, Shared};
use crate::status::Status;

/// Longest request line accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Close every open segment and wait until everything staged is uploaded.
    Rotate,
    /// Evict every stored segment from the local cache.
    Evict,
    /// Compact stored segments at least `dead_percent` dead (the configured value if none),
    /// then rotate and wait until the emptied segments replaced their old copies.
    Compact {
        dead_percent: Option<u8>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Status(Box<Status>),
    /// After a rotate: whether every staged checkpoint reached the backends.
    Rotated {
        offloaded: bool,
    },
    Evicted(EvictReport),
    Compacted {
        report: CompactReport,
        /// Whether every staged checkpoint (the emptied segments with them) is uploaded.
        offloaded: bool,
    },
    Error(String),
}

/// Bind the socket, refusing if another qsfs answers on it.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "another qsfs is running with this cache folder ({})",
            path.display()
        );
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Answer requests until `stop`.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) => { tokio::spawn(handle(conn, shared.clone())); }
                Err(e) => tracing::warn!(error = %e, "control socket accept"),
            }
        }
    }
}

async fn handle(conn: UnixStream, shared: Arc<Shared>) {
    let (r, mut w) = conn.into_split();
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(r.take(MAX_LINE as u64)).read_line(&mut line),
    )
    .await;
    let response = match read {
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Ok(req) => execute(req, &shared).await,
            Err(e) => Response::Error(format!("bad request: {e}")),
        },
        _ => return,
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    let _ = w.write_all(&out).await;
}

async fn execute(req: Request, shared: &Arc<Shared>) -> Response {
    let answer = match req {
        Request::Status => Ok(Response::Status(Box::new(shared.status().await))),
        Request::Rotate => match on_blocking(shared, |s| s.rotate()).await {
            Ok(()) => Ok(Response::Rotated {
                offloaded: shared.offloader.upload_pending().await,
            }),
            Err(e) => Err(e),
        },
        Request::Evict => on_blocking(shared, |s| s.evict(true))
            .await
            .map(Response::Evicted),
        Request::Compact { dead_percent } => {
            let compacted = on_blocking(shared, move |s| {
                let report =
                    s.compact(dead_percent.unwrap_or(s.config.qsfs.compact_dead_percent))?;
                s.rotate()?;
                Ok(report)
            })
            .await;
            match compacted {
                Ok(report) => Ok(Response::Compacted {
                    report,
                    offloaded: shared.offloader.upload_pending().await,
                }),
                Err(e) => Err(e),
            }
        }
    };
    answer.unwrap_or_else(Response::Error)
}

/// Run `f` on the blocking pool (it touches the engine and the filesystem).
async fn on_blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&Shared) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, String> {
    let s = shared.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(r) => r.map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Send `req` to the qsfs listening on `socket` and wait for the answer.
pub async fn call(socket: &Path, req: &Request) -> anyhow::Result<Response> {
    let conn = UnixStream::connect(socket)
        .await
        .with_context(|| format!("no qsfs answers on {} (is it running?)", socket.display()))?;
    let (r, mut w) = conn.into_split();
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    let mut answer = String::new();
    BufReader::new(r).read_line(&mut answer).await?;
    serde_json::from_str(&answer).context("answer from qsfs")
}
