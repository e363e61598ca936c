//! A full disk: new values are refused with the numbers while a reserve stays free; deletes
//! and compaction still work in the reserve and give the space back; reads never stop.
//! Runs on a small tmpfs of its own (the tests run as root).

use std::path::Path;
use std::sync::Arc;
use test_kit::mount::SmallDisk;
use zdb_engine::*;

fn open(dir: &Path) -> Engine {
    let mut c = EngineConfig::new(dir.join("data"), dir.join("index"));
    c.datasize = 512 * 1024;
    Engine::open(c, Arc::new(NoEvents)).unwrap()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} ").repeat(12_000).into_bytes()
}

#[test]
fn a_full_disk_refuses_new_values_and_deletes_and_compaction_give_space_back() {
    let disk = SmallDisk::new(48);
    let e = open(&disk.path);
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    let (free_at_start, reserve) = e.disk_space().unwrap();
    assert!(reserve > 0 && reserve <= 48 << 20, "reserve {reserve}");
    assert!(
        free_at_start < 48 << 20,
        "the small disk's space, not the host's"
    );

    let mut stored = 0u32;
    let refusal = loop {
        match ns.set(format!("k{stored}").as_bytes(), &value(stored), None) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 10_000, "the disk never filled");
    };
    assert!(matches!(refusal, Error::DiskFull { .. }), "{refusal:?}");
    assert!(refusal.is_no_space());
    let text = refusal.to_string();
    assert!(
        text.starts_with("No space left on device") && text.contains("kept for deletes"),
        "{text}"
    );
    assert!(stored > 100, "most of the disk was usable: {stored} values");
    // Reads go on, and every acknowledged value is intact.
    for i in (0..stored).step_by(17) {
        assert_eq!(
            ns.get(format!("k{i}").as_bytes()).unwrap().unwrap(),
            value(i)
        );
    }

    // Deleting works on the full disk (tombstones go into the reserve) ...
    for i in 0..stored - 5 {
        ns.delete(format!("k{i}").as_bytes()).unwrap();
    }
    // ... and compaction gives the space back.
    ns.compact(0.5).unwrap();
    let (free_after, _) = e.disk_space().unwrap();
    assert!(
        free_after > free_at_start / 2,
        "compaction gave the space back: {free_after} of {free_at_start}"
    );
    for i in stored..stored + 20 {
        ns.set(format!("k{i}").as_bytes(), &value(i), None).unwrap();
    }
    for i in stored - 5..stored + 20 {
        assert_eq!(
            ns.get(format!("k{i}").as_bytes()).unwrap().unwrap(),
            value(i)
        );
    }
    drop(ns);
    drop(e);
    // And all of it survives a restart.
    let e = open(&disk.path);
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    assert_eq!(ns.len(), 25);
    assert_eq!(ns.get(b"k0").unwrap(), None);
}
