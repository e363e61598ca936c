//! The server: listeners, accept loops, the ready/close hooks and the designed shutdown.
//!
//! Start: bind the listeners (so the instance id carries the real port), open the engine (which
//! runs `namespaces-init`), run the blocking `ready` hook. Run: accept until shutdown. Shutdown:
//! stop accepting, let connections finish their batch, `sync_all`, `close` hook, then
//! `namespace-closing` per namespace.

use crate::admission::{Slot, TOO_MANY_CLIENTS};
use crate::config::ServerConfig;
use crate::conn;
use crate::error::ServerError;
use crate::hooks::HookRunner;
use crate::state::ServerState;
use crate::timers;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use zdb_engine::{Engine, Event, EventSink};

/// How long shutdown waits for connections to finish their current batch.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, ready server; [`Server::run`] serves it.
pub struct Server {
    state: Arc<ServerState>,
    tcp: Option<TcpListener>,
    unix: Option<UnixListener>,
    local_addr: Option<SocketAddr>,
    shutdown: Arc<watch::Sender<bool>>,
}

/// Asks a running server to shut down gracefully; cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Start the graceful shutdown ([`Server::run`] returns once it is complete).
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

async fn bind_tcp(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    let first = TcpListener::bind((config.listen.as_str(), config.port)).await;
    match first {
        Ok(l) => Ok(l),
        // No IPv6 on this host: 0-db's default `::` falls back to IPv4.
        Err(e) if config.listen == "::" => {
            tracing::warn!(error = %e, "cannot listen on [::], falling back to 0.0.0.0");
            TcpListener::bind(("0.0.0.0", config.port))
                .await
                .map_err(|source| ServerError::Bind {
                    addr: format!("0.0.0.0:{}", config.port),
                    source,
                })
        }
        Err(source) => Err(ServerError::Bind {
            addr: format!("{}:{}", config.listen, config.port),
            source,
        }),
    }
}

fn bind_unix(path: &std::path::Path) -> Result<UnixListener, ServerError> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(|source| ServerError::Bind {
        addr: format!("unix:{}", path.display()),
        source,
    })
}

impl Server {
    /// Bind the listeners, open the engine and run the `ready` hook.
    pub async fn bind(mut config: ServerConfig) -> Result<Server, ServerError> {
        if config.protect && config.admin.is_none() {
            return Err(ServerError::Config("--protect needs --admin".into()));
        }
        let tcp = if config.tcp_enabled() {
            Some(bind_tcp(&config).await?)
        } else {
            None
        };
        let local_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(addr) = local_addr {
            config.port = addr.port();
            if config.admin.is_none() && !addr.ip().is_loopback() {
                tracing::warn!(
                    %addr,
                    "listening beyond loopback without --admin: every client that reaches this \
                     port is admin and may delete any namespace; set --admin PASSWORD"
                );
            }
        }
        let unix = match &config.socket {
            Some(p) => Some(bind_unix(p)?),
            None => None,
        };
        let hooks = Arc::new(HookRunner::new(config.hook.clone(), config.instance_id()));
        let engine_config = config.engine.clone();
        let sink: Arc<dyn EventSink> = hooks.clone();
        let engine = tokio::task::spawn_blocking(move || {
            let (data, index) = (
                engine_config.data_dir.clone(),
                engine_config.index_dir.clone(),
            );
            Engine::open(engine_config, sink).map_err(|source| match source {
                zdb_engine::Error::HookRefused { source, .. } => ServerError::HookRefused(source),
                source => ServerError::Engine {
                    data,
                    index,
                    source,
                },
            })
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))??;
        if let Some(forced) = config.engine.mode {
            // 0-db refuses to serve a dataset created in another mode than the forced one.
            for name in engine.list() {
                match engine.namespace(&name) {
                    Some(ns) if ns.mode() != forced => {
                        return Err(ServerError::Config(format!(
                            "namespace {name} is in {:?} mode but --mode forces {forced:?}",
                            ns.mode()
                        )));
                    }
                    _ => {}
                }
            }
        }
        let state = Arc::new(ServerState::new(Arc::new(engine), config, hooks.clone()));
        tokio::task::spawn_blocking(move || hooks.emit(&Event::Ready))
            .await
            .map_err(|e| ServerError::Task(e.to_string()))?
            .map_err(ServerError::HookRefused)?;
        let (tx, _) = watch::channel(false);
        Ok(Server {
            state,
            tcp,
            unix,
            local_addr,
            shutdown: Arc::new(tx),
        })
    }

