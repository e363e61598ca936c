//! The kernel side of a mount. `fuser` mounts, negotiates INIT and unmounts; the requests
//! after INIT are read, answered ([`ops`]) and written back by this module's own workers,
//! because `fuser` cannot serve them over io_uring:
//! - `/dev/fuse` workers (`threads=N`) read and write the device; with io_uring they only
//!   get what the kernel never sends through the ring (FORGET, INTERRUPT);
//! - with FUSE over io_uring (Linux 6.14+, the kernel's `fuse.enable_uring` switch on), the
//!   kernel queues each request on the queue of the CPU its caller runs on and hands it to
//!   an idle worker of that queue with no system call per request; a caller and a worker
//!   then often meet on one CPU, which on a virtual machine nearly halves the time of a
//!   metadata-heavy workload ([`uring`] has the figures).
//!
//! Must not touch: the filesystem model beyond [`Fs`]'s public calls.

mod abi;
mod ops;
mod uring;

use crate::error::Result;
use crate::fs::Fs;
use crate::options::{MountOptions, Uring};
use abi::{InHeader, Reply, IN_HEADER_LEN};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest WRITE the kernel sends (it caps requests at 256 pages anyway); every buffer a
/// request lands in is sized from it.
const MAX_WRITE: u32 = 1 << 20;

/// Where the kernel's switch for FUSE over io_uring lives.
const URING_SWITCH: &str = "/sys/module/fuse/parameters/enable_uring";

/// A live session: the mount and the workers serving it. Dropping it unmounts.
pub struct Session {
    mount: fuser::Session<Negotiator>,
    workers: Vec<JoinHandle<()>>,
    /// Device workers still running: 0 once the kernel ended the session.
    live: Arc<AtomicUsize>,
    uring: bool,
}

