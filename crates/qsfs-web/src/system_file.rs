//! The drive's own files in `.qsfs/` (accounts, share links): read whole, and replaced whole
//! and atomically (a new file, fsync, rename, fsync of the folder) so a crash leaves the old
//! content or the new one, never a mix.
//!
//! The lists kept there (accounts, share links, shared folders) are JSON with a `format`
//! number beside their body ([`read_list`], [`replace_list`]).
//!
//! Owns: the write protocol and the format check. Must not touch: what the files hold.

use std::io::Write;

use cap_std::fs::{Dir, OpenOptionsExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::users::SYSTEM_DIR;

/// The content of `.qsfs/NAME`, `None` if there is no such file yet.
pub fn read(root: &Dir, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    match root.read(format!("{SYSTEM_DIR}/{name}")) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replace `.qsfs/NAME` with `bytes`, durably, before returning.
pub fn replace(root: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (file, new) = (
        format!("{SYSTEM_DIR}/{name}"),
        format!("{SYSTEM_DIR}/{name}.new"),
    );
    root.create_dir_all(SYSTEM_DIR)?;
    let mut opts = cap_std::fs::OpenOptions::new();
    // Password hashes and S3 secrets: for the service's eyes only.
    opts.write(true).create(true).truncate(true).mode(0o600);
    let mut f = root.open_with(&new, &opts)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    root.rename(&new, root, &file)?;
    root.open(SYSTEM_DIR)?.sync_all()
}

/// A list file: its format number and its body.
#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    format: u32,
    #[serde(flatten)]
    body: T,
}

/// Why a list file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("damaged: {0}")]
    Corrupt(String),
}

/// The body of list file `.qsfs/NAME` of format `format` (`None`: no file yet).
pub fn read_list<T: DeserializeOwned>(
    root: &Dir,
    name: &str,
    format: u32,
) -> Result<Option<T>, ListError> {
    let Some(bytes) = read(root, name)? else {
        return Ok(None);
    };
    let file: Versioned<T> =
        serde_json::from_slice(&bytes).map_err(|e| ListError::Corrupt(e.to_string()))?;
    if file.format != format {
        return Err(ListError::Corrupt(format!(
            "format {} (this qsfs reads {format})",
            file.format
        )));
    }
    Ok(Some(file.body))
}

/// Replace list file `.qsfs/NAME` with `body` of format `format`, durably.
pub fn replace_list<T: Serialize>(
    root: &Dir,
    name: &str,
    format: u32,
    body: &T,
) -> std::io::Result<()> {
    let bytes =
        serde_json::to_vec_pretty(&Versioned { format, body }).map_err(std::io::Error::other)?;
    replace(root, name, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_whole_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(read(&root, "x.json").unwrap(), None);
        replace(&root, "x.json", b"first, longer").unwrap();
        replace(&root, "x.json", b"second").unwrap();
        assert_eq!(read(&root, "x.json").unwrap().unwrap(), b"second");
        assert!(!tmp.path().join(".qsfs/x.json.new").exists());
    }
}
