//! Namespace operations: lookup, creating every kind of inode, unlink, rmdir, rename (with
//! RENAME_NOREPLACE and RENAME_EXCHANGE), link, symlinks, setattr and directory listing.

use super::{Attr, Caller, DirItem, Fs, Handle, State, ROOT};
use crate::error::{Errno, FsResult};
use crate::inode::{Inode, Kind, Ts, MAX_FILE_SIZE, NAME_MAX};
use crate::record::{self, Dirent};
use crate::store::{Ns, Store};

/// What to create.
#[derive(Debug, Clone)]
pub struct NewNode<'a> {
    pub kind: Kind,
    pub perm: u32,
    pub rdev: u32,
    pub target: &'a [u8],
}

/// Which attributes a setattr changes.
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    /// `Some(None)` means "now".
    pub atime: Option<Option<Ts>>,
    pub mtime: Option<Option<Ts>>,
    pub ctime: Option<Ts>,
    /// Clear set-user-id (and set-group-id when group-executable) with a size change: the
    /// kernel leaves that to us once FUSE_HANDLE_KILLPRIV_V2 is negotiated.
    pub kill_suidgid: bool,
}

/// How a rename behaves when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    Replace,
    NoReplace,
    Exchange,
}

pub(crate) fn check_name(name: &[u8]) -> FsResult<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl State {
    fn lookup_in(&mut self, store: &dyn Store, parent: u64, name: &[u8]) -> FsResult<Dirent> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if name == b"." {
            let k = self.inode(store, parent)?.kind;
            return Ok(Dirent {
                ino: parent,
                kind: k,
            });
        }
        if name == b".." {
            let p = self.inode(store, parent)?.parent;
            return Ok(Dirent {
                ino: if p == 0 { ROOT } else { p },
                kind: Kind::Dir,
            });
        }
        self.dir(store, parent)?.get(name).ok_or(Errno::ENOENT)
    }

    /// Add `name → e` to directory `parent`, updating its times and bucket count.
    fn add_entry(
        &mut self,
        store: &dyn Store,
        parent: u64,
        name: &[u8],
        e: Dirent,
    ) -> FsResult<()> {
        let d = self.dir(store, parent)?;
        d.insert(name.to_vec(), e);
        let n = d.buckets.len();
        let p = self.inode(store, parent)?;
        p.buckets.resize(n, None);
        p.touch_modified();
        self.mark(parent);
        Ok(())
    }

    fn remove_entry(&mut self, store: &dyn Store, parent: u64, name: &[u8]) -> FsResult<Dirent> {
        let e = self.dir(store, parent)?.remove(name).ok_or(Errno::ENOENT)?;
        self.inode(store, parent)?.touch_modified();
        self.mark(parent);
        Ok(e)
    }

    fn is_ancestor(&mut self, store: &dyn Store, anc: u64, mut ino: u64) -> FsResult<bool> {
        for _ in 0..100_000 {
            if ino == anc {
                return Ok(true);
            }
            if ino == ROOT {
                return Ok(false);
            }
            ino = self.inode(store, ino)?.parent;
        }
        Err(Errno::EIO)
    }
}

