//! Who a WebDAV request is: HTTP Basic credentials on every request (what file managers,
//! phones and rclone send), checked as
//! - an app password of the account ([`qsfs_web::keyring`]; cheap to check), or
//! - the account's own password, only over TLS or from this machine (Basic sends it in
//!   the clear otherwise), remembered for [`REMEMBERED`] after one Argon2 check (clients
//!   send it with every request) until the password changes, or
//! - user `token` with the configuration's access token (the built-in admin).
//!
//! Wrong tries meet the web sign-in's throttle ([`qsfs_web::throttle`]), per account and
//! per address, with the same pause.
//!
//! Owns: parsing Basic credentials, the remembered checks. Must not touch: the files.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use qsfs_web::auth::{too_many, WRONG_TRY_PAUSE};
use qsfs_web::throttle::Key;
use qsfs_web::WebState;
use sha2::{Digest, Sha256};

/// How long an account password checked once signs requests in without a new check.
pub const REMEMBERED: Duration = Duration::from_secs(600);
/// Most remembered checks (the oldest go first).
const MAX_REMEMBERED: usize = 4096;
/// The user name that goes with the access token.
pub const TOKEN_USER: &str = "token";

/// The account a request signed in as.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub admin: bool,
    pub quota: Option<u64>,
}

struct Remembered {
    name: String,
    generation: u64,
    at: Instant,
}

/// Account passwords checked lately (keyed by a salted hash of name and password: the
/// password itself is not kept).
pub struct Checks {
    salt: [u8; 32],
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
    /// Share links' passwords checked lately (keyed as accounts', with the link's id).
    links: Mutex<HashMap<[u8; 32], Instant>>,
    /// One Argon2 check at a time: a client opening eight connections at once with the same
    /// password costs one check, not eight (nor eight tries of the throttle).
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            salt: rand::random(),
            remembered: Mutex::default(),
            links: Mutex::default(),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }
}

impl Checks {
    fn key(&self, name: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(name.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// The account, if this name and password were checked lately and the password has not
    /// changed since.
    fn recall(&self, st: &WebState, key: &[u8; 32]) -> Option<Account> {
        let mut map = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        let r = map.get(key)?;
        let user = (r.at.elapsed() < REMEMBERED)
            .then(|| st.users.current(&r.name, r.generation))
            .flatten();
        if user.is_none() {
            map.remove(key);
        }
        user.map(|u| account(&u))
    }

    fn remember(&self, key: [u8; 32], user: &qsfs_web::users::User) {
        let mut map = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        qsfs_web::bounded::make_room(&mut map, MAX_REMEMBERED, |r| r.at);
        map.insert(
            key,
            Remembered {
                name: user.name.clone(),
                generation: user.generation,
                at: Instant::now(),
            },
        );
    }
}

/// Let a request into share link `share` (a password-less one, or Basic credentials whose
/// password is the link's, any user name), or the answer refusing it. The password is
/// remembered for [`REMEMBERED`] after one Argon2 check; wrong tries are throttled per link
/// and per address, as the link's page does.
pub async fn link_password(
    st: &Arc<WebState>,
    checks: &Checks,
    share: &qsfs_web::shares::Share,
    headers: &HeaderMap,
    address: Option<IpAddr>,
) -> Result<(), Response> {
    if !share.has_password() {
        return Ok(());
    }
    let Some((_, password)) = basic(headers) else {
        return Err(challenge("this link needs its password (any user name)"));
    };
    let key = checks.key(&format!("\0link:{}", share.id), &password);
    let fresh = |map: &HashMap<[u8; 32], Instant>| {
        map.get(&key).is_some_and(|at| at.elapsed() < REMEMBERED)
    };
    if fresh(&checks.links.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(());
    }
    let link = Key::Account(format!("share:{}", share.id));
    let mut keys = vec![link.clone()];
    keys.extend(address.map(Key::Address));
    st.throttle.begin(&keys).map_err(too_many)?;
    let _one = checks.one_at_a_time.lock().await;
    let s = share.clone();
    let right =
        tokio::task::spawn_blocking(move || qsfs_web::shares::Shares::unlocks(&s, &password))
            .await
            .unwrap_or(false);
    if !right {
        tokio::time::sleep(WRONG_TRY_PAUSE).await;
        return Err(challenge("wrong password for this link"));
    }
    st.throttle.right(&keys, &link);
    let mut map = checks.links.lock().unwrap_or_else(|p| p.into_inner());
    qsfs_web::bounded::make_room(&mut map, MAX_REMEMBERED, |at| *at);
    map.insert(key, Instant::now());
    Ok(())
}

fn account(u: &qsfs_web::users::User) -> Account {
    Account {
        name: u.name.clone(),
        admin: u.admin,
        quota: u.quota.filter(|_| !u.admin),
    }
}

/// 401 asking for Basic credentials.
pub fn challenge(why: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, format!("{why}\n")).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"qsfs\", charset=\"UTF-8\""),
    );
    r
}

