//! Picture thumbnails for the grid view: `GET /api/thumb?path=` answers a JPEG of at most
//! [`EDGE`] pixels a side (turned as the camera said, transparency over white) of a JPEG,
//! PNG, WebP or GIF (its first frame). Made on first view, then kept in `.qsfs/thumbs/`
//! under a key of the file's identity, size and modification time, so a changed file gets
//! a new one and the old one ages out ([`Thumbs::purge`] keeps at most [`MAX_KEPT`]).
//!
//! Bounded: sources over [`MAX_SOURCE`] bytes are not read, a picture announcing more than
//! [`MAX_SIDE`] pixels a side or needing more than [`MAX_ALLOC`] bytes decoded is refused
//! before it is decoded (a decompression bomb costs a header read), and at most
//! [`PARALLEL`] thumbnails are made at once off the async runtime.
//!
//! Owns: the thumbnail cache and its limits. Must not touch: the pictures themselves.

use std::io::{BufReader, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use cap_std::fs::{Dir, MetadataExt};
use image::ImageDecoder as _;
use serde::Deserialize;
use sha2::Digest as _;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::on_root;
use crate::paths::RelPath;
use crate::WebState;

/// Longest side of a thumbnail, in pixels.
pub const EDGE: u32 = 256;
/// Largest picture file a thumbnail is made of.
pub const MAX_SOURCE: u64 = 64 << 20;
/// Most pixels a side of a picture to thumbnail.
pub const MAX_SIDE: u32 = 16_384;
/// Most memory decoding one picture may take.
pub const MAX_ALLOC: u64 = 512 << 20;
/// Thumbnails made at once.
pub const PARALLEL: usize = 2;
/// Thumbnails kept; the least recently made go first.
pub const MAX_KEPT: usize = 20_000;
const DIR: &str = ".qsfs/thumbs";
const QUALITY: u8 = 82;

/// The thumbnail cache of one served folder.
pub struct Thumbs {
    root: Arc<Dir>,
    jobs: tokio::sync::Semaphore,
}

/// The extensions thumbnails are made for.
pub fn is_picture(name: &str) -> bool {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "gif" | "webp")
}

/// Why a picture gets no thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("the picture is too large for a thumbnail: {0}")]
    TooLarge(String),
    #[error("not a picture this drive can read: {0}")]
    Unreadable(String),
    #[error("reading the picture: {0}")]
    Io(#[from] std::io::Error),
}

impl From<image::ImageError> for ThumbError {
    fn from(e: image::ImageError) -> ThumbError {
        match e {
            image::ImageError::Limits(l) => ThumbError::TooLarge(l.to_string()),
            image::ImageError::IoError(e) => ThumbError::Io(e),
            other => ThumbError::Unreadable(other.to_string()),
        }
    }
}

/// A JPEG thumbnail of the picture `source` (blocking; bounded as the module says).
pub fn make(source: std::fs::File) -> Result<Vec<u8>, ThumbError> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = image::ImageReader::new(BufReader::new(source)).with_guessed_format()?;
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut picture = image::DynamicImage::from_decoder(decoder)?;
    picture.apply_orientation(orientation);
    if picture.width() > EDGE || picture.height() > EDGE {
        picture = picture.thumbnail(EDGE, EDGE);
    }
    let small = picture.into_rgba8();
    let mut rgb = image::RgbImage::new(small.width(), small.height());
    for (to, from) in rgb.pixels_mut().zip(small.pixels()) {
        let [r, g, b, a] = from.0;
        let over_white =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        *to = image::Rgb([over_white(r), over_white(g), over_white(b)]);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&rgb)?;
    Ok(out)
}

impl Thumbs {
    pub fn new(root: Arc<Dir>) -> Thumbs {
        Thumbs {
            root,
            jobs: tokio::sync::Semaphore::new(PARALLEL),
        }
    }

    fn cached(&self, key: &str) -> Option<Vec<u8>> {
        self.root.read(format!("{DIR}/{key}.jpg")).ok()
    }

    /// Keep a thumbnail (a cache: written whole then renamed, not fsync'ed).
    fn keep(&self, key: &str, jpeg: &[u8]) -> std::io::Result<()> {
        self.root.create_dir_all(DIR)?;
        let tmp = format!("{DIR}/{key}.tmp");
        let mut opts = cap_std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        self.root.open_with(&tmp, &opts)?.write_all(jpeg)?;
        self.root
            .rename(&tmp, &self.root, format!("{DIR}/{key}.jpg"))
    }

    /// Keep at most [`MAX_KEPT`] thumbnails, dropping the oldest (blocking).
    pub fn purge(&self) {
        let Ok(entries) = self.root.read_dir(DIR) else {
            return;
        };
        let mut all: Vec<(std::time::SystemTime, std::ffi::OsString)> = entries
            .flatten()
            .filter_map(|e| {
                let when = e.metadata().ok()?.modified().ok()?.into_std();
                Some((when, e.file_name()))
            })
            .collect();
        if all.len() <= MAX_KEPT {
            return;
        }
        all.sort();
        let drop = all.len() - MAX_KEPT * 3 / 4;
        for (_, name) in all.into_iter().take(drop) {
            let _ = self.root.remove_file(std::path::Path::new(DIR).join(name));
        }
    }
}

