//! Model tests without FUSE: journal replay, crash consistency and fsck on the engine store.

use super::*;
use crate::record::{encode_journal, JournalPart, Op};
use crate::store::EngineStore;

const ME: Caller = Caller { uid: 0, gid: 0 };

fn file(perm: u32) -> NewNode<'static> {
    NewNode {
        kind: Kind::File,
        perm,
        rdev: 0,
        target: b"",
    }
}

fn open(dir: &std::path::Path) -> (Arc<dyn Store>, Fs) {
    let store: Arc<dyn Store> = Arc::new(EngineStore::open(dir).unwrap());
    let fs = Fs::open(store.clone(), FsConfig::default()).unwrap();
    (store, fs)
}

#[test]
fn crash_without_flush_leaves_a_consistent_tree() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, fs) = open(dir.path());
        let a = fs.create_node(ME, ROOT, b"kept", file(0o644)).unwrap();
        let fh = fs.open_file(a.ino, libc::O_RDWR).unwrap();
        fs.write(fh, a.ino, 0, b"durable", false).unwrap();
        fs.fsync().unwrap();
        // Not flushed: a new file whose inode is stored on close but whose entry is not.
        let b = fs.create_node(ME, ROOT, b"lost", file(0o644)).unwrap();
        let fh2 = fs.open_file(b.ino, libc::O_RDWR).unwrap();
        fs.write(fh2, b.ino, 0, b"x", false).unwrap();
        fs.release(fh2).unwrap();
        // Dropped without shutdown: a crash.
    }
    let (_, fs) = open(dir.path());
    let rep = fs.recovery().expect("unclean mount checked");
    assert_eq!(rep.orphan_inodes, 1, "{rep:?}");
    let a = fs.lookup(ROOT, b"kept").unwrap();
    assert_eq!(fs.read(a.ino, 0, 100).unwrap(), b"durable");
    assert_eq!(fs.lookup(ROOT, b"lost"), Err(Errno::ENOENT));
    fs.shutdown().unwrap();
    drop(fs);
    let (_, fs) = open(dir.path());
    assert!(fs.recovery().is_none(), "clean unmount needs no check");
}

#[test]
fn journal_replays_complete_transactions_only() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ino) = {
        let (store, fs) = open(dir.path());
        let a = fs.create_node(ME, ROOT, b"f", file(0o600)).unwrap();
        fs.shutdown().unwrap();
        (store, a.ino)
    };
    let meta = store.get(Ns::Meta, ino).unwrap().unwrap();
    let mut i = record::decode_inode(&meta).unwrap();
    i.perm = 0o640;
    let complete = JournalPart {
        txn: 9,
        part: 0,
        parts: 1,
        ops: vec![Op::Put(ino, record::encode_inode(&i))],
    };
    i.perm = 0o777;
    let partial = JournalPart {
        txn: 10,
        part: 0,
        parts: 2,
        ops: vec![Op::Put(ino, record::encode_inode(&i))],
    };
    store.append(Ns::Temp, &encode_journal(&complete)).unwrap();
    store.append(Ns::Temp, &encode_journal(&partial)).unwrap();
    drop(store);
    let (store, fs) = open(dir.path());
    assert_eq!(fs.getattr(ino).unwrap().perm, 0o640);
    assert!(store.ids(Ns::Temp).unwrap().is_empty());
}

