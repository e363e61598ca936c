//! Resumable uploads over tus 1.0.0 (core, creation, termination; checksum with sha1 and
//! sha256): `POST /api/tus` with `Upload-Length` and `Upload-Metadata` (`path`, relative to
//! the caller's folder like every API path, or just `filename` for the top of it; and
//! `overwrite` "false" to refuse an existing file) answers 201 and the upload's
//! `Location`; `HEAD /api/tus/ID` tells its offset, `PATCH /api/tus/ID` (`Upload-Offset`,
//! an `application/offset+octet-stream` body) appends, `DELETE` abandons it.
//!
//! Durability: the bytes a PATCH brought are fsync'ed before it is answered, and when its
//! body is cut off too (but for a PATCH with a checksum, which keeps all of its bytes or
//! none), so the offset HEAD reports survives a dropped link, a page reload, a qsfs
//! restart or a crash. Unfinished uploads live in the drive's own folder,
//! `.qsfs/uploads/PARTY/ID.{json,part}`, never in the caller's folder; with the last byte
//! the part is fsync'ed and renamed over its target, so the file appears whole or not at
//! all. Unfinished uploads untouched for [`KEEP_DAYS`] days are removed.
//!
//! Quota: creation is refused with 507 when the announced length, beside the caller's
//! other unfinished uploads, would take it past its quota.
//!
//! Owns: the protocol and the unfinished uploads. Must not touch: accounts, sessions.

use std::collections::HashSet;
use std::io::{Seek, Write};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cap_std::fs::{Dir, OpenOptions};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::on_root;
use crate::paths::RelPath;
use crate::WebState;

const VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,termination,checksum";
const CHECKSUMS: &str = "sha1,sha256";
/// Largest upload accepted (tus's `Tus-Max-Size`).
pub const MAX_SIZE: u64 = 1 << 44;
const UPLOADS: &str = ".qsfs/uploads";
/// Unfinished uploads a party may keep.
const MAX_PENDING: usize = 100;
/// Days an unfinished upload is kept after its last change.
pub const KEEP_DAYS: u64 = 7;

/// An unfinished upload as kept beside its bytes.
#[derive(Serialize, Deserialize)]
struct Upload {
    /// The target, in its party's folder.
    path: String,
    length: u64,
    overwrite: bool,
    created: u64,
}

/// The unfinished uploads of one served folder, and which of them a PATCH is writing.
pub struct Tus {
    root: Arc<Dir>,
    busy: Mutex<HashSet<String>>,
}

/// Holds an upload for one request; let go when dropped.
struct Busy<'a> {
    tus: &'a Tus,
    key: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.tus.lock().remove(&self.key);
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("unfinished upload: {e}"),
    )
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Tus {
    pub fn new(root: Arc<Dir>) -> Tus {
        Tus {
            root,
            busy: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, party: &str, id: &str) -> ApiResult<Busy<'_>> {
        let key = format!("{party}/{id}");
        if !self.lock().insert(key.clone()) {
            return Err(ApiError::new(
                StatusCode::LOCKED,
                "another request is writing this upload",
            ));
        }
        Ok(Busy { tus: self, key })
    }

    /// The folder of `party`'s unfinished uploads (made if missing).
    fn of(&self, party: &str) -> ApiResult<Dir> {
        let path = format!("{UPLOADS}/{party}");
        self.root
            .create_dir_all(&path)
            .and_then(|()| self.root.open_dir(&path))
            .map_err(internal)
    }

    fn load(dir: &Dir, id: &str) -> ApiResult<Upload> {
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such upload (finished, abandoned or expired)",
            )
        };
        if !valid_id(id) {
            return Err(not_found());
        }
        match dir.read(format!("{id}.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(internal),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
            Err(e) => Err(internal(e)),
        }
    }

    /// Bytes still to come of `party`'s unfinished uploads, and how many there are.
    fn pending(dir: &Dir) -> ApiResult<(u64, usize)> {
        let mut bytes = 0u64;
        let mut count = 0;
        for e in dir.entries().map_err(internal)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if let Ok(u) = Tus::load(dir, id) {
                    let have = dir.metadata(format!("{id}.part")).map_or(0, |m| m.len());
                    bytes = bytes.saturating_add(u.length.saturating_sub(have));
                    count += 1;
                }
            }
        }
        Ok((bytes, count))
    }

    /// Remove unfinished uploads untouched for [`KEEP_DAYS`] days (blocking).
    pub fn purge(&self) {
        let Ok(parties) = self.root.read_dir(UPLOADS) else {
            return;
        };
        let old = std::time::Duration::from_secs(KEEP_DAYS * 86_400);
        let age = |dir: &Dir, name: &str| {
            dir.metadata(name)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.into_std().elapsed().ok())
        };
        for party in parties.flatten() {
            let Ok(dir) = party.open_dir() else { continue };
            let Ok(entries) = dir.entries() else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(".json") else {
                    continue;
                };
                let part = format!("{id}.part");
                // The part moves with every PATCH; the record only at creation.
                let last = age(&dir, &part).or_else(|| age(&dir, &name));
                if last.is_some_and(|a| a > old) {
                    let _ = dir.remove_file(&part);
                    let _ = dir.remove_file(&name);
                }
            }
        }
    }
}

