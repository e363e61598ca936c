//! A running qsfs: stand-ins (embedded default), the local zdb engine with the offloader as
//! its event sink, the zdbfs mount, and the background loops (upload, eviction, rotation,
//! handle release, control socket). Start-up and shutdown order live here.
//!
//! Shutdown: unmount (zdbfs flushes and marks itself clean), close every open segment (the
//! last checkpoint), upload what is staged (bounded wait), stop the loops and stand-ins.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::watch;
use zdb_engine::format::FILE_HEADER_LEN;
use zdb_engine::{Engine, EngineConfig};

use crate::config::Config;
use crate::evict::{self, EvictReport};
use crate::manifest::NsManifest;
use crate::offload::{Offloader, TEMP_NAMESPACE};
use crate::restore;
use crate::standin::{self, Standins};
use crate::status::Status;

/// How often the eviction pass runs.
const EVICT_EVERY: Duration = Duration::from_secs(10);
/// How long shutdown waits for staged checkpoints to reach the backends.
const SHUTDOWN_UPLOAD_WAIT: Duration = Duration::from_secs(600);

/// A stored data segment: the record bytes of its stored copy (`area`) and how many of
/// them live records still use.
pub(crate) struct StoredUsage {
    pub segment: u32,
    pub area: u64,
    pub live: u64,
}

impl StoredUsage {
    /// Bytes of the stored copy no live record uses.
    pub fn dead(&self) -> u64 {
        self.area.saturating_sub(self.live)
    }
}

/// The closed segments of `ns` that `stored` (its manifest part) holds a copy of.
pub(crate) fn stored_usage<'a>(
    ns: &zdb_engine::Namespace,
    stored: &'a NsManifest,
) -> impl Iterator<Item = StoredUsage> + 'a {
    ns.segment_usage().into_iter().filter_map(|u| {
        Some(StoredUsage {
            segment: u.segment,
            area: stored
                .data
                .get(&u.segment)?
                .size
                .saturating_sub(FILE_HEADER_LEN as u64),
            live: u.live_bytes,
        })
    })
}

/// What a compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompactReport {
    /// Stored data segments emptied (their old copies go once the next checkpoint is up).
    pub segments: u64,
    pub records_moved: u64,
    pub bytes_moved: u64,
}

/// What the control socket and the loops share.
pub struct Shared {
    pub config: Config,
    pub engine: Arc<Engine>,
    pub offloader: Arc<Offloader>,
    pub fs: Arc<zdbfs::Fs>,
    evicting: std::sync::Mutex<()>,
}

impl Shared {
    /// Flush the filesystem and close every non-empty open segment (each closing stages a
    /// checkpoint).
    pub fn rotate(&self) -> anyhow::Result<()> {
        self.fs
            .flush_all(false)
            .context("flushing the filesystem")?;
        self.engine
            .rotate_all(Duration::ZERO)
            .context("closing open segments")?;
        Ok(())
    }

    /// Compact, in every offloaded namespace, the stored data segments at least
    /// `dead_percent` dead by bytes: their live records move to the open segment (an evicted
    /// segment is fetched back for that), each is left as just its header, and the
    /// namespace's next checkpoint stores that in place of the old copy, which is then
    /// deleted from the backends.
    pub fn compact(&self, dead_percent: u8) -> anyhow::Result<CompactReport> {
        let manifest = self.offloader.manifest();
        // A staged checkpoint holds a link to its closed segment's file, which compaction
        // would truncate under it: such segments wait until that checkpoint is uploaded.
        let staged: std::collections::HashSet<(String, u32)> = self
            .offloader
            .pending()
            .into_iter()
            .map(|(ns, seg, _)| (ns, seg))
            .collect();
        let mut report = CompactReport::default();
        for name in self.engine.list() {
            let (Some(ns), Some(stored)) =
                (self.engine.namespace(&name), manifest.namespaces.get(&name))
            else {
                continue;
            };
            let picked: Vec<u32> = stored_usage(&ns, stored)
                .filter(|u| {
                    u.area > 0
                        && !staged.contains(&(name.clone(), u.segment))
                        && u.dead().saturating_mul(100)
                            >= u.area.saturating_mul(dead_percent as u64)
                })
                .map(|u| u.segment)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let stats = ns
                .compact_segments(&picked)
                .with_context(|| format!("compacting {name}"))?;
            self.offloader.note_emptied(&name, &stats.emptied);
            let counters = &self.offloader.stats;
            counters
                .segments_compacted
                .fetch_add(stats.segments_emptied as u64, Relaxed);
            counters
                .records_moved
                .fetch_add(stats.records_moved, Relaxed);
            report.segments += stats.segments_emptied as u64;
            report.records_moved += stats.records_moved;
            report.bytes_moved += stats.bytes_moved;
            tracing::info!(namespace = %name, segments = ?stats.emptied, records_moved = stats.records_moved, "compacted");
        }
        Ok(report)
    }

