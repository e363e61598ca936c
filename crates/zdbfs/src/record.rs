//! Encoding of every record zdbfs stores (layout documented in `docs/format/zdbfs.md`).
//! Each record starts with a one-byte tag and a one-byte version.

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::inode::{Inode, Kind, Ts, BLOCK};
use std::collections::BTreeMap;

pub const TAG_SUPER: u8 = b'S';
pub const TAG_INODE: u8 = b'I';
pub const TAG_BUCKET: u8 = b'B';
pub const TAG_PLACEHOLDER: u8 = b'P';
pub const TAG_JOURNAL: u8 = b'J';
const VERSION: u8 = 1;
const MAGIC: &[u8; 5] = b"ZDBFS";
/// Bucket id meaning "not written yet".
const NO_BUCKET: u64 = u64::MAX;

/// Record 0 of the meta namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub block_size: u32,
    /// Set on clean unmount, cleared while mounted: recovery scans only after a crash.
    pub clean: bool,
}

pub fn encode_super(s: &Superblock) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(TAG_SUPER)
        .u8(VERSION)
        .bytes(MAGIC)
        .u32(s.block_size)
        .u8(u8::from(s.clean));
    w.buf
}

pub fn decode_super(b: &[u8]) -> Result<Superblock> {
    let mut r = Reader::new(b, "superblock");
    if r.u8()? != TAG_SUPER || r.u8()? != VERSION || r.bytes(5)? != MAGIC {
        return Err(Error::NotZdbfs("bad superblock magic".into()));
    }
    let block_size = r.u32()?;
    if u64::from(block_size) != BLOCK {
        return Err(Error::NotZdbfs(format!(
            "unsupported block size {block_size}"
        )));
    }
    Ok(Superblock {
        block_size,
        clean: r.u8()? != 0,
    })
}

/// The record written when an inode number is reserved, before the inode itself is flushed.
pub fn encode_placeholder() -> Vec<u8> {
    vec![TAG_PLACEHOLDER, VERSION]
}

fn ts(w: &mut Writer, t: Ts) {
    w.i64(t.secs).u32(t.nanos);
}

fn read_ts(r: &mut Reader<'_>) -> Result<Ts> {
    let secs = r.i64()?;
    let nanos = r.u32()?;
    if nanos >= 1_000_000_000 {
        return Err(Error::Corrupt(format!("nanoseconds {nanos}")));
    }
    Ok(Ts { secs, nanos })
}

pub fn encode_inode(i: &Inode) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(TAG_INODE).u8(VERSION).u64(i.ino).u8(i.kind.as_u8());
    w.u32(i.perm)
        .u32(i.uid)
        .u32(i.gid)
        .u32(i.nlink)
        .u32(i.rdev)
        .u64(i.size);
    ts(&mut w, i.atime);
    ts(&mut w, i.mtime);
    ts(&mut w, i.ctime);
    w.u64(i.parent);
    w.u32(i.xattrs.len() as u32);
    for (k, v) in &i.xattrs {
        w.u8(k.len() as u8).bytes(k).blob(v);
    }
    match i.kind {
        Kind::File => {
            // Runs of consecutive block indexes mapped to consecutive record ids.
            let mut runs: Vec<(u64, u64, u32)> = Vec::new();
            for (&b, &id) in &i.blocks {
                match runs.last_mut() {
                    Some((fb, fid, n))
                        if *fb + u64::from(*n) == b
                            && *fid + u64::from(*n) == id
                            && *n < u32::MAX =>
                    {
                        *n += 1;
                    }
                    _ => runs.push((b, id, 1)),
                }
            }
            w.u32(runs.len() as u32);
            for (b, id, n) in runs {
                w.u64(b).u64(id).u32(n);
            }
        }
        Kind::Dir => {
            w.u32(i.buckets.len() as u32);
            for b in &i.buckets {
                w.u64(b.unwrap_or(NO_BUCKET));
            }
        }
        Kind::Symlink => {
            w.blob(&i.target);
        }
        _ => {}
    }
    w.buf
}

pub fn decode_inode(b: &[u8]) -> Result<Inode> {
    let mut r = Reader::new(b, "inode");
    if r.u8()? != TAG_INODE || r.u8()? != VERSION {
        return Err(Error::Corrupt("not an inode record".into()));
    }
    let ino = r.u64()?;
    let kind = Kind::from_u8(r.u8()?).ok_or_else(|| Error::Corrupt("inode kind".into()))?;
    let mut i = Inode::new(ino, kind, 0, 0, 0);
    i.perm = r.u32()? & 0o7777;
    i.uid = r.u32()?;
    i.gid = r.u32()?;
    i.nlink = r.u32()?;
    i.rdev = r.u32()?;
    i.size = r.u64()?;
    i.atime = read_ts(&mut r)?;
    i.mtime = read_ts(&mut r)?;
    i.ctime = read_ts(&mut r)?;
    i.parent = r.u64()?;
    let nx = r.count(6)?;
    for _ in 0..nx {
        let kl = r.u8()? as usize;
        let k = r.bytes(kl)?.to_vec();
        let v = r.blob()?.to_vec();
        i.xattrs.insert(k, v);
    }
    match kind {
        Kind::File => {
            let n = r.count(20)?;
            let mut blocks = BTreeMap::new();
            for _ in 0..n {
                let (b, id, len) = (r.u64()?, r.u64()?, r.u32()?);
                for k in 0..u64::from(len) {
                    let bi = b
                        .checked_add(k)
                        .ok_or_else(|| Error::Corrupt("run".into()))?;
                    let idk = id
                        .checked_add(k)
                        .ok_or_else(|| Error::Corrupt("run".into()))?;
                    blocks.insert(bi, idk);
                }
            }
            i.blocks = blocks;
        }
        Kind::Dir => {
            let n = r.count(8)?;
            if n == 0 {
                return Err(Error::Corrupt("directory without buckets".into()));
            }
            i.buckets = (0..n)
                .map(|_| r.u64().map(|v| (v != NO_BUCKET).then_some(v)))
                .collect::<Result<_>>()?;
        }
        Kind::Symlink => i.target = r.blob()?.to_vec(),
        _ => {}
    }
    if !r.done() {
        return Err(Error::Corrupt("trailing bytes in inode".into()));
    }
    Ok(i)
}