#[derive(Deserialize)]
pub struct ThumbQuery {
    path: String,
}

/// `GET /api/thumb?path=`: the picture's thumbnail (JPEG), with an `ETag`; 415 for a file
/// that is no picture, 413 for one too large, 422 for one that cannot be read.
pub async fn thumb(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Query(q): Query<ThumbQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rel = RelPath::parse(&q.path)?;
    let name = rel.name().unwrap_or_default();
    if !is_picture(&name) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{}: thumbnails are made of JPEG, PNG, WebP and GIF pictures",
                rel.display()
            ),
        ));
    }
    let (file, key) = on_root(&me, move |root| {
        let shown = rel.display();
        let f = root
            .open(rel.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        let m = f.metadata().map_err(|e| ApiError::io(&shown, e))?;
        if !m.is_file() {
            return Err(ApiError::bad_request(format!("{shown}: not a file")));
        }
        if m.len() > MAX_SOURCE {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{shown}: no thumbnail for pictures over {} MiB",
                    MAX_SOURCE >> 20
                ),
            ));
        }
        let identity = format!(
            "{}:{}:{}:{}:{}:{EDGE}",
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec()
        );
        let key = hex::encode(&sha2::Sha256::digest(identity.as_bytes())[..16]);
        Ok((f.into_std(), key))
    })
    .await?;
    let etag = format!("\"t{key}\"");
    let reply = |status: StatusCode, body: Body| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "image/jpeg")
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, "private, no-cache")
            .body(body)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return reply(StatusCode::NOT_MODIFIED, Body::empty());
    }
    let st2 = Arc::clone(&st);
    let k = key.clone();
    if let Some(jpeg) = tokio::task::spawn_blocking(move || st2.thumbs.cached(&k))
        .await
        .ok()
        .flatten()
    {
        return reply(StatusCode::OK, Body::from(jpeg));
    }
    let _permit = st
        .thumbs
        .jobs
        .acquire()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let st2 = Arc::clone(&st);
    let made = tokio::task::spawn_blocking(move || {
        let jpeg = make(file)?;
        if let Err(e) = st2.thumbs.keep(&key, &jpeg) {
            tracing::warn!(error = %e, "keeping a thumbnail");
        }
        Ok::<_, ThumbError>(jpeg)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match made {
        Ok(jpeg) => reply(StatusCode::OK, Body::from(jpeg)),
        Err(e @ ThumbError::TooLarge(_)) => {
            Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))
        }
        Err(e @ ThumbError::Unreadable(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
        Err(ThumbError::Io(e)) => Err(ApiError::io("the picture", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(
        picture: &image::DynamicImage,
        format: image::ImageFormat,
    ) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut bytes, format).unwrap();
        f.write_all(bytes.get_ref()).unwrap();
        f
    }

    #[test]
    fn thumbnails_fit_the_edge_and_keep_the_shape() {
        let wide = image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(1000, 500, |x, _| {
            image::Rgba([(x % 256) as u8, 0, 0, if x < 500 { 255 } else { 0 }])
        }));
        for format in [
            image::ImageFormat::Png,
            image::ImageFormat::WebP,
            image::ImageFormat::Gif,
        ] {
            let f = encoded(&wide, format);
            let jpeg = make(f.reopen().unwrap()).unwrap();
            let back = image::load_from_memory(&jpeg).unwrap();
            assert_eq!(
                (back.width(), back.height()),
                (EDGE, EDGE / 2),
                "{format:?}"
            );
            let right = back.to_rgb8().get_pixel(EDGE - 2, EDGE / 4).0;
            assert!(
                right.iter().all(|&c| c > 200),
                "transparent is white: {right:?} ({format:?})"
            );
        }
        let jpeg = encoded(
            &image::DynamicImage::ImageRgb8(image::RgbImage::new(64, 32)),
            image::ImageFormat::Jpeg,
        );
        let small = image::load_from_memory(&make(jpeg.reopen().unwrap()).unwrap()).unwrap();
        assert_eq!((small.width(), small.height()), (64, 32), "never enlarged");
    }

    #[test]
    fn a_decompression_bomb_and_garbage_are_refused() {
        // A PNG header announcing 100,000 x 100,000 pixels, and nothing behind it.
        let mut bomb = tempfile::NamedTempFile::new().unwrap();
        let mut header = Vec::new();
        header.extend_from_slice(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR");
        header.extend_from_slice(&100_000u32.to_be_bytes());
        header.extend_from_slice(&100_000u32.to_be_bytes());
        header.extend_from_slice(&[8, 6, 0, 0, 0]);
        let crc = crc32fast::hash(&header[12..]);
        header.extend_from_slice(&crc.to_be_bytes());
        bomb.write_all(&header).unwrap();
        assert!(matches!(
            make(bomb.reopen().unwrap()),
            Err(ThumbError::TooLarge(_))
        ));
        let mut junk = tempfile::NamedTempFile::new().unwrap();
        junk.write_all(b"not a picture at all").unwrap();
        assert!(matches!(
            make(junk.reopen().unwrap()),
            Err(ThumbError::Unreadable(_))
        ));
    }
}
