//! Whole new blocks written straight to the store, bypassing the block cache: a sequential
//! writer (with the writeback cache, the kernel sends 1 MiB WRITEs at block boundaries) costs
//! one copy (into the store) instead of three passes over the bytes (copy into a fresh cache
//! block, first touch of its memory, copy into the store by the flusher).
//!
//! The records are appended without the state lock; under the lock again they become the
//! blocks' records only if nothing wrote those blocks meanwhile (no record, no cache entry).
//! Otherwise they are freed and the write goes through the cache like any other: either way the
//! write takes effect at that moment, and an inode names a record only once it is stored.

use super::{Fs, Handle};
use crate::error::FsResult;
use crate::inode::{Kind, BLOCK, MAX_FILE_SIZE};
use crate::store::Ns;
use std::sync::atomic::Ordering::Relaxed;

impl Fs {
    /// Write `data` at `offset` straight to the store if it covers whole blocks that have no
    /// record and no cache entry. `None`: not applicable (or raced), write through the cache.
    pub(crate) fn write_direct(
        &self,
        fh: u64,
        ino: u64,
        offset: u64,
        data: &[u8],
        kill_suidgid: bool,
    ) -> FsResult<Option<u32>> {
        let len = data.len() as u64;
        if len == 0 || offset % BLOCK != 0 || len % BLOCK != 0 {
            return Ok(None);
        }
        let Some(end) = offset.checked_add(len).filter(|&e| e <= MAX_FILE_SIZE) else {
            return Ok(None);
        };
        let first = offset / BLOCK;
        let range = first..end / BLOCK;
        {
            let mut st = self.state.lock();
            let append = !self.kernel_writeback.load(Relaxed)
                && matches!(st.handles.get(&fh), Some(Handle::File { append: true, .. }));
            if append || !self.unwritten(&mut st, ino, range.clone())? {
                return Ok(None);
            }
        }
        let mut ids = Vec::with_capacity(range.clone().count());
        for chunk in data.chunks(BLOCK as usize) {
            match self.store.append(Ns::Data, chunk) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    // Nothing names them: deleted at the next flush.
                    self.state.lock().free_data.extend(ids);
                    return Err(e.into());
                }
            }
        }
        let mut st = self.state.lock();
        if !self.unwritten(&mut st, ino, range.clone()).unwrap_or(false) {
            st.free_data.extend(ids);
            return Ok(None);
        }
        let Some(i) = st.inodes.get_mut(&ino) else {
            st.free_data.extend(ids);
            return Ok(None);
        };
        for (bi, id) in range.zip(ids) {
            i.blocks.insert(bi, id);
            self.metrics.count_block_write(BLOCK);
        }
        i.size = i.size.max(end);
        if kill_suidgid {
            i.kill_suidgid();
        }
        i.kill_capability();
        i.touch_modified();
        st.mark(ino);
        self.metrics.count_write(len, (0, 0));
        Ok(Some(data.len() as u32))
    }

    /// Whether `ino` is a regular file whose blocks `range` have neither a record nor a cache
    /// entry.
    fn unwritten(
        &self,
        st: &mut super::State,
        ino: u64,
        range: std::ops::Range<u64>,
    ) -> FsResult<bool> {
        let i = st.inode(&*self.store, ino)?;
        if i.kind != Kind::File || i.blocks.range(range.clone()).next().is_some() {
            return Ok(false);
        }
        Ok(st
            .blocks
            .range((ino, range.start)..(ino, range.end))
            .next()
            .is_none())
    }
}
