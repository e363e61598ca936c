//! Frozen on-disk fixture: the `zdbfs-meta`/`zdbfs-data`/`zdbfs-temp` namespaces of a tiny
//! tree, written once by an earlier build through the in-process engine store
//! (`tests/golden/v1`, see its README), opened by today's code and checked through the
//! filesystem API: names, kinds, inode numbers, modes, owners, sizes, times, contents, link
//! target, xattrs, link counts, plus a few raw records against `docs/format/zdbfs.md`.
//! A format change made to both the encoder and the decoder passes the round-trip tests but
//! fails here.
//!
//! Regenerating is NOT a way to make this test pass: see `tests/golden/v1/README.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use zdbfs::fs::{Caller, NewNode, SetAttr, ROOT};
use zdbfs::inode::{Kind, Ts};
use zdbfs::{record, EngineStore, Fs, FsConfig, Ns, Store};

const VERSION_DIR: &str = "tests/golden/v1";
const BLOCK: usize = 128 * 1024;
const OWNER: Caller = Caller {
    uid: 1000,
    gid: 1001,
};

/// The deterministic content of a file of `len` bytes.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

const SMALL_LEN: usize = 3 * 1024 + 17;
const BIG_LEN: usize = BLOCK + 5000;
const SPARSE_AT: u64 = 300_000;
const SPARSE_TAIL: &[u8] = b"the end";
const LINK_TARGET: &[u8] = b"dir/file.txt";
const XATTRS: &[(&[u8], &[u8])] = &[
    (b"user.golden", b"golden xattr value"),
    (b"user.binary", &[0, 1, 2, 0xff]),
];

/// One node of the tree: path from the root, kind, permission bits, size.
struct Node {
    path: &'static str,
    kind: Kind,
    perm: u32,
    size: u64,
    /// Inode number in the fixture (the meta record id).
    ino: u64,
    nlink: u32,
}

/// The tree as written, with the inode numbers the generator got (frozen in the fixture).
const TREE: &[Node] = &[
    Node {
        path: "",
        kind: Kind::Dir,
        perm: 0o755,
        size: 0,
        ino: ROOT,
        nlink: 3,
    },
    Node {
        path: "dir",
        kind: Kind::Dir,
        perm: 0o750,
        size: 0,
        ino: DIR,
        nlink: 2,
    },
    Node {
        path: "dir/file.txt",
        kind: Kind::File,
        perm: 0o644,
        size: SMALL_LEN as u64,
        ino: FILE,
        nlink: 2,
    },
    Node {
        path: "big.bin",
        kind: Kind::File,
        perm: 0o600,
        size: BIG_LEN as u64,
        ino: BIG,
        nlink: 1,
    },
    Node {
        path: "link",
        kind: Kind::Symlink,
        perm: 0o777,
        size: LINK_TARGET.len() as u64,
        ino: LINK,
        nlink: 1,
    },
    Node {
        path: "hardlink",
        kind: Kind::File,
        perm: 0o644,
        size: SMALL_LEN as u64,
        ino: FILE,
        nlink: 2,
    },
    Node {
        path: "sparse",
        kind: Kind::File,
        perm: 0o640,
        size: SPARSE_AT + SPARSE_TAIL.len() as u64,
        ino: SPARSE,
        nlink: 1,
    },
    Node {
        path: "empty",
        kind: Kind::File,
        perm: 0o444,
        size: 0,
        ino: EMPTY,
        nlink: 1,
    },
    Node {
        path: "fifo",
        kind: Kind::Fifo,
        perm: 0o620,
        size: 0,
        ino: FIFO,
        nlink: 1,
    },
];

/// Inode numbers in the fixture (meta record ids, in creation order; the root is 1).
const DIR: u64 = 2;
const FILE: u64 = 3;
const BIG: u64 = 4;
const LINK: u64 = 5;
const SPARSE: u64 = 6;
const EMPTY: u64 = 7;
const FIFO: u64 = 8;

/// Times set on inode `ino` at the end of the generation.
fn times(ino: u64) -> (Ts, Ts, Ts) {
    let t = |s: i64, n: u32| Ts {
        secs: 1_700_000_000 + s + ino as i64 * 10,
        nanos: 1000 * n + ino as u32,
    };
    (t(1, 111), t(2, 222), t(3, 333))
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(VERSION_DIR)
}

fn content(path: &str) -> Vec<u8> {
    match path {
        "dir/file.txt" | "hardlink" => pattern(1, SMALL_LEN),
        "big.bin" => pattern(2, BIG_LEN),
        "sparse" => {
            let mut v = vec![0u8; SPARSE_AT as usize];
            v.extend_from_slice(SPARSE_TAIL);
            v
        }
        _ => Vec::new(),
    }
}

fn owner(path: &str) -> Caller {
    if path.is_empty() {
        Caller { uid: 0, gid: 0 }
    } else {
        OWNER
    }
}

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

