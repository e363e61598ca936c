//! Folder operations of the API: list (sorted, paginated), search by name, create folder,
//! rename/move, delete, and the Markdown preview. Every path goes through [`RelPath`] and
//! the root `Dir` (see `paths`).

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::Json;
use cap_std::fs::{Dir, Metadata};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::bounded::OneOrAll;
use super::error::{ApiError, ApiResult};
use super::paths::RelPath;
use super::WebState;

/// Entries per page unless the client asks otherwise, and the most it may ask for.
const PAGE: usize = 200;
const MAX_PAGE: usize = 5000;
/// A search stops after this many matches, or this many entries looked at.
const MAX_MATCHES: usize = 500;
const MAX_VISITED: usize = 200_000;

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct Entry {
    pub name: String,
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    pub size: u64,
    /// Modification time, milliseconds since the epoch.
    pub mtime: i64,
}

pub fn kind_of(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "dir"
    } else if t.is_file() {
        "file"
    } else if t.is_symlink() {
        "symlink"
    } else {
        "other"
    }
}

pub fn mtime_ms(m: &Metadata) -> i64 {
    m.modified()
        .ok()
        .map(|t| t.into_std())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An entry as listed: `name` for people (U+FFFD for bytes that are not UTF-8), `path` for
/// the API (see [`crate::paths`]).
fn entry(parent: &RelPath, name: &std::ffi::OsStr, m: &Metadata) -> Result<Entry, ApiError> {
    Ok(Entry {
        path: parent.join_os(name)?.to_api(),
        name: name.to_string_lossy().into_owned(),
        kind: kind_of(m),
        size: if m.is_dir() { 0 } else { m.len() },
        mtime: mtime_ms(m),
    })
}

/// Entries of folder `dir` that listings and searches leave out: uploads in progress, and
/// the drive's own folder at the top.
pub fn hidden(dir: &RelPath, name: &str) -> bool {
    crate::landing::is_temporary(name) || dir.is_root() && name == crate::users::SYSTEM_DIR
}

/// Run a blocking filesystem operation on the caller's folder (see [`Caller`]).
pub async fn on_root<T: Send + 'static>(
    me: &Caller,
    f: impl FnOnce(&Dir) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let root = Arc::clone(&me.root);
    tokio::task::spawn_blocking(move || f(&root))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    /// `name` (default), `size` or `mtime`.
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
}

#[derive(Serialize)]
pub struct Crumb {
    name: String,
    path: String,
}

#[derive(Serialize)]
pub struct Listing {
    path: String,
    /// The folders from the root down to this one: `[{"name","path"}]`.
    crumbs: Vec<Crumb>,
    total: usize,
    offset: usize,
    entries: Vec<Entry>,
}

