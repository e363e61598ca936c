//! The `qsfs` binary: with no arguments, the whole stack on the embedded default (created in
//! `./qsfs-data` on first run); with `--config FILE`, on the backends that file names.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use qsfs::config::{self, Config};
use qsfs::control::{self, KeyKind, Request, Response, UserRequest};

#[derive(Parser, Debug)]
#[command(
    name = "qsfs",
    about = "Quantum-safe filesystem: a local cache of zdbfs, dispersed by zstor"
)]
struct Cli {
    /// Configuration file (zstor keys plus [qsfs]); default: DATA/qsfs.toml, created on
    /// first run with stand-in local backends and fresh keys.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Folder of the embedded default (config, keys, cache, stand-in backends).
    #[arg(long, default_value = "qsfs-data", global = true)]
    data: PathBuf,
    /// Where the embedded default mounts the filesystem (used when creating it).
    #[arg(long, default_value = "qsfs")]
    mountpoint: PathBuf,
    /// Local cache limit of the embedded default in MiB (used when creating it).
    #[arg(long, default_value_t = 2048)]
    cache_mib: u64,
    /// Segment size of the embedded default in MiB (used when creating it).
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Add an account with a home folder (home/NAME); asks for its password.
    Add {
        name: String,
        /// The account sees and manages the whole drive.
        #[arg(long)]
        admin: bool,
        /// Most bytes the account may keep, e.g. 10G (powers of 1024).
        #[arg(long, value_parser = service_kit::flags::parse_size)]
        quota: Option<u64>,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and end its sessions (its home folder stays).
    Del { name: String },
    /// Set an account's password and end its sessions.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
    /// Make an app password for an account's device or program (WebDAV at /dav/):
    /// printed once.
    AppPassword {
        name: String,
        /// What it is for ("phone", "rclone on the NAS").
        label: String,
    },
    /// List an account's app passwords.
    AppPasswords { name: String },
    /// Revoke one app password of an account (by id), or all with --all.
    Revoke {
        name: String,
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Make an S3 access key for an account (the S3 gateway, `s3_listen`): its id and
    /// secret, the secret printed once.
    AccessKey {
        name: String,
        /// What it is for ("restic on the laptop").
        label: String,
    },
    /// List an account's S3 access keys.
    AccessKeys { name: String },
    /// Revoke one S3 access key of an account (by key id), or all with --all.
    RevokeKey {
        name: String,
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run (the default).
    Run,
    /// Refill an empty cache folder from the backends, then run.
    Restore,
    /// Show backends, cache use, segments local/offloaded, offload activity.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Close the open segments now and wait until they are offloaded.
    Rotate,
    /// Delete every offloaded data segment from the local cache (zdbfs's metadata stays,
    /// so the tree stays browsable without the backends).
    Evict {
        /// Evict zdbfs's metadata segments too.
        #[arg(long)]
        metadata: bool,
    },
    /// Give back backend space now: rewrite the stored segments that are mostly dead
    /// (overwritten or deleted data), then rotate and wait until that is offloaded.
    Compact {
        /// Compact segments at least this percent dead (default: compact_dead_percent).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
        dead_percent: Option<u8>,
    },
    /// Manage the web drive's accounts (the running qsfs stores them in the filesystem).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// (internal) serve one stand-in backend.
    #[command(hide = true)]
    Standin {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        sequential: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Only stderr: nothing in the log set-up can fail.
    let _ = service_kit::logging::init(service_kit::logging::Level::Default("info"), None);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            qsfs::say_err!("qsfs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    match cli.command.take().unwrap_or(Command::Run) {
        Command::Standin {
            dir,
            port,
            namespace,
            sequential,
        } => qsfs::standin::serve(&dir, port, &namespace, sequential),
        Command::User { action } => user(&existing(&cli)?, action),
        Command::Run => {
            let config = match &cli.config {
                Some(path) => load(path)?,
                None => embedded(&cli)?,
            };
            qsfs::run::run(config, false)
        }
        Command::Restore => {
            // The configuration holds the keys: restore never creates one.
            let path = config_path(&cli);
            if !path.exists() {
                bail!(
                    "restore needs the configuration holding the keys: {} does not exist \
                     (give --config FILE)",
                    path.display()
                );
            }
            qsfs::run::run(load(&path)?, true)
        }
        Command::Status { json } => {
            let config = existing(&cli)?;
            match ask(&config, Request::Status)? {
                Response::Status(s) if json => qsfs::say!("{}", serde_json::to_string_pretty(&s)?),
                Response::Status(s) => qsfs::say!("{}", s.render().trim_end()),
                other => bail!("unexpected answer: {other:?}"),
            }
            Ok(())
        }
        Command::Rotate => match ask(&existing(&cli)?, Request::Rotate)? {
            Response::Rotated { offloaded: true } => {
                qsfs::say!("rotated; everything is offloaded");
                Ok(())
            }
            Response::Rotated { offloaded: false } => {
                bail!("rotated, but some checkpoints are still waiting for the backends (see `qsfs status`)")
            }
            other => bail!("unexpected answer: {other:?}"),
        },
        Command::Evict { metadata } => match ask(&existing(&cli)?, Request::Evict { metadata })? {
            Response::Evicted(r) => {
                qsfs::say!(
                    "evicted {} segments ({} bytes)",
                    r.evicted_files,
                    r.evicted_bytes
                );
                Ok(())
            }
            other => bail!("unexpected answer: {other:?}"),
        },
        Command::Compact { dead_percent } => {
            match ask(&existing(&cli)?, Request::Compact { dead_percent })? {
                Response::Compacted { report, offloaded } => {
                    qsfs::say!(
                        "compacted {} segments ({} records, {} bytes moved)",
                        report.segments,
                        report.records_moved,
                        report.bytes_moved
                    );
                    if !offloaded {
                        bail!("some checkpoints are still waiting for the backends (see `qsfs status`)");
                    }
                    Ok(())
                }
                other => bail!("unexpected answer: {other:?}"),
            }
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| "invalid configuration".to_string())
}

/// Where the configuration is: `--config`, else the embedded default's.
fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| cli.data.join("qsfs.toml"))
}

/// The configuration of a running qsfs.
fn existing(cli: &Cli) -> anyhow::Result<Config> {
    load(&config_path(cli))
}

/// The embedded default in `data`: reused when it exists, created (with a warning) if not.
fn embedded(cli: &Cli) -> anyhow::Result<Config> {
    let data = &cli.data;
    let path = data.join("qsfs.toml");
    if path.exists() {
        return load(&path);
    }
    let config =
        config::write_embedded_default(data, &cli.mountpoint, cli.cache_mib, cli.segment_mib)?;
    qsfs::say_err!(
        "qsfs: created the embedded default in {}: 6 data + 4 metadata stand-in backends \
         (4+2 code) and fresh keys.\n\
         qsfs: WARNING: back up {} now. Its keys are the only way to read your data.",
        data.display(),
        config.path.display()
    );
    Ok(config)
}

/// `qsfs user …`, through the running qsfs.
fn user(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let req = match action {
        UserAction::List => {
            let Response::Users(list) = ask(config, Request::User(UserRequest::List))? else {
                bail!("unexpected answer");
            };
            for u in list {
                let quota = u
                    .quota
                    .map_or("no quota".into(), |q| format!("quota {q} bytes"));
                let role = if u.admin { "admin" } else { "user" };
                qsfs::say!("{}\t{role}\t{quota}", u.name);
            }
            return Ok(());
        }
        UserAction::Add {
            name,
            admin,
            quota,
            password_stdin,
        } => UserRequest::Add {
            password: new_password(&name, password_stdin)?,
            name,
            admin,
            quota,
        },
        UserAction::AppPassword { name, label } => {
            let (info, password) = new_key(config, name, label, KeyKind::AppPassword)?;
            qsfs::say!(
                "app password {} ({}) for {}:",
                info.id,
                info.label,
                info.user
            );
            qsfs::say!("{password}");
            qsfs::say!(
                "(shown this once; WebDAV clients sign in as {} with it)",
                info.user
            );
            return Ok(());
        }
        UserAction::AccessKey { name, label } => {
            let (info, secret) = new_key(config, name, label, KeyKind::AccessKey)?;
            qsfs::say!("S3 access key for {} ({}):", info.user, info.label);
            qsfs::say!("access key id:     {}", info.id);
            qsfs::say!("secret access key: {secret}");
            qsfs::say!("(the secret is shown this once)");
            return Ok(());
        }
        UserAction::AppPasswords { name } => return list_keys(config, name, KeyKind::AppPassword),
        UserAction::AccessKeys { name } => return list_keys(config, name, KeyKind::AccessKey),
        UserAction::Revoke { name, id, all } => {
            return revoke_keys(config, name, id, all, KeyKind::AppPassword)
        }
        UserAction::RevokeKey { name, id, all } => {
            return revoke_keys(config, name, id, all, KeyKind::AccessKey)
        }
        UserAction::Del { name } => UserRequest::Del { name },
        UserAction::Passwd {
            name,
            password_stdin,
        } => UserRequest::Passwd {
            password: new_password(&name, password_stdin)?,
            name,
        },
    };
    ask(config, Request::User(req))?;
    qsfs::say!("done");
    Ok(())
}

/// A new password: the first line of stdin, or asked twice on the terminal without echo.
fn new_password(name: &str, from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password(format!("new password for {name}: "))
        .context("reading the password from the terminal (or give --password-stdin)")?;
    let again = rpassword::prompt_password("again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// A new key of `kind` for account `name`: its listing and its secret.
fn new_key(
    config: &Config,
    name: String,
    label: String,
    kind: KeyKind,
) -> anyhow::Result<(qsfs_web::keyring::KeyInfo, String)> {
    match ask(
        config,
        Request::User(UserRequest::NewKey { name, label, kind }),
    )? {
        Response::KeyMade { info, secret } => Ok((info, secret)),
        _ => bail!("unexpected answer"),
    }
}

fn list_keys(config: &Config, name: String, kind: KeyKind) -> anyhow::Result<()> {
    let Response::Keys(list) = ask(config, Request::User(UserRequest::Keys { name, kind }))? else {
        bail!("unexpected answer");
    };
    for k in list {
        let used = k
            .last_used
            .map_or("not used since qsfs started".into(), |t| {
                format!("last used {t}")
            });
        qsfs::say!("{}\t{}\tmade {}\t{used}", k.id, k.label, k.created);
    }
    Ok(())
}

fn revoke_keys(
    config: &Config,
    name: String,
    id: Option<String>,
    all: bool,
    kind: KeyKind,
) -> anyhow::Result<()> {
    if id.is_none() && !all {
        bail!("name the key to revoke (its id), or give --all");
    }
    let Response::Revoked(n) = ask(
        config,
        Request::User(UserRequest::Revoke { name, id, kind }),
    )?
    else {
        bail!("unexpected answer");
    };
    qsfs::say!("revoked {n}");
    Ok(())
}

fn ask(config: &Config, req: Request) -> anyhow::Result<Response> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(control::call(&config.socket(), &req))? {
        Response::Error(e) => bail!("{e}"),
        r => Ok(r),
    }
}
