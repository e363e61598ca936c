//! Paths from the web confined to the filesystem root: the text a client sends is checked
//! here (NUL bytes, `..`, over-long names), and every file operation then goes through a
//! `cap_std::fs::Dir` of the mount point, which refuses any path, symbolic links included,
//! that would leave it.
//!
//! Names that are not UTF-8 (a Linux name is any bytes) cannot be JSON text: the API names
//! such a path by a NUL then the URL-safe base64 of its bytes (`\0L2EvYoE`), which no real
//! path can look like (paths never hold NUL). Listings hand those out as the entry's
//! `path` (its `name` shows the name with U+FFFD for the bytes that are not UTF-8), and
//! every route takes them back, so such files can be opened, renamed and deleted.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;

use super::error::ApiError;

/// Longest path accepted, in bytes (Linux's PATH_MAX).
const MAX_PATH: usize = 4096;
/// Longest file name accepted, in bytes (zdbfs's and Linux's NAME_MAX).
const MAX_NAME: usize = 255;

/// A path relative to the filesystem root; empty for the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath(PathBuf);

impl RelPath {
    /// Check a client path (`/a/b`, `a/b` and `a//b/` are the same; `.` components vanish),
    /// or a path's bytes sent as NUL and base64 (see the module's doc).
    pub fn parse(text: &str) -> Result<RelPath, ApiError> {
        if let Some(encoded) = text.strip_prefix('\0') {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| {
                    ApiError::bad_path("a NUL-prefixed path is base64 of the path's bytes")
                })?;
            return RelPath::checked(Path::new(&OsString::from_vec(bytes)));
        }
        RelPath::checked(Path::new(text))
    }

    /// Check a path given as bytes (a WebDAV path, already percent-decoded).
    pub fn from_path(path: &Path) -> Result<RelPath, ApiError> {
        RelPath::checked(path)
    }

    /// Check a path's components (see [`RelPath::parse`]).
    fn checked(path: &Path) -> Result<RelPath, ApiError> {
        let raw = path.as_os_str().as_bytes();
        if raw.contains(&0) {
            return Err(ApiError::bad_path("the path contains a NUL byte"));
        }
        if raw.len() > MAX_PATH {
            return Err(ApiError::bad_path(format!(
                "the path is longer than {MAX_PATH} bytes"
            )));
        }
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => {
                    if out.as_os_str().is_empty() && name == crate::users::SYSTEM_DIR {
                        return Err(ApiError::bad_path(format!(
                            "`{}` is the drive's own folder",
                            crate::users::SYSTEM_DIR
                        )));
                    }
                    if name.len() > MAX_NAME {
                        return Err(ApiError::bad_path(format!(
                            "a name is longer than {MAX_NAME} bytes"
                        )));
                    }
                    out.push(name);
                }
                Component::ParentDir => {
                    return Err(ApiError::bad_path("`..` is not allowed in paths"));
                }
                Component::Prefix(_) => return Err(ApiError::bad_path("not a Unix path")),
            }
        }
        Ok(RelPath(out))
    }

    /// The relative path (`.` for the root, as cap-std wants).
    pub fn as_path(&self) -> &Path {
        if self.0.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.0
        }
    }

    pub fn is_root(&self) -> bool {
        self.0.as_os_str().is_empty()
    }

    /// `/a/b`, as the API shows paths.
    pub fn display(&self) -> String {
        format!("/{}", self.0.display())
    }

    /// The last component (the root has none).
    pub fn name(&self) -> Option<String> {
        self.0.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// The parent folder (the root's parent is the root).
    pub fn parent(&self) -> RelPath {
        RelPath(self.0.parent().map(Path::to_path_buf).unwrap_or_default())
    }

    pub fn join(&self, name: &str) -> Result<RelPath, ApiError> {
        self.join_os(OsStr::new(name))
    }

    /// `self/name` for a name as the filesystem gave it (any bytes).
    pub fn join_os(&self, name: &OsStr) -> Result<RelPath, ApiError> {
        RelPath::checked(&Path::new("/").join(&self.0).join(name))
    }

    /// The path as the API hands it out: `/a/b`, or NUL and base64 when it is not UTF-8.
    pub fn to_api(&self) -> String {
        if let Some(text) = self.0.to_str() {
            return format!("/{text}");
        }
        let mut bytes = b"/".to_vec();
        bytes.extend_from_slice(self.0.as_os_str().as_bytes());
        format!(
            "\0{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// The folders from the root down to this path, `(name, API path)` each, for
    /// breadcrumbs.
    pub fn ancestors(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut at = RelPath(PathBuf::new());
        for c in self.0.components() {
            at = RelPath(at.0.join(c));
            out.push((c.as_os_str().to_string_lossy().into_owned(), at.to_api()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a client sends: no panic, and anything accepted is a clean relative path
        /// that parses back to itself.
        #[test]
        fn any_text_is_refused_or_confined(text in "(\\PC|/|\\.|\\.\\.|\\x00){0,64}") {
            if let Ok(p) = RelPath::parse(&text) {
                prop_assert!(p.as_path().is_relative());
                for c in p.as_path().components() {
                    prop_assert!(matches!(c, Component::Normal(_) | Component::CurDir));
                    prop_assert!(c.as_os_str().len() <= MAX_NAME);
                }
                prop_assert!(!p.display().contains('\0'));
                prop_assert_eq!(RelPath::parse(&p.to_api()).unwrap(), p);
            }
        }
    }

    #[test]
    fn names_that_are_not_utf8_round_trip() {
        let name = OsStr::from_bytes(b"caf\xe9.txt");
        let p = RelPath::parse("/docs").unwrap().join_os(name).unwrap();
        let api = p.to_api();
        assert!(api.starts_with('\0'), "{api:?}");
        assert_eq!(RelPath::parse(&api).unwrap(), p);
        assert_eq!(p.name().as_deref(), Some("caf\u{fffd}.txt"));
        assert_eq!(RelPath::parse("/docs/a").unwrap().to_api(), "/docs/a");
        assert_eq!(p.ancestors()[0], ("docs".to_string(), "/docs".to_string()));
        // The raw form is checked as any path.
        let sneaky = format!(
            "\0{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"/a/../../etc")
        );
        assert!(RelPath::parse(&sneaky).is_err());
        assert!(RelPath::parse("\0not base64!").is_err());
    }

    #[test]
    fn confines_and_normalises() {
        assert_eq!(RelPath::parse("/").unwrap().as_path(), Path::new("."));
        assert!(RelPath::parse("").unwrap().is_root());
        assert_eq!(RelPath::parse("/a//b/./c/").unwrap().display(), "/a/b/c");
        assert_eq!(RelPath::parse("a/b").unwrap().name().as_deref(), Some("b"));
        assert_eq!(RelPath::parse("/a/b").unwrap().parent().display(), "/a");
        for bad in [
            "..",
            "/a/../../etc",
            "a/..",
            "a\0b",
            &"x".repeat(256),
            &"a/".repeat(2100),
        ] {
            let e = RelPath::parse(bad).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
