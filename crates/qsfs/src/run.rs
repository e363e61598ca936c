//! Start-up and shutdown of a qsfs: stand-ins (embedded default), the local zdb engine with
//! the offloader as its event sink, the zdbfs mount, the [`Stack`] and its tasks, the
//! endpoints (control socket, metrics, web UI). Only the order of things lives here.
//!
//! Shutdown: stop the web UI (it holds the mount's root), unmount (zdbfs flushes and marks
//! itself clean), close every open segment (the last checkpoint), upload what is staged
//! (bounded wait), stop the tasks and stand-ins.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use zdb_engine::{Engine, EngineConfig};

use crate::config::Config;
use crate::offload::{Offloader, TEMP_NAMESPACE};
use crate::restore;
use crate::stack::Stack;
use crate::standin::{self, Standins};

/// How long shutdown waits for staged checkpoints to reach the backends.
const SHUTDOWN_UPLOAD_WAIT: Duration = Duration::from_secs(600);
/// How long the tasks and endpoints get to stop once the uploads are done.
const TASKS_STOP_WAIT: Duration = Duration::from_secs(30);
/// zdbfs's write-back delay for partly written blocks under qsfs (its own default is 30 s):
/// with `disperse_seconds` it makes the window a lost machine loses.
const ZDBFS_WRITE_BACK: Duration = Duration::from_secs(2);

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
            let admin = config.qsfs.standin_admin_password.as_deref();
            Some(Standins::start(
                &exe,
                dir,
                &standin::specs(&config)?,
                admin,
            )?)
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
    let store = Arc::new(config.store().context("zstor configuration")?);
    {
        // Connections ready before the first read of an evicted file needs them.
        let store = store.clone();
        tokio::spawn(async move { store.warm_up().await });
    }
    if restore_first {
        let r = restore::restore(&config, &store).await?;
        crate::say!(
            "qsfs: restored the last checkpoint of {} storage namespaces into {} ({} index, \
             descriptor and newest segment files, {} bytes); older data comes back from the \
             backends when it is read",
            r.namespaces,
            cache.display(),
            r.files,
            r.bytes
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

    let maintenance = zstor::maintenance::Maintenance::start(
        &config.path,
        store.clone(),
        zstor::maintenance::Settings::from_env(),
    );
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
    close_open_segments(&engine)?;

    let names = zdbfs::Ns::ALL.map(|n| n.default_name().to_string());
    let zstore = zdbfs::EngineStore::with_engine(engine.clone(), &names, true)?;
    let mountpoint = config.qsfs.mountpoint.clone();
    clear_dead_mount(&mountpoint)?;
    std::fs::create_dir_all(&mountpoint)
        .with_context(|| format!("creating mountpoint {}", mountpoint.display()))?;
    let mut opts = zdbfs::MountOptions::engine(config.zdb_dir());
    if config.qsfs.disperse_seconds > 0 {
        // Partly written blocks wait in memory at most this long: part of the loss window.
        opts.fs.dirty_expire = ZDBFS_WRITE_BACK;
    }
    let mounted = {
        let mp = mountpoint.clone();
        tokio::task::spawn_blocking(move || zdbfs::mount(&mp, Arc::new(zstore), &opts))
            .await?
            .with_context(|| format!("mounting {}", mountpoint.display()))?
    };
    let stack = Stack::new(config, engine, offloader, mounted.fs().clone());
    stack.start_tasks();
    let tasks = &stack.tasks;
    // The endpoints are extras: the filesystem runs even if one cannot start.
    if let Some(port) = stack.config.zstor.prometheus_port {
        let bound = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"));
        if let Some(listener) = optional("metrics endpoint", bound) {
            crate::say!("qsfs: metrics at http://127.0.0.1:{port}/metrics");
            let app = crate::metrics::routes(stack.clone());
            tasks.spawn("metrics", |stop| {
                service_kit::http::serve(listener, app, stop, "metrics endpoint")
            });
        }
    }
    // The tasks that hold the drive (the mount's root) open: web UI and S3 gateway.
    let mut drive_tasks = Vec::new();
    let mut drive = std::sync::Weak::new();
    if let (Some(addr), Some(token)) = (stack.config.qsfs.web_listen, &stack.config.qsfs.web_token)
    {
        let web = async {
            let tls = web_tls(&stack.config, addr)?;
            let listener =
                std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            listener.set_nonblocking(true)?;
            let storage: Arc<dyn qsfs_web::StorageStatus> = stack.clone();
            let mut state = qsfs_web::WebState::open(&mountpoint, token.clone(), Some(storage))
                .with_context(|| format!("opening {}", mountpoint.display()))?;
            state.trash.days = stack.config.qsfs.trash_days;
            state.traffic = Arc::clone(&stack.traffic);
            state.secure_cookies = tls.is_some();
            // The S3 gateway is an extra of its own: the web UI runs even if it cannot.
            let s3 = stack.config.qsfs.s3_listen.and_then(|addr| {
                let bound = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("binding {addr} (s3_listen)"));
                optional("S3 gateway", bound).map(|l| (addr, l, tls.clone()))
            });
            let listener = match tls {
                Some(files) => qsfs_web::Listener::Tls(listener, files),
                None => qsfs_web::Listener::Plain(tokio::net::TcpListener::from_std(listener)?),
            };
            anyhow::Ok((listener, state, s3))
        };
        if let Some((listener, state, s3)) = optional("web UI", web.await) {
            let scheme = match &listener {
                qsfs_web::Listener::Tls(_, files) => {
                    match qsfs_web::tls::fingerprint(&files.cert) {
                        Ok(f) => crate::say!(
                            "qsfs: web UI certificate {} (SHA-256 {f})",
                            files.cert.display()
                        ),
                        Err(e) => tracing::warn!(error = %e, "reading the web UI certificate"),
                    }
                    "https"
                }
                qsfs_web::Listener::Plain(_) => {
                    if !addr.ip().is_loopback() {
                        tracing::warn!(%addr, "the web UI listens beyond loopback over plain HTTP (web_plain_http): put a TLS proxy in front");
                    }
                    "http"
                }
            };
            crate::say!("qsfs: web UI at {scheme}://{addr}/ (access token: {token})");
            crate::say!(
                "qsfs: WebDAV at {scheme}://{addr}{}/ (an account and an app password, or user `{}` and the token)",
                qsfs_dav::PREFIX,
                qsfs_dav::auth::TOKEN_USER
            );
            let state = Arc::new(state);
            drive = Arc::downgrade(&state);
            if let Some((addr, listener, tls)) = s3 {
                drive_tasks.push(serve_s3(tasks, &state, addr, listener, tls)?);
            }
            let dav = qsfs_dav::routes(Arc::clone(&state));
            drive_tasks
                .push(tasks.spawn("web", |stop| qsfs_web::serve(listener, state, dav, stop)));
        }
    }
    let socket = stack.config.socket();
    let control = service_kit::control::bind(&socket)
        .await
        .map_err(|e| match e {
            service_kit::control::ControlError::AlreadyRunning(_) => anyhow::anyhow!(
                "another qsfs is running with this cache folder ({})",
                socket.display()
            ),
            e => e.into(),
        })?;
    let service = Arc::new(crate::control::Control {
        stack: stack.clone(),
        web: drive,
    });
    tasks.spawn("control", |stop| {
        service_kit::control::serve(control, service, stop, TASKS_STOP_WAIT)
    });

    let config_path = std::path::absolute(&stack.config.path)?;
    crate::say!("qsfs: mounted at {}", mountpoint.display());
    crate::say!(
        "qsfs: config {} (back it up: it holds the keys)",
        config_path.display()
    );
    crate::say!(
        "qsfs: `qsfs status --config {}` shows its state",
        config_path.display()
    );
    wait_for_stop(&mounted).await;

    tracing::info!("stopping: unmounting and offloading the open segments");
    // The web UI and the S3 gateway hold the mount's root open: they must let go first, or
    // the unmount is busy.
    for task in drive_tasks {
        if !task.stop(TASKS_STOP_WAIT).await {
            tracing::warn!(
                "the web UI or S3 gateway did not stop in time; the unmount may be busy"
            );
        }
    }
    let unmounted = tokio::task::spawn_blocking(move || mounted.unmount()).await?;
    if let Err(e) = unmounted {
        tracing::error!(error = %e, "unmount");
    }
    let s = stack.clone();
    tokio::task::spawn_blocking(move || s.engine.rotate_all(Duration::ZERO)).await??;
    let drain = async {
        while !stack.offloader.upload_pending().await {
            let left = stack.offloader.pending().len();
            crate::say_err!(
                "qsfs: {left} checkpoints waiting for the backends ({}); stop again to leave \
                 them staged for the next start",
                stack.offloader.last_error().unwrap_or_default()
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
            stack.config.qsfs.cache_dir.display()
        );
    }
    tasks.stop(TASKS_STOP_WAIT).await;
    stack.offloader.maintenance().stop().await;
    let _ = std::fs::remove_file(stack.config.socket());
    let s = stack.clone();
    tokio::task::spawn_blocking(move || s.engine.sync_all()).await??;
    if drained {
        crate::say!("qsfs: stopped; everything written is offloaded");
    } else {
        crate::say!("qsfs: stopped; some checkpoints stay staged locally until the next start");
    }
    Ok(())
}

/// The value of an optional part, or `None` with the reason printed.
fn optional<T>(what: &str, r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("{what} not started: {e:#}");
            crate::say_err!("qsfs: {what} not started: {e:#}");
            None
        }
    }
}

