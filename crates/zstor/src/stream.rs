//! Moving a whole file through the store without going through the page cache.
//!
//! A store reads its source once and a retrieve writes its output once: caching those bytes
//! only evicts what the machine really uses, and allocating a gigabyte of fresh page-cache
//! pages is itself the costliest step on virtual machines whose free memory goes back to
//! the host (every first touch of such a page is a host fault; measured in
//! docs/BENCHMARKS.md). So both directions use `O_DIRECT` with a few page-aligned buffers
//! that are reused for the whole file, on a thread of their own so that the disk works
//! while the caller hashes and codes. A chunk the page cache already holds (a file just
//! written) is copied from there instead (`RWF_NOWAIT` reads never wait for the disk):
//!
//! * [`ChunkReader`] reads ahead: the next chunk is read and fed to the file checksum
//!   while the caller uses this one.
//! * [`ChunkWriter`] writes behind: the caller's chunk is copied into a buffer of the
//!   writer and written while the caller decodes the next one.
//!
//! Where direct I/O is refused (filesystems without it, such as tmpfs on older kernels,
//! or an unaligned tail) reads go on through a buffered descriptor and writes turn
//! `O_DIRECT` off: direct I/O is an optimisation here, never a requirement. This module
//! knows files and buffers only, nothing of chunks' encoding.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use memmap2::MmapMut;

use crate::hash::{Digest128, FileHasher};

/// Direct I/O needs offsets, lengths and memory aligned to the device's logical block;
/// 4 KiB covers every common device (and mmap'd buffers are page aligned).
const ALIGN: usize = 4096;

/// Buffers per stream: one in the caller's hands, one being hashed, one on the disk.
const DEPTH: usize = 3;

/// Buffers of ended streams kept for the next ones, at most this many: a fresh mapping
/// costs a page fault per 4 KiB on first use (a host fault too on VMs that give free memory
/// back), and a daemon storing many files would pay it on every file.
const SPARE_MAX: usize = 8;

static SPARE: std::sync::Mutex<Vec<MmapMut>> = std::sync::Mutex::new(Vec::new());

/// A page-aligned buffer (an anonymous mapping: aligned by construction). Dropped, it goes
/// back to [`SPARE`] for the next stream. Only the bytes a stream fills are ever read out
/// of it, so what an earlier stream left there never leaks.
struct Buf(Option<MmapMut>);

impl Buf {
    fn new(len: usize) -> io::Result<Buf> {
        let len = len.max(1);
        let spare = {
            let mut pool = SPARE.lock().unwrap_or_else(|e| e.into_inner());
            pool.iter()
                .position(|b| b.len() == len)
                .map(|i| pool.swap_remove(i))
        };
        match spare {
            Some(b) => Ok(Buf(Some(b))),
            None => Ok(Buf(Some(MmapMut::map_anon(len)?))),
        }
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let Some(b) = self.0.take() else { return };
        let mut pool = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < SPARE_MAX {
            pool.push(b);
        }
    }
}

/// A file being read from start to end: what the page cache already holds is copied from
/// there, the rest is read with direct I/O (when the filesystem takes it).
struct Source {
    buffered: File,
    direct: Option<File>,
    pos: u64,
}

impl Source {
    fn open(path: &Path, chunk: usize) -> io::Result<Source> {
        let buffered = File::open(path)?;
        // Direct reads need aligned lengths: chunks of another size stay buffered.
        let direct = match chunk % ALIGN {
            0 => std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok(),
            _ => None,
        };
        Ok(Source {
            buffered,
            direct,
            pos: 0,
        })
    }

    /// Fill `buf` (page aligned) unless the file ends first; returns the bytes read.
    fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.direct.is_some() {
            if let Some(n) = self.cached(buf).filter(|&n| n == buf.len()) {
                self.pos += n as u64;
                return Ok(n);
            }
        }
        let mut filled = 0;
        while filled < buf.len() {
            let at = self.pos + filled as u64;
            // Direct while position and memory stay aligned: a short read (the end of the
            // file) ends that.
            let direct = self
                .direct
                .as_ref()
                .filter(|_| filled % ALIGN == 0 && at % ALIGN as u64 == 0);
            match direct
                .unwrap_or(&self.buffered)
                .read_at(&mut buf[filled..], at)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if direct.is_some() && direct_refused(&e) => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        self.pos += filled as u64;
        Ok(filled)
    }

