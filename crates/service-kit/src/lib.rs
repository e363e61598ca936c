//! # service-kit: what every long-running program of the stack needs besides its own job
//!
//! `zdb`, `zstor monitor` and `qsfs` are daemons with the same plumbing; it lives here once.
//!
//! What each module owns:
//! - [`task`]: named background tasks (periodic, woken on demand, or long-running) with a
//!   status each that `status` commands list and metrics export, and one stop for all;
//! - [`metrics`]: the Prometheus text exposition writer and the `/metrics` route;
//! - [`http`]: serving an axum router until stop, requests in flight finishing first;
//! - [`control`]: the control socket (a unix socket, mode 0600): one JSON request line, one
//!   JSON answer line, its server and its client;
//! - [`logging`]: tracing set-up (stderr or a file, colour only on a terminal);
//! - [`sys`]: the system calls the daemons share (lock files, file-system space, mount
//!   checks, detaching into the background), through `rustix`: no `unsafe` here but the one
//!   `pre_exec` of [`sys::detach`];
//! - [`flags`]: values the command lines share (sizes such as `64M`).
//!
//! Must not touch: any storage format or the meaning of any piece's requests; callers pass
//! their own request types, metric names and work.

pub mod control;
pub mod flags;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod sys;
pub mod task;

pub use task::{Stop, TaskStatus, Tasks};