#[test]
fn fsck_drops_dangling_entries_and_orphans_and_fixes_nlink() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gone, kept) = {
        let (store, fs) = open(dir.path());
        let g = fs.create_node(ME, ROOT, b"gone", file(0o644)).unwrap();
        let k = fs.create_node(ME, ROOT, b"kept", file(0o644)).unwrap();
        fs.link(k.ino, ROOT, b"kept2").unwrap();
        fs.shutdown().unwrap();
        (store, g.ino, k.ino)
    };
    // Damage: the inode of an entry disappears, a link count is wrong, junk records appear.
    store.delete(Ns::Meta, gone).unwrap();
    let mut k = record::decode_inode(&store.get(Ns::Meta, kept).unwrap().unwrap()).unwrap();
    k.nlink = 7;
    store
        .update(Ns::Meta, kept, &record::encode_inode(&k))
        .unwrap();
    store
        .append(Ns::Meta, &record::encode_placeholder())
        .unwrap();
    store.append(Ns::Data, b"orphan block").unwrap();
    let sb = record::Superblock {
        block_size: BLOCK as u32,
        clean: false,
    };
    store
        .update(Ns::Meta, 0, &record::encode_super(&sb))
        .unwrap();
    drop(store);
    let (store, fs) = open(dir.path());
    let rep = fs.recovery().unwrap().clone();
    assert_eq!(rep.dangling_entries, 1);
    assert_eq!(rep.placeholders, 1);
    assert_eq!(rep.nlink_fixed, 1);
    assert_eq!(rep.orphan_blocks, 1);
    assert_eq!(fs.lookup(ROOT, b"gone"), Err(Errno::ENOENT));
    assert_eq!(fs.getattr(kept).unwrap().nlink, 2);
    let fh = fs.opendir(ROOT).unwrap();
    let mut names = Vec::new();
    fs.readdir(fh, 0, |_, it| {
        names.push(String::from_utf8_lossy(&it.name).into_owned());
        false
    })
    .unwrap();
    names.sort();
    assert_eq!(names, [".", "..", "kept", "kept2"]);
    assert!(store.ids(Ns::Data).unwrap().is_empty());
}

#[test]
fn directory_buckets_grow_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, fs) = open(dir.path());
        for i in 0..2000 {
            fs.create_node(ME, ROOT, format!("n{i}").as_bytes(), file(0o644))
                .unwrap();
            if i % 300 == 0 {
                fs.flush_all(false).unwrap();
            }
        }
        for i in (0..2000).step_by(3) {
            fs.unlink(ROOT, format!("n{i}").as_bytes()).unwrap();
        }
        fs.shutdown().unwrap();
    }
    let (_, fs) = open(dir.path());
    for i in 0..2000 {
        let r = fs.lookup(ROOT, format!("n{i}").as_bytes());
        assert_eq!(r.is_ok(), i % 3 != 0, "n{i}");
    }
}

#[test]
fn full_namespace_is_enospc_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let engine_store = Arc::new(EngineStore::open(dir.path()).unwrap());
    let data = engine_store.engine().namespace("zdbfs-data").unwrap();
    data.change_setting(zdb_engine::SettingChange::MaxSize(300_000))
        .unwrap();
    let store: Arc<dyn Store> = engine_store.clone();
    let fs = Fs::open(store, FsConfig::default()).unwrap();
    let a = fs.create_node(ME, ROOT, b"f", file(0o644)).unwrap();
    let fh = fs.open_file(a.ino, libc::O_RDWR).unwrap();
    fs.write(fh, a.ino, 0, &vec![1u8; 500_000], false).unwrap();
    assert_eq!(fs.fsync(), Err(Errno::ENOSPC));
    // Room again: the retry stores everything that was left dirty.
    data.change_setting(zdb_engine::SettingChange::MaxSize(0))
        .unwrap();
    fs.fsync().unwrap();
    fs.shutdown().unwrap();
    drop((fs, data, engine_store));
    let (_, fs) = open(dir.path());
    let a = fs.lookup(ROOT, b"f").unwrap();
    assert_eq!(a.size, 500_000);
    assert_eq!(fs.read(a.ino, 0, 600_000).unwrap(), vec![1u8; 500_000]);
}

#[test]
fn engine_dir_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let first = EngineStore::open(dir.path()).unwrap();
    let err = EngineStore::open(dir.path())
        .err()
        .expect("second open refused");
    assert!(err.to_string().contains("in use"), "{err}");
    drop(first);
    EngineStore::open(dir.path()).unwrap();
}

