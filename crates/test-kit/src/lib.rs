//! Shared test fixtures of the workspace's test suites: real servers ([`zdb::TestZdb`], an
//! in-process zdb on loopback), mounts ([`mount`]: is a path mounted, wait for it, a small
//! disk that fills), readiness waits ([`wait`]: bounded polls with a clear panic message,
//! never a fixed sleep that hopes), free ports ([`net`]), metric scrapes ([`metrics`]) and
//! real client programs with the trees they copy ([`clients`]).
//! The WAN test rig is a dev-only crate of its own (`wan-rig`): it is also a binary the
//! benchmark scripts run.
//!
//! Owns: only what more than one suite needs the same way; a suite's special cases stay in
//! its own `tests/common`.
//!
//! Must not touch: non-test code. It is a dev-dependency only (`publish = false`); no
//! crate's `[dependencies]` may name it, and it never reaches into a crate's private state.

#![forbid(unsafe_code)]

pub mod clients;
pub mod metrics;
pub mod mount;
pub mod net;
pub mod wait;
pub mod zdb;
