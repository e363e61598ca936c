//! The `zdbfs` binary: `zdbfs MOUNTPOINT [-o opt,opt…]`, options as ThreeFold's zdbfs (see
//! `zdbfs::options`). Runs until unmounted or sent SIGTERM/SIGINT, then flushes everything.

use anyhow::Context;
use clap::Parser;
use service_kit::logging::{self, Level};
use service_kit::sys::detach;
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
    if opts.background && !detach::is_child() {
        // The parent returns once the detached child reports the mount up.
        let pid = detach::spawn_and_wait(opts.logfile.as_deref())?;
        println!("zdbfs: running in background (pid {pid})");
        return Ok(());
    }
    // A detached child already has the log file as stderr.
    let logfile = opts.logfile.as_deref().filter(|_| !detach::is_child());
    logging::init(Level::Default("info"), logfile)?;
    let store = zdbfs::open_store(&opts).context("opening the backend")?;
    let mounted = zdbfs::mount(&cli.mountpoint, store, &opts)
        .with_context(|| format!("mounting {}", cli.mountpoint.display()))?;
    tracing::info!(mountpoint = %cli.mountpoint.display(), "mounted");
    if detach::is_child() {
        detach::notify_ready();
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