    /// Copy what the page cache holds at the current position without waiting for the
    /// disk (`RWF_NOWAIT`); `None` when nothing is cached (or the kernel lacks the flag).
    fn cached(&self, buf: &mut [u8]) -> Option<usize> {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let off = libc::off_t::try_from(self.pos).ok()?;
        // SAFETY: one iovec describing `buf`, valid and exclusively borrowed for the call.
        let n = unsafe {
            libc::preadv2(
                self.buffered.as_raw_fd(),
                &raw const iov,
                1,
                off,
                libc::RWF_NOWAIT,
            )
        };
        usize::try_from(n).ok()
    }
}

/// Turn `O_DIRECT` off on `file` (offset and everything else are kept).
fn go_buffered(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an error means "not with direct I/O" rather than a failed read or write.
fn direct_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// What goes from stage to stage of a reader: a buffer and how much of it is data.
type Filled = io::Result<(Buf, usize)>;

/// A file read chunk by chunk, the next chunks read ahead and hashed on threads.
pub struct ChunkReader {
    filled: Option<Receiver<Filled>>,
    empty: Option<SyncSender<Buf>>,
    reading: Option<JoinHandle<()>>,
    hashing: Option<JoinHandle<Digest128>>,
    current: Option<(Buf, usize)>,
    chunk: usize,
    /// The last chunk (short or empty) has been handed out.
    ended: bool,
}

impl ChunkReader {
    /// Start reading `path` in chunks of `chunk` bytes (a multiple of 4 KiB keeps every
    /// read direct; any other size still works, buffered). The file's blake2b-128 is
    /// computed on a thread of its own as the chunks go by (the slowest step of a store,
    /// kept off the caller's path); [`ChunkReader::checksum`] returns it once every chunk
    /// has been taken.
    pub fn open(path: &Path, chunk: usize) -> io::Result<Self> {
        let source = Source::open(path, chunk)?;
        let (empty, empty_rx) = buffers(chunk)?;
        let (read_tx, read_rx) = sync_channel(DEPTH);
        let reading = std::thread::Builder::new()
            .name("zstor-read".into())
            .spawn(move || read_loop(source, empty_rx, read_tx))?;
        let (filled, hashing) = hash_stage(read_rx)?;
        Ok(ChunkReader {
            filled: Some(filled),
            empty: Some(empty),
            reading: Some(reading),
            hashing: Some(hashing),
            current: None,
            chunk,
            ended: false,
        })
    }

    /// The next chunk: full but for the last one; empty at end of file.
    pub fn next_chunk(&mut self) -> io::Result<&[u8]> {
        if let (Some((buf, _)), Some(empty)) = (self.current.take(), &self.empty) {
            // The thread may be gone after an error or the end; then the buffer just drops.
            let _ = empty.send(buf);
        }
        match self.filled.as_ref().map(Receiver::recv) {
            Some(Ok(Ok(got))) => {
                let (buf, len) = self.current.insert(got);
                self.ended |= *len < self.chunk;
                Ok(&buf[..*len])
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) | None => {
                self.ended = true;
                Ok(&[])
            }
        }
    }

    /// The blake2b-128 of the whole file once every chunk was taken (`None` before).
    pub fn checksum(mut self) -> Option<Digest128> {
        if !self.ended {
            return None;
        }
        self.filled = None;
        self.hashing.take()?.join().ok()
    }
}

impl Drop for ChunkReader {
    fn drop(&mut self) {
        // Closing our ends stops the threads at their next send or receive.
        self.filled = None;
        self.empty = None;
        if let Some(t) = self.reading.take() {
            let _ = t.join();
        }
        if let Some(t) = self.hashing.take() {
            let _ = t.join();
        }
    }
}

fn read_loop(mut source: Source, empty: Receiver<Buf>, filled: SyncSender<Filled>) {
    while let Ok(mut buf) = empty.recv() {
        let got = source.read_chunk(&mut buf);
        let end = matches!(got, Ok(n) if n < buf.len()) || got.is_err();
        if filled.send(got.map(|n| (buf, n))).is_err() || end {
            return;
        }
    }
}

/// A pool of [`DEPTH`] empty buffers of `chunk` bytes: where they go back, where they wait.
fn buffers(chunk: usize) -> io::Result<(SyncSender<Buf>, Receiver<Buf>)> {
    let (tx, rx) = sync_channel(DEPTH);
    for _ in 0..DEPTH {
        tx.send(Buf::new(chunk)?).expect("receiver alive");
    }
    Ok((tx, rx))
}

/// A thread between `input` and the returned receiver feeding every chunk to the file
/// checksum.
fn hash_stage(input: Receiver<Filled>) -> io::Result<(Receiver<Filled>, JoinHandle<Digest128>)> {
    let (tx, rx) = sync_channel(DEPTH);
    let t = std::thread::Builder::new()
        .name("zstor-hash".into())
        .spawn(move || hash_loop(input, tx))?;
    Ok((rx, t))
}

/// Hash every chunk passing from `from` to `to`; the digest once `from` closes.
fn hash_loop(from: Receiver<Filled>, to: SyncSender<Filled>) -> Digest128 {
    let mut hasher = FileHasher::new();
    while let Ok(got) = from.recv() {
        if let Ok((buf, len)) = &got {
            hasher.update(&buf[..*len]);
        }
        if to.send(got).is_err() {
            break;
        }
    }
    hasher.finish()
}

/// A file written chunk by chunk, each chunk hashed and written behind on threads.
pub struct ChunkWriter {
    jobs: Option<SyncSender<Filled>>,
    empty: Receiver<Buf>,
    writing: Option<JoinHandle<io::Result<File>>>,
    hashing: Option<JoinHandle<Digest128>>,
    chunk: usize,
}

impl ChunkWriter {
    /// Create (or truncate) `path` for chunks of up to `chunk` bytes. The blake2b-128 of
    /// everything written is computed on a thread of its own; [`ChunkWriter::finish`]
    /// returns it.
    pub fn create(path: &Path, chunk: usize) -> io::Result<Self> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        let (file, direct) = match opts.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => (f, true),
            Err(e) if direct_refused(&e) => (opts.open(path)?, false),
            Err(e) => return Err(e),
        };
        let (empty_tx, empty) = buffers(chunk)?;
        let (jobs, jobs_rx) = sync_channel(DEPTH);
        let (to_disk, hashing) = hash_stage(jobs_rx)?;
        let writing = std::thread::Builder::new()
            .name("zstor-write".into())
            .spawn(move || write_loop(file, direct, to_disk, empty_tx))?;
        Ok(ChunkWriter {
            jobs: Some(jobs),
            empty,
            writing: Some(writing),
            hashing: Some(hashing),
            chunk,
        })
    }

    /// Queue `data` (at most the chunk size given at creation) for writing. An error of an
    /// earlier write comes back here or from [`ChunkWriter::finish`].
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() > self.chunk {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "chunk larger than the writer's buffers",
            ));
        }
        let Ok(mut buf) = self.empty.recv() else {
            return Err(self.stop());
        };
        buf[..data.len()].copy_from_slice(data);
        match self.jobs.as_ref().map(|j| j.send(Ok((buf, data.len())))) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stop()),
        }
    }

    /// Wait for every queued write; returns the file (not yet synced) and the checksum of
    /// all that was written.
    pub fn finish(mut self) -> io::Result<(File, Digest128)> {
        self.jobs = None;
        let written = match self.writing.take().map(JoinHandle::join) {
            Some(Ok(r)) => r?,
            _ => return Err(io::Error::other("write thread panicked")),
        };
        match self.hashing.take().map(JoinHandle::join) {
            Some(Ok(sum)) => Ok((written, sum)),
            _ => Err(io::Error::other("hash thread panicked")),
        }
    }

    /// The writing thread stopped early: its error.
    fn stop(&mut self) -> io::Error {
        self.jobs = None;
        match self.writing.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("write thread ended"),
        }
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.writing.take() {
            let _ = t.join();
        }
        if let Some(t) = self.hashing.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    mut file: File,
    mut direct: bool,
    jobs: Receiver<Filled>,
    empty: SyncSender<Buf>,
) -> io::Result<File> {
    while let Ok(job) = jobs.recv() {
        let (buf, len) = job?;
        write_full(&mut file, &buf[..len], &mut direct)?;
        // The caller may already be gone; then the buffer just drops.
        let _ = empty.send(buf);
    }
    Ok(file)
}

