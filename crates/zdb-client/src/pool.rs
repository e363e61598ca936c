//! [`Client`]: a cloneable handle on a small pool of authenticated, namespace-selected
//! connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use resp::{Frame, Limits};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connection::{Connection, ConnectionOptions, Endpoint};
use crate::{auth, reply, ClientError};

/// How a [`Client`] connects and what it runs on every new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Server address.
    pub endpoint: Endpoint,
    /// Namespace to `SELECT` on every new connection (`None`: stay on `default`).
    pub namespace: Option<String>,
    /// Password for the namespace, if it has one.
    pub namespace_password: Option<String>,
    /// Admin password to `AUTH` with on every new connection, if any.
    pub admin_password: Option<String>,
    /// Use challenge-response (`AUTH SECURE`, `SELECT … SECURE`) instead of sending
    /// passwords in clear. Default: false.
    pub secure_auth: bool,
    /// Maximum number of simultaneous connections. Default: 4.
    pub pool_size: usize,
    /// Upper bound to establish a socket. Default: 5 s.
    pub connect_timeout: Duration,
    /// Upper bound for one request or pipeline. Default: 30 s.
    pub request_timeout: Duration,
    /// Upper bound for a request to make no progress (see
    /// [`ConnectionOptions::stall_timeout`]); changed later with
    /// [`Client::set_stall_timeout`]. Default: `None`.
    pub stall_timeout: Option<Duration>,
    /// Limits applied to replies. Default: [`Limits::default`] (8 MiB values).
    pub limits: Limits,
}

impl ClientConfig {
    /// Default settings for `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        ClientConfig {
            endpoint,
            namespace: None,
            namespace_password: None,
            admin_password: None,
            secure_auth: false,
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            stall_timeout: None,
            limits: Limits::default(),
        }
    }

    /// Selects `name` (with an optional password) on every connection.
    #[must_use]
    pub fn with_namespace(mut self, name: impl Into<String>, password: Option<String>) -> Self {
        self.namespace = Some(name.into());
        self.namespace_password = password;
        self
    }

    /// Authenticates as admin on every connection.
    #[must_use]
    pub fn with_admin_password(mut self, password: impl Into<String>) -> Self {
        self.admin_password = Some(password.into());
        self
    }

    /// Uses challenge-response authentication.
    #[must_use]
    pub fn with_secure_auth(mut self, secure: bool) -> Self {
        self.secure_auth = secure;
        self
    }

    /// Sets the maximum number of connections.
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the request timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the stall timeout.
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Sets the reply limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// What every new connection must be set up with. Changed by [`Client::select`] and
/// [`Client::auth`]; each change bumps `generation` so older idle connections are
/// replaced rather than reused.
#[derive(Debug, Clone)]
struct Session {
    namespace: Option<String>,
    namespace_password: Option<String>,
    admin_password: Option<String>,
    secure: bool,
    generation: u64,
}

struct Idle {
    conn: Connection,
    generation: u64,
}

struct Inner {
    options: ConnectionOptions,
    endpoint: Endpoint,
    session: Mutex<Session>,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    /// The stall timeout in microseconds, 0 for none: read at every checkout, so a change
    /// reaches pooled connections too.
    stall_micros: AtomicU64,
}

fn micros(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
    })
}

