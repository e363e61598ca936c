//! Sign-in and sessions: an account's name and password ([`crate::users`]), or the access
//! token of the configuration (generated and printed on the embedded default; it signs in
//! the built-in admin), is exchanged for a session cookie (random, HttpOnly,
//! SameSite=Strict); every change also needs the session's CSRF token in the `X-CSRF-Token`
//! header. Each request then runs as its [`Caller`]: an admin sees the whole folder, anyone
//! else only their home folder. A session ends when its account is deleted or its password
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::WebState;

pub const COOKIE: &str = "qsfs_session";
/// How long a session lives without being used.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest go first).
const MAX_SESSIONS: usize = 1024;
/// Pause after a wrong token: slows guessing without locking the owner out.
const WRONG_TOKEN_PAUSE: Duration = Duration::from_millis(500);

struct Session {
    csrf: String,
    used: Instant,
    who: Who,
}

/// Who a session signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    /// The access token's built-in admin.
    Token,
    /// An account, at the generation it signed in with.
    User { name: String, generation: u64 },
}

/// The signed-in caller of a request: its name, whether it is an admin, and the folder its
/// paths are relative to (the whole served folder for an admin, else its home folder).
#[derive(Clone)]
pub struct Caller {
    pub name: String,
    pub admin: bool,
    /// Bytes the caller may keep in its folder (`None`: no limit; admins have none).
    pub quota: Option<u64>,
    pub root: Arc<cap_std::fs::Dir>,
}

/// Live sessions by cookie value.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A fresh access token for a configuration (24 random bytes, hex).
pub fn new_token() -> String {
    random_hex(24)
}

/// Compare without an early exit, so the time taken does not tell how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open a session; returns (cookie value, CSRF token).
    fn open(&self, who: Who) -> (String, String) {
        let mut map = self.lock();
        map.retain(|_, s| s.used.elapsed() < SESSION_IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let (id, csrf) = (random_hex(32), random_hex(16));
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                used: Instant::now(),
                who,
            },
        );
        (id, csrf)
    }

    /// The CSRF token and signed-in party of a live session, refreshing its idle timer.
    fn touch(&self, id: &str) -> Option<(String, Who)> {
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        if s.used.elapsed() >= SESSION_IDLE {
            map.remove(id);
            return None;
        }
        s.used = Instant::now();
        Some((s.csrf.clone(), s.who.clone()))
    }

    fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
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
}

fn cookie(value: &str, max_age: u64) -> String {
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// `POST /api/login {"user","password"}` or `{"token"}` → session cookie and
/// `{"csrf","user","admin"}`.
pub async fn login(State(st): State<Arc<WebState>>, Json(req): Json<Login>) -> Response {
    let who = match (req.token, req.user, req.password) {
        (Some(token), None, None) => {
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
        _ => {
            return ApiError::bad_request("send {\"user\", \"password\"} or {\"token\"}")
                .into_response()
        }
    };
    let Some(who) = who else {
        tokio::time::sleep(WRONG_TOKEN_PAUSE).await;
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name, password or token",
        )
        .into_response();
    };
    let Some((name, admin)) = st.signed_in(&who) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "the account is gone").into_response();
    };
    let (id, csrf) = st.sessions.open(who);
    (
        [(header::SET_COOKIE, cookie(&id, SESSION_IDLE.as_secs()))],
        Json(SessionInfo {
            csrf,
            user: name,
            admin,
        }),
    )
        .into_response()
}

/// `POST /api/logout`.
pub async fn logout(State(st): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        st.sessions.close(&id);
    }
    (
        [(header::SET_COOKIE, cookie("", 0))],
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
    Ok(Json(SessionInfo { csrf, user, admin }))
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
async fn caller_root(st: &Arc<WebState>, name: &str, admin: bool) -> Option<Arc<cap_std::fs::Dir>> {
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

/// Every `/api/` route but login/logout/session: a live session, and for anything but
/// GET/HEAD the session's CSRF token in `X-CSRF-Token`. The request then carries its
/// [`Caller`].
pub async fn require(State(st): State<Arc<WebState>>, mut req: Request, next: Next) -> Response {
    let not_in = || ApiError::new(StatusCode::UNAUTHORIZED, "not logged in").into_response();
    let Some((csrf, who)) = session_id(req.headers()).and_then(|id| st.sessions.touch(&id)) else {
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
    let Some(root) = caller_root(&st, &name, admin).await else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "your home folder is missing: ask an admin",
        )
        .into_response();
    };
    req.extensions_mut().insert(Caller {
        name,
        admin,
        quota,
        root,
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_touch_close() {
        let s = Sessions::default();
        let (id, csrf) = s.open(Who::Token);
        assert_eq!(s.touch(&id), Some((csrf, Who::Token)));
        assert_eq!(s.touch("nope"), None);
        s.close(&id);
        assert_eq!(s.touch(&id), None);
    }

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
