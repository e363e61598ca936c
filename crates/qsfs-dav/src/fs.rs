//! The drive as dav-server sees it: every path is checked ([`RelPath`]: no `..`, not the
//! drive's own `.qsfs`) and opened through the caller's `cap_std` folder, so nothing past
//! it is reachable, symbolic links included. Blocking calls run off the runtime.
//!
//! A whole-file PUT lands as the web API's uploads do ([`crate::file::NewFile`]); quotas are
//! the web drive's ([`qsfs_web::quota`]); dead properties live in an extended attribute
//! ([`crate::props`]).

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use cap_std::fs::{Dir, Metadata};
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavMetaData, DavProp, FsError, FsFuture, FsResult, FsStream,
    GuardedFileSystem, OpenOptions, ReadDirMeta,
};
use futures_util::{FutureExt, StreamExt};
use qsfs_web::auth::Caller;
use qsfs_web::paths::RelPath;
use qsfs_web::transfer::Room;
use qsfs_web::WebState;

use crate::file::{NewFile, OpenFile};

/// Who a request runs as, and whether it may change anything.
#[derive(Clone)]
pub struct Access {
    pub caller: Caller,
    pub writable: bool,
}

/// The served drive, for every caller (each request brings its [`Access`]).
#[derive(Clone)]
pub struct DriveFs {
    pub(crate) st: Arc<WebState>,
}

/// An errno as the closest WebDAV answer.
pub(crate) fn fs_error(e: &io::Error) -> FsError {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => FsError::InsufficientStorage,
        Some(libc::EFBIG) => FsError::TooLarge,
        Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOTDIR | libc::EISDIR) => {
            FsError::Forbidden
        }
        Some(libc::EEXIST | libc::ENOTEMPTY) => FsError::Exists,
        Some(libc::ELOOP) => FsError::LoopDetected,
        Some(libc::ENAMETOOLONG) => FsError::PathTooLong,
        Some(libc::ENOENT) => FsError::NotFound,
        Some(libc::EXDEV) => FsError::IsRemote,
        _ => match e.kind() {
            io::ErrorKind::NotFound => FsError::NotFound,
            io::ErrorKind::PermissionDenied => FsError::Forbidden,
            _ => FsError::GeneralFailure,
        },
    }
}

/// The drive path of a WebDAV path; a path the drive refuses is forbidden.
pub(crate) fn rel(path: &DavPath) -> FsResult<RelPath> {
    RelPath::from_path(path.as_rel_ospath()).map_err(|_| FsError::Forbidden)
}

/// Run `f` on the caller's folder off the runtime.
pub(crate) async fn on_root<T: Send + 'static>(
    access: &Access,
    f: impl FnOnce(&Dir) -> io::Result<T> + Send + 'static,
) -> FsResult<T> {
    let root = Arc::clone(&access.caller.root);
    match tokio::task::spawn_blocking(move || f(&root)).await {
        Ok(r) => r.map_err(|e| fs_error(&e)),
        Err(_) => Err(FsError::GeneralFailure),
    }
}

fn writable(access: &Access) -> FsResult<()> {
    if access.writable {
        Ok(())
    } else {
        Err(FsError::Forbidden)
    }
}

/// A file's or folder's metadata, as dav-server asks for it.
#[derive(Debug, Clone)]
pub struct Meta {
    len: u64,
    dir: bool,
    symlink: bool,
    modified: Option<SystemTime>,
    accessed: Option<SystemTime>,
    created: Option<SystemTime>,
    etag: String,
}

impl Meta {
    pub(crate) fn of(m: &Metadata) -> Meta {
        let etag = qsfs_web::transfer::etag(m);
        Meta {
            len: if m.is_dir() { 0 } else { m.len() },
            dir: m.is_dir(),
            symlink: m.file_type().is_symlink(),
            modified: m.modified().ok().map(|t| t.into_std()),
            accessed: m.accessed().ok().map(|t| t.into_std()),
            created: m.created().ok().map(|t| t.into_std()),
            // The web API's validator, without its quotes (dav-server adds them).
            etag: etag.trim_matches('"').to_string(),
        }
    }
}

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.len
    }
    fn modified(&self) -> FsResult<SystemTime> {
        self.modified.ok_or(FsError::NotImplemented)
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_symlink(&self) -> bool {
        self.symlink
    }
    fn etag(&self) -> Option<String> {
        Some(self.etag.clone())
    }
    fn accessed(&self) -> FsResult<SystemTime> {
        self.accessed.ok_or(FsError::NotImplemented)
    }
    fn created(&self) -> FsResult<SystemTime> {
        self.created.ok_or(FsError::NotImplemented)
    }
}