    /// One eviction pass: to the configured limit, or everything stored with `all`.
    pub fn evict(&self, all: bool) -> anyhow::Result<EvictReport> {
        let _one = self.evicting.lock().unwrap_or_else(|p| p.into_inner());
        let limit = match (all, self.config.cache_limit()) {
            (true, _) => 0,
            (false, Some(l)) => l.max(1),
            (false, None) => u64::MAX,
        };
        let data = self.config.zdb_dir().join("data");
        let report = evict::pass(&data, &self.offloader.manifest(), limit)
            .with_context(|| format!("evicting from {}", data.display()))?;
        if report.evicted_files > 0 {
            self.engine.release_handles();
        }
        Ok(report)
    }

    pub async fn status(&self) -> Status {
        Status::gather(self).await
    }
}

/// Start everything, run until SIGTERM/SIGINT or an external unmount, then shut down.
/// With `restore`, the empty cache folder is first refilled from the backends.
pub fn run(config: Config, restore_first: bool) -> anyhow::Result<()> {
    let _cache_lock = lock_cache(&config.qsfs.cache_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("qsfs")
        .enable_all()
        .build()?;
    let mut standins = match &config.qsfs.standin_dir {
        Some(dir) => {
            let exe = std::env::current_exe().context("locating the qsfs binary")?;
            Some(Standins::start(&exe, dir, &standin::specs(&config)?)?)
        }
        None => None,
    };
    let result = runtime.block_on(serve(config, restore_first));
    if let Some(s) = standins.as_mut() {
        s.stop();
    }
    result
}

async fn serve(config: Config, restore_first: bool) -> anyhow::Result<()> {
    let cache = config.qsfs.cache_dir.clone();
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let store = Arc::new(config.store().context("zstor configuration")?);
    if restore_first {
        let r = restore::restore(&config, &store).await?;
        println!(
            "qsfs: restored {} namespaces ({} files, {} bytes) into {}",
            r.namespaces,
            r.files,
            r.bytes,
            cache.display()
        );
    } else if restore::cache_is_empty(&config)
        && restore::stored_manifest(&config, &store)
            .await
            .context("asking the backends whether they already hold a filesystem")?
            .is_some()
    {
        bail!(
            "the cache folder {} is empty but the backends hold a qsfs filesystem for this \
             configuration: run `qsfs restore --config {}` to bring it back",
            cache.display(),
            config.path.display()
        );
    }

    let maintenance = Arc::new(zstor::daemon::Maintenance::start(
        &config.path,
        store.clone(),
    ));
    let offloader = Arc::new(Offloader::new(
        &cache,
        store,
        maintenance,
        tokio::runtime::Handle::current(),
    )?);
    let engine = {
        let mut ec = EngineConfig::new(
            config.zdb_dir().join("data"),
            config.zdb_dir().join("index"),
        );
        ec.datasize = config.qsfs.segment_size_mib << 20;
        let sink = offloader.clone();
        let e = tokio::task::spawn_blocking(move || Engine::open(ec, sink)).await??;
        Arc::new(e)
    };
    close_stored_open_segments(&engine, &offloader)?;

    let names = zdbfs::Ns::ALL.map(|n| n.default_name().to_string());
    let zstore = zdbfs::EngineStore::with_engine(engine.clone(), &names, true)?;
    let mountpoint = config.qsfs.mountpoint.clone();
    clear_dead_mount(&mountpoint)?;
    std::fs::create_dir_all(&mountpoint)
        .with_context(|| format!("creating mountpoint {}", mountpoint.display()))?;
    let opts = zdbfs::MountOptions::engine(config.zdb_dir());
    let mounted = {
        let mp = mountpoint.clone();
        tokio::task::spawn_blocking(move || zdbfs::mount(&mp, Arc::new(zstore), &opts))
            .await?
            .with_context(|| format!("mounting {}", mountpoint.display()))?
    };
    let shared = Arc::new(Shared {
        config,
        engine,
        offloader,
        fs: mounted.fs().clone(),
        evicting: Default::default(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(shared.offloader.clone().run_uploader(stop_rx.clone()));
    tasks.spawn(loops(shared.clone(), stop_rx.clone()));
    // The endpoints are extras: the filesystem runs even if one cannot start.
    if let Some(port) = shared.config.zstor.prometheus_port {
        let bound = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"));
        if let Some(listener) = optional("metrics endpoint", bound) {
            println!("qsfs: metrics at http://127.0.0.1:{port}/metrics");
            tasks.spawn(crate::metrics::serve(
                listener,
                shared.clone(),
                stop_rx.clone(),
            ));
        }
    }
    if let (Some(addr), Some(token)) =
        (shared.config.qsfs.web_listen, &shared.config.qsfs.web_token)
    {
        let web = async {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let state =
                crate::web::WebState::open(&mountpoint, token.clone(), Some(shared.clone()))
                    .with_context(|| format!("opening {}", mountpoint.display()))?;
            anyhow::Ok((listener, state))
        };
        if let Some((listener, state)) = optional("web UI", web.await) {
            if !addr.ip().is_loopback() {
                tracing::warn!(%addr, "the web UI listens beyond loopback without TLS: put a TLS proxy in front");
            }
            println!("qsfs: web UI at http://{addr}/ (access token: {token})");
            tasks.spawn(crate::web::serve(
                listener,
                Arc::new(state),
                stop_rx.clone(),
            ));
        }
    }
    let control = crate::control::bind(&shared.config.socket())?;
    tasks.spawn(crate::control::serve(
        control,
        shared.clone(),
        stop_rx.clone(),
    ));

    let config_path = std::path::absolute(&shared.config.path)?;
    println!("qsfs: mounted at {}", mountpoint.display());
    println!(
        "qsfs: config {} (back it up: it holds the keys)",
        config_path.display()
    );
    println!(
        "qsfs: `qsfs status --config {}` shows its state",
        config_path.display()
    );
    wait_for_stop(&mounted).await;

    tracing::info!("stopping: unmounting and offloading the open segments");
    let unmounted = tokio::task::spawn_blocking(move || mounted.unmount()).await?;
    if let Err(e) = unmounted {
        tracing::error!(error = %e, "unmount");
    }
    let s = shared.clone();
    tokio::task::spawn_blocking(move || s.engine.rotate_all(Duration::ZERO)).await??;
    let drain = async {
        while !shared.offloader.upload_pending().await {
            let left = shared.offloader.pending().len();
            eprintln!(
                "qsfs: {left} checkpoints waiting for the backends ({}); stop again to leave \
                 them staged for the next start",
                shared.offloader.last_error().unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    let drained = tokio::select! {
        r = tokio::time::timeout(SHUTDOWN_UPLOAD_WAIT, drain) => r.is_ok(),
        _ = stop_signal() => false,
    };
    if !drained {
        tracing::error!(
            "backends did not take every staged checkpoint; they stay staged in {} and go \
             at the next start",
            shared.config.qsfs.cache_dir.display()
        );
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    shared.offloader.maintenance().stop().await;
    let _ = std::fs::remove_file(shared.config.socket());
    let s = shared.clone();
    tokio::task::spawn_blocking(move || s.engine.sync_all()).await??;
    if drained {
        println!("qsfs: stopped; everything written is offloaded");
    } else {
        println!("qsfs: stopped; some checkpoints stay staged locally until the next start");
    }
    Ok(())
}

/// The value of an optional part, or `None` with the reason printed.
fn optional<T>(what: &str, r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("{what} not started: {e:#}");
            eprintln!("qsfs: {what} not started: {e:#}");
            None
        }
    }
}

/// Hold an exclusive lock on the cache folder for the life of the returned file: a second
/// qsfs on the same cache (which would open the same engine files) is refused at once.
fn lock_cache(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("qsfs.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; released when the file is closed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "another qsfs is running with the cache folder {} ({})",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// After a crash the kernel keeps the dead FUSE mount ("transport endpoint is not
/// connected"): detach it so the new mount can take its place. A live mount there is an
/// error (another filesystem is using the mountpoint).
fn clear_dead_mount(mountpoint: &Path) -> anyhow::Result<()> {
    if !is_mountpoint(mountpoint) {
        return Ok(());
    }
    // statfs always asks the daemon (stat may be answered from the kernel's attribute cache).
    let alive = nix_statfs(mountpoint);
    match alive {
        Ok(()) => bail!(
            "{} is already a mount point in use; unmount it or pick another",
            mountpoint.display()
        ),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            tracing::warn!(path = %mountpoint.display(), "detaching the dead mount of a crashed run");
            zdbfs::lazy_umount(mountpoint)
                .with_context(|| format!("detaching the dead mount {}", mountpoint.display()))
        }
        Err(e) => Err(e).with_context(|| format!("checking {}", mountpoint.display())),
    }
}

/// Whether `path` is listed as a mount point in /proc/self/mountinfo.
fn is_mountpoint(path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // Field 5 is the mount point, with spaces and such escaped as octal.
    let want = abs.to_string_lossy().replace(' ', "\\040");
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

fn nix_statfs(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut out = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path; `out` is written by the call.
    if unsafe { libc::statfs(c.as_ptr(), out.as_mut_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A stored segment must never grow: if the open segment of a namespace is one the manifest
/// holds (right after a restore), close it now.
fn close_stored_open_segments(engine: &Engine, offloader: &Offloader) -> anyhow::Result<()> {
    let manifest = offloader.manifest();
    for name in engine.list() {
        if name == TEMP_NAMESPACE {
            continue;
        }
        let (Some(ns), Some(m)) = (engine.namespace(&name), manifest.namespaces.get(&name)) else {
            continue;
        };
        if m.data.contains_key(&ns.info().current_segment) {
            ns.jump()
                .with_context(|| format!("closing restored segment of {name}"))?;
        }
    }
    Ok(())
}

/// SIGTERM or SIGINT (returns at once if the handlers cannot be installed).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn wait_for_stop(mounted: &zdbfs::Mounted) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => if mounted.is_finished() {
                tracing::info!("unmounted from outside");
                return;
            }
        }
    }
}

/// Rotation by age, eviction, compaction and handle release, until `stop`.
async fn loops(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let rotate_age = Duration::from_secs(shared.config.qsfs.rotate_seconds);
    let compact_every = Duration::from_secs(shared.config.qsfs.compact_seconds);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut since_evict, mut since_compact) = (Duration::ZERO, Duration::ZERO);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let s = shared.clone();
        since_evict += Duration::from_secs(1);
        since_compact += Duration::from_secs(1);
        let evict_now = since_evict >= EVICT_EVERY;
        if evict_now {
            since_evict = Duration::ZERO;
        }
        let compact_now = !compact_every.is_zero() && since_compact >= compact_every;
        if compact_now {
            since_compact = Duration::ZERO;
        }
        let r = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            s.engine.release_handles();
            s.engine.rotate_all(rotate_age)?;
            if compact_now {
                s.compact(s.config.qsfs.compact_dead_percent)?;
            }
            if evict_now {
                s.evict(false)?;
            }
            Ok(())
        })
        .await;
        match r {
            Ok(Err(e)) => tracing::warn!(error = %e, "background pass"),
            Err(e) => tracing::error!(error = %e, "background pass panicked"),
            Ok(Ok(())) => {}
        }
    }
}
