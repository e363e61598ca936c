//! zdbfs statistics on `/metrics`, as 0-stor v2 exports them, when `zdbfs_mountpoint` is set:
//! every second, 0-db-fs's `ZDBFS_IOCTL_STATISTICS` ioctl on the mount point (answered by
//! ThreeFold's zdbfs and by ours alike) and the counters under 0-stor v2's names (`fs_*`).
//!
//! The ioctl runs on the blocking pool; while one is still running (a hung mount) no other
//! starts, and the last answer stays on `/metrics`. Must not touch: the mount itself.

use service_kit::metrics::{Exposition, Kind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Monitor;

use stack_abi::zdbfs_stats::{Stats, FIELDS, IOCTL_STATISTICS, LEN, VERSION};

/// The counters of the zdbfs mounted at `mountpoint`.
pub fn read(mountpoint: &Path) -> std::io::Result<Stats> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(mountpoint)?;
    let mut buf = [0u8; LEN];
    // SAFETY: `buf` holds exactly the size the command encodes; `dir` stays open meanwhile.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), IOCTL_STATISTICS.into(), buf.as_mut_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Stats::decode(&buf).ok_or_else(|| {
        let version = u64::from_ne_bytes(buf[..8].try_into().unwrap_or_default());
        std::io::Error::other(format!(
            "zdbfs statistics version {version} (this zstor reads {VERSION})"
        ))
    })
}

/// Prometheus lines for `stats`, with 0-stor v2's names and types.
pub fn render(stats: &Stats, out: &mut Exposition) {
    let get = |name: &str| stats.get(name);
    let mut one = |name: &str, kind: Kind, help: &str, v: u64| out.single(name, kind, help, v);
    one(
        "fs_fuse_reqs",
        Kind::Counter,
        "Total amount of fuse requests",
        get("fuse_reqs"),
    );
    one(
        "fs_cache_hits",
        Kind::Counter,
        "Total amount of cache hits in the filesystem",
        get("cache_hit"),
    );
    one(
        "fs_cache_miss",
        Kind::Counter,
        "Total amount of cache misses in the filesystem",
        get("cache_miss"),
    );
    for (name, field, help) in [
        (
            "fs_cache_full",
            "cache_full",
            "Total amount of times the cache was completely filled",
        ),
        (
            "fs_cache_linear_flush",
            "cache_linear_flush",
            "Total amount of linear flushes",
        ),
        (
            "fs_cache_random_flush",
            "cache_random_flush",
            "Total amount of random flushes",
        ),
        (
            "fs_cache_branches",
            "cache_branches",
            "Total amount of cache branches",
        ),
        (
            "fs_cache_branches_allocated",
            "cache_branches_allocated",
            "Amount of cache branches allocated",
        ),
        (
            "fs_cache_entries",
            "cache_entries",
            "Amount of memory cache entries",
        ),
        (
            "fs_cache_blocks",
            "cache_blocks",
            "Amount of blocks in the memory cache",
        ),
        (
            "fs_cache_blocksize",
            "cache_blocksize",
            "Amount of bytes used by cache blocks",
        ),
    ] {
        one(name, Kind::Gauge, help, get(field));
    }
    one(
        "fs_bytes_read",
        Kind::Counter,
        "Total amount of bytes read from the filessytem",
        get("read_bytes"),
    );
    one(
        "fs_bytes_written",
        Kind::Counter,
        "Total amount of bytes written to the filessytem",
        get("write_bytes"),
    );
    one(
        "fs_fuse_errors",
        Kind::Counter,
        "Total amount of errors returned by fuse calls",
        get("errors"),
    );
    out.family(
        "fs_syscalls",
        Kind::Counter,
        "Total amount of syscalls done on the filesystem",
    );
    for field in FIELDS.iter().filter(|f| f.starts_with("syscall_")) {
        let label = &field["syscall_".len()..];
        out.sample("fs_syscalls", &[("syscall", label)], get(field));
    }
}

/// How often the `zdbfs-stats` task asks the mount.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// One poll of the mount point named by the config (the `zdbfs-stats` task). The ioctl
/// runs on the blocking pool; a hung mount holds this task (no other poll starts) and the
/// last answer stays on `/metrics`.
pub async fn poll(shared: Arc<Monitor>) -> Result<(), String> {
    let Some(mountpoint) = shared.store().config().zdbfs_mountpoint.clone() else {
        return Ok(());
    };
    let answer = tokio::task::spawn_blocking(move || {
        let r = read(&mountpoint);
        if let Err(e) = &r {
            tracing::debug!(path = %mountpoint.display(), error = %e, "zdbfs statistics");
        }
        r.ok()
    })
    .await
    .map_err(|e| e.to_string())?;
    *shared.zdbfs.lock().unwrap_or_else(|p| p.into_inner()) = answer;
    Ok(())
}
