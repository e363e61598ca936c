//! # qsfs-web: the web file browser of qsfs
//!
//! The page (hand-written HTML, CSS and JavaScript modules built into
//! the binary) and the JSON API under `/api/` it uses (documented in `docs/api/openapi.yaml`,
//! usable with curl), served on the loopback address `[qsfs] web_listen`.
//!
//! Owns: HTTP routes, accounts ([`users`], their API [`accounts`]), sign-in ([`auth`], [`throttle`]), sessions
//! ([`sessions`]), app passwords and S3 access keys ([`keyring`]), path confinement ([`paths`]), folder
//! operations ([`files`], copies [`copy`]), the trash ([`trash`]), file bodies ([`transfer`]), quotas
//! ([`quota`]), resumable uploads ([`tus`]), thumbnails ([`thumbs`]), share links ([`shares`], their routes [`share_api`]), shared folders ([`shared`],
//! [`shared_api`]), the drive's own files
//! ([`system_file`]), cross-site refusal ([`origin`]), TLS ([`tls`]). Must not touch: the filesystem other
//! than through the folder it serves (every path goes through a `cap_std::fs::Dir` of it),
//! or the storage stack: what it shows of that comes through [`StorageStatus`], so the whole
//! API runs (and is tested) over a plain folder without FUSE.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod auth;
pub mod bounded;
pub mod copy;
pub mod error;
pub mod files;
pub mod keyring;
pub mod landing;
pub mod origin;
pub mod paths;
pub mod quota;
pub mod sessions;
pub mod share_api;
pub mod shared;
pub mod shared_api;
pub mod shares;
pub mod system_file;
pub mod throttle;
pub mod thumbs;
pub mod tls;
pub mod traffic;
pub mod transfer;
pub mod trash;
pub mod tus;
pub mod users;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use service_kit::Stop;

/// What the health panel shows of the storage behind the folder (`qsfs status --json`).
pub trait StorageStatus: Send + Sync + 'static {
    fn status(&self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>>;
}

/// Seconds since the epoch (sessions, trash, share links, uploads stamp times with it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Days a deleted item stays in its owner's trash unless configured.
pub const DEFAULT_TRASH_DAYS: u64 = 30;

/// What the handlers share.
pub struct WebState {
    /// The filesystem root (the mount point), the only way handlers reach files.
    pub root: Arc<cap_std::fs::Dir>,
    /// The access token exchanged for a session of the built-in admin at login.
    pub token: String,
    /// The accounts that may sign in.
    pub users: Arc<users::Users>,
    /// Their app passwords (WebDAV and other programs that send a password each request).
    pub app_passwords: Arc<keyring::KeyRing>,
    /// Their S3 access keys.
    pub access_keys: Arc<keyring::KeyRing>,
    pub sessions: sessions::Sessions,
    /// Wrong sign-in tries, per account and address.
    pub throttle: throttle::Throttle,
    /// Bytes each account keeps, for its quota.
    pub usage: quota::Usage,
    /// Where deletes go.
    pub trash: trash::Trash,
    /// Picture thumbnails made so far.
    pub thumbs: thumbs::Thumbs,
    /// Unfinished resumable uploads.
    pub tus: tus::Tus,
    /// Folders shared among accounts.
    pub shared: shared::Shared,
    /// Share links, and the visitors that gave a link's password.
    pub shares: Arc<shares::Shares>,
    pub share_visits: share_api::Unlocked,
    /// Session cookies carry `Secure` (set when serving over TLS).
    pub secure_cookies: bool,
    /// Requests, bytes and latency per protocol, for the metrics endpoint.
    pub traffic: Arc<traffic::Traffic>,
    /// The storage behind the folder, for the health panel (absent for a plain folder).
    pub storage: Option<Arc<dyn StorageStatus>>,
}