/// Hold an exclusive lock on the cache folder for the life of the returned file: a second
/// qsfs on the same cache (which would open the same engine files) is refused at once.
fn lock_cache(dir: &Path) -> anyhow::Result<std::fs::File> {
    // The cache holds the mount's blocks in plaintext: its owner's alone.
    zdb_engine::private::private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    match service_kit::sys::lock_exclusive(&dir.join("qsfs.lock")) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => bail!(
            "another qsfs is running with the cache folder {}",
            dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("locking {}", dir.display())),
    }
}

/// After a crash the kernel keeps the dead FUSE mount ("transport endpoint is not
/// connected"): detach it so the new mount can take its place. A live mount there is an
/// error (another filesystem is using the mountpoint).
fn clear_dead_mount(mountpoint: &Path) -> anyhow::Result<()> {
    if !service_kit::sys::is_mountpoint(mountpoint) {
        return Ok(());
    }
    match service_kit::sys::probe_fs(mountpoint) {
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

/// Close the open segment of every offloaded namespace that holds records: the last run may
/// have stored pieces of it (partial checkpoints) that this run's pieces would not continue,
/// and a restored one is stored already. Closed, it is stored whole.
fn close_open_segments(engine: &Engine) -> anyhow::Result<()> {
    for name in engine.list() {
        if name == TEMP_NAMESPACE {
            continue;
        }
        let Some(ns) = engine.namespace(&name) else {
            continue;
        };
        if ns.info().current_offset > zdb_engine::format::FILE_HEADER_LEN as u64 {
            ns.jump()
                .with_context(|| format!("closing the open segment of {name}"))?;
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

/// Serve the S3 gateway on `listener` (bound to `addr`), over TLS with `tls`.
fn serve_s3(
    tasks: &service_kit::Tasks,
    state: &Arc<qsfs_web::WebState>,
    addr: std::net::SocketAddr,
    listener: std::net::TcpListener,
    tls: Option<qsfs_web::tls::TlsFiles>,
) -> anyhow::Result<service_kit::task::TaskHandle> {
    listener.set_nonblocking(true)?;
    let app = qsfs_s3::router(Arc::clone(state));
    let scheme = if tls.is_some() { "https" } else { "http" };
    crate::say!(
        "qsfs: S3 at {scheme}://{addr}/ (path-style; keys: qsfs user access-key NAME LABEL)"
    );
    if let Some(files) = tls {
        return Ok(tasks.spawn("s3", |stop| async move {
            if let Err(e) = qsfs_web::tls::serve(listener, &files, app, stop).await {
                tracing::error!(error = %e, "the S3 gateway stopped");
            }
        }));
    }
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the S3 gateway listens beyond loopback over plain HTTP: signatures keep requests whole, not secret");
    }
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(tasks.spawn("s3", |stop| {
        service_kit::http::serve(listener, app, stop, "S3 gateway")
    }))
}

/// The web UI's certificate files: the configured ones; a self-signed one kept beside the
/// config when it listens beyond loopback without them (unless `web_plain_http`); none on
/// loopback.
fn web_tls(
    config: &crate::config::Config,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Option<qsfs_web::tls::TlsFiles>> {
    let q = &config.qsfs;
    if let (Some(cert), Some(key)) = (&q.tls_cert, &q.tls_key) {
        return Ok(Some(qsfs_web::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }));
    }
    if addr.ip().is_loopback() || q.web_plain_http {
        return Ok(None);
    }
    let dir = config
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("web-tls");
    let mut names = vec!["localhost".to_string()];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    if let Ok(host) = host_name() {
        names.push(host);
    }
    let files = qsfs_web::tls::self_signed(&dir, names)
        .with_context(|| format!("making a self-signed certificate in {}", dir.display()))?;
    Ok(Some(files))
}

/// This machine's host name, for the self-signed certificate.
fn host_name() -> std::io::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    let name = name.trim();
    if name.is_empty() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback: plain HTTP; beyond it: a self-signed certificate kept beside the config,
    /// unless plain HTTP is asked for or a certificate is configured.
    #[test]
    fn the_web_ui_gets_tls_beyond_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            crate::config::write_embedded_default(dir.path(), &dir.path().join("mnt"), 512, 64)
                .unwrap();
        let loopback: std::net::SocketAddr = "127.0.0.1:9980".parse().unwrap();
        let everywhere: std::net::SocketAddr = "0.0.0.0:9980".parse().unwrap();
        assert_eq!(web_tls(&config, loopback).unwrap(), None);
        let made = web_tls(&config, everywhere).unwrap().expect("self-signed");
        assert_eq!(made.cert, dir.path().join("web-tls/cert.pem"));
        assert!(qsfs_web::tls::fingerprint(&made.cert).is_ok());
        config.qsfs.web_plain_http = true;
        assert_eq!(web_tls(&config, everywhere).unwrap(), None);
        config.qsfs.tls_cert = Some("/etc/c.pem".into());
        config.qsfs.tls_key = Some("/etc/k.pem".into());
        let given = web_tls(&config, loopback).unwrap().unwrap();
        assert_eq!(given.cert, std::path::PathBuf::from("/etc/c.pem"));
    }
}
