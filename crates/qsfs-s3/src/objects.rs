//! Objects as files: written whole beside their target and renamed over it (PUT, copy),
//! read with ranges, deleted with the folders they leave empty.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use cap_std::fs::Dir;
use futures_util::StreamExt;
use md5::Digest;
use qsfs_web::auth::Caller;
use qsfs_web::landing::TempFile;
use qsfs_web::paths::RelPath;
use qsfs_web::transfer::Room;
use qsfs_web::WebState;
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Error, S3Result};

use crate::meta::{Given, ObjectMeta};
use crate::names::{bucket_path, object_path, Target};
use crate::{custom_error, io_error, join_error, on_root};

/// The MD5 of nothing: the ETag of an empty object, and of a folder.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
/// Bytes gathered before one write to the file.
const WRITE_BUF: usize = 1 << 20;
/// Bytes read from a file per step of a GET.
const READ_BUF: usize = 256 * 1024;

/// The bucket's folder, or `NoSuchBucket`.
pub(crate) fn need_bucket(root: &Dir, bucket: &str) -> S3Result<RelPath> {
    let path = bucket_path(bucket)?;
    match root.metadata(path.as_path()) {
        Ok(m) if m.is_dir() => Ok(path),
        _ => Err(s3_error!(
            NoSuchBucket,
            "{bucket:?}: no such bucket (top folder)"
        )),
    }
}

/// The 403 of a write past the caller's quota.
fn over_quota(me: &Caller, room: Room, needed: u64) -> S3Error {
    let e = room.exceeded(&me.name, needed);
    tracing::info!(user = %me.name, needed, "S3 write refused: over quota");
    custom_error("QuotaExceeded", StatusCode::FORBIDDEN, e.message)
}

/// The caller's room for a write replacing `replaced` bytes (blocking).
pub(crate) fn room_of(st: &WebState, me: &Caller, replaced: u64) -> S3Result<Option<Room>> {
    Room::of(st, me, replaced).map_err(|e| io_error("quota", &e))
}

/// Write `body` into `file` from `offset`: the MD5 and the length of what was written.
/// Stops at the quota (`room`), and at a body longer than `expected`.
pub(crate) async fn write_body(
    me: &Caller,
    file: &Arc<File>,
    offset: u64,
    body: Option<StreamingBlob>,
    expected: Option<u64>,
    room: Option<Room>,
) -> S3Result<([u8; 16], u64)> {
    // Two buffers: one fills from the network while the other is written and hashed (at
    // the same time, off the runtime; one buffer in flight at a time, so in order). The
    // buffer and the hash not in flight wait in `idle`.
    let mut idle = Some((Vec::with_capacity(WRITE_BUF), md5::Md5::new()));
    let mut inflight: Option<InFlight> = None;
    let mut queued = 0u64;
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BUF);
    let mut body = body;
    loop {
        let chunk = match &mut body {
            Some(b) => b.next().await,
            None => None,
        };
        let last = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk: Bytes = chunk.map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
            pending.extend_from_slice(&chunk);
            let after = queued + pending.len() as u64;
            if let Some(room) = room.filter(|r| after > r.allowed()) {
                return Err(over_quota(me, room, after));
            }
            if expected.is_some_and(|n| after > n) {
                return Err(s3_error!(
                    IncompleteBody,
                    "the body is longer than announced"
                ));
            }
        }
        if pending.len() >= WRITE_BUF || (last && !pending.is_empty()) {
            if let Some(flight) = inflight.take() {
                idle = Some(flight.done().await?);
            }
            let (mut next, hash) = idle
                .take()
                .expect("a buffer is idle once none is in flight");
            next.clear();
            let buf = Arc::new(std::mem::replace(&mut pending, next));
            let n = buf.len() as u64;
            inflight = Some(InFlight::start(file, offset + queued, buf, hash));
            queued += n;
        }
        if last {
            break;
        }
    }
    if let Some(flight) = inflight.take() {
        idle = Some(flight.done().await?);
    }
    let (_, hash) = idle.expect("nothing in flight");
    if expected.is_some_and(|n| n != queued) {
        return Err(s3_error!(
            IncompleteBody,
            "the body is shorter than announced"
        ));
    }
    Ok((hash.finalize().into(), queued))
}

