//! Typed errors of the server library (the binary wraps them with `anyhow` context).

use std::path::PathBuf;

/// Why a server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The engine could not open the data and index directories.
    #[error("cannot open the engine (data {data}, index {index}): {source}")]
    Engine {
        data: PathBuf,
        index: PathBuf,
        #[source]
        source: zdb_engine::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The configuration is inconsistent (e.g. no listener at all).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The blocking `ready` hook refused the start. The refusal is shown, not chained as a
    /// source, so `{:#}` prints it once.
    #[error("the ready hook refused the start: {0}")]
    HookRefused(zdb_engine::SinkError),
    /// A background task of the engine failed (e.g. a panic in a blocking task).
    #[error("internal task failed: {0}")]
    Task(String),
}
