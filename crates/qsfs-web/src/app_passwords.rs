//! App passwords: one per device or program (a phone's WebDAV app, rclone, a file manager),
//! made by an account for itself, shown once, listed with what they are for and when they
//! were last used, revocable one by one or all at once. They sign in where a program sends
//! a user name and password on every request (WebDAV's Basic authentication), so the
//! account's own password need not be typed into every device, and one lost device is cut
//! off without a password change.
//!
//! A password is 128 random bits (26 characters), so it is kept as its SHA-256 (a slow hash
//! buys nothing against a guess of 2^128, and each request checks it). They live in
//! `.qsfs/app-passwords.json` beside the accounts (dispersed and restored with them) and
//! belong to the account's uid: they die with the account.
//!
//! Owns: the file's format, making and checking passwords. Must not touch: HTTP, accounts'
//! own passwords ([`crate::users`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::users::{User, SYSTEM_DIR};

const FILE: &str = "app-passwords.json";
const FORMAT: u32 = 1;
/// Most app passwords one account may keep.
pub const MAX_PER_ACCOUNT: usize = 100;
/// Longest label, in bytes.
const MAX_LABEL: usize = 100;

/// One app password as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    id: String,
    uid: u64,
    /// The account's name when it was made (shown to admins; the uid is what counts).
    user: String,
    label: String,
    /// SHA-256 of the password, hex.
    hash: String,
    created: u64,
}

