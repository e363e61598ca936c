//! # zdb-server: the `zdb` server, a 0-db compatible RESP server over `zdb-engine`
//!
//! Owns everything between a socket and the engine: listeners (TCP, unix socket), connections
//! (read buffer, pipelined request batches, one write per batch, hostile-input limits), the
//! per-connection session (namespace, admin, read-only, SECURE nonce), one module per command
//! under [`cmd`](crate::cmd), the `--hook` executable, timers (`--rotate`, `--synctime`) and the
//! designed shutdown. The wire codec is the `resp` crate; the storage is `zdb-engine`.
//!
//! Start a server in-process with [`Server::bind`] then [`Server::run`], or use [`run`].
//! Behaviour follows 0-db v2.0.7 (`docs/compat/0db-facts.md`) with the documented exceptions.

#![forbid(unsafe_code)]

mod admission;
mod cmd;
mod config;
mod conn;
mod error;
mod hooks;
mod server;
mod session;
mod state;
mod stats;
mod timers;
mod wait;

pub use config::{ConnLimits, ServerConfig};
pub use error::ServerError;
pub use hooks::{HookRun, HookRunner};
pub use server::{run, Server, ShutdownHandle};

/// The 0-db release this server is compatible with (reported by INFO).
pub const ZDB_COMPAT_VERSION: &str = "2.0.7";
