//! Share links: a file or a folder opened to anyone holding its link, read-only (browse,
//! preview, download, zip) or upload-only (a "file drop"), with an optional expiry,
//! password (Argon2id, as accounts) and limit on uses (downloads or uploads), revocable by
//! its owner or an admin. The links are kept in `.qsfs/shares.json` beside the accounts, so
//! they are dispersed and restored with the filesystem; every change (a use counted too)
//! is written through before it is acknowledged ([`crate::system_file`]).
//!
//! A link names its target by the drive path and its owner's party; the web side opens the
//! owner's folder first and the target from it ([`crate::share_api`]), so a link never
//! reaches past what its owner may see, nor past its own folder (symbolic links included).
//!
//! Owns: the file's format, link ids, password checks, counting uses. Must not touch: HTTP.

use std::sync::{Arc, Mutex, MutexGuard};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use crate::users::SYSTEM_DIR;

const FILE: &str = "shares.json";
const FORMAT: u32 = 1;
/// Most links one party may keep (bounds the file and the memory it takes).
pub const MAX_PER_OWNER: usize = 1000;

/// What a link lets its visitors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareKind {
    /// Browse, preview and download.
    Read,
    /// Upload files into the folder, nothing else (no listing).
    Drop,
}

/// One link as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Share {
    /// The secret in the link (`/s/ID`): 128 random bits, URL-safe.
    pub id: String,
    /// The party that made it: an account name, or `@token` for the access token's admin.
    pub owner: String,
    /// The owner account's uid (0 for the access token's admin): a later account of the
    /// same name does not revive the link.
    pub owner_uid: u64,
    /// The target's path on the drive (`/home/alice/photos`).
    pub path: String,
    /// The target is a folder (else a single file).
    pub dir: bool,
    pub kind: ShareKind,
    /// Seconds since the epoch.
    pub created: u64,
    pub expires: Option<u64>,
    /// The PHC string of the link's password, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    /// Downloads (read links) or uploads (drops) so far.
    pub uses: u64,
    pub max_uses: Option<u64>,
}

impl Share {
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Why the link no longer opens, if it does not.
    pub fn closed(&self, now: u64) -> Option<&'static str> {
        if self.expires.is_some_and(|e| now >= e) {
            Some("this link has expired")
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            Some("this link has been used as many times as its owner allowed")
        } else {
            None
        }
    }
}

