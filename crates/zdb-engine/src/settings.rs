//! Namespace settings and their descriptor file (`zdb-namespace` in the namespace's index
//! directory), rewritten atomically (temporary file, fsync, rename, fsync of the directory).

use crate::error::{Error, IoContext, Result};
use crate::format::{u16le, u64le};
use crate::Mode;
use std::fs;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 4] = b"ZDBN";
const VERSION: u8 = 1;
pub const DESCRIPTOR_FILE: &str = "zdb-namespace";

/// Everything persisted about a namespace apart from its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub password: Option<String>,
    /// Data size limit in bytes; 0 means unlimited.
    pub maxsize: u64,
    pub public: bool,
    pub worm: bool,
    pub locked: bool,
    pub frozen: bool,
    pub mode: Mode,
}

impl Settings {
    pub fn new(mode: Mode, maxsize: u64) -> Self {
        Settings {
            password: None,
            maxsize,
            public: true,
            worm: false,
            locked: false,
            frozen: false,
            mode,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        let flags = u8::from(self.public)
            | u8::from(self.worm) << 1
            | u8::from(self.locked) << 2
            | u8::from(self.frozen) << 3
            | u8::from(self.password.is_some()) << 4;
        b.push(flags);
        b.push(self.mode.as_byte());
        b.extend_from_slice(&self.maxsize.to_le_bytes());
        let pw = self.password.as_deref().unwrap_or("").as_bytes();
        b.extend_from_slice(&(pw.len() as u16).to_le_bytes());
        b.extend_from_slice(pw);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Settings> {
        if b.len() < 19 || &b[0..4] != MAGIC || b[4] != VERSION {
            return None;
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let flags = body[5];
        let mode = Mode::from_byte(body[6])?;
        let maxsize = u64le(body, 7);
        let pw_len = u16le(body, 15) as usize;
        let pw = body.get(17..17 + pw_len)?;
        let password = if flags & 0x10 != 0 {
            Some(String::from_utf8(pw.to_vec()).ok()?)
        } else {
            None
        };
        Some(Settings {
            password,
            maxsize,
            public: flags & 1 != 0,
            worm: flags & 2 != 0,
            locked: flags & 4 != 0,
            frozen: flags & 8 != 0,
            mode,
        })
    }

    /// Read the descriptor in `dir`; `Ok(None)` when there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Settings>> {
        let path = dir.join(DESCRIPTOR_FILE);
        match fs::read(&path) {
            Ok(b) => Settings::decode(&b).map(Some).ok_or(Error::Corrupt {
                path,
                offset: 0,
                what: "invalid namespace descriptor",
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Durably replace the descriptor in `dir`.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let path = dir.join(DESCRIPTOR_FILE);
        let tmp = dir.join(format!("{DESCRIPTOR_FILE}.tmp"));
        // It holds the namespace password.
        let mut f = crate::private::private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(&self.encode()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)?;
        sync_dir(dir)
    }
}

/// fsync a directory so that a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), None);
        let mut s = Settings::new(Mode::Seq, 1234);
        s.password = Some("sécret".into());
        s.worm = true;
        s.frozen = true;
        s.store(dir.path()).unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), Some(s.clone()));
        let path = dir.path().join(DESCRIPTOR_FILE);
        let mut b = fs::read(&path).unwrap();
        b[8] ^= 1;
        fs::write(&path, b).unwrap();
        assert!(matches!(
            Settings::load(dir.path()),
            Err(Error::Corrupt { .. })
        ));
    }
}