#[test]
fn forgotten_clean_inodes_leave_memory_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fs) = open(dir.path());
    let a = fs.create_node(ME, ROOT, b"f", file(0o644)).unwrap();
    let fh = fs.open_file(a.ino, libc::O_RDWR).unwrap();
    fs.write(fh, a.ino, 0, b"content", false).unwrap();
    fs.release(fh).unwrap();
    let before = fs.cached_inodes();
    // Still dirty in its directory until the flush; the kernel forgets it meanwhile.
    fs.forget(a.ino, 1);
    fs.flush_all(false).unwrap();
    assert_eq!(fs.cached_inodes(), before - 1);
    let b = fs.lookup(ROOT, b"f").unwrap();
    assert_eq!(b.ino, a.ino);
    assert_eq!(fs.read(b.ino, 0, 100).unwrap(), b"content");
}

#[test]
fn readdirplus_counts_a_lookup_for_each_entry_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fs) = open(dir.path());
    let mut inos = Vec::new();
    for name in [&b"a"[..], b"b", b"c"] {
        let a = fs.create_node(ME, ROOT, name, file(0o644)).unwrap();
        fs.forget(a.ino, 1);
        inos.push(a.ino);
    }
    fs.flush_all(false).unwrap();
    let base = fs.cached_inodes();
    // Take ".", ".." and two entries, then report the buffer full.
    let fh = fs.opendir(ROOT).unwrap();
    let mut taken = Vec::new();
    fs.readdirplus(fh, 0, |_, item, attr| {
        assert_eq!(attr.ino, item.ino);
        if taken.len() == 4 {
            return true;
        }
        taken.push(item.ino);
        false
    })
    .unwrap();
    fs.releasedir(fh);
    let handed: Vec<u64> = taken[2..].to_vec();
    assert_eq!(handed.len(), 2);
    // The two handed out stay in memory (the kernel holds them), the third does not.
    assert_eq!(fs.cached_inodes(), base + 2);
    for ino in handed {
        fs.forget(ino, 1);
    }
    assert_eq!(fs.cached_inodes(), base, "forgotten, they leave memory");
}

/// Deterministic xorshift for the model test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_writes_truncates_and_reopens_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model: Vec<Vec<u8>> = vec![Vec::new(); 3];
    let (mut store, mut fs) = open(dir.path());
    let mut inos = Vec::new();
    for k in 0..3 {
        let name = format!("f{k}");
        inos.push(
            fs.create_node(ME, ROOT, name.as_bytes(), file(0o644))
                .unwrap()
                .ino,
        );
    }
    let limit = 3 * BLOCK + 1000;
    for step in 0..600 {
        let k = rng.below(3) as usize;
        let ino = inos[k];
        match rng.below(10) {
            0..=4 => {
                let (off, len) = if step % 3 == 0 {
                    (rng.below(3) * BLOCK, BLOCK as usize)
                } else {
                    (rng.below(limit), rng.below(BLOCK + 5000) as usize)
                };
                let byte = (step % 251) as u8 + 1;
                let fh = fs.open_file(ino, libc::O_RDWR).unwrap();
                fs.write(fh, ino, off, &vec![byte; len], false).unwrap();
                fs.release(fh).unwrap();
                let m = &mut model[k];
                let end = off as usize + len;
                if m.len() < end {
                    m.resize(end, 0);
                }
                m[off as usize..end].fill(byte);
            }
            5 | 6 => {
                let size = rng.below(limit);
                let set = SetAttr {
                    size: Some(size),
                    ..SetAttr::default()
                };
                fs.setattr(ino, None, set).unwrap();
                model[k].resize(size as usize, 0);
            }
            7 => fs.flush_all(rng.below(2) == 0).unwrap(),
            8 => {
                // Reopen: cleanly, or as after a crash once everything was fsync'ed.
                if rng.below(2) == 0 {
                    fs.shutdown().unwrap();
                } else {
                    fs.fsync().unwrap();
                }
                drop((fs, store));
                (store, fs) = open(dir.path());
            }
            _ => {
                let off = rng.below(limit);
                let len = rng.below(2 * BLOCK);
                let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                fs.fallocate(ino, off, len, mode).unwrap();
                let m = &mut model[k];
                let end = ((off + len) as usize).min(m.len());
                if (off as usize) < end {
                    m[off as usize..end].fill(0);
                }
            }
        }
        let got = fs.read(ino, 0, (limit + BLOCK * 2) as u32).unwrap();
        assert_eq!(got.len(), model[k].len(), "size of f{k} at step {step}");
        assert!(got == model[k], "content of f{k} at step {step}");
    }
    drop(store);
}

