//! What has been offloaded: the manifest, and the names of the objects qsfs stores in zstor.
//!
//! Objects (names given to `zstor`; its metadata key is derived from them):
//! - `/qsfs/data/<ns>/d<N>`: closed data segment `N` as it closed (never changed in place);
//! - `/qsfs/data/<ns>/d<N>@<V>`: data segment `N` after compaction emptied it, stored with
//!   checkpoint `V` (the one that also holds the records moved out of it); the older copy is
//!   deleted once the manifest naming this one is stored;
//! - `/qsfs/data/<ns>/d<N>+<S>`: the bytes of the open data segment `N` from offset `S` on,
//!   as far as a partial checkpoint took them: the open segment is stored as such pieces
//!   every few seconds, and a restore concatenates them; they are deleted once `d<N>`
//!   (closed) is named;
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
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the manifest object.
pub const MANIFEST_NAME: &str = "/qsfs/manifest";

/// Version of the manifest layout written. Format 2 added partial checkpoints (`open`, and
/// versions `N+len`); a format 1 manifest reads as format 2 without them.
pub const MANIFEST_FORMAT: u32 = 2;

/// Which checkpoint of a namespace: the one that closed data segment `segment`, or a
/// partial one taken while `segment` was open and `open_len` bytes long. Checkpoints of a
/// namespace order as they were taken: the partial ones of `N` by length, then `N` closing.
/// Written `N` or `N+len` (in object names and in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    pub segment: u32,
    pub open_len: Option<u64>,
}

impl Version {
    pub fn closed(segment: u32) -> Version {
        Version {
            segment,
            open_len: None,
        }
    }

    pub fn partial(segment: u32, open_len: u64) -> Version {
        Version {
            segment,
            open_len: Some(open_len),
        }
    }

    /// Parse `N` or `N+len`.
    pub fn parse(text: &str) -> Option<Version> {
        match text.split_once('+') {
            None => Some(Version::closed(number(text)?)),
            Some((seg, len)) => Some(Version::partial(number(seg)?, number(len)?)),
        }
    }

    fn key(&self) -> (u32, bool, u64) {
        (
            self.segment,
            self.open_len.is_none(),
            self.open_len.unwrap_or(0),
        )
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.open_len {
            None => write!(f, "{}", self.segment),
            Some(len) => write!(f, "{}+{len}", self.segment),
        }
    }
}

/// A closed checkpoint is written as a number (as in format 1), a partial one as "N+len".
impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.open_len {
            None => s.serialize_u32(self.segment),
            Some(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u32),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Number(n) => Ok(Version::closed(n)),
            Written::Text(t) => Version::parse(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("not a checkpoint: {t:?}"))),
        }
    }
}

/// Object name of data segment `seg` of `ns`: as it closed (`version` none), or as stored
/// with checkpoint `version` after compaction emptied it.
pub fn data_name(ns: &str, seg: u32, version: Option<Version>) -> PathBuf {
    match version {
        None => PathBuf::from(format!("/qsfs/data/{ns}/d{seg}")),
        Some(v) => PathBuf::from(format!("/qsfs/data/{ns}/d{seg}@{v}")),
    }
}

/// Object name of the piece of open data segment `seg` of `ns` that starts at `start`.
pub fn piece_name(ns: &str, seg: u32, start: u64) -> PathBuf {
    PathBuf::from(format!("/qsfs/data/{ns}/d{seg}+{start}"))
}

/// Object name of index segment `seg` of `ns` as of checkpoint `version`.
pub fn index_name(ns: &str, seg: u32, version: Version) -> PathBuf {
    PathBuf::from(format!("/qsfs/index/{ns}/i{seg}@{version}"))
}

/// Object name of the descriptor of `ns` as of checkpoint `version`.
pub fn descriptor_name(ns: &str, version: Version) -> PathBuf {
    PathBuf::from(format!("/qsfs/index/{ns}/zdb-namespace@{version}"))
}

/// The segment number of a segment file name `d<N>` or `i<N>`.
pub fn segment_number(name: &str, prefix: char) -> Option<u32> {
    number(name.strip_prefix(prefix)?)
}

/// A decimal number written with digits only (no sign, no spaces).
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The segment and start of a piece name `d<N>+<S>` (a staged one is `d<N>+<S>.ref`).
pub fn piece_file(name: &str) -> Option<(u32, u64)> {
    let v = Version::parse(name.strip_prefix('d')?)?;
    Some((v.segment, v.open_len?))
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
    /// The data segment closed by the last complete closing checkpoint.
    pub checkpoint: u32,
    /// Stored data segments.
    pub data: BTreeMap<u32, StoredSegment>,
    /// Index segment → the checkpoint whose copy of it is the latest.
    pub index: BTreeMap<u32, Version>,
    /// Checkpoint whose descriptor copy is the latest.
    pub descriptor: Version,
    /// The open segment as far as the last partial checkpoint took it; none when the last
    /// checkpoint closed a segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenSegment>,
}

impl Default for Version {
    fn default() -> Version {
        Version::closed(0)
    }
}

impl NsManifest {
    /// The newest checkpoint this namespace's entry stands for.
    pub fn version(&self) -> Version {
        match &self.open {
            Some(open) => Version::partial(open.segment, open.len()),
            None => Version::closed(self.checkpoint),
        }
    }
}

/// An open data segment stored as pieces, in order, without gaps from offset 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSegment {
    pub segment: u32,
    pub pieces: Vec<Piece>,
}

