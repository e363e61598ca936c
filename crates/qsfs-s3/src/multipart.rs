//! Multipart uploads, streamed to the drive and assembled without copying when they can be.
//!
//! An upload keeps hidden files in its bucket's folder (names of uploads in progress, so no
//! listing shows them): its record (`…-list.part`: key, metadata, parts with size and MD5)
//! and one data file. Clients cut an object into parts of one size (all but the last), so
//! part N is written at offset (N-1) x that size (learnt from the first part that
//! arrives), and at completion the data file *is* the object: cut to length, renamed into
//! place, no byte copied. A part that does not fit the pattern (larger than the first, or
//! of unknown length) goes to a file of its own, and such an upload is assembled by copying
//! into a new file beside the target.
//!
//! Durability: a part is acknowledged once its bytes are fsync'ed and the record that
//! lists it is replaced (written, fsync'ed, renamed); a completed upload as a PUT is.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use cap_std::fs::Dir;
use qsfs_web::auth::Caller;
use qsfs_web::paths::RelPath;
use qsfs_web::WebState;
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};

use crate::meta::Given;
use crate::names::{object_path, Target};
use crate::objects::{check_md5, need_bucket, room_of, write_body};
use crate::{custom_error, io_error, join_error};
use qsfs_web::landing::{rename_durably, TempFile};

/// An upload not completed nor aborted after this long is swept away (when another upload
/// starts in its bucket).
const ABANDONED_SECS: u64 = 7 * 24 * 3600;
/// Part numbers S3 allows.
const PARTS: std::ops::RangeInclusive<i32> = 1..=10_000;
/// Name prefix of an upload's files.
fn prefix(id: &str) -> String {
    format!("{}s3-{id}", qsfs_web::landing::UPLOAD_PREFIX)
}

/// One part as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    pub size: u64,
    /// MD5, hex: the part's ETag.
    pub md5: String,
    /// In the data file at (N-1) x the part size; else in a file of its own.
    pub in_data: bool,
    /// Seconds since the epoch.
    pub modified: u64,
}

/// An upload as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub created: u64,
    pub given: Given,
    /// The size of the parts, as the first one to arrive announced it.
    pub part_size: Option<u64>,
    pub parts: BTreeMap<u32, PartRecord>,
}

/// The uploads in progress: one lock per upload for its record.
#[derive(Default)]
pub struct Uploads {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Uploads {
    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the locks nobody holds (of uploads done or abandoned).
        map.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(map.entry(id.to_string()).or_default())
    }
}

/// The paths of upload `id` in bucket folder `bucket`.
struct Files {
    bucket: RelPath,
    id: String,
}

impl Files {
    fn at(&self, suffix: &str) -> RelPath {
        self.bucket
            .join(&format!("{}{suffix}.part", prefix(&self.id)))
            .unwrap_or_else(|_| self.bucket.clone())
    }
    fn record(&self) -> RelPath {
        self.at("-list")
    }
    fn data(&self) -> RelPath {
        self.at("")
    }
    fn part(&self, n: u32) -> RelPath {
        self.at(&format!("-{n}"))
    }

    fn load(&self, root: &Dir, key: &str) -> S3Result<Record> {
        let missing = || s3_error!(NoSuchUpload, "no such upload (completed or aborted?)");
        let bytes = root.read(self.record().as_path()).map_err(|_| missing())?;
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| s3_error!(InternalError, "the upload's record is damaged: {e}"))?;
        if record.key != key {
            return Err(missing());
        }
        Ok(record)
    }

    /// Replace the record, durably.
    fn store(&self, root: &Dir, record: &Record) -> S3Result<()> {
        let fail = |e: io::Error| io_error("the upload's record", &e);
        let json = serde_json::to_vec(record).map_err(|e| s3_error!(InternalError, "{e}"))?;
        let new = self.at("-list.new");
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        let f = root.open_with(new.as_path(), &o).map_err(fail)?.into_std();
        f.write_all_at(&json, 0).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        rename_durably(root, new.as_path(), root, &self.record()).map_err(fail)
    }

    /// Remove every file of the upload.
    fn remove(&self, root: &Dir, record: &Record) {
        for (n, p) in &record.parts {
            if !p.in_data {
                let _ = root.remove_file(self.part(*n).as_path());
            }
        }
        let _ = root.remove_file(self.data().as_path());
        let _ = root.remove_file(self.record().as_path());
    }
}

