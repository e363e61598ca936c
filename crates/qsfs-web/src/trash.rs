//! The trash: what a caller deletes from the web UI is moved (renamed, never copied) into
//! their trash, `/.qsfs/trash/PARTY/ID/item` beside an `info.json` saying where it was,
//! when, and how large. It is kept [`Trash::days`] days, then removed for good; the owner
//! lists it, restores an item to where it was (or elsewhere in their folder), or removes
//! items for good. Everyone has a trash of their own; it lives outside their folder, under
//! the drive's own folder, which no path of the API reaches.
//!
//! Owns: the trash's layout and expiry. Must not touch: accounts, sessions.

use std::io::Write;
use std::sync::Arc;

use axum::http::StatusCode;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::paths::RelPath;

const TRASH: &str = ".qsfs/trash";
const ITEM: &str = "item";
const INFO: &str = "info.json";

/// One item in a trash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrashItem {
    pub id: String,
    /// Where it was, in its owner's folder, as the API names paths ([`crate::paths`]).
    pub path: String,
    /// The same for people (U+FFFD for bytes that are not UTF-8; empty in items of older
    /// versions, whose `path` is that).
    #[serde(default)]
    pub shown: String,
    /// `file`, `dir` or `symlink`.
    pub kind: String,
    /// Bytes of its regular files.
    pub size: u64,
    /// Unix seconds.
    pub deleted: u64,
}

/// The trashes of one served folder.
pub struct Trash {
    root: Arc<Dir>,
    /// Days an item is kept.
    pub days: u64,
}

fn internal(what: &str, e: std::io::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("trash: {what}: {e}"),
    )
}

impl Trash {
    pub fn new(root: Arc<Dir>, days: u64) -> Trash {
        Trash { root, days }
    }

    /// The trash folder of `party`, made if missing.
    fn of(&self, party: &str) -> Result<Dir, ApiError> {
        let path = format!("{TRASH}/{party}");
        self.root
            .create_dir_all(&path)
            .and_then(|()| self.root.open_dir(&path))
            .map_err(|e| internal("opening", e))
    }

    /// Move `rel` of `from` (the caller's folder) into `party`'s trash.
    pub fn put(&self, party: &str, from: &Dir, rel: &RelPath) -> Result<TrashItem, ApiError> {
        let shown = rel.display();
        let m = from
            .symlink_metadata(rel.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        let size = if m.is_dir() {
            let d = from
                .open_dir(rel.as_path())
                .map_err(|e| ApiError::io(&shown, e))?;
            crate::quota::bytes_under(&d).map_err(|e| ApiError::io(&shown, e))?
        } else if m.is_file() {
            m.len()
        } else {
            0
        };
        let mut suffix = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
        let deleted = crate::unix_now();
        let item = TrashItem {
            id: format!("{deleted}-{}", hex::encode(suffix)),
            path: rel.to_api(),
            shown: shown.clone(),
            kind: crate::files::kind_of(&m).to_string(),
            size,
            deleted,
        };
        let trash = self.of(party)?;
        trash
            .create_dir(&item.id)
            .map_err(|e| internal("making an entry", e))?;
        // The description first: an entry without its item is only noise, an item without
        // a description could not be restored.
        let info = serde_json::to_vec(&item).map_err(|e| internal("describing", e.into()))?;
        let mut f = trash
            .create(format!("{}/{INFO}", item.id))
            .map_err(|e| internal("describing", e))?;
        f.write_all(&info)
            .and_then(|()| f.sync_all())
            .map_err(|e| internal("describing", e))?;
        from.rename(rel.as_path(), &trash, format!("{}/{ITEM}", item.id))
            .map_err(|e| ApiError::io(&shown, e))?;
        Ok(item)
    }

    /// `party`'s trash, newest first (items past their time are removed first).
    pub fn list(&self, party: &str) -> Result<Vec<TrashItem>, ApiError> {
        // Listing makes nothing: a party that never deleted anything has no trash folder.
        let trash = match self.root.open_dir(format!("{TRASH}/{party}")) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(internal("opening", e)),
        };
        let mut items = Vec::new();
        for e in trash.entries().map_err(|e| internal("listing", e))? {
            let Ok(e) = e else { continue };
            let id = e.file_name().to_string_lossy().into_owned();
            let Some(item) = read_info(&trash, &id) else {
                continue;
            };
            if self.expired(&item) {
                let _ = trash.remove_dir_all(&id);
            } else {
                items.push(item);
            }
        }
        items.sort_by(|a, b| b.deleted.cmp(&a.deleted).then(b.id.cmp(&a.id)));
        Ok(items)
    }

    fn expired(&self, item: &TrashItem) -> bool {
        crate::unix_now().saturating_sub(item.deleted) > self.days.saturating_mul(86_400)
    }

