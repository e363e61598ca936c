//! Copies: `POST /api/copy {"from","to"}` copies a file, or a folder with everything in it,
//! to `to` (409 if something is there; a folder is never copied into itself). The copy is
//! built under a hidden temporary name beside the target (as uploads are, so listings do
//! not show it), every file fsync'ed, then renamed into place: it appears whole or not at
//! all, and is durable when acknowledged. Symbolic links are copied as links (their text),
//! FIFOs, sockets and devices are left out and named in the answer. A copy that would take
//! the caller past its quota is refused with 507 before a byte is copied.
//!
//! Owns: the copy walk. Must not touch: anything outside the caller's folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use cap_std::fs::{Dir, OpenOptions};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::on_root;
use crate::paths::RelPath;
use crate::WebState;

#[derive(Deserialize)]
pub struct CopyBody {
    from: String,
    to: String,
}

/// What a copy walk did.
#[derive(Default)]
struct Copied {
    bytes: u64,
    left_out: Vec<String>,
}

/// Bytes of the regular files at `path` (a file, or a folder every level down).
fn bytes_at(root: &Dir, path: &Path) -> std::io::Result<u64> {
    let m = root.symlink_metadata(path)?;
    if m.is_dir() {
        crate::quota::bytes_under(&root.open_dir(path)?)
    } else if m.is_file() {
        Ok(m.len())
    } else {
        Ok(0)
    }
}

/// Copy file `from` to `to` (which must not exist), fsync'ed; its length.
pub fn copy_file(root: &Dir, from: &Path, to: &Path) -> std::io::Result<u64> {
    let mut src = root.open(from)?;
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    let mut dst = root.open_with(to, &o)?;
    let n = std::io::copy(&mut src, &mut dst)?;
    dst.sync_all()?;
    Ok(n)
}

/// Copy `from` to `to` (which must not exist), every level down; `shown` names `from` in
/// what is left out.
fn copy_tree(
    root: &Dir,
    from: &Path,
    to: &Path,
    shown: &str,
    out: &mut Copied,
) -> std::io::Result<()> {
    let m = root.symlink_metadata(from)?;
    if m.is_file() {
        out.bytes += copy_file(root, from, to)?;
    } else if m.is_symlink() {
        root.symlink_contents(root.read_link_contents(from)?, to)?;
    } else if m.is_dir() {
        root.create_dir(to)?;
        let mut names: Vec<_> = root
            .read_dir(from)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let child = format!("{shown}/{}", name.to_string_lossy());
            copy_tree(root, &from.join(&name), &to.join(&name), &child, out)?;
        }
    } else {
        out.left_out.push(shown.to_string());
    }
    Ok(())
}

/// `POST /api/copy {"from","to"}` → `{"path","bytes","left_out"}`.
pub async fn copy(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<CopyBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let (from, to) = (RelPath::parse(&b.from)?, RelPath::parse(&b.to)?);
    if from.is_root() || to.is_root() {
        return Err(ApiError::bad_request(
            "the root cannot be copied or replaced",
        ));
    }
    if to.as_path().starts_with(from.as_path()) {
        return Err(ApiError::bad_request(format!(
            "{} cannot be copied into itself",
            from.display()
        )));
    }
    let (st2, who) = (Arc::clone(&st), me.clone());
    let copied = on_root(&me, move |root| {
        let (shown_from, shown_to) = (from.display(), to.display());
        let needed = bytes_at(root, from.as_path()).map_err(|e| ApiError::io(&shown_from, e))?;
        if root.symlink_metadata(to.as_path()).is_ok() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{shown_to}: already exists"),
            ));
        }
        if let Some(quota) = who.quota {
            let used = st2
                .usage
                .used(&who.name, &who.home)
                .map_err(|e| ApiError::io("/", e))?;
            if used.saturating_add(needed) > quota {
                return Err(crate::quota::exceeded(&who.name, used, quota, needed));
            }
        }
        let tmp: PathBuf = to.parent().as_path().join(crate::landing::temp_name());
        let mut out = Copied::default();
        let done = copy_tree(root, from.as_path(), &tmp, &shown_from, &mut out).and_then(|()| {
            if root.symlink_metadata(to.as_path()).is_ok() {
                return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
            }
            root.rename(&tmp, root, to.as_path())
        });
        if let Err(e) = done {
            let _ = match root.symlink_metadata(&tmp) {
                Ok(m) if m.is_dir() => root.remove_dir_all(&tmp),
                _ => root.remove_file(&tmp),
            };
            return Err(ApiError::io(&shown_to, e));
        }
        Ok((shown_to, out))
    })
    .await?;
    let (path, out) = copied;
    if me.space.is_none() {
        st.usage.moved(&me.name, out.bytes, 0);
    }
    Ok(Json(
        serde_json::json!({ "path": path, "bytes": out.bytes, "left_out": out.left_out }),
    ))
}
