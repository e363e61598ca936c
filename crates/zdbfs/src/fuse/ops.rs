//! Request handlers: decode one request's arguments, call [`Fs`], encode the reply body.
//! Transport-neutral: `/dev/fuse` and io_uring both hand a request here as its header, its
//! fixed argument struct and the rest (names, data). Permission checks are the kernel's
//! (`default_permissions`); `access` is answered here too.

use super::abi::{self, fattr, op, Args, InHeader, Reply};
use crate::error::{Errno, FsResult};
use crate::fs::{Attr, Caller, Fs, NewNode, RenameMode, SetAttr};
use crate::inode::{Kind, Ts, BLOCK, NAME_MAX};
use crate::metrics::Call;
use std::time::{Duration, SystemTime};

/// How long the kernel may cache attributes and entries, negative ones included. Every
/// change to the tree goes through this mount (the namespaces are this server's alone,
/// `Fs::open` takes a lock), and the kernel updates or drops what it cached on each of its
/// own requests, so the cache cannot go stale; the timeout only bounds how long an entry
/// stays without being asked again.
const TTL: Duration = Duration::from_secs(60);

/// What a handler did with a request.
pub enum Outcome {
    /// Answer with the body built in the reply buffer.
    Reply,
    /// Answer with these bytes (file data: sent from where it was read, not copied first).
    Data(Vec<u8>),
    Error(Errno),
    /// FORGET and friends: the kernel expects no answer.
    NoReply,
}

impl Outcome {
    /// The reply's error (0 or a negative errno) and body; `None` when none is due.
    pub fn reply<'a>(&'a self, out: &'a Reply) -> Option<(i32, &'a [u8])> {
        match self {
            Outcome::Reply => Some((0, &out.0)),
            Outcome::Data(data) => Some((0, data)),
            Outcome::Error(e) => Some((-e.0, &[])),
            Outcome::NoReply => None,
        }
    }
}

/// `fuse_attr` (88 bytes).
fn put_attr(out: &mut Reply, a: &Attr) {
    let t = |ts: Ts| (ts.secs as u64, ts.nanos);
    let (atime, atime_ns) = t(a.atime);
    let (mtime, mtime_ns) = t(a.mtime);
    let (ctime, ctime_ns) = t(a.ctime);
    out.u64(a.ino).u64(a.size).u64(a.blocks);
    out.u64(atime).u64(mtime).u64(ctime);
    out.u32(atime_ns).u32(mtime_ns).u32(ctime_ns);
    out.u32(a.kind.ifmt() | (a.perm & 0o7777)).u32(a.nlink);
    out.u32(a.uid)
        .u32(a.gid)
        .u32(a.rdev)
        .u32(BLOCK as u32)
        .u32(0);
}

/// `fuse_attr_out` (104 bytes): the attributes and how long they stay valid.
fn put_attr_out(out: &mut Reply, a: &Attr) {
    out.u64(TTL.as_secs()).u32(0).u32(0);
    put_attr(out, a);
}

/// `fuse_entry_out` (128 bytes); `None` is a negative entry (node id 0, cached for TTL).
fn put_entry(out: &mut Reply, a: Option<&Attr>) {
    out.u64(a.map_or(0, |a| a.ino)).u64(0);
    out.u64(TTL.as_secs()).u64(TTL.as_secs()).u32(0).u32(0);
    match a {
        Some(a) => put_attr(out, a),
        None => {
            out.bytes(&[0; 88]);
        }
    }
}

/// `fuse_open_out` (16 bytes).
fn put_open(out: &mut Reply, fh: u64, flags: u32) {
    out.u64(fh).u32(flags).u32(0);
}

/// A new node of `kind`: no device number, no symlink target.
fn new_node(kind: Kind, perm: u32) -> NewNode<'static> {
    NewNode {
        kind,
        perm,
        rdev: 0,
        target: b"",
    }
}

/// Setattr times: `Some(None)` is "now".
fn set_time(valid: u32, set: u32, now: u32, secs: u64, nanos: u32) -> Option<Option<Ts>> {
    if valid & now != 0 {
        Some(None)
    } else if valid & set != 0 {
        Some(Some(Ts {
            secs: secs as i64,
            nanos,
        }))
    } else {
        None
    }
}

