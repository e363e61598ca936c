//! Reads of data segments through read-only memory maps: a GET copies its record straight from
//! the page cache, without a system call. Positional reads remain the fallback (a mapping that
//! cannot be made) and serve the index files.
//!
//! Safety rests on one rule, kept by this crate: a mapped range is never truncated while it can
//! be read. Copies out of a map happen under the namespace lock (shared or exclusive); the engine
//! truncates a data segment only under the exclusive lock and drops its map first (compaction,
//! FLUSH, reload), and cuts torn tails at load, before anything is mapped. The open segment is
//! mapped at its full `datasize` but read only below its written length. Closed segments are
//! mapped at their exact length. What the engine cannot prevent is another process truncating a
//! segment file of a running server, which would fault the process: segment files must only be
//! removed or replaced (as offloading does), never truncated in place.

use super::{Namespace, State};
use crate::error::{Error, Result};
use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// Records at least this long are announced to the kernel before they are copied.
const READ_AHEAD_FROM: usize = 64 * 1024;

/// A read-only map of one data segment, with the identity of the file it maps.
pub(crate) struct Mapped {
    map: Mmap,
    /// `(device, inode)` of the mapped file, to notice it being replaced or removed.
    id: (u64, u64),
}

impl Mapped {
    /// Map the first `len` bytes of `file`; `None` if the system refuses (reads fall back).
    pub fn new(file: &File, len: u64) -> Option<Arc<Mapped>> {
        let meta = file.metadata().ok()?;
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        // SAFETY: see the module documentation: mapped ranges are never truncated while they
        // can be read, and the map is read-only.
        let map = unsafe { MmapOptions::new().len(len).map(file) }.ok()?;
        Some(Arc::new(Mapped {
            map,
            id: (meta.dev(), meta.ino()),
        }))
    }

    fn get(&self, off: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(off).ok()?;
        let bytes = self.map.get(start..start.checked_add(len)?)?;
        if len >= READ_AHEAD_FROM {
            // A large record read cold would otherwise fault in one readahead window at a
            // time; asking for the whole range first puts all of its reads in flight at once
            // (and costs a page-cache lookup when it is already cached). Only a hint.
            let _ = self.map.advise_range(Advice::WillNeed, start, len);
        }
        Some(bytes)
    }

    /// Whether `path` still names the file this map was made from.
    pub fn still_at(&self, path: &std::path::Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }
}

impl Namespace {
    /// Copy `buf.len()` bytes at `off` of data segment `seg` from its map. `Ok(false)` when the
    /// bytes are not mapped (no map could be made, or they are beyond the written length).
    pub(crate) fn copy_mapped(
        &self,
        st: &State,
        seg: u32,
        off: u64,
        buf: &mut [u8],
    ) -> Result<bool> {
        let len = buf.len();
        Ok(self
            .with_mapped(st, seg, off, len, |b| buf.copy_from_slice(b))?
            .is_some())
    }

    /// Run `g` on the `len` mapped bytes at `off` of data segment `seg`, in place (the caller
    /// holds the namespace lock, which keeps the range valid). `Ok(None)` when not mapped.
    pub(crate) fn with_mapped<R>(
        &self,
        st: &State,
        seg: u32,
        off: u64,
        len: usize,
        g: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>> {
        // Borrowed, not cloned: an Arc clone per read makes the two worker threads bounce
        // the map's reference count between their caches on every GET.
        if seg == st.cur_seg() {
            let written = if st.pending.is_empty() {
                st.data_len
            } else {
                st.pending.data_start()
            };
            if off + len as u64 > written {
                return Ok(None);
            }
            let map = st
                .data_map
                .get_or_init(|| Mapped::new(&st.data, self.shared.datasize));
            return Ok(map.as_deref().and_then(|m| m.get(off, len)).map(g));
        }
        if !self.maps.read().contains_key(&seg) {
            if let Some((bytes, _)) = self.provided.lock().get(&(seg, off)) {
                if bytes.len() == len {
                    return Ok(Some(g(bytes)));
                }
            }
            let f = self.handle(st, true, seg).map_err(|e| match e {
                Error::Offloaded { seg, .. } => Error::Offloaded {
                    seg,
                    read: Some((off, len)),
                },
                e => e,
            })?;
            let flen = f.metadata().map(|m| m.len()).unwrap_or(0);
            match Mapped::new(&f, flen) {
                Some(m) => {
                    self.maps.write().insert(seg, m);
                }
                None => return Ok(None),
            }
        }
        let maps = self.maps.read();
        Ok(maps.get(&seg).and_then(|m| m.get(off, len)).map(g))
    }
}
