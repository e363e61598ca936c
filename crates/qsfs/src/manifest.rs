//! What has been offloaded: the manifest, and the names of the objects qsfs stores in zstor.
//!
//! Objects (names given to `zstor`; its metadata key is derived from them):
//! - `/qsfs/data/<ns>/d<N>`: closed data segment `N` as it closed (never changed in place);
//! - `/qsfs/data/<ns>/d<N>@<V>`: data segment `N` after compaction emptied it, stored with
//!   checkpoint `V` (the one that also holds the records moved out of it); the older copy is
//!   deleted once the manifest naming this one is stored;
//! - `/qsfs/index/<ns>/i<K>@<V>`: index segment `K` as it was at checkpoint `V` (index
//!   segments change in place, so each checkpoint stores new versions under new names and an
//!   older consistent set is never overwritten by a half-uploaded newer one);
//! - `/qsfs/index/<ns>/zdb-namespace@<V>`: the namespace descriptor at checkpoint `V`;
//! - `/qsfs/manifest`: this manifest, stored last for each checkpoint, so whatever it names
//!   is complete. A restore reads it first.
//!
//! A copy lives in the cache folder (`manifest.json`) so eviction knows, across restarts,
//! which local segments are safe to delete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the manifest object.
pub const MANIFEST_NAME: &str = "/qsfs/manifest";

/// Version of the manifest layout.
pub const MANIFEST_FORMAT: u32 = 1;

/// Object name of data segment `seg` of `ns`: as it closed (`version` none), or as stored
/// with checkpoint `version` after compaction emptied it.
pub fn data_name(ns: &str, seg: u32, version: Option<u32>) -> PathBuf {
    match version {
        None => PathBuf::from(format!("/qsfs/data/{ns}/d{seg}")),
        Some(v) => PathBuf::from(format!("/qsfs/data/{ns}/d{seg}@{v}")),
    }
}

/// Object name of index segment `seg` of `ns` as of checkpoint `version`.
pub fn index_name(ns: &str, seg: u32, version: u32) -> PathBuf {
    PathBuf::from(format!("/qsfs/index/{ns}/i{seg}@{version}"))
}

/// Object name of the descriptor of `ns` as of checkpoint `version`.
pub fn descriptor_name(ns: &str, version: u32) -> PathBuf {
    PathBuf::from(format!("/qsfs/index/{ns}/zdb-namespace@{version}"))
}

/// The segment number of a segment file name `d<N>` or `i<N>`.
pub fn segment_number(name: &str, prefix: char) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every offloaded namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub namespaces: BTreeMap<String, NsManifest>,
}

/// One namespace: its last complete checkpoint and where each file's copy is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NsManifest {
    /// The data segment closed by the last complete checkpoint.
    pub checkpoint: u32,
    /// Stored data segments.
    pub data: BTreeMap<u32, StoredSegment>,
    /// Index segment → the checkpoint whose copy of it is the latest.
    pub index: BTreeMap<u32, u32>,
    /// Checkpoint whose descriptor copy is the latest.
    pub descriptor: u32,
}

/// A stored data segment, as it was when stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSegment {
    pub size: u64,
    /// blake2b-128 of the file, hex (zstor's file checksum).
    pub checksum: String,
    /// The checkpoint that stored this copy in place of an earlier one (after compaction);
    /// none for the copy stored when the segment closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

impl StoredSegment {
    /// The object holding this copy of segment `seg` of `ns`.
    pub fn name(&self, ns: &str, seg: u32) -> PathBuf {
        data_name(ns, seg, self.version)
    }
}

