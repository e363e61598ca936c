//! # stack-abi: the contracts both ends of a connection share
//!
//! Facts fixed by ThreeFold's programs that a server and its clients must agree on, kept
//! once so the two sides cannot drift apart:
//! - [`zdb`]: the `AUTH SECURE` / `SELECT … SECURE` response hash and the field names of
//!   `NSINFO` (written by `zdb-server`, read by `zdb-client`);
//! - [`zdbfs_stats`]: 0-db-fs's statistics ioctl, `stats_t` version 2 (answered by `zdbfs`,
//!   read by `zstor monitor`).
//!
//! Must not touch: anything with state, I/O or a runtime; this crate is constants and pure
//! functions only.

#![forbid(unsafe_code)]

pub mod zdb;
pub mod zdbfs_stats;