/// One buffer of a body being written at its offset and hashed, on two blocking threads:
/// the MD5 of a GiB takes about 1.5 s of a core here, as long as writing it through the
/// mount, so one after the other halved a large PUT's rate.
struct InFlight {
    buf: Arc<Vec<u8>>,
    write: tokio::task::JoinHandle<io::Result<()>>,
    hash: tokio::task::JoinHandle<md5::Md5>,
}

impl InFlight {
    fn start(file: &Arc<File>, at: u64, buf: Arc<Vec<u8>>, mut hash: md5::Md5) -> InFlight {
        let (f, bytes) = (Arc::clone(file), Arc::clone(&buf));
        let write = tokio::task::spawn_blocking(move || f.write_all_at(&bytes, at));
        let bytes = Arc::clone(&buf);
        let hash = tokio::task::spawn_blocking(move || {
            hash.update(&*bytes);
            hash
        });
        InFlight { buf, write, hash }
    }

    /// Wait for both; the buffer (to fill again) and the hash so far.
    async fn done(self) -> S3Result<(Vec<u8>, md5::Md5)> {
        let written = self.write.await.map_err(join_error)?;
        let hash = self.hash.await.map_err(join_error)?;
        written.map_err(|e| io_error("writing the object", &e))?;
        // Both tasks are over: the buffer is ours alone again.
        let buf = Arc::into_inner(self.buf).unwrap_or_default();
        Ok((buf, hash))
    }
}

/// `Content-MD5` (base64) against what arrived.
pub(crate) fn check_md5(given: Option<&str>, md5: &[u8; 16]) -> S3Result<()> {
    use base64::Engine;
    let Some(given) = given else {
        return Ok(());
    };
    let want = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
    if want.as_slice() != md5 {
        return Err(s3_error!(
            BadDigest,
            "the body's MD5 is not its Content-MD5"
        ));
    }
    Ok(())
}

/// Where a new object's bytes go: the temporary file beside `target` (its folders made),
/// and the caller's room (blocking).
fn prepare(
    st: &WebState,
    me: &Caller,
    root: &Arc<Dir>,
    bucket: &str,
    target: &RelPath,
) -> S3Result<(TempFile, Option<Room>, u64)> {
    need_bucket(root, bucket)?;
    let shown = target.display();
    let parent = target.parent();
    root.create_dir_all(parent.as_path())
        .map_err(|e| io_error(&shown, &e))?;
    let replaced = match root.symlink_metadata(target.as_path()) {
        Ok(m) if m.is_dir() => {
            return Err(io_error(
                &shown,
                &io::Error::from_raw_os_error(libc::EISDIR),
            ))
        }
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    };
    let room = room_of(st, me, replaced)?;
    let temp = TempFile::create(root, &parent).map_err(|e| io_error(&shown, &e))?;
    Ok((temp, room, replaced))
}

/// What a PUT brings.
pub struct Upload {
    pub body: Option<StreamingBlob>,
    pub length: Option<u64>,
    pub content_md5: Option<String>,
    pub given: Given,
}

/// Store an object (PUT): its ETag.
pub async fn put(
    st: &Arc<WebState>,
    me: &Caller,
    bucket: &str,
    key: &str,
    up: Upload,
) -> S3Result<String> {
    up.given.check()?;
    let target = object_path(bucket, key)?;
    let (b, root) = (bucket.to_string(), Arc::clone(&me.root));
    let path = match target {
        Target::Folder(path) => {
            if up.length.is_some_and(|n| n > 0) {
                return Err(custom_error(
                    "InvalidObjectName",
                    StatusCode::BAD_REQUEST,
                    format!("{key:?}: a key ending in `/` is a folder here: it holds no bytes"),
                ));
            }
            on_root(me, move |root| {
                need_bucket(root, &b)?;
                root.create_dir_all(path.as_path())
                    .map_err(|e| io_error(&path.display(), &e))
            })
            .await?;
            return Ok(EMPTY_MD5.to_string());
        }
        Target::File(path) => path,
    };
    let (s, who, t) = (Arc::clone(st), me.clone(), path.clone());
    let (temp, room, replaced) =
        tokio::task::spawn_blocking(move || prepare(&s, &who, &root, &b, &t))
            .await
            .map_err(join_error)??;
    let (md5, written) = write_body(me, temp.file(), 0, up.body, up.length, room).await?;
    check_md5(up.content_md5.as_deref(), &md5)?;
    let etag = hex::encode(md5);
    let given = up.given;
    let tag = etag.clone();
    tokio::task::spawn_blocking(move || -> S3Result<()> {
        let shown = path.display();
        let record = given
            .record(tag, temp.file())
            .map_err(|e| io_error(&shown, &e))?;
        record
            .store(temp.file())
            .map_err(|e| io_error(&shown, &e))?;
        temp.land(&path).map_err(|e| io_error(&shown, &e))
    })
    .await
    .map_err(join_error)??;
    st.usage.moved(&me.name, written, replaced);
    Ok(etag)
}

