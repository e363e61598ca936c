//! Keys made by an account for its devices and programs, listed with what they are for and
//! when they were last used, revocable one by one or all at once, so one lost device is cut
//! off without a password change. Two kinds ([`Kind`]) share the mechanism:
//!
//! - **App passwords** sign in where a program sends a user name and password on every
//!   request (WebDAV's Basic authentication), so the account's own password need not be
//!   typed into every device. A password is 128 random bits (26 characters), kept as its
//!   SHA-256 (a slow hash buys nothing against a guess of 2^128, and each request checks
//!   it).
//! - **S3 access keys** sign requests (AWS Signature V4): the server computes the same
//!   signature, so it must keep the secret itself, not a hash. The key id is public (it is
//!   in every request), the secret 240 random bits.
//!
//! Each kind lives in its own file in `.qsfs/` beside the accounts (written 0600,
//! dispersed and restored with them); a key belongs to the account's uid, so it dies with
//! the account.
//!
//! Owns: the files' format, making and checking keys. Must not touch: HTTP, accounts' own
//! passwords ([`crate::users`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::users::{User, SYSTEM_DIR};

const FORMAT: u32 = 1;
/// Most keys of one kind one account may keep.
pub const MAX_PER_ACCOUNT: usize = 100;

/// A kind of key, and the file its ring lives in.
#[derive(Debug)]
pub struct Kind {
    file: &'static str,
    /// What one is called in messages.
    pub noun: &'static str,
    /// Keep the secret itself (S3 signatures need it), not its hash.
    keeps_secret: bool,
}

pub const APP_PASSWORDS: Kind = Kind {
    file: "app-passwords.json",
    noun: "app password",
    keeps_secret: false,
};

pub const ACCESS_KEYS: Kind = Kind {
    file: "s3-access-keys.json",
    noun: "access key",
    keeps_secret: true,
};
/// Longest label, in bytes.
const MAX_LABEL: usize = 100;

/// One key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    /// An app password's id, or an access key's public key id.
    id: String,
    uid: u64,
    /// The account's name when it was made (shown to admins; the uid is what counts).
    user: String,
    label: String,
    /// App passwords: SHA-256 of the password, hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    hash: String,
    /// Access keys: the secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    secret: String,
    created: u64,
}

/// One key as listed (no hash, no secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub user: String,
    pub label: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// When it last signed something in since qsfs started (`None`: not since then).
    pub last_used: Option<u64>,
}

/// Whose an access key is, and its secret.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub user: String,
    pub uid: u64,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("{SYSTEM_DIR}/{0}: {1}")]
    List(&'static str, crate::system_file::ListError),
    #[error("{SYSTEM_DIR}/{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Refused(String),
}

#[derive(Serialize, Deserialize)]
struct KeyRingFile {
    /// The name is the first kind's: files written before access keys existed read as ever.
    passwords: Vec<Stored>,
}

