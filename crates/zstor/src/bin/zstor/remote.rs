//! The `zstor` binary's client side of the daemon (part of the binary, not the library):
//! when the config names a reachable `socket`, `store`/`retrieve`/`check`/`rebuild`/`status`
//! resolve their paths here (absolute paths and metadata keys, as in-process) and send one
//! request per file to the daemon ([`crate::monitor::server`]); output and exit codes match
//! the in-process commands.

use std::path::Path;
use std::process::ExitCode;

use crate::monitor::server::{call, Request, Response};
use anyhow::{anyhow, bail, Context, Result};
use zstor::keys;
use zstor::Config;

use super::{Cmd, StoreArgs};

fn unexpected(r: Response) -> anyhow::Error {
    anyhow!("unexpected answer from the daemon: {r:?}")
}

/// Run `cmd` through the daemon on `socket`.
pub async fn run(socket: &Path, config: &Config, cmd: Cmd) -> Result<ExitCode> {
    let root = config.root.as_deref();
    let ask = |req: Request| async move { call(socket, &req).await.context("daemon") };
    match cmd {
        Cmd::Store(args) => {
            args.warn_unsupported();
            let StoreArgs {
                file,
                key_path,
                error_on_failure,
                delete,
                notblocking,
                ..
            } = args;
            let kind = std::fs::metadata(&file)
                .with_context(|| format!("store {}", file.display()))?
                .file_type();
            let (files, base) = if kind.is_file() {
                (vec![keys::resolve(&file)?], None)
            } else if kind.is_dir() {
                let base = file
                    .canonicalize()
                    .with_context(|| format!("store {}", file.display()))?;
                (keys::files_under(&base)?, Some(base))
            } else {
                bail!("store {}: not a regular file or directory", file.display());
            };
            let mut failed = 0usize;
            for f in &files {
                let ctx = || format!("store {}", f.display());
                let result = async {
                    let key = keys::store_key(f, base.as_deref(), key_path.as_deref(), root)?;
                    match ask(Request::Store {
                        source: f.clone(),
                        key,
                        delete,
                        background: notblocking,
                    })
                    .await?
                    {
                        Response::Stored { delete_error, .. } => {
                            if let Some(e) = delete_error {
                                eprintln!(
                                    "zstor: warning: stored but not deleted {}: {e}",
                                    f.display()
                                );
                            }
                            Ok(())
                        }
                        Response::Queued => {
                            tracing::info!(file = %f.display(), "queued in the daemon");
                            Ok(())
                        }
                        Response::Error { message } => Err(anyhow!(message)),
                        other => Err(unexpected(other)),
                    }
                }
                .await
                .with_context(ctx);
                if let Err(e) = result {
                    if base.is_none() || error_on_failure {
                        return Err(e);
                    }
                    eprintln!("zstor: error: {e:#}");
                    failed += 1;
                }
            }
            super::report_unstored(failed, files.len(), &file);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Retrieve { file, out } => {
            let key = keys::lookup_key(&file, root)?;
            let ctx = || format!("retrieve {}", key.display());
            let out = keys::resolve(out.as_deref().unwrap_or(&key)).with_context(ctx)?;
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))
                    .with_context(ctx)?;
            }
            match ask(Request::Retrieve {
                key: key.clone(),
                out,
            })
            .await
            .with_context(ctx)?
            {
                Response::Retrieved { .. } => Ok(ExitCode::SUCCESS),
                Response::NotFound { name } => Err(anyhow!("{name}: not stored")).with_context(ctx),
                Response::Error { message } => Err(anyhow!(message)).with_context(ctx),
                other => Err(unexpected(other)),
            }
        }
        Cmd::Check { file } => {
            let key = keys::lookup_key(&file, root)?;
            match ask(Request::Check { key: key.clone() }).await? {
                Response::Checksum { checksum } => {
                    println!("{checksum}");
                    Ok(ExitCode::SUCCESS)
                }
                Response::NotFound { .. } => {
                    eprintln!("zstor: {}: not stored", key.display());
                    Ok(ExitCode::FAILURE)
                }
                Response::Error { message } => {
                    Err(anyhow!(message)).with_context(|| format!("check {}", key.display()))
                }
                other => Err(unexpected(other)),
            }
        }
        Cmd::Rebuild { file, key } => {
            let (path, name) = match (file, key) {
                (Some(file), None) => {
                    let p = keys::lookup_key(&file, root)?;
                    let name = p.display().to_string();
                    ((Some(p), None), name)
                }
                (None, Some(key)) => ((None, Some(key.clone())), key),
                _ => bail!("rebuild: give exactly one of -f FILE or -k KEY"),
            };
            match ask(Request::Rebuild {
                path: path.0,
                key: path.1,
            })
            .await?
            {
                Response::Rebuilt {
                    reencoded,
                    moved,
                    pieces_written,
                } => {
                    if reencoded {
                        println!("{name}: re-encoded with the current config");
                    } else if pieces_written == 0 && moved.is_empty() {
                        println!("{name}: healthy, nothing to rebuild");
                    } else {
                        println!(
                            "{name}: {pieces_written} piece(s) rewritten, shard(s) moved: {moved:?}"
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Response::NotFound { name } => Err(anyhow!("rebuild {name}: not stored")),
                Response::Error { message } => {
                    Err(anyhow!(message)).with_context(|| format!("rebuild {name}"))
                }
                other => Err(unexpected(other)),
            }
        }
        Cmd::Status { json } => match ask(Request::Status).await? {
            Response::Status { status, daemon } => {
                if json {
                    let mut v = serde_json::to_value(&status).context("encoding status")?;
                    if let Some(obj) = v.as_object_mut() {
                        obj.insert(
                            "daemon".into(),
                            serde_json::to_value(&daemon).context("encoding status")?,
                        );
                    }
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&v).context("encoding status")?
                    );
                } else {
                    super::print_status(&status);
                    println!();
                    println!("daemon");
                    let down = if daemon.down.is_empty() {
                        "none".to_owned()
                    } else {
                        daemon.down.join(", ")
                    };
                    println!("  backends down     {down}");
                    println!("  repair queue      {}", daemon.repair_queue);
                    println!("  objects repaired  {}", daemon.repaired);
                    println!("  repair failures   {}", daemon.repair_failures);
                    println!(
                        "  below redundancy  {} object(s) (pieces unwritten or on down backends)",
                        daemon.degraded
                    );
                    println!(
                        "  scrubbed          {} object(s), {} run(s)",
                        daemon.scrubbed, daemon.scrub_runs
                    );
                    if let Some(c) = &daemon.cache {
                        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
                        let limit = if c.limit_bytes == 0 {
                            "no limit".to_owned()
                        } else {
                            format!("{:.1} MiB", mib(c.limit_bytes))
                        };
                        println!(
                            "  cache             {:.1} MiB of {limit}, {} segment(s) evicted \
                             ({:.1} MiB), {} kept unverified",
                            mib(c.bytes),
                            c.evicted_files,
                            mib(c.evicted_bytes),
                            c.skipped
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Response::Error { message } => Err(anyhow!(message)).context("status"),
            other => Err(unexpected(other)),
        },
        Cmd::Test | Cmd::Monitor => bail!("not served by the daemon"),
    }
}