fn list(fs: &Fs, dir: u64) -> Vec<String> {
    let fh = fs.opendir(dir).unwrap();
    let mut names = Vec::new();
    fs.readdir(fh, 0, |_, it| {
        if it.name != b"." && it.name != b".." {
            names.push(String::from_utf8_lossy(&it.name).into_owned());
        }
        false
    })
    .unwrap();
    fs.releasedir(fh);
    names.sort();
    names
}

#[test]
fn random_namespace_operations_match_a_model() {
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut store, mut fs) = open(dir.path());
    let dirs: Vec<u64> = (0..3)
        .map(|k| {
            let node = NewNode {
                kind: Kind::Dir,
                perm: 0o755,
                rdev: 0,
                target: b"",
            };
            fs.create_node(ME, ROOT, format!("d{k}").as_bytes(), node)
                .unwrap()
                .ino
        })
        .collect();
    let mut model: Vec<BTreeSet<String>> = vec![BTreeSet::new(); 3];
    for step in 0..3000 {
        let a = rng.below(3) as usize;
        let name = format!("n{}", rng.below(150));
        match rng.below(12) {
            0..=4 => {
                let r = fs.create_node(ME, dirs[a], name.as_bytes(), file(0o644));
                assert_eq!(r.is_ok(), model[a].insert(name.clone()), "create {step}");
            }
            5 | 6 => {
                let r = fs.unlink(dirs[a], name.as_bytes());
                assert_eq!(r.is_ok(), model[a].remove(&name), "unlink {step}");
            }
            7..=9 => {
                let b = rng.below(3) as usize;
                let to = format!("n{}", rng.below(150));
                let r = fs.rename(
                    dirs[a],
                    name.as_bytes(),
                    dirs[b],
                    to.as_bytes(),
                    RenameMode::Replace,
                );
                if model[a].remove(&name) {
                    r.unwrap();
                    model[b].insert(to);
                } else {
                    assert_eq!(r, Err(Errno::ENOENT), "rename {step}");
                }
            }
            10 => fs.flush_all(false).unwrap(),
            _ => {
                if rng.below(2) == 0 {
                    fs.shutdown().unwrap();
                } else {
                    fs.fsync().unwrap();
                }
                drop((fs, store));
                (store, fs) = open(dir.path());
            }
        }
        if step % 50 == 0 {
            for k in 0..3 {
                let want: Vec<String> = model[k].iter().cloned().collect();
                assert_eq!(list(&fs, dirs[k]), want, "d{k} at step {step}");
            }
        }
    }
    for k in 0..3 {
        for n in &model[k] {
            assert_eq!(fs.lookup(dirs[k], n.as_bytes()).unwrap().nlink, 1);
        }
    }
    drop(store);
}

