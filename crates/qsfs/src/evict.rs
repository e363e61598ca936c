//! Cache keeping: delete local data segments that the manifest says are stored, least recently
//! used first, until the local data folder is under its limit (or all of them, on request).
//! The disk holding the cache keeps [`keep_free`] free whatever the limit says (a limit
//! larger than the disk, or another user of it), and a segment is fetched back only when it
//! fits ([`fetch_fits`]; otherwise its reads are served range by range).
//!
//! The listing and the least-recently-used order are zstor's (`zstor::cache`, the one
//! evictor's mechanism); only segments that may ever leave (not open, not `zdbfs-temp`) and
//! that the manifest names with the exact local size are candidates, so staged-but-not-
//! uploaded segments never are. zdbfs's metadata namespace stays unless asked for (the tree
//! stays browsable with the backends unreachable, and it is small). The engine keeps
//! mapped segments readable until its handle release notices the file is gone; the next
//! read after that fetches the segment back (see `crate::offload`).

use std::path::Path;

use service_kit::sys::{self, Space};
use zstor::cache;

use crate::manifest::Manifest;

/// Free space kept on the disk holding the cache whatever the cache limit says, at most.
const KEEP_FREE_MAX: u64 = 1 << 30;

/// The free space eviction keeps on a disk of `space`: a fifth of it, at most
/// [`KEEP_FREE_MAX`] (above the engine's write reserve, so writes go on once stored segments
/// have gone).
pub fn keep_free(space: &Space) -> u64 {
    (space.total / 5).min(KEEP_FREE_MAX)
}

/// The most the cache under `data_dir` may hold so that its disk keeps [`keep_free`]: what
/// it holds less what is missing of that (`u64::MAX` while it is free).
pub fn disk_room_limit(data_dir: &Path) -> anyhow::Result<u64> {
    use anyhow::Context;
    let space =
        sys::space(data_dir).with_context(|| format!("free space of {}", data_dir.display()))?;
    let keep = keep_free(&space);
    if space.available >= keep {
        return Ok(u64::MAX);
    }
    let held = local_bytes(data_dir).with_context(|| format!("listing {}", data_dir.display()))?;
    Ok(held.saturating_sub(keep - space.available))
}

/// Whether a fetched segment of `size` bytes fits in the folder `dir` while half of
/// [`keep_free`] stays free (writes keep their room; eviction makes the rest). Without room,
/// reads of evicted data are served range by range from the backends instead.
pub fn fetch_fits(dir: &Path, size: u64) -> bool {
    sys::space(dir).map_or(true, |s| {
        s.available >= size.saturating_add(keep_free(&s) / 2)
    })
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvictReport {
    /// Bytes of data segments present before the pass.
    pub before: u64,
    pub evicted_files: u64,
    pub evicted_bytes: u64,
}

/// Bytes of local data segments under `data_dir`.
pub fn local_bytes(data_dir: &Path) -> std::io::Result<u64> {
    Ok(cache::segments(data_dir)?.iter().map(|s| s.size).sum())
}

/// One pass: evict stored segments, least recently used first, while over `limit`; with
/// `limit` = 0 every stored segment goes; zdbfs's metadata only with `metadata`.
pub fn pass(
    data_dir: &Path,
    manifest: &Manifest,
    limit: u64,
    metadata: bool,
) -> std::io::Result<EvictReport> {
    let mut all = cache::segments(data_dir)?;
    let mut total: u64 = all.iter().map(|s| s.size).sum();
    let mut report = EvictReport {
        before: total,
        ..Default::default()
    };
    if total <= limit && limit > 0 {
        return Ok(report);
    }
    all.retain(|s| {
        let may_go = if metadata {
            s.evictable()
        } else {
            s.evictable_for_room()
        };
        may_go && manifest.is_stored(&s.namespace, s.number, s.size)
    });
    for s in all {
        if total <= limit && limit > 0 {
            break;
        }
        match std::fs::remove_file(&s.path) {
            Ok(()) => {
                total = total.saturating_sub(s.size);
                report.evicted_files += 1;
                report.evicted_bytes += s.size;
                tracing::debug!(path = %s.path.display(), bytes = s.size, "segment evicted");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if report.evicted_files > 0 {
        tracing::info!(
            files = report.evicted_files,
            bytes = report.evicted_bytes,
            "stored segments evicted from the local cache"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::StoredSegment;

    fn file(dir: &Path, ns: &str, name: &str, len: usize) {
        std::fs::create_dir_all(dir.join(ns)).unwrap();
        std::fs::write(dir.join(ns).join(name), vec![1u8; len]).unwrap();
    }

    #[test]
    fn only_stored_segments_of_the_right_size_go() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        file(d, "a", "d0", 100);
        file(d, "a", "d1", 100); // stored with another size: changed since, kept
        file(d, "a", "d2", 100); // open segment, not in the manifest
        file(d, "zdbfs-temp", "d0", 100);
        file(d, "a", "i0", 100); // index files are never candidates
        let mut m = Manifest::new();
        let ns = m.namespaces.entry("a".into()).or_default();
        for (seg, size) in [(0, 100), (1, 99)] {
            let checksum = String::new();
            ns.data.insert(
                seg,
                StoredSegment {
                    size,
                    checksum,
                    version: None,
                },
            );
        }
        assert_eq!(local_bytes(d).unwrap(), 400);
        file(d, zstor::cache::META_NAMESPACE, "d0", 100);
        file(d, zstor::cache::META_NAMESPACE, "d1", 1);
        let meta = m
            .namespaces
            .entry(zstor::cache::META_NAMESPACE.into())
            .or_default();
        meta.data.insert(
            0,
            StoredSegment {
                size: 100,
                checksum: String::new(),
                version: None,
            },
        );
        let r = pass(d, &m, 1000, false).unwrap();
        assert_eq!(r.evicted_files, 0, "under the limit: nothing to do");
        // To make room the filesystem metadata stays, whatever the pressure.
        let r = pass(d, &m, 1, false).unwrap();
        assert_eq!(r.evicted_files, 1);
        assert!(d.join("zdbfs-meta/d0").exists());
        file(d, "a", "d0", 100);
        // Everything stored, but the metadata.
        let r = pass(d, &m, 0, false).unwrap();
        assert_eq!((r.evicted_files, r.evicted_bytes), (1, 100));
        assert!(d.join("zdbfs-meta/d0").exists());
        file(d, "a", "d0", 100);
        // Asked for the metadata too: it goes.
        let r = pass(d, &m, 0, true).unwrap();
        assert_eq!((r.before, r.evicted_files, r.evicted_bytes), (501, 2, 200));
        assert!(!d.join("a/d0").exists());
        assert!(!d.join("zdbfs-meta/d0").exists());
        for kept in ["a/d1", "a/d2", "zdbfs-temp/d0", "a/i0"] {
            assert!(d.join(kept).exists(), "{kept}");
        }
    }
}
