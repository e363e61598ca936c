//! Building blocks of the `zstor` command line tool (`src/main.rs`), kept in the library so
//! they carry typed errors and can be tested without spawning the binary.
//!
//! Owns: how command-line paths become metadata keys ([`paths`]), backend health probes for
//! `status` ([`status`]) and the checks behind `test` ([`diagnose`]). Must not touch: argument
//! parsing, output formatting, logging or exit codes (the binary's job), nor the store's
//! pipeline (it calls [`crate::Store`]).

pub mod diagnose;
pub mod paths;
pub mod status;
