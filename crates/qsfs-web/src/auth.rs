//! Sign-in and sessions: an account's name and password ([`crate::users`]), or the access
//! token of the configuration (generated and printed on the embedded default; it signs in
//! the built-in admin), is exchanged for a session cookie (random, HttpOnly,
//! SameSite=Strict); every change also needs the session's CSRF token in the `X-CSRF-Token`
//! header. Each request then runs as its [`Caller`]: an admin sees the whole folder, anyone
//! else only their home folder. A session ends when its account is deleted or its password
//! changes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Extension, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::bounded::OneOrAll;
use super::error::{ApiError, ApiResult};
use super::sessions::{random_hex, SessionView, Who, MAX_AGE};
use super::throttle::Key;
use super::WebState;

pub const COOKIE: &str = "qsfs_session";
/// Pause after a wrong try: slows guessing without locking the owner out (the waits of
/// [`crate::throttle`] come after a few of them).
pub const WRONG_TRY_PAUSE: Duration = Duration::from_millis(500);

/// The signed-in caller of a request: its name, whether it is an admin, and the folder its
/// paths are relative to (the whole served folder for an admin, else its home folder).
#[derive(Clone)]
pub struct Caller {
    pub name: String,
    pub admin: bool,
    /// Bytes the caller may keep in its folder (`None`: no limit; admins have none).
    pub quota: Option<u64>,
    pub root: Arc<cap_std::fs::Dir>,
    /// The folder the quota counts: `root`, but for a share link its owner's folder.
    pub home: Arc<cap_std::fs::Dir>,
    /// The shared folder the request works in (`space=NAME`), if any: then `root` is that
    /// folder ([`crate::shared`]).
    pub space: Option<String>,
    /// The cookie value of the caller's session (empty for a share link's visitor).
    session: String,
}

impl Caller {
    /// A share link's visitor: `root` is the shared folder, and what it uploads counts
    /// against the owner's quota (`owner`, `quota`, `home`).
    pub fn visitor(
        owner: String,
        quota: Option<u64>,
        root: Arc<cap_std::fs::Dir>,
        home: Arc<cap_std::fs::Dir>,
    ) -> Caller {
        Caller {
            name: owner,
            admin: false,
            quota,
            root,
            home,
            space: None,
            session: String::new(),
        }
    }

    /// The caller of a signed-in party (`name`, `admin`, `quota` as its account says):
    /// rooted at its own folder, or in shared folder `space` (403 when it is not a member,
    /// or for a change by a read-only member). `session` is its session cookie, if any.
    pub async fn signed_in(
        st: &Arc<WebState>,
        name: String,
        admin: bool,
        quota: Option<u64>,
        space: Option<String>,
        method: &Method,
        session: String,
    ) -> ApiResult<Caller> {
        let (root, quota) = match &space {
            None => match caller_root(st, &name, admin).await {
                Some(root) => (root, quota),
                None => {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "your home folder is missing: ask an admin",
                    ))
                }
            },
            Some(space) => (space_root(st, space, &name, admin, method).await?, None),
        };
        Ok(Caller {
            name,
            admin,
            quota,
            home: Arc::clone(&root),
            root,
            space,
            session,
        })
    }

    /// Go on only for an admin; else 403 saying `what` is for admins.
    pub fn admin_only(&self, what: &str) -> ApiResult<()> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{what} admins"),
            ))
        }
    }

    /// Whose trash and unfinished uploads the request uses: the party's own, or in a
    /// shared folder the folder's (`+NAME`: no account or `@token` looks like that).
    pub fn place(&self) -> String {
        match &self.space {
            Some(space) => format!("+{space}"),
            None => self.party().to_string(),
        }
    }

    /// The name of the caller's own places (its trash): the account name, or `@token` for
    /// the access token's admin (no account name has an `@`).
    pub fn party(&self) -> &str {
        if self.name == TOKEN_ADMIN {
            "@token"
        } else {
            &self.name
        }
    }
}

/// A fresh access token for a configuration (24 random bytes, hex).
pub fn new_token() -> String {
    random_hex(24)
}

