//! Paths from the web confined to the filesystem root: the text a client sends is checked
//! here (NUL bytes, `..`, over-long names), and every file operation then goes through a
//! `cap_std::fs::Dir` of the mount point, which refuses any path, symbolic links included,
//! that would leave it.

use std::path::{Component, Path, PathBuf};

use super::error::ApiError;

/// Longest path accepted, in bytes (Linux's PATH_MAX).
const MAX_PATH: usize = 4096;
/// Longest file name accepted, in bytes (zdbfs's and Linux's NAME_MAX).
const MAX_NAME: usize = 255;

/// A path relative to the filesystem root; empty for the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath(PathBuf);

impl RelPath {
    /// Check a client path (`/a/b`, `a/b` and `a//b/` are the same; `.` components vanish).
    pub fn parse(text: &str) -> Result<RelPath, ApiError> {
        if text.contains('\0') {
            return Err(ApiError::bad_path("the path contains a NUL byte"));
        }
        if text.len() > MAX_PATH {
            return Err(ApiError::bad_path(format!(
                "the path is longer than {MAX_PATH} bytes"
            )));
        }
        let mut out = PathBuf::new();
        for c in Path::new(text).components() {
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
        RelPath::parse(&format!("{}/{name}", self.display()))
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
                prop_assert_eq!(RelPath::parse(&p.display()).unwrap(), p);
            }
        }
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
