//! How a new file body lands on the drive, for every protocol that writes one (the web
//! API's upload, WebDAV's PUT, S3's PutObject and multipart completion): it is written
//! under a hidden temporary name beside its target, fsync'ed, then renamed over the
//! target, and the folder fsync'ed ([`rename_durably`]). A reader sees the old file or the
//! new one, never half of it; a body that landed survives a crash; one cut short or
//! refused leaves nothing behind.
//!
//! The work here blocks: call it off the async runtime.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use cap_std::fs::{Dir, OpenOptions};

use crate::paths::RelPath;

/// Name prefix of the temporary file a body is written to before it lands; listings hide
/// such names (see [`is_temporary`]).
pub const UPLOAD_PREFIX: &str = ".qsfs-upload-";

/// A fresh temporary name (`.qsfs-upload-<random>.part`).
pub fn temp_name() -> String {
    format!("{UPLOAD_PREFIX}{}.part", crate::sessions::random_hex(8))
}

/// Whether `name` is a body still being written (hidden from listings).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with(UPLOAD_PREFIX) && name.ends_with(".part")
}

/// A body being written beside its target. Dropped before [`TempFile::land`] succeeded,
/// its file is removed (in the background; [`TempFile::discard`] removes it at once).
#[derive(Debug)]
pub struct TempFile {
    root: Arc<Dir>,
    path: RelPath,
    file: Arc<File>,
    /// Landed or removed: nothing left for `drop` to do.
    settled: bool,
}

impl TempFile {
    /// A new, empty temporary file in `folder` of `root` (which must exist).
    pub fn create(root: &Arc<Dir>, folder: &RelPath) -> io::Result<TempFile> {
        let path = folder
            .join(&temp_name())
            .map_err(|e| io::Error::other(e.message))?;
        let mut o = OpenOptions::new();
        o.read(true).write(true).create_new(true);
        let file = root.open_with(path.as_path(), &o)?.into_std();
        Ok(TempFile {
            root: Arc::clone(root),
            path,
            file: Arc::new(file),
            settled: false,
        })
    }

    /// The file to write the body into (positional writes, or a clone of it).
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Make the body durable and put it at `target`, replacing what is there. On failure
    /// the temporary file is removed.
    pub fn land(mut self, target: &RelPath) -> io::Result<()> {
        let landed = self
            .file
            .sync_all()
            .and_then(|()| rename_durably(&self.root, self.path.as_path(), &self.root, target));
        match landed {
            Ok(()) => self.settled = true,
            Err(_) => self.discard(),
        }
        landed
    }

    /// Remove the file now, before an error is answered: the room it took is free again
    /// when the caller hears of the failure (a retry on a full disk then fits).
    pub fn discard(mut self) {
        remove(&self.root, &self.path);
        self.settled = true;
    }
}

/// Rename `from` (in `from_dir`) over `to` (in `root`), and make the new name durable.
/// A rename changes `to`'s folder, which only an fsync of that folder makes durable: an
/// fsync of the file before it covers the bytes, not the name (on zdbfs the rename stayed
/// in memory until the next flush, and a kill -9 right after an acknowledged upload lost
/// the file).
pub fn rename_durably(
    from_dir: &Dir,
    from: impl AsRef<Path>,
    root: &Dir,
    to: &RelPath,
) -> io::Result<()> {
    from_dir.rename(from, root, to.as_path())?;
    // Read-only: a directory handle as `open_dir` gives it (O_PATH) cannot be fsync'ed.
    let mut o = OpenOptions::new();
    o.read(true);
    root.open_with(to.parent().as_path(), &o)?.sync_all()
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (root, path) = (Arc::clone(&self.root), self.path.clone());
        // Removing is a filesystem call: off the runtime when dropped on it.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || remove(&root, &path))),
            Err(_) => remove(&root, &path),
        }
    }
}

/// Remove a body that did not land; one already gone is no error.
fn remove(root: &Dir, path: &RelPath) {
    let _ = root.remove_file(path.as_path());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn root() -> (tempfile::TempDir, Arc<Dir>) {
        let dir = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        (dir, Arc::new(root))
    }

    #[test]
    fn a_landed_body_replaces_the_target_and_a_dropped_one_leaves_nothing() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("f"), b"old").unwrap();
        let target = RelPath::parse("/f").unwrap();
        let temp = TempFile::create(&root, &RelPath::parse("/").unwrap()).unwrap();
        (&**temp.file()).write_all(b"new").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"old");
        temp.land(&target).unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"new");
        let dropped = TempFile::create(&root, &RelPath::parse("/").unwrap()).unwrap();
        (&**dropped.file()).write_all(b"cut short").unwrap();
        drop(dropped);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["f"]);
        // A landing that fails (its folder is gone) removes the body as well.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let temp = TempFile::create(&root, &RelPath::parse("/").unwrap()).unwrap();
        assert!(temp.land(&RelPath::parse("/d/missing/x").unwrap()).is_err());
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 2, "f and d only");
    }
}
