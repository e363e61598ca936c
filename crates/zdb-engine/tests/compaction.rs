//! Online compaction: space comes back, live data and deletions survive compaction, restart and
//! an index rebuild, and clients keep working while it runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use zdb_engine::*;

fn open(dir: &Path) -> Engine {
    let mut c = EngineConfig::new(dir.join("data"), dir.join("index"));
    c.datasize = 512 * 1024;
    Engine::open(c, Arc::new(NoEvents)).unwrap()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("{i}:{round}:").repeat(100).into_bytes()
}

/// Delete namespace `c`'s index segments: the next open rebuilds the index from the data.
fn drop_index(dir: &Path) {
    for f in std::fs::read_dir(dir.join("index/c")).unwrap() {
        let p = f.unwrap().path();
        if p.file_name().unwrap().to_str().unwrap().starts_with('i') {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// Write `n` new keys (`{prefix}-{i}`, or fresh ids in seq mode) with `value(i, round)`;
/// returns the keys in order.
fn add_keys(ns: &Namespace, mode: Mode, prefix: &str, n: u32, round: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let k = match mode {
                Mode::User => format!("{prefix}-{i}").into_bytes(),
                Mode::Seq => vec![],
            };
            let SetOutcome::Written(k) = ns.set(&k, &value(i, round), None).unwrap() else {
                panic!()
            };
            k
        })
        .collect()
}

/// Writes keys in rounds so most closed segments end up dead; returns the expected contents.
fn churn(ns: &Namespace, mode: Mode) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut expect = HashMap::new();
    let keys = add_keys(ns, mode, "key", 400, 0);
    for (i, k) in keys.iter().enumerate() {
        expect.insert(k.clone(), value(i as u32, 0));
    }
    for round in 1..4 {
        for (i, k) in keys.iter().enumerate() {
            if i % 5 != 0 {
                ns.set(k, &value(i as u32, round), None).unwrap();
                expect.insert(k.clone(), value(i as u32, round));
            }
        }
    }
    for (i, k) in keys.iter().enumerate() {
        if i % 7 == 3 {
            ns.delete(k).unwrap();
            expect.remove(k);
        }
    }
    expect
}

fn verify(ns: &Namespace, expect: &HashMap<Vec<u8>, Vec<u8>>, all_keys: &[Vec<u8>]) {
    assert_eq!(ns.len() as usize, expect.len());
    for k in all_keys {
        assert_eq!(ns.get(k).unwrap().as_ref(), expect.get(k), "key {k:?}");
    }
}

#[test]
fn compaction_frees_space_and_keeps_live_data_and_deletions() {
    for mode in [Mode::User, Mode::Seq] {
        let dir = tempfile::tempdir().unwrap();
        let all_keys: Vec<Vec<u8>>;
        let expect;
        {
            let e = open(dir.path());
            let ns = e.create("c").unwrap();
            ns.change_setting(SettingChange::Mode(mode)).unwrap();
            expect = churn(&ns, mode);
            all_keys = match mode {
                Mode::User => (0..400).map(|i| format!("key-{i}").into_bytes()).collect(),
                Mode::Seq => (0..400).map(|i| seq_key(i).to_vec()).collect(),
            };
            let before = ns.info().data_bytes;
            let stats = ns.compact(0.5).unwrap();
            assert!(stats.segments_emptied > 0, "{mode:?}: {stats:?}");
            assert!(
                ns.info().data_bytes < before / 2,
                "{mode:?}: {} vs {before}",
                ns.info().data_bytes
            );
            verify(&ns, &expect, &all_keys);
            // A second pass with everything eligible empties every closed segment.
            ns.compact(0.0).unwrap();
            verify(&ns, &expect, &all_keys);
        }
        let e = open(dir.path());
        verify(&e.namespace("c").unwrap(), &expect, &all_keys);
        drop(e);
        // The index rebuilt from the compacted data must agree (no deleted key comes back).
        drop_index(dir.path());
        let e = open(dir.path());
        verify(&e.namespace("c").unwrap(), &expect, &all_keys);
    }
}

/// Compaction while the first segment is offloaded (its file absent) must keep the
/// tombstones of keys whose older versions live there: once that segment is fetched back and
/// the index rebuilt from the data, no deleted key may return.
#[test]
fn tombstones_stay_while_an_older_segment_is_offloaded() {
    for mode in [Mode::User, Mode::Seq] {
        let dir = tempfile::tempdir().unwrap();
        let (expect, all_keys) = {
            let e = open(dir.path());
            let ns = e.create("c").unwrap();
            ns.change_setting(SettingChange::Mode(mode)).unwrap();
            let mut expect = churn(&ns, mode);
            let mut all_keys: Vec<Vec<u8>> = match mode {
                Mode::User => (0..400).map(|i| format!("key-{i}").into_bytes()).collect(),
                Mode::Seq => (0..400).map(|i| seq_key(i).to_vec()).collect(),
            };
            // New keys push the tombstones out of the open segment into closed ones.
            for (i, k) in add_keys(&ns, mode, "more", 1000, 7).into_iter().enumerate() {
                expect.insert(k.clone(), value(i as u32, 7));
                all_keys.push(k);
            }
            (expect, all_keys)
        };
        let d0 = dir.path().join("data/c/d0");
        let away = dir.path().join("d0-offloaded");
        std::fs::rename(&d0, &away).unwrap();
        open(dir.path())
            .namespace("c")
            .unwrap()
            .compact(0.0)
            .unwrap();
        std::fs::rename(&away, &d0).unwrap();
        drop_index(dir.path());
        let e = open(dir.path());
        verify(&e.namespace("c").unwrap(), &expect, &all_keys);
    }
}