fn files(root: &Dir, bucket: &str, id: &str) -> S3Result<Files> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(s3_error!(NoSuchUpload, "no such upload"));
    }
    Ok(Files {
        bucket: need_bucket(root, bucket)?,
        id: id.to_string(),
    })
}

/// Blocking work on the caller's folder.
async fn blocking<T: Send + 'static>(
    me: &Caller,
    f: impl FnOnce(&Arc<Dir>) -> S3Result<T> + Send + 'static,
) -> S3Result<T> {
    let root = Arc::clone(&me.root);
    tokio::task::spawn_blocking(move || f(&root))
        .await
        .map_err(join_error)?
}

/// Start an upload of key `key`: its id.
pub async fn create(me: &Caller, bucket: &str, key: &str, given: Given) -> S3Result<String> {
    given.check()?;
    if !matches!(object_path(bucket, key)?, Target::File(_)) {
        return Err(custom_error(
            "InvalidObjectName",
            StatusCode::BAD_REQUEST,
            format!("{key:?}: a key ending in `/` is a folder here"),
        ));
    }
    let id = qsfs_web::sessions::random_hex(16);
    let (b, k, i) = (bucket.to_string(), key.to_string(), id.clone());
    blocking(me, move |root| {
        let files = files(root, &b, &i)?;
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        root.open_with(files.data().as_path(), &o)
            .map_err(|e| io_error(&k, &e))?;
        let record = Record {
            key: k,
            created: qsfs_web::unix_now(),
            given,
            part_size: None,
            parts: BTreeMap::new(),
        };
        files.store(root, &record)?;
        sweep(root, &b)
    })
    .await?;
    Ok(id)
}

/// What an upload request names.
pub struct Which<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub id: &'a str,
}

/// Store part `n` of an upload: its ETag.
#[allow(clippy::too_many_arguments)]
pub async fn upload_part(
    uploads: &Uploads,
    st: &Arc<WebState>,
    me: &Caller,
    w: Which<'_>,
    n: i32,
    body: Option<StreamingBlob>,
    length: Option<u64>,
    content_md5: Option<String>,
) -> S3Result<String> {
    if !PARTS.contains(&n) {
        return Err(s3_error!(InvalidArgument, "part numbers are 1 to 10000"));
    }
    let n = n as u32;
    let lock = uploads.lock_of(w.id);
    let (b, k, i) = (w.bucket.to_string(), w.key.to_string(), w.id.to_string());
    // Where the part goes, and the part size if it is the first.
    let guard = lock.lock().await;
    let (s, who) = (Arc::clone(st), me.clone());
    let (file, offset, in_data, room) = blocking(me, move |root| {
        let files = files(root, &b, &i)?;
        let mut record = files.load(root, &k)?;
        if record.part_size.is_none() {
            if let Some(len) = length.filter(|&l| l > 0) {
                record.part_size = Some(len);
                files.store(root, &record)?;
            }
        }
        let fits = record
            .part_size
            .zip(length)
            .filter(|&(size, len)| len <= size);
        let mut o = cap_std::fs::OpenOptions::new();
        o.read(true).write(true);
        let (path, offset) = if let Some((size, _)) = fits {
            (files.data(), u64::from(n - 1) * size)
        } else {
            o.create(true).truncate(true);
            (files.part(n), 0)
        };
        let file = root
            .open_with(path.as_path(), &o)
            .map_err(|e| io_error(&k, &e))?
            .into_std();
        let room = room_of(&s, &who, 0)?;
        Ok((Arc::new(file), offset, fits.is_some(), room))
    })
    .await?;
    drop(guard);
    let (md5, size) = write_body(me, &file, offset, body, length, room).await?;
    check_md5(content_md5.as_deref(), &md5)?;
    let etag = hex::encode(md5);
    // The part's bytes are made durable before its record names it, and outside the
    // record's lock: the other parts of the upload go on meanwhile (under it, parts came
    // in one after another: 55-80 MB/s with four at once).
    let (f, k) = (Arc::clone(&file), w.key.to_string());
    blocking(me, move |_| f.sync_data().map_err(|e| io_error(&k, &e))).await?;
    let _guard = lock.lock().await;
    let (b, k, i, tag) = (
        w.bucket.to_string(),
        w.key.to_string(),
        w.id.to_string(),
        etag.clone(),
    );
    blocking(me, move |root| {
        let files = files(root, &b, &i)?;
        let mut record = files.load(root, &k)?;
        let part = PartRecord {
            size,
            md5: tag,
            in_data,
            modified: qsfs_web::unix_now(),
        };
        if let Some(old) = record.parts.insert(n, part) {
            if !old.in_data && in_data {
                let _ = root.remove_file(files.part(n).as_path());
            }
        }
        files.store(root, &record)
    })
    .await?;
    Ok(etag)
}