/// One directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    pub kind: Kind,
}

/// A directory hash bucket: the entries whose name hashes to it.
pub fn encode_bucket<'a>(
    dir: u64,
    index: u32,
    entries: impl ExactSizeIterator<Item = (&'a [u8], Dirent)>,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(TAG_BUCKET)
        .u8(VERSION)
        .u64(dir)
        .u32(index)
        .u32(entries.len() as u32);
    for (name, e) in entries {
        w.u8(name.len() as u8)
            .bytes(name)
            .u64(e.ino)
            .u8(e.kind.as_u8());
    }
    w.buf
}

/// Decoded bucket: `(directory, index, entries)`.
pub type Bucket = (u64, u32, Vec<(Vec<u8>, Dirent)>);

pub fn decode_bucket(b: &[u8]) -> Result<Bucket> {
    let mut r = Reader::new(b, "bucket");
    if r.u8()? != TAG_BUCKET || r.u8()? != VERSION {
        return Err(Error::Corrupt("not a bucket record".into()));
    }
    let dir = r.u64()?;
    let index = r.u32()?;
    let n = r.count(11)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let l = r.u8()? as usize;
        let name = r.bytes(l)?.to_vec();
        let ino = r.u64()?;
        let kind = Kind::from_u8(r.u8()?).ok_or_else(|| Error::Corrupt("dirent kind".into()))?;
        out.push((name, Dirent { ino, kind }));
    }
    Ok((dir, index, out))
}

/// Stable hash of a name, choosing its bucket.
pub fn name_hash(name: &[u8]) -> u32 {
    crc32fast::hash(name)
}

/// One change in a metadata transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Write this content to meta record `id` (which exists).
    Put(u64, Vec<u8>),
    /// Delete meta record `id`.
    DelMeta(u64),
    /// Delete data record `id`.
    DelData(u64),
}

/// One part of a journal transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPart {
    pub txn: u64,
    pub part: u32,
    pub parts: u32,
    pub ops: Vec<Op>,
}

pub fn encode_journal(p: &JournalPart) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(TAG_JOURNAL)
        .u8(VERSION)
        .u64(p.txn)
        .u32(p.part)
        .u32(p.parts);
    w.u32(p.ops.len() as u32);
    for op in &p.ops {
        match op {
            Op::Put(id, v) => w.u8(1).u64(*id).blob(v),
            Op::DelMeta(id) => w.u8(2).u64(*id),
            Op::DelData(id) => w.u8(3).u64(*id),
        };
    }
    w.buf
}

pub fn decode_journal(b: &[u8]) -> Result<JournalPart> {
    let mut r = Reader::new(b, "journal");
    if r.u8()? != TAG_JOURNAL || r.u8()? != VERSION {
        return Err(Error::Corrupt("not a journal record".into()));
    }
    let (txn, part, parts) = (r.u64()?, r.u32()?, r.u32()?);
    let n = r.count(9)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let op = r.u8()?;
        let id = r.u64()?;
        ops.push(match op {
            1 => Op::Put(id, r.blob()?.to_vec()),
            2 => Op::DelMeta(id),
            3 => Op::DelData(id),
            _ => return Err(Error::Corrupt(format!("journal op {op}"))),
        });
    }
    Ok(JournalPart {
        txn,
        part,
        parts,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_roundtrip_with_runs_and_xattrs() {
        let mut i = Inode::new(7, Kind::File, 0o644, 1, 2);
        i.size = 5 * BLOCK + 3;
        for (b, id) in [(0, 10), (1, 11), (2, 12), (5, 40), (9, 41)] {
            i.blocks.insert(b, id);
        }
        i.xattrs.insert(b"user.a".to_vec(), b"xyz".to_vec());
        i.mtime = Ts {
            secs: -5,
            nanos: 999_999_999,
        };
        let back = decode_inode(&encode_inode(&i)).unwrap();
        assert_eq!(back, i);
        let mut d = Inode::new(1, Kind::Dir, 0o755, 0, 0);
        d.buckets = vec![Some(3), None, Some(9)];
        assert_eq!(decode_inode(&encode_inode(&d)).unwrap(), d);
    }

    #[test]
    fn truncated_records_are_errors() {
        let i = Inode::new(7, Kind::Symlink, 0o777, 1, 2);
        let b = encode_inode(&i);
        for n in 0..b.len() {
            assert!(decode_inode(&b[..n]).is_err());
        }
        let j = encode_journal(&JournalPart {
            txn: 1,
            part: 0,
            parts: 1,
            ops: vec![Op::Put(3, vec![1, 2]), Op::DelData(4)],
        });
        for n in 0..j.len() {
            assert!(decode_journal(&j[..n]).is_err());
        }
    }
}
