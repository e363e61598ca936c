//! Per-connection state: attached namespace, admin and read-only flags, SECURE nonce.

use std::sync::Arc;
use zdb_engine::Namespace;

/// What one connection carries between its commands.
#[derive(Debug)]
pub(crate) struct Session {
    /// Connection id (for WAIT: a client never wakes itself).
    pub id: u64,
    /// The namespace commands apply to (`SELECT`).
    pub ns: Arc<Namespace>,
    /// Admin commands allowed (`AUTH`, or no `--admin` at all).
    pub admin: bool,
    /// Writes allowed on the attached namespace.
    pub writable: bool,
    /// Nonce of the last `AUTH SECURE CHALLENGE`, single use.
    pub nonce: Option<String>,
}

impl Session {
    pub fn new(id: u64, ns: Arc<Namespace>, admin: bool, writable: bool) -> Self {
        Session {
            id,
            ns,
            admin,
            writable,
            nonce: None,
        }
    }

    /// Attach to `ns`.
    pub fn attach(&mut self, ns: Arc<Namespace>, writable: bool) {
        self.ns = ns;
        self.writable = writable;
    }
}
