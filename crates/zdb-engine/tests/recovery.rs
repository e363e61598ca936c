//! Crash and corruption recovery: torn tails, lost index entries, a lost index, flipped bytes
//! and missing data segments.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zdb_engine::*;

fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("data"), dir.join("index"));
    c.datasize = 512 * 1024;
    c
}

fn open(dir: &Path) -> Engine {
    Engine::open(config(dir), Arc::new(NoEvents)).unwrap()
}

fn fill(dir: &Path, n: u32, mode: Mode) -> Vec<Vec<u8>> {
    let e = open(dir);
    let ns = e.create("ns").unwrap();
    ns.change_setting(SettingChange::Mode(mode)).unwrap();
    let mut keys = Vec::new();
    for i in 0..n {
        let value = format!("value number {i}").repeat(50);
        let key = match mode {
            Mode::User => format!("key{i}").into_bytes(),
            Mode::Seq => b"".to_vec(),
        };
        match ns.set(&key, value.as_bytes(), None).unwrap() {
            SetOutcome::Written(k) => keys.push(k),
            SetOutcome::Unchanged => {
                unreachable!("every value differs (a new key or a new seq id)")
            }
        }
    }
    keys
}

fn file(dir: &Path, kind: &str, seg: u32) -> PathBuf {
    dir.join(kind)
        .join("ns")
        .join(format!("{}{seg}", if kind == "data" { "d" } else { "i" }))
}

fn last_seg(dir: &Path) -> u32 {
    let e = open(dir);
    let s = *e.namespace("ns").unwrap().info().segments.last().unwrap();
    s
}

fn check_all(dir: &Path, keys: &[Vec<u8>], expect_present: usize) {
    let e = open(dir);
    let ns = e.namespace("ns").unwrap();
    let mut present = 0;
    for (i, k) in keys.iter().enumerate() {
        if let Some(v) = ns.get(k).unwrap() {
            assert_eq!(v, format!("value number {i}").repeat(50).into_bytes());
            present += 1;
        }
    }
    assert_eq!(present, expect_present);
    assert_eq!(ns.len() as usize, expect_present);
}

fn truncate_by(path: &Path, n: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - n).unwrap();
}

#[test]
fn torn_data_tail_is_cut_and_never_served() {
    for mode in [Mode::User, Mode::Seq] {
        let dir = tempfile::tempdir().unwrap();
        let keys = fill(dir.path(), 200, mode);
        let seg = last_seg(dir.path());
        // Lose the index entry and half of the last record, as a power cut might.
        truncate_by(
            &file(dir.path(), "index", seg),
            if mode == Mode::User { 1 } else { 27 },
        );
        truncate_by(&file(dir.path(), "data", seg), 100);
        check_all(dir.path(), &keys, 199);
        // And the namespace accepts writes again at the cut point.
        let e = open(dir.path());
        let ns = e.namespace("ns").unwrap();
        let k = if mode == Mode::User {
            b"again".to_vec()
        } else {
            vec![]
        };
        ns.set(&k, b"fresh", None).unwrap();
    }
}

#[test]
fn records_written_without_their_index_entry_are_reindexed() {
    for mode in [Mode::User, Mode::Seq] {
        let dir = tempfile::tempdir().unwrap();
        let keys = fill(dir.path(), 50, mode);
        let seg = last_seg(dir.path());
        // Crash between the data write and the index write of the last three records.
        let entry = if mode == Mode::User { 27 + 6 } else { 27 };
        truncate_by(&file(dir.path(), "index", seg), 3 * entry);
        check_all(dir.path(), &keys, 50);
        check_all(dir.path(), &keys, 50); // and the re-indexed entries were persisted
    }
}

