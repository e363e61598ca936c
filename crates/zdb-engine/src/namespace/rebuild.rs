//! Rebuilding a namespace's index from its data segments alone, which hold every key: used when
//! the index is missing, damaged, or points past its data. The new index files are written
//! beside the old ones (`iN.rebuild`) and swapped in only when all are complete.

use crate::error::{Error, IoContext, Result};
use crate::format::{self, FileHeader, FileKind, IndexEntry, FILE_HEADER_LEN};
use crate::segment;
use crate::settings::sync_dir;
use crate::Mode;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Write a fresh index for every data segment by walking the records in order. The new index
/// files are written beside the old ones and swapped in only when complete.
pub(super) fn rebuild_from_data(
    data_dir: &Path,
    index_dir: &Path,
    mode: Mode,
    data_segs: &[u32],
) -> Result<Vec<u32>> {
    let new_path = |seg: u32| index_dir.join(format!("i{seg}.rebuild"));
    let mut headers = Vec::with_capacity(data_segs.len());
    for &seg in data_segs {
        let dpath = segment::data_path(data_dir, seg);
        let (data, header, len) = segment::open_rw(&dpath, FileKind::Data)?;
        if header.mode != mode {
            return Err(Error::Corrupt {
                path: dpath,
                offset: 0,
                what: "data segment of another mode",
            });
        }
        headers.push((seg, data, header, len, dpath));
    }
    let bodies = match mode {
        Mode::User => rebuild_user(&headers)?,
        Mode::Seq => rebuild_seq(&headers)?,
    };
    for ((seg, _, header, _, _), body) in headers.iter().zip(bodies) {
        let ipath = new_path(*seg);
        let index = segment::create(
            &ipath,
            &FileHeader {
                kind: FileKind::Index,
                ..*header
            },
        )?;
        index
            .write_all_at(&body, FILE_HEADER_LEN as u64)
            .at(&ipath)?;
        index.sync_all().at(&ipath)?;
    }
    for seg in segment::list_segments(index_dir, "i")? {
        if !data_segs.contains(&seg) {
            let p = segment::index_path(index_dir, seg);
            std::fs::rename(&p, index_dir.join(format!("i{seg}.damaged"))).at(&p)?;
        }
    }
    for &seg in data_segs {
        let p = segment::index_path(index_dir, seg);
        std::fs::rename(new_path(seg), &p).at(&p)?;
    }
    sync_dir(index_dir)?;
    Ok(data_segs.to_vec())
}

type DataSegment = (u32, File, FileHeader, u64, PathBuf);

/// User mode: every record becomes an entry of its own segment's index, in write order.
fn rebuild_user(segs: &[DataSegment]) -> Result<Vec<Vec<u8>>> {
    let mut bodies = Vec::with_capacity(segs.len());
    for (seg, data, _, len, dpath) in segs {
        let mut body = Vec::new();
        let end = segment::walk_records(
            data,
            dpath,
            FILE_HEADER_LEN as u64,
            *len,
            |off, h, key, _| {
                let e = IndexEntry::for_record(*seg, off as u32, h);
                format::encode_entry(&mut body, &e, key);
                Ok(())
            },
        )?;
        warn_damaged_tail(dpath, end, *len);
        bodies.push(body);
    }
    Ok(bodies)
}

/// Sequential mode: an id's entry sits at a fixed position, in the index segment whose range of
/// ids (from the data segment headers' first ids) holds it; the newest record of each id wins.
/// Ids with no record left become deleted placeholders, so every other id keeps its position.
fn rebuild_seq(segs: &[DataSegment]) -> Result<Vec<Vec<u8>>> {
    let hole = IndexEntry::hole(0);
    let mut latest: Vec<IndexEntry> = Vec::new();
    for (seg, data, _, len, dpath) in segs {
        let end = segment::walk_records(
            data,
            dpath,
            FILE_HEADER_LEN as u64,
            *len,
            |off, h, key, _| {
                let Ok(id) = <[u8; 4]>::try_from(key).map(u32::from_le_bytes) else {
                    return Ok(());
                };
                if id as usize >= latest.len() {
                    latest.resize(id as usize + 1, hole);
                }
                latest[id as usize] = IndexEntry::for_record(*seg, off as u32, h);
                Ok(())
            },
        )?;
        warn_damaged_tail(dpath, end, *len);
    }
    let mut bodies = Vec::with_capacity(segs.len());
    for (i, (_, _, header, _, dpath)) in segs.iter().enumerate() {
        let first = header.first_id as usize;
        let next = match segs.get(i + 1) {
            Some((_, _, h, _, _)) => h.first_id as usize,
            None => latest.len().max(first),
        };
        if next < first {
            return Err(Error::Corrupt {
                path: dpath.clone(),
                offset: 0,
                what: "segment first ids out of order",
            });
        }
        let mut body = Vec::with_capacity((next - first) * format::SEQ_ENTRY_LEN);
        for id in first..next {
            format::encode_entry(&mut body, latest.get(id).unwrap_or(&hole), &[]);
        }
        bodies.push(body);
    }
    Ok(bodies)
}

fn warn_damaged_tail(path: &Path, end: segment::WalkEnd, len: u64) {
    if end.valid_end < len {
        tracing::warn!(path = %path.display(), offset = end.valid_end, "data segment ends with damaged bytes; records after them are not indexed");
    }
}
