//! Shared folders: folders an admin makes for several accounts, each member with read or
//! read-write access. The files live at `shared/NAME` on the drive (admins see them there);
//! members reach a folder as a space of its own (the `space=NAME` query of every API
//! request, see [`crate::auth`]), not counted against anyone's quota, with a trash of its
//! own. The list lives in `.qsfs/shared.json` beside the accounts, written through
//! ([`crate::system_file`]). A member is named with its account's uid, so a later account
//! of the same name is no member.
//!
//! Owns: the list's format and the access rules. Must not touch: HTTP.

use std::sync::{Arc, Mutex, MutexGuard};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use crate::users::{valid_name, User, SYSTEM_DIR};

const FILE: &str = "shared.json";
const FORMAT: u32 = 1;
/// Where shared folders live on the drive.
pub const SHARED: &str = "shared";
/// Most shared folders, and most members of one.
pub const MAX_FOLDERS: usize = 1000;
pub const MAX_MEMBERS: usize = 1000;

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub uid: u64,
    pub access: Access,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SharedFolder {
    pub name: String,
    pub members: Vec<Member>,
}

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("shared folder names follow the rules of account names")]
    BadName,
    #[error("no shared folder {0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{SYSTEM_DIR}/{FILE}: {0}")]
    Io(std::io::Error),
    #[error("{SYSTEM_DIR}/{FILE}: {0}")]
    List(#[from] crate::system_file::ListError),
}

#[derive(Serialize, Deserialize)]
struct SharedFile {
    folders: Vec<SharedFolder>,
}

/// The shared folders of one served folder, loaded at start, written through.
pub struct Shared {
    root: Arc<Dir>,
    list: Mutex<Vec<SharedFolder>>,
}

impl Shared {
    pub fn open(root: Arc<Dir>) -> Result<Shared, SharedError> {
        let list = crate::system_file::read_list::<SharedFile>(&root, FILE, FORMAT)?
            .map(|f| f.folders)
            .unwrap_or_default();
        Ok(Shared {
            root,
            list: Mutex::new(list),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SharedFolder>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every shared folder, by name.
    pub fn list(&self) -> Vec<SharedFolder> {
        let mut out = self.lock().clone();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The folders `user` is a member of, with its access.
    pub fn of(&self, user: &User) -> Vec<(String, Access)> {
        self.list()
            .into_iter()
            .filter_map(|f| {
                let access = f
                    .members
                    .iter()
                    .find(|m| m.name == user.name && m.uid == user.uid)?
                    .access;
                Some((f.name, access))
            })
            .collect()
    }

    /// `user`'s access to folder `name` (`None`: no member, or no such folder).
    pub fn access(&self, name: &str, user: &User) -> Option<Access> {
        self.of(user)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.lock().iter().any(|f| f.name == name)
    }

    /// Make folder `name` with these members, or give an existing one these members
    /// (blocking: makes `shared/NAME` and writes the list).
    pub fn set(&self, name: &str, members: Vec<Member>) -> Result<(), SharedError> {
        if !valid_name(name) {
            return Err(SharedError::BadName);
        }
        if members.len() > MAX_MEMBERS {
            return Err(SharedError::Refused(format!(
                "at most {MAX_MEMBERS} members"
            )));
        }
        self.root
            .create_dir_all(format!("{SHARED}/{name}"))
            .map_err(SharedError::Io)?;
        self.change(|list| {
            let folder = SharedFolder {
                name: name.into(),
                members,
            };
            let count = list.len();
            match list.iter_mut().find(|f| f.name == name) {
                Some(f) => *f = folder,
                None if count >= MAX_FOLDERS => {
                    return Err(SharedError::Refused(format!(
                        "at most {MAX_FOLDERS} shared folders"
                    )))
                }
                None => list.push(folder),
            }
            Ok(())
        })
    }

    /// Forget folder `name` (its files stay at `shared/NAME`, for admins).
    pub fn remove(&self, name: &str) -> Result<(), SharedError> {
        self.change(|list| {
            let i = list
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| SharedError::NotFound(name.into()))?;
            list.remove(i);
            Ok(())
        })
    }

    fn change(
        &self,
        f: impl FnOnce(&mut Vec<SharedFolder>) -> Result<(), SharedError>,
    ) -> Result<(), SharedError> {
        let mut list = self.lock();
        let mut next = list.clone();
        f(&mut next)?;
        let file = SharedFile { folders: next };
        crate::system_file::replace_list(&self.root, FILE, FORMAT, &file)
            .map_err(SharedError::Io)?;
        let next = file.folders;
        *list = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_by_uid_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let root =
            Arc::new(Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap());
        let users = crate::users::Users::open(Arc::clone(&root)).unwrap();
        users.add("alice", "alice's password", false, None).unwrap();
        users.add("bob", "bob's password", false, None).unwrap();
        let (alice, bob) = (users.get("alice").unwrap(), users.get("bob").unwrap());
        let shared = Shared::open(Arc::clone(&root)).unwrap();
        let member = |u: &User, access| Member {
            name: u.name.clone(),
            uid: u.uid,
            access,
        };
        shared
            .set(
                "team",
                vec![member(&alice, Access::Write), member(&bob, Access::Read)],
            )
            .unwrap();
        assert!(tmp.path().join("shared/team").is_dir());
        assert!(matches!(
            shared.set("../x", vec![]),
            Err(SharedError::BadName)
        ));
        let shared = Shared::open(Arc::clone(&root)).unwrap();
        assert_eq!(shared.access("team", &alice), Some(Access::Write));
        assert_eq!(shared.access("team", &bob), Some(Access::Read));
        // Bob's account made again: no member any more.
        users.remove("bob").unwrap();
        users.add("bob", "bob's password", false, None).unwrap();
        assert_eq!(shared.access("team", &users.get("bob").unwrap()), None);
        shared.remove("team").unwrap();
        assert_eq!(shared.access("team", &alice), None);
        assert!(tmp.path().join("shared/team").is_dir(), "the files stay");
    }
}