/// The keys of one kind of one served folder, loaded at start, written through on change.
pub struct KeyRing {
    kind: &'static Kind,
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

/// `len` random characters of `alphabet` (of 32 or 64 characters: no bias).
fn random_chars(alphabet: &[u8], len: usize) -> String {
    use rand::RngCore;
    debug_assert!(alphabet.len().is_power_of_two() && alphabet.len() <= 256);
    let mut raw = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw.iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

/// A fresh S3 key id and secret: `QS` and 18 base32 characters (the 20 characters of
/// AWS's ids), and 40 characters of URL-safe base64 (240 bits; the length of AWS's
/// secrets, with nothing a shell or a config file would quote).
fn new_access_key() -> (String, String) {
    const UPPER32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const URL64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (
        format!("QS{}", random_chars(UPPER32, 18)),
        random_chars(URL64, 40),
    )
}

impl KeyRing {
    pub fn open(root: Arc<Dir>, kind: &'static Kind) -> Result<KeyRing, KeyRingError> {
        let list = crate::system_file::read_list::<KeyRingFile>(&root, kind.file, FORMAT)
            .map_err(|e| KeyRingError::List(kind.file, e))?
            .map(|f| f.passwords)
            .unwrap_or_default();
        Ok(KeyRing {
            kind,
            root,
            list: Mutex::new(list),
            used: Mutex::default(),
        })
    }

    /// What one key of this ring is called.
    pub fn noun(&self) -> &'static str {
        self.kind.noun
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Stored>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self, s: &Stored) -> KeyInfo {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        KeyInfo {
            id: s.id.clone(),
            user: s.user.clone(),
            label: s.label.clone(),
            created: s.created,
            last_used: used.get(&s.id).copied(),
        }
    }

    fn note_use(&self, id: &str) {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), crate::unix_now());
    }

    /// A new key for `user`, labelled `label`: its listing and the secret (the app password
    /// itself, shown once and only its hash kept; or the access key's secret).
    pub fn create(&self, user: &User, label: &str) -> Result<(KeyInfo, String), KeyRingError> {
        let noun = self.kind.noun;
        let label = label.trim();
        if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(KeyRingError::Refused(format!(
                "an {noun} needs a label of 1 to {MAX_LABEL} bytes (what it is for)"
            )));
        }
        let (id, secret, hash, kept) = if self.kind.keeps_secret {
            let (id, secret) = new_access_key();
            (id, secret.clone(), String::new(), secret)
        } else {
            let password = new_password();
            let hash = digest(&password);
            (
                crate::sessions::random_hex(8),
                password,
                hash,
                String::new(),
            )
        };
        let stored = Stored {
            id,
            uid: user.uid,
            user: user.name.clone(),
            label: label.to_string(),
            hash,
            secret: kept,
            created: crate::unix_now(),
        };
        let mut list = self.lock();
        if list.iter().filter(|s| s.uid == user.uid).count() >= MAX_PER_ACCOUNT {
            return Err(KeyRingError::Refused(format!(
                "{} keeps {MAX_PER_ACCOUNT} {noun}s already: revoke some",
                user.name
            )));
        }
        let mut next = list.clone();
        next.push(stored.clone());
        self.store(&next)?;
        *list = next;
        Ok((self.info(&stored), secret))
    }

    /// The keys of `user`, or of everyone for `None`, oldest first.
    pub fn list(&self, user: Option<&User>) -> Vec<KeyInfo> {
        self.lock()
            .iter()
            .filter(|s| user.is_none_or(|u| u.uid == s.uid))
            .map(|s| self.info(s))
            .collect()
    }

    /// Revoke key `id` of `user` (any account's for `None`), or every one of `user` when
    /// `id` is `None`; how many went.
    pub fn revoke(&self, user: Option<&User>, id: Option<&str>) -> Result<usize, KeyRingError> {
        let mut list = self.lock();
        let goes =
            |s: &Stored| user.is_none_or(|u| u.uid == s.uid) && id.is_none_or(|id| id == s.id);
        let next: Vec<Stored> = list.iter().filter(|s| !goes(s)).cloned().collect();
        let gone = list.len() - next.len();
        if gone == 0 {
            return match id {
                Some(_) => Err(KeyRingError::NotFound(self.kind.noun)),
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
            .find(|s| {
                s.uid == user.uid
                    && !s.hash.is_empty()
                    && crate::auth::same(s.hash.as_bytes(), hash.as_bytes())
            })
            .map(|s| s.id.clone());
        found.inspect(|id| self.note_use(id)).is_some()
    }

    /// The owner (account name and uid) and secret of access key `id` (noting its use), to
    /// check a signature with.
    pub fn secret_of(&self, id: &str) -> Option<KeyOwner> {
        let found = self
            .lock()
            .iter()
            .find(|s| s.id == id && !s.secret.is_empty())
            .map(|s| KeyOwner {
                user: s.user.clone(),
                uid: s.uid,
                secret: s.secret.clone(),
            });
        found.inspect(|_| self.note_use(id))
    }

    fn store(&self, list: &[Stored]) -> Result<(), KeyRingError> {
        let file = KeyRingFile {
            passwords: list.to_vec(),
        };
        crate::system_file::replace_list(&self.root, self.kind.file, FORMAT, &file)
            .map_err(|e| KeyRingError::Io(self.kind.file, e))
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
        let store = KeyRing::open(Arc::clone(&root), &APP_PASSWORDS).unwrap();
        let (info, pw) = store.create(&alice, "phone").unwrap();
        assert_eq!(pw.len(), 26 + 5, "{pw}");
        assert!(store.check(&alice, &pw));
        assert!(!store.check(&bob, &pw), "another account's password");
        assert!(!store.check(&alice, "abcde-fghij-klmno-pqrst-uvwxy-z"));
        assert!(store.create(&alice, "  ").is_err());
        assert!(store.list(Some(&alice))[0].last_used.is_some());
        assert!(store.list(Some(&bob)).is_empty());
        // Kept across a restart, the password itself not stored.
        let again = KeyRing::open(Arc::clone(&root), &APP_PASSWORDS).unwrap();
        assert!(again.check(&alice, &pw));
        let text =
            std::fs::read_to_string(tmp.path().join(".qsfs").join(APP_PASSWORDS.file)).unwrap();
        assert!(!text.contains(&pw) && text.contains("phone"));
        // Bob cannot revoke it; alice can; a later account of the same name gets none.
        assert!(matches!(
            again.revoke(Some(&bob), Some(&info.id)),
            Err(KeyRingError::NotFound(_))
        ));
        assert!(!again.check(&user("alice", 9), &pw));
        assert_eq!(again.revoke(Some(&alice), Some(&info.id)).unwrap(), 1);
        assert!(!again.check(&alice, &pw));
        assert_eq!(again.revoke(Some(&alice), None).unwrap(), 0);
    }

    #[test]
    fn access_keys_keep_their_secret_apart_from_app_passwords() {
        let tmp = tempfile::tempdir().unwrap();
        let root =
            Arc::new(Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap());
        let alice = user("alice", 7);
        let keys = KeyRing::open(Arc::clone(&root), &ACCESS_KEYS).unwrap();
        let (info, secret) = keys.create(&alice, "restic").unwrap();
        assert!(
            info.id.starts_with("QS") && info.id.len() == 20,
            "{}",
            info.id
        );
        assert_eq!(secret.len(), 40);
        let owner = keys.secret_of(&info.id).unwrap();
        assert_eq!((owner.user.as_str(), owner.uid), ("alice", 7));
        assert_eq!(owner.secret, secret);
        assert!(keys.list(Some(&alice))[0].last_used.is_some());
        // A secret is no password: the WebDAV check never takes it.
        assert!(!keys.check(&alice, &secret));
        let passwords = KeyRing::open(Arc::clone(&root), &APP_PASSWORDS).unwrap();
        assert!(passwords.list(None).is_empty());
        // Kept across a restart, in its own file, readable by the service only.
        let again = KeyRing::open(Arc::clone(&root), &ACCESS_KEYS).unwrap();
        assert_eq!(again.secret_of(&info.id).unwrap().secret, secret);
        let file = tmp.path().join(".qsfs").join(ACCESS_KEYS.file);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(again.revoke(Some(&alice), None).unwrap(), 1);
        assert!(again.secret_of(&info.id).is_none());
    }
}
