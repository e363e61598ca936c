//! The `zdb` binary: parse flags, set up logging, optionally daemonize, run the server until
//! SIGTERM/SIGINT. Everything else lives in the `zdb_server` library.

#![forbid(unsafe_code)]

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::Cli;
use service_kit::logging::{self, Level};
use service_kit::sys::detach;
use std::process::ExitCode;
use std::sync::Arc;
use zdb_engine::{Engine, EventSink, Mode};
use zdb_server::{HookRunner, Server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = if cli.background && !detach::is_child() {
        detach::spawn_and_wait(cli.logfile.as_deref())
            .map(|pid| println!("zdb: running in background (pid {pid})"))
            .map_err(Into::into)
    } else {
        init_logging(&cli).and_then(|()| run(cli))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("zdb: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let level = Level::Default(if cli.verbose { "debug" } else { "info" });
    // A background child already has the logfile as stderr.
    let file = cli.logfile.as_deref().filter(|_| !detach::is_child());
    logging::init(level, file)?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.server_config()?;
    if cli.dump {
        return dump(&config);
    }
    let threads = cli.serving_threads();
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = builder
        .enable_all()
        .thread_name("zdb-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Handlers go in before anyone can see us ready, so an early SIGTERM is graceful too.
        let stop = signals();
        let server = Server::bind(config.clone())
            .await
            .context("cannot start the server")?;
        match (server.local_addr(), &config.socket) {
            (Some(addr), _) => tracing::info!(%addr, "zdb ready"),
            (None, Some(p)) => tracing::info!(socket = %p.display(), "zdb ready"),
            (None, None) => {}
        }
        if detach::is_child() {
            detach::notify_ready();
        }
        server.run_until(stop).await.context("server failed")
    })
}

/// Installs the SIGTERM/SIGINT handlers now; the future completes on the first of them.
fn signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!(
                "cannot install signal handlers; the server will only stop when killed"
            );
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}

/// `--dump`: load everything, print each namespace's statistics, exit.
fn dump(config: &zdb_server::ServerConfig) -> anyhow::Result<()> {
    let hooks: Arc<dyn EventSink> =
        Arc::new(HookRunner::new(config.hook.clone(), config.instance_id()));
    let engine = Engine::open(config.engine.clone(), hooks).context("cannot load the dataset")?;
    for name in engine.list() {
        let Some(ns) = engine.namespace(&name) else {
            continue;
        };
        let i = ns.info();
        let mode = if i.settings.mode == Mode::Seq {
            "sequential"
        } else {
            "userkey"
        };
        println!(
            "namespace {name}: mode {mode}, entries {}, data {} bytes, index {} bytes, segments {:?}, \
             current segment {} offset {}, next id {}, maxsize {}, public {}, password {}, worm {}, locked {}, frozen {}",
            i.entries,
            i.data_bytes,
            i.index_bytes,
            i.segments,
            i.current_segment,
            i.current_offset,
            i.next_id,
            i.settings.maxsize,
            i.settings.public,
            i.settings.password.is_some(),
            i.settings.worm,
            i.settings.locked,
            i.settings.frozen,
        );
    }
    Ok(())
}