/// Mount `fs` at `mountpoint` and start serving it.
pub fn start(fs: Arc<Fs>, mountpoint: &Path, opts: &MountOptions) -> Result<Session> {
    if opts.uring == Uring::On || opts.uring == Uring::Auto && crate::is_root() {
        switch_kernel_uring_on();
    }
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("zdbfs".into()),
        fuser::MountOption::Subtype("zdbfs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    // Other users may use the mount (permissions are checked by the kernel on mode bits).
    config.acl = if crate::is_root() {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    let granted = Arc::new(AtomicBool::new(false));
    let negotiator = Negotiator {
        fs: fs.clone(),
        want_uring: opts.uring != Uring::Off,
        granted: granted.clone(),
    };
    // Mounts, then reads INIT and answers it through `Negotiator::init`.
    let mount = fuser::Session::new(negotiator, mountpoint, &config)?;
    let fd = Arc::new(mount.as_fd().try_clone_to_owned()?);
    let live = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for i in 0..opts.threads.max(1) {
        let (fd, fs, live) = (fd.clone(), fs.clone(), live.clone());
        live.fetch_add(1, Ordering::SeqCst);
        workers.push(
            std::thread::Builder::new()
                .name(format!("zdbfs-fuse-{i}"))
                .spawn(move || {
                    device_worker(&fd, &fs);
                    // The last worker out flushes what came in after an unmount that had to
                    // detach (the kernel ends the session when the last user lets go).
                    if live.fetch_sub(1, Ordering::SeqCst) == 1 {
                        if let Err(e) = fs.shutdown() {
                            tracing::error!(error = %e, "final flush failed");
                        }
                    }
                })?,
        );
    }
    let uring = granted.load(Ordering::SeqCst)
        && match uring::start(&fd, &fs, opts.threads, MAX_WRITE as usize) {
            Ok(rings) => {
                workers.extend(rings);
                true
            }
            Err(e) => {
                // Requests keep coming through /dev/fuse: nothing is lost but speed.
                tracing::warn!(error = %e, "FUSE over io_uring not started");
                false
            }
        };
    tracing::info!(uring, "FUSE session started");
    Ok(Session {
        mount,
        workers,
        live,
        uring,
    })
}

impl Session {
    /// Whether the kernel ended the session (unmounted, from here or outside).
    pub fn is_finished(&self) -> bool {
        self.live.load(Ordering::SeqCst) == 0
    }

    /// Whether requests come over io_uring.
    pub fn uses_uring(&self) -> bool {
        self.uring
    }

    /// Unmount and wait for the workers. If the mount is busy it is detached instead, and
    /// the workers go on serving its last users in the background.
    pub fn unmount(mut self, mountpoint: &Path) {
        if !self.is_finished() {
            if let Err(e) = self.mount.unmount() {
                tracing::warn!(error = %e, "unmount failed; detaching the mount");
                if let Err(e) = crate::lazy_umount(mountpoint) {
                    tracing::warn!(error = %e, "lazy unmount");
                }
                return;
            }
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Answers INIT (inside `fuser::Session::new`) with the capabilities this server wants.
struct Negotiator {
    fs: Arc<Fs>,
    want_uring: bool,
    granted: Arc<AtomicBool>,
}

impl fuser::Filesystem for Negotiator {
    fn init(
        &mut self,
        _req: &fuser::Request,
        config: &mut fuser::KernelConfig,
    ) -> std::io::Result<()> {
        use fuser::InitFlags as F;
        let _ = config.set_time_granularity(Duration::from_nanos(1));
        let _ = config.set_max_write(MAX_WRITE);
        // The kernel's writeback cache: writes land in the page cache and reach us as large
        // WRITEs; close and fsync still write the dirty pages back before they return.
        let wb = self.fs.config.writeback_cache
            && config.add_capabilities(F::FUSE_WRITEBACK_CACHE).is_ok();
        self.fs.set_kernel_writeback(wb);
        let wanted = [
            // We clear set-id bits and file capabilities ourselves (on write, truncate,
            // chown): the kernel then marks the superblock SB_NOSEC and stops asking for
            // security.capability before every write.
            F::FUSE_HANDLE_KILLPRIV_V2,
            // A symlink's target never changes (a new target is a new inode): the kernel
            // may keep it instead of asking on every path walk through the link.
            F::FUSE_CACHE_SYMLINKS,
            // Lookups and listings in one directory may run in parallel (each call takes
            // the filesystem lock for its whole length anyway): concurrent callers then
            // overlap their round trips instead of queueing on the kernel's directory lock.
            F::FUSE_PARALLEL_DIROPS,
            // Directory listings carry the entries' attributes when the kernel expects them
            // to be used (`ls -l`, `find`, `du`): no LOOKUP per entry afterwards.
            F::FUSE_DO_READDIRPLUS | F::FUSE_READDIRPLUS_AUTO,
        ];
        for flags in wanted {
            // Each is an optimisation: an older kernel without it is served all the same.
            if let Err(missing) = config.add_capabilities(flags) {
                tracing::info!(?missing, "kernel lacks a FUSE capability");
            }
        }
        if self.want_uring {
            let ok = config.add_capabilities(F::FUSE_OVER_IO_URING).is_ok();
            if !ok {
                tracing::info!("the kernel does not offer FUSE over io_uring (Linux 6.14+ with {URING_SWITCH} = Y)");
            }
            self.granted.store(ok, Ordering::SeqCst);
        }
        tracing::info!(writeback_cache = wb, "FUSE session initialised");
        Ok(())
    }
}

/// `-o uring`, and the default as root: turn the kernel's switch on (it only lets FUSE
/// servers ask for io_uring; `-o nouring` leaves it alone).
fn switch_kernel_uring_on() {
    match std::fs::read_to_string(URING_SWITCH) {
        Ok(v) if v.trim() == "Y" => {}
        Ok(_) => match std::fs::write(URING_SWITCH, "Y") {
            Ok(()) => tracing::info!(
                "turned the kernel's FUSE io_uring switch on ({URING_SWITCH} = Y; -o nouring \
                 serves over /dev/fuse and leaves it alone)"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot turn on {URING_SWITCH}"),
        },
        Err(e) => tracing::info!(error = %e, "this kernel has no FUSE over io_uring"),
    }
}

/// Serve `/dev/fuse` until the session ends (the read fails with ENODEV).
fn device_worker(fd: &OwnedFd, fs: &Fs) {
    let mut buf = vec![0u8; MAX_WRITE as usize + 8192];
    let mut out = Reply::default();
    loop {
        // SAFETY: reading into a buffer we own, of the length given.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                // Interrupted, or a request the kernel withdrew (interrupted caller).
                Some(libc::EINTR | libc::EAGAIN | libc::ENOENT) => continue,
                Some(libc::ENODEV) => return,
                e => {
                    tracing::error!(errno = ?e, "reading /dev/fuse; worker stops");
                    return;
                }
            }
        }
        let body = &buf[..n as usize];
        let Some(h) = InHeader::parse(body) else {
            tracing::error!(len = n, "short FUSE request");
            continue;
        };
        let args = &body[IN_HEADER_LEN..];
        let (fixed, rest) = args.split_at(abi::fixed_args_len(h.opcode).min(args.len()));
        out.0.clear();
        let outcome = ops::handle(fs, &h, fixed, rest, &mut out);
        let Some((error, body)) = outcome.reply(&out) else {
            continue;
        };
        let head = abi::out_header(h.unique, error, body.len());
        let iov = [
            libc::iovec {
                iov_base: head.as_ptr() as *mut _,
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: body.as_ptr() as *mut _,
                iov_len: body.len(),
            },
        ];
        // SAFETY: both buffers outlive the call; the kernel reads them.
        let r = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) };
        // ENOENT: the caller was interrupted and the kernel dropped the request.
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
            tracing::warn!(error = %std::io::Error::last_os_error(), opcode = h.opcode, "FUSE reply");
        }
    }
}