/// An object opened for reading.
pub struct Opened {
    /// `None` for a folder (an empty object).
    pub file: Option<Arc<File>>,
    pub size: u64,
    pub modified: std::time::SystemTime,
    pub etag: String,
    pub meta: Option<ObjectMeta>,
}

/// Open key `key` of `bucket` (blocking): `NoSuchKey` unless it is a file, or a folder for
/// a key ending in `/`.
pub fn open(root: &Dir, bucket: &str, key: &str) -> S3Result<Opened> {
    let target = object_path(bucket, key)?;
    let missing = |root: &Dir| match need_bucket(root, bucket) {
        Ok(_) => s3_error!(NoSuchKey, "{key:?}: no such object"),
        Err(e) => e,
    };
    let path = target.path();
    let Ok(m) = root.metadata(path.as_path()) else {
        return Err(missing(root));
    };
    let modified = m
        .modified()
        .map(|t| t.into_std())
        .unwrap_or(std::time::UNIX_EPOCH);
    match target {
        Target::Folder(_) if m.is_dir() => Ok(Opened {
            file: None,
            size: 0,
            modified,
            etag: EMPTY_MD5.to_string(),
            meta: None,
        }),
        Target::File(_) if m.is_file() => {
            use cap_std::fs::OpenOptionsExt;
            let mut o = cap_std::fs::OpenOptions::new();
            // Never wait on a FIFO swapped in since the check.
            o.read(true).custom_flags(libc::O_NONBLOCK);
            let file = root
                .open_with(path.as_path(), &o)
                .map_err(|e| io_error(&path.display(), &e))?
                .into_std();
            let m = file.metadata().map_err(|e| io_error(&path.display(), &e))?;
            if !m.is_file() {
                return Err(missing(root));
            }
            let meta = crate::meta::load(&file, &m);
            Ok(Opened {
                size: m.len(),
                modified,
                etag: crate::meta::etag(meta.as_ref(), &m),
                meta,
                file: Some(Arc::new(file)),
            })
        }
        _ => Err(missing(root)),
    }
}

