//! The drive's accounts: a name, an Argon2id password hash, the admin flag and an optional
//! quota each, kept in `.qsfs/users.json` inside the served folder. The filesystem's own
//! storage carries the file, so it is dispersed with the data and `qsfs restore` brings it
//! back; the web API never shows or serves `.qsfs` ([`crate::paths`]). Each account has a
//! home folder, `home/NAME`; an admin sees the whole folder.
//!
//! Every change rewrites the file whole and atomically ([`crate::system_file`]) before it
//! is acknowledged: a crash leaves the old list or the new one. A
//! password change or a deletion moves the account's generation on, which ends its sessions.
//!
//! Owns: the file's format, name and password rules, hashing, home folders. Must not touch:
//! sessions and HTTP ([`crate::auth`]).

use std::sync::{Arc, Mutex, MutexGuard};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

/// The folder the drive keeps its own files in, at the top of the served folder.
pub const SYSTEM_DIR: &str = ".qsfs";
/// The account file's name in [`SYSTEM_DIR`].
const FILE: &str = "users.json";
/// Where home folders live.
pub const HOMES: &str = "home";
const FORMAT: u32 = 1;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (Argon2 takes any length; this bounds the work per login).
const MAX_PASSWORD: usize = 1024;
const MAX_NAME: usize = 32;

