//! `wan-rig`: emulated wide-area links in front of servers on this machine, for benchmark
//! scripts (tests use the library's `Rig`).
//!
//! ```text
//! wan-rig serve --link 127.0.0.1:7001=127.0.0.1:9001 [--link ...] --profile delay=25ms,rate=100mbit \
//!               --control /tmp/rig.sock
//! wan-rig ctl /tmp/rig.sock partition 0,3
//! ```

#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use wan_rig::{control, Link, Profile};

#[derive(Parser)]
#[command(about = "Emulated wide-area links (delay, bandwidth, loss, partitions) on loopback")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run links until SIGINT or SIGTERM.
    Serve {
        /// LISTEN=UPSTREAM, once per link (LISTEN must be a loopback address).
        #[arg(long = "link", required = true, value_parser = parse_link)]
        links: Vec<(SocketAddr, SocketAddr)>,
        /// The profile of every link at start.
        #[arg(long, default_value = "")]
        profile: Profile,
        /// Unix socket taking commands (see `wan-rig ctl`).
        #[arg(long)]
        control: PathBuf,
    },
    /// Send one command to a running rig and print its answer.
    Ctl {
        socket: PathBuf,
        /// e.g. `partition all`, `heal 2`, `profile 0,1 delay=250ms,rate=10mbit`, `show`.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

fn parse_link(s: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (l, u) = s.split_once('=').ok_or("expected LISTEN=UPSTREAM")?;
    let listen: SocketAddr = l.parse().map_err(|e| format!("{l}: {e}"))?;
    let upstream: SocketAddr = u.parse().map_err(|e| format!("{u}: {e}"))?;
    if !listen.ip().is_loopback() {
        return Err(format!("{listen}: the rig listens on loopback only"));
    }
    Ok((listen, upstream))
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve {
            links,
            profile,
            control,
        } => serve(links, profile, control),
        Cmd::Ctl { socket, command } => ctl(&socket, &command.join(" ")),
    }
}

fn serve(pairs: Vec<(SocketAddr, SocketAddr)>, profile: Profile, control: PathBuf) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut links = Vec::new();
        for (listen, upstream) in pairs {
            links.push(
                Link::bind(listen, upstream, profile)
                    .await
                    .with_context(|| format!("listening on {listen}"))?,
            );
        }
        eprintln!(
            "wan-rig: {} link(s), {profile}; control {}",
            links.len(),
            control.display()
        );
        let ctl = control::serve(&control, links);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = ctl => r.with_context(|| format!("control socket {}", control.display()))?,
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = std::fs::remove_file(&control);
        Ok(())
    })
}

fn ctl(socket: &PathBuf, command: &str) -> Result<()> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    writeln!(s, "{command}")?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer)?;
    print!("{answer}");
    if !answer.starts_with("ok") {
        bail!("the rig refused: {}", answer.trim());
    }
    Ok(())
}
