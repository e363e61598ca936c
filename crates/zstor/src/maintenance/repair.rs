//! The repair worker: sweeps over every stored object, one sweep at a time.
//!
//! * [`Sweep::Lost`] (a backend went down or came back, an object was stored degraded, or
//!   the config was reloaded): walk every metadata key (all `SCAN` pages,
//!   [`crate::backend::MetaStore::keys`]), and rebuild ([`crate::Store::rebuild`]) each
//!   object below full redundancy: a shard on a backend marked down or no longer in the
//!   config (the rebuild moves it onto a healthy backend under the placement rules), or
//!   pieces a degraded store left unwritten (written onto their backend, or moved).
//! * [`Sweep::Scrub`] (periodic): rebuild every object; a rebuild reads and authenticates
//!   every piece of every chunk and rewrites the missing or corrupt ones, so it is the scrub.
//!
//! Owns: one sweep, its queue length and counters. Must not touch: how a
//! single object is repaired (that is `Store::rebuild`), or health verdicts.

use std::sync::atomic::Ordering::Relaxed;

use service_kit::Stop;

use super::Maintenance;
use crate::store::RebuildTarget;

/// What to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Objects with a shard on a down or removed backend.
    Lost,
    /// Every object, reading and verifying every piece.
    Scrub,
}

impl Maintenance {
    /// One sweep (the `repair` and `scrub` tasks, one at a time); stops early (between
    /// objects) when `stop` is set.
    pub(super) async fn sweep(&self, kind: Sweep, stop: &Stop) -> Result<(), String> {
        let _one = self.sweeping.lock().await;
        let shared = self;
        let m = &self.counters;
        let store = self.store();
        let keys = store
            .meta()
            .keys()
            .await
            .map_err(|e| format!("cannot list metadata keys; sweep skipped: {e}"))?;
        if kind == Sweep::Lost {
            m.sweeps.fetch_add(1, Relaxed);
        } else {
            m.scrub_total.store(keys.len() as u64, Relaxed);
        }
        let in_config = |r: &crate::meta::BackendRef| {
            store
                .config()
                .backends()
                .any(|b| b.address == r.address && b.namespace == r.namespace)
        };
        m.queue.store(keys.len() as u64, Relaxed);
        let mut below = 0u64;
        let mut complete = true;
        for (done, key) in keys.iter().enumerate() {
            if stop.is_set() {
                complete = false;
                break;
            }
            m.queue.store((keys.len() - done) as u64, Relaxed);
            let wanted = match kind {
                Sweep::Scrub => true,
                Sweep::Lost => {
                    let meta = match store.meta().parse_key(key) {
                        Ok((k, h)) => store.meta().get_at(&k, h, key).await,
                        Err(e) => Err(e),
                    };
                    match meta {
                        Ok(meta) => {
                            let health = shared.health();
                            meta.missing_pieces() > 0
                                || meta
                                    .shards
                                    .iter()
                                    .any(|s| health.is_down(&s.backend) || !in_config(&s.backend))
                        }
                        Err(e) => {
                            tracing::warn!(key, error = %e, "cannot read metadata");
                            m.failures.fetch_add(1, Relaxed);
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
                        m.repaired.fetch_add(1, Relaxed);
                    }
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "repair failed");
                    m.failures.fetch_add(1, Relaxed);
                    below += 1;
                }
            }
            if kind == Sweep::Scrub {
                m.scrub_checked.fetch_add(1, Relaxed);
            }
        }
        m.queue.store(0, Relaxed);
        if complete {
            m.degraded.store(below, Relaxed);
        }
        if kind == Sweep::Scrub {
            m.scrub_total.store(0, Relaxed);
            m.scrub_runs.fetch_add(1, Relaxed);
        }
        Ok(())
    }
}
