//! Login and sessions: one access token (from the configuration, generated and printed on the
//! embedded default) is exchanged for a session cookie (random, HttpOnly, SameSite=Strict);
//! every change also needs the session's CSRF token in the `X-CSRF-Token` header.

use std::collections::HashMap;
use std::sync::Mutex;
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
    fn open(&self) -> (String, String) {
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
            },
        );
        (id, csrf)
    }

    /// The CSRF token of a live session, refreshing its idle timer.
    fn touch(&self, id: &str) -> Option<String> {
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        if s.used.elapsed() >= SESSION_IDLE {
            map.remove(id);
            return None;
        }
        s.used = Instant::now();
        Some(s.csrf.clone())
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

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

#[derive(Serialize)]
pub struct SessionInfo {
    csrf: String,
}

fn cookie(value: &str, max_age: u64) -> String {
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// `POST /api/login {"token"}` → session cookie and `{"csrf"}`.
pub async fn login(State(st): State<std::sync::Arc<WebState>>, Json(req): Json<Login>) -> Response {
    if !same(req.token.trim().as_bytes(), st.token.as_bytes()) {
        tokio::time::sleep(WRONG_TOKEN_PAUSE).await;
        return ApiError::new(StatusCode::UNAUTHORIZED, "wrong access token").into_response();
    }
    let (id, csrf) = st.sessions.open();
    (
        [(header::SET_COOKIE, cookie(&id, SESSION_IDLE.as_secs()))],
        Json(SessionInfo { csrf }),
    )
        .into_response()
}

/// `POST /api/logout`.
pub async fn logout(State(st): State<std::sync::Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        st.sessions.close(&id);
    }
    (
        [(header::SET_COOKIE, cookie("", 0))],
        Json(serde_json::json!({})),
    )
        .into_response()
}

/// `GET /api/session` → `{"csrf"}` of the caller's session (the page calls it on load).
pub async fn session(
    State(st): State<std::sync::Arc<WebState>>,
    headers: HeaderMap,
) -> ApiResult<Json<SessionInfo>> {
    let csrf = session_id(&headers)
        .and_then(|id| st.sessions.touch(&id))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not logged in"))?;
    Ok(Json(SessionInfo { csrf }))
}

/// Every `/api/` route but login/logout/session: a live session, and for anything but
/// GET/HEAD the session's CSRF token in `X-CSRF-Token`.
pub async fn require(
    State(st): State<std::sync::Arc<WebState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(csrf) = session_id(req.headers()).and_then(|id| st.sessions.touch(&id)) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "not logged in").into_response();
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
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_touch_close() {
        let s = Sessions::default();
        let (id, csrf) = s.open();
        assert_eq!(s.touch(&id), Some(csrf));
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
