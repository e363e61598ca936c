//! File contents: open/release, read, write (random and sparse: holes read as zeros), truncate
//! up and down, and the block cache they share.
//!
//! Invariant: bytes of a block past the file size are zero or absent, so growing a file (by
//! truncate or by a write past the end) exposes zeros only.

use super::{CBlock, Fs, Handle, State};
use crate::error::{Errno, FsResult};
use crate::inode::{Kind, BLOCK, MAX_FILE_SIZE};
use crate::store::{Ns, Store};

impl State {
    /// The cached block `(ino, bi)`, loaded from the store (or empty for a hole).
    fn block(&mut self, store: &dyn Store, ino: u64, bi: u64, hits: &mut (u64, u64)) -> FsResult<&mut CBlock> {
        if !self.blocks.contains_key(&(ino, bi)) {
            hits.1 += 1;
            let id = self.inode(store, ino)?.blocks.get(&bi).copied();
            let data = match id {
                Some(id) => store.get(Ns::Data, id)?.unwrap_or_default(),
                None => Vec::new(),
            };
            self.cached_bytes += data.len();
            self.blocks.insert((ino, bi), CBlock { data, dirty: false });
        } else {
            hits.0 += 1;
        }
        self.blocks.get_mut(&(ino, bi)).ok_or(Errno::EIO)
    }

    /// Change the size of file `ino`, freeing blocks past the end and zeroing the tail of the
    /// last partial block.
    pub fn truncate(&mut self, store: &dyn Store, ino: u64, size: u64) -> FsResult<()> {
        let i = self.inode(store, ino)?;
        let old = i.size;
        if size < old {
            let keep = size.div_ceil(BLOCK);
            let gone: Vec<u64> = i.blocks.range(keep..).map(|(&b, _)| b).collect();
            let mut freed = Vec::with_capacity(gone.len());
            for b in &gone {
                if let Some(id) = i.blocks.remove(b) {
                    freed.push(id);
                }
            }
            self.free_data.extend(freed);
            let cached: Vec<(u64, u64)> = self
                .blocks
                .range((ino, keep)..=(ino, u64::MAX))
                .map(|(k, _)| *k)
                .collect();
            for k in cached {
                if let Some(b) = self.blocks.remove(&k) {
                    self.cached_bytes -= b.data.len();
                    if b.dirty {
                        self.dirty_bytes -= b.data.len();
                    }
                }
            }
            let tail = (size % BLOCK) as usize;
            if tail != 0 {
                let mut hits = (0, 0);
                let b = self.block(store, ino, size / BLOCK, &mut hits)?;
                if b.data.len() > tail {
                    let cut = b.data.len() - tail;
                    b.data.truncate(tail);
                    let was_dirty = b.dirty;
                    b.dirty = true;
                    self.cached_bytes -= cut;
                    if was_dirty {
                        self.dirty_bytes -= cut;
                    } else {
                        self.dirty_bytes += tail;
                    }
                }
            }
        }
        let i = self.inode(store, ino)?;
        i.size = size;
        i.touch_modified();
        self.mark(ino);
        Ok(())
    }

    fn open_handle(&mut self, ino: u64, append: bool) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle::File { ino, append });
        *self.open_count.entry(ino).or_insert(0) += 1;
        fh
    }
}

