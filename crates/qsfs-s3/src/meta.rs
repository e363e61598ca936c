//! What S3 keeps about an object beside its bytes: its ETag (the MD5 of a single-part
//! upload, `MD5-of-MD5s-N` of a multipart one), content type, the standard headers given at
//! upload (`Cache-Control`, `Content-Disposition`, `Content-Encoding`, `Content-Language`)
//! and the user's `x-amz-meta-*`, as JSON in the file's `user.qsfs.s3` extended attribute.
//!
//! The record holds the size and modification time it was made for: a file changed since
//! (through the mount, the web page, WebDAV) no longer matches, and its ETag is then the web
//! API's validator (size and time, with a `-`, so no client takes it for an MD5).

use std::collections::BTreeMap;
use std::fs::File;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use xattr::FileExt;

/// The extended attribute of the record.
pub const XATTR: &str = "user.qsfs.s3";
/// The most bytes of metadata an object may carry (S3 allows 2 KiB of user metadata).
pub const MAX_META: usize = 8 * 1024;

/// The record of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub etag: String,
    /// Size and modification time (nanoseconds since the epoch) it was made for.
    pub size: u64,
    pub mtime: u128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Standard headers given at upload, by lowercase name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `x-amz-meta-*`, without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
}

/// Modification time in nanoseconds since the epoch.
pub fn mtime_of(m: &std::fs::Metadata) -> u128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// What a client gave at upload, before the ETag and the file's stamp are known.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Given {
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub user: BTreeMap<String, String>,
}

impl Given {
    /// 400 when the metadata would not fit in the record.
    pub fn check(&self) -> s3s::S3Result<()> {
        let bytes: usize = self
            .user
            .iter()
            .chain(&self.headers)
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self.content_type.as_ref().map_or(0, String::len);
        if bytes > MAX_META {
            return Err(s3s::s3_error!(
                MetadataTooLarge,
                "metadata of {bytes} bytes: at most {MAX_META}"
            ));
        }
        Ok(())
    }

    /// The record for a file `file` now holding the object whose ETag is `etag`.
    pub fn record(self, etag: String, file: &File) -> std::io::Result<ObjectMeta> {
        let m = file.metadata()?;
        Ok(ObjectMeta {
            etag,
            size: m.len(),
            mtime: mtime_of(&m),
            content_type: self.content_type,
            headers: self.headers,
            user: self.user,
        })
    }
}

impl ObjectMeta {
    /// Keep the record on `file` (the open object, before it is renamed into place).
    pub fn store(&self, file: &File) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        file.set_xattr(XATTR, &json)
    }

    /// What is given back for a copy of this object.
    pub fn given(&self) -> Given {
        Given {
            content_type: self.content_type.clone(),
            headers: self.headers.clone(),
            user: self.user.clone(),
        }
    }
}

/// The record of open file `file` with metadata `m`, if it has one that still matches it.
pub fn load(file: &File, m: &std::fs::Metadata) -> Option<ObjectMeta> {
    let raw = file.get_xattr(XATTR).ok()??;
    let meta: ObjectMeta = serde_json::from_slice(&raw).ok()?;
    (meta.size == m.len() && meta.mtime == mtime_of(m)).then_some(meta)
}

/// The ETag of a file: its record's, else the size and time (not an MD5: it has a `-`).
pub fn etag(meta: Option<&ObjectMeta>, m: &std::fs::Metadata) -> String {
    match meta {
        Some(meta) => meta.etag.clone(),
        None => format!("{:x}-{:x}", m.len(), mtime_of(m)),
    }
}

/// The ETag of a multipart object: the MD5 of its parts' MD5s, and their count.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    use md5::Digest;
    let mut h = md5::Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_holds_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        std::fs::write(&path, b"hello").unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let given = Given {
            content_type: Some("text/plain".into()),
            user: [("a".to_string(), "b".to_string())].into(),
            ..Given::default()
        };
        let meta = given
            .record("5d41402abc4b2a76b9719d911017c592".into(), &file)
            .unwrap();
        meta.store(&file).unwrap();
        let m = file.metadata().unwrap();
        assert_eq!(load(&file, &m), Some(meta.clone()));
        assert_eq!(etag(Some(&meta), &m), "5d41402abc4b2a76b9719d911017c592");
        // Changed behind S3's back: the record no longer speaks for it.
        use std::io::Write;
        (&file).write_all(b" world").unwrap();
        let m = file.metadata().unwrap();
        assert_eq!(load(&file, &m), None);
        assert!(etag(None, &m).contains('-'));
    }

    #[test]
    fn multipart_etags_are_md5_of_md5s() {
        // Two parts "a" and "b": md5(md5("a") || md5("b")).
        use md5::Digest;
        let a: [u8; 16] = md5::Md5::digest(b"a").into();
        let b: [u8; 16] = md5::Md5::digest(b"b").into();
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        let want = format!("{}-2", hex::encode(md5::Md5::digest(&both)));
        assert_eq!(multipart_etag(&[a, b]), want);
    }
}
