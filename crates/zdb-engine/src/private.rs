//! Folders and files only their owner may read.
//!
//! Stored values lie in the segment files as they were written (zdbfs blocks, qsfs's local
//! cache): plaintext for anyone who can open them. So every folder the engine keeps is 0700
//! and every file it creates 0600, whatever the umask, and a folder found open to others
//! (made by an older build or by hand) is closed with a log line saying so.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the folders.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files.
pub const FILE_MODE: u32 = 0o600;

/// Create `path` (and missing parents) as 0700, or make an existing folder 0700 if group or
/// others had any access to it.
pub fn private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        fs::set_permissions(path, Permissions::from_mode(DIR_MODE))?;
        tracing::warn!(
            path = %path.display(),
            was = format_args!("{mode:04o}"),
            "folder was open to other users; made it 0700 (it holds stored data)"
        );
    }
    Ok(())
}

/// Options that create a file as 0600 (the umask can only narrow it).
pub fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_and_closes_open_folders() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b");
        private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);

        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, Permissions::from_mode(0o755)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);

        let f = root.path().join("f");
        private_file().write(true).create(true).open(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
    }
}
