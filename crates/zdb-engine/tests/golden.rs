//! Frozen on-disk fixtures: namespaces written once by an earlier build of this engine
//! (`tests/golden/v1`, see its README) are opened by today's engine and every key, value,
//! history link, tombstone, scan position, sequential id and setting is checked against the
//! write log below. A change to the format that is made to both the encoder and the decoder
//! passes the round-trip tests but fails here.
//!
//! The write log ([`USER_OPS`], [`SEQ_OPS`]) is what the generator replayed; the expected
//! positions (data offsets, index offsets, history links) are computed from it with the sizes
//! of `docs/format/zdb.md`, not read back from the engine.
//!
//! Regenerating is NOT a way to make this test pass: see `tests/golden/v1/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zdb_engine::*;

/// The fixture folder of this format version.
const VERSION_DIR: &str = "tests/golden/v1";
/// Engine settings the fixture was written with (the smallest datasize the engine accepts;
/// segments are closed with explicit jumps so the files stay tiny).
const DATASIZE: u64 = 512 * 1024;
const USER_NS: &str = "users";
const SEQ_NS: &str = "seq";
const T0: u32 = 1_700_000_000;

const FILE_HEADER: u32 = 32;
const RECORD_FIXED: u32 = 26;
const ENTRY_FIXED: u32 = 27;
const NO_SEG: u32 = u32::MAX;

