//! Live sessions: who each signed in, from where, since when. A session ends when it has
//! not been used for [`IDLE`], when it is [`MAX_AGE`] old whatever its use, on logout, when
//! its owner ends it (one, or all of theirs: "sign out everywhere"), or when its account's
//! generation moves on (checked by [`crate::auth`] on each request).
//!
//! Owns: the session table and its limits. Must not touch: HTTP, accounts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::Serialize;

/// How long a session lives without being used.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// How long a session lives at most.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Sessions kept at most (the least recently used go first).
const MAX_SESSIONS: usize = 1024;

/// Who a session signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The access token's built-in admin.
    Token,
    /// An account, at the generation it signed in with.
    User { name: String, generation: u64 },
}

impl Who {
    /// Whether both are the same party (whatever the generation).
    fn same_party(&self, other: &Who) -> bool {
        match (self, other) {
            (Who::Token, Who::Token) => true,
            (Who::User { name: a, .. }, Who::User { name: b, .. }) => a == b,
            _ => false,
        }
    }
}

struct Session {
    csrf: String,
    who: Who,
    /// A name for the session that can be shown (the cookie value never is).
    public_id: String,
    opened: Instant,
    opened_unix: u64,
    used: Instant,
    used_unix: u64,
    address: Option<IpAddr>,
    agent: String,
}

impl Session {
    fn live(&self) -> bool {
        self.used.elapsed() < IDLE && self.opened.elapsed() < MAX_AGE
    }
}

/// One session as its owner sees it in the list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    /// Unix seconds.
    pub opened: u64,
    pub last_used: u64,
    pub address: Option<String>,
    pub agent: String,
    /// The session of the request asking.
    pub current: bool,
}

/// Live sessions by cookie value.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open a session; returns (cookie value, CSRF token).
    pub fn open(&self, who: Who, address: Option<IpAddr>, agent: &str) -> (String, String) {
        let mut map = self.lock();
        map.retain(|_, s| s.live());
        crate::bounded::make_room(&mut map, MAX_SESSIONS, |s| s.used);
        let (id, csrf) = (random_hex(32), random_hex(16));
        let now = crate::unix_now();
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                who,
                public_id: random_hex(8),
                opened: Instant::now(),
                opened_unix: now,
                used: Instant::now(),
                used_unix: now,
                address,
                agent: agent.chars().take(200).collect(),
            },
        );
        (id, csrf)
    }

    /// The CSRF token and signed-in party of a live session, refreshing its idle timer.
    pub fn touch(&self, id: &str) -> Option<(String, Who)> {
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        if !s.live() {
            map.remove(id);
            return None;
        }
        s.used = Instant::now();
        s.used_unix = crate::unix_now();
        Some((s.csrf.clone(), s.who.clone()))
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The live sessions of the party of session `current`, newest first.
    pub fn of(&self, current: &str) -> Vec<SessionView> {
        let map = self.lock();
        let Some(me) = map.get(current).map(|s| s.who.clone()) else {
            return Vec::new();
        };
        let mut out: Vec<(Instant, SessionView)> = map
            .iter()
            .filter(|(_, s)| s.live() && s.who.same_party(&me))
            .map(|(k, s)| {
                let view = SessionView {
                    id: s.public_id.clone(),
                    opened: s.opened_unix,
                    last_used: s.used_unix,
                    address: s.address.map(|a| a.to_string()),
                    agent: s.agent.clone(),
                    current: k == current,
                };
                (s.opened, view)
            })
            .collect();
        out.sort_by_key(|(opened, _)| std::cmp::Reverse(*opened));
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// End the sessions of `current`'s party whose public id is `which` (all of them with
    /// `None`); returns how many ended.
    pub fn end(&self, current: &str, which: Option<&str>) -> usize {
        let mut map = self.lock();
        let Some(me) = map.get(current).map(|s| s.who.clone()) else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, s| !(s.who.same_party(&me) && which.is_none_or(|w| w == s.public_id)));
        before - map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Who {
        Who::User {
            name: "alice".into(),
            generation: 1,
        }
    }

    #[test]
    fn sessions_open_touch_close() {
        let s = Sessions::default();
        let (id, csrf) = s.open(Who::Token, None, "curl");
        assert_eq!(s.touch(&id), Some((csrf, Who::Token)));
        assert_eq!(s.touch("nope"), None);
        s.close(&id);
        assert_eq!(s.touch(&id), None);
    }

    #[test]
    fn a_party_lists_and_ends_only_its_own_sessions() {
        let s = Sessions::default();
        let (phone, _) = s.open(alice(), Some("10.0.0.2".parse().unwrap()), "phone");
        let (laptop, _) = s.open(alice(), None, "laptop");
        let (admin, _) = s.open(Who::Token, None, "admin's");
        let mine = s.of(&laptop);
        assert_eq!(mine.len(), 2);
        assert_eq!(mine.iter().filter(|v| v.current).count(), 1);
        assert!(mine
            .iter()
            .any(|v| v.agent == "phone" && v.address.as_deref() == Some("10.0.0.2")));
        let phone_id = mine.iter().find(|v| v.agent == "phone").unwrap().id.clone();
        assert_eq!(
            s.end(&admin, Some(&phone_id)),
            0,
            "not the admin's session to end"
        );
        assert_eq!(s.end(&laptop, Some(&phone_id)), 1);
        assert!(s.touch(&phone).is_none() && s.touch(&laptop).is_some());
        s.open(alice(), None, "tablet");
        assert_eq!(s.end(&laptop, None), 2, "sign out everywhere");
        assert!(s.touch(&laptop).is_none() && s.touch(&admin).is_some());
    }
}
