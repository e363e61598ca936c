//! The `zdbfs` binary: `zdbfs MOUNTPOINT [-o opt,opt…]`, options as ThreeFold's zdbfs (see
//! `zdbfs::options`). Runs until unmounted or sent SIGTERM/SIGINT, then flushes everything.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "zdbfs", about = "FUSE filesystem stored in zdb namespaces")]
struct Cli {
    /// Where to mount.
    mountpoint: PathBuf,
    /// Comma-separated options (host, port, unix, mh/mp/mu/mn/ms, dh/…, th/…, size, nocache,
    /// autons, background, logfile, cachesize, engine, flush, timeout, threads).
    #[arg(short = 'o', action = clap::ArgAction::Append)]
    options: Vec<String>,
    /// Data directory of the in-process engine (used when no server option is given).
    #[arg(long, default_value = "zdbfs-engine")]
    engine: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let opts = zdbfs::options::parse(&cli.options, cli.engine.clone())?;
    init_logging(opts.logfile.as_deref())?;
    let ready = if opts.background {
        Some(daemonize()?)
    } else {
        None
    };
    let store = zdbfs::open_store(&opts).context("opening the backend")?;
    let mounted = zdbfs::mount(&cli.mountpoint, store, &opts)
        .with_context(|| format!("mounting {}", cli.mountpoint.display()))?;
    tracing::info!(mountpoint = %cli.mountpoint.display(), "mounted");
    if let Some(fd) = ready {
        // Tell the waiting parent that the mount is up.
        // SAFETY: fd is the write end of a pipe we own; writing one byte and closing it.
        unsafe {
            libc::write(fd, b"1".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())?;
    }
    // SIGUSR1 logs the metrics.
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone())?;
    while !term.load(Ordering::Relaxed) && !mounted.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if usr1.swap(false, Ordering::Relaxed) {
            tracing::info!(metrics = ?mounted.fs().metrics().snapshot(), "metrics");
        }
    }
    tracing::info!("unmounting");
    let metrics = mounted.fs().metrics().snapshot();
    mounted.unmount().context("final flush")?;
    tracing::info!(?metrics, "clean shutdown");
    Ok(())
}

fn init_logging(logfile: Option<&std::path::Path>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// Fork: the parent waits until the child reports the mount ready, then exits; the child
/// gets a new session and returns the pipe end to report on.
fn daemonize() -> anyhow::Result<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe(2).
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: called before any thread is started, so the child is a faithful copy.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()).context("fork"),
        0 => {
            // SAFETY: plain syscalls on our own descriptors.
            unsafe {
                libc::close(fds[0]);
                libc::setsid();
            }
            Ok(fds[1])
        }
        _ => {
            let mut b = [0u8; 1];
            // SAFETY: reading one byte into a valid buffer from our pipe end.
            let n = unsafe {
                libc::close(fds[1]);
                libc::read(fds[0], b.as_mut_ptr().cast(), 1)
            };
            std::process::exit(if n == 1 { 0 } else { 1 });
        }
    }
}
