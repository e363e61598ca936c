//! Who gets a connection slot (`--max-clients`), and what happens when there is none.
//!
//! A full server first takes the slot of the connection that has been silent the longest, if
//! it has been silent for `--idle-timeout` seconds: idle sockets must not lock real clients
//! out. Silent connections are not closed otherwise: 0-db never closes them, and the clients
//! that keep one connection for life (0-db-fs, zdbfs frontends) fail one operation when
//! theirs is closed under them. With nothing idle enough, an `--admin` server still lets a
//! few connections in ([`ADMIN_ROOM`]) that may only authenticate as admin, so an operator
//! can always get in to look; everyone else is told `-Too many clients`.

use crate::state::ServerState;
use crate::stats::Stats;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// The refusal, as 0-db words it.
pub const TOO_MANY_CLIENTS: &str = "Too many clients";

/// Connections accepted beyond `--max-clients` for an admin to authenticate on.
pub const ADMIN_ROOM: usize = 4;

/// `Presence::silent_since` of a connection that is busy (reading a request or replying).
const BUSY: u64 = 0;
/// `Presence::silent_since` of a connection whose slot was given away.
const EVICTED: u64 = u64::MAX;

/// What the admission code knows of one live connection.
pub(crate) struct Presence {
    /// Milliseconds since the registry's start when the connection last fell silent (nothing
    /// buffered, waiting for the client), or [`BUSY`] / [`EVICTED`].
    silent_since: AtomicU64,
    /// Woken when the slot is given to a new client.
    evicted: Notify,
}

impl Presence {
    /// The connection waits for its client with nothing pending.
    pub fn silent(&self, reg: &Registry) {
        let _ = self.silent_since.compare_exchange(
            BUSY,
            reg.now_ms(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The client sent something. `false` if the slot was given away meanwhile: the
    /// connection must end (as if closed a moment before the client spoke).
    pub fn busy(&self) -> bool {
        self.silent_since.swap(BUSY, Ordering::AcqRel) != EVICTED
    }

    /// Completes once the slot has been given to a new client.
    pub async fn evicted(&self) {
        if self.silent_since.load(Ordering::Acquire) != EVICTED {
            self.evicted.notified().await;
        }
    }
}

/// Live connections, for giving an idle one's slot away.
pub(crate) struct Registry {
    start: Instant,
    conns: Mutex<HashMap<u64, Arc<Presence>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            start: Instant::now(),
            conns: Mutex::new(HashMap::new()),
        }
    }
}

impl Registry {
    fn now_ms(&self) -> u64 {
        // +1 keeps every timestamp apart from BUSY.
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(EVICTED - 1) + 1
    }

    /// Close the connection silent the longest, if silent for at least `min_ms`.
    fn evict_idlest(&self, min_ms: u64) -> bool {
        let now = self.now_ms();
        let conns = self.conns.lock();
        let idlest = conns
            .values()
            .filter_map(|p| {
                let since = p.silent_since.load(Ordering::Acquire);
                (since != BUSY && since != EVICTED && now - since >= min_ms).then_some((since, p))
            })
            .min_by_key(|(since, _)| *since);
        let Some((since, p)) = idlest else {
            return false;
        };
        let taken = p
            .silent_since
            .compare_exchange(since, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if taken {
            p.evicted.notify_one();
        }
        taken
    }
}

/// Where an accepted connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A slot of its own.
    Admitted,
    /// Over the limit: only admin authentication is served until it succeeds.
    AdminRoom,
}

/// A connection slot; dropping it frees the slot and forgets the connection.
pub(crate) struct Slot {
    state: Arc<ServerState>,
    pub id: u64,
    pub presence: Arc<Presence>,
    pub admission: Admission,
}

impl Slot {
    /// A slot for connection `id`, or `None`: the server is full (say `-Too many clients`).
    pub fn take(state: &Arc<ServerState>, id: u64) -> Option<Slot> {
        let limits = &state.config.limits;
        let n = state.clients.fetch_add(1, Ordering::AcqRel);
        let admission = if n < limits.max_clients {
            Admission::Admitted
        } else if limits
            .idle_timeout
            .is_some_and(|t| state.admission.evict_idlest(t.as_millis() as u64))
        {
            // The evicted connection still counts until its task ends, a moment from now.
            Admission::Admitted
        } else if state.config.admin.is_some() && n < limits.max_clients + ADMIN_ROOM {
            Admission::AdminRoom
        } else {
            state.clients.fetch_sub(1, Ordering::AcqRel);
            return None;
        };
        Stats::add(&state.stats.clients_lifetime, 1);
        let presence = Arc::new(Presence {
            silent_since: AtomicU64::new(BUSY),
            evicted: Notify::new(),
        });
        state.admission.conns.lock().insert(id, presence.clone());
        Some(Slot {
            state: state.clone(),
            id,
            presence,
            admission,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.admission.conns.lock().remove(&self.id);
        self.state.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(reg: &Registry, id: u64) -> Arc<Presence> {
        let p = Arc::new(Presence {
            silent_since: AtomicU64::new(BUSY),
            evicted: Notify::new(),
        });
        reg.conns.lock().insert(id, p.clone());
        p
    }

    #[test]
    fn only_a_connection_silent_long_enough_is_evicted_and_only_once() {
        let reg = Registry::default();
        let busy = presence(&reg, 1);
        let old = presence(&reg, 2);
        let newer = presence(&reg, 3);
        old.silent(&reg);
        std::thread::sleep(std::time::Duration::from_millis(5));
        newer.silent(&reg);
        assert!(!reg.evict_idlest(60_000), "nobody silent for a minute");
        assert!(reg.evict_idlest(0));
        assert!(!old.busy(), "the longest silent one went first");
        assert!(newer.busy() && busy.busy());
        assert!(!reg.evict_idlest(0), "busy connections are never taken");
    }
}