/// POSIX access check on mode bits (root passes everything but exec without any x bit).
fn access_ok(a: &Attr, who: Caller, mask: i32) -> bool {
    if mask == libc::F_OK {
        return true;
    }
    if who.uid == 0 {
        return mask & libc::X_OK == 0 || a.kind == Kind::Dir || a.perm & 0o111 != 0;
    }
    let bits = if who.uid == a.uid {
        (a.perm >> 6) & 7
    } else if who.gid == a.gid {
        (a.perm >> 3) & 7
    } else {
        a.perm & 7
    } as i32;
    mask & !bits & 7 == 0
}

/// The kind of request for 0-db-fs's per-kind counters.
fn call_of(opcode: u32) -> Option<Call> {
    Some(match opcode {
        op::GETATTR => Call::Getattr,
        op::SETATTR => Call::Setattr,
        op::CREATE | op::MKNOD => Call::Create,
        op::READDIR | op::READDIRPLUS => Call::Readdir,
        op::OPEN | op::OPENDIR => Call::Open,
        op::READ => Call::Read,
        op::WRITE => Call::Write,
        op::MKDIR => Call::Mkdir,
        op::UNLINK => Call::Unlink,
        op::RMDIR => Call::Rmdir,
        op::RENAME | op::RENAME2 => Call::Rename,
        op::LINK => Call::Link,
        op::SYMLINK => Call::Symlink,
        op::STATFS => Call::Statfs,
        op::IOCTL => Call::Ioctl,
        _ => return None,
    })
}

/// Answer one request (not INIT: the session negotiates that). `fixed` is the request's
/// fixed argument struct, `rest` what follows it; the reply body goes into `out`.
pub fn handle(fs: &Fs, h: &InHeader, fixed: &[u8], rest: &[u8], out: &mut Reply) -> Outcome {
    fs.metrics().count_request(call_of(h.opcode));
    match answer(fs, h, Args::new(fixed), Args::new(rest), out) {
        Ok(o) => o,
        Err(e) => {
            // Misses (ENOENT, ENODATA for absent xattrs) are answers, not failures.
            if e != Errno::ENOENT && e != Errno::ENODATA && e != Errno(libc::ENOSYS) {
                fs.metrics().count_error();
            }
            Outcome::Error(e)
        }
    }
}