/// Locks a mutex, ignoring poisoning: the guarded data (a list of idle connections, the
/// session settings) stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cheaply cloneable handle on a pool of connections to one zdb server.
///
/// Connections are created on demand, up to `pool_size`; callers beyond that wait for a
/// free one. Every new connection is authenticated and attached to the configured
/// namespace before use. A connection that fails (I/O error, timeout, protocol error,
/// cancelled request) is dropped and later replaced by a new one. Read-only helpers retry
/// once on a fresh connection when a reused connection turns out to be dead; writes are
/// never retried automatically, since the server may have applied them.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Creates a client without connecting; the first request connects.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        if config.pool_size == 0 {
            return Err(ClientError::InvalidConfig(
                "pool_size must be at least 1".into(),
            ));
        }
        let session = Session {
            namespace: config.namespace,
            namespace_password: config.namespace_password,
            admin_password: config.admin_password,
            secure: config.secure_auth,
            generation: 0,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                options: ConnectionOptions {
                    connect_timeout: config.connect_timeout,
                    request_timeout: Some(config.request_timeout),
                    stall_timeout: config.stall_timeout,
                    limits: config.limits,
                },
                endpoint: config.endpoint,
                session: Mutex::new(session),
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(config.pool_size)),
                stall_micros: AtomicU64::new(micros(config.stall_timeout)),
            }),
        })
    }

    /// Creates a client and establishes one connection (including `AUTH`/`SELECT`) to
    /// report configuration or reachability problems immediately.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Client::new(config)?;
        drop(client.connection().await?);
        Ok(client)
    }

    /// The server address.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Changes the stall timeout for every request from now on, on new and pooled
    /// connections alike (a caller adapting it to the round trips it measures).
    pub fn set_stall_timeout(&self, timeout: Option<Duration>) {
        self.inner
            .stall_micros
            .store(micros(timeout), Ordering::Relaxed);
    }

    /// The stall timeout in force.
    pub fn stall_timeout(&self) -> Option<Duration> {
        match self.inner.stall_micros.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// The connection options with the stall timeout in force.
    fn options(&self) -> ConnectionOptions {
        ConnectionOptions {
            stall_timeout: self.stall_timeout(),
            ..self.inner.options.clone()
        }
    }

    /// Takes a connection out of the pool (connecting and setting it up if needed). It
    /// goes back to the pool when dropped, unless it broke.
    pub async fn connection(&self) -> Result<PooledConnection, ClientError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Broken)?;
        let session = lock(&self.inner.session).clone();
        loop {
            let candidate = lock(&self.inner.idle).pop();
            let Some(idle) = candidate else { break };
            if idle.generation == session.generation && !idle.conn.is_stale() {
                return Ok(self.pooled(idle.conn, idle.generation, true, permit));
            }
            tracing::debug!(endpoint = %self.inner.endpoint, "dropping stale pooled connection");
        }
        let mut conn = Connection::connect_with(&self.inner.endpoint, &self.options()).await?;
        setup(&mut conn, &session).await?;
        Ok(self.pooled(conn, session.generation, false, permit))
    }

    fn pooled(
        &self,
        conn: Connection,
        generation: u64,
        reused: bool,
        permit: OwnedSemaphorePermit,
    ) -> PooledConnection {
        let mut conn = conn;
        conn.set_stall_timeout(self.stall_timeout());
        PooledConnection {
            conn: Some(conn),
            generation,
            reused,
            pool: Arc::clone(&self.inner),
            _permit: permit,
        }
    }

    /// Sends one request on a pooled connection. Error replies become
    /// [`ClientError::Server`]. Not retried.
    pub async fn request<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Frame, ClientError> {
        self.exec(args, false).await
    }

    /// Sends `requests` as one pipeline on one pooled connection and returns the raw
    /// replies in order (error replies included as [`Frame::Error`]). Not retried.
    pub async fn pipeline<R, A>(&self, requests: &[R]) -> Result<Vec<Frame>, ClientError>
    where
        R: AsRef<[A]>,
        A: AsRef<[u8]>,
    {
        self.connection().await?.pipeline(requests).await
    }

    /// Runs one request; if `idempotent` and a *reused* connection fails at the transport
    /// level, retries once on a new connection.
    pub(crate) async fn exec<A: AsRef<[u8]>>(
        &self,
        args: &[A],
        idempotent: bool,
    ) -> Result<Frame, ClientError> {
        let mut conn = self.connection().await?;
        match conn.request(args).await {
            Err(e) if idempotent && conn.reused && e.is_connection_error() => {
                tracing::debug!(error = %e, "retrying read-only request on a new connection");
                drop(conn);
                self.connection().await?.request(args).await
            }
            other => other,
        }
    }

    /// Changes the namespace for this client: runs `SELECT name [password]` now (so a
    /// bad name or password is reported here) and on every connection created afterwards.
    /// Idle connections attached to the previous namespace are replaced. Requests already
    /// in flight on other connections finish on the old namespace.
    pub async fn select(&self, name: &str, password: Option<&str>) -> Result<(), ClientError> {
        self.update_session(|s| {
            s.namespace = Some(name.to_string());
            s.namespace_password = password.map(str::to_string);
        })
        .await
    }

    /// Authenticates as admin with a plain `AUTH password`, now and on every future
    /// connection (see [`Client::select`] for how the change propagates).
    pub async fn auth(&self, password: &str) -> Result<(), ClientError> {
        self.update_session(|s| {
            s.admin_password = Some(password.to_string());
            s.secure = false;
        })
        .await
    }

    /// Authenticates as admin with `AUTH SECURE CHALLENGE` and
    /// `AUTH SECURE sha1hex(nonce ":" password)`, now and on every future connection.
    /// Namespace passwords are then also sent with `SELECT … SECURE`.
    pub async fn auth_secure(&self, password: &str) -> Result<(), ClientError> {
        self.update_session(|s| {
            s.admin_password = Some(password.to_string());
            s.secure = true;
        })
        .await
    }

    /// Applies `change` to a copy of the session, sets a fresh connection up with it (which
    /// validates it against the server), then publishes it.
    async fn update_session(&self, change: impl FnOnce(&mut Session)) -> Result<(), ClientError> {
        let mut session = lock(&self.inner.session).clone();
        change(&mut session);
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Broken)?;
        let mut conn = Connection::connect_with(&self.inner.endpoint, &self.options()).await?;
        setup(&mut conn, &session).await?;
        let generation = {
            let mut current = lock(&self.inner.session);
            session.generation = current.generation + 1;
            *current = session;
            current.generation
        };
        lock(&self.inner.idle).clear();
        drop(self.pooled(conn, generation, false, permit));
        Ok(())
    }
}