/// An update rewrites its id's entry in place and spends the next id on a placeholder at the
/// index tail. When that tail is lost (with a new id's entry after it), the new record is
/// indexed again at its own id, the placeholder comes back, and the update stays: for an old
/// id, and for the newest one (whose rewritten entry is then the last one left).
#[test]
fn lost_index_tail_after_updates_keeps_every_id() {
    for updated in [3usize, 19] {
        let dir = tempfile::tempdir().unwrap();
        let keys = fill(dir.path(), 20, Mode::Seq);
        let added = {
            let e = open(dir.path());
            let ns = e.namespace("ns").unwrap();
            assert_eq!(
                written(ns.set(&keys[updated], b"updated", None)),
                keys[updated]
            );
            written(ns.set(b"", b"after the update", None))
        };
        assert_eq!(added, seq_key(21), "id 20 went to the update's placeholder");
        // Crash before the index tail reached the disk: the placeholder and the new entry.
        truncate_by(&file(dir.path(), "index", last_seg(dir.path())), 2 * 27);
        for _ in 0..2 {
            let e = open(dir.path());
            let ns = e.namespace("ns").unwrap();
            let got = ns.get(&added).unwrap();
            assert_eq!(got.as_deref(), Some(&b"after the update"[..]), "{updated}");
            assert_eq!(ns.get(&keys[updated]).unwrap().unwrap(), b"updated");
            assert_eq!(ns.get(&seq_key(20)).unwrap(), None);
            assert_eq!(ns.len(), 21);
            assert_eq!(ns.info().next_id, 22);
        }
    }
}

fn written(out: Result<SetOutcome>) -> Vec<u8> {
    match out.unwrap() {
        SetOutcome::Written(k) => k,
        SetOutcome::Unchanged => panic!("expected a write"),
    }
}

#[test]
fn lost_or_damaged_index_is_rebuilt_from_data() {
    for mode in [Mode::User, Mode::Seq] {
        let dir = tempfile::tempdir().unwrap();
        let keys = fill(dir.path(), 300, mode);
        {
            let e = open(dir.path());
            let ns = e.namespace("ns").unwrap();
            ns.delete(&keys[1]).unwrap();
            ns.set(
                &keys[2],
                format!("value number {}", 2).repeat(50).as_bytes(),
                None,
            )
            .unwrap();
            ns.set(&keys[4], b"overwritten", None).unwrap();
        }
        // Damage a closed index segment in the middle.
        let i0 = file(dir.path(), "index", 0);
        let mut b = fs::read(&i0).unwrap();
        b[60] ^= 0xff;
        fs::write(&i0, b).unwrap();
        let e = open(dir.path());
        let ns = e.namespace("ns").unwrap();
        assert_eq!(ns.get(&keys[1]).unwrap(), None);
        assert_eq!(ns.get(&keys[4]).unwrap().unwrap(), b"overwritten");
        assert_eq!(
            ns.get(&keys[299]).unwrap().unwrap(),
            "value number 299".repeat(50).into_bytes()
        );
        assert_eq!(ns.len(), 299);
        drop(ns);
        drop(e);
        // Remove every index file.
        for seg in 0..=last_seg(dir.path()) {
            fs::remove_file(file(dir.path(), "index", seg)).unwrap();
        }
        let e = open(dir.path());
        let ns = e.namespace("ns").unwrap();
        assert_eq!(ns.len(), 299);
        assert_eq!(ns.get(&keys[4]).unwrap().unwrap(), b"overwritten");
        assert_eq!(
            ns.get(&keys[100]).unwrap().unwrap(),
            "value number 100".repeat(50).into_bytes()
        );
    }
}

#[test]
fn flipped_payload_byte_is_an_error_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let keys = fill(dir.path(), 10, Mode::User);
    let d0 = file(dir.path(), "data", 0);
    let mut b = fs::read(&d0).unwrap();
    let at = b.len() - 10; // inside the last payload
    b[at] ^= 1;
    fs::write(&d0, b).unwrap();
    let e = open(dir.path());
    let ns = e.namespace("ns").unwrap();
    assert!(matches!(ns.get(&keys[9]), Err(Error::Corrupt { .. })));
    assert_eq!(ns.check(&keys[9]).unwrap(), Some(false));
    assert_eq!(ns.check(&keys[8]).unwrap(), Some(true));
    let io = ns.info().data_io;
    assert_eq!(io.faults, 2, "the GET and the CHECK of the damaged record");
    assert!(io.read_bytes > 0);
    assert_eq!(io.read_errors, 0);
}

