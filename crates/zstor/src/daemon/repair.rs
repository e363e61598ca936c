//! The repair worker: sweeps over every stored object, one sweep at a time.
//!
//! * [`Sweep::Lost`] (a backend went down, or the config was reloaded): walk every metadata
//!   key (all `SCAN` pages, [`crate::backend::MetaStore::keys`]), and rebuild
//!   ([`crate::Store::rebuild`]) each object with a shard on a backend marked down or no
//!   longer in the config; the rebuild moves those shards onto healthy backends under the
//!   placement rules.
//! * [`Sweep::Scrub`] (periodic): rebuild every object; a rebuild reads and authenticates
//!   every piece of every chunk and rewrites the missing or corrupt ones, so it is the scrub.
//!
//! Owns: the sweep loop, its queue length and counters in the metrics. Must not touch: how a
//! single object is repaired (that is `Store::rebuild`), or health verdicts.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::Shared;
use crate::store::RebuildTarget;

/// What to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Objects with a shard on a down or removed backend.
    Lost,
    /// Every object, reading and verifying every piece.
    Scrub,
}

/// Run sweeps as they are asked for, and scrubs at the configured interval, until `stop`.
pub async fn run(
    shared: Arc<Shared>,
    mut sweeps: mpsc::Receiver<Sweep>,
    mut stop: watch::Receiver<bool>,
) {
    let scrub_every = shared.tunables.scrub_interval;
    let mut scrub = scrub_every.map(|every| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let next = tokio::select! {
            _ = stop.changed() => return,
            s = sweeps.recv() => match s {
                Some(s) => s,
                None => return,
            },
            _ = async {
                match scrub.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => Sweep::Scrub,
        };
        sweep(&shared, next, &stop).await;
    }
}

/// One sweep; stops early (between objects) when `stop` is set.
async fn sweep(shared: &Shared, kind: Sweep, stop: &watch::Receiver<bool>) {
    let m = &shared.metrics;
    let store = shared.store();
    let keys = match store.meta().keys().await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, ?kind, "cannot list metadata keys; sweep skipped");
            return;
        }
    };
    if kind == Sweep::Lost {
        m.inc(&m.repair_sweeps);
    } else {
        m.set(&m.scrub_total, keys.len() as u64);
    }
    let in_config = |r: &crate::meta::BackendRef| {
        store
            .config()
            .backends()
            .any(|b| b.address == r.address && b.namespace == r.namespace)
    };
    m.set(&m.repair_queue, keys.len() as u64);
    for (done, key) in keys.iter().enumerate() {
        if *stop.borrow() {
            break;
        }
        m.set(&m.repair_queue, (keys.len() - done) as u64);
        let wanted = match kind {
            Sweep::Scrub => true,
            Sweep::Lost => {
                let meta = match store.meta().parse_key(key) {
                    Ok((k, h)) => store.meta().get_at(&k, h, key).await,
                    Err(e) => Err(e),
                };
                match meta {
                    Ok(meta) => {
                        let health = match shared.health.lock() {
                            Ok(h) => h,
                            Err(p) => p.into_inner(),
                        };
                        meta.shards
                            .iter()
                            .any(|s| health.is_down(&s.backend) || !in_config(&s.backend))
                    }
                    Err(e) => {
                        tracing::warn!(key, error = %e, "cannot read metadata");
                        m.inc(&m.repair_failures);
                        false
                    }
                }
            }
        };
        if !wanted {
            continue;
        }
        let _writer = shared.key_locks.lock(key).await;
        match store.rebuild(&RebuildTarget::Key(key.clone())).await {
            Ok(report) => {
                if !report.unchanged() || !report.moved.is_empty() {
                    tracing::info!(key, ?report, "object repaired");
                    m.inc(&m.repaired);
                }
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "repair failed");
                m.inc(&m.repair_failures);
            }
        }
        if kind == Sweep::Scrub {
            m.inc(&m.scrub_checked);
        }
    }
    m.set(&m.repair_queue, 0);
    if kind == Sweep::Scrub {
        m.set(&m.scrub_total, 0);
        m.inc(&m.scrub_runs);
    }
}