/// One app password as listed (no hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppPasswordInfo {
    pub id: String,
    pub user: String,
    pub label: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// When it last signed something in since qsfs started (`None`: not since then).
    pub last_used: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppPasswordsError {
    #[error("{SYSTEM_DIR}/{FILE}: {0}")]
    List(#[from] crate::system_file::ListError),
    #[error("{SYSTEM_DIR}/{FILE}: {0}")]
    Io(std::io::Error),
    #[error("no such app password")]
    NotFound,
    #[error("{0}")]
    Refused(String),
}

#[derive(Serialize, Deserialize)]
struct AppPasswordsFile {
    passwords: Vec<Stored>,
}

/// The app passwords of one served folder, loaded at start, written through on change.
pub struct AppPasswords {
    root: Arc<Dir>,
    list: Mutex<Vec<Stored>>,
    /// id -> when it last signed in (kept in memory: a sign-in must not write the file).
    used: Mutex<HashMap<String, u64>>,
}

fn digest(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// A fresh password: 128 random bits in lowercase base32 (26 characters, easy to type on a
/// phone), in groups of five.
fn new_password() -> String {
    use rand::RngCore;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut bits = u128::from_be_bytes(raw);
    let chars: Vec<char> = (0..26)
        .map(|_| {
            let c = ALPHABET[(bits & 31) as usize] as char;
            bits >>= 5;
            c
        })
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

impl AppPasswords {
    pub fn open(root: Arc<Dir>) -> Result<AppPasswords, AppPasswordsError> {
        let list = crate::system_file::read_list::<AppPasswordsFile>(&root, FILE, FORMAT)?
            .map(|f| f.passwords)
            .unwrap_or_default();
        Ok(AppPasswords {
            root,
            list: Mutex::new(list),
            used: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Stored>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self, s: &Stored) -> AppPasswordInfo {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        AppPasswordInfo {
            id: s.id.clone(),
            user: s.user.clone(),
            label: s.label.clone(),
            created: s.created,
            last_used: used.get(&s.id).copied(),
        }
    }

    /// A new app password for `user`, labelled `label`: its listing and the password
    /// itself (shown once; only its hash is kept).
    pub fn create(
        &self,
        user: &User,
        label: &str,
    ) -> Result<(AppPasswordInfo, String), AppPasswordsError> {
        let label = label.trim();
        if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(AppPasswordsError::Refused(format!(
                "an app password needs a label of 1 to {MAX_LABEL} bytes (what it is for)"
            )));
        }
        let password = new_password();
        let stored = Stored {
            id: crate::sessions::random_hex(8),
            uid: user.uid,
            user: user.name.clone(),
            label: label.to_string(),
            hash: digest(&password),
            created: crate::unix_now(),
        };
        let mut list = self.lock();
        if list.iter().filter(|s| s.uid == user.uid).count() >= MAX_PER_ACCOUNT {
            return Err(AppPasswordsError::Refused(format!(
                "{} keeps {MAX_PER_ACCOUNT} app passwords already: revoke some",
                user.name
            )));
        }
        let mut next = list.clone();
        next.push(stored.clone());
        self.store(&next)?;
        *list = next;
        Ok((self.info(&stored), password))
    }

    /// The app passwords of `user`, or of everyone for `None`, oldest first.
    pub fn list(&self, user: Option<&User>) -> Vec<AppPasswordInfo> {
        self.lock()
            .iter()
            .filter(|s| user.is_none_or(|u| u.uid == s.uid))
            .map(|s| self.info(s))
            .collect()
    }

    /// Revoke app password `id` of `user` (any account's for `None`), or every one of
    /// `user` when `id` is `None`; how many went.
    pub fn revoke(
        &self,
        user: Option<&User>,
        id: Option<&str>,
    ) -> Result<usize, AppPasswordsError> {
        let mut list = self.lock();
        let goes =
            |s: &Stored| user.is_none_or(|u| u.uid == s.uid) && id.is_none_or(|id| id == s.id);
        let next: Vec<Stored> = list.iter().filter(|s| !goes(s)).cloned().collect();
        let gone = list.len() - next.len();
        if gone == 0 {
            return match id {
                Some(_) => Err(AppPasswordsError::NotFound),
                None => Ok(0),
            };
        }
        self.store(&next)?;
        *list = next;
        Ok(gone)
    }

    /// Whether `password` is an app password of `user` (noting its use).
    pub fn check(&self, user: &User, password: &str) -> bool {
        let hash = digest(password.trim());
        let found = self
            .lock()
            .iter()
            .find(|s| s.uid == user.uid && crate::auth::same(s.hash.as_bytes(), hash.as_bytes()))
            .map(|s| s.id.clone());
        match found {
            Some(id) => {
                self.used
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, crate::unix_now());
                true
            }
            None => false,
        }
    }

    fn store(&self, list: &[Stored]) -> Result<(), AppPasswordsError> {
        let file = AppPasswordsFile {
            passwords: list.to_vec(),
        };
        crate::system_file::replace_list(&self.root, FILE, FORMAT, &file)
            .map_err(AppPasswordsError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: u64) -> User {
        let mut u = User::for_tests(name);
        u.uid = uid;
        u
    }

    #[test]
    fn made_checked_listed_revoked_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root =
            Arc::new(Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap());
        let (alice, bob) = (user("alice", 7), user("bob", 8));
        let store = AppPasswords::open(Arc::clone(&root)).unwrap();
        let (info, pw) = store.create(&alice, "phone").unwrap();
        assert_eq!(pw.len(), 26 + 5, "{pw}");
        assert!(store.check(&alice, &pw));
        assert!(!store.check(&bob, &pw), "another account's password");
        assert!(!store.check(&alice, "abcde-fghij-klmno-pqrst-uvwxy-z"));
        assert!(store.create(&alice, "  ").is_err());
        assert!(store.list(Some(&alice))[0].last_used.is_some());
        assert!(store.list(Some(&bob)).is_empty());
        // Kept across a restart, the password itself not stored.
        let again = AppPasswords::open(Arc::clone(&root)).unwrap();
        assert!(again.check(&alice, &pw));
        let text = std::fs::read_to_string(tmp.path().join(".qsfs").join(FILE)).unwrap();
        assert!(!text.contains(&pw) && text.contains("phone"));
        // Bob cannot revoke it; alice can; a later account of the same name gets none.
        assert!(matches!(
            again.revoke(Some(&bob), Some(&info.id)),
            Err(AppPasswordsError::NotFound)
        ));
        assert!(!again.check(&user("alice", 9), &pw));
        assert_eq!(again.revoke(Some(&alice), Some(&info.id)).unwrap(), 1);
        assert!(!again.check(&alice, &pw));
        assert_eq!(again.revoke(Some(&alice), None).unwrap(), 0);
    }
}