fn answer(
    fs: &Fs,
    h: &InHeader,
    mut fixed: Args<'_>,
    mut rest: Args<'_>,
    out: &mut Reply,
) -> FsResult<Outcome> {
    let ino = h.nodeid;
    let who = Caller {
        uid: h.uid,
        gid: h.gid,
    };
    match h.opcode {
        op::LOOKUP => {
            let name = rest.cstr()?;
            match fs.lookup(ino, name) {
                // A miss the kernel may remember (a negative entry): every create goes
                // through it, so the answer stays true until then.
                Err(Errno::ENOENT) => put_entry(out, None),
                r => put_entry(out, Some(&r?)),
            }
        }
        op::FORGET => {
            fs.forget(ino, fixed.u64()?);
            return Ok(Outcome::NoReply);
        }
        op::BATCH_FORGET => {
            let count = fixed.u32()?;
            for _ in 0..count {
                let (Ok(node), Ok(n)) = (rest.u64(), rest.u64()) else {
                    break;
                };
                fs.forget(node, n);
            }
            return Ok(Outcome::NoReply);
        }
        op::GETATTR => {
            put_attr_out(out, &fs.getattr(ino)?);
        }
        op::SETATTR => {
            let valid = fixed.u32()?;
            fixed.skip(4)?;
            let fh = fixed.u64()?;
            let size = fixed.u64()?;
            fixed.skip(8)?; // lock_owner
            let (atime, mtime, ctime) = (fixed.u64()?, fixed.u64()?, fixed.u64()?);
            let (atime_ns, mtime_ns, ctime_ns) = (fixed.u32()?, fixed.u32()?, fixed.u32()?);
            let mode = fixed.u32()?;
            fixed.skip(4)?;
            let (uid, gid) = (fixed.u32()?, fixed.u32()?);
            let on = |bit: u32| valid & bit != 0;
            let set = SetAttr {
                perm: on(fattr::MODE).then_some(mode),
                uid: on(fattr::UID).then_some(uid),
                gid: on(fattr::GID).then_some(gid),
                size: on(fattr::SIZE).then_some(size),
                atime: set_time(valid, fattr::ATIME, fattr::ATIME_NOW, atime, atime_ns),
                mtime: set_time(valid, fattr::MTIME, fattr::MTIME_NOW, mtime, mtime_ns),
                ctime: on(fattr::CTIME).then_some(Ts {
                    secs: ctime as i64,
                    nanos: ctime_ns,
                }),
                // The kernel asks for it (callers without CAP_FSETID) under KILLPRIV_V2.
                kill_suidgid: on(fattr::KILL_SUIDGID),
            };
            put_attr_out(out, &fs.setattr(ino, on(fattr::FH).then_some(fh), set)?);
        }
        op::READLINK => {
            out.bytes(&fs.readlink(ino)?);
        }
        op::MKNOD => {
            let mode = fixed.u32()?;
            let rdev = fixed.u32()?;
            let kind = Kind::from_mode(mode)
                .filter(|k| *k != Kind::Dir && *k != Kind::Symlink)
                .ok_or(Errno::EINVAL)?;
            let name = rest.cstr()?;
            let node = NewNode {
                rdev,
                ..new_node(kind, mode)
            };
            put_entry(out, Some(&fs.create_node(who, ino, name, node)?));
        }
        op::MKDIR => {
            let mode = fixed.u32()?;
            let name = rest.cstr()?;
            let node = new_node(Kind::Dir, mode);
            put_entry(out, Some(&fs.create_node(who, ino, name, node)?));
        }
        op::SYMLINK => {
            let name = rest.cstr()?;
            let target = rest.cstr()?;
            if target.len() > 4096 {
                return Err(Errno::ENAMETOOLONG);
            }
            let node = NewNode {
                target,
                ..new_node(Kind::Symlink, 0o777)
            };
            put_entry(out, Some(&fs.create_node(who, ino, name, node)?));
        }
        op::UNLINK => fs.unlink(ino, rest.cstr()?)?,
        op::RMDIR => fs.rmdir(ino, rest.cstr()?)?,
        op::RENAME | op::RENAME2 => {
            let newdir = fixed.u64()?;
            let flags = if h.opcode == op::RENAME2 {
                fixed.u32()?
            } else {
                0
            };
            let mode = match flags {
                0 => RenameMode::Replace,
                abi::RENAME_NOREPLACE => RenameMode::NoReplace,
                abi::RENAME_EXCHANGE => RenameMode::Exchange,
                _ => return Err(Errno::EINVAL),
            };
            let name = rest.cstr()?;
            let newname = rest.cstr()?;
            fs.rename(ino, name, newdir, newname, mode)?;
        }
        op::LINK => {
            let old = fixed.u64()?;
            let newname = rest.cstr()?;
            put_entry(out, Some(&fs.link(old, ino, newname)?));
        }
        op::OPEN => {
            let flags = fixed.u32()?;
            let fh = fs.open_file(ino, flags as i32)?;
            // The file's pages stay in the kernel's cache across opens (its data only ever
            // changes through this mount, see `TTL`) unless a read must reach us for atime.
            let keep = if fs.keeps_page_cache(ino) {
                abi::FOPEN_KEEP_CACHE
            } else {
                0
            };
            put_open(out, fh, keep);
        }
        op::READ => {
            fixed.skip(8)?;
            let offset = fixed.u64()?;
            let size = fixed.u32()?;
            return Ok(Outcome::Data(fs.read(ino, offset, size)?));
        }
        op::WRITE => {
            let fh = fixed.u64()?;
            let offset = fixed.u64()?;
            let size = fixed.u32()? as usize;
            let write_flags = fixed.u32()?;
            let data = rest.bytes(size)?;
            let kill = write_flags & abi::WRITE_KILL_SUIDGID != 0;
            let n = fs.write(fh, ino, offset, data, kill)?;
            out.u32(n).u32(0);
        }
        op::STATFS => {
            let (total, used, files) = fs.statfs()?;
            let bs = 4096u64;
            let blocks = total / bs;
            let free = blocks.saturating_sub(used.div_ceil(bs));
            let max_files = 1u64 << 32;
            out.u64(blocks).u64(free).u64(free);
            out.u64(max_files).u64(max_files.saturating_sub(files));
            out.u32(bs as u32)
                .u32(NAME_MAX as u32)
                .u32(bs as u32)
                .u32(0);
            out.bytes(&[0; 24]);
        }
        op::RELEASE => fs.release(fixed.u64()?)?,
        // Nothing to do on close(2) itself (release stores the file; dirty pages of the
        // writeback cache are written before any FLUSH): ENOSYS makes the kernel stop
        // sending FLUSH, one round trip less per close.
        op::FLUSH => return Err(Errno(libc::ENOSYS)),
        op::FSYNC | op::FSYNCDIR => fs.fsync()?,
        op::SETXATTR => {
            let size = fixed.u32()? as usize;
            let flags = fixed.u32()?;
            let name = rest.cstr()?;
            let value = rest.bytes(size)?;
            fs.setxattr(ino, name, value, flags as i32)?;
        }
        op::GETXATTR | op::LISTXATTR => {
            let size = fixed.u32()? as usize;
            let v = if h.opcode == op::GETXATTR {
                fs.getxattr(ino, rest.cstr()?)?
            } else {
                fs.listxattr(ino)?
            };
            if size == 0 {
                out.u32(v.len() as u32).u32(0);
            } else if v.len() > size {
                return Err(Errno::ERANGE);
            } else {
                out.bytes(&v);
            }
        }
        op::REMOVEXATTR => fs.removexattr(ino, rest.cstr()?)?,
        op::OPENDIR => {
            // The kernel may keep the listing across opens: it drops it itself whenever the
            // directory changes, and every change comes through it (see `TTL`). It may also
            // build one listing from the READDIRs of several handles, so an offset must name
            // the same entry in every handle's snapshot of an unchanged directory: it does,
            // since snapshots follow the in-memory buckets' order, and a directory stays in
            // memory while the kernel holds its inode (`State::try_evict`).
            let fh = fs.opendir(ino)?;
            put_open(out, fh, abi::FOPEN_CACHE_DIR | abi::FOPEN_KEEP_CACHE);
        }
        op::READDIR | op::READDIRPLUS => {
            let fh = fixed.u64()?;
            let offset = fixed.u64()?;
            let size = fixed.u32()? as usize;
            readdir(fs, h.opcode == op::READDIRPLUS, fh, offset, size, out)?;
        }
        op::RELEASEDIR => fs.releasedir(fixed.u64()?),
        op::ACCESS => {
            let mask = fixed.u32()? as i32;
            if !access_ok(&fs.getattr(ino)?, who, mask) {
                return Err(Errno::EACCES);
            }
        }
        op::CREATE => {
            let flags = fixed.u32()?;
            let mode = fixed.u32()?;
            let name = rest.cstr()?;
            let node = new_node(Kind::File, mode);
            let a = fs.create_node(who, ino, name, node)?;
            let fh = fs.open_created(a.ino, flags as i32)?;
            put_entry(out, Some(&a));
            put_open(out, fh, 0);
        }
        op::IOCTL => ioctl(fs, &mut fixed, out)?,
        op::FALLOCATE => {
            fixed.skip(8)?;
            let offset = fixed.u64()?;
            let length = fixed.u64()?;
            let mode = fixed.u32()? as i32;
            fs.fallocate(ino, offset, length, mode)?;
            // A modification like a write: with KILLPRIV_V2 the set-id bits are ours to
            // clear, for callers without CAP_FSETID (approximated by "not root": FALLOCATE
            // carries no flag for it).
            if mode != libc::FALLOC_FL_KEEP_SIZE && h.uid != 0 {
                fs.kill_suidgid(ino)?;
            }
        }
        op::LSEEK => {
            fixed.skip(8)?;
            let offset = fixed.u64()? as i64;
            let whence = fixed.u32()? as i32;
            let data = match whence {
                libc::SEEK_DATA => true,
                libc::SEEK_HOLE => false,
                _ => return Err(Errno::EINVAL),
            };
            let offset = u64::try_from(offset).map_err(|_| Errno(libc::ENXIO))?;
            out.u64(fs.seek_data_hole(ino, offset, data)?);
        }
        // The kernel never waits on a request this server has not answered yet for long:
        // an interrupt changes nothing; the request's own answer follows.
        op::INTERRUPT => return Ok(Outcome::NoReply),
        op::DESTROY => {}
        _ => return Err(Errno(libc::ENOSYS)),
    }
    Ok(Outcome::Reply)
}

