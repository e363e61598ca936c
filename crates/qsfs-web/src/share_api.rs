//! Share links over HTTP: the owner's routes under `/api/shares` (make, list, revoke), and
//! the visitor's under `/s/ID/` (the recipient page, `api/info`, `api/unlock` for a
//! password, then `api/list`, `api/file`, `api/zip` of a read link or `PUT api/file` of a
//! file drop). A visitor needs no account: each request opens the owner's folder, then the
//! link's target inside it (`cap_std`: nothing past it is reachable, symbolic links
//! included), and runs the ordinary handler as a [`Caller`] whose root is that target.
//! What a drop receives counts against the owner's quota and never replaces a file (a
//! taken name gets ` (2)`, ` (3)`, ...).
//!
//! Owns: these routes, the visitors' unlocked passwords. Must not touch: the link file's
//! format ([`crate::shares`]).

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, ClientAddr, TOKEN_ADMIN};
use crate::error::{ApiError, ApiResult};
use crate::files::{on_root, ListQuery, Listing};
use crate::paths::RelPath;
use crate::shares::{NewShare, Share, ShareKind, Shares, SharesError};
use crate::throttle::Key;
use crate::transfer::{FileQuery, UploadQuery, ZipQuery};
use crate::users::HOMES;
use crate::WebState;

/// The cookie that says a visitor gave a link's password (scoped to the link's path).
const COOKIE: &str = "qsfs_share";
/// How long a given password holds.
const UNLOCKED_FOR: Duration = Duration::from_secs(12 * 3600);
const MAX_UNLOCKED: usize = 65_536;
/// The party name of the access token's admin (see [`Caller::party`]).
const TOKEN_PARTY: &str = "@token";
/// Longest expiry a link may be given, in days.
const MAX_DAYS: f64 = 3650.0;

/// Visitors that gave a link's password: cookie value → (link id, when).
#[derive(Default)]
pub struct Unlocked {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl Unlocked {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self, id: &str) -> String {
        let value = crate::sessions::random_hex(24);
        let mut map = self.lock();
        map.retain(|_, (_, at)| at.elapsed() < UNLOCKED_FOR);
        crate::bounded::make_room(&mut map, MAX_UNLOCKED, |(_, at)| *at);
        map.insert(value.clone(), (id.to_string(), Instant::now()));
        value
    }

    fn holds(&self, headers: &HeaderMap, id: &str) -> bool {
        let map = self.lock();
        crate::auth::cookies(headers, COOKIE).any(|v| {
            map.get(v)
                .is_some_and(|(i, at)| i == id && at.elapsed() < UNLOCKED_FOR)
        })
    }
}

