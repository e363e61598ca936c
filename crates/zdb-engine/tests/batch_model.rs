//! Property: a batch (`set_many`) behaves exactly like the same SETs sent one by one — same
//! replies, same final contents — in both modes, whatever mix of new keys, repeats, identical
//! values and invalid items it holds.

use proptest::prelude::*;
use std::sync::Arc;
use zdb_engine::*;

fn open(dir: &std::path::Path) -> Engine {
    let mut c = EngineConfig::new(dir.join("data"), dir.join("index"));
    c.datasize = 512 * 1024;
    Engine::open(c, Arc::new(NoEvents)).unwrap()
}

/// Items drawn from a small key and value alphabet so that repeats and identical values are
/// common; key 9 is too long (user mode) and the seq keys include ids that do not exist yet.
fn item(mode: Mode) -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let key = (0u8..10).prop_map(move |k| match (mode, k) {
        (Mode::User, 9) => vec![b'k'; 256],
        (Mode::User, k) => vec![b'k', k],
        (Mode::Seq, 0..=3) => vec![],
        (Mode::Seq, k) => seq_key(u32::from(k) - 4).to_vec(),
    });
    let value = (0u8..4, 0usize..3).prop_map(|(v, size)| vec![v; [1, 100, 200_000][size]]);
    (key, value)
}

fn outcome(r: &Result<SetOutcome>) -> String {
    match r {
        Ok(o) => format!("{o:?}"),
        Err(e) => e.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn batch_equals_one_by_one(
        mode in prop_oneof![Just(Mode::User), Just(Mode::Seq)],
        batches in proptest::collection::vec(proptest::collection::vec(item(Mode::User), 0..12), 1..4),
        seq_batches in proptest::collection::vec(proptest::collection::vec(item(Mode::Seq), 0..12), 1..4),
    ) {
        let batches = if mode == Mode::User { batches } else { seq_batches };
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let (a, b) = (e.create("batched").unwrap(), e.create("single").unwrap());
        for ns in [&a, &b] {
            ns.change_setting(SettingChange::Mode(mode)).unwrap();
        }
        for batch in &batches {
            let items: Vec<(&[u8], &[u8])> = batch.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            let got: Vec<String> = a.set_many(&items, Some(7)).iter().map(outcome).collect();
            let want: Vec<String> = items.iter().map(|(k, v)| outcome(&b.set(k, v, Some(7)))).collect();
            prop_assert_eq!(got, want);
        }
        prop_assert_eq!(a.len(), b.len());
        for k in 0u8..10 {
            let key = match mode { Mode::User => vec![b'k', k], Mode::Seq => seq_key(u32::from(k)).to_vec() };
            prop_assert_eq!(a.get(&key).unwrap(), b.get(&key).unwrap());
        }
    }
}
