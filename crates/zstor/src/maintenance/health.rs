//! Backend health: probe every configured backend at a fixed interval (`NSINFO`, through
//! [`crate::probe`]), keep the last result for `/metrics`, and mark a data backend
//! *down* after [`super::Settings::probe_failures`] consecutive failed probes (up again after
//! one good probe).
//!
//! Owns: [`Health`] and one probe of the `health` task. A backend going down or coming
//! back, every few probes while one stays down, and an object stored below full redundancy
//! since the last probe wake the `repair` task ([`super::repair::Sweep::Lost`]): what a
//! down backend holds moves elsewhere, what was left unwritten is written once it is back.
//! Must not touch: repairing objects itself, or the metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;

use super::Maintenance;
use crate::meta::BackendRef;
use crate::probe::{self, Status};

/// Probes between two repair retries while a backend stays down.
const RETRY_EVERY: u64 = 6;

/// What the probe loop knows.
#[derive(Debug, Default)]
pub struct Health {
    /// The last probe of every backend.
    pub last: Option<Status>,
    /// Consecutive failed probes per data backend.
    failures: BTreeMap<(String, Option<String>), u32>,
    /// Data backends marked down.
    pub(super) down: BTreeSet<(String, Option<String>)>,
}

impl Health {
    /// Whether the data backend `r` is marked down.
    pub fn is_down(&self, r: &BackendRef) -> bool {
        self.down
            .contains(&(r.address.clone(), r.namespace.clone()))
    }

    /// Down backends as `address/namespace` (`default` when the config names none).
    pub fn down_labels(&self) -> Vec<String> {
        self.down
            .iter()
            .map(|(a, ns)| format!("{a}/{}", ns.as_deref().unwrap_or("default")))
            .collect()
    }

    /// Fold one probe in; returns whether a backend went down or came back now.
    pub(super) fn update(&mut self, config: &crate::Config, st: Status, threshold: u32) -> bool {
        let mut changed = false;
        let mut seen = BTreeSet::new();
        for (g, group) in config.groups.iter().enumerate() {
            for (i, conf) in group.backends.iter().enumerate() {
                let id = (conf.address.clone(), conf.namespace.clone());
                seen.insert(id.clone());
                let ok = st
                    .groups
                    .get(g)
                    .and_then(|grp| grp.get(i))
                    .is_some_and(|b| b.reachable);
                if ok {
                    self.failures.remove(&id);
                    if self.down.remove(&id) {
                        tracing::warn!(backend = conf.label(), "backend is up again");
                        changed = true;
                    }
                    continue;
                }
                let n = self.failures.entry(id.clone()).or_insert(0);
                *n = n.saturating_add(1);
                if *n >= threshold && self.down.insert(id) {
                    tracing::warn!(
                        backend = conf.label(),
                        probes = *n,
                        "backend marked down; repairing its objects"
                    );
                    changed = true;
                }
            }
        }
        // Backends that left the config are no longer tracked.
        self.failures.retain(|id, _| seen.contains(id));
        self.down.retain(|id| seen.contains(id));
        self.last = Some(st);
        changed
    }
}

impl Maintenance {
    /// One probe of every backend (the `health` task; `n` counts the probes): fold it into
    /// the verdicts, and ask for a repair sweep when a backend went down or came back, every
    /// [`RETRY_EVERY`] probes while one stays down or objects are below full redundancy, and
    /// when an object was stored below it since the last probe.
    pub(super) async fn probe(&self, n: u64) {
        let store = self.store();
        let st = probe::status(store.config()).await;
        let (changed, any_down) = {
            let mut h = self.health();
            let changed = h.update(store.config(), st, self.settings.probe_failures);
            (changed, !h.down.is_empty())
        };
        let degraded = store.degraded_stores();
        let newly_degraded = self.counters.degraded_seen.swap(degraded, Relaxed) != degraded;
        let below = self.counters.degraded.load(Relaxed) > 0;
        if changed || newly_degraded || ((any_down || below) && n % RETRY_EVERY == 0) {
            self.request_repair();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::BackendStatus;

    fn config(data: usize) -> crate::Config {
        let mut s = format!(
            "minimal_shards = 1\nexpected_shards = 2\n\
             [encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n\
             [compression]\nalgorithm = \"snappy\"\n\
             [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"p\"\n\
             [meta.config.encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n",
            "00".repeat(32),
            "11".repeat(32)
        );
        for i in 0..4 {
            s += &format!(
                "[[meta.config.backends]]\naddress = \"127.0.0.1:{}\"\n",
                9900 + i
            );
        }
        s += "[[groups]]\n";
        for i in 0..data {
            s += &format!(
                "[[groups.backends]]\naddress = \"127.0.0.1:{}\"\nnamespace = \"d\"\n",
                10_000 + i
            );
        }
        crate::Config::from_toml(&s).expect("config")
    }

    fn probe(config: &crate::Config, up: &[bool]) -> Status {
        let b = |addr: &str, ok: bool| BackendStatus {
            reachable: ok,
            ..BackendStatus::unreachable(addr, "d")
        };
        Status {
            meta: vec![],
            groups: vec![config.groups[0]
                .backends
                .iter()
                .zip(up)
                .map(|(c, &ok)| b(&c.address, ok))
                .collect()],
        }
    }

    #[test]
    fn down_after_consecutive_failures_up_after_one_success() {
        let c = config(3);
        let mut h = Health::default();
        let r = BackendRef {
            address: "127.0.0.1:10001".into(),
            namespace: Some("d".into()),
        };
        assert!(!h.update(&c, probe(&c, &[true, false, true]), 3));
        assert!(!h.update(&c, probe(&c, &[true, false, true]), 3));
        // A success in between resets the count.
        assert!(!h.update(&c, probe(&c, &[true, true, true]), 3));
        assert!(!h.update(&c, probe(&c, &[true, false, true]), 3));
        assert!(!h.update(&c, probe(&c, &[true, false, true]), 3));
        assert!(!h.is_down(&r));
        assert!(h.update(&c, probe(&c, &[true, false, true]), 3), "down now");
        assert!(h.is_down(&r));
        assert_eq!(h.down_labels(), vec!["127.0.0.1:10001/d".to_owned()]);
        assert!(
            !h.update(&c, probe(&c, &[true, false, true]), 3),
            "only once"
        );
        assert!(h.update(&c, probe(&c, &[true, true, true]), 3), "up again");
        assert!(!h.is_down(&r));
        assert!(!h.update(&c, probe(&c, &[true, true, true]), 3));
        // A backend that left the config is forgotten.
        for _ in 0..3 {
            h.update(&c, probe(&c, &[true, true, false]), 3);
        }
        assert_eq!(h.down.len(), 1);
        let smaller = config(2);
        h.update(&smaller, probe(&smaller, &[true, true]), 3);
        assert!(h.down.is_empty());
    }
}