#[test]
fn a_flipped_payload_byte_fails_get_append_and_leaves_the_buffer_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        let ns = e.create("ns").unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        ns.set(b"big", &big, None).unwrap();
        ns.set(b"next", b"after it", None).unwrap();
    }
    let d0 = file(dir.path(), "data", 0);
    let mut b = fs::read(&d0).unwrap();
    // Inside the big payload, past its first pieces: found only once most is copied.
    let at = b.len() - 30_000;
    b[at] ^= 1;
    fs::write(&d0, b).unwrap();
    let e = open(dir.path());
    let ns = e.namespace("ns").unwrap();
    let mut out = b"kept".to_vec();
    assert!(matches!(
        ns.get_append(b"big", &mut out),
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(
        out, b"kept",
        "no byte of the damaged payload stays in the buffer"
    );
    assert!(ns.get_append(b"next", &mut out).unwrap());
    assert_eq!(out, b"keptafter it");
    assert_eq!(ns.info().data_io.faults, 1);
}

/// A sink that restores a missing segment from a backup, as zstor would.
struct Restorer {
    backup: PathBuf,
    calls: Mutex<Vec<PathBuf>>,
}

impl EventSink for Restorer {
    fn emit(&self, event: &Event) -> Result<(), SinkError> {
        if let Event::MissingData { path, .. } = event {
            self.calls.lock().unwrap().push(path.clone());
            if self.backup.exists() {
                fs::copy(&self.backup, path)
                    .map_err(|e| SinkError::with_source("cannot restore", e))?;
                return Ok(());
            }
            return Err(SinkError::new("no copy"));
        }
        Ok(())
    }
}

/// A sink that hands over the bytes a read needs from a backup (as zstor's ranged
/// retrieve would), damaged on request, and never restores the segment.
struct RangeReader {
    backup: PathBuf,
    damage: std::sync::atomic::AtomicBool,
    ranges: Mutex<Vec<(u64, usize)>>,
}

impl EventSink for RangeReader {
    fn emit(&self, event: &Event) -> Result<(), SinkError> {
        match event {
            Event::MissingData { .. } => Err(SinkError::new("whole segments are not restored")),
            _ => Ok(()),
        }
    }

    fn read_missing(
        &self,
        _namespace: &str,
        _path: &Path,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, SinkError> {
        use std::os::unix::fs::FileExt;
        self.ranges.lock().unwrap().push((offset, len));
        let mut b = vec![0u8; len];
        fs::File::open(&self.backup)
            .and_then(|f| f.read_exact_at(&mut b, offset))
            .map_err(|e| SinkError::with_source("backup", e))?;
        if self.damage.load(std::sync::atomic::Ordering::SeqCst) {
            b[len - 1] ^= 1;
        }
        Ok(Some(b))
    }
}

#[test]
fn a_read_of_an_offloaded_segment_is_served_from_the_range_the_sink_hands_over() {
    let dir = tempfile::tempdir().unwrap();
    let keys = fill(dir.path(), 1000, Mode::User);
    let d0 = file(dir.path(), "data", 0);
    let backup = dir.path().join("backup-d0");
    fs::rename(&d0, &backup).unwrap();
    let sink = Arc::new(RangeReader {
        backup,
        damage: Default::default(),
        ranges: Mutex::new(Vec::new()),
    });
    let e = Engine::open(config(dir.path()), sink.clone()).unwrap();
    let ns = e.namespace("ns").unwrap();
    for i in [0, 1, 0] {
        assert_eq!(
            ns.get(&keys[i]).unwrap().unwrap(),
            format!("value number {i}").repeat(50).into_bytes()
        );
    }
    let ranges = sink.ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 3, "one range per read: {ranges:?}");
    assert_eq!(ranges[0], ranges[2]);
    assert!(!d0.exists(), "the segment itself was not brought back");
    assert_eq!(ns.check(&keys[1]).unwrap(), Some(true));
    // Bytes that do not match the record's checksum are never served as data.
    sink.damage.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(ns.get(&keys[2]), Err(Error::Corrupt { .. })));
}