/// Why the manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a qsfs manifest: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Manifest {
    pub fn new() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            namespaces: BTreeMap::new(),
        }
    }

    /// Parse manifest bytes (local copy or retrieved object).
    pub fn decode(bytes: &[u8], origin: &Path) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(ManifestError::Invalid {
                path: origin.to_path_buf(),
                reason: format!("format {} (this qsfs reads {MANIFEST_FORMAT})", m.format),
            });
        }
        Ok(m)
    }

    pub fn encode(&self) -> Vec<u8> {
        // A tree of maps, strings and integers always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The local copy at `path`; a missing file is an empty manifest.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        match std::fs::read(path) {
            Ok(b) => Self::decode(&b, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::new()),
            Err(source) => Err(ManifestError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Replace the local copy at `path` atomically (temp file, fsync, rename, fsync folder).
    pub fn save(&self, path: &Path) -> Result<(), ManifestError> {
        write_atomic(path, &self.encode()).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The object holding data segment `seg` of `ns` (the name it closed under when this
    /// manifest has no copy of it).
    pub fn data_object(&self, ns: &str, seg: u32) -> PathBuf {
        match self.namespaces.get(ns).and_then(|n| n.data.get(&seg)) {
            Some(stored) => stored.name(ns, seg),
            None => data_name(ns, seg, None),
        }
    }

    /// Whether data segment `seg` of `ns` is stored with exactly `size` bytes.
    pub fn is_stored(&self, ns: &str, seg: u32, size: u64) -> bool {
        self.namespaces
            .get(ns)
            .and_then(|n| n.data.get(&seg))
            .is_some_and(|s| s.size == size)
    }
}

/// Write `bytes` to `path` so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_ns() -> impl Strategy<Value = NsManifest> {
        (
            any::<u32>(),
            proptest::collection::btree_map(
                any::<u32>(),
                (any::<u64>(), "[0-9a-f]{32}", any::<Option<u32>>()),
                0..8,
            ),
            proptest::collection::btree_map(any::<u32>(), any::<u32>(), 0..8),
            any::<u32>(),
        )
            .prop_map(|(checkpoint, data, index, descriptor)| NsManifest {
                checkpoint,
                data: data
                    .into_iter()
                    .map(|(k, (size, checksum, version))| {
                        (
                            k,
                            StoredSegment {
                                size,
                                checksum,
                                version,
                            },
                        )
                    })
                    .collect(),
                index,
                descriptor,
            })
    }

    proptest! {
        #[test]
        fn any_manifest_round_trips(namespaces in proptest::collection::btree_map("[a-z-]{1,12}", arb_ns(), 0..4)) {
            let m = Manifest { format: MANIFEST_FORMAT, namespaces };
            prop_assert_eq!(Manifest::decode(&m.encode(), Path::new("x")).unwrap(), m);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Manifest::decode(&bytes, Path::new("x"));
        }
    }

    #[test]
    fn round_trips_and_refuses_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        assert_eq!(Manifest::load(&path).unwrap(), Manifest::new());
        let mut m = Manifest::new();
        let ns = m.namespaces.entry("zdbfs-data".into()).or_default();
        ns.checkpoint = 3;
        ns.data.insert(
            3,
            StoredSegment {
                size: 10,
                checksum: "ab".into(),
                version: None,
            },
        );
        ns.index.insert(1, 3);
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back, m);
        assert!(back.is_stored("zdbfs-data", 3, 10));
        assert!(
            !back.is_stored("zdbfs-data", 3, 11),
            "a size change is not stored"
        );
        assert!(!back.is_stored("zdbfs-meta", 3, 10));
        let other = String::from_utf8(m.encode())
            .unwrap()
            .replace("\"format\": 1", "\"format\": 9");
        assert!(Manifest::decode(other.as_bytes(), &path).is_err());
        assert!(Manifest::decode(b"garbage", &path).is_err());
    }

    #[test]
    fn names_parse_back() {
        assert_eq!(segment_number("d12", 'd'), Some(12));
        assert_eq!(segment_number("i0", 'i'), Some(0));
        assert_eq!(segment_number("d", 'd'), None);
        assert_eq!(segment_number("d1x", 'd'), None);
        assert_eq!(segment_number("zdb-namespace", 'd'), None);
        assert_eq!(index_name("ns", 2, 7), PathBuf::from("/qsfs/index/ns/i2@7"));
        assert_eq!(data_name("ns", 2, None), PathBuf::from("/qsfs/data/ns/d2"));
        assert_eq!(
            data_name("ns", 2, Some(9)),
            PathBuf::from("/qsfs/data/ns/d2@9")
        );
    }
}