/// A link to make.
pub struct NewShare {
    pub owner: String,
    pub owner_uid: u64,
    pub path: String,
    pub dir: bool,
    pub kind: ShareKind,
    pub expires: Option<u64>,
    pub password: Option<String>,
    pub max_uses: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SharesError {
    #[error("{SYSTEM_DIR}/{FILE}: {0}")]
    List(#[from] crate::system_file::ListError),
    #[error("no such link")]
    NotFound,
    #[error("{0}")]
    Refused(String),
    #[error("{SYSTEM_DIR}/{FILE}: {0}")]
    Io(std::io::Error),
}

#[derive(Serialize, Deserialize)]
struct SharesFile {
    shares: Vec<Share>,
}

/// The links of one served folder, loaded at start, written through on every change.
pub struct Shares {
    root: Arc<Dir>,
    list: Mutex<Vec<Share>>,
}

/// A fresh link id: 16 random bytes, URL-safe base64 without padding (22 characters).
fn new_id() -> String {
    use rand::RngCore;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut bits = u128::from_be_bytes(raw);
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

impl Shares {
    pub fn open(root: Arc<Dir>) -> Result<Shares, SharesError> {
        let list = crate::system_file::read_list::<SharesFile>(&root, FILE, FORMAT)?
            .map(|f| f.shares)
            .unwrap_or_default();
        Ok(Shares {
            root,
            list: Mutex::new(list),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Share>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make a link (blocking: hashes its password, writes the file).
    pub fn create(&self, new: NewShare) -> Result<Share, SharesError> {
        if new.kind == ShareKind::Drop && !new.dir {
            return Err(SharesError::Refused(
                "a file drop is made for a folder".into(),
            ));
        }
        let password = match new.password.filter(|p| !p.is_empty()) {
            Some(p) => {
                Some(crate::users::hash(&p).map_err(|e| SharesError::Refused(e.to_string()))?)
            }
            None => None,
        };
        let share = Share {
            id: new_id(),
            owner: new.owner,
            owner_uid: new.owner_uid,
            path: new.path,
            dir: new.dir,
            kind: new.kind,
            created: crate::unix_now(),
            expires: new.expires,
            password,
            uses: 0,
            max_uses: new.max_uses,
        };
        self.change(|list| {
            if list.iter().filter(|s| s.owner == share.owner).count() >= MAX_PER_OWNER {
                return Err(SharesError::Refused(format!(
                    "at most {MAX_PER_OWNER} links each: revoke some first"
                )));
            }
            list.push(share.clone());
            Ok(())
        })?;
        Ok(share)
    }

    pub fn get(&self, id: &str) -> Option<Share> {
        self.lock().iter().find(|s| s.id == id).cloned()
    }

    /// The links of `owner`, or every link for `None`, newest first.
    pub fn list(&self, owner: Option<&str>) -> Vec<Share> {
        let mut out: Vec<Share> = self
            .lock()
            .iter()
            .filter(|s| owner.is_none_or(|o| s.owner == o))
            .cloned()
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        out
    }

    /// Revoke link `id`; only its owner may, or anyone for `owner == None` (an admin).
    pub fn revoke(&self, id: &str, owner: Option<&str>) -> Result<(), SharesError> {
        self.change(|list| {
            let i = list
                .iter()
                .position(|s| s.id == id && owner.is_none_or(|o| s.owner == o))
                .ok_or(SharesError::NotFound)?;
            list.remove(i);
            Ok(())
        })
    }

    /// Revoke every link of `owner` (its account is gone). How many there were.
    pub fn revoke_all_of(&self, owner: &str) -> Result<usize, SharesError> {
        let mut n = 0;
        self.change(|list| {
            let before = list.len();
            list.retain(|s| s.owner != owner);
            n = before - list.len();
            Ok(())
        })?;
        Ok(n)
    }

    /// Whether `password` opens link `share` (blocking: an Argon2 verification).
    pub fn unlocks(share: &Share, password: &str) -> bool {
        share
            .password
            .as_deref()
            .is_none_or(|phc| crate::users::matches(password, phc))
    }

    /// Count one use of link `id`, refused when the link is closed (expired, used up).
    /// Written through before it returns.
    pub fn take_use(&self, id: &str) -> Result<(), SharesError> {
        let now = crate::unix_now();
        self.change(|list| {
            let s = list
                .iter_mut()
                .find(|s| s.id == id)
                .ok_or(SharesError::NotFound)?;
            if let Some(why) = s.closed(now) {
                return Err(SharesError::Refused(why.into()));
            }
            s.uses += 1;
            Ok(())
        })
    }

    /// Give back a use taken for a request that then failed.
    pub fn give_back(&self, id: &str) {
        let result = self.change(|list| {
            if let Some(s) = list.iter_mut().find(|s| s.id == id) {
                s.uses = s.uses.saturating_sub(1);
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "giving back a share link's use");
        }
    }

    /// Apply `f` to a copy of the list, store the copy, keep it.
    fn change(
        &self,
        f: impl FnOnce(&mut Vec<Share>) -> Result<(), SharesError>,
    ) -> Result<(), SharesError> {
        let mut list = self.lock();
        let mut next = list.clone();
        f(&mut next)?;
        let file = SharesFile { shares: next };
        crate::system_file::replace_list(&self.root, FILE, FORMAT, &file)
            .map_err(SharesError::Io)?;
        let next = file.shares;
        *list = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Shares {
        let root = Dir::open_ambient_dir(dir, cap_std::ambient_authority()).unwrap();
        Shares::open(Arc::new(root)).unwrap()
    }

    fn new(owner: &str, password: Option<&str>, max_uses: Option<u64>) -> NewShare {
        NewShare {
            owner: owner.into(),
            owner_uid: 7,
            path: "/home/alice/photos".into(),
            dir: true,
            kind: ShareKind::Read,
            expires: None,
            password: password.map(Into::into),
            max_uses,
        }
    }

    #[test]
    fn links_survive_a_reopen_with_their_counts_and_passwords() {
        let tmp = tempfile::tempdir().unwrap();
        let shares = open(tmp.path());
        let a = shares
            .create(new("alice", Some("link password"), Some(2)))
            .unwrap();
        let b = shares.create(new("bob", None, None)).unwrap();
        assert_eq!(a.id.len(), 22);
        assert_ne!(a.id, b.id);
        shares.take_use(&a.id).unwrap();
        shares.take_use(&a.id).unwrap();
        assert!(
            matches!(shares.take_use(&a.id), Err(SharesError::Refused(_))),
            "used up"
        );
        shares.give_back(&a.id);
        let shares = open(tmp.path());
        let a = shares.get(&a.id).unwrap();
        assert_eq!(a.uses, 1);
        assert!(Shares::unlocks(&a, "link password"));
        assert!(!Shares::unlocks(&a, "wrong password"));
        assert!(Shares::unlocks(&shares.get(&b.id).unwrap(), ""));
        let raw = std::fs::read_to_string(tmp.path().join(".qsfs/shares.json")).unwrap();
        assert!(!raw.contains("link password") && raw.contains("$argon2id$"));
        assert_eq!(shares.list(Some("alice")).len(), 1);
        assert_eq!(shares.list(None).len(), 2);
    }

    #[test]
    fn only_the_owner_or_an_admin_revokes() {
        let tmp = tempfile::tempdir().unwrap();
        let shares = open(tmp.path());
        let a = shares.create(new("alice", None, None)).unwrap();
        assert!(matches!(
            shares.revoke(&a.id, Some("bob")),
            Err(SharesError::NotFound)
        ));
        shares.revoke(&a.id, Some("alice")).unwrap();
        assert!(shares.get(&a.id).is_none());
        let b = shares.create(new("alice", None, None)).unwrap();
        shares.revoke(&b.id, None).unwrap();
        shares.create(new("alice", None, None)).unwrap();
        shares.create(new("carol", None, None)).unwrap();
        assert_eq!(shares.revoke_all_of("alice").unwrap(), 1);
        assert_eq!(shares.list(None).len(), 1);
    }

    #[test]
    fn expired_links_are_closed_and_drops_need_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let shares = open(tmp.path());
        let mut n = new("alice", None, None);
        n.expires = Some(crate::unix_now() - 1);
        let s = shares.create(n).unwrap();
        assert!(s.closed(crate::unix_now()).is_some());
        assert!(matches!(
            shares.take_use(&s.id),
            Err(SharesError::Refused(_))
        ));
        let mut n = new("alice", None, None);
        n.kind = ShareKind::Drop;
        n.dir = false;
        assert!(matches!(shares.create(n), Err(SharesError::Refused(_))));
    }
}