/// Brings an "offloaded" segment back from a folder on `missing-data`, counting the calls.
struct FromFolder {
    folder: std::path::PathBuf,
    fetched: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

impl EventSink for FromFolder {
    fn emit(&self, event: &Event) -> std::result::Result<(), SinkError> {
        if let Event::MissingData { path, .. } = event {
            self.fetched.lock().unwrap().push(path.clone());
            let from = self.folder.join(path.file_name().unwrap());
            std::fs::copy(from, path).map_err(|e| SinkError::with_source("cannot fetch", e))?;
        }
        Ok(())
    }
}

/// Offloaded segments are compacted on request: one with live records is fetched back for
/// the move, one with nothing live is not fetched; both end as header-only files.
#[test]
fn offloaded_segments_are_compacted_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let (expect, all_keys, usage) = {
        let e = open(dir.path());
        let ns = e.create("c").unwrap();
        let mut expect = churn(&ns, Mode::User);
        // A segment or two of values deleted at once: nothing in them stays live.
        for k in add_keys(&ns, Mode::User, "gone", 1500, 8) {
            ns.delete(&k).unwrap();
        }
        for (i, k) in add_keys(&ns, Mode::User, "more", 1000, 7)
            .into_iter()
            .enumerate()
        {
            expect.insert(k, value(i as u32, 7));
        }
        let mut all_keys: Vec<Vec<u8>> = expect.keys().cloned().collect();
        all_keys.extend((0..400).map(|i| format!("key-{i}").into_bytes()));
        (expect, all_keys, ns.segment_usage())
    };
    let live = usage.iter().find(|u| u.live_records > 0).unwrap().segment;
    let dead = usage.iter().find(|u| u.live_records == 0).unwrap().segment;
    let folder = dir.path().join("offloaded");
    std::fs::create_dir(&folder).unwrap();
    for seg in [live, dead] {
        let name = format!("d{seg}");
        std::fs::rename(dir.path().join("data/c").join(&name), folder.join(&name)).unwrap();
    }
    let sink = Arc::new(FromFolder {
        folder,
        fetched: Default::default(),
    });
    let mut c = EngineConfig::new(dir.path().join("data"), dir.path().join("index"));
    c.datasize = 512 * 1024;
    let e = Engine::open(c, sink.clone()).unwrap();
    let ns = e.namespace("c").unwrap();
    let stats = ns.compact_segments(&[live, dead]).unwrap();
    assert_eq!(stats.emptied, vec![live.min(dead), live.max(dead)]);
    assert!(stats.records_moved > 0);
    let header_only = |seg: u32| {
        std::fs::metadata(dir.path().join(format!("data/c/d{seg}")))
            .unwrap()
            .len()
    };
    assert_eq!(header_only(live), header_only(dead));
    assert_eq!(
        sink.fetched.lock().unwrap().as_slice(),
        [dir.path().join(format!("data/c/d{live}"))],
        "only the segment with live records is fetched"
    );
    verify(&ns, &expect, &all_keys);
    drop(ns);
    drop(e);
    verify(
        &open(dir.path()).namespace("c").unwrap(),
        &expect,
        &all_keys,
    );
}

#[test]
fn clients_keep_working_during_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(open(dir.path()));
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    let expect = churn(&ns, Mode::User);
    let writer = {
        let ns = ns.clone();
        std::thread::spawn(move || {
            for i in 0..2000u32 {
                ns.set(format!("new-{i}").as_bytes(), &value(i, 9), None)
                    .unwrap();
                assert_eq!(
                    ns.get(format!("new-{}", i / 2).as_bytes())
                        .unwrap()
                        .unwrap(),
                    value(i / 2, 9)
                );
            }
        })
    };
    ns.compact(0.0).unwrap();
    writer.join().unwrap();
    for (k, v) in &expect {
        assert_eq!(ns.get(k).unwrap().as_ref(), Some(v));
    }
    for i in 0..2000u32 {
        assert_eq!(
            ns.get(format!("new-{i}").as_bytes()).unwrap().unwrap(),
            value(i, 9)
        );
    }
}
