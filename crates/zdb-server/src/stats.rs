//! Server-wide counters reported by INFO.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters shared by every connection; updated once per batch or per socket operation.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub clients_lifetime: AtomicU64,
    pub commands_executed: AtomicU64,
    pub commands_failed: AtomicU64,
    pub commands_unauthorized: AtomicU64,
    pub network_rx: AtomicU64,
    pub network_tx: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// Counters of one batch, folded into [`Stats`] once the batch is done.
#[derive(Debug, Default)]
pub(crate) struct BatchStats {
    pub executed: u64,
    pub failed: u64,
    pub unauthorized: u64,
}

impl BatchStats {
    pub fn flush(&mut self, stats: &Stats) {
        Stats::add(&stats.commands_executed, self.executed);
        Stats::add(&stats.commands_failed, self.failed);
        Stats::add(&stats.commands_unauthorized, self.unauthorized);
        *self = BatchStats::default();
    }
}