/// One entry of a folder listing.
#[derive(Debug)]
struct Entry {
    name: Vec<u8>,
    meta: FsResult<Meta>,
}

impl DavDirEntry for Entry {
    fn name(&self) -> Vec<u8> {
        self.name.clone()
    }
    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m = self
            .meta
            .clone()
            .map(|m| Box::new(m) as Box<dyn DavMetaData>);
        Box::pin(std::future::ready(m))
    }
}

/// Entries sent from the listing thread at a time: a folder of 100,000 entries streams
/// out in bounded memory, one `readdir` pass.
const LISTING_BATCH: usize = 256;

/// Stream the entries of folder `rel`, read by a blocking thread.
fn listing(root: Arc<Dir>, rel: RelPath, follow: bool) -> FsResult<FsStream<Box<dyn DavDirEntry>>> {
    let dir = root.open_dir(rel.as_path()).map_err(|e| fs_error(&e))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<FsResult<Box<dyn DavDirEntry>>>>(4);
    tokio::task::spawn_blocking(move || {
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.blocking_send(vec![Err(fs_error(&e))]);
                return;
            }
        };
        let mut batch = Vec::with_capacity(LISTING_BATCH);
        for entry in entries {
            let item = entry.map_err(|e| fs_error(&e)).map(|entry| {
                let name = entry.file_name();
                let shown = name.to_string_lossy();
                if qsfs_web::files::hidden(&rel, &shown) {
                    return None;
                }
                let meta = if follow {
                    dir.metadata(&name)
                } else {
                    entry.metadata()
                };
                use std::os::unix::ffi::OsStrExt;
                Some(Box::new(Entry {
                    name: name.as_bytes().to_vec(),
                    meta: meta.map(|m| Meta::of(&m)).map_err(|e| fs_error(&e)),
                }) as Box<dyn DavDirEntry>)
            });
            match item {
                Ok(None) => continue,
                Ok(Some(e)) => batch.push(Ok(e)),
                Err(e) => batch.push(Err(e)),
            }
            if batch.len() == LISTING_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(LISTING_BATCH));
                if tx.blocking_send(full).is_err() {
                    return; // the client went away
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    })
    .flat_map(futures_util::stream::iter);
    Ok(Box::pin(stream))
}

