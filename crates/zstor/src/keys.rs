//! From command-line paths to the paths the metadata is keyed by, as 0-stor v2 does it: a
//! stored file is keyed by its absolute, canonical path (symlinks in its directory resolved),
//! or by `KEY_PATH/name` with `store -k KEY_PATH`; the key must lie under the config's `root`
//! when one is set. `check`/`retrieve` resolve their `-f` the same way, so relative paths and
//! symlinked directories find what `store` wrote.

use std::path::{Component, Path, PathBuf};

use crate::Error;

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidPath {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// `path` made absolute: the existing parent directory is canonicalized and the last
/// component appended; when the parent does not exist, `.` and `..` are resolved lexically
/// against the current directory instead (the file need not exist, e.g. for `check`).
pub fn resolve(path: &Path) -> Result<PathBuf, Error> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| Error::Io {
                context: "current directory".into(),
                source,
            })?
            .join(path)
    };
    let lexical = normalize(&absolute);
    let Some(name) = lexical.file_name() else {
        return Err(invalid(path, "names no file"));
    };
    match lexical.parent().map(Path::canonicalize) {
        Some(Ok(parent)) => Ok(parent.join(name)),
        _ => Ok(lexical),
    }
}

/// The metadata path for `check`/`retrieve -f path`: a relative path is taken relative to
/// the config's `root` when one is set (0-stor v2 hashes it as given, which is the same key
/// as `root/path`, and retrieves it to `root/path`), else relative to the current directory
/// like `store` does; see [`resolve`].
pub fn lookup_key(path: &Path, root: Option<&Path>) -> Result<PathBuf, Error> {
    match root {
        Some(root) if path.is_relative() => resolve(&root.join(path)),
        _ => resolve(path),
    }
}

/// Resolve `.` and `..` without touching the filesystem (`..` at `/` stays at `/`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The metadata path of `file`, found under the directory `base` (the `-f` directory of a
/// directory store, or `file`'s own directory), stored with `-k key_path` or not.
///
/// * no `key_path`: the resolved path of `file`;
/// * `key_path` and a single file: `key_path/<file name>` (0-stor v2);
/// * `key_path` and a directory store: `key_path/<path of file relative to base>`, so files of
///   sub-directories keep distinct keys.
///
/// When `root` is set the result must lie under it (0-stor v2 refuses the store otherwise;
/// such a key would never be found by a `retrieve` relative to the root).
pub fn store_key(
    file: &Path,
    base: Option<&Path>,
    key_path: Option<&Path>,
    root: Option<&Path>,
) -> Result<PathBuf, Error> {
    let key = match key_path {
        None => resolve(file)?,
        Some(dir) => {
            let rel = match base {
                Some(base) => file
                    .strip_prefix(base)
                    .map_err(|_| invalid(file, format!("not under {}", base.display())))?
                    .to_path_buf(),
                None => PathBuf::from(
                    file.file_name()
                        .ok_or_else(|| invalid(file, "names no file"))?,
                ),
            };
            resolve(&dir.join(rel))?
        }
    };
    if let Some(root) = root {
        if !key.starts_with(root) {
            return Err(invalid(
                &key,
                format!(
                    "outside the config's root {} (use -k to store it under the root)",
                    root.display()
                ),
            ));
        }
    }
    Ok(key)
}

/// Every regular file under `dir`, recursively, sorted; symbolic links and special files
/// are skipped (and logged), so a link cannot make a store loop or leave the tree.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Io {
            context: format!("list {}", d.display()),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                context: format!("list {}", d.display()),
                source,
            })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|source| Error::Io {
                context: format!("stat {}", path.display()),
                source,
            })?;
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                files.push(path);
            } else {
                tracing::info!(path = %path.display(), "skipped: not a regular file");
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
    }

    #[test]
    fn keys_follow_key_path_and_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canonical");
        let sub = base.join("d/e");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let f = sub.join("f.txt");
        std::fs::write(&f, b"x").expect("write");
        assert_eq!(store_key(&f, None, None, None).expect("key"), f);
        let kp = Path::new("/virtualroot/k");
        assert_eq!(
            store_key(&f, None, Some(kp), None).expect("key"),
            Path::new("/virtualroot/k/f.txt")
        );
        assert_eq!(
            store_key(&f, Some(&base.join("d")), Some(kp), None).expect("key"),
            Path::new("/virtualroot/k/e/f.txt")
        );
        assert_eq!(
            lookup_key(Path::new("a/../b"), Some(Path::new("/virtualroot"))).expect("key"),
            Path::new("/virtualroot/b")
        );
        let err = store_key(&f, None, None, Some(Path::new("/virtualroot"))).unwrap_err();
        assert!(
            err.to_string().contains("outside the config's root"),
            "{err}"
        );
        assert_eq!(
            files_under(&base).expect("walk"),
            vec![f.clone()],
            "only regular files"
        );
    }
}
