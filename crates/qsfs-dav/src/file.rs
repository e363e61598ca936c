//! File bodies. A whole-file PUT ([`NewFile`]) lands as the web API's uploads do: streamed
//! into a temporary file beside the target, fsync'ed, checked against its announced
//! length, then renamed over the target, so a reader sees the old file or the new one and a
//! PUT acknowledged is on the drive; a PUT cut short leaves the old file as it was. It is
//! refused with 507 before any byte is kept when it would take its caller past its quota.
//! Reads, and writes of a range (a LOCK's empty file, `Content-Range` PUTs), go to the file
//! itself ([`OpenFile`]) with positional I/O off the runtime.

use std::io::{self, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use cap_std::fs::{Dir, Metadata};
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture, FsResult, OpenOptions};
use futures_util::FutureExt;
use qsfs_web::landing::TempFile;
use qsfs_web::paths::RelPath;
use qsfs_web::transfer::Room;
use qsfs_web::WebState;

use crate::fs::{fs_error, is_special, on_root, Access, Meta};

/// How many more bytes the caller may write (`None`: no limit), when `replaced` bytes go
/// with the write; 507 if not even `needed`.
pub(crate) async fn room_for(
    st: &Arc<WebState>,
    access: &Access,
    needed: u64,
    replaced: u64,
) -> FsResult<Option<u64>> {
    let (st, me) = (Arc::clone(st), access.caller.clone());
    let name = me.name.clone();
    let room = tokio::task::spawn_blocking(move || Room::of(&st, &me, replaced))
        .await
        .map_err(|_| FsError::GeneralFailure)?
        .map_err(|e| fs_error(&e))?;
    let Some(room) = room else {
        return Ok(None);
    };
    if needed > room.allowed() {
        tracing::info!(user = %name, needed, allowed = room.allowed(), "WebDAV write refused: over quota");
        return Err(FsError::InsufficientStorage);
    }
    Ok(Some(room.allowed()))
}

/// An open file and the position the next read or write starts at.
#[derive(Debug)]
struct Handle {
    file: Arc<std::fs::File>,
    pos: u64,
}

impl Handle {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> FsResult<T> {
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || f(&file))
            .await
            .map_err(|_| FsError::GeneralFailure)?
            .map_err(|e| fs_error(&e))
    }

    async fn metadata(&self) -> FsResult<Box<dyn DavMetaData>> {
        let m = self.blocking(Metadata::from_file).await?;
        Ok(Box::new(Meta::of(&m)))
    }

    /// Up to `count` bytes from the position (fewer only at the end of the file).
    async fn read(&mut self, count: usize) -> FsResult<Bytes> {
        let pos = self.pos;
        let bytes = self
            .blocking(move |f| {
                let mut buf = vec![0u8; count];
                let mut n = 0;
                while n < count {
                    match f.read_at(&mut buf[n..], pos + n as u64) {
                        Ok(0) => break,
                        Ok(r) => n += r,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(n);
                Ok(Bytes::from(buf))
            })
            .await?;
        self.pos += bytes.len() as u64;
        Ok(bytes)
    }

    async fn write(&mut self, bytes: Bytes) -> FsResult<()> {
        let (pos, len) = (self.pos, bytes.len() as u64);
        self.blocking(move |f| f.write_all_at(&bytes, pos)).await?;
        self.pos += len;
        Ok(())
    }

    async fn seek(&mut self, to: SeekFrom) -> FsResult<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => {
                let len = self.blocking(|f| f.metadata().map(|m| m.len())).await?;
                len.checked_add_signed(d)
            }
        };
        self.pos = target.ok_or(FsError::GeneralFailure)?;
        Ok(self.pos)
    }
}

/// A body as one `Bytes` (dav-server hands over `Buf`s of other kinds sometimes).
fn whole(mut buf: Box<dyn Buf + Send>) -> Bytes {
    buf.copy_to_bytes(buf.remaining())
}

/// A file opened in place: for reads, and for writes of a range.
#[derive(Debug)]
pub struct OpenFile {
    handle: Handle,
    writes: bool,
}

impl OpenFile {
    pub(crate) async fn open(
        access: &Access,
        rel: RelPath,
        options: OpenOptions,
    ) -> FsResult<OpenFile> {
        let (writes, append) = (options.write || options.append, options.append);
        let file = on_root(access, move |root| open_in_place(root, &rel, &options)).await?;
        let mut handle = Handle {
            file: Arc::new(file),
            pos: 0,
        };
        if append {
            handle.seek(SeekFrom::End(0)).await?;
        }
        Ok(OpenFile { handle, writes })
    }
}

fn open_in_place(root: &Dir, rel: &RelPath, options: &OpenOptions) -> io::Result<std::fs::File> {
    match root.metadata(rel.as_path()) {
        // Only regular files have bodies: a FIFO would hang the request.
        Ok(m) if is_special(&m) || m.is_dir() => {
            return Err(io::Error::from_raw_os_error(libc::EISDIR))
        }
        Ok(_) if options.create_new => return Err(io::Error::from_raw_os_error(libc::EEXIST)),
        _ => {}
    }
    let mut o = cap_std::fs::OpenOptions::new();
    o.read(options.read || !(options.write || options.append))
        .write(options.write || options.append)
        .create(options.create)
        .create_new(options.create_new);
    Ok(root.open_with(rel.as_path(), &o)?.into_std())
}