impl From<SharesError> for ApiError {
    fn from(e: SharesError) -> ApiError {
        let status = match e {
            SharesError::NotFound => StatusCode::NOT_FOUND,
            SharesError::Refused(_) => StatusCode::BAD_REQUEST,
            SharesError::Io(_) | SharesError::List(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Run a change of the links off the runtime (it hashes and writes).
async fn on_shares<T: Send + 'static>(
    st: &WebState,
    f: impl FnOnce(&Shares) -> Result<T, SharesError> + Send + 'static,
) -> ApiResult<T> {
    let shares = Arc::clone(&st.shares);
    tokio::task::spawn_blocking(move || f(&shares))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// A link as its owner and admins see it.
#[derive(Serialize)]
pub struct ShareView {
    id: String,
    /// The link, relative to the drive's address.
    url: String,
    owner: String,
    /// The target, as the viewer sees paths.
    path: String,
    dir: bool,
    kind: ShareKind,
    created: u64,
    expires: Option<u64>,
    password: bool,
    uses: u64,
    max_uses: Option<u64>,
    /// Why the link no longer opens, if it does not.
    closed: Option<&'static str>,
}

/// The drive path of `rel`, a path as `me` sees it.
fn drive_path(me: &Caller, rel: &RelPath) -> String {
    if me.admin {
        rel.display()
    } else if rel.is_root() {
        format!("/{HOMES}/{}", me.name)
    } else {
        format!("/{HOMES}/{}{}", me.name, rel.display())
    }
}

fn view(st: &WebState, me: &Caller, s: &Share) -> ShareView {
    let home = format!("/{HOMES}/{}", me.name);
    let path = match FsPath::new(&s.path).strip_prefix(&home) {
        Ok(rest) if !me.admin => format!("/{}", rest.display()),
        _ => s.path.clone(),
    };
    let owner_gone =
        s.owner != TOKEN_PARTY && st.users.get(&s.owner).is_none_or(|u| u.uid != s.owner_uid);
    ShareView {
        url: format!("/s/{}", s.id),
        id: s.id.clone(),
        owner: if s.owner == TOKEN_PARTY {
            TOKEN_ADMIN.into()
        } else {
            s.owner.clone()
        },
        path,
        dir: s.dir,
        kind: s.kind,
        created: s.created,
        expires: s.expires,
        password: s.has_password(),
        uses: s.uses,
        max_uses: s.max_uses,
        closed: if owner_gone {
            Some("its owner's account is gone")
        } else {
            s.closed(crate::unix_now())
        },
    }
}

/// `{"path", "kind": "read"|"drop", "expires_days", "password", "max_uses"}`.
#[derive(Deserialize)]
pub struct NewLink {
    path: String,
    #[serde(default = "read")]
    kind: ShareKind,
    expires_days: Option<f64>,
    password: Option<String>,
    max_uses: Option<u64>,
}

fn read() -> ShareKind {
    ShareKind::Read
}

/// `POST /api/shares` → the new link (`ShareView`). A file or a folder may be shared, not a
/// symbolic link (share what it points to).
pub async fn create(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<NewLink>,
) -> ApiResult<Json<ShareView>> {
    if me.space.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "links into a shared folder are made by an admin, from the drive's shared/ folder",
        ));
    }
    let rel = RelPath::parse(&b.path)?;
    let expires = match b.expires_days {
        None => None,
        Some(d) if d > 0.0 && d <= MAX_DAYS => Some(crate::unix_now() + (d * 86_400.0) as u64),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "expires_days is more than 0 and at most {MAX_DAYS}"
            )))
        }
    };
    if b.max_uses == Some(0) {
        return Err(ApiError::bad_request("max_uses is at least 1 (or absent)"));
    }
    let check = rel.clone();
    let dir = on_root(&me, move |root| {
        let shown = check.display();
        let m = root
            .symlink_metadata(check.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        if m.is_dir() || m.is_file() {
            Ok(m.is_dir())
        } else {
            Err(ApiError::bad_request(format!(
                "{shown}: only files and folders are shared (for a link, share what it points to)"
            )))
        }
    })
    .await?;
    let owner_uid = if me.party() == TOKEN_PARTY {
        0
    } else {
        st.users.get(&me.name).map_or(0, |u| u.uid)
    };
    let new = NewShare {
        owner: me.party().to_string(),
        owner_uid,
        path: drive_path(&me, &rel),
        dir,
        kind: b.kind,
        expires,
        password: b.password,
        max_uses: b.max_uses,
    };
    let share = on_shares(&st, move |shares| shares.create(new)).await?;
    Ok(Json(view(&st, &me, &share)))
}

/// `GET /api/shares` → the caller's links (an admin's: everyone's), newest first.
pub async fn list(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
) -> Json<Vec<ShareView>> {
    let owner = (!me.admin).then(|| me.party().to_string());
    Json(
        st.shares
            .list(owner.as_deref())
            .iter()
            .map(|s| view(&st, &me, s))
            .collect(),
    )
}

#[derive(Deserialize)]
pub struct LinkId {
    id: String,
}

/// `POST /api/shares/revoke {"id"}`: the link stops working at once (its owner or an admin).
pub async fn revoke(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<LinkId>,
) -> ApiResult<Json<serde_json::Value>> {
    let owner = (!me.admin).then(|| me.party().to_string());
    let id = b.id.clone();
    on_shares(&st, move |shares| shares.revoke(&b.id, owner.as_deref())).await?;
    Ok(Json(serde_json::json!({ "revoked": id })))
}

/// What one visitor request runs with.
/// A link opened for a visitor.
pub struct Visit {
    pub share: Share,
    /// Rooted at the shared folder (for a file link, the file's folder).
    pub caller: Caller,
    /// For a file link: the file's name in `caller.root` (its folder).
    pub file: Option<String>,
}

fn no_such_link() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such link: it may have been revoked",
    )
}

/// The link `id` if it still opens (404 when unknown, 410 when closed).
pub fn open_link(st: &WebState, id: &str) -> ApiResult<Share> {
    let share = st.shares.get(id).ok_or_else(no_such_link)?;
    match share.closed(crate::unix_now()) {
        Some(why) => Err(ApiError::new(StatusCode::GONE, why)),
        None => Ok(share),
    }
}

/// Open link `id` for a visitor: its owner's folder, then the target inside it.
async fn visit(st: &Arc<WebState>, id: &str, headers: &HeaderMap) -> ApiResult<Visit> {
    let share = open_link(st, id)?;
    if share.has_password() && !st.share_visits.holds(headers, id) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this link needs its password",
        ));
    }
    enter(st, share).await
}