/// Bytes `range` of `file`, streamed.
pub fn stream(file: Option<Arc<File>>, range: std::ops::Range<u64>) -> StreamingBlob {
    let state = (file, range.start, range.end);
    let s = futures_util::stream::unfold(state, |(file, pos, end)| async move {
        let f = file.as_ref().filter(|_| pos < end)?;
        let (f2, n) = (Arc::clone(f), ((end - pos) as usize).min(READ_BUF));
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            let mut got = 0;
            while got < n {
                match f2.read_at(&mut buf[got..], pos + got as u64) {
                    Ok(0) => break,
                    Ok(r) => got += r,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(got);
            Ok(buf)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        match read {
            Ok(buf) if buf.is_empty() => {
                // The file shrank under the GET: end it short (the client sees the cut).
                Some((
                    Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                    (None, end, end),
                ))
            }
            Ok(buf) => {
                let next = pos + buf.len() as u64;
                Some((Ok(Bytes::from(buf)), (file, next, end)))
            }
            Err(e) => Some((Err(e), (None, end, end))),
        }
    });
    StreamingBlob::wrap(s)
}

/// Delete key `key` of `bucket` (blocking): a missing one is no error (as in S3). Folders
/// the deletion leaves empty go too, up to the bucket. The bytes freed.
pub fn delete(root: &Dir, bucket: &str, key: &str) -> S3Result<u64> {
    let target = object_path(bucket, key)?;
    let top = need_bucket(root, bucket)?;
    let path = target.path();
    let freed = match &target {
        Target::Folder(p) => {
            // A folder holding objects stays: only its own "object" goes, and that is it.
            let _ = root.remove_dir(p.as_path());
            0
        }
        Target::File(p) => match root.symlink_metadata(p.as_path()) {
            Ok(m) if m.is_dir() => return Ok(0),
            Ok(m) => {
                root.remove_file(p.as_path())
                    .map_err(|e| io_error(&p.display(), &e))?;
                if m.is_file() {
                    m.len()
                } else {
                    0
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(&p.display(), &e)),
        },
    };
    let mut folder = path.parent();
    while folder != top && !folder.is_root() {
        if root.remove_dir(folder.as_path()).is_err() {
            break;
        }
        folder = folder.parent();
    }
    Ok(freed)
}

/// Copy `from` (bucket, key) to `to` (bucket, key), with the source's metadata or `given`
/// (REPLACE): the new ETag (the MD5 of the bytes, hashed while copied) and time.
pub async fn copy(
    st: &Arc<WebState>,
    me: &Caller,
    from: (&str, &str),
    to: (&str, &str),
    given: Option<Given>,
) -> S3Result<(String, std::time::SystemTime)> {
    if let Some(g) = &given {
        g.check()?;
    }
    let target = match object_path(to.0, to.1)? {
        Target::File(target) => target,
        // A folder onto a folder (s3fs's chmod of one): the folder is there, and a folder
        // keeps no metadata.
        Target::Folder(folder) => {
            let (fb, fk, tb) = (from.0.to_string(), from.1.to_string(), to.0.to_string());
            let modified = on_root(me, move |root| {
                let source = open(root, &fb, &fk)?;
                if source.file.is_some() {
                    return Err(s3_error!(InvalidRequest, "a file is no folder's copy"));
                }
                need_bucket(root, &tb)?;
                root.create_dir_all(folder.as_path())
                    .map_err(|e| io_error(&folder.display(), &e))?;
                Ok(source.modified)
            })
            .await?;
            return Ok((EMPTY_MD5.to_string(), modified));
        }
    };
    let (s, who, root) = (Arc::clone(st), me.clone(), Arc::clone(&me.root));
    let (fb, fk, tb) = (from.0.to_string(), from.1.to_string(), to.0.to_string());
    let (etag, modified, written, replaced) = tokio::task::spawn_blocking(move || {
        let source = open(&root, &fb, &fk)?;
        let Some(src) = source.file else {
            return Err(s3_error!(InvalidRequest, "{fk:?} is a folder"));
        };
        let (temp, room, replaced) = prepare(&s, &who, &root, &tb, &target)?;
        if let Some(room) = room.filter(|r| source.size > r.allowed()) {
            return Err(over_quota(&who, room, source.size));
        }
        let shown = target.display();
        let fail = |e: io::Error| io_error(&shown, &e);
        let mut hash = md5::Md5::new();
        let mut buf = vec![0u8; WRITE_BUF];
        let mut at = 0u64;
        loop {
            let n = src.read_at(&mut buf, at).map_err(fail)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            temp.file().write_all_at(&buf[..n], at).map_err(fail)?;
            at += n as u64;
        }
        let etag = hex::encode(hash.finalize());
        let given = given.unwrap_or_else(|| source.meta.map(|m| m.given()).unwrap_or_default());
        let record = given.record(etag.clone(), temp.file()).map_err(fail)?;
        record.store(temp.file()).map_err(fail)?;
        let file = Arc::clone(temp.file());
        temp.land(&target).map_err(fail)?;
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| std::time::SystemTime::now());
        Ok((etag, modified, at, replaced))
    })
    .await
    .map_err(join_error)??;
    st.usage.moved(&me.name, written, replaced);
    Ok((etag, modified))
}