/// What can go wrong with an account change.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("user names are 1 to {MAX_NAME} of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")]
    BadName,
    #[error("passwords are {MIN_PASSWORD} to {MAX_PASSWORD} bytes")]
    BadPassword,
    #[error("user {0} exists already")]
    Exists(String),
    #[error("no user {0}")]
    NoSuchUser(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{SYSTEM_DIR}/{FILE} is damaged: {0}")]
    Corrupt(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UsersError {
    let what = what.into();
    move |source| UsersError::Io { what, source }
}

/// One account as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The PHC string of the password's Argon2id hash.
    hash: String,
    pub admin: bool,
    /// Bytes the account may keep in its home folder (`None`: no limit).
    pub quota: Option<u64>,
    /// Moves on with each password change: sessions opened before it end.
    pub generation: u64,
    /// Drawn when the account is made: what it made (share links) dies with it, even if an
    /// account of the same name comes later. 0 for accounts made before it existed.
    #[serde(default)]
    pub uid: u64,
}

#[cfg(test)]
impl User {
    /// An account with no usable password, for other modules' tests.
    pub(crate) fn for_tests(name: &str) -> User {
        User {
            name: name.to_string(),
            hash: String::new(),
            admin: false,
            quota: None,
            generation: 0,
            uid: 1,
        }
    }
}

/// One account as listed (no hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub admin: bool,
    pub quota: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct UsersFile {
    users: Vec<User>,
}

/// The accounts of one served folder, loaded at start and kept in memory; every change is
/// written through before it returns.
pub struct Users {
    root: Arc<Dir>,
    list: Mutex<Vec<User>>,
    /// Verified against when a name is unknown, so a wrong name costs the same time as a
    /// wrong password and the reply time does not tell which names exist (made on the first
    /// unknown name).
    decoy: std::sync::OnceLock<String>,
}

/// Whether `name` is a valid account name (it becomes a folder name).
pub fn valid_name(name: &str) -> bool {
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// The Argon2id PHC string of `password` (checked for length first).
pub(crate) fn hash(password: &str) -> Result<String, UsersError> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
        return Err(UsersError::BadPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Whether `password` is the one hashed in `phc`.
pub(crate) fn matches(password: &str, phc: &str) -> bool {
    password.len() <= MAX_PASSWORD
        && PasswordHash::new(phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
}

impl Users {
    /// The accounts kept under `root` (none yet if it has no account file).
    pub fn open(root: Arc<Dir>) -> Result<Users, UsersError> {
        let list = match crate::system_file::read_list::<UsersFile>(&root, FILE, FORMAT) {
            Ok(file) => file.map(|f| f.users).unwrap_or_default(),
            Err(crate::system_file::ListError::Corrupt(why)) => {
                return Err(UsersError::Corrupt(why))
            }
            Err(crate::system_file::ListError::Io(e)) => {
                return Err(io(format!("reading {SYSTEM_DIR}/{FILE}"))(e))
            }
        };
        Ok(Users {
            root,
            list: Mutex::new(list),
            decoy: std::sync::OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<User>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every account, by name.
    pub fn list(&self) -> Vec<UserInfo> {
        let mut out: Vec<UserInfo> = self
            .lock()
            .iter()
            .map(|u| UserInfo {
                name: u.name.clone(),
                admin: u.admin,
                quota: u.quota,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Add an account and its home folder (kept if it exists: a re-created account gets its
    /// files back).
    pub fn add(
        &self,
        name: &str,
        password: &str,
        admin: bool,
        quota: Option<u64>,
    ) -> Result<(), UsersError> {
        if !valid_name(name) {
            return Err(UsersError::BadName);
        }
        let hash = hash(password)?;
        let mut list = self.lock();
        if list.iter().any(|u| u.name == name) {
            return Err(UsersError::Exists(name.into()));
        }
        let home = format!("{HOMES}/{name}");
        self.root
            .create_dir_all(&home)
            .map_err(io(format!("creating {home}")))?;
        let mut next = list.clone();
        next.push(User {
            name: name.into(),
            hash,
            admin,
            quota,
            generation: 1,
            uid: rand::random::<u64>() | 1,
        });
        self.store(&next)?;
        *list = next;
        Ok(())
    }

    /// Delete an account (its home folder stays: the files are not the account's to take
    /// away). Its sessions end.
    pub fn remove(&self, name: &str) -> Result<(), UsersError> {
        self.change(name, |list, i| {
            list.remove(i);
            Ok(())
        })
    }

    /// Set a new password; the account's other sessions end. The account as it is now.
    pub fn set_password(&self, name: &str, password: &str) -> Result<User, UsersError> {
        let hash = hash(password)?;
        let mut changed = None;
        self.change(name, |list, i| {
            list[i].hash = hash;
            list[i].generation += 1;
            changed = Some(list[i].clone());
            Ok(())
        })?;
        changed.ok_or_else(|| UsersError::NoSuchUser(name.into()))
    }

    /// The account `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<User> {
        self.lock().iter().find(|u| u.name == name).cloned()
    }

    /// Apply `f` to a copy of the list with `name`'s index, store the copy, keep it.
    fn change(
        &self,
        name: &str,
        f: impl FnOnce(&mut Vec<User>, usize) -> Result<(), UsersError>,
    ) -> Result<(), UsersError> {
        let mut list = self.lock();
        let i = list
            .iter()
            .position(|u| u.name == name)
            .ok_or_else(|| UsersError::NoSuchUser(name.into()))?;
        let mut next = list.clone();
        f(&mut next, i)?;
        self.store(&next)?;
        *list = next;
        Ok(())
    }

    /// The account `name` if `password` is its password. Takes an Argon2 verification
    /// whether the name exists or not.
    pub fn verify(&self, name: &str, password: &str) -> Option<User> {
        let user = self.lock().iter().find(|u| u.name == name).cloned();
        match user {
            Some(u) if matches(password, &u.hash) => Some(u),
            Some(_) => None,
            None => {
                let decoy = self
                    .decoy
                    .get_or_init(|| hash("not a password of anyone").unwrap_or_default());
                let _ = matches(password, decoy);
                None
            }
        }
    }

    /// The account `name` if it still exists at `generation` (a session opened then is
    /// still good).
    pub fn current(&self, name: &str, generation: u64) -> Option<User> {
        self.lock()
            .iter()
            .find(|u| u.name == name && u.generation == generation)
            .cloned()
    }

    /// Write `list` as the account file, atomically and durably.
    fn store(&self, list: &[User]) -> Result<(), UsersError> {
        let file = UsersFile {
            users: list.to_vec(),
        };
        crate::system_file::replace_list(&self.root, FILE, FORMAT, &file)
            .map_err(io(format!("writing {SYSTEM_DIR}/{FILE}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Users {
        let root = Dir::open_ambient_dir(dir, cap_std::ambient_authority()).unwrap();
        Users::open(Arc::new(root)).unwrap()
    }

    #[test]
    fn accounts_survive_a_reopen_and_passwords_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let users = open(dir.path());
        users
            .add("alice", "correct horse", false, Some(1 << 30))
            .unwrap();
        users.add("bob", "battery staple", true, None).unwrap();
        assert!(dir.path().join("home/alice").is_dir());
        assert!(matches!(
            users.add("alice", "whatever12", false, None),
            Err(UsersError::Exists(_))
        ));
        let users = open(dir.path());
        assert_eq!(
            users
                .list()
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        let alice = users.verify("alice", "correct horse").unwrap();
        assert!(!alice.admin && alice.quota == Some(1 << 30));
        assert!(users.verify("alice", "wrong horse").is_none());
        assert!(users.verify("carol", "correct horse").is_none());
        let raw = std::fs::read_to_string(dir.path().join(SYSTEM_DIR).join(FILE)).unwrap();
        assert!(!raw.contains("correct horse") && raw.contains("$argon2id$"));
    }

    #[test]
    fn a_password_change_or_deletion_ends_the_old_generation() {
        let dir = tempfile::tempdir().unwrap();
        let users = open(dir.path());
        users.add("alice", "first password", false, None).unwrap();
        let g = users.verify("alice", "first password").unwrap().generation;
        assert!(users.current("alice", g).is_some());
        users.set_password("alice", "second password").unwrap();
        assert!(users.current("alice", g).is_none());
        assert!(users.verify("alice", "first password").is_none());
        let g2 = users.verify("alice", "second password").unwrap().generation;
        users.remove("alice").unwrap();
        assert!(users.current("alice", g2).is_none());
        assert!(dir.path().join("home/alice").is_dir(), "the files stay");
        assert!(matches!(
            users.remove("alice"),
            Err(UsersError::NoSuchUser(_))
        ));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        for bad in [
            "",
            "Alice",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "..",
            &"x".repeat(33),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        for good in ["alice", "a", "bob.smith", "x_1-2", "0day"] {
            assert!(valid_name(good), "{good:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let users = open(dir.path());
        assert!(matches!(
            users.add("a/b", "long enough", false, None),
            Err(UsersError::BadName)
        ));
        assert!(matches!(
            users.add("ok", "short", false, None),
            Err(UsersError::BadPassword)
        ));
        assert!(users.list().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(SYSTEM_DIR)).unwrap();
        std::fs::write(dir.path().join(SYSTEM_DIR).join(FILE), b"{not json").unwrap();
        let root = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        assert!(matches!(
            Users::open(Arc::new(root)),
            Err(UsersError::Corrupt(_))
        ));
    }
}
