//! Checkpoints: what a sink copies under the lock at a jump is a consistent namespace that
//! opens on its own and answers exactly as the namespace did at that jump, even though later
//! seq-mode updates rewrite older index entries in place.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zdb_engine::*;

fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("data"), dir.join("index"));
    c.datasize = 512 * 1024;
    c
}

/// Keeps every checkpoint as a full copy of the files it names, like qsfs's staging area.
struct Snapshots {
    root: PathBuf,
    refuse: AtomicBool,
    taken: Mutex<Vec<(u32, Vec<u32>)>>,
}

impl Snapshots {
    /// Snapshots kept in `dir/snapshots`; with `refuse`, checkpoints fail until allowed.
    fn under(dir: &Path, refuse: bool) -> Arc<Snapshots> {
        Arc::new(Snapshots {
            root: dir.join("snapshots"),
            refuse: AtomicBool::new(refuse),
            taken: Mutex::new(Vec::new()),
        })
    }
}

impl EventSink for Snapshots {
    fn emit(&self, _event: &Event) -> Result<(), SinkError> {
        Ok(())
    }

    fn checkpoint(&self, cp: &Checkpoint<'_>) -> Result<bool, SinkError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(SinkError::new("staging area full"));
        }
        // A partial checkpoint keeps the open segment's first `open_len` bytes.
        let name = match cp.open_len {
            None => cp.segment.to_string(),
            Some(len) => format!("{}+{len}", cp.segment),
        };
        let dir = self.root.join(name);
        fs::create_dir_all(&dir)
            .map_err(|e| SinkError::with_source("cannot make the snapshot folder", e))?;
        let copy = |from: PathBuf, name: String| {
            fs::copy(&from, dir.join(name))
                .map(|_| ())
                .map_err(|e| SinkError::with_source(format!("cannot copy {}", from.display()), e))
        };
        let data = format!("d{}", cp.segment);
        copy(cp.data_dir.join(&data), data.clone())?;
        if let Some(len) = cp.open_len {
            fs::OpenOptions::new()
                .write(true)
                .open(dir.join(&data))
                .and_then(|f| f.set_len(len))
                .map_err(|e| SinkError::with_source("cannot cut the open segment's copy", e))?;
        }
        copy(cp.index_dir.join("zdb-namespace"), "zdb-namespace".into())?;
        for i in cp.dirty {
            copy(cp.index_dir.join(format!("i{i}")), format!("i{i}"))?;
        }
        self.taken
            .lock()
            .unwrap()
            .push((cp.segment, cp.dirty.to_vec()));
        Ok(true)
    }
}

/// Assemble what a restore would: every data segment up to `upto` from its checkpoint, and
/// each index file from the latest checkpoint that carried it; then the partial checkpoint
/// `partial` (a snapshot folder's name) on top.
fn assemble(snapshots: &Path, upto: Option<u32>, partial: Option<&str>, into: &Path) {
    let (data, index) = (into.join("data/ns"), into.join("index/ns"));
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&index).unwrap();
    let closed = upto.map_or(0..0, |n| 0..n + 1).map(|n| n.to_string());
    for name in closed.chain(partial.map(String::from)) {
        let dir = snapshots.join(name);
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let to = if name.starts_with('d') { &data } else { &index };
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn value(key: u32, version: u32) -> Vec<u8> {
    format!("key {key} version {version} ")
        .repeat(400)
        .into_bytes()
}

/// An engine under `dir/live` with a seq-mode namespace `ns`, checkpoints kept by the sink.
fn seq_namespace(dir: &Path) -> (Arc<Snapshots>, Engine, Arc<Namespace>) {
    let sink = Snapshots::under(dir, false);
    let e = Engine::open(config(&dir.join("live")), sink.clone()).unwrap();
    let ns = e.create("ns").unwrap();
    ns.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
    (sink, e, ns)
}

#[test]
fn a_checkpoint_restores_exactly_the_state_at_its_jump() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, e, ns) = seq_namespace(dir.path());

    let mut model: BTreeMap<u32, u32> = BTreeMap::new();
    let mut at_checkpoint: Option<(u32, BTreeMap<u32, u32>, u32)> = None;
    for round in 0..6u32 {
        for _ in 0..40 {
            // Updates spend ids too, so the id is the one the engine replies.
            let id = ns.info().next_id;
            let key = ns.set(b"", &value(id, 0), None).unwrap();
            assert_eq!(key, SetOutcome::Written(seq_key(id).to_vec()));
            model.insert(id, 0);
        }
        // Rewrite old keys: their index entries in closed segments change in place.
        let ids: Vec<u32> = model.keys().copied().step_by(7).collect();
        for id in ids {
            let v = model[&id] + 1;
            ns.set(&seq_key(id), &value(id, v), None).unwrap();
            model.insert(id, v);
        }
        if round == 3 {
            ns.jump().unwrap();
            let closed = sink.taken.lock().unwrap().last().unwrap().0;
            at_checkpoint = Some((closed, model.clone(), ns.info().next_id));
        }
    }
    let (closed, expected, next_id) = at_checkpoint.unwrap();
    assert!(closed > 0, "datasize must have caused jumps before");
    assert!(
        sink.taken.lock().unwrap().iter().any(|(_, d)| d.len() > 1),
        "in-place updates must have dirtied older index segments"
    );
    drop(ns);
    drop(e);

    let restored = dir.path().join("restored");
    assemble(&sink.root, Some(closed), None, &restored);
    let e = Engine::open(config(&restored), Arc::new(NoEvents)).unwrap();
    let ns = e.namespace("ns").unwrap();
    for (&id, &version) in &expected {
        let got = ns.get(&seq_key(id)).unwrap();
        assert_eq!(got, Some(value(id, version)), "key {id}");
    }
    assert_eq!(
        ns.info().next_id,
        next_id,
        "nothing written after the checkpoint"
    );
    assert!(ns.get(&seq_key(next_id)).unwrap().is_none());
}