/// READDIR / READDIRPLUS: as many entries from `offset` as fit in `size` bytes.
fn readdir(
    fs: &Fs,
    plus: bool,
    fh: u64,
    offset: u64,
    size: usize,
    out: &mut Reply,
) -> FsResult<()> {
    let start = out.len();
    // Whether an entry of `len` bytes still fits (the kernel's buffer is `size` bytes).
    let fits = |out: &Reply, name_len: usize, head: usize| {
        out.len() - start + (head + name_len).next_multiple_of(8) <= size
    };
    let dirent = |out: &mut Reply, ino: u64, off: u64, kind: Kind, name: &[u8]| {
        out.u64(ino)
            .u64(off)
            .u32(name.len() as u32)
            .u32(kind.ifmt() >> 12);
        out.bytes(name).align8();
    };
    if plus {
        fs.readdirplus(fh, offset, |off, item, attr| {
            if !fits(out, item.name.len(), 128 + 24) {
                return true;
            }
            put_entry(out, Some(attr));
            dirent(out, item.ino, off, item.kind, &item.name);
            false
        })
    } else {
        fs.readdir(fh, offset, |off, item| {
            if !fits(out, item.name.len(), 24) {
                return true;
            }
            dirent(out, item.ino, off, item.kind, &item.name);
            false
        })
    }
}

