//! Logging set-up: `tracing` to stderr or to a file, filtered by `RUST_LOG` or a default,
//! with ANSI colour only when writing to a terminal (a log file or a pipe gets plain text).

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Which filter applies.
#[derive(Debug, Clone, Copy)]
pub enum Level<'a> {
    /// `RUST_LOG` when set, else this directive (e.g. `"info"`).
    Default(&'a str),
    /// This directive whatever `RUST_LOG` says (a `--debug` flag).
    Forced(&'a str),
}

/// Install the global subscriber: to `file` (appended, created if needed), else stderr.
/// Fails only when the file cannot be opened; a second call keeps the first set-up.
pub fn init(level: Level<'_>, file: Option<&Path>) -> std::io::Result<()> {
    let filter = match level {
        Level::Default(d) => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(d))
        }
        Level::Forced(d) => EnvFilter::new(d),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("opening log file {}: {e}", path.display()),
                    )
                })?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
    Ok(())
}
