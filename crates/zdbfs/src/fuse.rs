//! The `fuser` adapter: translates kernel requests into [`Fs`] calls and errnos back.
//! Permission checks are the kernel's (`default_permissions`); `access` is answered here too.

use crate::error::{Errno, FsResult};
use crate::fs::{Attr, Caller, Fs, NewNode, RenameMode, SetAttr};
use crate::inode::{Kind, Ts, BLOCK, NAME_MAX};
use crate::metrics::Call;
use fuser::{
    AccessFlags, BsdFileFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long the kernel may cache attributes and entries, negative ones included. Every
/// change to the tree goes through this mount (the namespaces are this server's alone,
/// `Fs::open` takes a lock), and the kernel updates or drops what it cached on each of its
/// own requests, so the cache cannot go stale; the timeout only bounds how long an entry
/// stays without being asked again.
const TTL: Duration = Duration::from_secs(60);

/// The FUSE face of a filesystem.
pub struct ZdbFuse {
    fs: Arc<Fs>,
}

impl ZdbFuse {
    pub fn new(fs: Arc<Fs>) -> Self {
        ZdbFuse { fs }
    }

    /// Every request starts here: counted, by kind where 0-db-fs counts that kind.
    fn arrived(&self, call: Option<Call>) {
        self.fs.metrics().count_request(call);
    }

    fn errno(&self, e: Errno) -> fuser::Errno {
        // Misses (ENOENT, ENODATA for absent xattrs) are answers, not failures.
        if e != Errno::ENOENT && e != Errno::ENODATA {
            self.fs.metrics().count_error();
        }
        fuser::Errno::from_i32(e.0)
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDev => FileType::CharDevice,
        Kind::BlockDev => FileType::BlockDevice,
    }
}

/// The attributes of a negative entry: only the node id (0) matters to the kernel.
fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

fn to_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime.to_system(),
        mtime: a.mtime.to_system(),
        ctime: a.ctime.to_system(),
        crtime: a.ctime.to_system(),
        kind: file_type(a.kind),
        perm: a.perm as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: BLOCK as u32,
        flags: 0,
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn time(t: Option<TimeOrNow>) -> Option<Option<Ts>> {
    t.map(|t| match t {
        TimeOrNow::SpecificTime(s) => Some(Ts::from_system(s)),
        TimeOrNow::Now => None,
    })
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

impl ZdbFuse {
    fn entry(&self, r: FsResult<Attr>, reply: ReplyEntry) {
        match r {
            Ok(a) => reply.entry(&TTL, &to_attr(&a), Generation(0)),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn empty(&self, r: FsResult<()>, reply: ReplyEmpty) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn node(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        node: NewNode<'_>,
        reply: ReplyEntry,
    ) {
        let r = self
            .fs
            .create_node(caller(req), parent.0, name.as_bytes(), node);
        self.entry(r, reply)
    }
}

impl Filesystem for ZdbFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_time_granularity(Duration::from_nanos(1));
        // The kernel's writeback cache: writes land in the page cache and reach us as large
        // WRITEs; close and fsync still write the dirty pages back before they return.
        let wb = self.fs.config.writeback_cache
            && config
                .add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE)
                .is_ok();
        self.fs.set_kernel_writeback(wb);
        let wanted = [
            // We clear set-id bits and file capabilities ourselves (on write, truncate,
            // chown): the kernel then marks the superblock SB_NOSEC and stops asking for
            // security.capability before every write.
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
            // A symlink's target never changes (a new target is a new inode): the kernel
            // may keep it instead of asking on every path walk through the link.
            InitFlags::FUSE_CACHE_SYMLINKS,
            // Lookups and listings in one directory may run in parallel (each call takes
            // the filesystem lock for its whole length anyway): concurrent callers then
            // overlap their round trips instead of queueing on the kernel's directory lock.
            InitFlags::FUSE_PARALLEL_DIROPS,
            // Directory listings carry the entries' attributes when the kernel expects them
            // to be used (`ls -l`, `find`, `du`): no LOOKUP per entry afterwards.
            InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO,
        ];
        for flags in wanted {
            // Each is an optimisation: an older kernel without it is served all the same.
            if let Err(missing) = config.add_capabilities(flags) {
                tracing::info!(?missing, "kernel lacks a FUSE capability");
            }
        }
        tracing::info!(writeback_cache = wb, "FUSE session initialised");
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.fs.shutdown() {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.arrived(None);
        match self.fs.lookup(parent.0, name.as_bytes()) {
            // A miss the kernel may remember (node id 0 = a negative entry with a timeout):
            // every create goes through it, so the answer stays true until then.
            Err(Errno::ENOENT) => reply.entry(&TTL, &negative_attr(), Generation(0)),
            r => self.entry(r, reply),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.arrived(None);
        self.fs.forget(ino.0, nlookup)
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.arrived(Some(Call::Getattr));
        match self.fs.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &to_attr(&a)),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.arrived(Some(Call::Setattr));
        let set = SetAttr {
            perm: mode,
            uid,
            gid,
            size,
            atime: time(atime),
            mtime: time(mtime),
            ctime: ctime.map(Ts::from_system),
            // FATTR_KILL_SUIDGID is not passed on by fuser; the kernel sets it for callers
            // without CAP_FSETID, approximated here by "not root".
            kill_suidgid: size.is_some() && req.uid() != 0,
        };
        match self.fs.setattr(ino.0, fh.map(|f| f.0), set) {
            Ok(a) => reply.attr(&TTL, &to_attr(&a)),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.arrived(None);
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.arrived(Some(Call::Create));
        let Some(kind) = Kind::from_mode(mode).filter(|k| *k != Kind::Dir && *k != Kind::Symlink)
        else {
            return reply.error(fuser::Errno::EINVAL);
        };
        let node = NewNode {
            kind,
            perm: mode,
            rdev,
            target: b"",
        };
        self.node(req, parent, name, node, reply)
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.arrived(Some(Call::Mkdir));
        let node = NewNode {
            kind: Kind::Dir,
            perm: mode,
            rdev: 0,
            target: b"",
        };
        self.node(req, parent, name, node, reply)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(Some(Call::Unlink));
        self.empty(self.fs.unlink(parent.0, name.as_bytes()), reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(Some(Call::Rmdir));
        self.empty(self.fs.rmdir(parent.0, name.as_bytes()), reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.arrived(Some(Call::Symlink));
        let t = target.as_os_str().as_bytes();
        if t.len() > 4096 {
            return reply.error(fuser::Errno::ENAMETOOLONG);
        }
        let node = NewNode {
            kind: Kind::Symlink,
            perm: 0o777,
            rdev: 0,
            target: t,
        };
        self.node(req, parent, link_name, node, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.arrived(Some(Call::Rename));
        let mode = if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            RenameMode::Exchange
        } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            RenameMode::NoReplace
        } else if flags.is_empty() {
            RenameMode::Replace
        } else {
            return reply.error(fuser::Errno::EINVAL);
        };
        let r = self.fs.rename(
            parent.0,
            name.as_bytes(),
            newparent.0,
            newname.as_bytes(),
            mode,
        );
        self.empty(r, reply)
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.arrived(Some(Call::Link));
        self.entry(self.fs.link(ino.0, newparent.0, newname.as_bytes()), reply)
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.arrived(Some(Call::Open));
        match self.fs.open_file(ino.0, flags.0) {
            // The file's pages stay in the kernel's cache across opens (its data only ever
            // changes through this mount, see `TTL`) unless a read must reach us for atime.
            Ok(fh) if self.fs.keeps_page_cache(ino.0) => {
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.arrived(Some(Call::Read));
        match self.fs.read(ino.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.arrived(Some(Call::Write));
        let kill = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        match self.fs.write(fh.0, ino.0, offset, data, kill) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        // Nothing to do on close(2) itself (release stores the file; dirty pages of the
        // writeback cache are written before any FLUSH): ENOSYS makes the kernel stop sending
        // FLUSH, one round trip less per close.
        reply.error(fuser::Errno::ENOSYS)
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        self.empty(self.fs.release(fh.0), reply)
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        self.empty(self.fs.fsync(), reply)
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.arrived(Some(Call::Open));
        match self.fs.opendir(ino.0) {
            // The kernel may keep the listing across opens: it drops it itself whenever the
            // directory changes, and every change comes through it (see `TTL`). It may also
            // build one listing from the READDIRs of several handles, so an offset must name
            // the same entry in every handle's snapshot of an unchanged directory: it does,
            // since snapshots follow the in-memory buckets' order, and a directory stays in
            // memory while the kernel holds its inode (`State::try_evict`).
            Ok(fh) => reply.opened(
                FileHandle(fh),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.arrived(Some(Call::Readdir));
        let r = self.fs.readdir(fh.0, offset, |off, item| {
            reply.add(
                INodeNo(item.ino),
                off,
                file_type(item.kind),
                OsStr::from_bytes(&item.name),
            )
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.arrived(Some(Call::Readdir));
        let r = self.fs.readdirplus(fh.0, offset, |off, item, attr| {
            reply.add(
                INodeNo(item.ino),
                off,
                OsStr::from_bytes(&item.name),
                &TTL,
                &to_attr(attr),
                Generation(0),
            )
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        self.fs.releasedir(fh.0);
        reply.ok()
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        self.empty(self.fs.fsync(), reply)
    }

    /// 0-db-fs's ioctls (see [`crate::ioctl`]).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        self.arrived(Some(Call::Ioctl));
        match cmd {
            crate::ioctl::IOCTL_STATISTICS => {
                let stats = crate::ioctl::encode_stats(
                    &self.fs.metrics().snapshot(),
                    self.fs.cached_blocks() as u64,
                    BLOCK,
                );
                reply.ioctl(0, &stats)
            }
            crate::ioctl::IOCTL_SNAPSHOT => match self.fs.flush_all(true) {
                Ok(()) => {
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    reply.ioctl(0, &now.to_ne_bytes())
                }
                Err(e) => reply.error(self.errno(e.into())),
            },
            _ => reply.error(fuser::Errno::EINVAL),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.arrived(Some(Call::Statfs));
        match self.fs.statfs() {
            Ok((total, used, files)) => {
                let bs = 4096u64;
                let blocks = total / bs;
                let free = blocks.saturating_sub(used.div_ceil(bs));
                let max_files = 1u64 << 32;
                reply.statfs(
                    blocks,
                    free,
                    free,
                    max_files,
                    max_files.saturating_sub(files),
                    bs as u32,
                    NAME_MAX as u32,
                    bs as u32,
                )
            }
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        self.empty(
            self.fs.setxattr(ino.0, name.as_bytes(), value, flags),
            reply,
        )
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.arrived(None);
        match self.fs.getxattr(ino.0, name.as_bytes()) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(fuser::Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.arrived(None);
        match self.fs.listxattr(ino.0) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(fuser::Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(None);
        self.empty(self.fs.removexattr(ino.0, name.as_bytes()), reply)
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.arrived(None);
        let r = self
            .fs
            .fallocate(ino.0, offset, length, mode)
            .and_then(|()| {
                // A modification like a write: with KILLPRIV_V2 the set-id bits are ours to
                // clear, for callers without CAP_FSETID (approximated by "not root").
                if mode != libc::FALLOC_FL_KEEP_SIZE && req.uid() != 0 {
                    self.fs.kill_suidgid(ino.0)?;
                }
                Ok(())
            });
        self.empty(r, reply)
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.arrived(None);
        let data = match whence {
            libc::SEEK_DATA => true,
            libc::SEEK_HOLE => false,
            _ => return reply.error(fuser::Errno::EINVAL),
        };
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(fuser::Errno::ENXIO);
        };
        match self.fs.seek_data_hole(ino.0, offset, data) {
            Ok(o) => reply.offset(o as i64),
            Err(e) => reply.error(self.errno(e)),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.arrived(None);
        let r = self.fs.getattr(ino.0).and_then(|a| {
            if access_ok(&a, caller(req), mask.bits()) {
                Ok(())
            } else {
                Err(Errno::EACCES)
            }
        });
        self.empty(r, reply)
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.arrived(Some(Call::Create));
        let node = NewNode {
            kind: Kind::File,
            perm: mode,
            rdev: 0,
            target: b"",
        };
        let r = self
            .fs
            .create_node(caller(req), parent.0, name.as_bytes(), node)
            .and_then(|a| Ok((a, self.fs.open_created(a.ino, flags)?)));
        match r {
            Ok((a, fh)) => reply.created(
                &TTL,
                &to_attr(&a),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(self.errno(e)),
        }
    }
}