/// Compare without an early exit, so the time taken does not tell how much matched.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's address, when the server was started with connection info (tests that call
/// the router directly have none).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The values of every cookie named `name` the request carries.
pub(crate) fn cookies<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    cookies(headers, COOKIE).next().map(str::to_string)
}

/// 429 with `Retry-After` while a throttle's wait runs.
pub fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong tries: try again in {secs} s"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    r
}

/// `{"user", "password"}` of an account, or `{"token"}`.
#[derive(Deserialize)]
pub struct Login {
    token: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
pub struct SessionInfo {
    csrf: String,
    user: String,
    admin: bool,
    /// Signed in with an account (it has a password to change), not the access token.
    account: bool,
}

/// A `Set-Cookie` value; `Secure` when the drive is served over TLS.
fn cookie(st: &WebState, value: &str, max_age: u64) -> String {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value of a fresh session.
pub fn session_cookie(st: &WebState, value: &str) -> String {
    cookie(st, value, MAX_AGE.as_secs())
}

/// `POST /api/login {"user","password"}` or `{"token"}` → session cookie and
/// `{"csrf","user","admin"}`. Wrong tries are throttled per account and per client address
/// (429 with `Retry-After` while a wait runs; see [`crate::throttle`]).
pub async fn login(
    State(st): State<Arc<WebState>>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Json(req): Json<Login>,
) -> Response {
    let account = match (&req.token, &req.user, &req.password) {
        (Some(_), None, None) => Key::Account(String::new()),
        (None, Some(name), Some(_)) => Key::Account(name.clone()),
        _ => {
            return ApiError::bad_request("send {\"user\", \"password\"} or {\"token\"}")
                .into_response()
        }
    };
    let mut keys = vec![account.clone()];
    keys.extend(address.map(Key::Address));
    if let Err(wait) = st.throttle.begin(&keys) {
        return too_many(wait);
    }
    let who = match (req.token, req.user, req.password) {
        (Some(token), ..) => {
            same(token.trim().as_bytes(), st.token.as_bytes()).then_some(Who::Token)
        }
        (None, Some(name), Some(password)) => {
            let users = Arc::clone(&st.users);
            tokio::task::spawn_blocking(move || users.verify(&name, &password))
                .await
                .ok()
                .flatten()
                .map(|u| Who::User {
                    name: u.name,
                    generation: u.generation,
                })
        }
        _ => None,
    };
    let Some(who) = who else {
        tokio::time::sleep(WRONG_TRY_PAUSE).await;
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name, password or token",
        )
        .into_response();
    };
    st.throttle.right(&keys, &account);
    let Some((name, admin)) = st.signed_in(&who) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "the account is gone").into_response();
    };
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let account = matches!(who, Who::User { .. });
    let (id, csrf) = st.sessions.open(who, address, agent);
    (
        [(header::SET_COOKIE, session_cookie(&st, &id))],
        Json(SessionInfo {
            csrf,
            user: name,
            admin,
            account,
        }),
    )
        .into_response()
}

/// `GET /api/sessions` → the caller's live sessions (`[{"id","opened","last_used",
/// "address","agent","current"}]`, newest first).
pub async fn list_sessions(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
) -> Json<Vec<SessionView>> {
    Json(st.sessions.of(&me.session))
}

/// `POST /api/sessions/end {"id"}` or `{"all": true}` ("sign out everywhere", this session
/// too) → `{"ended": N}`.
pub async fn end_sessions(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(req): Json<OneOrAll>,
) -> ApiResult<Json<serde_json::Value>> {
    let which = req.which()?;
    let ended = st.sessions.end(&me.session, which.as_deref());
    Ok(Json(serde_json::json!({ "ended": ended })))
}

/// `POST /api/logout`.
pub async fn logout(State(st): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        st.sessions.close(&id);
    }
    (
        [(header::SET_COOKIE, cookie(&st, "", 0))],
        Json(serde_json::json!({})),
    )
        .into_response()
}