impl Fs {
    pub fn lookup(&self, parent: u64, name: &[u8]) -> FsResult<Attr> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let e = st.lookup_in(store, parent, name)?;
        let a = Attr::of(st.inode(store, e.ino)?);
        st.remember(e.ino);
        Ok(a)
    }

    /// Create a file, directory, symlink, FIFO, socket or device node.
    pub fn create_node(
        &self,
        who: Caller,
        parent: u64,
        name: &[u8],
        node: NewNode<'_>,
    ) -> FsResult<Attr> {
        check_name(name)?;
        let store = &*self.store;
        let mut st = self.state.lock();
        let p = st.inode(store, parent)?;
        if p.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if p.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        let (pgid, psgid) = (p.gid, p.perm & libc::S_ISGID != 0);
        if st.dir(store, parent)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let ino = store.append(Ns::Meta, &record::encode_placeholder())?;
        let mut perm = node.perm & 0o7777;
        let gid = if psgid { pgid } else { who.gid };
        if psgid && node.kind == Kind::Dir {
            perm |= libc::S_ISGID;
        }
        let mut i = Inode::new(ino, node.kind, perm, who.uid, gid);
        match node.kind {
            Kind::Dir => i.parent = parent,
            Kind::Symlink => {
                i.target = node.target.to_vec();
                i.size = node.target.len() as u64;
            }
            Kind::CharDev | Kind::BlockDev => i.rdev = node.rdev,
            _ => {}
        }
        let attr = Attr::of(&i);
        st.inodes.insert(ino, i);
        st.mark(ino);
        st.remember(ino);
        st.add_entry(
            store,
            parent,
            name,
            Dirent {
                ino,
                kind: node.kind,
            },
        )?;
        if node.kind == Kind::Dir {
            st.inode(store, parent)?.nlink += 1;
        }
        self.metrics.count_op();
        Ok(attr)
    }

    pub fn unlink(&self, parent: u64, name: &[u8]) -> FsResult<()> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let e = st.lookup_in(store, parent, name)?;
        if e.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        st.remove_entry(store, parent, name)?;
        st.unlink_inode(store, e.ino)?;
        self.metrics.count_op();
        Ok(())
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> FsResult<()> {
        if name == b"." {
            return Err(Errno::EINVAL);
        }
        if name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
        let store = &*self.store;
        let mut st = self.state.lock();
        let e = st.lookup_in(store, parent, name)?;
        if e.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if !st.dir(store, e.ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        st.remove_entry(store, parent, name)?;
        st.inode(store, parent)?.nlink -= 1;
        st.unlink_inode(store, e.ino)?;
        self.metrics.count_op();
        Ok(())
    }

    pub fn link(&self, ino: u64, parent: u64, name: &[u8]) -> FsResult<Attr> {
        check_name(name)?;
        let store = &*self.store;
        let mut st = self.state.lock();
        let i = st.inode(store, ino)?;
        if i.kind == Kind::Dir {
            return Err(Errno::EPERM);
        }
        if i.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if i.nlink >= u32::MAX - 1 {
            return Err(Errno::EMLINK);
        }
        let kind = i.kind;
        if st.dir(store, parent)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        st.add_entry(store, parent, name, Dirent { ino, kind })?;
        let i = st.inode(store, ino)?;
        i.nlink += 1;
        i.touch_changed();
        let a = Attr::of(i);
        st.mark(ino);
        st.remember(ino);
        self.metrics.count_op();
        Ok(a)
    }

    pub fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let mut st = self.state.lock();
        let i = st.inode(&*self.store, ino)?;
        if i.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        Ok(i.target.clone())
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        mode: RenameMode,
    ) -> FsResult<()> {
        check_name(newname)?;
        let store = &*self.store;
        let mut st = self.state.lock();
        let src = st.lookup_in(store, parent, name)?;
        if st.inode(store, newparent)?.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let dst = st.dir(store, newparent)?.get(newname);
        if parent == newparent && name == newname {
            return match (mode, dst) {
                (RenameMode::NoReplace, _) => Err(Errno::EEXIST),
                _ => Ok(()),
            };
        }
        // A directory cannot move below itself.
        if src.kind == Kind::Dir && st.is_ancestor(store, src.ino, newparent)? {
            return Err(Errno::EINVAL);
        }
        match (mode, dst) {
            (RenameMode::NoReplace, Some(_)) => return Err(Errno::EEXIST),
            (RenameMode::Exchange, None) => return Err(Errno::ENOENT),
            (RenameMode::Exchange, Some(d)) => {
                if d.kind == Kind::Dir && st.is_ancestor(store, d.ino, parent)? {
                    return Err(Errno::EINVAL);
                }
                return self.exchange(&mut st, parent, name, src, newparent, newname, d);
            }
            (_, Some(d)) if d.ino == src.ino => return Ok(()),
            (_, Some(d)) => {
                match (src.kind == Kind::Dir, d.kind == Kind::Dir) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !st.dir(store, d.ino)?.is_empty() => {
                        return Err(Errno::ENOTEMPTY)
                    }
                    _ => {}
                }
                st.remove_entry(store, newparent, newname)?;
                if d.kind == Kind::Dir {
                    st.inode(store, newparent)?.nlink -= 1;
                }
                st.unlink_inode(store, d.ino)?;
            }
            (_, None) => {}
        }
        st.remove_entry(store, parent, name)?;
        st.add_entry(store, newparent, newname, src)?;
        if src.kind == Kind::Dir && parent != newparent {
            st.inode(store, parent)?.nlink -= 1;
            st.inode(store, newparent)?.nlink += 1;
            st.inode(store, src.ino)?.parent = newparent;
        }
        st.inode(store, src.ino)?.touch_changed();
        st.mark(src.ino);
        self.metrics.count_op();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        st: &mut State,
        parent: u64,
        name: &[u8],
        a: Dirent,
        newparent: u64,
        newname: &[u8],
        b: Dirent,
    ) -> FsResult<()> {
        let store = &*self.store;
        st.add_entry(store, parent, name, b)?;
        st.add_entry(store, newparent, newname, a)?;
        if parent != newparent {
            let delta = i64::from(a.kind == Kind::Dir) - i64::from(b.kind == Kind::Dir);
            let p = st.inode(store, parent)?;
            p.nlink = (i64::from(p.nlink) - delta) as u32;
            let q = st.inode(store, newparent)?;
            q.nlink = (i64::from(q.nlink) + delta) as u32;
            if a.kind == Kind::Dir {
                st.inode(store, a.ino)?.parent = newparent;
            }
            if b.kind == Kind::Dir {
                st.inode(store, b.ino)?.parent = parent;
            }
        }
        for ino in [a.ino, b.ino] {
            st.inode(store, ino)?.touch_changed();
            st.mark(ino);
        }
        self.metrics.count_op();
        Ok(())
    }

    pub fn setattr(&self, ino: u64, fh: Option<u64>, set: SetAttr) -> FsResult<Attr> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let _ = fh;
        if let Some(size) = set.size {
            let i = st.inode(store, ino)?;
            match i.kind {
                Kind::Dir => return Err(Errno::EISDIR),
                Kind::File => {}
                _ => return Err(Errno::EINVAL),
            }
            if size > MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            st.truncate(store, ino, size)?;
            let i = st.inode(store, ino)?;
            if set.kill_suidgid {
                i.kill_suidgid();
            }
            i.kill_capability();
        }
        let i = st.inode(store, ino)?;
        if let Some(p) = set.perm {
            i.perm = p & 0o7777;
        }
        if let Some(u) = set.uid {
            i.uid = u;
        }
        if let Some(g) = set.gid {
            i.gid = g;
        }
        if (set.uid.is_some() || set.gid.is_some()) && i.kind != Kind::Dir {
            // chown clears set-user-id, and set-group-id when group-executable, on
            // non-directories (Linux, root included).
            i.kill_suidgid();
            i.kill_capability();
        }
        if let Some(t) = set.atime {
            i.atime = t.unwrap_or_else(Ts::now);
        }
        if let Some(t) = set.mtime {
            i.mtime = t.unwrap_or_else(Ts::now);
        }
        i.ctime = set.ctime.unwrap_or_else(Ts::now);
        let a = Attr::of(i);
        st.mark(ino);
        self.metrics.count_op();
        Ok(a)
    }

    /// Open a directory: a snapshot of its entries serves every readdir of this handle, so a
    /// listing is linear and stable while the directory changes.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        let mut st = self.state.lock();
        let snapshot = self.snapshot(&mut st, ino)?;
        let fh = st.next_fh;
        st.next_fh += 1;
        st.handles.insert(fh, Handle::Dir { ino, snapshot });
        Ok(fh)
    }

    fn snapshot(&self, st: &mut State, ino: u64) -> FsResult<Vec<DirItem>> {
        let store = &*self.store;
        let parent = st.inode(store, ino)?.parent;
        let d = st.dir(store, ino)?;
        let mut v = Vec::with_capacity(d.len + 2);
        v.push(DirItem {
            ino,
            kind: Kind::Dir,
            name: b".".to_vec(),
        });
        v.push(DirItem {
            ino: if parent == 0 { ROOT } else { parent },
            kind: Kind::Dir,
            name: b"..".to_vec(),
        });
        v.extend(d.iter().map(|(n, e)| DirItem {
            ino: e.ino,
            kind: e.kind,
            name: n.clone(),
        }));
        Ok(v)
    }

    /// Entries of an open directory from position `offset`; `f` returns true when full.
    /// Offset 0 refreshes the snapshot (rewinddir).
    pub fn readdir(
        &self,
        fh: u64,
        offset: u64,
        mut f: impl FnMut(u64, &DirItem) -> bool,
    ) -> FsResult<()> {
        let mut st = self.state.lock();
        let snap = self.take_snapshot(&mut st, fh, offset)?;
        for (i, item) in snap.iter().enumerate().skip(offset as usize) {
            if f(i as u64 + 1, item) {
                break;
            }
        }
        put_snapshot(&mut st, fh, snap);
        Ok(())
    }

    /// [`Fs::readdir`] with each entry's attributes (READDIRPLUS). Every entry but `.` and
    /// `..` that `f` takes (returns false for) is a lookup: the kernel now holds a reference
    /// to it. An entry whose inode is gone since the snapshot is left out; any other failure
    /// to load an inode fails the call (a listing never silently misses entries).
    pub fn readdirplus(
        &self,
        fh: u64,
        offset: u64,
        mut f: impl FnMut(u64, &DirItem, &Attr) -> bool,
    ) -> FsResult<()> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let snap = self.take_snapshot(&mut st, fh, offset)?;
        let mut result = Ok(());
        let mut handed = Vec::new();
        for (i, item) in snap.iter().enumerate().skip(offset as usize) {
            let attr = match st.inode(store, item.ino) {
                Ok(inode) => Attr::of(inode),
                Err(Errno::ENOENT) => continue,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if f(i as u64 + 1, item, &attr) {
                // Did not fit: the kernel never saw it, so nothing keeps it in memory.
                st.try_evict(item.ino);
                break;
            }
            if item.name != b"." && item.name != b".." {
                st.remember(item.ino);
                handed.push(item.ino);
            }
        }
        if result.is_err() {
            // The kernel gets an error, not these entries.
            for ino in handed {
                st.forget(ino, 1);
            }
        }
        put_snapshot(&mut st, fh, snap);
        result
    }

    /// The entry list of open directory `fh`, taken out of its handle for the caller to walk
    /// (give it back with [`put_snapshot`]); made anew at offset 0.
    fn take_snapshot(&self, st: &mut State, fh: u64, offset: u64) -> FsResult<Vec<DirItem>> {
        let ino = match st.handles.get(&fh) {
            Some(Handle::Dir { ino, .. }) => *ino,
            _ => return Err(Errno::EBADF),
        };
        if offset == 0 {
            return self.snapshot(st, ino);
        }
        match st.handles.get_mut(&fh) {
            Some(Handle::Dir { snapshot, .. }) => Ok(std::mem::take(snapshot)),
            _ => Err(Errno::EBADF),
        }
    }

    pub fn releasedir(&self, fh: u64) {
        self.state.lock().handles.remove(&fh);
    }
}

/// Give an entry list taken by [`Fs::take_snapshot`] back to its handle.
fn put_snapshot(st: &mut State, fh: u64, snap: Vec<DirItem>) {
    if let Some(Handle::Dir { snapshot, .. }) = st.handles.get_mut(&fh) {
        *snapshot = snap;
    }
}
