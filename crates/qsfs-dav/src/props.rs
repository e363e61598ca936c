//! Dead properties (PROPPATCH): kept with their file or folder in one extended attribute,
//! `user.qsfs.dav`, a JSON list of properties (name, namespace, prefix, the value's XML),
//! so they move and are deleted with it, and reach the backends with the filesystem. A
//! PROPPATCH is applied whole or not at all (one attribute written once).

use std::io;
use std::path::Path;

use axum::http::StatusCode;
use cap_std::fs::Dir;
use dav_server::fs::DavProp;
use serde::{Deserialize, Serialize};
use xattr::FileExt;

const ATTR: &str = "user.qsfs.dav";
/// Largest attribute value Linux keeps (XATTR_SIZE_MAX).
const MAX_BYTES: usize = 64 * 1024;

#[derive(Serialize, Deserialize, Clone, PartialEq)]
struct Stored {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xml: Option<String>,
}

impl Stored {
    fn is(&self, p: &DavProp) -> bool {
        self.name == p.name && self.namespace == p.namespace
    }

    fn to_prop(&self, with_value: bool) -> DavProp {
        DavProp {
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            namespace: self.namespace.clone(),
            xml: self
                .xml
                .as_ref()
                .filter(|_| with_value)
                .map(|x| x.clone().into_bytes()),
        }
    }
}

/// The file or folder at `path`, opened only to reach its attributes (a FIFO or a device
/// is not opened: it has no properties).
fn open(root: &Dir, path: &Path) -> io::Result<std::fs::File> {
    let m = root.metadata(path)?;
    if m.is_dir() {
        Ok(root.open_dir(path)?.into_std_file())
    } else if m.is_file() {
        Ok(root.open(path)?.into_std())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

fn read(file: &std::fs::File) -> io::Result<Vec<Stored>> {
    match file.get_xattr(ATTR)? {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{ATTR}: {e}"))),
    }
}

fn write(file: &std::fs::File, props: &[Stored]) -> io::Result<()> {
    if props.is_empty() {
        return match file.remove_xattr(ATTR) {
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => Ok(()),
            r => r,
        };
    }
    let bytes = serde_json::to_vec(props).map_err(io::Error::other)?;
    if bytes.len() > MAX_BYTES {
        return Err(io::Error::from_raw_os_error(libc::E2BIG));
    }
    file.set_xattr(ATTR, &bytes)
}

/// Every dead property of `path` (values too when `with_values`).
pub fn all(root: &Dir, path: &Path, with_values: bool) -> io::Result<Vec<DavProp>> {
    let f = open(root, path)?;
    Ok(read(&f)?.iter().map(|p| p.to_prop(with_values)).collect())
}

/// The value of property `prop` of `path`, if it has it.
pub fn one(root: &Dir, path: &Path, prop: &DavProp) -> io::Result<Option<Vec<u8>>> {
    let f = open(root, path)?;
    Ok(read(&f)?
        .into_iter()
        .find(|p| p.is(prop))
        .and_then(|p| p.xml.map(String::into_bytes)))
}

/// Apply `patch` (`true`: set, `false`: remove) to `path`'s properties, all or none.
pub fn patch(
    root: &Dir,
    path: &Path,
    patch: Vec<(bool, DavProp)>,
) -> io::Result<Vec<(StatusCode, DavProp)>> {
    let f = open(root, path)?;
    let mut props = read(&f)?;
    let mut answer = Vec::with_capacity(patch.len());
    for (set, prop) in patch {
        props.retain(|p| !p.is(&prop));
        if set {
            let xml = match prop.xml.as_ref().map(|x| String::from_utf8(x.clone())) {
                Some(Ok(x)) => Some(x),
                Some(Err(_)) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
                None => None,
            };
            props.push(Stored {
                name: prop.name.clone(),
                namespace: prop.namespace.clone(),
                prefix: prop.prefix.clone(),
                xml,
            });
        }
        answer.push((StatusCode::OK, DavProp { xml: None, ..prop }));
    }
    write(&f, &props)?;
    Ok(answer)
}

/// Give `to` the dead properties of `from` (a COPY).
pub fn copy(root: &Dir, from: &Path, to: &Path) -> io::Result<()> {
    let props = read(&open(root, from)?)?;
    if props.is_empty() {
        return Ok(());
    }
    write(&open(root, to)?, &props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str, ns: &str, value: Option<&str>) -> DavProp {
        DavProp {
            name: name.into(),
            prefix: Some("x".into()),
            namespace: Some(ns.into()),
            xml: value.map(|v| format!("<x:{name} xmlns:x=\"{ns}\">{v}</x:{name}>").into_bytes()),
        }
    }

    #[test]
    fn set_replaced_removed_and_copied() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        root.write("a", b"body").unwrap();
        let a = Path::new("a");
        assert!(all(&root, a, false).unwrap().is_empty());
        patch(&root, a, vec![(true, prop("color", "urn:x", Some("red")))]).unwrap();
        patch(
            &root,
            a,
            vec![
                (true, prop("color", "urn:x", Some("blue"))),
                (true, prop("color", "urn:y", Some("green"))),
            ],
        )
        .unwrap();
        let found = one(&root, a, &prop("color", "urn:x", None))
            .unwrap()
            .unwrap();
        assert!(String::from_utf8(found).unwrap().contains("blue"));
        assert_eq!(all(&root, a, false).unwrap().len(), 2);
        root.write("b", b"").unwrap();
        copy(&root, a, Path::new("b")).unwrap();
        assert_eq!(all(&root, Path::new("b"), true).unwrap().len(), 2);
        patch(&root, a, vec![(false, prop("color", "urn:x", None))]).unwrap();
        patch(&root, a, vec![(false, prop("color", "urn:y", None))]).unwrap();
        assert!(all(&root, a, false).unwrap().is_empty());
        assert_eq!(root.read("a").unwrap(), b"body");
    }
}
