//! The accounts API: admins list, add and delete accounts and set anyone's password; anyone
//! with an account changes their own, giving the current one (their other sessions end,
//! this one goes on under a fresh cookie). The same changes as `qsfs user`.
//!
//! Owns: these routes and how account errors read over HTTP. Must not touch: the account
//! file ([`crate::users`]) or sessions beyond opening the replacement one.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::keyring::{KeyInfo, KeyRing};
use crate::sessions::Who;
use crate::users::{UserInfo, Users, UsersError};
use crate::WebState;

impl From<UsersError> for ApiError {
    fn from(e: UsersError) -> ApiError {
        let status = match e {
            UsersError::BadName | UsersError::BadPassword => StatusCode::BAD_REQUEST,
            UsersError::Exists(_) => StatusCode::CONFLICT,
            UsersError::NoSuchUser(_) => StatusCode::NOT_FOUND,
            UsersError::Hash(_) | UsersError::Io { .. } | UsersError::Corrupt(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

/// Run an account change off the runtime (hashing takes tens of milliseconds).
async fn on_users<T: Send + 'static>(
    st: &WebState,
    f: impl FnOnce(&Users) -> Result<T, UsersError> + Send + 'static,
) -> ApiResult<T> {
    let users = Arc::clone(&st.users);
    tokio::task::spawn_blocking(move || f(&users))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// `GET /api/users` (admins) → `[{"name","admin","quota"}]`.
pub async fn list(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
) -> ApiResult<Json<Vec<UserInfo>>> {
    me.admin_only("accounts are managed by")?;
    Ok(Json(st.users.list()))
}

#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
    /// Bytes; absent or null for none.
    quota: Option<u64>,
}

/// `POST /api/users {"name","password","admin","quota"}` (admins): a new account and its
/// home folder.
pub async fn add(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(u): Json<NewUser>,
) -> ApiResult<Json<serde_json::Value>> {
    me.admin_only("accounts are managed by")?;
    let name = u.name.clone();
    on_users(&st, move |users| {
        users.add(&u.name, &u.password, u.admin, u.quota)
    })
    .await?;
    Ok(Json(serde_json::json!({ "added": name })))
}

#[derive(Deserialize)]
pub struct Named {
    name: String,
}

/// `POST /api/users/delete {"name"}` (admins): the account goes, its sessions and share
/// links end, its home folder stays.
pub async fn delete(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(n): Json<Named>,
) -> ApiResult<Json<serde_json::Value>> {
    me.admin_only("accounts are managed by")?;
    if n.name == me.name {
        return Err(ApiError::bad_request(
            "an admin cannot delete their own account here",
        ));
    }
    let name = n.name.clone();
    on_users(&st, move |users| users.remove(&n.name)).await?;
    let (shares, owner) = (Arc::clone(&st.shares), name.clone());
    // The links die with the account in any case (they name its uid); this tidies the list.
    let revoked = tokio::task::spawn_blocking(move || shares.revoke_all_of(&owner))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    Ok(Json(
        serde_json::json!({ "deleted": name, "links_revoked": revoked }),
    ))
}

#[derive(Deserialize)]
pub struct NewPassword {
    /// Whose password; absent for the caller's own.
    name: Option<String>,
    password: String,
    /// The caller's current password, to change their own.
    current: Option<String>,
}

/// `POST /api/users/password {"password","current"}` changes the caller's own password
/// (a fresh session cookie comes back, `{"csrf"}`: the old sessions end); an admin sets
/// anyone's with `{"name","password"}`.
pub async fn password(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Json(p): Json<NewPassword>,
) -> ApiResult<Response> {
    if let Some(name) = p.name.filter(|n| *n != me.name) {
        me.admin_only("accounts are managed by")?;
        let answer = serde_json::json!({ "changed": name });
        on_users(&st, move |users| {
            users.set_password(&name, &p.password).map(drop)
        })
        .await?;
        return Ok(Json(answer).into_response());
    }
    let current = p.current.unwrap_or_default();
    let name = me.name.clone();
    let user = on_users(&st, move |users| {
        if users.verify(&name, &current).is_none() {
            return Err(UsersError::BadPassword);
        }
        users.set_password(&name, &p.password)
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::BAD_REQUEST => ApiError::new(
            StatusCode::FORBIDDEN,
            "the current password is wrong, or the new one is not 8 to 1024 bytes",
        ),
        _ => e,
    })?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let who = Who::User {
        name: user.name,
        generation: user.generation,
    };
    let (cookie, csrf) = st.sessions.open(who, address, agent);
    Ok((
        [(
            header::SET_COOKIE,
            crate::auth::session_cookie(&st, &cookie),
        )],
        Json(serde_json::json!({ "csrf": csrf })),
    )
        .into_response())
}

impl From<crate::keyring::KeyRingError> for ApiError {
    fn from(e: crate::keyring::KeyRingError) -> ApiError {
        use crate::keyring::KeyRingError as E;
        let status = match e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Refused(_) => StatusCode::BAD_REQUEST,
            E::List(..) | E::Io(..) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The caller's account: keys belong to one (the access token has none).
fn own_account(st: &WebState, me: &Caller, ring: &KeyRing) -> ApiResult<crate::users::User> {
    st.users.get(&me.name).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{}s belong to accounts: sign in with one", ring.noun()),
        )
    })
}

#[derive(Deserialize)]
pub struct AllQuery {
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize)]
pub struct NewKey {
    label: String,
}

/// The caller's keys of one kind (`[{"id","user","label","created","last_used"}]`); with
/// `all` for an admin: everyone's.
fn list_keys(st: &WebState, me: &Caller, ring: &KeyRing, all: bool) -> ApiResult<Vec<KeyInfo>> {
    if all {
        me.admin_only(&format!("everyone's {}s are listed for", ring.noun()))?;
        return Ok(ring.list(None));
    }
    Ok(ring.list(Some(&own_account(st, me, ring)?)))
}

/// A new key of the caller's: its listing and, under `secret_field`, its secret.
fn add_key(
    st: &WebState,
    me: &Caller,
    ring: &KeyRing,
    label: &str,
    secret_field: &str,
) -> ApiResult<Json<serde_json::Value>> {
    let user = own_account(st, me, ring)?;
    let (info, secret) = ring.create(&user, label)?;
    let mut answer = serde_json::to_value(info).unwrap_or_default();
    answer[secret_field] = secret.into();
    Ok(Json(answer))
}

/// `{"id"}` or `{"all": true}` → `{"revoked": N}`. An admin may revoke anyone's by id.
fn revoke_keys(
    st: &WebState,
    me: &Caller,
    ring: &KeyRing,
    req: crate::bounded::OneOrAll,
) -> ApiResult<Json<serde_json::Value>> {
    let which = req.which()?;
    let user = if me.admin && which.is_some() {
        None
    } else {
        Some(own_account(st, me, ring)?)
    };
    let revoked = ring.revoke(user.as_ref(), which.as_deref())?;
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

/// `GET /api/app-passwords` → the caller's app passwords; `?all=true` for an admin.
pub async fn app_passwords(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    axum::extract::Query(q): axum::extract::Query<AllQuery>,
) -> ApiResult<Json<Vec<KeyInfo>>> {
    list_keys(&st, &me, &st.app_passwords, q.all).map(Json)
}

/// `POST /api/app-passwords {"label"}` → `{"id","label",…,"password"}`: the password is
/// shown this once.
pub async fn add_app_password(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(req): Json<NewKey>,
) -> ApiResult<Json<serde_json::Value>> {
    add_key(&st, &me, &st.app_passwords, &req.label, "password")
}

/// `POST /api/app-passwords/revoke {"id"}` or `{"all": true}` → `{"revoked": N}`.
pub async fn revoke_app_password(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(req): Json<crate::bounded::OneOrAll>,
) -> ApiResult<Json<serde_json::Value>> {
    revoke_keys(&st, &me, &st.app_passwords, req)
}

/// `GET /api/access-keys` → the caller's S3 access keys (the id is the key id); `?all=true`
/// for an admin.
pub async fn access_keys(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    axum::extract::Query(q): axum::extract::Query<AllQuery>,
) -> ApiResult<Json<Vec<KeyInfo>>> {
    list_keys(&st, &me, &st.access_keys, q.all).map(Json)
}

/// `POST /api/access-keys {"label"}` → `{"id","label",…,"secret"}`: the secret is shown this
/// once (the server keeps it to check signatures, but never shows it again).
pub async fn add_access_key(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(req): Json<NewKey>,
) -> ApiResult<Json<serde_json::Value>> {
    add_key(&st, &me, &st.access_keys, &req.label, "secret")
}

/// `POST /api/access-keys/revoke {"id"}` or `{"all": true}` → `{"revoked": N}`.
pub async fn revoke_access_key(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(req): Json<crate::bounded::OneOrAll>,
) -> ApiResult<Json<serde_json::Value>> {
    revoke_keys(&st, &me, &st.access_keys, req)
}
