//! Listings in key order, read from the folders themselves.
//!
//! S3 lists keys in byte order, and a folder's key is its name and a `/`; so each folder's
//! entries are sorted by that key (a folder `a` as `a/`, after a file `a-b`, before `a0`),
//! and a walk down the folders yields every key in order. The walk starts in the deepest
//! folder the prefix names, skips whole folders that lie before the marker
//! (`start-after`, the continuation token), and with the delimiter `/` reports a folder as
//! one common prefix without entering it: a page costs the folders on its way, not the
//! bucket. An empty folder is listed as its own key (`a/`), as s3fs expects.

use std::io;
use std::time::SystemTime;

use cap_std::fs::Dir;
use s3s::S3Result;

use crate::io_error;
use crate::names::{object_path, Target};
use crate::objects::{need_bucket, EMPTY_MD5};

/// The most keys one page gives (S3's limit).
pub const MAX_KEYS: usize = 1000;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Keys up to and including this one are left out.
    pub after: String,
    pub max: usize,
}

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
    pub etag: String,
}

/// One page.
#[derive(Debug, Default)]
pub struct Page {
    pub objects: Vec<Item>,
    pub prefixes: Vec<String>,
    /// More keys follow.
    pub truncated: bool,
    /// The last key or prefix given: where the next page starts.
    pub last: Option<String>,
}

struct Walk<'a> {
    q: &'a Query,
    page: Page,
    done: bool,
}

impl Walk<'_> {
    fn full(&mut self) -> bool {
        if self.page.objects.len() + self.page.prefixes.len() >= self.q.max {
            self.page.truncated = true;
            self.done = true;
        }
        self.done
    }

    fn object(&mut self, item: Item) {
        if !self.full() {
            self.page.last = Some(item.key.clone());
            self.page.objects.push(item);
        }
    }

    fn prefix(&mut self, prefix: &str) {
        if self.page.prefixes.last().is_some_and(|p| p == prefix) || prefix <= self.q.after.as_str()
        {
            return;
        }
        if !self.full() {
            self.page.last = Some(prefix.to_string());
            self.page.prefixes.push(prefix.to_string());
        }
    }

    /// The common prefix `key` falls under, if the query has a delimiter and `key` has it
    /// past the prefix.
    fn common_prefix<'k>(&self, key: &'k str) -> Option<&'k str> {
        let d = self.q.delimiter.as_deref().filter(|d| !d.is_empty())?;
        let rest = key.strip_prefix(self.q.prefix.as_str())?;
        let i = rest.find(d)?;
        Some(&key[..self.q.prefix.len() + i + d.len()])
    }

    /// List folder `dir`, whose keys start with `base`: whether it has any entry shown.
    fn folder(&mut self, dir: &Dir, base: &str) -> io::Result<bool> {
        let mut entries = Vec::new();
        for e in dir.entries()? {
            let e = e?;
            let name = e.file_name();
            // A name that is no UTF-8 cannot be a key; uploads in progress are not objects.
            let Some(name) = name.to_str() else { continue };
            if qsfs_web::landing::is_temporary(name) {
                continue;
            }
            let kind = e.file_type()?;
            if kind.is_dir() {
                entries.push((format!("{base}{name}/"), name.to_string(), true));
            } else if kind.is_file() {
                entries.push((format!("{base}{name}"), name.to_string(), false));
            }
        }
        let any = !entries.is_empty();
        entries.sort();
        let (prefix, after) = (self.q.prefix.clone(), self.q.after.clone());
        for (key, name, is_dir) in entries {
            if self.done {
                break;
            }
            let under_prefix = key.starts_with(&prefix);
            if !(under_prefix || is_dir && prefix.starts_with(&key)) {
                continue;
            }
            if under_prefix {
                if let Some(cp) = self.common_prefix(&key) {
                    // Everything under a folder shares its common prefix: no need to enter.
                    self.prefix(cp);
                    continue;
                }
            }
            if is_dir {
                // Every key in the folder sorts before the marker.
                if key.as_str() <= after.as_str() && !after.starts_with(&key) {
                    continue;
                }
                let sub = dir.open_dir(&name)?;
                let shown = self.folder(&sub, &key)?;
                if !shown && under_prefix && key.as_str() > after.as_str() {
                    let modified = sub.dir_metadata()?.modified()?.into_std();
                    self.object(Item {
                        key,
                        size: 0,
                        modified,
                        etag: EMPTY_MD5.to_string(),
                    });
                }
            } else if key.as_str() > after.as_str() {
                let Ok(file) = dir.open(&name) else { continue };
                let file = file.into_std();
                let m = file.metadata()?;
                let meta = crate::meta::load(&file, &m);
                self.object(Item {
                    etag: crate::meta::etag(meta.as_ref(), &m),
                    key,
                    size: m.len(),
                    modified: m.modified()?,
                });
            }
        }
        Ok(any)
    }
}