impl GuardedFileSystem<Access> for DriveFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
        access: &'a Access,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            let rel = rel(path)?;
            if options.write || options.append || options.create || options.truncate {
                writable(access)?;
            }
            if rel.is_root() && (options.write || options.create) {
                return Err(FsError::Forbidden);
            }
            // A whole body replaces the file (or makes it): written beside it, renamed in.
            if options.write && options.truncate && !options.append {
                let f =
                    NewFile::create(Arc::clone(&self.st), access.clone(), rel, &options).await?;
                return Ok(Box::new(f) as Box<dyn DavFile>);
            }
            let f = OpenFile::open(access, rel, options).await?;
            Ok(Box::new(f) as Box<dyn DavFile>)
        }
        .boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        meta: ReadDirMeta,
        access: &'a Access,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let rel = rel(path)?;
            let root = Arc::clone(&access.caller.root);
            let follow = meta == ReadDirMeta::Data;
            tokio::task::spawn_blocking(move || listing(root, rel, follow))
                .await
                .map_err(|_| FsError::GeneralFailure)?
        }
        .boxed()
    }

    fn metadata<'a>(
        &'a self,
        path: &'a DavPath,
        access: &'a Access,
    ) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let rel = rel(path)?;
            let m = on_root(access, move |root| root.metadata(rel.as_path())).await?;
            Ok(Box::new(Meta::of(&m)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn symlink_metadata<'a>(
        &'a self,
        path: &'a DavPath,
        access: &'a Access,
    ) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let rel = rel(path)?;
            let m = on_root(access, move |root| root.symlink_metadata(rel.as_path())).await?;
            Ok(Box::new(Meta::of(&m)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath, access: &'a Access) -> FsFuture<'a, ()> {
        async move {
            writable(access)?;
            let rel = rel(path)?;
            on_root(access, move |root| root.create_dir(rel.as_path())).await
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath, access: &'a Access) -> FsFuture<'a, ()> {
        async move {
            writable(access)?;
            let rel = rel(path)?;
            if rel.is_root() {
                return Err(FsError::Forbidden);
            }
            on_root(access, move |root| root.remove_dir(rel.as_path())).await
        }
        .boxed()
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath, access: &'a Access) -> FsFuture<'a, ()> {
        async move {
            writable(access)?;
            let rel = rel(path)?;
            let len = on_root(access, move |root| {
                let len = root.symlink_metadata(rel.as_path()).map_or(0, |m| {
                    if m.is_file() {
                        m.len()
                    } else {
                        0
                    }
                });
                root.remove_file(rel.as_path()).map(|()| len)
            })
            .await?;
            self.counted(access, 0, len);
            Ok(())
        }
        .boxed()
    }

    fn rename<'a>(
        &'a self,
        from: &'a DavPath,
        to: &'a DavPath,
        access: &'a Access,
    ) -> FsFuture<'a, ()> {
        async move {
            writable(access)?;
            let (from, to) = (rel(from)?, rel(to)?);
            if from.is_root() || to.is_root() {
                return Err(FsError::Forbidden);
            }
            on_root(access, move |root| {
                root.rename(from.as_path(), root, to.as_path())
            })
            .await
        }
        .boxed()
    }

    fn copy<'a>(
        &'a self,
        from: &'a DavPath,
        to: &'a DavPath,
        access: &'a Access,
    ) -> FsFuture<'a, ()> {
        async move {
            writable(access)?;
            let (from, to) = (rel(from)?, rel(to)?);
            let len = on_root(access, {
                let from = from.clone();
                move |root| root.metadata(from.as_path()).map(|m| m.len())
            })
            .await?;
            crate::file::room_for(&self.st, access, len, 0).await?;
            let copied = on_root(access, move |root| {
                // A copy replaces what was there (dav-server removed it when asked to).
                match root.remove_file(to.as_path()) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                let n = qsfs_web::copy::copy_file(root, from.as_path(), to.as_path())?;
                crate::props::copy(root, from.as_path(), to.as_path())?;
                Ok(n)
            })
            .await?;
            self.counted(access, copied, 0);
            Ok(())
        }
        .boxed()
    }

    /// Every file and folder can keep dead properties. Answered without looking: a listing
    /// asks this of every entry, and a look costs FUSE round trips (`get_props` then reads
    /// the properties once).
    fn have_props<'a>(
        &'a self,
        _path: &'a DavPath,
        _access: &'a Access,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(std::future::ready(true))
    }

    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
        access: &'a Access,
    ) -> FsFuture<'a, Vec<(axum::http::StatusCode, DavProp)>> {
        async move {
            writable(access)?;
            let rel = rel(path)?;
            on_root(access, move |root| {
                crate::props::patch(root, rel.as_path(), patch)
            })
            .await
        }
        .boxed()
    }

    fn get_props<'a>(
        &'a self,
        path: &'a DavPath,
        do_content: bool,
        access: &'a Access,
    ) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            let rel = rel(path)?;
            on_root(access, move |root| {
                crate::props::all(root, rel.as_path(), do_content)
            })
            .await
        }
        .boxed()
    }

    fn get_prop<'a>(
        &'a self,
        path: &'a DavPath,
        prop: DavProp,
        access: &'a Access,
    ) -> FsFuture<'a, Vec<u8>> {
        async move {
            let rel = rel(path)?;
            let found = on_root(access, move |root| {
                crate::props::one(root, rel.as_path(), &prop)
            })
            .await?;
            found.ok_or(FsError::NotFound)
        }
        .boxed()
    }

    fn get_quota<'a>(&'a self, access: &'a Access) -> FsFuture<'a, (u64, Option<u64>)> {
        async move {
            let me = &access.caller;
            if me.quota.is_some() {
                let (st, who) = (Arc::clone(&self.st), me.clone());
                let room = tokio::task::spawn_blocking(move || Room::of(&st, &who, 0))
                    .await
                    .map_err(|_| FsError::GeneralFailure)?
                    .map_err(|e| fs_error(&e))?;
                let room = room.ok_or(FsError::GeneralFailure)?;
                Ok((room.used, Some(room.quota)))
            } else {
                let root = Arc::clone(&me.root);
                let space = tokio::task::spawn_blocking(move || service_kit::sys::space_of(&*root))
                    .await
                    .map_err(|_| FsError::GeneralFailure)?
                    .map_err(|e| fs_error(&e))?;
                Ok((
                    space.total.saturating_sub(space.available),
                    Some(space.total),
                ))
            }
        }
        .boxed()
    }
}

impl DriveFs {
    /// The drive wrote `added` and removed `removed` bytes of the caller's own folder.
    pub(crate) fn counted(&self, access: &Access, added: u64, removed: u64) {
        if access.caller.space.is_none() {
            self.st.usage.moved(&access.caller.name, added, removed);
        }
    }
}

/// Whether `m` is of something neither a regular file nor a folder (a FIFO would hang a
/// reader; devices are not the drive's).
pub(crate) fn is_special(m: &Metadata) -> bool {
    !m.is_file() && !m.is_dir()
}