    /// Put item `id` of `party`'s trash back at `to` (default: where it was) in `into` (the
    /// caller's folder). 409 when something is there already.
    pub fn restore(
        &self,
        party: &str,
        id: &str,
        into: &Dir,
        to: Option<RelPath>,
    ) -> Result<String, ApiError> {
        let trash = self.of(party)?;
        let item = valid_id(id)
            .then(|| read_info(&trash, id))
            .flatten()
            .ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("{id}: not in the trash"))
            })?;
        let to = match to {
            Some(to) => to,
            None => RelPath::parse(&item.path)?,
        };
        let shown = to.display();
        if to.is_root() {
            return Err(ApiError::bad_request("an item needs a name to go back to"));
        }
        if into.symlink_metadata(to.as_path()).is_ok() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{shown}: already exists; restore it elsewhere"),
            ));
        }
        let parent = to.parent();
        into.create_dir_all(parent.as_path())
            .map_err(|e| ApiError::io(&parent.display(), e))?;
        trash
            .rename(format!("{id}/{ITEM}"), into, to.as_path())
            .map_err(|e| ApiError::io(&shown, e))?;
        let _ = trash.remove_dir_all(id);
        Ok(shown)
    }

    /// Remove item `id` (every item with `None`) of `party`'s trash for good; how many went.
    pub fn remove(&self, party: &str, id: Option<&str>) -> Result<usize, ApiError> {
        let trash = self.of(party)?;
        let ids: Vec<String> = match id {
            Some(id) if valid_id(id) && read_info(&trash, id).is_some() => vec![id.to_string()],
            Some(id) => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("{id}: not in the trash"),
                ))
            }
            None => self.list(party)?.into_iter().map(|i| i.id).collect(),
        };
        for id in &ids {
            trash
                .remove_dir_all(id)
                .map_err(|e| internal("removing", e))?;
        }
        Ok(ids.len())
    }

    /// Remove what is past its time in every trash.
    pub fn purge(&self) {
        let Ok(parties) = self.root.read_dir(TRASH) else {
            return;
        };
        for p in parties.flatten() {
            let _ = self.list(&p.file_name().to_string_lossy());
        }
    }
}

/// Ids are made here (`SECONDS-HEX`): anything else (a path, `..`) is not one.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn read_info(trash: &Dir, id: &str) -> Option<TrashItem> {
    let bytes = trash.read(format!("{id}/{INFO}")).ok()?;
    let item: TrashItem = serde_json::from_slice(&bytes).ok()?;
    (item.id == id).then_some(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_go_to_the_trash_come_back_and_expire() {
        let tmp = tempfile::tempdir().unwrap();
        let root =
            Arc::new(Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap());
        std::fs::create_dir_all(tmp.path().join("home/a/docs/sub")).unwrap();
        std::fs::write(tmp.path().join("home/a/docs/sub/x"), [1u8; 100]).unwrap();
        std::fs::write(tmp.path().join("home/a/f"), [2u8; 7]).unwrap();
        let home = root.open_dir("home/a").unwrap();
        let trash = Trash::new(Arc::clone(&root), 30);

        let docs = trash
            .put("a", &home, &RelPath::parse("/docs").unwrap())
            .unwrap();
        assert_eq!((docs.kind.as_str(), docs.size), ("dir", 100));
        let f = trash
            .put("a", &home, &RelPath::parse("/f").unwrap())
            .unwrap();
        assert!(!tmp.path().join("home/a/docs").exists());
        assert_eq!(trash.list("a").unwrap().len(), 2);
        assert!(trash.list("b").unwrap().is_empty(), "a trash of one's own");

        // Back where it was; a name taken is a conflict; elsewhere works.
        trash.restore("a", &docs.id, &home, None).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("home/a/docs/sub/x")).unwrap(),
            [1u8; 100]
        );
        std::fs::write(tmp.path().join("home/a/f"), b"new").unwrap();
        let e = trash.restore("a", &f.id, &home, None).unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT);
        trash
            .restore("a", &f.id, &home, Some(RelPath::parse("/old/f").unwrap()))
            .unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("home/a/old/f")).unwrap(),
            [2u8; 7]
        );
        assert!(trash.list("a").unwrap().is_empty());
        assert_eq!(
            trash
                .restore("a", "../../x", &home, None)
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );

        // Expiry.
        trash
            .put("a", &home, &RelPath::parse("/old").unwrap())
            .unwrap();
        let short = Trash::new(root, 0);
        let mut info: TrashItem = serde_json::from_slice(
            &std::fs::read(
                std::fs::read_dir(tmp.path().join(".qsfs/trash/a"))
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path()
                    .join(INFO),
            )
            .unwrap(),
        )
        .unwrap();
        info.deleted -= 2 * 86_400;
        let entry = tmp.path().join(".qsfs/trash/a").join(&info.id).join(INFO);
        std::fs::write(entry, serde_json::to_vec(&info).unwrap()).unwrap();
        short.purge();
        assert!(short.list("a").unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(tmp.path().join(".qsfs/trash/a"))
                .unwrap()
                .count(),
            0
        );
    }
}