/// Every answer carries the protocol's version.
fn with_version(mut r: Response) -> Response {
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(VERSION));
    r
}

fn answer(result: ApiResult<Response>) -> Response {
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Requests other than OPTIONS must speak this version (412 otherwise).
fn check_version(headers: &HeaderMap) -> ApiResult<()> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(VERSION) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("this server speaks tus {VERSION} (send Tus-Resumable: {VERSION})"),
        )),
    }
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs (a value may be absent).
fn metadata(headers: &HeaderMap) -> ApiResult<Vec<(String, String)>> {
    let Some(raw) = headers.get("upload-metadata") else {
        return Ok(Vec::new());
    };
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::bad_request("Upload-Metadata is not ASCII"))?;
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| {
                    ApiError::bad_request(format!("Upload-Metadata: {key} is not base64"))
                })?;
            let value = String::from_utf8(bytes).map_err(|_| {
                ApiError::bad_request(format!("Upload-Metadata: {key} is not UTF-8"))
            })?;
            Ok((key.to_string(), value))
        })
        .collect()
}

/// `OPTIONS /api/tus`: what this server supports.
pub async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(VERSION));
    h.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(CHECKSUMS),
    );
    h.insert("tus-max-size", HeaderValue::from(MAX_SIZE));
    with_version(r)
}

/// `POST /api/tus`: a new upload (201, `Location: /api/tus/ID`).
pub async fn create(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    answer(create_upload(st, me, headers).await)
}

async fn create_upload(st: Arc<WebState>, me: Caller, headers: HeaderMap) -> ApiResult<Response> {
    check_version(&headers)?;
    let length = header_u64(&headers, "upload-length").ok_or_else(|| {
        ApiError::bad_request("Upload-Length is needed (deferred lengths are not supported)")
    })?;
    if length > MAX_SIZE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("uploads are at most {MAX_SIZE} bytes"),
        ));
    }
    let meta = metadata(&headers)?;
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let path = get("path")
        .or_else(|| get("filename").map(|f| format!("/{f}")))
        .ok_or_else(|| ApiError::bad_request("Upload-Metadata needs path (or filename)"))?;
    let overwrite = get("overwrite").is_none_or(|v| v != "false");
    let rel = RelPath::parse(&path)?;
    if rel.is_root() {
        return Err(ApiError::bad_request("a file needs a name"));
    }
    let id = crate::sessions::random_hex(16);
    let (st2, who, party, i) = (Arc::clone(&st), me.clone(), me.place(), id.clone());
    on_root(&me, move |root| {
        let id = i;
        let shown = rel.display();
        let current = root.metadata(rel.as_path()).ok();
        if current.as_ref().is_some_and(cap_std::fs::Metadata::is_dir) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{shown}: is a folder"),
            ));
        }
        if current.is_some() && !overwrite {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{shown}: already exists"),
            ));
        }
        let dir = st2.tus.of(&party)?;
        let (pending, count) = Tus::pending(&dir)?;
        if count >= MAX_PENDING {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{count} unfinished uploads already: finish or abandon some"),
            ));
        }
        if let Some(quota) = who.quota {
            let used = st2
                .usage
                .used(&who.name, &who.home)
                .map_err(|e| ApiError::io("/", e))?;
            let replaced = current
                .filter(cap_std::fs::Metadata::is_file)
                .map_or(0, |m| m.len());
            let committed = used.saturating_add(pending);
            if committed.saturating_add(length).saturating_sub(replaced) > quota {
                return Err(crate::quota::exceeded(&who.name, committed, quota, length));
            }
        }
        let record = serde_json::to_vec(&Upload {
            path: rel.display(),
            length,
            overwrite,
            created: crate::unix_now(),
        })
        .map_err(internal)?;
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        let part = dir.open_with(format!("{id}.part"), &o).map_err(internal)?;
        part.sync_all().map_err(internal)?;
        let mut f = dir.open_with(format!("{id}.json"), &o).map_err(internal)?;
        f.write_all(&record)
            .and_then(|()| f.sync_all())
            .map_err(internal)?;
        Ok(())
    })
    .await?;
    let mut r = StatusCode::CREATED.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/tus/{id}")).map_err(internal)?,
    );
    Ok(r)
}

