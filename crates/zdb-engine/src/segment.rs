//! Segment files: naming, creation, positional I/O and chunked walks over records and entries.
//!
//! A namespace's data segment `N` (`dN` under the data directory) and index segment `N` (`iN` under
//! the index directory), named as 0-db names them, are opened and closed together.

use crate::error::{IoContext, Result};
use crate::format::{
    self, DecodeError, FileHeader, FileKind, IndexEntry, RecordHeader, FILE_HEADER_LEN,
};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub fn data_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("d{seg}"))
}

pub fn index_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("i{seg}"))
}

/// Segment ids present in `dir` for files named `{prefix}NNNNN`, sorted.
pub fn list_segments(dir: &Path, prefix: &str) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e).at(dir),
    };
    for ent in rd {
        let ent = ent.at(dir)?;
        let name = ent.file_name();
        if let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.parse().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Create (or truncate) a segment file holding just its header, durably.
pub fn create(path: &Path, header: &FileHeader) -> Result<File> {
    let f = crate::private::private_file()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .at(path)?;
    f.write_all_at(&header.encode(), 0).at(path)?;
    f.sync_all().at(path)?;
    Ok(f)
}

/// Open an existing segment file read-write and check its header.
pub fn open_rw(path: &Path, kind: FileKind) -> Result<(File, FileHeader, u64)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let len = f.metadata().at(path)?.len();
    let mut hb = [0u8; FILE_HEADER_LEN];
    let header = if len >= FILE_HEADER_LEN as u64 {
        f.read_exact_at(&mut hb, 0).at(path)?;
        FileHeader::decode(&hb, kind)
    } else {
        None
    };
    let header = header.ok_or_else(|| crate::Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        what: "invalid segment header",
    })?;
    Ok((f, header, len))
}

/// Read exactly `len` bytes at `off`.
pub fn read_at(f: &File, path: &Path, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, off).at(path)?;
    Ok(buf)
}

/// How a walk over a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkEnd {
    /// Offset just past the last valid item.
    pub valid_end: u64,
    /// Why the walk stopped before the end of the file, if it did.
    pub stopped: Option<DecodeError>,
}

const CHUNK: usize = 1 << 20;

/// Walk the index entries of a segment from `start` to `end`, calling `f(offset, entry, key)`.
pub fn walk_entries(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    mut f: impl FnMut(u64, &IndexEntry, &[u8]) -> Result<()>,
) -> Result<WalkEnd> {
    walk(
        file,
        path,
        start,
        end,
        |off, b| match format::decode_entry(b) {
            Ok((e, key, n)) => f(off, &e, key).map(|()| Ok(n)),
            Err(e) => Ok(Err(e)),
        },
    )
}

/// Walk the data records of a segment from `start` to `end`, calling `f(offset, header, key, payload)`.
pub fn walk_records(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    mut f: impl FnMut(u64, &RecordHeader, &[u8], &[u8]) -> Result<()>,
) -> Result<WalkEnd> {
    walk(
        file,
        path,
        start,
        end,
        |off, b| match format::decode_record(b) {
            Ok((h, key, payload)) => f(off, &h, key, payload).map(|()| Ok(h.record_len())),
            Err(e) => Ok(Err(e)),
        },
    )
}

/// Chunked sequential decoder shared by both walks: keeps a carry-over so items may straddle
/// chunk boundaries, and reads more only when the next item is incomplete. `step` decodes and
/// visits one item at the start of its slice and says how many bytes it took.
fn walk(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    mut step: impl FnMut(u64, &[u8]) -> Result<Result<usize, DecodeError>>,
) -> Result<WalkEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_off = start; // file offset of buf[0]
    let mut pos = 0usize; // position in buf of the next item
    loop {
        let here = buf_off + pos as u64;
        if here >= end {
            return Ok(WalkEnd {
                valid_end: here,
                stopped: None,
            });
        }
        match step(here, &buf[pos..])? {
            Ok(n) => pos += n,
            Err(DecodeError::Short { need }) => {
                let avail = end - here;
                if (buf.len() - pos) as u64 >= avail {
                    // Everything up to `end` is buffered and the item is still incomplete: torn tail.
                    return Ok(WalkEnd {
                        valid_end: here,
                        stopped: Some(DecodeError::Short { need }),
                    });
                }
                buf.drain(..pos);
                buf_off = here;
                pos = 0;
                let read_len = (CHUNK.max(need) as u64).min(avail) as usize;
                let have = buf.len();
                if read_len > have {
                    buf.resize(read_len, 0);
                    file.read_exact_at(&mut buf[have..], buf_off + have as u64)
                        .at(path)?;
                }
            }
            Err(e) => {
                return Ok(WalkEnd {
                    valid_end: here,
                    stopped: Some(e),
                })
            }
        }
    }
}