/// A page of bucket `bucket` (blocking).
pub fn list(root: &Dir, bucket: &str, q: &Query) -> S3Result<Page> {
    let top = need_bucket(root, bucket)?;
    // Start in the deepest folder the prefix names whole.
    let base = match q.prefix.rfind('/') {
        Some(i) => &q.prefix[..=i],
        None => "",
    };
    let start = if base.is_empty() {
        top
    } else {
        match object_path(bucket, base) {
            Ok(Target::Folder(p)) => p,
            // No such folder can exist: nothing has this prefix.
            _ => return Ok(Page::default()),
        }
    };
    let dir = match root.open_dir(start.as_path()) {
        Ok(d) => d,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            return Ok(Page::default())
        }
        Err(e) => return Err(io_error(&start.display(), &e)),
    };
    let mut walk = Walk {
        q,
        page: Page::default(),
        done: false,
    };
    if q.max > 0 {
        walk.folder(&dir, base)
            .map_err(|e| io_error(&format!("listing {bucket}"), &e))?;
    }
    Ok(walk.page)
}

/// Percent-encoding of keys for `encoding-type=url`: all but unreserved characters and `/`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        for p in paths {
            let full = tmp.path().join("b").join(p);
            if p.ends_with('/') {
                std::fs::create_dir_all(&full).unwrap();
            } else {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, p.as_bytes()).unwrap();
            }
        }
        std::fs::create_dir_all(tmp.path().join("b")).unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        (tmp, dir)
    }

    fn keys(root: &Dir, q: &Query) -> (Vec<String>, Vec<String>, bool) {
        let p = list(root, "b", q).unwrap();
        (
            p.objects.into_iter().map(|i| i.key).collect(),
            p.prefixes,
            p.truncated,
        )
    }

    fn all(prefix: &str, delimiter: Option<&str>) -> Query {
        Query {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            after: String::new(),
            max: MAX_KEYS,
        }
    }

    #[test]
    fn keys_come_in_byte_order_with_folders_as_prefixes() {
        let (_t, root) = tree(&[
            "a/x",
            "a-b",
            "a0",
            "a/y/z",
            "c",
            "empty/",
            ".qsfs-upload-1.part",
        ]);
        let (objects, prefixes, more) = keys(&root, &all("", None));
        assert_eq!(objects, ["a-b", "a/x", "a/y/z", "a0", "c", "empty/"]);
        assert!(prefixes.is_empty() && !more);
        let (objects, prefixes, _) = keys(&root, &all("", Some("/")));
        assert_eq!(objects, ["a-b", "a0", "c"]);
        assert_eq!(prefixes, ["a/", "empty/"]);
        let (objects, prefixes, _) = keys(&root, &all("a/", Some("/")));
        assert_eq!(
            (objects, prefixes),
            (vec!["a/x".to_string()], vec!["a/y/".to_string()])
        );
        let (objects, _, _) = keys(&root, &all("a/y", None));
        assert_eq!(objects, ["a/y/z"]);
        let (objects, _, _) = keys(&root, &all("nothing/here/", None));
        assert!(objects.is_empty());
        // Another delimiter groups by it.
        let (objects, prefixes, _) = keys(&root, &all("", Some("-")));
        assert_eq!(prefixes, ["a-"]);
        assert!(!objects.contains(&"a-b".to_string()));
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let mut names: Vec<String> = (0..57).map(|i| format!("d{}/f{i:03}", i % 5)).collect();
        names.push("top".into());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_t, root) = tree(&refs);
        for delimiter in [None, Some("/")] {
            let mut q = all("", delimiter);
            q.max = 7;
            let mut seen = Vec::new();
            loop {
                let p = list(&root, "b", &q).unwrap();
                seen.extend(p.objects.iter().map(|i| i.key.clone()));
                seen.extend(p.prefixes.iter().cloned());
                if !p.truncated {
                    break;
                }
                q.after = p.last.unwrap();
            }
            let mut want: Vec<String> = match delimiter {
                None => names.clone(),
                Some(_) => (0..5)
                    .map(|i| format!("d{i}/"))
                    .chain(["top".to_string()])
                    .collect(),
            };
            want.sort();
            let mut got = seen.clone();
            got.sort();
            assert_eq!(got, want, "{delimiter:?}");
        }
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(url_encode("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
    }
}