/// Open link `share` (its password, if any, given): the visitor, rooted at what it shares
/// inside its owner's folder.
pub async fn enter(st: &Arc<WebState>, share: Share) -> ApiResult<Visit> {
    let (name, admin, quota) = if share.owner == TOKEN_PARTY {
        (TOKEN_ADMIN.to_string(), true, None)
    } else {
        let u = st
            .users
            .get(&share.owner)
            .filter(|u| u.uid == share.owner_uid)
            .ok_or_else(no_such_link)?;
        let quota = u.quota.filter(|_| !u.admin);
        (u.name, u.admin, quota)
    };
    // The target as its owner sees it: a link never reaches past the owner's folder.
    let inside = if admin {
        Some(share.path.clone())
    } else {
        FsPath::new(&share.path)
            .strip_prefix(format!("/{HOMES}/{name}"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    };
    let rel = RelPath::parse(&inside.ok_or_else(no_such_link)?)?;
    let home = crate::auth::caller_root(st, &name, admin)
        .await
        .ok_or_else(no_such_link)?;
    let (h, dir) = (Arc::clone(&home), share.dir);
    let (root, file) = tokio::task::spawn_blocking(move || -> ApiResult<(Dir, Option<String>)> {
        let gone = |e| ApiError::io("the shared item", e);
        if dir {
            return Ok((h.open_dir(rel.as_path()).map_err(gone)?, None));
        }
        let folder = h.open_dir(rel.parent().as_path()).map_err(gone)?;
        let name = rel.name().ok_or_else(no_such_link)?;
        let m = folder.symlink_metadata(&name).map_err(gone)?;
        if !m.is_file() {
            return Err(no_such_link());
        }
        Ok((folder, Some(name)))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Visit {
        share,
        caller: Caller::visitor(name, quota, Arc::new(root), home),
        file,
    })
}

fn refuse(what: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, format!("this link does not {what}"))
}

/// `GET /s/ID/api/info` → what the recipient page shows: `{"needs_password": true}` until
/// the password is given, then `{"kind","dir","name","owner","expires","uses","max_uses",
/// "has_password"}` (and `"size"` of a file link).
pub async fn info(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let v = match visit(&st, &id, &headers).await {
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            return Ok(Json(serde_json::json!({ "needs_password": true })))
        }
        v => v?,
    };
    let size = match &v.file {
        Some(name) => {
            let name = name.clone();
            on_root(&v.caller, move |root| {
                root.metadata(&name)
                    .map(|m| m.len())
                    .map_err(|e| ApiError::io(&name, e))
            })
            .await
            .ok()
        }
        None => None,
    };
    let name = FsPath::new(&v.share.path)
        .file_name()
        .map_or_else(|| "drive".into(), |n| n.to_string_lossy().into_owned());
    let owner = if v.share.owner == TOKEN_PARTY {
        "admin"
    } else {
        &v.share.owner
    };
    Ok(Json(serde_json::json!({
        "needs_password": false,
        "kind": v.share.kind,
        "dir": v.share.dir,
        "name": name,
        "owner": owner,
        "expires": v.share.expires,
        "uses": v.share.uses,
        "max_uses": v.share.max_uses,
        "has_password": v.share.has_password(),
        "size": size,
    })))
}

#[derive(Deserialize)]
pub struct Password {
    password: String,
}

/// `POST /s/ID/api/unlock {"password"}`: a cookie for this link's path, good for 12 h.
/// Wrong tries are throttled per link and per address, as sign-ins are.
pub async fn unlock(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
    ClientAddr(address): ClientAddr,
    Json(b): Json<Password>,
) -> Response {
    let share = match open_link(&st, &id) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let link = Key::Account(format!("share:{id}"));
    let mut keys = vec![link.clone()];
    keys.extend(address.map(Key::Address));
    if let Err(wait) = st.throttle.begin(&keys) {
        return crate::auth::too_many(wait);
    }
    let right = tokio::task::spawn_blocking(move || Shares::unlocks(&share, &b.password))
        .await
        .unwrap_or(false);
    if !right {
        tokio::time::sleep(crate::auth::WRONG_TRY_PAUSE).await;
        return ApiError::new(StatusCode::UNAUTHORIZED, "wrong password").into_response();
    }
    st.throttle.right(&keys, &link);
    let value = st.share_visits.open(&id);
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/s/{id}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        UNLOCKED_FOR.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Json(serde_json::json!({}))).into_response()
}

/// `GET /s/ID/api/list?path=...` of a read link to a folder (as `/api/list`).
pub async fn list_shared(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query<ListQuery>,
) -> ApiResult<Json<Listing>> {
    let v = visit(&st, &id, &headers).await?;
    if v.share.kind != ShareKind::Read || !v.share.dir {
        return Err(refuse("show a listing"));
    }
    crate::files::list(Extension(v.caller), q).await
}