impl WebState {
    /// Serve the folder `root` (the mount point) with access token `token`.
    pub fn open(
        root: &Path,
        token: String,
        storage: Option<Arc<dyn StorageStatus>>,
    ) -> std::io::Result<Self> {
        let dir = Arc::new(cap_std::fs::Dir::open_ambient_dir(
            root,
            cap_std::ambient_authority(),
        )?);
        let users = users::Users::open(Arc::clone(&dir)).map_err(std::io::Error::other)?;
        let shares = shares::Shares::open(Arc::clone(&dir)).map_err(std::io::Error::other)?;
        let shared = shared::Shared::open(Arc::clone(&dir)).map_err(std::io::Error::other)?;
        let ring = |kind| {
            keyring::KeyRing::open(Arc::clone(&dir), kind)
                .map(Arc::new)
                .map_err(std::io::Error::other)
        };
        let app_passwords = ring(&keyring::APP_PASSWORDS)?;
        let access_keys = ring(&keyring::ACCESS_KEYS)?;
        Ok(WebState {
            root: Arc::clone(&dir),
            token,
            users: Arc::new(users),
            app_passwords,
            access_keys,
            sessions: sessions::Sessions::default(),
            throttle: throttle::Throttle::default(),
            usage: quota::Usage::default(),
            trash: trash::Trash::new(Arc::clone(&dir), DEFAULT_TRASH_DAYS),
            tus: tus::Tus::new(Arc::clone(&dir)),
            thumbs: thumbs::Thumbs::new(Arc::clone(&dir)),
            shares: Arc::new(shares),
            shared,
            share_visits: share_api::Unlocked::default(),
            secure_cookies: false,
            traffic: Arc::default(),
            storage,
        })
    }
}

/// Every route: the page, its assets, the API.
pub fn router(state: Arc<WebState>) -> Router {
    router_with(state, Router::new())
}

/// Every route, and `extra` routes beside them (WebDAV: `qsfs-dav`), all behind the same
/// cross-site refusal.
pub fn router_with(state: Arc<WebState>, extra: Router) -> Router {
    let api = Router::new()
        .route("/list", get(files::list))
        .route("/search", get(files::search))
        // Uploads stream to disk whatever their size; every other body is small and buffered
        // (axum's default limit, 2 MiB; Markdown previews get 16 MiB).
        .route(
            "/file",
            get(transfer::download).put(transfer::upload.layer(DefaultBodyLimit::disable())),
        )
        .route("/zip", get(transfer::zip))
        .route("/thumb", get(thumbs::thumb))
        .route("/mkdir", post(files::mkdir))
        .route("/rename", post(files::rename))
        .route("/copy", post(copy::copy))
        .route("/delete", post(files::delete))
        .route(
            "/markdown",
            post(files::markdown.layer(DefaultBodyLimit::max(16 << 20))),
        )
        .route("/status", get(status))
        .route("/sessions", get(auth::list_sessions))
        .route("/sessions/end", post(auth::end_sessions))
        .route("/users", get(accounts::list).post(accounts::add))
        .route("/users/delete", post(accounts::delete))
        .route("/users/password", post(accounts::password))
        .route(
            "/app-passwords",
            get(accounts::app_passwords).post(accounts::add_app_password),
        )
        .route("/app-passwords/revoke", post(accounts::revoke_app_password))
        .route(
            "/access-keys",
            get(accounts::access_keys).post(accounts::add_access_key),
        )
        .route("/access-keys/revoke", post(accounts::revoke_access_key))
        .route("/trash", get(files::trash_list))
        .route("/trash/restore", post(files::trash_restore))
        .route("/trash/remove", post(files::trash_remove))
        .route("/tus", post(tus::create).options(tus::options))
        .route(
            "/tus/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch.layer(DefaultBodyLimit::disable()))
                .delete(tus::delete),
        )
        .route("/shared", get(shared_api::list).post(shared_api::set))
        .route("/shared/delete", post(shared_api::remove))
        .route("/shares", get(share_api::list).post(share_api::create))
        .route("/shares/revoke", post(share_api::revoke))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require,
        ))
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/session", get(auth::session));
    // What a share link's visitor reaches (no account; see `share_api`).
    let shared = Router::new()
        .route("/", get(share_page))
        .route("/api/info", get(share_api::info))
        .route("/api/unlock", post(share_api::unlock))
        .route("/api/list", get(share_api::list_shared))
        .route(
            "/api/file",
            get(share_api::download_shared)
                .put(share_api::upload_shared.layer(DefaultBodyLimit::disable())),
        )
        .route("/api/zip", get(share_api::zip_shared));
    let traffic = Arc::clone(&state.traffic);
    let own = Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .nest("/api", api)
        .nest("/s/{id}", shared)
        .with_state(state);
    traffic::counted(own, &traffic, traffic::Protocol::Web)
        .merge(extra)
        .layer(axum::middleware::from_fn(origin::same_origin))
}

