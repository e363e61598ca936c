//! Extended attributes, kept inside the inode record. Names up to 255 bytes, values up to
//! 64 KiB; `system.*` (POSIX ACLs) is not supported and answers EOPNOTSUPP.

use super::Fs;
use crate::error::{Errno, FsResult};

/// Largest value of one attribute.
pub const XATTR_VALUE_MAX: usize = 64 * 1024;
/// Largest total of names and values on one inode (keeps inode records small).
const XATTR_TOTAL_MAX: usize = 256 * 1024;
/// Bound of the "has no xattr" set (8 bytes an entry); past it the set starts over.
const NO_XATTRS_MAX: usize = 1 << 20;

fn check(name: &[u8]) -> FsResult<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Errno::ERANGE);
    }
    if name.starts_with(b"system.") {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

impl Fs {
    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> FsResult<()> {
        check(name)?;
        if value.len() > XATTR_VALUE_MAX {
            return Err(Errno::E2BIG);
        }
        let mut st = self.state.lock();
        let i = st.inode(&*self.store, ino)?;
        let exists = i.xattrs.contains_key(name);
        if flags & libc::XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & libc::XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        let total: usize = i
            .xattrs
            .iter()
            .filter(|(k, _)| k.as_slice() != name)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if total + name.len() + value.len() > XATTR_TOTAL_MAX {
            return Err(Errno::ENOSPC);
        }
        self.no_xattrs.write().remove(&ino);
        i.xattrs.insert(name.to_vec(), value.to_vec());
        i.touch_changed();
        st.mark(ino);
        Ok(())
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        check(name)?;
        if self.no_xattrs.read().contains(&ino) {
            return Err(Errno::ENODATA);
        }
        let mut st = self.state.lock();
        let i = st.inode(&*self.store, ino)?;
        if i.xattrs.is_empty() {
            // Under the state lock, so a concurrent setxattr cannot slip in between.
            let mut known = self.no_xattrs.write();
            if known.len() >= NO_XATTRS_MAX {
                known.clear();
            }
            known.insert(ino);
            return Err(Errno::ENODATA);
        }
        i.xattrs.get(name).cloned().ok_or(Errno::ENODATA)
    }

    /// Names, each followed by a NUL byte.
    pub fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        let mut st = self.state.lock();
        let i = st.inode(&*self.store, ino)?;
        let mut out = Vec::new();
        for k in i.xattrs.keys() {
            out.extend_from_slice(k);
            out.push(0);
        }
        Ok(out)
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> FsResult<()> {
        check(name)?;
        let mut st = self.state.lock();
        let i = st.inode(&*self.store, ino)?;
        i.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        i.touch_changed();
        st.mark(ino);
        Ok(())
    }
}
