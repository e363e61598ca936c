//! Mount-time recovery: replay of the metadata journal, then (after an unclean shutdown) a
//! consistency check that leaves a tree with no dangling entry, no orphan record and correct
//! link counts.

use super::flush::apply;
use super::ROOT;
use crate::error::Result;
use crate::inode::{Inode, Kind};
use crate::record::{self, Dirent, JournalPart, TAG_BUCKET, TAG_INODE, TAG_PLACEHOLDER};
use crate::store::{Ns, Store};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Apply every complete journal transaction (in order), drop incomplete ones, empty the journal.
pub(crate) fn replay_journal(store: &dyn Store) -> Result<usize> {
    let ids = store.ids(Ns::Temp)?;
    let mut txns: BTreeMap<u64, Vec<JournalPart>> = BTreeMap::new();
    for &id in &ids {
        let Some(b) = store.get(Ns::Temp, id)? else {
            continue;
        };
        match record::decode_journal(&b) {
            Ok(p) => txns.entry(p.txn).or_default().push(p),
            Err(e) => tracing::warn!(id, error = %e, "dropping unreadable journal record"),
        }
    }
    let mut applied = 0;
    for (txn, mut parts) in txns {
        parts.sort_by_key(|p| p.part);
        parts.dedup_by_key(|p| p.part);
        let complete = parts
            .first()
            .is_some_and(|p| p.parts as usize == parts.len());
        if !complete {
            tracing::warn!(txn, "dropping incomplete journal transaction");
            continue;
        }
        for p in &parts {
            apply(store, &p.ops)?;
        }
        applied += 1;
    }
    if !ids.is_empty() {
        store.sync()?;
        for id in ids {
            store.delete(Ns::Temp, id)?;
        }
        tracing::info!(applied, "journal replayed");
    }
    Ok(applied)
}

/// What the consistency check repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FsckReport {
    pub inodes: usize,
    pub dangling_entries: usize,
    pub orphan_inodes: usize,
    pub orphan_buckets: usize,
    pub placeholders: usize,
    pub nlink_fixed: usize,
    pub orphan_blocks: usize,
}

/// Walk the tree from the root and repair it.
pub(crate) fn fsck(store: &dyn Store) -> Result<FsckReport> {
    let mut rep = FsckReport::default();
    let mut inodes: HashMap<u64, Inode> = HashMap::new();
    let mut buckets: HashMap<u64, record::Bucket> = HashMap::new();
    let mut junk: Vec<u64> = Vec::new();
    for id in store.ids(Ns::Meta)? {
        if id == 0 {
            continue;
        }
        let Some(b) = store.get(Ns::Meta, id)? else {
            continue;
        };
        match b.first() {
            Some(&TAG_INODE) => match record::decode_inode(&b) {
                Ok(i) if i.ino == id => {
                    inodes.insert(id, i);
                }
                _ => junk.push(id),
            },
            Some(&TAG_BUCKET) => match record::decode_bucket(&b) {
                Ok(bk) => {
                    buckets.insert(id, bk);
                }
                Err(_) => junk.push(id),
            },
            Some(&TAG_PLACEHOLDER) => {
                rep.placeholders += 1;
                junk.push(id);
            }
            _ => junk.push(id),
        }
    }
    rep.inodes = inodes.len();
    if !inodes.contains_key(&ROOT) {
        return Err(crate::Error::NotZdbfs("root inode missing".into()));
    }
    // Breadth-first walk: count links, drop entries naming missing inodes or a second parent
    // of a directory.
    let mut links: HashMap<u64, u32> = HashMap::new();
    let mut subdirs: HashMap<u64, u32> = HashMap::new();
    let mut seen_dirs: HashSet<u64> = HashSet::from([ROOT]);
    let mut used_buckets: HashSet<u64> = HashSet::new();
    let mut rewrite: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut reparent: Vec<(u64, u64)> = Vec::new();
    let mut queue = VecDeque::from([ROOT]);
    while let Some(dir) = queue.pop_front() {
        let bucket_ids: Vec<Option<u64>> = inodes
            .get(&dir)
            .map(|i| i.buckets.clone())
            .unwrap_or_default();
        for (idx, bid) in bucket_ids.iter().enumerate() {
            let Some(bid) = bid else { continue };
            let Some((owner, _, entries)) = buckets.get(bid) else {
                continue;
            };
            if *owner != dir {
                continue;
            }
            used_buckets.insert(*bid);
            let mut keep: Vec<(Vec<u8>, Dirent)> = Vec::with_capacity(entries.len());
            for (name, e) in entries {
                let ok = match inodes.get(&e.ino) {
                    None => false,
                    Some(i) if i.kind == Kind::Dir => seen_dirs.insert(e.ino),
                    Some(_) => true,
                };
                if !ok {
                    rep.dangling_entries += 1;
                    continue;
                }
                *links.entry(e.ino).or_insert(0) += 1;
                if e.kind == Kind::Dir {
                    *subdirs.entry(dir).or_insert(0) += 1;
                    if inodes.get(&e.ino).is_some_and(|i| i.parent != dir) {
                        reparent.push((e.ino, dir));
                    }
                    queue.push_back(e.ino);
                }
                keep.push((name.clone(), *e));
            }
            if keep.len() != entries.len() {
                let rec = record::encode_bucket(
                    dir,
                    idx as u32,
                    keep.iter().map(|(n, e)| (n.as_slice(), *e)),
                );
                rewrite.push((*bid, rec));
            }
        }
    }
    for (id, rec) in rewrite {
        store.update(Ns::Meta, id, &rec)?;
    }
    let mut reparented: HashSet<u64> = HashSet::new();
    for (ino, parent) in reparent {
        if let Some(i) = inodes.get_mut(&ino) {
            i.parent = parent;
            reparented.insert(ino);
        }
    }
    // Orphans: unreachable inodes and buckets, leftovers.
    let mut live_blocks: HashSet<u64> = HashSet::new();
    let mut remove: Vec<u64> = Vec::new();
    for (ino, i) in &mut inodes {
        let reachable = *ino == ROOT || links.contains_key(ino);
        if !reachable {
            rep.orphan_inodes += 1;
            remove.push(*ino);
            continue;
        }
        live_blocks.extend(i.blocks.values().copied());
        let want = match i.kind {
            Kind::Dir => 2 + subdirs.get(ino).copied().unwrap_or(0),
            _ => links.get(ino).copied().unwrap_or(1),
        };
        let fix_parent = *ino == ROOT && i.parent != ROOT;
        if i.nlink != want || fix_parent || reparented.contains(ino) {
            if i.nlink != want {
                rep.nlink_fixed += 1;
            }
            i.nlink = want;
            if fix_parent {
                i.parent = ROOT;
            }
            store.update(Ns::Meta, *ino, &record::encode_inode(i))?;
        }
    }
    for ino in remove {
        store.delete(Ns::Meta, ino)?;
    }
    for id in buckets.keys() {
        if !used_buckets.contains(id) {
            rep.orphan_buckets += 1;
            store.delete(Ns::Meta, *id)?;
        }
    }
    for id in junk {
        store.delete(Ns::Meta, id)?;
    }
    for id in store.ids(Ns::Data)? {
        if !live_blocks.contains(&id) {
            rep.orphan_blocks += 1;
            store.delete(Ns::Data, id)?;
        }
    }
    store.sync()?;
    Ok(rep)
}
