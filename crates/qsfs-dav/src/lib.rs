//! # qsfs-dav: the web drive over WebDAV
//!
//! File managers (Windows Explorer, macOS Finder, GNOME Files, KDE Dolphin), phone apps,
//! davfs2 and rclone reach the drive at `/dav/` on the web listener, as the same accounts
//! see it in the page: an admin the whole drive, anyone else their home folder; a shared
//! folder `NAME` at `/dav-shared/NAME/` for its members (read-only members may only read).
//! WebDAV class 1 and 2 (locks, kept in memory per folder tree), PROPFIND of depth 0 and 1
//! (infinity refused, as RFC 4918 allows), ranges, dead properties, RFC 4331 quotas; a
//! DELETE puts what it deletes in the owner's trash, as the web page does. The
//! protocol is the `dav-server` crate's; what it works on is [`fs::DriveFs`].
//!
//! Owns: the `/dav/` routes, Basic sign-in ([`auth`]), the filesystem dav-server sees
//! ([`fs`], bodies in [`file`], properties in [`props`]). Must not touch: anything past the
//! caller's folder (every path goes through its `cap_std` folder), accounts' files
//! (`qsfs_web` keeps them).

#![forbid(unsafe_code)]

pub mod auth;
pub mod file;
pub mod fs;
pub mod props;
mod trash;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use dav_server::memls::MemLs;
use dav_server::DavHandler;
use qsfs_web::auth::{Caller, ClientAddr};
use qsfs_web::WebState;

use crate::fs::{Access, DriveFs};

/// Where the caller's own folder is served.
pub const PREFIX: &str = "/dav";
/// Where shared folder `NAME` is served: `/dav-shared/NAME/`.
pub const SHARED_PREFIX: &str = "/dav-shared";
/// Where read share link `ID`'s folder is served: `/s/ID/dav/`, beside its page.
const LINK_ROUTE: &str = "/s/{id}/dav";
/// Bytes read from a file per step of a GET.
const READ_BUF: usize = 256 * 1024;
/// Most folder trees with their own handler (and locks) kept at once.
const MAX_HANDLERS: usize = 1024;

/// What the routes share.
pub struct Dav {
    st: Arc<WebState>,
    fs: DriveFs,
    checks: auth::Checks,
    /// One handler per folder tree (an account's home, the whole drive, a shared folder),
    /// each with its own locks: the same path in two homes is two files.
    handlers: Mutex<HashMap<String, (Tree, Instant)>>,
}

/// A folder tree's handler and its locks.
#[derive(Clone)]
struct Tree {
    handler: DavHandler<Access>,
    locks: Box<MemLs>,
}

impl Dav {
    fn tree(&self, tree: &str, prefix: &str) -> Tree {
        let mut map = self.handlers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, used)) = map.get_mut(tree) {
            *used = Instant::now();
            return t.clone();
        }
        qsfs_web::bounded::make_room(&mut map, MAX_HANDLERS, |(_, used)| *used);
        let locks = MemLs::new();
        let handler = DavHandler::builder()
            .strip_prefix(prefix)
            .filesystem(Box::new(self.fs.clone()))
            .locksystem(locks.clone())
            .read_buf_size(READ_BUF)
            .build_handler();
        let t = Tree { handler, locks };
        map.insert(tree.to_string(), (t.clone(), Instant::now()));
        t
    }
}

/// The WebDAV routes, to merge into the web drive's router.
pub fn routes(st: Arc<WebState>) -> Router {
    let dav = Arc::new(Dav {
        fs: DriveFs {
            st: Arc::clone(&st),
        },
        st,
        checks: auth::Checks::default(),
        handlers: Mutex::default(),
    });
    let own = format!("{PREFIX}/");
    let shared = format!("{SHARED_PREFIX}/");
    let traffic = Arc::clone(&dav.st.traffic);
    let routes = Router::new()
        .route(PREFIX, any(serve))
        .route(&own, any(serve))
        .route(&format!("{own}{{*path}}"), any(serve))
        .route(&format!("{shared}{{*path}}"), any(serve))
        .route(LINK_ROUTE, any(serve_link))
        .route(&format!("{LINK_ROUTE}/"), any(serve_link))
        .route(&format!("{LINK_ROUTE}/{{*path}}"), any(serve_link))
        // Bodies stream to files whatever their size.
        .layer(DefaultBodyLimit::disable())
        .with_state(dav);
    qsfs_web::traffic::counted(routes, &traffic, qsfs_web::traffic::Protocol::WebDav)
}