/// The name and password of a Basic `Authorization` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// Sign a request in from its Basic credentials, or the answer refusing it.
pub async fn sign_in(
    st: &Arc<WebState>,
    checks: &Checks,
    headers: &HeaderMap,
    address: Option<IpAddr>,
) -> Result<Account, Response> {
    let Some((name, password)) = basic(headers) else {
        return Err(challenge(
            "sign in with your account name and an app password",
        ));
    };
    let key = checks.key(&name, &password);
    if let Some(a) = checks.recall(st, &key) {
        return Ok(a);
    }
    let account_key = Key::Account(name.clone());
    let mut keys = vec![account_key.clone()];
    keys.extend(address.map(Key::Address));
    st.throttle.begin(&keys).map_err(too_many)?;
    let is_token =
        name == TOKEN_USER && qsfs_web::auth::same(password.trim().as_bytes(), st.token.as_bytes());
    let found = if is_token {
        Some(Account {
            name: qsfs_web::auth::TOKEN_ADMIN.to_string(),
            admin: true,
            quota: None,
        })
    } else {
        match st.users.get(&name) {
            Some(u) if st.app_passwords.check(&u, &password) => Some(account(&u)),
            _ if own_password_allowed(st, address) => {
                own_password(st, checks, key, &name, &password).await
            }
            _ => None,
        }
    };
    if let Some(a) = found {
        st.throttle.right(&keys, &account_key);
        Ok(a)
    } else {
        tokio::time::sleep(WRONG_TRY_PAUSE).await;
        Err(challenge("wrong user name or password"))
    }
}

/// An account's own password travels only where nobody else can read it.
fn own_password_allowed(st: &WebState, address: Option<IpAddr>) -> bool {
    st.secure_cookies || address.is_none_or(|a| a.is_loopback())
}

async fn own_password(
    st: &Arc<WebState>,
    checks: &Checks,
    key: [u8; 32],
    name: &str,
    password: &str,
) -> Option<Account> {
    let _one = checks.one_at_a_time.lock().await;
    if let Some(a) = checks.recall(st, &key) {
        return Some(a);
    }
    let (users, n, p) = (
        Arc::clone(&st.users),
        name.to_string(),
        password.to_string(),
    );
    let user = tokio::task::spawn_blocking(move || users.verify(&n, &p))
        .await
        .ok()
        .flatten()?;
    checks.remember(key, &user);
    Some(account(&user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read() {
        let mut h = HeaderMap::new();
        assert!(basic(&h).is_none());
        // "alice:pa:ss" — a password may hold colons, a name may not.
        h.insert(
            header::AUTHORIZATION,
            "Basic YWxpY2U6cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(basic(&h), Some(("alice".into(), "pa:ss".into())));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(basic(&h).is_none());
        h.insert(header::AUTHORIZATION, "basic !!!".parse().unwrap());
        assert!(basic(&h).is_none());
    }
}
