//! File bodies: download with HTTP ranges (seeking in video and audio works), upload and
//! save streamed to disk (never buffered whole), folders as a streamed zip.
//!
//! Durability ([`crate::landing`]): an upload or save is acknowledged after the data is fsync'ed and the
//! temporary file renamed over the target, so a reader never sees a half-written file and an
//! acknowledged one survives a crash (as zdbfs's fsync promises).
//!
//! Conflicts: every file answer carries an `ETag` (size and modification time); a save sent
//! with `If-Match` is refused with 412 if the file changed since, and one with
//! `If-None-Match: *` (or `overwrite=false`) if it exists.

use std::io::{SeekFrom, Write as _};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use cap_std::fs::{Dir, Metadata};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::files::{mtime_ms, on_root};
use super::landing::TempFile;
use super::paths::RelPath;
use super::WebState;

/// The validator of a file's current content.
pub fn etag(m: &Metadata) -> String {
    let nanos = m
        .modified()
        .ok()
        .map(|t| t.into_std())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{:x}-{:x}\"", m.len(), nanos)
}

/// A content type from the extension: what previews need, `application/octet-stream` else.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "bmp" => "image/bmp",
        "ico" => "image/x-icon",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "txt" | "md" | "markdown" | "rs" | "c" | "h" | "cpp" | "hpp" | "py" | "js" | "ts"
        | "go" | "java" | "sh" | "toml" | "yaml" | "yml" | "ini" | "cfg" | "conf" | "log"
        | "csv" | "xml" | "html" | "htm" | "css" | "sql" | "rb" | "lua" | "mk" => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// Parse a single `bytes=` range against `size`: `Ok(None)` for none, `Err` when it cannot
/// be satisfied. Several ranges are answered with the first one only.
fn parse_range(h: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None); // another unit: ignore, send everything
    };
    let first = spec.split(',').next().unwrap_or("").trim();
    let (a, b) = first.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.checked_sub(1).ok_or(())?),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().map_err(|_| ())?, e.parse().map_err(|_| ())?);
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

#[derive(Deserialize)]
pub struct FileQuery {
    pub(crate) path: String,
    /// Send as an attachment (the browser saves it) instead of inline.
    #[serde(default, deserialize_with = "flag")]
    pub(crate) download: bool,
}

/// Only regular files are served: a folder is 400 (it has /api/zip), anything else (FIFO,
/// socket, device) 415.
fn regular_file(shown: &str, m: &Metadata) -> ApiResult<()> {
    if m.is_file() {
        Ok(())
    } else if m.is_dir() {
        Err(ApiError::bad_request(format!(
            "{shown}: is a folder (download it with /api/zip)"
        )))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{shown}: not a regular file (a FIFO, socket or device is not served)"),
        ))
    }
}