/// `HEAD /api/tus/ID`: `Upload-Offset` (bytes kept) and `Upload-Length`.
pub async fn head(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let party = me.place();
    let found = on_root(&me, move |_| {
        let dir = st.tus.of(&party)?;
        let u = Tus::load(&dir, &id)?;
        let have = dir.metadata(format!("{id}.part")).map_err(internal)?.len();
        Ok((have, u.length))
    })
    .await;
    answer(found.map(|(offset, length)| {
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        h.insert("upload-offset", HeaderValue::from(offset));
        h.insert("upload-length", HeaderValue::from(length));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }))
}

/// `DELETE /api/tus/ID`: the upload and its bytes go (204).
pub async fn delete(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let party = me.place();
    let done = async {
        check_version(&headers)?;
        let _busy = st.tus.hold(&party, &id)?;
        let st2 = Arc::clone(&st);
        on_root(&me, move |_| {
            let dir = st2.tus.of(&party)?;
            Tus::load(&dir, &id)?;
            dir.remove_file(format!("{id}.json")).map_err(internal)?;
            let _ = dir.remove_file(format!("{id}.part"));
            Ok(StatusCode::NO_CONTENT.into_response())
        })
        .await
    }
    .await;
    answer(done)
}

/// What an `Upload-Checksum` asks the body to hash to.
enum Checksum {
    Sha1(sha1::Sha1, Vec<u8>),
    Sha256(sha2::Sha256, Vec<u8>),
}