impl DavFile for OpenFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        self.handle.metadata().boxed()
    }
    fn write_buf(&mut self, buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        self.handle.write(whole(buf)).boxed()
    }
    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        self.handle.write(buf).boxed()
    }
    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        self.handle.read(count).boxed()
    }
    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        self.handle.seek(pos).boxed()
    }
    /// A write is acknowledged durable: the file's data reach the disk first.
    fn flush(&mut self) -> FsFuture<'_, ()> {
        let writes = self.writes;
        async move {
            if writes {
                self.handle.blocking(std::fs::File::sync_data).await?;
            }
            Ok(())
        }
        .boxed()
    }
}

/// A whole new body for a file: written beside it, renamed over it at [`DavFile::flush`].
pub struct NewFile {
    st: Arc<WebState>,
    access_name: String,
    counts: bool,
    root: Arc<Dir>,
    target: RelPath,
    handle: Handle,
    /// The length the request announced, if it did.
    expected: Option<u64>,
    written: u64,
    /// Bytes the caller may still write (`None`: no quota).
    allowed: Option<u64>,
    /// Bytes of the file replaced (given back to the quota when the new one lands).
    replaced: u64,
    create_new: bool,
    /// Where the body is written; taken when it lands.
    temp: Option<TempFile>,
}

impl std::fmt::Debug for NewFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFile")
            .field("target", &self.target)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl NewFile {
    pub(crate) async fn create(
        st: Arc<WebState>,
        access: Access,
        target: RelPath,
        options: &OpenOptions,
    ) -> FsResult<NewFile> {
        let (t, create, create_new) = (target.clone(), options.create, options.create_new);
        let replaced = on_root(&access, move |root| {
            let parent = t.parent();
            if !root.metadata(parent.as_path())?.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            match root.metadata(t.as_path()) {
                Ok(m) if is_special(&m) || m.is_dir() => {
                    Err(io::Error::from_raw_os_error(libc::EISDIR))
                }
                Ok(_) if create_new => Err(io::Error::from_raw_os_error(libc::EEXIST)),
                Ok(m) => Ok(m.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => Ok(0),
                Err(e) => Err(e),
            }
        })
        .await?;
        let expected = options.size;
        let allowed = room_for(&st, &access, expected.unwrap_or(0), replaced).await?;
        let (root, folder) = (Arc::clone(&access.caller.root), target.parent());
        let temp = tokio::task::spawn_blocking(move || TempFile::create(&root, &folder))
            .await
            .map_err(|_| FsError::GeneralFailure)?
            .map_err(|e| fs_error(&e))?;
        Ok(NewFile {
            st,
            access_name: access.caller.name.clone(),
            counts: access.caller.space.is_none(),
            root: Arc::clone(&access.caller.root),
            target,
            handle: Handle {
                file: Arc::clone(temp.file()),
                pos: 0,
            },
            expected,
            written: 0,
            allowed,
            replaced,
            create_new,
            temp: Some(temp),
        })
    }

    async fn write(&mut self, bytes: Bytes) -> FsResult<()> {
        let after = self.written + bytes.len() as u64;
        if self.allowed.is_some_and(|a| after > a) {
            tracing::info!(user = %self.access_name, bytes = after, "WebDAV PUT stopped: over quota");
            return Err(FsError::InsufficientStorage);
        }
        if self.expected.is_some_and(|e| after > e) {
            return Err(FsError::GeneralFailure);
        }
        self.handle.write(bytes).await?;
        self.written = after;
        Ok(())
    }

    /// The body is whole: make it durable, then put it in place.
    async fn land(&mut self) -> FsResult<()> {
        let Some(temp) = self.temp.take() else {
            return Ok(()); // landed already (or failed to, and is gone)
        };
        if self.expected.is_some_and(|e| e != self.written) {
            return Err(FsError::GeneralFailure);
        }
        let (root, target, create_new) =
            (Arc::clone(&self.root), self.target.clone(), self.create_new);
        tokio::task::spawn_blocking(move || {
            // `If-None-Match: *` holds until the last moment.
            if create_new && root.symlink_metadata(target.as_path()).is_ok() {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            temp.land(&target)
        })
        .await
        .map_err(|_| FsError::GeneralFailure)?
        .map_err(|e| fs_error(&e))?;
        if self.counts {
            self.st
                .usage
                .moved(&self.access_name, self.written, self.replaced);
        }
        Ok(())
    }
}

impl DavFile for NewFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        self.handle.metadata().boxed()
    }
    fn write_buf(&mut self, buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        self.write(whole(buf)).boxed()
    }
    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        self.write(buf).boxed()
    }
    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        Box::pin(std::future::ready(Err(FsError::NotImplemented)))
    }
    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        // A whole body is written from its start, in order.
        let ok = matches!(pos, SeekFrom::Start(0) | SeekFrom::Current(0)) && self.written == 0;
        Box::pin(std::future::ready(if ok {
            Ok(0)
        } else {
            Err(FsError::NotImplemented)
        }))
    }
    fn flush(&mut self) -> FsFuture<'_, ()> {
        self.land().boxed()
    }
}