fn fixture_copy() -> tempfile::TempDir {
    let src = golden_dir();
    assert!(
        src.join("data").is_dir() && src.join("index").is_dir(),
        "fixture missing: {}",
        src.display()
    );
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src, dir.path());
    let _ = std::fs::remove_file(dir.path().join("README.md"));
    dir
}

fn resolve(fs: &Fs, path: &str) -> u64 {
    let mut ino = ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs.lookup(ino, part.as_bytes()).unwrap().ino;
    }
    ino
}

fn list(fs: &Fs, dir: u64) -> Vec<(String, u64, Kind)> {
    let fh = fs.opendir(dir).unwrap();
    let mut names = Vec::new();
    fs.readdir(fh, 0, |_, it| {
        names.push((
            String::from_utf8_lossy(&it.name).into_owned(),
            it.ino,
            it.kind,
        ));
        false
    })
    .unwrap();
    fs.releasedir(fh);
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names
}

/// Raw records against the documented layout, through the store (before the filesystem
/// marks itself in use).
fn check_raw(root: &Path) {
    let store = EngineStore::open(root).unwrap();
    let sb = store.get(Ns::Meta, 0).unwrap().expect("superblock");
    let mut want = vec![b'S', 1];
    want.extend_from_slice(b"ZDBFS");
    want.extend_from_slice(&(BLOCK as u32).to_le_bytes());
    want.push(1); // clean unmount
    assert_eq!(sb, want, "superblock bytes");
    assert!(store.ids(Ns::Temp).unwrap().is_empty(), "journal left over");
    let mut data_ids = Vec::new();
    for n in TREE {
        let rec = store.get(Ns::Meta, n.ino).unwrap().expect("inode record");
        assert_eq!(rec[..2], [b'I', 1], "{}: inode tag", n.path);
        assert_eq!(rec[2..10], n.ino.to_le_bytes(), "{}: inode number", n.path);
        assert_eq!(rec[10], n.kind.as_u8(), "{}: kind byte", n.path);
        assert_eq!(rec[11..15], n.perm.to_le_bytes(), "{}: perm", n.path);
        let i = record::decode_inode(&rec).unwrap();
        assert_eq!(
            (i.ino, i.kind, i.size),
            (n.ino, n.kind, n.size),
            "{}",
            n.path
        );
        // Every stored block holds exactly its bytes of the file, no header.
        let c = content(n.path);
        for (&b, &id) in &i.blocks {
            let stored = store.get(Ns::Data, id).unwrap().expect("block record");
            let start = b as usize * BLOCK;
            let end = (start + BLOCK).min(c.len());
            assert!(!stored.is_empty() && stored.len() <= end - start);
            assert_eq!(
                stored,
                c[start..start + stored.len()],
                "{}: block {b}",
                n.path
            );
            assert!(c[start + stored.len()..end].iter().all(|&x| x == 0));
            if !data_ids.contains(&id) {
                data_ids.push(id);
            }
        }
        let blocks: Vec<u64> = i.blocks.keys().copied().collect();
        let want: &[u64] = match n.path {
            "dir/file.txt" | "hardlink" => &[0],
            "big.bin" => &[0, 1],
            "sparse" => &[2],
            _ => &[],
        };
        assert_eq!(blocks, want, "{}: stored blocks", n.path);
    }
    data_ids.sort();
    assert_eq!(store.ids(Ns::Data).unwrap(), data_ids, "data records");
}

fn check_tree(fs: &Fs) {
    // Attributes first: reads move atime (relatime).
    for n in TREE {
        let ino = resolve(fs, n.path);
        assert_eq!(ino, n.ino, "{}: inode number", n.path);
        let a = fs.getattr(ino).unwrap();
        let who = owner(n.path);
        assert_eq!(a.kind, n.kind, "{}: kind", n.path);
        assert_eq!(a.perm, n.perm, "{}: perm", n.path);
        assert_eq!((a.uid, a.gid), (who.uid, who.gid), "{}: owner", n.path);
        assert_eq!(a.size, n.size, "{}: size", n.path);
        assert_eq!(a.nlink, n.nlink, "{}: nlink", n.path);
        assert_eq!(a.rdev, 0, "{}: rdev", n.path);
        assert_eq!((a.atime, a.mtime, a.ctime), times(ino), "{}: times", n.path);
    }
    use Kind::*;
    let root = [
        (".", ROOT, Dir),
        ("..", ROOT, Dir),
        ("big.bin", BIG, File),
        ("dir", DIR, Dir),
        ("empty", EMPTY, File),
        ("fifo", FIFO, Fifo),
        ("hardlink", FILE, File),
        ("link", LINK, Symlink),
        ("sparse", SPARSE, File),
    ];
    let want: Vec<_> = root
        .iter()
        .map(|&(n, i, k)| (n.to_string(), i, k))
        .collect();
    assert_eq!(list(fs, ROOT), want, "root listing");
    let want: Vec<_> = [(".", DIR, Dir), ("..", ROOT, Dir), ("file.txt", FILE, File)]
        .iter()
        .map(|&(n, i, k)| (n.to_string(), i, k))
        .collect();
    assert_eq!(list(fs, DIR), want, "dir listing");

    assert_eq!(fs.readlink(LINK).unwrap(), LINK_TARGET);
    for &(name, value) in XATTRS {
        assert_eq!(fs.getxattr(FILE, name).unwrap(), value, "xattr {name:?}");
    }
    let raw = fs.listxattr(FILE).unwrap();
    let mut names: Vec<&[u8]> = raw.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    names.sort();
    assert_eq!(names, [&b"user.binary"[..], b"user.golden"]);
    assert!(
        fs.listxattr(BIG).unwrap().is_empty(),
        "big.bin has no xattr"
    );

    for n in TREE.iter().filter(|n| n.kind == File) {
        let c = content(n.path);
        let got = fs.read(n.ino, 0, (n.size + 100) as u32).unwrap();
        assert_eq!(got.len(), c.len(), "{}: read length", n.path);
        assert!(got == c, "{}: content", n.path);
    }
    // A read across the block boundary of big.bin, and one inside the hole of sparse.
    let c = content("big.bin");
    assert_eq!(
        fs.read(BIG, BLOCK as u64 - 10, 20).unwrap(),
        c[BLOCK - 10..BLOCK + 10]
    );
    assert_eq!(fs.read(SPARSE, 1000, 50).unwrap(), vec![0; 50]);
}

