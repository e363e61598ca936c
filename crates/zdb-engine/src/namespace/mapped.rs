//! Reads of data segments through read-only memory maps: a GET copies its record straight from
//! the page cache, without a system call. Positional reads remain the fallback (a mapping that
//! cannot be made) and serve the index files.
//!
//! A cold read of a map waits for each page fault's disk read in turn, one readahead window
//! at a time, while a file read goes on in the background. So reads of large records that
//! follow one another in a segment (a file read through zdbfs, a stream of blocks) are
//! followed: the bytes after them ([`READ_AHEAD_WINDOW`]) are announced to the kernel, which
//! reads them while the caller works on what it has ([`ReadAhead`]), in pieces the kernel
//! reads whole ([`HINT_PIECE`]).
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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Records at least this long are announced to the kernel before they are copied, and
/// followed when they are read one after another.
const READ_AHEAD_FROM: usize = 64 * 1024;
/// How far past a stream of reads the kernel is asked to read ahead. A fresh hint is sent
/// once less than half of it is left, so about this much is in flight or cached.
const READ_AHEAD_WINDOW: u64 = 16 << 20;
/// A hint goes to the kernel in pieces of at most this much: it reads no more than the
/// device's largest request (`max(io_pages, ra_pages)`, 4 MiB on virtio, 128 KiB to 1.25 MiB
/// on many disks) of each `madvise(WILLNEED)` and drops the rest, which then faults in one
/// page-fault readahead at a time. In one call, windows larger than 4 MiB measured worse
/// (session 12); in pieces, a 16 MiB window reads a cold file ~10 % faster (session 14).
const HINT_PIECE: u64 = 1 << 20;

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
            self.will_need(off, len as u64);
        }
        Some(bytes)
    }

    /// Ask the kernel to read `len` bytes at `off` (clipped to the map) in the background.
    fn will_need(&self, off: u64, len: u64) {
        let map_len = self.map.len() as u64;
        let end = off.saturating_add(len).min(map_len);
        let mut at = off;
        while at < end {
            let n = (end - at).min(HINT_PIECE);
            // Both fit in usize: they are at most the map's length.
            let _ = self
                .map
                .advise_range(Advice::WillNeed, at as usize, n as usize);
            at += n;
        }
    }

    /// Whether `path` still names the file this map was made from.
    pub fn still_at(&self, path: &std::path::Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }
}

/// Follows reads of large records through one namespace's maps: a read that continues the
/// last one (it starts where that one ended, or inside the window already announced) is a
/// stream, and the window past it is announced before it runs out. Other reads (random
/// ones) announce nothing beyond themselves. Shared by the namespace's readers without a
/// lock: a lost race costs one hint too many or too few, never a wrong byte.
#[derive(Default)]
pub(crate) struct ReadAhead {
    /// `(segment, end)` of the last large read.
    last_end: AtomicU64,
    /// `(segment, offset)` up to which the kernel was asked to read ahead.
    until: AtomicU64,
}

/// `(segment, offset)` in one word; `None` for offsets beyond 4 GiB (not followed).
fn position(seg: u32, off: u64) -> Option<u64> {
    Some((u64::from(seg) << 32) | u64::from(u32::try_from(off).ok()?))
}

impl ReadAhead {
    /// `map` (of segment `seg`) is about to be read at `off`, `len` bytes.
    fn follow(&self, seg: u32, map: &Mapped, off: u64, len: usize) {
        if len < READ_AHEAD_FROM {
            return;
        }
        let end = off + len as u64;
        let (Some(start), Some(stop)) = (position(seg, off), position(seg, end)) else {
            return;
        };
        let previous = self.last_end.swap(stop, Relaxed);
        let until = self.until.load(Relaxed);
        let ahead_here = until >> 32 == u64::from(seg);
        let in_window = ahead_here && start < until && start + READ_AHEAD_WINDOW >= until;
        if previous != start && !in_window {
            return; // not a stream
        }
        if ahead_here && until >= stop + READ_AHEAD_WINDOW / 2 {
            return; // enough announced already
        }
        let from = if ahead_here {
            (until & u64::from(u32::MAX)).max(end)
        } else {
            end
        };
        let to = (end + READ_AHEAD_WINDOW).min(map.map.len() as u64);
        if let Some(next) = position(seg, to) {
            self.until.store(next, Relaxed);
        }
        map.will_need(from, to.saturating_sub(from));
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
            return Ok(map
                .as_deref()
                .and_then(|m| self.read_from(seg, m, off, len))
                .map(g));
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
        Ok(maps
            .get(&seg)
            .and_then(|m| self.read_from(seg, m, off, len))
            .map(g))
    }

    fn read_from<'m>(&self, seg: u32, map: &'m Mapped, off: u64, len: usize) -> Option<&'m [u8]> {
        self.read_ahead.follow(seg, map, off, len);
        map.get(off, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u64 = 128 * 1024;

    #[test]
    fn a_stream_of_large_reads_is_announced_ahead_and_other_reads_are_not() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(64 << 20).unwrap();
        let map = Mapped::new(&file, 64 << 20).unwrap();
        let ra = ReadAhead::default();
        let until = || ra.until.load(Relaxed);
        let read = |block: u64| ra.follow(3, &map, block * BLOCK, BLOCK as usize);

        read(10);
        assert_eq!(until(), 0, "one read is not a stream");
        read(11);
        let first = position(3, 12 * BLOCK + READ_AHEAD_WINDOW).unwrap();
        assert_eq!(
            until(),
            first,
            "a read that continues the last one starts a stream"
        );
        read(12);
        assert_eq!(until(), first, "more than half the window is still ahead");
        read(14);
        read(13); // out of order, inside the window: still the stream
        read(12 + READ_AHEAD_WINDOW / BLOCK / 2); // half the window or less left after it
        assert!(until() > first, "the window moves on before it runs out");

        let before = until();
        read(300);
        read(100);
        assert_eq!(
            until(),
            before,
            "reads far off the stream announce nothing ahead"
        );
        ra.follow(3, &map, 101 * BLOCK, 4096);
        ra.follow(3, &map, 101 * BLOCK + 4096, 4096);
        assert_eq!(until(), before, "small records are not followed");
        let end = 64 << 20;
        ra.follow(3, &map, end - 2 * BLOCK, BLOCK as usize);
        ra.follow(3, &map, end - BLOCK, BLOCK as usize);
        assert_eq!(
            until(),
            position(3, end).unwrap(),
            "the window stops at the map's end"
        );
    }
}