/// `GET /api/file?path=&download=`: the file's bytes, with `Range`, `ETag` and
/// `If-None-Match` handled.
pub async fn download(
    Extension(me): Extension<Caller>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rel = RelPath::parse(&q.path)?;
    let shown = rel.display();
    let name = rel.name().unwrap_or_default();
    let (file, meta) = on_root(&me, move |root| {
        let shown = rel.display();
        // Asked before opening: opening a FIFO for reading waits for a writer, and a
        // device is no file to serve.
        let before = root
            .metadata(rel.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        regular_file(&shown, &before)?;
        let f = root
            .open(rel.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        let m = f.metadata().map_err(|e| ApiError::io(&shown, e))?;
        regular_file(&shown, &m)?;
        Ok((f, m))
    })
    .await?;
    let tag = etag(&meta);
    let size = meta.len();
    let mut out = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff");
    let ctype = content_type(&name);
    if q.download {
        let encoded: String = name
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        out = out
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename*=UTF-8''{encoded}"),
            );
    } else {
        // Inline content never runs as this origin: a stored HTML or SVG file must not
        // reach the API with the viewer's session (PDFs keep the browser's viewer).
        out = out.header(header::CONTENT_TYPE, ctype);
        if ctype != "application/pdf" {
            out = out.header(header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'");
        }
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        return out
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(internal);
    }
    let (start, end, status) = match parse_range(headers.get(header::RANGE), size) {
        Ok(None) => (0, size.saturating_sub(1), StatusCode::OK),
        Ok(Some((s, e))) => {
            out = out.header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{size}"));
            (s, e, StatusCode::PARTIAL_CONTENT)
        }
        Err(()) => {
            return out
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .map_err(internal);
        }
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let mut file = tokio::fs::File::from_std(file.into_std());
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::io(&shown, e))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    out.status(status)
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .map_err(internal)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

#[derive(Deserialize)]
pub struct UploadQuery {
    pub(crate) path: String,
    /// Replace an existing file (default true; false answers 409 when it exists).
    #[serde(default = "yes", deserialize_with = "flag")]
    pub(crate) overwrite: bool,
    /// Create missing parent folders (uploads of whole folders).
    #[serde(default, deserialize_with = "flag")]
    pub(crate) parents: bool,
}

fn yes() -> bool {
    true
}

/// A query flag: `1`/`true`/`yes` or `0`/`false`/`no`.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        other => Err(serde::de::Error::custom(format!("not a flag: {other:?}"))),
    }
}

/// What a precondition header asks about the current target.
fn check_preconditions(
    headers: &HeaderMap,
    current: Option<&Metadata>,
    overwrite: bool,
    shown: &str,
) -> ApiResult<()> {
    let conflict =
        |why: &str| ApiError::new(StatusCode::PRECONDITION_FAILED, format!("{shown}: {why}"));
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        match current {
            Some(m) if want.trim() == "*" || want.trim() == etag(m) => {}
            Some(_) => {
                return Err(conflict(
                    "changed since you opened it; reload to see the new version",
                ))
            }
            None => return Err(conflict("deleted since you opened it")),
        }
    }
    let exists_refused = !overwrite || headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*");
    if exists_refused && current.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{shown}: already exists"),
        ));
    }
    if current.is_some_and(Metadata::is_dir) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{shown}: is a folder"),
        ));
    }
    Ok(())
}

/// `PUT /api/file?path=&overwrite=&parents=`: the body becomes the file, streamed into a
/// temporary file beside it, fsync'ed, then renamed over the target. Refused with 507 when
/// it would take the caller past its quota (see [`crate::quota`]).
pub async fn upload(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let rel = RelPath::parse(&q.path)?;
    if rel.is_root() {
        return Err(ApiError::bad_request("a file needs a name"));
    }
    let shown = rel.display();
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (r, h, st2, who, root_dir) = (
        rel.clone(),
        headers.clone(),
        Arc::clone(&st),
        me.clone(),
        Arc::clone(&me.root),
    );
    let (temp, replaced, room) = on_root(&me, move |root| {
        let parent = r.parent();
        match root.metadata(parent.as_path()) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ApiError::bad_request(format!(
                    "{}: not a folder",
                    parent.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && q.parents => root
                .create_dir_all(parent.as_path())
                .map_err(|e| ApiError::io(&parent.display(), e))?,
            Err(e) => return Err(ApiError::io(&parent.display(), e)),
        }
        let current = root.metadata(r.as_path()).ok();
        check_preconditions(&h, current.as_ref(), q.overwrite, &r.display())?;
        // A file replaced gives its bytes back to the quota.
        let replaced = current
            .as_ref()
            .filter(|m| m.is_file())
            .map_or(0, Metadata::len);
        let room = Room::of(&st2, &who, replaced).map_err(|e| ApiError::io("/", e))?;
        if let Some(room) = room {
            if let Some(n) = announced.filter(|&n| n > room.allowed()) {
                return Err(room.exceeded(&who.name, n));
            }
        }
        let temp =
            TempFile::create(&root_dir, &parent).map_err(|e| ApiError::io(&r.display(), e))?;
        Ok((temp, replaced, room))
    })
    .await?;
    let writer = temp
        .file()
        .try_clone()
        .map_err(|e| ApiError::io(&shown, e))?;
    let mut file = tokio::fs::File::from_std(writer);
    let mut over_quota = None;
    let written = async {
        let mut stream = body.into_data_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
            n += chunk.len() as u64;
            if let Some(room) = room.filter(|r| n > r.allowed()) {
                over_quota = Some(room.exceeded(&me.name, n));
                return Err(ApiError::bad_request("over quota"));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::io(&shown, e))?;
        }
        file.flush().await.map_err(|e| ApiError::io(&shown, e))?;
        Ok::<u64, ApiError>(n)
    }
    .await;
    drop(file);
    let r = rel.clone();
    let over_quota_refused = over_quota.is_some();
    let done = on_root(&me, move |root| {
        let ready = over_quota.map_or(written, Err).and_then(|size| {
            // The target may have changed while the body came in.
            let current = root.metadata(r.as_path()).ok();
            check_preconditions(&headers, current.as_ref(), q.overwrite, &r.display())?;
            Ok(size)
        });
        let size = match ready {
            Ok(size) => size,
            Err(e) => {
                // Gone before the refusal is answered: a retry finds its room.
                temp.discard();
                return Err(e);
            }
        };
        temp.land(&r).map_err(|e| ApiError::io(&r.display(), e))?;
        let m = root
            .metadata(r.as_path())
            .map_err(|e| ApiError::io(&r.display(), e))?;
        let answer = serde_json::json!({
            "path": r.to_api(), "size": size, "etag": etag(&m), "mtime": mtime_ms(&m)
        });
        Ok((answer, size))
    })
    .await;
    // A refusal over quota says the quota; a full disk, the room left on it.
    let done = if over_quota_refused {
        done
    } else {
        done.map_err(|e| with_room_left(&me, e))
    };
    let (answer, size) = done?;
    if me.space.is_none() {
        st.usage.moved(&me.name, size, replaced);
    }
    Ok(Json(answer))
}

