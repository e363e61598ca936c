//! Typed errors: what the backend stores report, what the library API reports, and the errno a
//! filesystem operation answers the kernel with.

use std::fmt;

/// A backend (zdb namespace) failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend refused or failed an operation; the text says why.
    #[error("backend error on {ns}: {msg}")]
    Backend { ns: &'static str, msg: String },
    /// The backend cannot be reached (connection refused, timeout).
    #[error("backend {ns} unavailable: {msg}")]
    Unavailable { ns: &'static str, msg: String },
    /// No room: the namespace's size limit, or the disk under it (down to its reserve).
    #[error("no space on {ns}: {msg}")]
    Full { ns: &'static str, msg: String },
    /// The namespace is missing and `autons` was not given.
    #[error("namespace {0} does not exist (use -o autons to create it)")]
    NoNamespace(String),
    /// The namespace exists but is not in sequential mode.
    #[error("namespace {0} is not in sequential mode")]
    NotSeq(String),
    /// `autons` created the namespace, but the server cannot make it sequential.
    #[error(
        "namespace {ns} was created but the server cannot make it sequential ({msg}); zdbfs \
         needs sequential namespaces: start zdb with --mode seq or without --mode (mixed)"
    )]
    ServerNotSeq { ns: String, msg: String },
}

/// An error of the library API (mount, format, recovery).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record cannot be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The namespaces hold something that is not a zdbfs filesystem.
    #[error("not a zdbfs filesystem: {0}")]
    NotZdbfs(String),
    /// A bad `-o` option or configuration value; names the field.
    #[error("invalid option {field}: {msg}")]
    Option { field: String, msg: String },
    /// Mounting or running the FUSE session failed.
    #[error("fuse: {0}")]
    Fuse(#[from] std::io::Error),
    /// The in-process engine could not be opened.
    #[error("engine: {0}")]
    Engine(#[from] zdb_engine::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The errno a filesystem operation fails with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const ENAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const ENODATA: Errno = Errno(libc::ENODATA);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    pub const EFBIG: Errno = Errno(libc::EFBIG);
    pub const EMLINK: Errno = Errno(libc::EMLINK);
    pub const E2BIG: Errno = Errno(libc::E2BIG);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    pub const ENODEV: Errno = Errno(libc::ENODEV);
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({})", std::io::Error::from_raw_os_error(self.0))
    }
}

impl From<StoreError> for Errno {
    /// A lack of space is ENOSPC; every other backend failure reaches the caller as EIO
    /// (logged once here).
    fn from(e: StoreError) -> Errno {
        if let StoreError::Full { .. } = e {
            tracing::warn!(error = %e, "write refused");
            return Errno::ENOSPC;
        }
        tracing::error!(error = %e, "backend failure");
        Errno::EIO
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Errno {
        if let Error::Store(s) = e {
            return s.into();
        }
        tracing::error!(error = %e, "filesystem failure");
        Errno::EIO
    }
}

/// Result of a filesystem operation.
pub type FsResult<T> = std::result::Result<T, Errno>;