impl Checksum {
    fn parse(headers: &HeaderMap) -> ApiResult<Option<Checksum>> {
        let Some(v) = headers.get("upload-checksum") else {
            return Ok(None);
        };
        let bad = || {
            ApiError::bad_request(format!(
                "Upload-Checksum: one of {CHECKSUMS}, then the base64 digest"
            ))
        };
        let (alg, digest) = v
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .ok_or_else(bad)?;
        let want = base64::engine::general_purpose::STANDARD
            .decode(digest.trim())
            .map_err(|_| bad())?;
        match alg {
            "sha1" => Ok(Some(Checksum::Sha1(sha1::Sha1::new(), want))),
            "sha256" => Ok(Some(Checksum::Sha256(sha2::Sha256::new(), want))),
            _ => Err(bad()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Checksum::Sha1(h, _) => h.update(bytes),
            Checksum::Sha256(h, _) => h.update(bytes),
        }
    }

    fn matches(self) -> bool {
        match self {
            Checksum::Sha1(h, want) => h.finalize().as_slice() == want.as_slice(),
            Checksum::Sha256(h, want) => h.finalize().as_slice() == want.as_slice(),
        }
    }
}

/// `PATCH /api/tus/ID`: append the body at `Upload-Offset` (409 if that is not the offset
/// kept); 204 with the new offset. The last byte moves the file into place.
pub async fn patch(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(append(st, me, id, headers, body).await)
}

async fn append(
    st: Arc<WebState>,
    me: Caller,
    id: String,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_version(&headers)?;
    if headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v != "application/offset+octet-stream")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a PATCH body is application/offset+octet-stream",
        ));
    }
    let offset = header_u64(&headers, "upload-offset")
        .ok_or_else(|| ApiError::bad_request("Upload-Offset is needed"))?;
    let mut checksum = Checksum::parse(&headers)?;
    let party = me.place();
    let _busy = st.tus.hold(&party, &id)?;
    let (st2, p, i) = (Arc::clone(&st), party.clone(), id.clone());
    let (dir, upload, file) = on_root(&me, move |_| {
        let dir = st2.tus.of(&p)?;
        let u = Tus::load(&dir, &i)?;
        let mut o = OpenOptions::new();
        o.write(true);
        let mut f = dir.open_with(format!("{i}.part"), &o).map_err(internal)?;
        let have = f.seek(std::io::SeekFrom::End(0)).map_err(internal)?;
        if have != offset {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("the upload is at offset {have}, not {offset}"),
            ));
        }
        Ok((dir, u, f))
    })
    .await?;
    let mut file = tokio::fs::File::from_std(file.into_std());
    let room = upload.length - offset;
    let mut n = 0u64;
    let mut stream = body.into_data_stream();
    let received: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
            if n + chunk.len() as u64 > room {
                return Err(ApiError::bad_request(format!(
                    "more bytes than Upload-Length ({})",
                    upload.length
                )));
            }
            if let Some(c) = checksum.as_mut() {
                c.update(&chunk);
            }
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(|e| ApiError::io("the upload", e))?;
            n += chunk.len() as u64;
        }
        Ok(())
    }
    .await;
    let verified = checksum.map(Checksum::matches);
    // What stays: every byte written, but none of a body that came with a checksum unless
    // it arrived whole and matched.
    let keep = match verified {
        Some(true) if received.is_ok() => offset + n,
        Some(_) => offset,
        None => offset + n,
    };
    let file = file.into_std().await;
    let kept = tokio::task::spawn_blocking(move || {
        file.set_len(keep)?;
        file.sync_all()
    })
    .await
    .map_err(internal)?;
    kept.map_err(|e| ApiError::io("the upload", e))?;
    received?;
    if verified == Some(false) {
        return Err(ApiError::new(
            StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            "checksum mismatch: the piece was dropped, send it again",
        ));
    }
    if keep == upload.length {
        finish(&st, &me, dir, &id, upload).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("upload-offset", HeaderValue::from(keep));
    Ok(r)
}

/// The last byte came: the part goes over its target (whole, fsync'ed already).
async fn finish(st: &Arc<WebState>, me: &Caller, dir: Dir, id: &str, u: Upload) -> ApiResult<()> {
    let id = id.to_string();
    let rel = RelPath::parse(&u.path)?;
    let replaced = on_root(me, move |root| {
        let shown = rel.display();
        let parent = rel.parent();
        root.create_dir_all(parent.as_path())
            .map_err(|e| ApiError::io(&parent.display(), e))?;
        let current = root.metadata(rel.as_path()).ok();
        let refused = if current.as_ref().is_some_and(cap_std::fs::Metadata::is_dir) {
            Some("is a folder now")
        } else if current.is_some() && !u.overwrite {
            Some("exists now")
        } else {
            None
        };
        if let Some(why) = refused {
            let _ = dir.remove_file(format!("{id}.part"));
            let _ = dir.remove_file(format!("{id}.json"));
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{shown}: {why}; the upload is dropped"),
            ));
        }
        crate::landing::rename_durably(&dir, format!("{id}.part"), root, &rel)
            .map_err(|e| ApiError::io(&shown, e))?;
        let _ = dir.remove_file(format!("{id}.json"));
        Ok(current
            .filter(cap_std::fs::Metadata::is_file)
            .map_or(0, |m| m.len()))
    })
    .await?;
    if me.space.is_none() {
        st.usage.moved(&me.name, u.length, replaced);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode() {
        let mut h = HeaderMap::new();
        h.insert(
            "upload-metadata",
            "path L2EvYi50eHQ=, overwrite ZmFsc2U=,empty"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            metadata(&h).unwrap(),
            [
                ("path".to_string(), "/a/b.txt".to_string()),
                ("overwrite".into(), "false".into()),
                ("empty".into(), String::new())
            ]
        );
        h.insert("upload-metadata", "path !!!".parse().unwrap());
        assert!(metadata(&h).is_err());
        assert!(valid_id(&"a1".repeat(16)) && !valid_id("../../etc") && !valid_id(&"g".repeat(32)));
    }
}
