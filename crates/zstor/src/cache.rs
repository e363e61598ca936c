//! The local zdb data folder as a cache: its data segments (`<namespace>/d<N>`), which of
//! them may ever be evicted, and their least-recently-used order. The one evictor's
//! mechanism, shared by `zstor monitor` (which stores and verifies a segment before it
//! deletes it) and qsfs (which deletes what its manifest says is stored).
//!
//! Never evictable: the open segment of a namespace (the highest `N`: zdb appends to it)
//! and anything of zdbfs's temporary namespace. Kept under cache pressure (evicted only when
//! asked for explicitly): zdbfs's metadata namespace, which is small and which every
//! `ls`, `stat` and open needs: the tree stays browsable with the backends unreachable.
//! Index files, descriptors and other files are not segments at all.
//!
//! Must not touch: any file (this module only lists), or how a caller decides that a
//! segment is safely stored.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The namespace zdbfs uses for temporary files: never offloaded, never evicted.
pub const TEMP_NAMESPACE: &str = "zdbfs-temp";

/// The namespace zdbfs keeps its inodes and directories in: kept under cache pressure.
pub const META_NAMESPACE: &str = "zdbfs-meta";

/// A data segment file of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub namespace: String,
    pub number: u32,
    /// Apparent size in bytes.
    pub size: u64,
    /// Last use: the later of atime and mtime (under `noatime`/`relatime` the atime may lag,
    /// so the mtime stands in for it).
    pub used: SystemTime,
    /// The highest segment of its namespace: zdb's open segment.
    pub open: bool,
}

impl Segment {
    /// Whether the segment may ever leave the cache.
    pub fn evictable(&self) -> bool {
        !self.open && self.namespace != TEMP_NAMESPACE
    }

    /// Whether the segment may leave to make room (evictable, and not filesystem metadata).
    pub fn evictable_for_room(&self) -> bool {
        self.evictable() && self.namespace != META_NAMESPACE
    }
}

/// The segment number of a data segment file name `d<N>`.
pub fn segment_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('d')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every data segment under `data_dir`, least recently used first (ties by path). Files
/// deleted while listing are skipped; symbolic links are not followed.
pub fn segments(data_dir: &Path) -> std::io::Result<Vec<Segment>> {
    let mut out = Vec::new();
    for ns in std::fs::read_dir(data_dir)? {
        let ns = ns?;
        if !ns.file_type()?.is_dir() {
            continue;
        }
        let namespace = ns.file_name().to_string_lossy().into_owned();
        let first = out.len();
        for f in std::fs::read_dir(ns.path())? {
            let f = f?;
            let Some(number) = f.file_name().to_str().and_then(segment_number) else {
                continue;
            };
            let path = f.path();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.push(Segment {
                path,
                namespace: namespace.clone(),
                number,
                size: meta.len(),
                used: meta.accessed().map_or(mtime, |a| a.max(mtime)),
                open: false,
            });
        }
        if let Some(open) = out[first..].iter_mut().max_by_key(|s| s.number) {
            open.open = true;
        }
    }
    out.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_segments_marks_the_open_one_and_orders_by_use() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (ns, name) in [
            ("a", "d0"),
            ("a", "d1"),
            ("a", "d10"),
            ("a", "i0"),
            ("a", "dx"),
        ] {
            std::fs::create_dir_all(d.join(ns)).unwrap();
            std::fs::write(d.join(ns).join(name), b"123").unwrap();
        }
        std::fs::create_dir_all(d.join(TEMP_NAMESPACE)).unwrap();
        std::fs::write(d.join(TEMP_NAMESPACE).join("d0"), b"1").unwrap();
        std::fs::write(d.join("stray"), b"1").unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(d.join("a/d1"))
            .unwrap()
            .set_times(
                std::fs::FileTimes::new()
                    .set_accessed(old)
                    .set_modified(old),
            )
            .unwrap();
        let list = segments(d).unwrap();
        let names: Vec<_> = list
            .iter()
            .map(|s| format!("{}/{}", s.namespace, s.number))
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], "a/1", "least recently used first");
        let evictable: Vec<_> = list
            .iter()
            .filter(|s| s.evictable())
            .map(|s| s.number)
            .collect();
        assert_eq!(evictable.len(), 2, "not d10 (open), not the temp namespace");
        let meta = Segment {
            namespace: META_NAMESPACE.into(),
            ..list[0].clone()
        };
        assert!(meta.evictable() && !meta.evictable_for_room());
        assert!(list.iter().any(|s| s.number == 10 && s.open));
    }
}
