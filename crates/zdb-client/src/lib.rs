//! Async client for zdb servers (compatible with ThreeFold 0-db), used by zdbfs and zstor.
//!
//! # What this crate owns
//!
//! * [`Connection`]: one buffered TCP or unix-socket connection speaking RESP2 through the
//!   [`resp`] codec, with single requests ([`Connection::request`]) and pipelining
//!   ([`Connection::pipeline`]: every request in one write, replies read as they come).
//! * [`Client`]: a cheaply cloneable handle on a small pool of connections. It connects
//!   lazily with a connect timeout, re-runs `AUTH` (admin) and `SELECT namespace
//!   [password]` on every new connection, drops broken connections and reconnects,
//!   retries read-only commands once when a reused connection turns out to be dead, and
//!   bounds every request with a timeout so nothing hangs forever, and optionally with a
//!   stall timeout (no byte moved for that long), which the caller may adapt while it runs.
//! * Typed helpers ([`Client::set`], [`Client::scan`], [`Client::nsinfo`], …) mapping
//!   0-db commands to Rust types, and the reply shapes they parse ([`ScanEntry`],
//!   [`HistoryEntry`], [`NsInfo`]).
//! * Errors: server `-Error` replies become [`ClientError::Server`] with the server's text,
//!   so callers can match on e.g. `"No more data"`.
//!
//! # What this crate must not touch
//!
//! * Wire framing and limits live in [`resp`]; this crate never parses RESP by hand.
//! * No storage semantics: it does not decide what to store where, how to retry a failed
//!   write at a higher level, or how to spread data over servers (that is zstor's job).
//! * No server behaviour: it reproduces what a 0-db client sends and expects, nothing more.

#![forbid(unsafe_code)]

mod auth;
mod commands;
mod connection;
mod error;
mod pool;
mod reply;

pub use auth::secure_hash;
pub use connection::{Connection, ConnectionOptions, Endpoint};
pub use error::ClientError;
pub use pool::{Client, ClientConfig, PooledConnection};
pub use reply::{check_reply, HistoryEntry, NsInfo, ScanEntry};
pub use resp::{Frame, Limits};

/// Default zdb / 0-db TCP port.
pub const DEFAULT_PORT: u16 = 9900;
