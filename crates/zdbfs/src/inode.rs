//! The in-memory inode: attributes, extended attributes and the kind-specific part (block map of
//! a file, bucket ids of a directory, target of a symlink). Encoding: [`crate::record`].

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// File data is cut into blocks of this size; block `i` holds bytes `[i*BLOCK, (i+1)*BLOCK)`.
pub const BLOCK: u64 = 128 * 1024;
/// Longest name in a directory.
pub const NAME_MAX: usize = 255;
/// Largest file size (a block index must fit the block map).
pub const MAX_FILE_SIZE: u64 = 1 << 50;
/// The xattr holding file capabilities, which a modification removes.
pub const SECURITY_CAPABILITY: &[u8] = b"security.capability";

/// A timestamp with nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Ts {
    pub secs: i64,
    pub nanos: u32,
}

impl Ts {
    pub fn now() -> Ts {
        Ts::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> Ts {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Ts {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                if d.subsec_nanos() == 0 {
                    Ts {
                        secs: -(d.as_secs() as i64),
                        nanos: 0,
                    }
                } else {
                    Ts {
                        secs: -(d.as_secs() as i64) - 1,
                        nanos: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }

    pub fn to_system(self) -> SystemTime {
        let nanos = std::time::Duration::from_nanos(u64::from(self.nanos));
        if self.secs >= 0 {
            UNIX_EPOCH + std::time::Duration::from_secs(self.secs as u64) + nanos
        } else {
            UNIX_EPOCH - std::time::Duration::from_secs(self.secs.unsigned_abs()) + nanos
        }
    }
}

/// The type of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

impl Kind {
    /// The `S_IFMT` bits of a mode, `None` for an unknown type.
    pub fn from_mode(mode: u32) -> Option<Kind> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDev,
            libc::S_IFBLK => Kind::BlockDev,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Kind::File => 1,
            Kind::Dir => 2,
            Kind::Symlink => 3,
            Kind::Fifo => 4,
            Kind::Socket => 5,
            Kind::CharDev => 6,
            Kind::BlockDev => 7,
        }
    }

    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::File,
            2 => Kind::Dir,
            3 => Kind::Symlink,
            4 => Kind::Fifo,
            5 => Kind::Socket,
            6 => Kind::CharDev,
            7 => Kind::BlockDev,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this kind.
    pub fn ifmt(self) -> u32 {
        match self {
            Kind::File => libc::S_IFREG,
            Kind::Dir => libc::S_IFDIR,
            Kind::Symlink => libc::S_IFLNK,
            Kind::Fifo => libc::S_IFIFO,
            Kind::Socket => libc::S_IFSOCK,
            Kind::CharDev => libc::S_IFCHR,
            Kind::BlockDev => libc::S_IFBLK,
        }
    }
}

/// One inode as held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub ino: u64,
    pub kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u32,
    pub size: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
    /// Directories: the parent directory (the root is its own parent).
    pub parent: u64,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Files: block index → data record id. Absent blocks are holes.
    pub blocks: BTreeMap<u64, u64>,
    /// Directories: record id of each hash bucket (`None`: never written, empty).
    pub buckets: Vec<Option<u64>>,
    /// Symlinks: the target.
    pub target: Vec<u8>,
}

impl Inode {
    /// Whether a read at `now` moves atime (relatime: atime not after mtime or ctime, or a
    /// day old).
    pub fn atime_due(&self, now: Ts) -> bool {
        self.atime <= self.mtime
            || self.atime <= self.ctime
            || now.secs - self.atime.secs > 24 * 3600
    }

    pub fn new(ino: u64, kind: Kind, perm: u32, uid: u32, gid: u32) -> Inode {
        let now = Ts::now();
        Inode {
            ino,
            kind,
            perm: perm & 0o7777,
            uid,
            gid,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            rdev: 0,
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
            parent: 0,
            xattrs: BTreeMap::new(),
            blocks: BTreeMap::new(),
            buckets: if kind == Kind::Dir {
                vec![None]
            } else {
                Vec::new()
            },
            target: Vec::new(),
        }
    }

    /// Mark a content change: mtime and ctime become now.
    pub fn touch_modified(&mut self) {
        let now = Ts::now();
        self.mtime = now;
        self.ctime = now;
    }

    /// What a write, truncate or chown does to the set-id bits (Linux VFS rules): set-user-id
    /// goes, set-group-id too when group-executable (else it marks mandatory locking).
    pub fn kill_suidgid(&mut self) {
        self.perm &= !libc::S_ISUID;
        if self.perm & 0o010 != 0 {
            self.perm &= !libc::S_ISGID;
        }
    }

    /// A modified file loses its file capabilities (the kernel's `security_inode_killpriv`,
    /// ours once FUSE_HANDLE_KILLPRIV_V2 is negotiated).
    pub fn kill_capability(&mut self) {
        if !self.xattrs.is_empty() {
            self.xattrs.remove(SECURITY_CAPABILITY);
        }
    }

    /// Mark an attribute change: ctime becomes now.
    pub fn touch_changed(&mut self) {
        self.ctime = Ts::now();
    }
}
