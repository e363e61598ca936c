//! Server configuration: what the `zdb` flags turn into, usable in-process too.

use std::path::PathBuf;
use std::time::Duration;
use zdb_engine::{Durability, EngineConfig};

/// Limits that protect the server from hostile or broken clients (our extensions to 0-db).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Largest single request (all arguments together) a connection may buffer; a bulk argument
    /// larger than `min(this, 8 MiB)` is refused with `-Payload too big`.
    pub max_request_bytes: usize,
    /// Most arguments in one request, command name included (0-db: 1024).
    pub max_args: usize,
    /// Most simultaneous connections; when full, a new one takes the slot of a connection
    /// silent for `idle_timeout`, else it gets `-Too many clients` and is closed (an admin
    /// may still authenticate: see `admission.rs`).
    pub max_clients: usize,
    /// A partially received request older than this closes the connection (slowloris guard);
    /// also bounds how long a reply write may stay blocked. `None` disables it.
    pub request_timeout: Option<Duration>,
    /// How long a connection must have been silent before a new client may take its slot on
    /// a full server. `None`: never. Silent connections are not closed otherwise.
    pub idle_timeout: Option<Duration>,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_request_bytes: 9 * 1024 * 1024,
            max_args: 1024,
            max_clients: 4096,
            request_timeout: Some(Duration::from_secs(60)),
            idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// Everything a [`crate::Server`] needs; field names follow the `zdb` flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// TCP address to listen on (`--listen`); `::` falls back to `0.0.0.0` without IPv6.
    pub listen: String,
    /// TCP port (`--port`); 0 picks a free one (see [`crate::Server::local_addr`]).
    pub port: u16,
    /// Unix socket path (`--socket`); disables TCP unless [`ServerConfig::dualnet`].
    pub socket: Option<PathBuf>,
    /// Listen on both the unix socket and TCP (`--dualnet`).
    pub dualnet: bool,
    /// The engine: directories, forced mode, datasize, default maxsize, durability (`--sync`).
    pub engine: EngineConfig,
    /// Admin password (`--admin`); without it every client is admin.
    pub admin: Option<String>,
    /// `--protect`: `default` is password-protected by the admin password and clients start
    /// read-only.
    pub protect: bool,
    /// Hook executable (`--hook`).
    pub hook: Option<PathBuf>,
    /// fsync every namespace with unsynced writes every N seconds (`--synctime`; 0 = off).
    pub synctime: u64,
    /// Force a segment jump of namespaces whose open segment is older than N seconds
    /// (`--rotate`; 0 = off).
    pub rotate: u64,
    /// Hostile-input limits.
    pub limits: ConnLimits,
}

impl ServerConfig {
    /// A configuration with 0-db's defaults over the given directories.
    pub fn new(data_dir: impl Into<PathBuf>, index_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: "::".to_string(),
            port: 9900,
            socket: None,
            dualnet: false,
            engine: EngineConfig::new(data_dir, index_dir),
            admin: None,
            protect: false,
            hook: None,
            synctime: 0,
            rotate: 0,
            limits: ConnLimits::default(),
        }
    }

    /// Whether the TCP listener is enabled.
    pub fn tcp_enabled(&self) -> bool {
        self.socket.is_none() || self.dualnet
    }

    /// Whether every write is fsync'ed before its reply (`--sync`).
    pub fn sync_writes(&self) -> bool {
        self.engine.durability == Durability::Always
    }

    /// The instance id passed to hooks: `unix://<socket>` or `tcp://<listen>:<port>`.
    pub fn instance_id(&self) -> String {
        match &self.socket {
            Some(p) => format!("unix://{}", p.display()),
            None => format!("tcp://{}:{}", self.listen, self.port),
        }
    }
}