    /// The bound TCP address, if TCP is enabled.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The engine this server serves (for in-process embedding).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.state.engine
    }

    /// A handle to stop the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Serve until [`ShutdownHandle::shutdown`] is called.
    pub async fn run(self) -> Result<(), ServerError> {
        self.run_until(std::future::pending()).await
    }

    /// Serve until `signal` completes or [`ShutdownHandle::shutdown`] is called, then shut down
    /// gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Server {
            state,
            tcp,
            unix,
            shutdown,
            ..
        } = self;
        let rx = shutdown.subscribe();
        let timers = timers::start(&state);
        // Every connection task holds a clone of `done`; shutdown waits for all to drop.
        let (done, mut drained) = mpsc::channel::<()>(1);
        if let Some(l) = tcp {
            tokio::spawn(accept_loop(l, state.clone(), rx.clone(), done.clone()));
        }
        if let Some(l) = unix {
            tokio::spawn(accept_loop(l, state.clone(), rx.clone(), done.clone()));
        }
        drop(done);
        let mut stop = rx.clone();
        tokio::select! {
            _ = signal => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        tracing::info!("shutting down");
        shutdown.send_replace(true);
        if tokio::time::timeout(DRAIN_TIMEOUT, drained.recv())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish in time");
        }
        timers.stop(DRAIN_TIMEOUT).await;
        let st = state.clone();
        tokio::task::spawn_blocking(move || close(&st))
            .await
            .map_err(|e| ServerError::Task(e.to_string()))?;
        if let Some(p) = &state.config.socket {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }
}

/// Final sync and the shutdown hooks.
fn close(state: &ServerState) {
    if let Err(e) = state.engine.sync_all() {
        tracing::error!(error = %e, "final sync failed");
    }
    let events = state.engine.events();
    if let Err(e) = events.emit(&Event::Close) {
        tracing::warn!(error = %e, "close hook failed");
    }
    for name in state.engine.list() {
        if let Some(ns) = state.engine.namespace(&name) {
            let (index, data) = ns.current_paths();
            let dirty = ns.dirty_segments(false);
            let _ = events.emit(&Event::NamespaceClosing {
                namespace: name,
                index,
                data,
                dirty,
            });
        }
    }
}

/// A listener the accept loop can serve: TCP or unix socket.
trait Listener: Send + 'static {
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// The next connection and a name for its peer, ready to serve.
    fn next(&self) -> impl Future<Output = std::io::Result<(Self::Stream, String)>> + Send;
}

impl Listener for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn next(&self) -> std::io::Result<(Self::Stream, String)> {
        let (sock, peer) = self.accept().await?;
        let _ = sock.set_nodelay(true);
        Ok((sock, peer.to_string()))
    }
}

impl Listener for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn next(&self) -> std::io::Result<(Self::Stream, String)> {
        let (sock, _) = self.accept().await?;
        Ok((sock, "unix".to_string()))
    }
}

/// Accept connections until shutdown; each is served by a task of its own that holds a client
/// slot and a clone of `done` (shutdown waits for every `done` to drop).
async fn accept_loop<L: Listener>(
    l: L,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            r = l.next() => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((mut sock, peer)) => {
                let id = state.next_conn_id();
                let Some(slot) = Slot::take(&state, id) else {
                    // Bounded: a client that does not read must not stall the accept loop.
                    let refuse = async {
                        let refusal = format!("-{TOO_MANY_CLIENTS}\r\n");
                        let _ = sock.write_all(refusal.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    };
                    let _ = tokio::time::timeout(Duration::from_millis(100), refuse).await;
                    continue;
                };
                let (st, rx, done) = (state.clone(), shutdown.clone(), done.clone());
                tokio::spawn(async move {
                    conn::serve(sock, st, rx, peer, &slot).await;
                    drop((slot, done));
                });
            }
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Bind and serve `config` until `signal` completes, then shut down gracefully.
pub async fn run(
    config: ServerConfig,
    signal: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    Server::bind(config).await?.run_until(signal).await
}