/// Block stores run without the state lock: writes, truncates and hole punches racing with
/// background and full flushes must still end with exactly the model's bytes after a reopen.
#[test]
fn writes_racing_with_unlocked_block_stores_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EngineStore::open(dir.path()).unwrap());
    let config = FsConfig {
        // Small limits and no expiry delay: the flusher and the writers' own stores both run.
        dirty_limit: 4 * BLOCK as usize,
        dirty_expire: std::time::Duration::ZERO,
        ..FsConfig::default()
    };
    let fs = Arc::new(Fs::open(store.clone(), config.clone()).unwrap());
    let limit = 6 * BLOCK;
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (fs, stop) = (fs.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                n += 1;
                if n % 5 == 0 {
                    fs.flush_all(false).unwrap();
                } else {
                    fs.background_flush(n % 2 == 0).unwrap();
                }
            }
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let name = format!("w{t}");
                let ino = fs
                    .create_node(ME, ROOT, name.as_bytes(), file(0o644))
                    .unwrap()
                    .ino;
                let mut rng = Rng(0x2545_f491_4f6c_dd1d + t);
                let mut model = Vec::new();
                let fh = fs.open_file(ino, libc::O_RDWR).unwrap();
                for step in 0..400u64 {
                    match rng.below(8) {
                        0..=4 => {
                            // Every other write covers whole blocks (the direct path).
                            let (off, len) = if step % 2 == 0 {
                                let n = 1 + rng.below(2);
                                (rng.below(limit / BLOCK) * BLOCK, (n * BLOCK) as usize)
                            } else {
                                (rng.below(limit), rng.below(BLOCK + 3000) as usize)
                            };
                            let byte = (step % 251) as u8 + 1;
                            fs.write(fh, ino, off, &vec![byte; len], false).unwrap();
                            let end = off as usize + len;
                            if model.len() < end {
                                model.resize(end, 0);
                            }
                            model[off as usize..end].fill(byte);
                        }
                        5 | 6 => {
                            let size = rng.below(limit);
                            let set = SetAttr {
                                size: Some(size),
                                ..SetAttr::default()
                            };
                            fs.setattr(ino, None, set).unwrap();
                            model.resize(size as usize, 0);
                        }
                        _ => {
                            let off = rng.below(limit);
                            let len = rng.below(2 * BLOCK);
                            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                            fs.fallocate(ino, off, len, mode).unwrap();
                            let end = ((off + len) as usize).min(model.len());
                            if (off as usize) < end {
                                model[off as usize..end].fill(0);
                            }
                        }
                    }
                }
                fs.release(fh).unwrap();
                (ino, model)
            })
        })
        .collect();
    let models: Vec<(u64, Vec<u8>)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Relaxed);
    flusher.join().unwrap();
    // As after a crash once everything was fsync'ed: only what is stored counts.
    fs.fsync().unwrap();
    drop(fs);
    let fs = Fs::open(store, config).unwrap();
    for (ino, model) in models {
        let got = fs.read(ino, 0, (limit + 2 * BLOCK) as u32).unwrap();
        assert_eq!(got.len(), model.len(), "size of {ino}");
        assert!(got == model, "content of {ino}");
    }
    let report = recover::fsck(&*fs.store).unwrap();
    let clean = FsckReport {
        inodes: report.inodes,
        ..FsckReport::default()
    };
    assert_eq!(report, clean, "nothing to repair after an fsync");
}

/// Reads of every shape (whole stored blocks, parts of them, holes, short last blocks,
/// blocks cached dirty) return what a plain byte array would.
#[test]
fn reads_match_the_written_bytes_whatever_the_block_layout() {
    let block = crate::inode::BLOCK as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut model = vec![0u8; 6 * block + 1000];
    let pattern =
        |at: usize, n: usize| -> Vec<u8> { (at..at + n).map(|i| (i * 7 % 251) as u8).collect() };
    let ino = {
        let (_, fs) = open(dir.path());
        let a = fs.create_node(ME, ROOT, b"f", file(0o644)).unwrap();
        let fh = fs.open_file(a.ino, libc::O_RDWR).unwrap();
        // Blocks 0-3 whole, block 4 a hole, block 5 whole, block 6 short.
        for (at, n) in [(0, 4 * block), (5 * block, block + 1000)] {
            let bytes = pattern(at, n);
            fs.write(fh, a.ino, at as u64, &bytes, false).unwrap();
            model[at..at + n].copy_from_slice(&bytes);
        }
        fs.release(fh).unwrap();
        fs.shutdown().unwrap();
        a.ino
    };
    let (_, fs) = open(dir.path());
    let check = |fs: &Fs, model: &[u8]| {
        let shapes = [
            (0, 2 * block),
            (block, block),
            (100, block),
            (block - 1, 2 * block + 2),
            (3 * block + 5, 2 * block),
            (4 * block, block),
            (5 * block - 10, 2 * block),
            (6 * block + 999, 10),
            (0, model.len() + 4096),
        ];
        for (at, n) in shapes {
            let got = fs.read(ino, at as u64, n as u32).unwrap();
            let want = &model[at.min(model.len())..(at + n).min(model.len())];
            assert!(got == want, "read of {n} bytes at {at} differs");
        }
    };
    check(&fs, &model);
    // A dirty block in the cache between stored ones.
    let fh = fs.open_file(ino, libc::O_RDWR).unwrap();
    let bytes = vec![9u8; 300];
    fs.write(fh, ino, (2 * block + 50) as u64, &bytes, false)
        .unwrap();
    model[2 * block + 50..2 * block + 350].copy_from_slice(&bytes);
    check(&fs, &model);
    fs.release(fh).unwrap();
}