/// How often items past their time leave the trashes.
const TRASH_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where the drive is served.
pub enum Listener {
    /// Plain HTTP (loopback, or beyond it only when asked for).
    Plain(tokio::net::TcpListener),
    /// HTTPS with these certificate files.
    Tls(std::net::TcpListener, tls::TlsFiles),
}

/// Serve [`router_with`]`(state, extra)` until `stop`; requests in flight finish first.
/// Trashes are purged of old items, unfinished uploads of stale ones and the thumbnail
/// cache of its oldest, meanwhile.
pub async fn serve(listener: Listener, state: Arc<WebState>, extra: Router, stop: Stop) {
    let purge_state = Arc::clone(&state);
    let mut purge_stop = stop.clone();
    let purge = async move {
        loop {
            let st = Arc::clone(&purge_state);
            let _ = tokio::task::spawn_blocking(move || {
                st.trash.purge();
                st.tus.purge();
                st.thumbs.purge();
            })
            .await;
            tokio::select! {
                () = tokio::time::sleep(TRASH_PURGE_EVERY) => {}
                () = purge_stop.wait() => return,
            }
        }
    };
    let web = async move {
        match listener {
            Listener::Plain(l) => {
                service_kit::http::serve(l, router_with(state, extra), stop, "web UI").await;
            }
            Listener::Tls(l, files) => {
                if let Err(e) = tls::serve(l, &files, router_with(state, extra), stop).await {
                    tracing::error!(error = %e, "web UI (TLS) stopped");
                }
            }
        }
    };
    tokio::join!(web, purge);
}

/// The page may only load its own scripts and styles; file previews come from `/api/file`.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self'; \
     frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/ui.js"),
    ),
    (
        "uploads.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/uploads.js"),
    ),
    (
        "panels.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/panels.js"),
    ),
    (
        "shares.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/shares.js"),
    ),
    (
        "share.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/share.js"),
    ),
    (
        "highlight.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/highlight.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-cache"),
            // A share link is a secret: it must not leave in a Referer.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    html(include_str!("../assets/index.html"))
}

/// `/s/ID`: the page a share link's recipient opens.
async fn share_page() -> Response {
    let mut r = html(include_str!("../assets/share.html"));
    r.headers_mut().insert(
        "x-robots-tag",
        axum::http::HeaderValue::from_static("noindex, nofollow"),
    );
    r
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /api/status`: the storage's health, for admins (it names the backends).
async fn status(
    State(st): State<Arc<WebState>>,
    axum::extract::Extension(me): axum::extract::Extension<auth::Caller>,
) -> Response {
    if let Err(e) = me.admin_only("the storage's health is for") {
        return e.into_response();
    }
    match &st.storage {
        Some(storage) => Json(storage.status().await).into_response(),
        None => {
            error::ApiError::new(StatusCode::NOT_FOUND, "no storage status here").into_response()
        }
    }
}