#[test]
fn golden_v1_tree_reads_back() {
    let dir = fixture_copy();
    check_raw(dir.path());
    let store: Arc<dyn Store> = Arc::new(EngineStore::open(dir.path()).unwrap());
    let fs = Fs::open(store, FsConfig::default()).unwrap();
    assert!(fs.recovery().is_none(), "written with a clean unmount");
    check_tree(&fs);
    fs.shutdown().unwrap();
}

/// Writes the fixture. Run once per format version, never to make a test pass:
/// `cargo test -p zdbfs --test golden -- --ignored regenerate`
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
    {
        let store: Arc<dyn Store> = Arc::new(EngineStore::open(&out).unwrap());
        let fs = Fs::open(store, FsConfig::default()).unwrap();
        let node = |kind, perm, target| NewNode {
            kind,
            perm,
            rdev: 0,
            target,
        };
        let write = |ino: u64, at: u64, data: &[u8]| {
            let fh = fs.open_file(ino, libc::O_RDWR).unwrap();
            fs.write(fh, ino, at, data, false).unwrap();
            fs.release(fh).unwrap();
        };
        let mut inos = Vec::new();
        let d = fs
            .create_node(OWNER, ROOT, b"dir", node(Kind::Dir, 0o750, b""))
            .unwrap();
        let f = fs
            .create_node(OWNER, d.ino, b"file.txt", node(Kind::File, 0o644, b""))
            .unwrap();
        write(f.ino, 0, &content("dir/file.txt"));
        for &(name, value) in XATTRS {
            fs.setxattr(f.ino, name, value, 0).unwrap();
        }
        let big = fs
            .create_node(OWNER, ROOT, b"big.bin", node(Kind::File, 0o600, b""))
            .unwrap();
        let c = content("big.bin");
        write(big.ino, 0, &c[..70_000]);
        write(big.ino, 70_000, &c[70_000..]);
        let l = fs
            .create_node(
                OWNER,
                ROOT,
                b"link",
                node(Kind::Symlink, 0o777, LINK_TARGET),
            )
            .unwrap();
        fs.link(f.ino, ROOT, b"hardlink").unwrap();
        let s = fs
            .create_node(OWNER, ROOT, b"sparse", node(Kind::File, 0o640, b""))
            .unwrap();
        write(s.ino, SPARSE_AT, SPARSE_TAIL);
        let e = fs
            .create_node(OWNER, ROOT, b"empty", node(Kind::File, 0o444, b""))
            .unwrap();
        let p = fs
            .create_node(OWNER, ROOT, b"fifo", node(Kind::Fifo, 0o620, b""))
            .unwrap();
        inos.extend([ROOT, d.ino, f.ino, big.ino, l.ino, s.ino, e.ino, p.ino]);
        assert_eq!(inos, [ROOT, DIR, FILE, BIG, LINK, SPARSE, EMPTY, FIFO]);
        for ino in inos {
            let (a, m, c) = times(ino);
            let set = SetAttr {
                atime: Some(Some(a)),
                mtime: Some(Some(m)),
                ctime: Some(c),
                ..SetAttr::default()
            };
            fs.setattr(ino, None, set).unwrap();
        }
        fs.shutdown().unwrap();
    }
    std::fs::remove_file(out.join("zdbfs.lock")).unwrap();
    let dir = fixture_copy();
    check_raw(dir.path());
    let store: Arc<dyn Store> = Arc::new(EngineStore::open(dir.path()).unwrap());
    check_tree(&Fs::open(store, FsConfig::default()).unwrap());
}