/// Finish an upload with parts `parts` (number, ETag), in order: the object's ETag.
pub async fn complete(
    uploads: &Uploads,
    st: &Arc<WebState>,
    me: &Caller,
    w: Which<'_>,
    parts: Vec<(i32, String)>,
) -> S3Result<String> {
    let Target::File(target) = object_path(w.bucket, w.key)? else {
        return Err(s3_error!(NoSuchUpload));
    };
    let lock = uploads.lock_of(w.id);
    let _guard = lock.lock().await;
    let (b, k, i) = (w.bucket.to_string(), w.key.to_string(), w.id.to_string());
    let etag = blocking(me, move |root| {
        let files = files(root, &b, &i)?;
        let record = files.load(root, &k)?;
        let chosen = chosen_parts(&record, &parts)?;
        let md5s: Vec<[u8; 16]> = chosen
            .iter()
            .map(|(_, p)| {
                let mut m = [0u8; 16];
                hex::decode_to_slice(&p.md5, &mut m).map(|()| m)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| s3_error!(InternalError, "a part's MD5 is damaged: {e}"))?;
        let etag = crate::meta::multipart_etag(&md5s);
        assemble(root, &files, &record, &chosen, &target, etag.clone())?;
        files.remove(root, &record);
        Ok(etag)
    })
    .await?;
    // Parts and their files came and went: count the caller's bytes afresh.
    st.usage.forget(&me.name);
    Ok(etag)
}

/// The parts a completion names, checked against the record: `InvalidPart` for one not
/// uploaded (or of another ETag), `InvalidPartOrder` unless ascending.
fn chosen_parts(record: &Record, parts: &[(i32, String)]) -> S3Result<Vec<(u32, PartRecord)>> {
    if parts.is_empty() {
        return Err(s3_error!(MalformedXML, "a completion lists its parts"));
    }
    let mut chosen: Vec<(u32, PartRecord)> = Vec::with_capacity(parts.len());
    for (n, etag) in parts {
        let n = u32::try_from(*n).map_err(|_| s3_error!(InvalidPart, "part {n}"))?;
        if chosen.last().is_some_and(|(last, _)| *last >= n) {
            return Err(s3_error!(
                InvalidPartOrder,
                "parts are listed in ascending order"
            ));
        }
        let given = etag.trim_matches('"').to_ascii_lowercase();
        match record.parts.get(&n) {
            Some(p) if given.is_empty() || p.md5 == given => chosen.push((n, p.clone())),
            _ => {
                return Err(s3_error!(
                    InvalidPart,
                    "part {n} was not uploaded with that ETag"
                ))
            }
        }
    }
    Ok(chosen)
}

/// Put the object together at `target`: the data file itself when the parts lie in it in
/// order, else a copy of each part into a new file.
fn assemble(
    root: &Arc<Dir>,
    files: &Files,
    record: &Record,
    chosen: &[(u32, PartRecord)],
    target: &RelPath,
    etag: String,
) -> S3Result<()> {
    let shown = target.display();
    let fail = |e: io::Error| io_error(&shown, &e);
    root.create_dir_all(target.parent().as_path())
        .map_err(fail)?;
    if root
        .symlink_metadata(target.as_path())
        .is_ok_and(|m| m.is_dir())
    {
        return Err(fail(io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let in_place = record.part_size.filter(|&size| {
        let last = chosen.len() - 1;
        chosen.iter().enumerate().all(|(i, (n, p))| {
            p.in_data && *n as usize == i + 1 && (p.size == size || i == last && p.size <= size)
        })
    });
    let given = record.given.clone();
    if let Some(size) = in_place {
        let len = size * (chosen.len() as u64 - 1) + chosen[chosen.len() - 1].1.size;
        let mut o = cap_std::fs::OpenOptions::new();
        o.read(true).write(true);
        let data = root
            .open_with(files.data().as_path(), &o)
            .map_err(fail)?
            .into_std();
        data.set_len(len).map_err(fail)?;
        let meta = given.record(etag, &data).map_err(fail)?;
        meta.store(&data).map_err(fail)?;
        data.sync_all().map_err(fail)?;
        return rename_durably(root, files.data().as_path(), root, target).map_err(fail);
    }
    let temp = TempFile::create(root, &target.parent()).map_err(fail)?;
    let data = root.open(files.data().as_path()).map_err(fail)?.into_std();
    let mut at = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (n, p) in chosen {
        let (src, from): (File, u64) = if p.in_data {
            let size = record.part_size.unwrap_or(0);
            (data.try_clone().map_err(fail)?, u64::from(n - 1) * size)
        } else {
            (
                root.open(files.part(*n).as_path())
                    .map_err(fail)?
                    .into_std(),
                0,
            )
        };
        let mut done = 0u64;
        while done < p.size {
            let want = ((p.size - done) as usize).min(buf.len());
            let got = src.read_at(&mut buf[..want], from + done).map_err(fail)?;
            if got == 0 {
                return Err(s3_error!(
                    InternalError,
                    "part {n} is shorter than recorded"
                ));
            }
            temp.file().write_all_at(&buf[..got], at).map_err(fail)?;
            done += got as u64;
            at += got as u64;
        }
    }
    let meta = given.record(etag, temp.file()).map_err(fail)?;
    meta.store(temp.file()).map_err(fail)?;
    temp.land(target).map_err(fail)
}

/// Give up an upload: its files go.
pub async fn abort(uploads: &Uploads, me: &Caller, w: Which<'_>) -> S3Result<()> {
    let lock = uploads.lock_of(w.id);
    let _guard = lock.lock().await;
    let (b, k, i) = (w.bucket.to_string(), w.key.to_string(), w.id.to_string());
    blocking(me, move |root| {
        let files = files(root, &b, &i)?;
        let record = files.load(root, &k)?;
        files.remove(root, &record);
        Ok(())
    })
    .await
}

/// The record of an upload, to list its parts.
pub async fn record(me: &Caller, w: Which<'_>) -> S3Result<Record> {
    let (b, k, i) = (w.bucket.to_string(), w.key.to_string(), w.id.to_string());
    blocking(me, move |root| files(root, &b, &i)?.load(root, &k)).await
}

/// The uploads in progress in bucket `bucket`: (id, record), by key.
pub async fn in_progress(me: &Caller, bucket: &str) -> S3Result<Vec<(String, Record)>> {
    let b = bucket.to_string();
    blocking(me, move |root| scan(root, &b)).await
}

/// The uploads in progress in bucket `bucket` (blocking).
fn scan(root: &Dir, bucket: &str) -> S3Result<Vec<(String, Record)>> {
    let top = need_bucket(root, bucket)?;
    let start = prefix("");
    let mut out = Vec::new();
    let dir = root
        .open_dir(top.as_path())
        .map_err(|e| io_error(bucket, &e))?;
    for e in dir.entries().map_err(|e| io_error(bucket, &e))? {
        let Ok(e) = e else { continue };
        let name = e.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix(start.as_str()))
            .and_then(|n| n.strip_suffix("-list.part"))
        else {
            continue;
        };
        let Ok(bytes) = dir.read(&name) else { continue };
        if let Ok(record) = serde_json::from_slice::<Record>(&bytes) {
            out.push((id.to_string(), record));
        }
    }
    out.sort_by(|a, b| (&a.1.key, a.1.created).cmp(&(&b.1.key, b.1.created)));
    Ok(out)
}

/// Remove the uploads of bucket `bucket` abandoned for [`ABANDONED_SECS`] (blocking).
fn sweep(root: &Dir, bucket: &str) -> S3Result<()> {
    let now = qsfs_web::unix_now();
    for (id, record) in scan(root, bucket)? {
        if now.saturating_sub(record.created) > ABANDONED_SECS {
            tracing::info!(bucket, key = %record.key, "an abandoned S3 upload swept away");
            files(root, bucket, &id)?.remove(root, &record);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_uploads_are_swept_and_fresh_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("b")).unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let record = |created| Record {
            key: "k".into(),
            created,
            given: Given::default(),
            part_size: None,
            parts: BTreeMap::new(),
        };
        for (id, created) in [("0a", 1), ("0b", qsfs_web::unix_now())] {
            let f = files(&root, "b", id).unwrap();
            root.write(f.data().as_path(), b"part bytes").unwrap();
            f.store(&root, &record(created)).unwrap();
        }
        sweep(&root, "b").unwrap();
        let left: Vec<String> = scan(&root, "b")
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, ["0b"]);
        let names: Vec<String> = std::fs::read_dir(tmp.path().join("b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("-0a")), "{names:?}");
    }
}
