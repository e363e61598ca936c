//! Request handlers: [`handle`] decodes a request once into a typed [`Operation`]
//! ([`abi::request`]), dispatches it to one handler per operation, and each handler calls
//! [`Fs`] and encodes the reply body. Transport-neutral: `/dev/fuse` and io_uring both hand
//! a request here as its header, its fixed argument struct and the rest (names, data).
//! Permission checks are the kernel's (`default_permissions`); `access` is answered here too.
//!
//! Owns: what each operation means for [`Fs`], the reply bodies, the kernel's cache
//! lifetimes and the per-kind request counters. Must not touch: request bytes (handlers see
//! typed arguments only; layouts and decoding are [`abi`]'s), the transports, the
//! filesystem model beyond [`Fs`]'s public calls.

use super::abi::request::Forgets;
use super::abi::structs::{
    AccessIn, CreateIn, FallocateIn, ForgetIn, GetxattrIn, IoctlIn, LinkIn, LseekIn, MkdirIn,
    MknodIn, OpenIn, ReadIn, ReleaseIn, SetattrIn, WriteIn,
};
use super::abi::{self, fattr, op, InHeader, Operation, Reply};
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
    Error(Errno),
    /// FORGET and friends: the kernel expects no answer.
    NoReply,
}

impl Outcome {
    /// The reply's error (0 or a negative errno) and body; `None` when none is due.
    pub fn reply<'a>(&'a self, out: &'a Reply) -> Option<(i32, &'a [u8])> {
        match self {
            Outcome::Reply => Some((0, &out.0)),
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
    let answer = Operation::decode(h.opcode, fixed, rest).and_then(|op| dispatch(fs, h, op, out));
    match answer {
        Ok(o) => o,
        Err(e) => {
            fs.metrics().count_errno(e.0);
            Outcome::Error(e)
        }
    }
}

/// One arm per operation: the handler that answers it.
fn dispatch(fs: &Fs, h: &InHeader, op: Operation<'_>, out: &mut Reply) -> FsResult<Outcome> {
    use Operation as O;
    let ino = h.nodeid;
    let who = Caller {
        uid: h.uid,
        gid: h.gid,
    };
    match op {
        O::Lookup { name } => lookup(fs, ino, name, out),
        O::Forget(arg) => forget(fs, ino, arg),
        O::BatchForget(nodes) => batch_forget(fs, nodes),
        O::Getattr => getattr(fs, ino, out),
        O::Setattr(arg) => setattr(fs, ino, &arg, out),
        O::Readlink => readlink(fs, ino, out),
        O::Symlink { name, target } => symlink(fs, who, ino, name, target, out),
        O::Mknod { arg, name } => mknod(fs, who, ino, arg, name, out),
        O::Mkdir { arg, name } => mkdir(fs, who, ino, arg, name, out),
        O::Unlink { name } => replied(fs.unlink(ino, name)),
        O::Rmdir { name } => replied(fs.rmdir(ino, name)),
        O::Rename { arg, name, newname } => rename(fs, ino, arg.newdir, 0, name, newname),
        O::Rename2 { arg, name, newname } => rename(fs, ino, arg.newdir, arg.flags, name, newname),
        O::Link { arg, newname } => link(fs, ino, arg, newname, out),
        O::Open(arg) => open(fs, ino, arg, out),
        O::Read(arg) => read(fs, ino, arg, out),
        O::Write { arg, data } => write(fs, ino, arg, data, out),
        O::Statfs => statfs(fs, out),
        O::Release(arg) => replied(fs.release(arg.fh)),
        // Nothing to do on close(2) itself (release stores the file; dirty pages of the
        // writeback cache are written before any FLUSH): ENOSYS makes the kernel stop
        // sending FLUSH, one round trip less per close.
        O::Flush => Err(Errno(libc::ENOSYS)),
        O::Fsync | O::Fsyncdir => replied(fs.fsync()),
        O::Setxattr { arg, name, value } => {
            replied(fs.setxattr(ino, name, value, arg.flags as i32))
        }
        O::Getxattr { arg, name } => xattr_reply(fs.getxattr(ino, name)?, arg, out),
        O::Listxattr(arg) => xattr_reply(fs.listxattr(ino)?, arg, out),
        O::Removexattr { name } => replied(fs.removexattr(ino, name)),
        O::Opendir => opendir(fs, ino, out),
        O::Readdir(arg) => readdir(fs, false, arg, out),
        O::Readdirplus(arg) => readdir(fs, true, arg, out),
        O::Releasedir(arg) => releasedir(fs, arg),
        O::Access(arg) => access(fs, who, ino, arg),
        O::Create { arg, name } => create(fs, who, ino, arg, name, out),
        O::Ioctl(arg) => ioctl(fs, arg, out),
        O::Fallocate(arg) => fallocate(fs, who, ino, arg),
        O::Lseek(arg) => lseek(fs, ino, arg, out),
        // The kernel never waits on a request this server has not answered yet for long:
        // an interrupt changes nothing; the request's own answer follows.
        O::Interrupt => Ok(Outcome::NoReply),
        O::Destroy => Ok(Outcome::Reply),
        O::Unknown(_) => Err(Errno(libc::ENOSYS)),
    }
}

/// A call whose answer is an empty reply.
fn replied(r: FsResult<()>) -> FsResult<Outcome> {
    r.map(|()| Outcome::Reply)
}

fn lookup(fs: &Fs, ino: u64, name: &[u8], out: &mut Reply) -> FsResult<Outcome> {
    match fs.lookup(ino, name) {
        // A miss the kernel may remember (a negative entry): every create goes through it,
        // so the answer stays true until then.
        Err(Errno::ENOENT) => put_entry(out, None),
        r => put_entry(out, Some(&r?)),
    }
    Ok(Outcome::Reply)
}

fn forget(fs: &Fs, ino: u64, arg: ForgetIn) -> FsResult<Outcome> {
    fs.forget(ino, arg.nlookup);
    Ok(Outcome::NoReply)
}

fn batch_forget(fs: &Fs, nodes: Forgets<'_>) -> FsResult<Outcome> {
    for one in nodes {
        fs.forget(one.nodeid, one.nlookup);
    }
    Ok(Outcome::NoReply)
}

fn getattr(fs: &Fs, ino: u64, out: &mut Reply) -> FsResult<Outcome> {
    put_attr_out(out, &fs.getattr(ino)?);
    Ok(Outcome::Reply)
}

fn setattr(fs: &Fs, ino: u64, a: &SetattrIn, out: &mut Reply) -> FsResult<Outcome> {
    let valid = a.valid;
    let on = |bit: u32| valid & bit != 0;
    let set = SetAttr {
        perm: on(fattr::MODE).then_some(a.mode),
        uid: on(fattr::UID).then_some(a.uid),
        gid: on(fattr::GID).then_some(a.gid),
        size: on(fattr::SIZE).then_some(a.size),
        atime: set_time(valid, fattr::ATIME, fattr::ATIME_NOW, a.atime, a.atimensec),
        mtime: set_time(valid, fattr::MTIME, fattr::MTIME_NOW, a.mtime, a.mtimensec),
        ctime: on(fattr::CTIME).then_some(Ts {
            secs: a.ctime as i64,
            nanos: a.ctimensec,
        }),
        // The kernel asks for it (callers without CAP_FSETID) under KILLPRIV_V2.
        kill_suidgid: on(fattr::KILL_SUIDGID),
    };
    put_attr_out(out, &fs.setattr(ino, on(fattr::FH).then_some(a.fh), set)?);
    Ok(Outcome::Reply)
}

fn readlink(fs: &Fs, ino: u64, out: &mut Reply) -> FsResult<Outcome> {
    out.bytes(&fs.readlink(ino)?);
    Ok(Outcome::Reply)
}

/// Create a node and answer with its entry.
fn new_entry(
    fs: &Fs,
    who: Caller,
    parent: u64,
    name: &[u8],
    node: NewNode<'_>,
    out: &mut Reply,
) -> FsResult<Outcome> {
    put_entry(out, Some(&fs.create_node(who, parent, name, node)?));
    Ok(Outcome::Reply)
}

fn symlink(
    fs: &Fs,
    who: Caller,
    ino: u64,
    name: &[u8],
    target: &[u8],
    out: &mut Reply,
) -> FsResult<Outcome> {
    if target.len() > 4096 {
        return Err(Errno::ENAMETOOLONG);
    }
    let node = NewNode {
        target,
        ..new_node(Kind::Symlink, 0o777)
    };
    new_entry(fs, who, ino, name, node, out)
}

fn mknod(
    fs: &Fs,
    who: Caller,
    ino: u64,
    arg: MknodIn,
    name: &[u8],
    out: &mut Reply,
) -> FsResult<Outcome> {
    let kind = Kind::from_mode(arg.mode)
        .filter(|k| *k != Kind::Dir && *k != Kind::Symlink)
        .ok_or(Errno::EINVAL)?;
    let node = NewNode {
        rdev: arg.rdev,
        ..new_node(kind, arg.mode)
    };
    new_entry(fs, who, ino, name, node, out)
}

fn mkdir(
    fs: &Fs,
    who: Caller,
    ino: u64,
    arg: MkdirIn,
    name: &[u8],
    out: &mut Reply,
) -> FsResult<Outcome> {
    new_entry(fs, who, ino, name, new_node(Kind::Dir, arg.mode), out)
}

fn rename(
    fs: &Fs,
    ino: u64,
    newdir: u64,
    flags: u32,
    name: &[u8],
    newname: &[u8],
) -> FsResult<Outcome> {
    let mode = match flags {
        0 => RenameMode::Replace,
        abi::RENAME_NOREPLACE => RenameMode::NoReplace,
        abi::RENAME_EXCHANGE => RenameMode::Exchange,
        _ => return Err(Errno::EINVAL),
    };
    replied(fs.rename(ino, name, newdir, newname, mode))
}

fn link(fs: &Fs, ino: u64, arg: LinkIn, newname: &[u8], out: &mut Reply) -> FsResult<Outcome> {
    put_entry(out, Some(&fs.link(arg.oldnodeid, ino, newname)?));
    Ok(Outcome::Reply)
}

fn open(fs: &Fs, ino: u64, arg: OpenIn, out: &mut Reply) -> FsResult<Outcome> {
    let fh = fs.open_file(ino, arg.flags as i32)?;
    // The file's pages stay in the kernel's cache across opens (its data only ever changes
    // through this mount, see `TTL`) unless a read must reach us for atime.
    let keep = if fs.keeps_page_cache(ino) {
        abi::FOPEN_KEEP_CACHE
    } else {
        0
    };
    put_open(out, fh, keep);
    Ok(Outcome::Reply)
}

fn read(fs: &Fs, ino: u64, arg: ReadIn, out: &mut Reply) -> FsResult<Outcome> {
    fs.read_into(ino, arg.offset, arg.size, &mut out.0)?;
    Ok(Outcome::Reply)
}

fn write(fs: &Fs, ino: u64, arg: WriteIn, data: &[u8], out: &mut Reply) -> FsResult<Outcome> {
    let kill = arg.write_flags & abi::WRITE_KILL_SUIDGID != 0;
    let n = fs.write(arg.fh, ino, arg.offset, data, kill)?;
    out.u32(n).u32(0);
    Ok(Outcome::Reply)
}

/// `fuse_statfs_out`.
fn statfs(fs: &Fs, out: &mut Reply) -> FsResult<Outcome> {
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
    Ok(Outcome::Reply)
}

/// GETXATTR / LISTXATTR: the value, or its size when the caller asks for that (size 0).
fn xattr_reply(v: Vec<u8>, arg: GetxattrIn, out: &mut Reply) -> FsResult<Outcome> {
    let size = arg.size as usize;
    if size == 0 {
        out.u32(v.len() as u32).u32(0);
    } else if v.len() > size {
        return Err(Errno::ERANGE);
    } else {
        out.bytes(&v);
    }
    Ok(Outcome::Reply)
}

fn opendir(fs: &Fs, ino: u64, out: &mut Reply) -> FsResult<Outcome> {
    // The kernel may keep the listing across opens: it drops it itself whenever the
    // directory changes, and every change comes through it (see `TTL`). It may also build
    // one listing from the READDIRs of several handles, so an offset must name the same
    // entry in every handle's snapshot of an unchanged directory: it does, since snapshots
    // follow the in-memory buckets' order, and a directory stays in memory while the kernel
    // holds its inode (`State::try_evict`).
    let fh = fs.opendir(ino)?;
    put_open(out, fh, abi::FOPEN_CACHE_DIR | abi::FOPEN_KEEP_CACHE);
    Ok(Outcome::Reply)
}

fn releasedir(fs: &Fs, arg: ReleaseIn) -> FsResult<Outcome> {
    fs.releasedir(arg.fh);
    Ok(Outcome::Reply)
}

fn access(fs: &Fs, who: Caller, ino: u64, arg: AccessIn) -> FsResult<Outcome> {
    if !access_ok(&fs.getattr(ino)?, who, arg.mask as i32) {
        return Err(Errno::EACCES);
    }
    Ok(Outcome::Reply)
}

fn create(
    fs: &Fs,
    who: Caller,
    ino: u64,
    arg: CreateIn,
    name: &[u8],
    out: &mut Reply,
) -> FsResult<Outcome> {
    let node = new_node(Kind::File, arg.mode);
    let a = fs.create_node(who, ino, name, node)?;
    let fh = fs.open_created(a.ino, arg.flags as i32)?;
    put_entry(out, Some(&a));
    put_open(out, fh, 0);
    Ok(Outcome::Reply)
}

fn fallocate(fs: &Fs, who: Caller, ino: u64, arg: FallocateIn) -> FsResult<Outcome> {
    let mode = arg.mode as i32;
    fs.fallocate(ino, arg.offset, arg.length, mode)?;
    // A modification like a write: with KILLPRIV_V2 the set-id bits are ours to clear, for
    // callers without CAP_FSETID (approximated by "not root": FALLOCATE carries no flag for
    // it).
    if mode != libc::FALLOC_FL_KEEP_SIZE && who.uid != 0 {
        fs.kill_suidgid(ino)?;
    }
    Ok(Outcome::Reply)
}

fn lseek(fs: &Fs, ino: u64, arg: LseekIn, out: &mut Reply) -> FsResult<Outcome> {
    let data = match arg.whence as i32 {
        libc::SEEK_DATA => true,
        libc::SEEK_HOLE => false,
        _ => return Err(Errno::EINVAL),
    };
    let offset = u64::try_from(arg.offset as i64).map_err(|_| Errno(libc::ENXIO))?;
    out.u64(fs.seek_data_hole(ino, offset, data)?);
    Ok(Outcome::Reply)
}

/// READDIR / READDIRPLUS: as many entries from `offset` as fit in `size` bytes.
fn readdir(fs: &Fs, plus: bool, arg: ReadIn, out: &mut Reply) -> FsResult<Outcome> {
    let (fh, offset, size) = (arg.fh, arg.offset, arg.size as usize);
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
    let listed = if plus {
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
    };
    replied(listed)
}

/// 0-db-fs's ioctls (see [`crate::ioctl`]); `fuse_ioctl_out` then the data.
fn ioctl(fs: &Fs, arg: IoctlIn, out: &mut Reply) -> FsResult<Outcome> {
    let data = match arg.cmd {
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
    Ok(Outcome::Reply)
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
                    Outcome::Reply | Outcome::NoReply => {}
                }
            }
            prop_assert!(fs.getattr(1).is_ok(), "the root is still there");
            fs.shutdown().unwrap();
        }
    }
}