impl Fs {
    /// Open inode `ino` with open(2) `flags`; returns the handle.
    pub fn open_file(&self, ino: u64, flags: i32) -> FsResult<u64> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let i = st.inode(store, ino)?;
        if i.kind == Kind::Dir && flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(Errno::EISDIR);
        }
        if flags & libc::O_TRUNC != 0
            && i.kind == Kind::File
            && flags & libc::O_ACCMODE != libc::O_RDONLY
            && i.size > 0
        {
            st.truncate(store, ino, 0)?;
        }
        Ok(st.open_handle(ino, flags & libc::O_APPEND != 0))
    }

    /// Handle of a file created by `create`, opened with `flags`.
    pub fn open_created(&self, ino: u64, flags: i32) -> FsResult<u64> {
        let mut st = self.state.lock();
        Ok(st.open_handle(ino, flags & libc::O_APPEND != 0))
    }

    /// Close a handle; an unlinked inode dies with its last handle. The file's dirty blocks
    /// and inode are written to the store (not synced).
    pub fn release(&self, fh: u64) -> FsResult<()> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let Some(Handle::File { ino, .. }) = st.handles.remove(&fh) else {
            return Err(Errno::EBADF);
        };
        let n = st.open_count.entry(ino).or_insert(1);
        *n -= 1;
        if *n == 0 {
            st.open_count.remove(&ino);
            if st.inodes.get(&ino).is_some_and(|i| i.nlink == 0) {
                st.destroy(ino);
                return Ok(());
            }
        }
        self.flush_file(&mut st, store, ino)?;
        Ok(())
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let i = st.inode(store, ino)?;
        if i.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        let fsize = i.size;
        if offset >= fsize {
            return Ok(Vec::new());
        }
        let end = fsize.min(offset.saturating_add(size as u64));
        let mut out = vec![0u8; (end - offset) as usize];
        let mut pos = offset;
        let mut hits = (0, 0);
        while pos < end {
            let bi = pos / BLOCK;
            let boff = (pos % BLOCK) as usize;
            let n = ((BLOCK as usize - boff) as u64).min(end - pos) as usize;
            let b = st.block(store, ino, bi, &mut hits)?;
            let dst = (pos - offset) as usize;
            if boff < b.data.len() {
                let m = n.min(b.data.len() - boff);
                out[dst..dst + m].copy_from_slice(&b.data[boff..boff + m]);
            }
            pos += n as u64;
        }
        self.metrics.count_read(out.len() as u64, hits);
        self.evict(&mut st);
        Ok(out)
    }

    /// Write at `offset` (at the end for an O_APPEND handle); returns bytes written.
    pub fn write(&self, fh: u64, ino: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let append = matches!(st.handles.get(&fh), Some(Handle::File { append: true, .. }));
        let i = st.inode(store, ino)?;
        if i.kind != Kind::File {
            return Err(Errno::EINVAL);
        }
        let offset = if append { i.size } else { offset };
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let mut pos = offset;
        let mut hits = (0, 0);
        while pos < end {
            let bi = pos / BLOCK;
            let boff = (pos % BLOCK) as usize;
            let n = ((BLOCK as usize - boff) as u64).min(end - pos) as usize;
            let src = &data[(pos - offset) as usize..(pos - offset) as usize + n];
            let b = st.block(store, ino, bi, &mut hits)?;
            let before = b.data.len();
            let was_dirty = b.dirty;
            if b.data.len() < boff + n {
                b.data.resize(boff + n, 0);
            }
            b.data[boff..boff + n].copy_from_slice(src);
            b.dirty = true;
            let after = b.data.len();
            st.cached_bytes += after - before;
            st.dirty_bytes += if was_dirty { after - before } else { after };
            pos += n as u64;
        }
        let i = st.inode(store, ino)?;
        if end > i.size {
            i.size = end;
        }
        i.touch_modified();
        if i.perm & (libc::S_ISUID | libc::S_ISGID) != 0 {
            i.perm &= !libc::S_ISUID;
        }
        st.mark(ino);
        self.metrics.count_write(data.len() as u64, hits);
        if st.dirty_bytes > self.config.dirty_limit {
            self.flush_locked(&mut st, false)?;
        }
        Ok(data.len() as u32)
    }

    /// Drop clean cached blocks when the cache is over its limit.
    fn evict(&self, st: &mut State) {
        if st.cached_bytes <= self.config.cache_limit {
            return;
        }
        let target = self.config.cache_limit / 2;
        let clean: Vec<(u64, u64)> = st
            .blocks
            .iter()
            .filter(|(_, b)| !b.dirty)
            .map(|(k, _)| *k)
            .collect();
        for k in clean {
            if st.cached_bytes <= target {
                break;
            }
            if let Some(b) = st.blocks.remove(&k) {
                st.cached_bytes -= b.data.len();
            }
        }
    }

    /// fsync/fdatasync: everything dirty is written and the store synced before returning.
    pub fn fsync(&self) -> FsResult<()> {
        self.flush_all(true).map_err(Errno::from)
    }
}