/// The kernel may open an inode it still holds after its last name is gone (a lookup that
/// raced with the unlink): the inode and its data stay until its FORGET, then go. Before,
/// the unlink destroyed it at once, the open brought the record back from the store, the
/// read found its blocks gone (EIO) and the close wrote a deleted record.
#[test]
fn an_unlinked_inode_the_kernel_holds_lives_until_forget() {
    let dir = tempfile::tempdir().unwrap();
    let (store, fs) = open(dir.path());
    let a = fs.create_node(ME, ROOT, b"racy", file(0o644)).unwrap();
    let fh = fs.open_file(a.ino, libc::O_RDWR).unwrap();
    fs.write(fh, a.ino, 0, b"still here", false).unwrap();
    fs.release(fh).unwrap();
    fs.fsync().unwrap();
    fs.unlink(ROOT, b"racy").unwrap();
    fs.fsync().unwrap();
    assert_eq!(fs.lookup(ROOT, b"racy"), Err(Errno::ENOENT));
    let fh = fs.open_file(a.ino, libc::O_RDONLY).unwrap();
    assert_eq!(fs.read(a.ino, 0, 100).unwrap(), b"still here");
    fs.release(fh).unwrap();
    fs.fsync().unwrap();
    assert!(
        store.get(Ns::Meta, a.ino).unwrap().is_some(),
        "held by the kernel"
    );
    fs.forget(a.ino, 1);
    fs.fsync().unwrap();
    assert!(
        store.get(Ns::Meta, a.ino).unwrap().is_none(),
        "gone with the last reference"
    );
    assert_eq!(fs.open_file(a.ino, libc::O_RDONLY), Err(Errno::ENOENT));
    // One the kernel still held at unmount goes with the unmount (no leaked record).
    let b = fs.create_node(ME, ROOT, b"held", file(0o644)).unwrap();
    fs.fsync().unwrap();
    fs.unlink(ROOT, b"held").unwrap();
    fs.shutdown().unwrap();
    assert!(
        store.get(Ns::Meta, b.ino).unwrap().is_none(),
        "not left behind"
    );
}

#[test]
fn fsyncs_arriving_together_share_one_synced_flush() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let (_, fs) = open(dir.path());
    let a = fs.create_node(ME, ROOT, b"a", file(0o644)).unwrap();
    let fh = fs.open_file(a.ino, libc::O_RDWR).unwrap();
    fs.write(fh, a.ino, 0, b"one", false).unwrap();
    // Two fsyncs arrive (both see the same count), the first runs a synced flush...
    let arrived = fs.syncs.begun.load(Ordering::SeqCst);
    fs.flush_synced_since(arrived).unwrap();
    let after_first = fs.syncs.begun.load(Ordering::SeqCst);
    assert_eq!(after_first, arrived + 1);
    // ...which began after the second arrived: the second is answered by it.
    fs.flush_synced_since(arrived).unwrap();
    assert_eq!(fs.syncs.begun.load(Ordering::SeqCst), after_first);
    // An fsync arriving now needs a flush of its own (it may follow new writes).
    fs.write(fh, a.ino, 3, b" two", false).unwrap();
    fs.fsync().unwrap();
    assert_eq!(fs.syncs.begun.load(Ordering::SeqCst), after_first + 1);
    fs.release(fh).unwrap();
    drop(fs);
    // Dropped without shutdown: what the fsyncs answered for is there.
    let (_, fs) = open(dir.path());
    let found = fs.lookup(ROOT, b"a").unwrap();
    assert_eq!(fs.read(found.ino, 0, 100).unwrap(), b"one two");
}

