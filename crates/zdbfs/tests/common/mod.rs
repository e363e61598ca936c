//! Shared harness: a real FUSE mount in a temp dir, unmounted on drop (even on panic), plus
//! thin libc wrappers that return the errno.
#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zdbfs::{MountOptions, Mounted};

/// A mount of the in-process engine under a temp dir.
pub struct TestMount {
    pub mnt: PathBuf,
    pub engine: PathBuf,
    /// How the kernel's requests arrive (kept across remounts).
    pub uring: zdbfs::options::Uring,
    /// Changes to the default options, applied at every (re)mount.
    configure: fn(&mut MountOptions),
    mounted: Option<Mounted>,
    _dir: Option<tempfile::TempDir>,
}

/// The transport of in-process test mounts: `ZDBFS_TEST_URING=off` serves over /dev/fuse
/// (`scripts/test` runs the suite that way too, since as root the default is io_uring).
fn default_transport() -> zdbfs::options::Uring {
    match std::env::var("ZDBFS_TEST_URING").as_deref() {
        Ok("off") => zdbfs::options::Uring::Off,
        _ => zdbfs::options::Uring::Auto,
    }
}

impl TestMount {
    pub fn new() -> TestMount {
        TestMount::configured(|_| {})
    }

    /// A mount whose options `configure` changes (at every remount too).
    pub fn configured(configure: fn(&mut MountOptions)) -> TestMount {
        let dir = tempfile::tempdir().expect("tempdir");
        let mnt = dir.path().join("mnt");
        let engine = dir.path().join("engine");
        let mut t = TestMount {
            mnt,
            engine,
            uring: default_transport(),
            configure,
            mounted: None,
            _dir: Some(dir),
        };
        t.mount();
        t
    }

    /// Mount the engine in `engine` at `mnt` (paths owned by the caller).
    pub fn at(mnt: &Path, engine: &Path) -> TestMount {
        let mut t = TestMount {
            mnt: mnt.to_path_buf(),
            engine: engine.to_path_buf(),
            uring: default_transport(),
            configure: |_| {},
            mounted: None,
            _dir: None,
        };
        t.mount();
        t
    }

    pub fn mount(&mut self) {
        watchdog(&self.mnt);
        std::fs::create_dir_all(&self.mnt).expect("mkdir mnt");
        let mut opts = MountOptions::engine(&self.engine);
        opts.uring = self.uring;
        (self.configure)(&mut opts);
        let store = zdbfs::open_store(&opts).expect("store");
        self.mounted = Some(zdbfs::mount(&self.mnt, store, &opts).expect("mount"));
        wait_mounted(&self.mnt, true);
        assert_eq!(fs_type(&self.mnt), FUSE_SUPER_MAGIC, "not a FUSE mount");
    }

    pub fn unmount(&mut self) {
        if let Some(m) = self.mounted.take() {
            m.unmount().expect("unmount");
        }
        wait_mounted(&self.mnt, false);
    }

    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    pub fn mounted(&self) -> &Mounted {
        self.mounted.as_ref().expect("mounted")
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            let _ = m.unmount();
        }
        if is_mounted(&self.mnt) {
            let _ = zdbfs::lazy_umount(&self.mnt);
        }
    }
}

/// Upper bound of a whole test binary run. A hung FUSE request would block a test forever:
/// past this, every mount made is detached and the process aborts (closing /dev/fuse fails all
/// pending requests), so the run fails instead of hanging.
const WATCHDOG: Duration = Duration::from_secs(900);

/// Register `mnt` with the process watchdog (started on first use).
pub fn watchdog(mnt: &Path) {
    use std::sync::{Mutex, OnceLock};
    static MOUNTS: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    let mounts = MOUNTS.get_or_init(|| {
        std::thread::spawn(|| {
            std::thread::sleep(WATCHDOG);
            eprintln!("watchdog: tests still running after {WATCHDOG:?}; aborting");
            if let Some(m) = MOUNTS.get() {
                for p in m.lock().map(|v| v.clone()).unwrap_or_default() {
                    let _ = zdbfs::lazy_umount(&p);
                }
            }
            std::process::abort();
        });
        Mutex::new(Vec::new())
    });
    if let Ok(mut v) = mounts.lock() {
        v.push(mnt.to_path_buf());
    }
}

/// Whether `path` is a mount point, and the bounded wait until it is (or is no longer) one.
pub use test_kit::mount::{is_mounted, wait_mounted};

/// `f_type` of a FUSE filesystem in statfs(2).
pub const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// statfs(2) of the filesystem holding `p`.
pub fn statfs(p: &Path) -> libc::statfs {
    let c = cstr(p);
    // SAFETY: zeroed statfs is a valid out-buffer.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    let r = unsafe { libc::statfs(c.as_ptr(), &raw mut sf) };
    assert_eq!(r, 0, "statfs {p:?}");
    sf
}

/// `f_type` of the filesystem holding `p`.
pub fn fs_type(p: &Path) -> i64 {
    statfs(p).f_type
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Run a libc call returning -1 on failure; `Err(errno)` then.
pub fn check(r: i64) -> Result<i64, i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

pub fn io_errno<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

pub fn renameat2(a: &Path, b: &Path, flags: u32) -> Result<i64, i32> {
    let (a, b) = (cstr(a), cstr(b));
    // SAFETY: valid NUL-terminated paths; AT_FDCWD directory fds.
    check(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    })
}

pub fn lstat(p: &Path) -> Result<libc::stat, i32> {
    let c = cstr(p);
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    check(i64::from(unsafe { libc::lstat(c.as_ptr(), &raw mut st) })).map(|_| st)
}