impl OpenSegment {
    /// Bytes of the segment the pieces hold.
    pub fn len(&self) -> u64 {
        self.pieces.last().map_or(0, |p| p.start + p.size)
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// Bytes `start..start + size` of an open segment (object [`piece_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub start: u64,
    pub size: u64,
    /// blake2b-128 of the piece, hex.
    pub checksum: String,
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
    pub version: Option<Version>,
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
        if !(1..=MANIFEST_FORMAT).contains(&m.format) {
            return Err(ManifestError::Invalid {
                path: origin.to_path_buf(),
                reason: format!(
                    "format {} (this qsfs reads 1 to {MANIFEST_FORMAT}; a newer qsfs wrote it?)",
                    m.format
                ),
            });
        }
        m.check().map_err(|reason| ManifestError::Invalid {
            path: origin.to_path_buf(),
            reason,
        })?;
        Ok(Manifest {
            format: MANIFEST_FORMAT,
            ..m
        })
    }

    /// What every manifest must hold to be restorable: open segments' pieces follow each
    /// other from offset 0.
    pub fn check(&self) -> Result<(), String> {
        for (ns, n) in &self.namespaces {
            if let Some(open) = &n.open {
                let mut at = 0;
                for p in &open.pieces {
                    if p.start != at {
                        return Err(format!(
                            "{ns}: the pieces of open segment {} leave a gap at {at}",
                            open.segment
                        ));
                    }
                    at = p.start.saturating_add(p.size);
                }
            }
        }
        Ok(())
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

    fn arb_version() -> impl Strategy<Value = Version> {
        (any::<u32>(), any::<Option<u64>>())
            .prop_map(|(segment, open_len)| Version { segment, open_len })
    }

    fn arb_open() -> impl Strategy<Value = Option<OpenSegment>> {
        proptest::option::of((
            any::<u32>(),
            proptest::collection::vec((1..1u64 << 40, "[0-9a-f]{32}"), 0..4),
        ))
        .prop_map(|open| {
            open.map(|(segment, sizes)| {
                let mut start = 0;
                let pieces = sizes
                    .into_iter()
                    .map(|(size, checksum)| {
                        let p = Piece {
                            start,
                            size,
                            checksum,
                        };
                        start += size;
                        p
                    })
                    .collect();
                OpenSegment { segment, pieces }
            })
        })
    }

    fn arb_ns() -> impl Strategy<Value = NsManifest> {
        (
            any::<u32>(),
            proptest::collection::btree_map(
                any::<u32>(),
                (
                    any::<u64>(),
                    "[0-9a-f]{32}",
                    proptest::option::of(arb_version()),
                ),
                0..8,
            ),
            proptest::collection::btree_map(any::<u32>(), arb_version(), 0..8),
            arb_version(),
            arb_open(),
        )
            .prop_map(|(checkpoint, data, index, descriptor, open)| NsManifest {
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
                open,
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
        ns.index.insert(1, Version::closed(3));
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back, m);
        assert!(back.is_stored("zdbfs-data", 3, 10));
        assert!(
            !back.is_stored("zdbfs-data", 3, 11),
            "a size change is not stored"
        );
        assert!(!back.is_stored("zdbfs-meta", 3, 10));
        let text = String::from_utf8(m.encode()).unwrap();
        let other = text.replace("\"format\": 2", "\"format\": 9");
        assert!(Manifest::decode(other.as_bytes(), &path).is_err());
        assert!(Manifest::decode(b"garbage", &path).is_err());
        // What format 1 wrote reads unchanged.
        let older = text.replace("\"format\": 2", "\"format\": 1");
        assert_eq!(Manifest::decode(older.as_bytes(), &path).unwrap(), m);
    }

    #[test]
    fn versions_order_as_taken_and_read_back() {
        let (p1, p2, c) = (
            Version::partial(4, 100),
            Version::partial(4, 250),
            Version::closed(4),
        );
        assert!(Version::closed(3) < p1 && p1 < p2 && p2 < c && c < Version::partial(5, 18));
        for v in [p1, c] {
            assert_eq!(Version::parse(&v.to_string()), Some(v));
        }
        assert_eq!(p2.to_string(), "4+250");
        for bad in ["", "+", "4+", "+4", "4+x", "-1", "4+5+6"] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        // A manifest with a gap between pieces is refused.
        let mut m = Manifest::new();
        m.namespaces.entry("a".into()).or_default().open = Some(OpenSegment {
            segment: 2,
            pieces: vec![Piece {
                start: 10,
                size: 5,
                checksum: "00".into(),
            }],
        });
        let err = Manifest::decode(&m.encode(), Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("gap at 0"), "{err}");
    }

    #[test]
    fn names_parse_back() {
        assert_eq!(segment_number("d12", 'd'), Some(12));
        assert_eq!(segment_number("i0", 'i'), Some(0));
        assert_eq!(segment_number("d", 'd'), None);
        assert_eq!(segment_number("d1x", 'd'), None);
        assert_eq!(segment_number("zdb-namespace", 'd'), None);
        assert_eq!(
            index_name("ns", 2, Version::closed(7)),
            PathBuf::from("/qsfs/index/ns/i2@7")
        );
        assert_eq!(
            index_name("ns", 2, Version::partial(7, 99)),
            PathBuf::from("/qsfs/index/ns/i2@7+99")
        );
        assert_eq!(data_name("ns", 2, None), PathBuf::from("/qsfs/data/ns/d2"));
        assert_eq!(
            data_name("ns", 2, Some(Version::closed(9))),
            PathBuf::from("/qsfs/data/ns/d2@9")
        );
        assert_eq!(
            piece_name("ns", 2, 18),
            PathBuf::from("/qsfs/data/ns/d2+18")
        );
        assert_eq!(piece_file("d2+18"), Some((2, 18)));
        assert_eq!(piece_file("d2"), None);
        assert_eq!(piece_file("i2+18"), None);
    }
}