/// Write all of `data`. Leaves direct I/O for good when the kernel refuses it or the
/// position or length stops being aligned (only the last chunk of a file can be short).
fn write_full(file: &mut File, data: &[u8], direct: &mut bool) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        if *direct && (done % ALIGN != 0 || data.len() % ALIGN != 0) {
            go_buffered(file)?;
            *direct = false;
        }
        match file.write(&data[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if *direct && direct_refused(&e) => {
                go_buffered(file)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4093) as u8).collect()
    }

    /// Write `path` back and drop its pages from the page cache.
    fn drop_cached(path: &Path) {
        let f = File::open(path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: plain advice on a descriptor we own.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }

    fn read_all(path: &Path, chunk: usize) -> Vec<u8> {
        let mut r = ChunkReader::open(path, chunk).unwrap();
        let mut out = Vec::new();
        loop {
            let c = r.next_chunk().unwrap();
            assert!(c.len() <= chunk);
            if c.is_empty() {
                return out;
            }
            out.extend_from_slice(c);
        }
    }

    #[test]
    fn reads_files_of_every_shape() {
        let dir = tempfile::tempdir().unwrap();
        for (len, chunk) in [
            (0, 8192),
            (1, 8192),
            (8192, 8192),
            (8193, 8192),
            (3 * 8192 + 5000, 8192),
            (100_000, 3000), // unaligned chunk size: buffered
        ] {
            let p = dir.path().join(format!("f{len}-{chunk}"));
            let data = pattern(len);
            std::fs::write(&p, &data).unwrap();
            // In the page cache (copied from there), then out of it (read direct).
            assert_eq!(read_all(&p, chunk), data, "cached: len {len} chunk {chunk}");
            drop_cached(&p);
            assert_eq!(read_all(&p, chunk), data, "cold: len {len} chunk {chunk}");
        }
    }

    #[test]
    fn writes_files_of_every_shape() {
        let dir = tempfile::tempdir().unwrap();
        for (len, chunk) in [
            (0, 8192),
            (8192, 8192),
            (5 * 8192 + 77, 8192),
            (10_000, 3000),
        ] {
            let p = dir.path().join(format!("w{len}-{chunk}"));
            let data = pattern(len);
            let mut w = ChunkWriter::create(&p, chunk).unwrap();
            for c in data.chunks(chunk) {
                w.write(c).unwrap();
            }
            w.finish().unwrap().0.sync_all().unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), data, "len {len} chunk {chunk}");
        }
    }

    #[test]
    fn a_reader_gives_the_file_checksum() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 100, 8192, 5 * 8192, 5 * 8192 + 1] {
            let p = dir.path().join(format!("h{len}"));
            let data = pattern(len);
            std::fs::write(&p, &data).unwrap();
            let mut r = ChunkReader::open(&p, 8192).unwrap();
            let mut seen = Vec::new();
            loop {
                let c = r.next_chunk().unwrap();
                if c.is_empty() {
                    break;
                }
                seen.extend_from_slice(c);
            }
            assert_eq!(seen, data);
            let expected = crate::hash::blake2b_128(&data);
            assert_eq!(r.checksum(), Some(expected), "len {len}");
        }
        // Not read to the end: no checksum (a partial one would be wrong).
        let p = dir.path().join(format!("h{}", 5 * 8192));
        let mut r = ChunkReader::open(&p, 8192).unwrap();
        r.next_chunk().unwrap();
        assert_eq!(r.checksum(), None);
    }

    #[test]
    fn a_reader_dropped_early_stops_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, pattern(10 * 8192)).unwrap();
        let mut r = ChunkReader::open(&p, 8192).unwrap();
        assert_eq!(r.next_chunk().unwrap().len(), 8192);
        drop(r); // joins the threads: the test would hang otherwise
    }

    #[test]
    fn a_writer_gives_the_checksum_of_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hw");
        let data = pattern(3 * 8192 + 10);
        let mut w = ChunkWriter::create(&p, 8192).unwrap();
        for c in data.chunks(8192) {
            w.write(c).unwrap();
        }
        let (_, sum) = w.finish().unwrap();
        assert_eq!(sum, crate::hash::blake2b_128(&data));
        assert_eq!(std::fs::read(&p).unwrap(), data);
    }

    #[test]
    fn an_oversized_chunk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::create(&dir.path().join("x"), 4096).unwrap();
        let e = w.write(&[0u8; 4097]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn write_errors_reach_the_caller() {
        // /dev/full fails every write with ENOSPC (opened buffered: it refuses O_DIRECT).
        let mut w = ChunkWriter::create(Path::new("/dev/full"), 4096).unwrap();
        let mut first = None;
        for _ in 0..4 {
            if let Err(e) = w.write(&[1u8; 4096]) {
                first = Some(e);
                break;
            }
        }
        let e = match first {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    }
}