/// Methods that change nothing.
fn reads_only(m: &Method) -> bool {
    matches!(m.as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND")
}

/// The folder tree a request path is in: `(the prefix dav-server strips, shared folder)`.
fn tree_of(path: &str) -> (String, Option<String>) {
    match path
        .strip_prefix(SHARED_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(rest) => {
            let name = rest.split('/').next().unwrap_or_default().to_string();
            (format!("{SHARED_PREFIX}/{name}"), Some(name))
        }
        None => (PREFIX.to_string(), None),
    }
}

/// A read share link's folder, read-only: `/s/ID/dav/...`. Links that count their uses
/// are left to their page (a mount makes hundreds of requests).
async fn serve_link(
    State(dav): State<Arc<Dav>>,
    ClientAddr(address): ClientAddr,
    req: Request,
) -> Response {
    use qsfs_web::shares::ShareKind;
    let path = req.uri().path();
    let id = path
        .strip_prefix("/s/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_string();
    let refuse = |status, why: &str| (status, format!("{why}\n")).into_response();
    let share = match qsfs_web::share_api::open_link(&dav.st, &id) {
        Ok(s) => s,
        Err(e) => return refuse(e.status, &e.message),
    };
    if share.kind != ShareKind::Read || !share.dir {
        return refuse(StatusCode::NOT_FOUND, "WebDAV serves read links to folders");
    }
    if share.max_uses.is_some() {
        return refuse(
            StatusCode::FORBIDDEN,
            "this link counts its uses: open it in a browser",
        );
    }
    if !reads_only(req.method()) {
        return refuse(StatusCode::FORBIDDEN, "a share link is read-only");
    }
    if let Err(refusal) =
        auth::link_password(&dav.st, &dav.checks, &share, req.headers(), address).await
    {
        return refusal;
    }
    let visit = match qsfs_web::share_api::enter(&dav.st, share).await {
        Ok(v) => v,
        Err(e) => return refuse(e.status, &e.message),
    };
    let prefix = format!("/s/{id}/dav");
    let tree = dav.tree(&format!("link:{id}"), &prefix);
    let access = Access {
        caller: visit.caller,
        writable: false,
    };
    tree.handler
        .handle_guarded(req, format!("link:{id}"), access)
        .await
        .map(axum::body::Body::new)
}

async fn serve(
    State(dav): State<Arc<Dav>>,
    ClientAddr(address): ClientAddr,
    req: Request,
) -> Response {
    let account = match auth::sign_in(&dav.st, &dav.checks, req.headers(), address).await {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let (prefix, space) = tree_of(req.uri().path());
    let reads = reads_only(req.method());
    // A read-only member may read (GET, PROPFIND...) and nothing else.
    let as_method = if reads {
        Method::GET
    } else {
        req.method().clone()
    };
    let principal = account.name.clone();
    let caller = match Caller::signed_in(
        &dav.st,
        account.name,
        account.admin,
        account.quota,
        space.clone(),
        &as_method,
        String::new(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return (e.status, format!("{}\n", e.message)).into_response(),
    };
    let tree = match (&space, caller.admin) {
        (Some(name), _) => format!("shared:{name}"),
        (None, true) => "drive".to_string(),
        (None, false) => format!("home:{}", caller.name),
    };
    let tree = dav.tree(&tree, &prefix);
    let access = Access {
        caller,
        writable: !reads,
    };
    if req.method() == Method::DELETE {
        let uri = req.uri().clone();
        if let Some(answer) = trash::delete(&dav.st, &tree.locks, &prefix, &uri, &access).await {
            return answer;
        }
    }
    tree.handler
        .handle_guarded(req, principal, access)
        .await
        .map(axum::body::Body::new)
}