/// What a write (an upload, a WebDAV or S3 PUT) may take of its caller's quota.
#[derive(Clone, Copy, Debug)]
pub struct Room {
    pub used: u64,
    pub quota: u64,
    /// Bytes of the file the write replaces (given back when it lands).
    pub replaced: u64,
}

impl Room {
    /// The room of caller `me` for a write that replaces `replaced` bytes (`None`: no
    /// quota). Blocking: may count the caller's folder.
    pub fn of(st: &WebState, me: &Caller, replaced: u64) -> std::io::Result<Option<Room>> {
        let Some(quota) = me.quota else {
            return Ok(None);
        };
        let used = st.usage.used(&me.name, &me.home)?;
        Ok(Some(Room {
            used,
            quota,
            replaced,
        }))
    }

    /// Bytes the write may take.
    pub fn allowed(self) -> u64 {
        self.quota
            .saturating_sub(self.used)
            .saturating_add(self.replaced)
    }

    /// The 507 for a write of `needed` bytes.
    pub fn exceeded(self, name: &str, needed: u64) -> ApiError {
        crate::quota::exceeded(
            name,
            self.used,
            self.quota,
            needed.saturating_sub(self.replaced),
        )
    }
}

/// A 507 says how much room the drive has left (once the partial upload is gone).
fn with_room_left(me: &Caller, e: ApiError) -> ApiError {
    if e.status != StatusCode::INSUFFICIENT_STORAGE {
        return e;
    }
    match service_kit::sys::space_of(&*me.root) {
        Ok(s) => ApiError::new(
            e.status,
            format!(
                "{}; the drive has {:.1} MiB free of {:.1} MiB",
                e.message,
                s.available as f64 / f64::from(1 << 20),
                s.total as f64 / f64::from(1 << 20)
            ),
        ),
        Err(_) => e,
    }
}

#[derive(Deserialize)]
pub struct ZipQuery {
    #[serde(default)]
    pub(crate) path: String,
    /// Only these entries of the folder (a JSON array of names), for a download of a
    /// selection.
    #[serde(default)]
    pub(crate) names: Option<String>,
}