#[test]
fn missing_segment_raises_event_and_is_restored_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let keys = fill(dir.path(), 1000, Mode::User);
    assert!(last_seg(dir.path()) > 0);
    let d0 = file(dir.path(), "data", 0);
    let backup = dir.path().join("backup-d0");
    fs::rename(&d0, &backup).unwrap();
    let sink = Arc::new(Restorer {
        backup: backup.clone(),
        calls: Mutex::new(Vec::new()),
    });
    let e = Engine::open(config(dir.path()), sink.clone()).unwrap();
    let ns = e.namespace("ns").unwrap();
    // The index alone answers metadata questions.
    assert!(ns.meta(&keys[0]).unwrap().is_some());
    assert_eq!(
        ns.get(&keys[0]).unwrap().unwrap(),
        "value number 0".repeat(50).into_bytes()
    );
    assert_eq!(
        sink.calls.lock().unwrap().as_slice(),
        std::slice::from_ref(&d0)
    );
    drop(ns);
    drop(e);

    fs::remove_file(&d0).unwrap();
    fs::remove_file(&backup).unwrap();
    let e = Engine::open(config(dir.path()), sink.clone()).unwrap();
    let ns = e.namespace("ns").unwrap();
    assert!(matches!(
        ns.get(&keys[0]),
        Err(Error::MissingSegment { .. })
    ));
    assert!(
        ns.get(&keys[999]).unwrap().is_some(),
        "other segments still serve"
    );
}

#[test]
fn lost_open_data_segment_fails_cleanly_and_keeps_the_index() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10, Mode::User);
    fs::remove_file(file(dir.path(), "data", 0)).unwrap();
    let err = Engine::open(config(dir.path()), Arc::new(NoEvents)).unwrap_err();
    assert!(matches!(err, Error::MissingSegment { .. }), "{err}");
    assert!(
        file(dir.path(), "index", 0).exists(),
        "the index must not be touched"
    );
}

/// A sink whose restore of a missing segment waits until the test lets it go.
struct SlowRestorer {
    backup: PathBuf,
    entered: std::sync::mpsc::Sender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl EventSink for SlowRestorer {
    fn emit(&self, event: &Event) -> Result<(), SinkError> {
        if let Event::MissingData { path, .. } = event {
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap().recv();
            fs::copy(&self.backup, path)
                .map_err(|e| SinkError::with_source("cannot restore", e))?;
        }
        Ok(())
    }
}

/// Every read that can meet an offloaded segment fetches it with the namespace lock
/// released: while the fetch waits, writes and reads of resident data go on.
#[test]
fn a_slow_fetch_delays_its_read_only_not_writers() {
    type Read = fn(&Namespace, &[u8]) -> Vec<u8>;
    let reads: [(&str, Read); 4] = [
        ("GET", |ns, k| ns.get(k).unwrap().unwrap()),
        ("CHECK", |ns, k| {
            assert_eq!(ns.check(k).unwrap(), Some(true));
            ns.get(k).unwrap().unwrap()
        }),
        ("HISTORY", |ns, k| {
            ns.history(k, None).unwrap().unwrap().payload
        }),
        ("DATA RAW", |ns, k| {
            let m = ns.meta(k).unwrap().unwrap();
            ns.raw_record(m.seg, m.data_off).unwrap().2
        }),
    ];
    for (what, read) in reads {
        let dir = tempfile::tempdir().unwrap();
        let keys = fill(dir.path(), 1000, Mode::User);
        let d0 = file(dir.path(), "data", 0);
        let backup = dir.path().join("backup-d0");
        fs::rename(&d0, &backup).unwrap();
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let sink = Arc::new(SlowRestorer {
            backup,
            entered: entered_tx,
            release: Mutex::new(release_rx),
        });
        let e = Engine::open(config(dir.path()), sink).unwrap();
        let ns = e.namespace("ns").unwrap();
        let reader = {
            let ns = ns.clone();
            let key = keys[0].clone();
            std::thread::spawn(move || read(&ns, &key))
        };
        entered.recv().unwrap();
        ns.set(b"written during the fetch", b"yes", None).unwrap();
        assert!(ns.get(&keys[999]).unwrap().is_some(), "{what}");
        release.send(()).unwrap();
        assert_eq!(
            reader.join().unwrap(),
            "value number 0".repeat(50).into_bytes(),
            "{what}"
        );
    }
}
