//! File contents: open/release, read, write (random and sparse: holes read as zeros), truncate
//! up and down, and the block cache they share.
//!
//! Invariant: bytes of a block past the file size are zero or absent, so growing a file (by
//! truncate or by a write past the end) exposes zeros only.

use super::{CBlock, Fs, Handle, State};
use crate::error::{Errno, FsResult};
use crate::inode::{Kind, BLOCK, MAX_FILE_SIZE};
use crate::store::{Ns, Part, Store};
use std::sync::atomic::Ordering::Relaxed;

/// Block bytes dropped at once past which the allocator is asked to give memory back: glibc
/// keeps freed heap for reuse, so after a large dirty set (random writes over a 1 GiB file)
/// the process would otherwise stay at its peak size (1.3 GB measured). Well above what the
/// clean cache's own turnover frees (64 MiB at a time): trimming then made every later block
/// load fault its memory in again (4 KiB random reads at half the rate).
const TRIM_BYTES: usize = 256 << 20;

/// The part of one block that a byte range `offset..end` of a file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// The block's number in the file.
    block: u64,
    /// Where the part starts inside the block.
    in_block: usize,
    /// Its length.
    len: usize,
    /// Where it starts relative to `offset` (in the caller's buffer).
    at: usize,
}

/// Where a read finds one block's part (see [`Fs::read_into`]).
enum Source {
    /// In the cache, clean or dirty.
    Cache,
    /// Stored, and the read covers it whole: from the store straight into the reply.
    Store(u64),
    /// Stored, read in part: loaded into the cache first.
    Load(u64),
    /// Never written: zeros.
    Hole,
}

/// The blocks a byte range touches, in order, each with the part of it the range covers.
fn spans(offset: u64, end: u64) -> impl Iterator<Item = Span> {
    let mut pos = offset;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let in_block = pos % BLOCK;
        let len = (BLOCK - in_block).min(end - pos);
        let span = Span {
            block: pos / BLOCK,
            in_block: in_block as usize,
            len: len as usize,
            at: (pos - offset) as usize,
        };
        pos += len;
        Some(span)
    })
}

fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl State {
    /// The cached block `(ino, bi)`, loaded from the store (or empty for a hole).
    fn block(
        &mut self,
        store: &dyn Store,
        ino: u64,
        bi: u64,
        hits: &mut (u64, u64),
    ) -> FsResult<&mut CBlock> {
        if !self.blocks.contains_key(&(ino, bi)) {
            hits.1 += 1;
            let id = self.inode(store, ino)?.blocks.get(&bi).copied();
            let data = match id {
                // A block the inode names must exist: a missing one is an error, never zeros.
                Some(id) => store.get(Ns::Data, id)?.ok_or_else(|| {
                    tracing::error!(ino, block = bi, id, "data block missing");
                    Errno::EIO
                })?,
                None => Vec::new(),
            };
            self.cached_bytes += data.len();
            self.blocks.insert((ino, bi), CBlock::new(data));
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
                self.drop_block(k);
            }
            let tail = (size % BLOCK) as usize;
            if tail != 0 {
                let mut hits = (0, 0);
                let b = self.block(store, ino, size / BLOCK, &mut hits)?;
                if b.data.len() > tail {
                    let cut = b.data.len() - tail;
                    b.bytes_mut().truncate(tail);
                    let was_clean = b.set_dirty();
                    self.cached_bytes -= cut;
                    if was_clean {
                        self.dirty_bytes += tail;
                    } else {
                        self.dirty_bytes -= cut;
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

    /// Whether the kernel may keep serving `ino`'s cached pages on a new open: its data only
    /// changes through the kernel, but a read it serves never reaches us, so not while the
    /// next read must move atime (relatime).
    pub fn keeps_page_cache(&self, ino: u64) -> bool {
        let mut st = self.state.lock();
        st.inode(&*self.store, ino)
            .is_ok_and(|i| !i.atime_due(crate::inode::Ts::now()))
    }

    /// Handle of a file created by `create`, opened with `flags`.
    pub fn open_created(&self, ino: u64, flags: i32) -> FsResult<u64> {
        let mut st = self.state.lock();
        Ok(st.open_handle(ino, flags & libc::O_APPEND != 0))
    }

    /// Close a handle; an unlinked inode dies with its last handle. The file's dirty blocks
    /// and inode are written to the store (not synced).
    pub fn release(&self, fh: u64) -> FsResult<()> {
        let ino = {
            let mut st = self.state.lock();
            let Some(Handle::File { ino, .. }) = st.handles.remove(&fh) else {
                return Err(Errno::EBADF);
            };
            let n = st.open_count.entry(ino).or_insert(1);
            *n -= 1;
            if *n == 0 {
                st.open_count.remove(&ino);
                if st.destroy_if_unused(ino) {
                    return Ok(());
                }
            }
            ino
        };
        self.flush_file(ino)?;
        self.state.lock().try_evict(ino);
        Ok(())
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(ino, offset, size, &mut out)?;
        Ok(out)
    }

    /// Append up to `size` bytes of file `ino` at `offset` to `out` (fewer at the end of the
    /// file). Appended, not returned: the caller's buffer is reused from one read to the
    /// next, so no fresh pages are faulted in and zeroed for every request.
    ///
    /// Each block's part is planned under the lock and served after it, so reads of other
    /// files and round trips to a remote store go on meanwhile. A stored block the read
    /// covers whole goes straight from the store into `out`, not through the cache (a
    /// stream would only push out what is cached, and the kernel keeps the file's pages);
    /// part of a stored block is loaded into the cache first, as the reads around it will
    /// likely want the rest.
    pub fn read_into(&self, ino: u64, offset: u64, size: u32, out: &mut Vec<u8>) -> FsResult<()> {
        let store = &*self.store;
        let plan = {
            let mut st = self.state.lock();
            let i = st.inode(store, ino)?;
            if i.kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            // relatime: atime moves when older than mtime/ctime or a day old, so reads
            // rarely dirty the inode.
            let now = crate::inode::Ts::now();
            if i.atime_due(now) {
                i.atime = now;
                st.mark(ino);
            }
            let i = st.inode(store, ino)?;
            let end = i.size.min(offset.saturating_add(u64::from(size)));
            let planned: Vec<(Span, Option<u64>)> = spans(offset, end)
                .map(|span| (span, i.blocks.get(&span.block).copied()))
                .collect();
            planned
                .into_iter()
                .map(|(span, id)| {
                    let source = match id {
                        _ if st.blocks.contains_key(&(ino, span.block)) => Source::Cache,
                        None => Source::Hole,
                        Some(id) if span.in_block == 0 && span.len == BLOCK as usize => {
                            Source::Store(id)
                        }
                        Some(id) => Source::Load(id),
                    };
                    (span, source)
                })
                .collect::<Vec<_>>()
        };
        let base = out.len();
        let len = plan.last().map_or(0, |(s, _)| s.at + s.len);
        out.reserve(len);
        let mut hits = (0, 0);
        let mut k = 0;
        while k < plan.len() {
            let (span, source) = &plan[k];
            out.resize(base + span.at, 0);
            match *source {
                Source::Store(_) => {
                    // The run of whole stored blocks from here: one call to the store.
                    let parts: Vec<Part> = plan[k..]
                        .iter()
                        .map_while(|(span, source)| match *source {
                            Source::Store(id) => Some(Part {
                                id,
                                from: 0,
                                len: span.len,
                            }),
                            _ => None,
                        })
                        .collect();
                    let done = store.append_parts(Ns::Data, &parts, out)?;
                    hits.1 += done as u64;
                    k += done;
                    if done < parts.len() {
                        // Replaced since the plan was made: serve it as it is now.
                        out.resize(base + plan[k].0.at, 0);
                        self.read_through_cache(ino, &plan[k].0, out, &mut hits)?;
                        k += 1;
                    }
                    continue;
                }
                Source::Load(id) => {
                    self.load(ino, span.block, id)?;
                    hits.1 += 1;
                    self.read_through_cache(ino, span, out, &mut (0, 0))?;
                }
                Source::Cache => self.read_through_cache(ino, span, out, &mut hits)?,
                Source::Hole => {}
            }
            k += 1;
        }
        out.resize(base + len, 0);
        self.metrics.count_read(len as u64, hits);
        self.evict(&mut self.state.lock());
        Ok(())
    }

    /// Append `span` of block `span.block` of `ino` to `out` from the cache (loading the
    /// block if it is not there, under the lock).
    fn read_through_cache(
        &self,
        ino: u64,
        span: &Span,
        out: &mut Vec<u8>,
        hits: &mut (u64, u64),
    ) -> FsResult<()> {
        let mut st = self.state.lock();
        let b = st.block(&*self.store, ino, span.block, hits)?;
        if span.in_block < b.data.len() {
            let m = span.len.min(b.data.len() - span.in_block);
            out.extend_from_slice(&b.data[span.in_block..span.in_block + m]);
        }
        Ok(())
    }

    /// Put stored block `block` (record `id`) of `ino` in the cache, reading it without the
    /// lock. A block replaced meanwhile is left alone.
    fn load(&self, ino: u64, block: u64, id: u64) -> FsResult<()> {
        let Some(data) = self.store.get(Ns::Data, id)? else {
            return Ok(()); // replaced: the locked pass reads what is there now
        };
        let mut st = self.state.lock();
        let current = st.inodes.get(&ino).and_then(|i| i.blocks.get(&block)) == Some(&id);
        if current && !st.blocks.contains_key(&(ino, block)) {
            st.cached_bytes += data.len();
            st.blocks.insert((ino, block), CBlock::new(data));
        }
        Ok(())
    }

    /// Write at `offset` (at the end for an O_APPEND handle, unless the kernel's writeback
    /// cache is on: then the kernel resolved O_APPEND and writes back pages at their own
    /// offsets, through any handle). `kill_suidgid`: the kernel asks us to clear the set-id
    /// bits (FUSE_WRITE_KILL_SUIDGID). Returns bytes written.
    pub fn write(
        &self,
        fh: u64,
        ino: u64,
        offset: u64,
        data: &[u8],
        kill_suidgid: bool,
    ) -> FsResult<u32> {
        if let Some(n) = self.write_direct(fh, ino, offset, data, kill_suidgid)? {
            return Ok(n);
        }
        let store = &*self.store;
        let mut st = self.state.lock();
        let append = !self.kernel_writeback.load(Relaxed)
            && matches!(st.handles.get(&fh), Some(Handle::File { append: true, .. }));
        let i = st.inode(store, ino)?;
        if i.kind != Kind::File {
            return Err(Errno::EINVAL);
        }
        let offset = if append { i.size } else { offset };
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let mut hits = (0, 0);
        for span in spans(offset, end) {
            let (bi, boff, n) = (span.block, span.in_block, span.len);
            let src = &data[span.at..span.at + n];
            if n == BLOCK as usize && !st.blocks.contains_key(&(ino, bi)) {
                // A whole-block overwrite needs nothing of the old bytes: no load.
                st.blocks.insert((ino, bi), CBlock::new(Vec::new()));
            }
            let b = st.block(store, ino, bi, &mut hits)?;
            let before = b.data.len();
            let bytes = b.bytes_mut();
            if bytes.len() < boff {
                bytes.resize(boff, 0);
            }
            // Overwrite what exists, append the rest: no zero-fill of bytes about to be
            // written (sequential writes only append).
            let overlap = (bytes.len() - boff).min(n);
            bytes[boff..boff + overlap].copy_from_slice(&src[..overlap]);
            bytes.extend_from_slice(&src[overlap..]);
            let was_clean = b.set_dirty();
            let after = b.data.len();
            st.cached_bytes += after - before;
            st.dirty_bytes += if was_clean { after } else { after - before };
            if boff + n == BLOCK as usize {
                st.full_blocks += 1;
            }
        }
        let i = st.inode(store, ino)?;
        if end > i.size {
            i.size = end;
        }
        if kill_suidgid {
            i.kill_suidgid();
        }
        i.kill_capability();
        i.touch_modified();
        st.mark(ino);
        self.metrics.count_write(data.len() as u64, hits);
        let (dirty, full) = (st.dirty_bytes, st.full_blocks);
        drop(st);
        self.after_write(dirty, full)?;
        Ok(data.len() as u32)
    }

    /// Drop clean cached blocks when the cache is over its limit.
    pub(crate) fn evict(&self, st: &mut State) {
        // Dirty blocks are bounded by the dirty limit; this one is for clean blocks.
        if st.cached_bytes - st.dirty_bytes <= self.config.cache_limit {
            return;
        }
        let target = self.config.cache_limit / 2 + st.dirty_bytes;
        let before = st.cached_bytes;
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
        if before - st.cached_bytes >= TRIM_BYTES {
            release_freed_memory();
        }
    }

    /// fsync/fdatasync: everything dirty is written and the store synced before returning,
    /// then the barrier (if one is set) passed.
    pub fn fsync(&self) -> FsResult<()> {
        self.flush_synced().map_err(Errno::from)?;
        if let Some(barrier) = self.fsync_barrier.get() {
            barrier().map_err(|e| {
                tracing::error!(error = %e, "fsync barrier failed");
                Errno(libc::EIO)
            })?;
        }
        Ok(())
    }

    /// Make every later fsync also wait for `barrier` (set once; `false` if one was set).
    pub fn set_fsync_barrier(&self, barrier: super::FsyncBarrier) -> bool {
        self.fsync_barrier.set(barrier).is_ok()
    }
}

impl Fs {
    /// SEEK_DATA / SEEK_HOLE at block granularity (a stored or cached block is data; the end
    /// of the file is a hole). ENXIO at or past the end.
    pub fn seek_data_hole(&self, ino: u64, offset: u64, data: bool) -> FsResult<u64> {
        let store = &*self.store;
        let mut st = self.state.lock();
        let i = st.inode(store, ino)?;
        let size = i.size;
        if offset >= size {
            return Err(Errno(libc::ENXIO));
        }
        let mut present: std::collections::BTreeSet<u64> = i.blocks.keys().copied().collect();
        present.extend(
            st.blocks
                .range((ino, 0)..=(ino, u64::MAX))
                .filter(|(_, b)| !b.data.is_empty())
                .map(|(k, _)| k.1),
        );
        let first = offset / BLOCK;
        let last = (size - 1) / BLOCK;
        if data {
            match present.range(first..=last).next() {
                Some(&b) if b == first => Ok(offset),
                Some(&b) => Ok(b * BLOCK),
                None => Err(Errno(libc::ENXIO)),
            }
        } else {
            let mut b = first;
            while b <= last && present.contains(&b) {
                b += 1;
            }
            Ok(if b == first {
                offset
            } else {
                (b * BLOCK).min(size)
            })
        }
    }
}

impl Fs {
    /// Clear the set-id bits of a file a caller without CAP_FSETID modified.
    pub fn kill_suidgid(&self, ino: u64) -> FsResult<()> {
        let mut st = self.state.lock();
        let i = st.inode(&*self.store, ino)?;
        let before = i.perm;
        i.kill_suidgid();
        if i.perm != before {
            i.touch_changed();
            st.mark(ino);
        }
        Ok(())
    }

    /// fallocate: mode 0 grows the size (the new range reads as zeros, no space is reserved
    /// in an append-only store); KEEP_SIZE alone does nothing; PUNCH_HOLE|KEEP_SIZE zeroes the
    /// range, freeing whole blocks. Other modes: EOPNOTSUPP.
    pub fn fallocate(&self, ino: u64, offset: u64, len: u64, mode: i32) -> FsResult<()> {
        let store = &*self.store;
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut st = self.state.lock();
        let i = st.inode(store, ino)?;
        if i.kind != Kind::File {
            return Err(Errno::ENODEV);
        }
        let size = i.size;
        match mode {
            0 => {
                if end > size {
                    let i = st.inode(store, ino)?;
                    i.size = end;
                    i.touch_changed();
                    st.mark(ino);
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            m if m == libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE => {
                let end = end.min(size);
                if offset < end {
                    st.punch(store, ino, offset, end)?;
                }
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }
}

impl State {
    /// Zero `[start, end)` of a file: whole blocks are freed, partial ones zeroed in place.
    fn punch(&mut self, store: &dyn Store, ino: u64, start: u64, end: u64) -> FsResult<()> {
        let mut pos = start;
        let mut hits = (0, 0);
        while pos < end {
            let bi = pos / BLOCK;
            let boff = (pos % BLOCK) as usize;
            let n = ((BLOCK as usize - boff) as u64).min(end - pos) as usize;
            if n == BLOCK as usize {
                if let Some(id) = self.inode(store, ino)?.blocks.remove(&bi) {
                    self.free_data.push(id);
                }
                self.drop_block((ino, bi));
            } else {
                let b = self.block(store, ino, bi, &mut hits)?;
                if boff < b.data.len() {
                    let stop = (boff + n).min(b.data.len());
                    b.bytes_mut()[boff..stop].fill(0);
                    if b.set_dirty() {
                        let len = b.data.len();
                        self.dirty_bytes += len;
                    }
                }
            }
            pos += n as u64;
        }
        self.inode(store, ino)?.touch_modified();
        self.mark(ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(offset: u64, end: u64) -> Vec<(u64, usize, usize, usize)> {
        spans(offset, end)
            .map(|s| (s.block, s.in_block, s.len, s.at))
            .collect()
    }

    #[test]
    fn spans_cover_the_range_block_by_block() {
        let b = BLOCK as usize;
        assert_eq!(all(0, 0), vec![]);
        assert_eq!(all(5, 10), vec![(0, 5, 5, 0)]);
        assert_eq!(all(0, BLOCK), vec![(0, 0, b, 0)]);
        assert_eq!(
            all(BLOCK - 3, 2 * BLOCK + 4),
            vec![(0, b - 3, 3, 0), (1, 0, b, 3), (2, 0, 4, b + 3)]
        );
    }
}