/// `GET /api/list?path=&offset=&limit=&sort=&order=`: folders first, then by the key.
pub async fn list(
    Extension(me): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Listing>> {
    let rel = RelPath::parse(&q.path)?;
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let desc = q.order.as_deref() == Some("desc");
    let sort = q.sort.unwrap_or_else(|| "name".into());
    if !matches!(sort.as_str(), "name" | "size" | "mtime") {
        return Err(ApiError::bad_request("sort must be name, size or mtime"));
    }
    on_root(&me, move |root| {
        let shown = rel.display();
        let dir = root
            .read_dir(rel.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        let mut all = Vec::new();
        for e in dir {
            let e = e.map_err(|e| ApiError::io(&shown, e))?;
            let name = e.file_name();
            if hidden(&rel, &name.to_string_lossy()) {
                continue;
            }
            match e.metadata() {
                Ok(m) => all.push(entry(&rel, &name, &m)?),
                // Deleted meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ApiError::io(&shown, e)),
            }
        }
        all.sort_by(|a, b| {
            let by_key = match sort.as_str() {
                "size" => a.size.cmp(&b.size),
                "mtime" => a.mtime.cmp(&b.mtime),
                _ => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            }
            .then_with(|| a.name.cmp(&b.name));
            let by_key = if desc { by_key.reverse() } else { by_key };
            (b.kind == "dir").cmp(&(a.kind == "dir")).then(by_key)
        });
        let total = all.len();
        let entries = all.into_iter().skip(q.offset).take(limit).collect();
        let crumbs = rel
            .ancestors()
            .into_iter()
            .map(|(name, path)| Crumb { name, path })
            .collect();
        Ok(Json(Listing {
            path: rel.to_api(),
            crumbs,
            total,
            offset: q.offset,
            entries,
        }))
    })
    .await
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    path: String,
    q: String,
}

#[derive(Serialize)]
pub struct SearchResult {
    results: Vec<Entry>,
    /// Whether the search stopped at a limit.
    truncated: bool,
}

/// `GET /api/search?path=&q=`: names containing `q` (case-insensitive) under `path`,
/// breadth first; symbolic links are listed, not followed.
pub async fn search(
    Extension(me): Extension<Caller>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResult>> {
    let rel = RelPath::parse(&q.path)?;
    let needle = q.q.trim().to_lowercase();
    if needle.is_empty() {
        return Err(ApiError::bad_request("empty search"));
    }
    on_root(&me, move |root| {
        let mut results = Vec::new();
        let mut queue = std::collections::VecDeque::from([rel]);
        let mut visited = 0usize;
        while let Some(dir) = queue.pop_front() {
            let Ok(entries) = root.read_dir(dir.as_path()) else {
                continue; // gone or unreadable meanwhile: skip, the search goes on
            };
            for e in entries.flatten() {
                visited += 1;
                if visited > MAX_VISITED || results.len() >= MAX_MATCHES {
                    return Ok(Json(SearchResult {
                        results,
                        truncated: true,
                    }));
                }
                let raw = e.file_name();
                let name = raw.to_string_lossy();
                if hidden(&dir, &name) {
                    continue;
                }
                let Ok(m) = e.metadata() else { continue };
                let child = dir.join_os(&raw)?;
                if name.to_lowercase().contains(&needle) {
                    results.push(entry(&dir, &raw, &m)?);
                }
                if m.is_dir() {
                    queue.push_back(child);
                }
            }
        }
        Ok(Json(SearchResult {
            results,
            truncated: false,
        }))
    })
    .await
}

#[derive(Deserialize)]
pub struct PathBody {
    path: String,
}

/// `POST /api/mkdir {"path"}`: one new folder (its parent must exist).
pub async fn mkdir(
    Extension(me): Extension<Caller>,
    Json(b): Json<PathBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let rel = RelPath::parse(&b.path)?;
    if rel.is_root() {
        return Err(ApiError::bad_request("the root already exists"));
    }
    on_root(&me, move |root| {
        root.create_dir(rel.as_path())
            .map_err(|e| ApiError::io(&rel.display(), e))?;
        Ok(Json(serde_json::json!({ "path": rel.to_api() })))
    })
    .await
}

#[derive(Deserialize)]
pub struct RenameBody {
    from: String,
    /// The new path, or absent with `to_name`.
    #[serde(default)]
    to: Option<String>,
    /// A new name in the same folder (what renames a file whose path is not UTF-8 text).
    #[serde(default)]
    to_name: Option<String>,
    #[serde(default)]
    overwrite: bool,
}

/// `POST /api/rename {"from","to","overwrite"}`: rename or move a file or folder; an
/// existing target is refused unless `overwrite` (a non-empty folder is never replaced).
pub async fn rename(
    Extension(me): Extension<Caller>,
    Json(b): Json<RenameBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let from = RelPath::parse(&b.from)?;
    let to = match (&b.to, &b.to_name) {
        (Some(to), None) => RelPath::parse(to)?,
        (None, Some(name)) if !name.contains('/') && !name.is_empty() => {
            from.parent().join(name)?
        }
        _ => {
            return Err(ApiError::bad_request(
                "send \"to\" (a path) or \"to_name\" (a name)",
            ))
        }
    };
    if from.is_root() || to.is_root() {
        return Err(ApiError::bad_request(
            "the root cannot be renamed or replaced",
        ));
    }
    on_root(&me, move |root| {
        root.symlink_metadata(from.as_path())
            .map_err(|e| ApiError::io(&from.display(), e))?;
        if !b.overwrite && root.symlink_metadata(to.as_path()).is_ok() {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!("{}: already exists", to.display()),
            ));
        }
        root.rename(from.as_path(), root, to.as_path())
            .map_err(|e| ApiError::io(&to.display(), e))?;
        Ok(Json(serde_json::json!({ "path": to.to_api() })))
    })
    .await
}

/// `{"path"}`, and `"permanent": true` to skip the trash.
#[derive(Deserialize)]
pub struct DeleteBody {
    path: String,
    #[serde(default)]
    permanent: bool,
}

/// `POST /api/delete {"path"}`: a file, a symbolic link, or a folder with everything in it
/// goes to the caller's trash (`"permanent": true`: removed for good).
pub async fn delete(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<DeleteBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let rel = RelPath::parse(&b.path)?;
    if rel.is_root() {
        return Err(ApiError::bad_request("the root cannot be deleted"));
    }
    st.usage.forget(&me.name);
    let party = me.place();
    let st2 = Arc::clone(&st);
    on_root(&me, move |root| {
        let shown = rel.display();
        if !b.permanent {
            let item = st2.trash.put(&party, root, &rel)?;
            return Ok(Json(
                serde_json::json!({ "deleted": shown, "trash": item.id }),
            ));
        }
        let m = root
            .symlink_metadata(rel.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        let r = if m.is_dir() {
            root.remove_dir_all(rel.as_path())
        } else {
            root.remove_file(rel.as_path())
        };
        r.map_err(|e| ApiError::io(&shown, e))?;
        Ok(Json(serde_json::json!({ "deleted": shown })))
    })
    .await
}

/// `GET /api/trash` → `{"items": [{"id","path","kind","size","deleted"}], "size", "days"}`:
/// the caller's trash, newest first.
pub async fn trash_list(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
) -> ApiResult<Json<serde_json::Value>> {
    let party = me.place();
    let st2 = Arc::clone(&st);
    on_root(&me, move |_| {
        let items = st2.trash.list(&party)?;
        let size: u64 = items.iter().map(|i| i.size).sum();
        Ok(Json(
            serde_json::json!({ "items": items, "size": size, "days": st2.trash.days }),
        ))
    })
    .await
}

/// `{"id"}`, and `"to"` to restore elsewhere than where it was.
#[derive(Deserialize)]
pub struct RestoreBody {
    id: String,
    to: Option<String>,
}

/// `POST /api/trash/restore {"id","to"}`: the item back where it was, or at `to` (409 when
/// something is there).
pub async fn trash_restore(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<RestoreBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let to = b.to.as_deref().map(RelPath::parse).transpose()?;
    st.usage.forget(&me.name);
    let party = me.place();
    let st2 = Arc::clone(&st);
    on_root(&me, move |root| {
        let path = st2.trash.restore(&party, &b.id, root, to)?;
        Ok(Json(serde_json::json!({ "restored": path })))
    })
    .await
}

/// `POST /api/trash/remove {"id"}` or `{"all": true}` (empty the trash): removed for good.
pub async fn trash_remove(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<OneOrAll>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = b.which()?;
    let party = me.place();
    let st2 = Arc::clone(&st);
    on_root(&me, move |_| {
        let removed = st2.trash.remove(&party, id.as_deref())?;
        Ok(Json(serde_json::json!({ "removed": removed })))
    })
    .await
}

/// Whether a link target is harmless to follow (no `javascript:` and the like).
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        // A colon after a slash, `?` or `#` is not a scheme.
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

/// `POST /api/markdown` (the text as the body) → HTML; raw HTML in the text is shown as text,
/// never passed through, and links or images with other schemes than http(s)/mailto lose
/// their target.
pub async fn markdown(body: String) -> ApiResult<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let parser = Parser::new_ext(&body, Options::all()).map(|ev| match ev {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: "#".into(),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: "#".into(),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn markdown_renders_and_neutralises_html_and_scripts() {
        let html = markdown(
            "# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [ok](https://a.b/c)"
                .into(),
        )
        .await
        .unwrap();
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://a.b/c\""), "{html}");
        assert!(safe_url("docs/a.md#x") && safe_url("/a:b") && !safe_url(" JavaScript:x"));
    }
}