/// Count a use of link `id` around `serve` when `counted`; given back if it fails.
async fn counting<T>(
    st: &Arc<WebState>,
    id: &str,
    counted: bool,
    serve: impl std::future::Future<Output = ApiResult<T>>,
    ok: impl FnOnce(&T) -> bool,
) -> ApiResult<T> {
    if counted {
        let link = id.to_string();
        on_shares(st, move |shares| shares.take_use(&link))
            .await
            .map_err(|e| match e.status {
                StatusCode::BAD_REQUEST => ApiError::new(StatusCode::GONE, e.message),
                _ => e,
            })?;
    }
    let out = serve.await;
    if counted && !out.as_ref().is_ok_and(ok) {
        let (shares, link) = (Arc::clone(&st.shares), id.to_string());
        let _ = tokio::task::spawn_blocking(move || shares.give_back(&link)).await;
    }
    out
}

/// `GET /s/ID/api/file?path=&download=` of a read link (a file link serves its one file
/// whatever the path). A whole download counts as a use; ranges (seeking in a video) and
/// revalidations do not.
pub async fn download_shared(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(mut q): Query<FileQuery>,
) -> ApiResult<Response> {
    let v = visit(&st, &id, &headers).await?;
    if v.share.kind != ShareKind::Read {
        return Err(refuse("let files be read"));
    }
    if let Some(name) = v.file {
        q.path = name;
    }
    let counted =
        !headers.contains_key(header::RANGE) && !headers.contains_key(header::IF_NONE_MATCH);
    let serve = crate::transfer::download(Extension(v.caller), Query(q), headers);
    counting(&st, &id, counted, serve, |r| r.status() == StatusCode::OK).await
}

/// `GET /s/ID/api/zip?path=` of a read link to a folder (a use).
pub async fn zip_shared(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query<ZipQuery>,
) -> ApiResult<Response> {
    let v = visit(&st, &id, &headers).await?;
    if v.share.kind != ShareKind::Read || !v.share.dir {
        return Err(refuse("make a zip"));
    }
    let serve = crate::transfer::zip(Extension(v.caller), q);
    counting(&st, &id, true, serve, |_| true).await
}

#[derive(Deserialize)]
pub struct DropQuery {
    name: String,
}

/// A name in `dir` not taken yet: `name`, else `stem (2).ext`, `stem (3).ext`, ...
fn free_name(dir: &Dir, name: &str) -> ApiResult<String> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    for n in 1..=1000 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            format!("{stem} ({n}){ext}")
        };
        match dir.symlink_metadata(&candidate) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(candidate),
            Err(e) => return Err(ApiError::io(&candidate, e)),
            Ok(_) => {}
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        format!("{name}: too many files of that name here"),
    ))
}

/// `PUT /s/ID/api/file?name=` of a file drop: the body becomes a new file in the shared
/// folder (never replacing one), streamed, fsync'ed and renamed into place as any upload;
/// counted against the owner's quota. The answer names the file as it was stored.
pub async fn upload_shared(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<DropQuery>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let v = visit(&st, &id, &headers).await?;
    if v.share.kind != ShareKind::Drop {
        return Err(refuse("take uploads"));
    }
    let rel = RelPath::parse(&q.name)?;
    let name = rel
        .name()
        .filter(|_| rel.parent().is_root())
        .ok_or_else(|| ApiError::bad_request("a file drop takes a file name (no folders)"))?;
    let path = on_root(&v.caller, move |root| free_name(root, &name)).await?;
    let mut plain = headers;
    for h in [header::IF_MATCH, header::IF_NONE_MATCH] {
        plain.remove(h);
    }
    let query = UploadQuery {
        path,
        overwrite: false,
        parents: false,
    };
    let serve = crate::transfer::upload(
        State(Arc::clone(&st)),
        Extension(v.caller),
        Query(query),
        plain,
        body,
    );
    counting(&st, &id, true, serve, |_| true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_keeps_both_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(free_name(&dir, "a.txt").unwrap(), "a.txt");
        std::fs::write(tmp.path().join("a.txt"), b"x").unwrap();
        std::fs::write(tmp.path().join("a (2).txt"), b"x").unwrap();
        assert_eq!(free_name(&dir, "a.txt").unwrap(), "a (3).txt");
        std::fs::write(tmp.path().join(".profile"), b"x").unwrap();
        assert_eq!(free_name(&dir, ".profile").unwrap(), ".profile (2)");
        std::fs::write(tmp.path().join("README"), b"x").unwrap();
        assert_eq!(free_name(&dir, "README").unwrap(), "README (2)");
    }
}
