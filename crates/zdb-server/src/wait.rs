//! WAIT support: per-namespace notifications of executed commands.
//!
//! Every executed command calls [`Waiters::notify`]; it costs one atomic load while nobody
//! waits. A waiter subscribes with [`Waiters::subscribe`] and receives [`Notice`]s for its
//! namespace until its guard is dropped.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::broadcast;

/// One executed command, as seen by waiters of its namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notice {
    /// Connection that ran it.
    pub from: u64,
    /// Command table name (upper case).
    pub command: &'static str,
}

/// Registry of waiters per namespace name.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    active: AtomicUsize,
    channels: Mutex<HashMap<String, broadcast::Sender<Notice>>>,
}

/// A subscription; unsubscribes on drop.
pub(crate) struct Subscription<'a> {
    waiters: &'a Waiters,
    ns: String,
    pub rx: broadcast::Receiver<Notice>,
}

impl Waiters {
    /// Start receiving notices for namespace `ns`.
    pub fn subscribe(&self, ns: &str) -> Subscription<'_> {
        let mut map = self.channels.lock();
        let tx = map
            .entry(ns.to_string())
            .or_insert_with(|| broadcast::channel(64).0);
        let rx = tx.subscribe();
        self.active.fetch_add(1, Ordering::AcqRel);
        Subscription {
            waiters: self,
            ns: ns.to_string(),
            rx,
        }
    }

    /// Tell waiters of `ns` that connection `from` ran `command`.
    pub fn notify(&self, ns: &str, from: u64, command: &'static str) {
        if self.active.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(tx) = self.channels.lock().get(ns) {
            let _ = tx.send(Notice { from, command });
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.channels.lock();
        self.waiters.active.fetch_sub(1, Ordering::AcqRel);
        // Our receiver is still alive here, so "only us" means a count of 1.
        if map.get(&self.ns).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.ns);
        }
    }
}