/// Runs admin authentication and namespace selection on a new connection.
async fn setup(conn: &mut Connection, session: &Session) -> Result<(), ClientError> {
    if let Some(password) = &session.admin_password {
        if session.secure {
            let nonce = challenge(conn).await?;
            let hash = auth::secure_hash(&nonce, password);
            let reply = conn
                .request(&[&b"AUTH"[..], b"SECURE", hash.as_bytes()])
                .await?;
            reply::ok("AUTH", reply)?;
        } else {
            let reply = conn.request(&[&b"AUTH"[..], password.as_bytes()]).await?;
            reply::ok("AUTH", reply)?;
        }
    }
    if let Some(ns) = &session.namespace {
        let reply = match (&session.namespace_password, session.secure) {
            (None, _) => conn.request(&[&b"SELECT"[..], ns.as_bytes()]).await?,
            (Some(pw), false) => {
                conn.request(&[&b"SELECT"[..], ns.as_bytes(), pw.as_bytes()])
                    .await?
            }
            (Some(pw), true) => {
                let nonce = challenge(conn).await?;
                let hash = auth::secure_hash(&nonce, pw);
                conn.request(&[&b"SELECT"[..], ns.as_bytes(), b"SECURE", hash.as_bytes()])
                    .await?
            }
        };
        reply::ok("SELECT", reply)?;
    }
    Ok(())
}

/// `AUTH SECURE CHALLENGE` → nonce.
async fn challenge(conn: &mut Connection) -> Result<String, ClientError> {
    let reply = conn
        .request(&[&b"AUTH"[..], b"SECURE", b"CHALLENGE"])
        .await?;
    reply::text("AUTH SECURE CHALLENGE", reply)
}

/// A connection borrowed from a [`Client`]'s pool; dereferences to [`Connection`].
///
/// Dropping it returns the connection to the pool if it is still healthy.
pub struct PooledConnection {
    conn: Option<Connection>,
    generation: u64,
    /// Whether the connection had been used before this checkout.
    reused: bool,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConnection {
    /// Drops the connection instead of returning it to the pool (e.g. after changing its
    /// namespace by hand).
    pub fn discard(mut self) {
        self.conn = None;
    }
}

impl std::ops::Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Only `discard` and `drop` take the connection, and both consume `self`.
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.is_broken() {
            return;
        }
        let current = lock(&self.pool.session).generation;
        if self.generation == current {
            lock(&self.pool.idle).push(Idle {
                conn,
                generation: self.generation,
            });
        }
    }
}