/// 0-db-fs's ioctls (see [`crate::ioctl`]); `fuse_ioctl_out` then the data.
fn ioctl(fs: &Fs, fixed: &mut Args<'_>, out: &mut Reply) -> FsResult<()> {
    fixed.skip(12)?; // fh, flags
    let cmd = fixed.u32()?;
    let data = match cmd {
        crate::ioctl::IOCTL_STATISTICS => {
            crate::ioctl::encode_stats(&fs.metrics().snapshot(), fs.cached_blocks() as u64, BLOCK)
                .to_vec()
        }
        crate::ioctl::IOCTL_SNAPSHOT => {
            fs.flush_all(true).map_err(Errno::from)?;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            now.to_ne_bytes().to_vec()
        }
        _ => return Err(Errno::EINVAL),
    };
    out.u32(0).u32(0).u32(0).u32(0).bytes(&data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsConfig;
    use crate::store::{EngineStore, Store};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The opcodes this server answers, and a few it does not.
    const OPCODES: &[u32] = &[
        op::LOOKUP,
        op::FORGET,
        op::GETATTR,
        op::SETATTR,
        op::READLINK,
        op::SYMLINK,
        op::MKNOD,
        op::MKDIR,
        op::UNLINK,
        op::RMDIR,
        op::RENAME,
        op::LINK,
        op::OPEN,
        op::READ,
        op::WRITE,
        op::STATFS,
        op::RELEASE,
        op::FSYNC,
        op::SETXATTR,
        op::GETXATTR,
        op::LISTXATTR,
        op::REMOVEXATTR,
        op::FLUSH,
        op::OPENDIR,
        op::READDIR,
        op::RELEASEDIR,
        op::FSYNCDIR,
        op::ACCESS,
        op::CREATE,
        op::INTERRUPT,
        op::IOCTL,
        op::BATCH_FORGET,
        op::FALLOCATE,
        op::READDIRPLUS,
        op::RENAME2,
        op::LSEEK,
        31,
        47,
        52,
        9999,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Requests with arbitrary arguments (what a confused or hostile peer could send)
        /// get an answer or an errno; no handler panics, and the tree stays usable.
        #[test]
        fn arbitrary_requests_get_an_answer_or_an_errno(
            requests in proptest::collection::vec(
                (proptest::sample::select(OPCODES), 0u64..6, 0u32..3,
                 proptest::collection::vec(any::<u8>(), 0..96),
                 proptest::collection::vec(any::<u8>(), 0..64)),
                1..40,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn Store> = Arc::new(EngineStore::open(dir.path()).unwrap());
            let fs = Fs::open(store, FsConfig::default()).unwrap();
            let mut out = Reply::default();
            for (opcode, nodeid, uid, fixed, rest) in requests {
                let h = InHeader { opcode, unique: 1, nodeid, uid: uid * 1000, gid: 0 };
                out.0.clear();
                match handle(&fs, &h, &fixed, &rest, &mut out) {
                    Outcome::Error(e) => prop_assert!(e.0 > 0, "errno {}", e.0),
                    Outcome::Reply | Outcome::Data(_) | Outcome::NoReply => {}
                }
            }
            prop_assert!(fs.getattr(1).is_ok(), "the root is still there");
            fs.shutdown().unwrap();
        }
    }
}