/// `GET /api/session` → `{"csrf","user","admin"}` of the caller's session (the page calls
/// it on load).
pub async fn session(
    State(st): State<Arc<WebState>>,
    headers: HeaderMap,
) -> ApiResult<Json<SessionInfo>> {
    let not_in = || ApiError::new(StatusCode::UNAUTHORIZED, "not logged in");
    let (csrf, who) = session_id(&headers)
        .and_then(|id| st.sessions.touch(&id))
        .ok_or_else(not_in)?;
    let (user, admin) = st.signed_in(&who).ok_or_else(not_in)?;
    let account = matches!(who, Who::User { .. });
    Ok(Json(SessionInfo {
        csrf,
        user,
        admin,
        account,
    }))
}

impl WebState {
    /// The name and admin flag of a session's party, if its account still exists at the
    /// generation the session signed in with.
    fn signed_in(&self, who: &Who) -> Option<(String, bool)> {
        self.account(who).map(|(name, admin, _)| (name, admin))
    }

    /// Name, admin flag and quota of a session's party (see [`WebState::signed_in`]).
    fn account(&self, who: &Who) -> Option<(String, bool, Option<u64>)> {
        match who {
            Who::Token => Some((TOKEN_ADMIN.to_string(), true, None)),
            Who::User { name, generation } => self
                .users
                .current(name, *generation)
                .map(|u| (u.name, u.admin, u.quota.filter(|_| !u.admin))),
        }
    }
}

/// The name the access token signs in as.
pub const TOKEN_ADMIN: &str = "admin (access token)";

/// The folder a caller's paths are relative to.
pub(crate) async fn caller_root(
    st: &Arc<WebState>,
    name: &str,
    admin: bool,
) -> Option<Arc<cap_std::fs::Dir>> {
    if admin {
        return Some(Arc::clone(&st.root));
    }
    let (root, home) = (
        Arc::clone(&st.root),
        format!("{}/{name}", crate::users::HOMES),
    );
    tokio::task::spawn_blocking(move || root.open_dir(home).ok().map(Arc::new))
        .await
        .ok()
        .flatten()
}

#[derive(Deserialize)]
struct SpaceQuery {
    space: Option<String>,
}

/// The root of shared folder `space` for `name`: a member (or an admin) gets it, for
/// changes only with write access.
async fn space_root(
    st: &Arc<WebState>,
    space: &str,
    name: &str,
    admin: bool,
    method: &Method,
) -> ApiResult<Arc<cap_std::fs::Dir>> {
    use crate::shared::Access;
    let access = if admin {
        st.shared.exists(space).then_some(Access::Write)
    } else {
        st.users.get(name).and_then(|u| st.shared.access(space, &u))
    };
    let Some(access) = access else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{space}: no shared folder of yours"),
        ));
    };
    if access == Access::Read && !matches!(*method, Method::GET | Method::HEAD) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{space} is shared with you read-only"),
        ));
    }
    let (root, path) = (
        Arc::clone(&st.root),
        format!("{}/{space}", crate::shared::SHARED),
    );
    tokio::task::spawn_blocking(move || root.open_dir(path).map(Arc::new))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::io(space, e))
}

/// Every `/api/` route but login/logout/session: a live session, and for anything but
/// GET/HEAD the session's CSRF token in `X-CSRF-Token`. The request then carries its
/// [`Caller`]; with `space=NAME` in its query it works in that shared folder.
pub async fn require(State(st): State<Arc<WebState>>, mut req: Request, next: Next) -> Response {
    let not_in = || ApiError::new(StatusCode::UNAUTHORIZED, "not logged in").into_response();
    let Some(session) = session_id(req.headers()) else {
        return not_in();
    };
    let Some((csrf, who)) = st.sessions.touch(&session) else {
        return not_in();
    };
    let Some((name, admin, quota)) = st.account(&who) else {
        return not_in();
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let sent = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same(sent.as_bytes(), csrf.as_bytes()) {
            return ApiError::new(StatusCode::FORBIDDEN, "missing or wrong CSRF token")
                .into_response();
        }
    }
    let space = axum::extract::Query::<SpaceQuery>::try_from_uri(req.uri())
        .ok()
        .and_then(|q| q.0.space)
        .filter(|s| !s.is_empty());
    match Caller::signed_in(&st, name, admin, quota, space, req.method(), session).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
        }
        Err(e) => return e.into_response(),
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; qsfs_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
