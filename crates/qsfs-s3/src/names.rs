//! Buckets and keys as paths. A bucket is a folder at the top of the caller's folder; an
//! object key is the path of a file under it, `/` separating folders; a key that ends in
//! `/` names the folder itself (what s3fs and consoles make for "mkdir"). A key that is no
//! valid path (empty parts as in `a//b`, `.` or `..`, a NUL byte, a part longer than a file
//! name may be, the names of uploads in progress) is refused with `InvalidObjectName`,
//! never rewritten into another path.

use axum::http::StatusCode;
use qsfs_web::paths::RelPath;
use s3s::{s3_error, S3Result};

use crate::custom_error;

/// The longest key S3 allows, in bytes.
const MAX_KEY: usize = 1024;
/// The longest name of one folder or file.
const MAX_NAME: usize = 255;

/// Bucket names the gateway takes: the name of any visible folder at the top (not only
/// AWS's lowercase DNS names: people's folders are called "Photos 2024").
pub struct FolderNames;

impl s3s::validation::NameValidation for FolderNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        valid_bucket(name)
    }
}

/// Whether `name` can be a bucket: one visible folder name.
pub fn valid_bucket(name: &str) -> bool {
    valid_part(name) && !name.starts_with('.')
}

fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_NAME
        && part != "."
        && part != ".."
        && !part.contains(['/', '\0'])
        && !part.starts_with(qsfs_web::landing::UPLOAD_PREFIX)
}

/// What a key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file: `bucket/a/b` for key `a/b`.
    File(RelPath),
    /// A folder: `bucket/a` for key `a/`.
    Folder(RelPath),
}

impl Target {
    pub fn path(&self) -> &RelPath {
        match self {
            Target::File(p) | Target::Folder(p) => p,
        }
    }
}

/// The folder of bucket `bucket`.
pub fn bucket_path(bucket: &str) -> S3Result<RelPath> {
    if !valid_bucket(bucket) {
        return Err(s3_error!(
            InvalidBucketName,
            "{bucket:?}: not a folder name"
        ));
    }
    RelPath::parse(bucket).map_err(|e| s3_error!(InvalidBucketName, "{}", e.message))
}

/// What key `key` of bucket `bucket` names, or `InvalidObjectName`.
pub fn object_path(bucket: &str, key: &str) -> S3Result<Target> {
    let refuse = |why: &str| {
        custom_error(
            "InvalidObjectName",
            StatusCode::BAD_REQUEST,
            format!("{key:?}: {why} (object keys are file paths here)"),
        )
    };
    if key.len() > MAX_KEY {
        return Err(s3_error!(
            KeyTooLongError,
            "keys are at most {MAX_KEY} bytes"
        ));
    }
    let (body, folder) = match key.strip_suffix('/') {
        Some(body) => (body, true),
        None => (key, false),
    };
    if body.is_empty() {
        return Err(refuse("empty"));
    }
    for part in body.split('/') {
        if part.is_empty() {
            return Err(refuse("an empty folder name (`//` or a leading `/`)"));
        }
        if !valid_part(part) {
            return Err(refuse(&format!("{part:?} is not a file name")));
        }
    }
    let path = bucket_path(bucket)?;
    let path =
        RelPath::parse(&format!("{}/{body}", path.display())).map_err(|e| refuse(&e.message))?;
    Ok(if folder {
        Target::Folder(path)
    } else {
        Target::File(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_paths_or_are_refused() {
        let file = object_path("photos", "2024/june/a.jpg").unwrap();
        assert_eq!(
            file,
            Target::File(RelPath::parse("photos/2024/june/a.jpg").unwrap())
        );
        let folder = object_path("photos", "2024/").unwrap();
        assert_eq!(
            folder,
            Target::Folder(RelPath::parse("photos/2024").unwrap())
        );
        assert!(object_path("photos", "odd name %+ é.txt").is_ok());
        for bad in [
            "",
            "/",
            "a//b",
            "/a",
            "a/./b",
            "a/../b",
            "..",
            "a\0b",
            "x/.qsfs-upload-1.part",
        ] {
            assert!(object_path("photos", bad).is_err(), "{bad:?}");
        }
        assert!(object_path("photos", &"n".repeat(256)).is_err());
        assert!(object_path("photos", &"a/".repeat(600)).is_err());
        for bad in ["", ".qsfs", "..", "a/b", "."] {
            assert!(!valid_bucket(bad), "{bad:?}");
        }
        assert!(valid_bucket("Photos 2024"));
    }
}