/// One step of a write log.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// User mode: SET key value at timestamp.
    Set(&'static [u8], &'static [u8], u32),
    /// User mode: DEL key at timestamp.
    Del(&'static [u8], u32),
    /// Sequential mode: SET with an empty key (a new id).
    Append(&'static [u8], u32),
    /// Sequential mode: SET of an existing id.
    Update(u32, &'static [u8], u32),
    /// Sequential mode: DEL of an id.
    DelId(u32, u32),
    /// Close the open segment and open the next one.
    Jump,
}

const BIN: &[u8] = &[0, 1, 2, 3, 0xff, 0xfe, 0x80, 0x7f, b'\n', 0, 0, 0x42];
const LONG: &[u8] = &[b'e'; 2000];

const USER_OPS: &[Op] = &[
    Op::Set(b"alpha", b"first alpha", T0 + 1),
    Op::Set(b"beta", b"beta value", T0 + 2),
    Op::Set(b"gamma", BIN, T0 + 3),
    Op::Set(b"alpha", b"second alpha", T0 + 4),
    Op::Jump,
    Op::Set(b"delta", b"delta in segment 1", T0 + 5),
    Op::Del(b"beta", T0 + 6),
    Op::Set(b"alpha", b"third alpha, segment 1", T0 + 7),
    Op::Set(b"epsilon", LONG, T0 + 8),
    Op::Set(b"eta", b"eta before", T0 + 9),
    Op::Del(b"eta", T0 + 10),
    Op::Set(b"eta", b"eta again", T0 + 11),
    Op::Jump,
    Op::Set(b"theta", b"theta in the open segment", T0 + 12),
    Op::Set(b"\x00bin\xffkey", b"binary key", T0 + 13),
];

const SEQ_OPS: &[Op] = &[
    Op::Append(b"seq zero", T0 + 100),
    Op::Append(b"seq one", T0 + 101),
    Op::Append(b"seq two", T0 + 102),
    Op::Jump,
    Op::Append(b"seq three", T0 + 103),
    Op::Append(b"seq four", T0 + 104),
    Op::Update(1, b"seq one, updated in segment 1", T0 + 105),
    Op::DelId(3, T0 + 106),
    Op::Jump,
    Op::Append(b"seq five", T0 + 107),
];

/// Settings given to the namespaces after they were created.
fn user_settings() -> Settings {
    Settings {
        password: Some("golden-pw".into()),
        maxsize: 1 << 20,
        public: false,
        worm: false,
        locked: false,
        frozen: false,
        mode: Mode::User,
    }
}

fn seq_settings() -> Settings {
    Settings {
        password: None,
        maxsize: 0,
        public: true,
        worm: false,
        locked: false,
        frozen: false,
        mode: Mode::Seq,
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(VERSION_DIR)
}

fn config(root: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(root.join("data"), root.join("index"));
    c.datasize = DATASIZE;
    c
}

// ---------------------------------------------------------------------------------------
// The model: where every version must be, from the write log and the documented sizes.

/// One stored version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    payload: Vec<u8>,
    timestamp: u32,
    deleted: bool,
    /// Data record position.
    seg: u32,
    data_off: u32,
    /// The version before (data record position).
    prev: Option<(u32, u32)>,
}

#[derive(Debug, Default)]
struct Model {
    /// Stored key → versions, oldest first.
    versions: BTreeMap<Vec<u8>, Vec<Version>>,
    /// Stored key → (segment, offset) of its current index entry.
    slot: BTreeMap<Vec<u8>, (u32, u32)>,
    segments: Vec<u32>,
    data_len: u32,
    index_len: u32,
    /// Sequential mode: (first id, segment) of every segment, and the next id.
    starts: Vec<(u32, u32)>,
    next_id: u32,
}

impl Model {
    fn build(ops: &[Op]) -> Model {
        let mut m = Model {
            segments: vec![0],
            data_len: FILE_HEADER,
            index_len: FILE_HEADER,
            starts: vec![(0, 0)],
            ..Model::default()
        };
        for op in ops {
            match *op {
                Op::Set(k, v, ts) => m.write_user(k, v, ts, false),
                Op::Del(k, ts) => m.write_user(k, b"", ts, true),
                Op::Append(v, ts) => {
                    let id = m.next_id;
                    m.next_id += 1;
                    let seg = m.cur();
                    m.slot.insert(seq_key(id).to_vec(), (seg, m.index_len));
                    m.index_len += ENTRY_FIXED;
                    m.record(seq_key(id).to_vec(), 4, v, ts, false);
                }
                Op::Update(id, v, ts) => m.record(seq_key(id).to_vec(), 4, v, ts, false),
                Op::DelId(id, ts) => m.record(seq_key(id).to_vec(), 4, b"", ts, true),
                Op::Jump => {
                    let next = m.cur() + 1;
                    m.segments.push(next);
                    m.starts.push((m.next_id, next));
                    m.data_len = FILE_HEADER;
                    m.index_len = FILE_HEADER;
                }
            }
        }
        m
    }

    fn cur(&self) -> u32 {
        *self.segments.last().unwrap()
    }

    fn write_user(&mut self, k: &[u8], v: &[u8], ts: u32, deleted: bool) {
        let seg = self.cur();
        self.slot.insert(k.to_vec(), (seg, self.index_len));
        self.index_len += ENTRY_FIXED + k.len() as u32;
        self.record(k.to_vec(), k.len() as u32, v, ts, deleted);
    }

    /// Append a data record (`key_len` bytes of key on disk).
    fn record(&mut self, key: Vec<u8>, key_len: u32, v: &[u8], ts: u32, deleted: bool) {
        let seg = self.cur();
        let list = self.versions.entry(key).or_default();
        let prev = list.last().map(|p| (p.seg, p.data_off));
        list.push(Version {
            payload: v.to_vec(),
            timestamp: ts,
            deleted,
            seg,
            data_off: self.data_len,
            prev,
        });
        self.data_len += RECORD_FIXED + key_len + v.len() as u32;
    }

    fn live(&self) -> impl Iterator<Item = (&Vec<u8>, &Version)> {
        self.versions
            .iter()
            .map(|(k, v)| (k, v.last().unwrap()))
            .filter(|(_, v)| !v.deleted)
    }

    /// Live keys with their index slot, in scan (index) order.
    fn scan_order(&self) -> Vec<(Vec<u8>, &Version, Cursor)> {
        let mut v: Vec<_> = self
            .live()
            .map(|(k, ver)| {
                let (seg, off) = self.slot[k];
                (k.clone(), ver, Cursor { seg, off })
            })
            .collect();
        v.sort_by_key(|(_, _, c)| *c);
        v
    }
}

// ---------------------------------------------------------------------------------------
// Checks.

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A private copy of the fixture (opening writes to it).
fn fixture_copy() -> tempfile::TempDir {
    let src = golden_dir();
    assert!(
        src.join("index").is_dir() && src.join("data").is_dir(),
        "fixture missing: {}",
        src.display()
    );
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src.join("data"), &dir.path().join("data"));
    copy_dir(&src.join("index"), &dir.path().join("index"));
    dir
}

fn scan_all(ns: &Namespace, dir: Direction, page: usize) -> Vec<ScanItem> {
    let mut out = Vec::new();
    let mut from = None;
    loop {
        match ns.scan(from, dir, page) {
            Ok(p) => {
                from = Some(p.next);
                out.extend(p.items);
            }
            Err(Error::NoMoreData) => return out,
            Err(e) => panic!("scan: {e}"),
        }
    }
}

fn check_namespace(ns: &Namespace, ops: &[Op], settings: Settings, mode: Mode) {
    let m = Model::build(ops);
    let name = ns.name().to_string();
    assert_eq!(ns.settings(), settings, "{name}: settings");
    assert_eq!(ns.mode(), mode, "{name}: mode");
    let info = ns.info();
    assert_eq!(info.segments, m.segments, "{name}: segments");
    assert_eq!(info.current_segment, m.cur(), "{name}: current segment");
    assert_eq!(
        info.current_offset,
        u64::from(m.data_len),
        "{name}: end of the open data segment"
    );
    assert_eq!(info.entries, m.live().count() as u64, "{name}: entries");
    assert_eq!(
        info.payload_bytes,
        m.live().map(|(_, v)| v.payload.len() as u64).sum::<u64>(),
        "{name}: payload bytes"
    );
    if mode == Mode::Seq {
        assert_eq!(info.next_id, m.next_id, "{name}: next id");
        assert!(
            ns.get(&seq_key(m.next_id)).unwrap().is_none(),
            "{name}: no id past the last"
        );
    }

    // Every key ever written: current value, metadata, and the whole history chain.
    for (key, versions) in &m.versions {
        let last = versions.last().unwrap();
        let what = format!("{name}: key {:?}", String::from_utf8_lossy(key));
        let want = (!last.deleted).then(|| last.payload.clone());
        assert_eq!(ns.get(key).unwrap(), want, "{what}: value");
        let meta = ns.meta(key).unwrap();
        if last.deleted {
            assert_eq!(meta, None, "{what}: meta of a deleted key");
            assert_eq!(ns.key_cursor(key).unwrap(), None, "{what}: cursor");
        } else {
            let meta = meta.expect("meta of a live key");
            assert_eq!(
                (meta.payload_len, meta.timestamp, meta.seg, meta.data_off),
                (
                    last.payload.len() as u32,
                    last.timestamp,
                    last.seg,
                    last.data_off
                ),
                "{what}: meta"
            );
            let (seg, off) = m.slot[key];
            assert_eq!(
                ns.key_cursor(key).unwrap(),
                Some(Cursor { seg, off }),
                "{what}: cursor"
            );
        }
        let mut at = None;
        for (i, v) in versions.iter().enumerate().rev() {
            let h = ns
                .history(key, at)
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: history {i} missing"));
            assert_eq!(
                (h.timestamp, &h.payload, h.deleted),
                (v.timestamp, &v.payload, v.deleted),
                "{what}: history version {i}"
            );
            assert_eq!(
                h.prev.map(|c| (c.seg, c.off)),
                v.prev,
                "{what}: history link of version {i}"
            );
            // The raw record header agrees with the documented fields.
            let (rh, rkey, payload) = ns.raw_record(v.seg, v.data_off).unwrap();
            assert_eq!(payload, v.payload, "{what}: raw payload {i}");
            let stored_key = match mode {
                Mode::User => key.clone(),
                Mode::Seq => key[..4].to_vec(),
            };
            assert_eq!(rkey, stored_key, "{what}: raw key {i}");
            assert_eq!(rh.timestamp, v.timestamp, "{what}: raw timestamp {i}");
            assert_eq!(rh.payload_len, v.payload.len() as u32);
            assert_eq!(rh.payload_crc, crc32fast::hash(&v.payload));
            assert_eq!(rh.flags & 1 != 0, v.deleted, "{what}: raw flags {i}");
            assert_eq!(
                (rh.prev_seg, rh.prev_off),
                v.prev.unwrap_or((NO_SEG, rh.prev_off)),
                "{what}: raw prev {i}"
            );
            at = h.prev;
        }
        assert_eq!(at, None, "{what}: history longer than written");
    }

    // SCAN / RSCAN, whole and by pages of 2.
    let want: Vec<ScanItem> = m
        .scan_order()
        .into_iter()
        .map(|(key, v, cursor)| ScanItem {
            key,
            payload_len: v.payload.len() as u32,
            timestamp: v.timestamp,
            cursor,
        })
        .collect();
    assert_eq!(scan_all(ns, Direction::Forward, 100), want, "{name}: scan");
    assert_eq!(
        scan_all(ns, Direction::Forward, 2),
        want,
        "{name}: paged scan"
    );
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(scan_all(ns, Direction::Backward, 100), rev, "{name}: rscan");
    assert_eq!(
        scan_all(ns, Direction::Backward, 3),
        rev,
        "{name}: paged rscan"
    );
}

/// The documented segment headers of every file of a namespace, read raw.
fn check_segment_headers(root: &Path, ns: &str, ops: &[Op], mode: Mode) {
    let m = Model::build(ops);
    for &seg in &m.segments {
        for (kind, magic) in [("data", b"ZDBD"), ("index", b"ZDBI")] {
            let letter = &kind[..1];
            let path = root.join(kind).join(ns).join(format!("{letter}{seg}"));
            let b = std::fs::read(&path).unwrap();
            assert!(b.len() >= 32, "{}", path.display());
            assert_eq!(&b[0..4], magic, "{}: magic", path.display());
            assert_eq!(&b[4..6], &1u16.to_le_bytes(), "{}: version", path.display());
            assert_eq!(
                b[6],
                u8::from(mode == Mode::Seq),
                "{}: mode",
                path.display()
            );
            assert_eq!(&b[8..12], &seg.to_le_bytes(), "{}: segment", path.display());
            if mode == Mode::Seq {
                let first = m.starts.iter().find(|s| s.1 == seg).unwrap().0;
                assert_eq!(
                    &b[12..16],
                    &first.to_le_bytes(),
                    "{}: first id",
                    path.display()
                );
            }
            assert_eq!(
                &b[28..32],
                &crc32fast::hash(&b[..28]).to_le_bytes(),
                "{}: header crc",
                path.display()
            );
        }
    }
    let last = m.cur();
    let d = std::fs::metadata(root.join("data").join(ns).join(format!("d{last}"))).unwrap();
    assert_eq!(
        d.len(),
        u64::from(m.data_len),
        "{ns}: open data segment length"
    );
}

fn check_all(root: &Path) {
    let engine = Engine::open(config(root), Arc::new(NoEvents)).unwrap();
    check_segment_headers(root, USER_NS, USER_OPS, Mode::User);
    check_segment_headers(root, SEQ_NS, SEQ_OPS, Mode::Seq);
    assert_eq!(engine.list(), [DEFAULT_NAMESPACE, SEQ_NS, USER_NS]);
    assert!(engine.namespace(DEFAULT_NAMESPACE).unwrap().is_empty());
    let users = engine.namespace(USER_NS).unwrap();
    check_namespace(&users, USER_OPS, user_settings(), Mode::User);
    let seq = engine.namespace(SEQ_NS).unwrap();
    check_namespace(&seq, SEQ_OPS, seq_settings(), Mode::Seq);
}

/// The index files of a namespace (the descriptor stays: it is how namespaces are found).
fn index_files(root: &Path, ns: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("index").join(ns))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with('i') && n[1..].parse::<u32>().is_ok()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn golden_v1_opens_with_every_key_version_and_setting() {
    let dir = fixture_copy();
    // The frozen headers as they are on disk, before today's engine may rewrite anything
    // (a header it finds inconsistent makes it rebuild the index, which would hide it).
    check_segment_headers(dir.path(), USER_NS, USER_OPS, Mode::User);
    check_segment_headers(dir.path(), SEQ_NS, SEQ_OPS, Mode::Seq);
    check_all(dir.path());
    // Once more after a reopen by today's engine (which may have rewritten nothing or
    // everything; either way the content stays).
    check_all(dir.path());
}

#[test]
fn golden_v1_index_rebuilt_from_data_alone() {
    let dir = fixture_copy();
    for (ns, ops) in [(USER_NS, USER_OPS), (SEQ_NS, SEQ_OPS)] {
        let files = index_files(dir.path(), ns);
        assert_eq!(files.len(), Model::build(ops).segments.len(), "{ns}");
        for f in files {
            std::fs::remove_file(f).unwrap();
        }
    }
    check_all(dir.path());
    // The rebuilt index entries are the frozen ones (the segment headers' creation time
    // aside, which a rebuild may take from the clock).
    for ns in [USER_NS, SEQ_NS] {
        for f in index_files(dir.path(), ns) {
            let rel = f.strip_prefix(dir.path()).unwrap();
            let frozen = std::fs::read(golden_dir().join(rel)).unwrap();
            let rebuilt = std::fs::read(&f).unwrap();
            assert_eq!(frozen.len(), rebuilt.len(), "{}: length", rel.display());
            assert_eq!(frozen[32..], rebuilt[32..], "{}: entries", rel.display());
        }
    }
}

/// Writes the fixture. Run once per format version, never to make a test pass:
/// `cargo test -p zdb-engine --test golden -- --ignored regenerate`
/// (refuses to overwrite an existing version folder).
#[test]
#[ignore = "writes the frozen fixture; see tests/golden/v1/README.md"]
fn regenerate() {
    let out = golden_dir();
    assert!(
        !out.join("data").exists() && !out.join("index").exists(),
        "{} already holds a fixture: a format change adds a new version folder, it never \
         rewrites an old one",
        out.display()
    );
    let engine = Engine::open(config(&out), Arc::new(NoEvents)).unwrap();
    let users = engine.create(USER_NS).unwrap();
    let s = user_settings();
    users
        .change_setting(SettingChange::Password(s.password.clone()))
        .unwrap();
    users
        .change_setting(SettingChange::MaxSize(s.maxsize))
        .unwrap();
    users
        .change_setting(SettingChange::Public(s.public))
        .unwrap();
    let seq = engine.create(SEQ_NS).unwrap();
    seq.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
    for (ns, ops) in [(&users, USER_OPS), (&seq, SEQ_OPS)] {
        for op in ops {
            match *op {
                Op::Set(k, v, ts) => {
                    ns.set(k, v, Some(ts)).unwrap();
                }
                Op::Del(k, ts) => ns.delete_at(k, Some(ts)).unwrap(),
                Op::Append(v, ts) => {
                    ns.set(b"", v, Some(ts)).unwrap();
                }
                Op::Update(id, v, ts) => {
                    ns.set(&seq_key(id), v, Some(ts)).unwrap();
                }
                Op::DelId(id, ts) => ns.delete_at(&seq_key(id), Some(ts)).unwrap(),
                Op::Jump => ns.jump().unwrap(),
            }
        }
    }
    engine.sync_all().unwrap();
    drop((users, seq, engine));
    check_all(fixture_copy().path());
}
