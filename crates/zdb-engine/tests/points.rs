//! Property: reading a namespace as of a point (`Namespace::point`, `get_at`) gives
//! exactly what a plain GET gave when the point was taken, for every key, whatever sets,
//! updates, deletes and segment jumps came before and after it, in both modes, and still
//! after the namespace is loaded again from disk.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use zdb_engine::*;

#[derive(Debug, Clone)]
enum Op {
    /// Set key `k` (user mode), or id `k` if it exists, else a new id (seq mode).
    Set(u8, u8),
    Delete(u8),
    Point,
    Jump,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0u8..4).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (0u8..6).prop_map(Op::Delete),
        2 => Just(Op::Point),
        1 => Just(Op::Jump),
    ]
}

fn key_of(mode: Mode, k: u8) -> Vec<u8> {
    match mode {
        Mode::User => vec![b'k', k],
        Mode::Seq => seq_key(u32::from(k)).to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_point_reads_as_the_namespace_was(
        mode in prop_oneof![Just(Mode::User), Just(Mode::Seq)],
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("index"));
        let engine = Engine::open(config, Arc::new(NoEvents)).unwrap();
        let ns = engine.create("points").unwrap();
        ns.change_setting(SettingChange::Mode(mode)).unwrap();
        // What a GET of every key gives now, and at each point taken.
        let mut now: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut next_id = 0u32;
        let mut points = Vec::new();
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    let value = vec![v; 1 + usize::from(k) * 50];
                    // Seq mode: an id past the last one given asks for a new id (the
                    // engine's: an update spends one on a placeholder, as 0-db does); a
                    // deleted id or a placeholder cannot be set.
                    let new = mode == Mode::Seq && u32::from(k) >= next_id;
                    if mode == Mode::Seq && !new && !now.contains_key(&key_of(mode, k)) {
                        continue;
                    }
                    let sent = if new { Vec::new() } else { key_of(mode, k) };
                    if let SetOutcome::Written(written) = ns.set(&sent, &value, None).unwrap() {
                        let key = match mode {
                            Mode::User => written,
                            Mode::Seq => {
                                let id = u64::from_le_bytes(written.try_into().unwrap()) as u32;
                                next_id = next_id.max(id + 1);
                                seq_key(id).to_vec()
                            }
                        };
                        now.insert(key, value);
                    }
                }
                Op::Delete(k) => {
                    let key = key_of(mode, k);
                    if now.remove(&key).is_some() {
                        ns.delete(&key).unwrap();
                    }
                }
                Op::Point => points.push((ns.point(), now.clone())),
                Op::Jump => ns.jump().unwrap(),
            }
        }
        points.push((ns.point(), now.clone()));
        // The same after the namespace is loaded again from disk.
        drop(ns);
        drop(engine);
        let config = EngineConfig::new(dir.path().join("data"), dir.path().join("index"));
        let engine = Engine::open(config, Arc::new(NoEvents)).unwrap();
        let ns = engine.namespace("points").unwrap();
        for (point, then) in &points {
            // Every id given (placeholders too) and a few never given.
            for k in 0..(next_id + 3).max(6) {
                let key = match mode {
                    Mode::User => key_of(mode, k as u8),
                    Mode::Seq => seq_key(k).to_vec(),
                };
                prop_assert_eq!(
                    ns.get_at(&key, *point).unwrap(),
                    then.get(&key).cloned(),
                    "key {} at {:?}",
                    k,
                    point
                );
            }
        }
    }
}