#[test]
fn a_refused_checkpoint_fails_the_jump_and_keeps_the_segment_open() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Snapshots::under(dir.path(), true);
    let e = Engine::open(config(dir.path()), sink.clone()).unwrap();
    let ns = e.create("ns").unwrap();
    ns.set(b"a", b"1", None).unwrap();
    let err = ns.jump().unwrap_err();
    match &err {
        Error::CheckpointFailed {
            namespace,
            segment,
            source,
        } => {
            assert_eq!((namespace.as_str(), *segment), ("ns", 0));
            assert_eq!(source.message(), "staging area full");
        }
        other => panic!("expected a failed checkpoint, got {other}"),
    }
    assert_eq!(err.to_string(), "Checkpoint failed: staging area full");
    assert_eq!(ns.info().current_segment, 0, "still in the first segment");
    assert_eq!(ns.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    sink.refuse.store(false, Ordering::SeqCst);
    ns.jump().unwrap();
    assert_eq!(sink.taken.lock().unwrap().as_slice(), &[(0, vec![0])]);
}

/// Compaction that turns a seq-mode tombstone into a hole rewrites an older index segment:
/// the next checkpoint must carry that segment, or its stored copy would keep the old entry.
#[test]
fn index_entries_compaction_rewrites_go_with_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Snapshots::under(dir.path(), false);
    let e = Engine::open(config(dir.path()), sink.clone()).unwrap();
    let ns = e.create("ns").unwrap();
    ns.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
    let SetOutcome::Written(first) = ns.set(b"", &value(0, 0), None).unwrap() else {
        panic!()
    };
    ns.delete(&first).unwrap();
    // The id's entry lives in index segment 0; the tombstone's record ends in a closed segment.
    ns.jump().unwrap();
    ns.set(b"", &value(1, 0), None).unwrap();
    ns.jump().unwrap();
    sink.taken.lock().unwrap().clear();
    ns.compact(0.0).unwrap();
    ns.set(b"", &value(2, 0), None).unwrap();
    ns.jump().unwrap();
    let taken = sink.taken.lock().unwrap().clone();
    assert!(
        taken.iter().any(|(_, dirty)| dirty.contains(&0)),
        "index segment 0 was rewritten but no checkpoint carried it: {taken:?}"
    );
}

/// A partial checkpoint of the open segment restores exactly the state at that moment,
/// although the segment stays open and takes appends (and in-place index rewrites) after it.
#[test]
fn a_partial_checkpoint_restores_the_open_segment_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, e, ns) = seq_namespace(dir.path());
    let hour = std::time::Duration::from_secs(3600);
    assert!(
        !ns.snapshot_if(std::time::Duration::ZERO, 0).unwrap(),
        "nothing appended: no checkpoint"
    );
    let mut model: BTreeMap<u32, u32> = BTreeMap::new();
    for _ in 0..10 {
        let id = ns.info().next_id;
        ns.set(b"", &value(id, 0), None).unwrap();
        model.insert(id, 0);
    }
    let before = ns.info();
    assert!(
        !ns.snapshot_if(hour, 1 << 30).unwrap(),
        "neither old nor big enough"
    );
    assert!(ns.snapshot_if(hour, 1).unwrap(), "big enough");
    let (segment, dirty) = sink.taken.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        (segment, dirty),
        (before.current_segment, vec![before.current_segment])
    );
    assert!(
        !ns.snapshot_if(std::time::Duration::ZERO, 0).unwrap(),
        "nothing new since"
    );
    let expected = (model.clone(), ns.info().next_id);
    // After the snapshot: new keys, and an update rewriting an entry of the open segment.
    for _ in 0..5 {
        ns.set(b"", &value(99, 0), None).unwrap();
    }
    ns.set(&seq_key(0), &value(0, 7), None).unwrap();
    assert_eq!(
        ns.info().current_segment,
        before.current_segment,
        "still open"
    );
    drop(ns);
    drop(e);

    let restored = dir.path().join("restored");
    let partial = format!("{}+{}", before.current_segment, before.current_offset);
    let closed = before.current_segment.checked_sub(1);
    assemble(&sink.root, closed, Some(&partial), &restored);
    let e = Engine::open(config(&restored), Arc::new(NoEvents)).unwrap();
    let ns = e.namespace("ns").unwrap();
    for (&id, &version) in &expected.0 {
        assert_eq!(
            ns.get(&seq_key(id)).unwrap(),
            Some(value(id, version)),
            "key {id}"
        );
    }
    assert_eq!(ns.info().next_id, expected.1, "nothing after the snapshot");
    assert_eq!(ns.info().current_offset, before.current_offset);
}