type StoreResult<T> = std::result::Result<T, crate::error::StoreError>;

/// An engine store whose first journal append waits until the test opens the gate, so a
/// test can act while a metadata commit is under way.
struct GatedStore {
    inner: EngineStore,
    reached: std::sync::mpsc::SyncSender<()>,
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    armed: std::sync::atomic::AtomicBool,
}

impl Store for GatedStore {
    fn append(&self, ns: Ns, value: &[u8]) -> StoreResult<u64> {
        if ns == Ns::Temp && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.reached.send(()).unwrap();
            self.gate.lock().unwrap().recv().unwrap();
        }
        self.inner.append(ns, value)
    }
    fn update(&self, ns: Ns, id: u64, v: &[u8]) -> StoreResult<()> {
        self.inner.update(ns, id, v)
    }
    fn get(&self, ns: Ns, id: u64) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get(ns, id)
    }
    fn delete(&self, ns: Ns, id: u64) -> StoreResult<()> {
        self.inner.delete(ns, id)
    }
    fn ids(&self, ns: Ns) -> StoreResult<Vec<u64>> {
        self.inner.ids(ns)
    }
    fn sync(&self) -> StoreResult<()> {
        self.inner.sync()
    }
    fn used_bytes(&self, ns: Ns) -> StoreResult<u64> {
        self.inner.used_bytes(ns)
    }
}

#[test]
fn requests_go_on_while_a_commit_stores_and_nothing_in_flight_is_forgotten() {
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    use std::time::Duration;
    const PATIENCE: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let (reached, reached_rx) = sync_channel(1);
    let (open_gate, gate) = sync_channel(1);
    let store = Arc::new(GatedStore {
        inner: EngineStore::open(dir.path()).unwrap(),
        reached,
        gate: std::sync::Mutex::new(gate),
        armed: false.into(),
    });
    let fs = Arc::new(Fs::open(store.clone(), FsConfig::default()).unwrap());
    let dir_node = NewNode {
        kind: Kind::Dir,
        perm: 0o755,
        rdev: 0,
        target: b"",
    };
    let d = fs.create_node(ME, ROOT, b"d", dir_node).unwrap();
    fs.create_node(ME, d.ino, b"a", file(0o644)).unwrap();
    store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let syncing = {
        let fs = fs.clone();
        std::thread::spawn(move || fs.fsync())
    };
    reached_rx
        .recv_timeout(PATIENCE)
        .expect("the commit reached its journal");
    // With the commit stopped before its journal: the kernel forgets the directory whose
    // new entry is being committed, and other requests run.
    let (done, done_rx) = sync_channel(1);
    let meanwhile = {
        let fs = fs.clone();
        std::thread::spawn(move || {
            fs.forget(d.ino, 1);
            let seen = fs.lookup(ROOT, b"d").and_then(|d| fs.lookup(d.ino, b"a"));
            let made = fs.create_node(ME, ROOT, b"meanwhile", file(0o644));
            done.send((seen.map(drop), made.map(drop))).unwrap();
        })
    };
    let outcome = done_rx.recv_timeout(PATIENCE);
    open_gate.send(()).unwrap();
    match outcome {
        Ok((seen, made)) => {
            assert_eq!(
                seen,
                Ok(()),
                "the directory in flight stays as it is in memory"
            );
            assert_eq!(made, Ok(()));
        }
        Err(RecvTimeoutError::Timeout) => panic!("requests waited for the commit"),
        Err(e) => panic!("{e}"),
    }
    syncing.join().unwrap().unwrap();
    meanwhile.join().unwrap();
    drop((fs, store));
    // Dropped without shutdown: what the fsync answered for is there.
    let (_, fs) = open(dir.path());
    let d = fs.lookup(ROOT, b"d").unwrap();
    fs.lookup(d.ino, b"a").unwrap();
}