/// `GET /api/zip?path=&names=`: the folder and everything under it (or only the entries
/// `names`, a JSON array) as a zip, streamed as it is read (files stored, not compressed:
/// most large files are already; zip64 when needed). Symbolic links, FIFOs, sockets and
/// devices are left out, and named in a last entry, `qsfs-left-out.txt`.
pub async fn zip(
    Extension(me): Extension<Caller>,
    Query(q): Query<ZipQuery>,
) -> ApiResult<Response> {
    let rel = RelPath::parse(&q.path)?;
    let only: Option<Vec<String>> = match &q.names {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|_| ApiError::bad_request("names is a JSON array of names"))?,
        ),
        None => None,
    };
    for n in only.iter().flatten() {
        if n.contains('/') || RelPath::parse(n)?.is_root() {
            return Err(ApiError::bad_request(format!(
                "{n:?}: not a name in the folder"
            )));
        }
    }
    let name = rel.name().unwrap_or_else(|| "qsfs".into());
    let root = Arc::clone(&me.root);
    let check = rel.clone();
    on_root(&me, move |root| {
        let m = root
            .metadata(check.as_path())
            .map_err(|e| ApiError::io(&check.display(), e))?;
        if !m.is_dir() {
            return Err(ApiError::bad_request(format!(
                "{}: not a folder",
                check.display()
            )));
        }
        Ok(())
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    std::thread::Builder::new()
        .name("qsfs-zip".into())
        .spawn(move || {
            let sink = ChannelWriter { tx: tx.clone() };
            if let Err(e) = write_zip(&root, &rel, only.as_deref(), sink) {
                tracing::warn!(error = %e, "zip stream ended early");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        })
        .map_err(internal)?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}.zip\"",
                name.replace(['"', '\\', '\r', '\n'], "_")
            ),
        )
        .body(Body::from_stream(stream))
        .map_err(internal)
}

/// Hands written bytes to the response stream (blocking when the client reads slowly).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_zip(
    root: &Dir,
    top: &RelPath,
    only: Option<&[String]>,
    sink: ChannelWriter,
) -> zip::result::ZipResult<()> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new_stream(std::io::BufWriter::with_capacity(256 * 1024, sink));
    let mut left_out = Vec::new();
    let mut todo = vec![(top.clone(), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        for e in root.read_dir(dir.as_path())?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if prefix.is_empty() && only.is_some_and(|o| !o.contains(&name)) {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            let inner = format!("{prefix}{name}");
            let child = dir
                .join(&name)
                .map_err(|e| zip::result::ZipError::InvalidArchive(e.message.into()))?;
            if m.is_dir() {
                zip.add_directory(format!("{inner}/"), SimpleFileOptions::default())?;
                todo.push((child, format!("{inner}/")));
            } else if m.is_file() {
                let opts = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored)
                    .large_file(m.len() >= u64::from(u32::MAX));
                zip.start_file(inner, opts)?;
                let mut f = root.open(child.as_path())?;
                std::io::copy(&mut f, &mut zip)?;
            } else {
                let what = if m.is_symlink() {
                    "symbolic link"
                } else {
                    "not a regular file"
                };
                left_out.push(format!("{inner}\t{what}"));
            }
        }
    }
    if !left_out.is_empty() {
        zip.start_file(LEFT_OUT, SimpleFileOptions::default())?;
        writeln!(
            zip,
            "Left out of this zip (links and special files are not copied):"
        )?;
        for line in left_out {
            writeln!(zip, "{line}")?;
        }
    }
    zip.finish()?;
    Ok(())
}

/// The last entry of a zip that left something out, saying what.
pub const LEFT_OUT: &str = "qsfs-left-out.txt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &str| Some(HeaderValue::from_str(s).unwrap());
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(h("bytes=0-3").as_ref(), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(h("bytes=5-").as_ref(), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(h("bytes=-4").as_ref(), 10), Ok(Some((6, 9))));
        assert_eq!(parse_range(h("bytes=8-100").as_ref(), 10), Ok(Some((8, 9))));
        assert_eq!(
            parse_range(h("bytes=0-1,4-5").as_ref(), 10),
            Ok(Some((0, 1)))
        );
        assert_eq!(parse_range(h("bytes=10-").as_ref(), 10), Err(()));
        assert_eq!(parse_range(h("bytes=5-2").as_ref(), 10), Err(()));
        assert_eq!(parse_range(h("bytes=x-2").as_ref(), 10), Err(()));
        assert_eq!(parse_range(h("bytes=0-").as_ref(), 0), Err(()));
        assert_eq!(parse_range(h("items=0-1").as_ref(), 10), Ok(None));
    }
}
