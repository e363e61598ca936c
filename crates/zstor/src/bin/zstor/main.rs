//! `zstor`: the command line tool, with 0-stor v2's (`zstor_v2`) global flags, sub-commands
//! and their flags, so scripts written for it keep working.
//!
//! Thin by design: argument parsing (clap), logging, output formatting and exit codes live
//! here; everything else is in the library (`zstor::Store`, `zstor::keys`, `zstor::probe`). Errors are
//! explained here with context (which file, which backend, what to check).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use zstor::store::RebuildTarget;
use zstor::{keys, probe};
use zstor::{Config, Error, Store};

mod diagnose;
mod monitor;
mod remote;

/// Compress, encrypt and erasure-code files over zdb backends (0-stor v2 compatible).
#[derive(Parser, Debug)]
#[command(name = "zstor", version, about, long_about = None)]
struct Opts {
    /// Path to the config file.
    #[arg(short, long, value_name = "PATH", default_value = "zstor_config.toml")]
    config: PathBuf,
    /// Enable debug logging.
    #[arg(short, long)]
    debug: bool,
    /// Append log lines to this file instead of standard error.
    #[arg(long = "log_file", value_name = "PATH")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `zstor store`'s arguments (the daemon's client and the in-process command read the same).
#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// File, or directory (every regular file under it, recursively), to store.
    #[arg(short, long, value_name = "FILE|DIR")]
    file: PathBuf,
    /// Store as if the file were in this directory: the key is KEY_PATH/<file name>
    /// (KEY_PATH/<path relative to DIR> for a directory).
    #[arg(short = 'k', long = "key-path", value_name = "KEY_PATH")]
    key_path: Option<PathBuf>,
    /// Directory store: stop at the first file that fails and exit non-zero (without it,
    /// failures are reported and the others stored; exit status 0, as 0-stor v2).
    #[arg(short = 'e', long = "error-on-failure")]
    error_on_failure: bool,
    /// Accepted for 0-stor v2 compatibility; failure records are not saved yet.
    #[arg(short = 's', long = "save-failure")]
    save_failure: bool,
    /// Delete each local file once its upload is verified (metadata read back with the
    /// same checksum).
    #[arg(short, long)]
    delete: bool,
    /// Do not wait for the upload: through the daemon, return once it queued the store
    /// (its outcome is in the daemon's log and metrics); in-process, this blocks.
    #[arg(short, long)]
    notblocking: bool,
}

impl StoreArgs {
    fn warn_unsupported(&self) {
        if self.save_failure {
            tracing::warn!("-s/--save-failure: failure records are not saved yet");
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Encode a file (or every file under a directory) and store it on the backends.
    ///
    /// Success means every shard and the metadata were written. A file is keyed by its
    /// absolute path (stored again, the new version replaces the old one).
    Store(StoreArgs),
    /// Repair or re-encode a stored file with the current config.
    ///
    /// Same code (k, n) as the config: shards on backends that left the config or do not
    /// answer move to other backends, and missing or corrupt pieces are rewritten; intact
    /// pieces stay. Another code: the file is re-encoded and stored again.
    Rebuild {
        /// Path the file was stored under.
        #[arg(short, long, conflicts_with = "key", required_unless_present = "key")]
        file: Option<PathBuf>,
        /// Raw metadata key (`/{prefix}/meta/{hash}`).
        #[arg(short, long)]
        key: Option<String>,
    },
    /// Rebuild a stored file from its shards.
    ///
    /// Written to the path it was stored under (0-stor v2), or to OUT; through a temporary
    /// file renamed only once the checksum matches.
    Retrieve {
        /// Path the file was stored under (relative paths are relative to the config's
        /// `root` when it has one).
        #[arg(short, long)]
        file: PathBuf,
        /// Write here instead of the original path.
        #[arg(short, long, value_name = "OUT")]
        out: Option<PathBuf>,
    },
    /// Print the stored blake2b-128 checksum of a file (as `b2sum -l 128`); exit status 1
    /// if it is not stored.
    Check {
        /// Path the file was stored under.
        #[arg(short, long)]
        file: PathBuf,
    },
    /// Run the daemon: serves the other sub-commands on the config's `socket`, probes
    /// backends, repairs and scrubs objects, exports `/metrics` on `prometheus_port`.
    /// SIGUSR1 reloads the config (a bad one is refused), SIGTERM drains and exits.
    Monitor,
    /// Validate the config, contact every backend and check that a shard placement exists.
    Test,
    /// Show every backend: reachable, objects, used and free space, usage.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let log_to_file = opts.log_file.is_some();
    if let Err(e) = init_logging(&opts) {
        eprintln!("zstor: error: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(opts)),
        Err(e) => Err(anyhow!(e).context("starting the async runtime")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if log_to_file {
                tracing::error!("{e:#}");
            }
            eprintln!("zstor: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(opts: &Opts) -> Result<()> {
    use service_kit::logging::{self, Level};
    let level = if opts.debug {
        Level::Forced("debug")
    } else if opts.log_file.is_some() || matches!(opts.cmd, Cmd::Monitor) {
        // The daemon logs its lifecycle, health verdicts and repairs at info.
        Level::Default("info")
    } else {
        Level::Default("warn")
    };
    logging::init(level, opts.log_file.as_deref()).context("initialising logging")
}

async fn run(opts: Opts) -> Result<ExitCode> {
    let config =
        Config::load(&opts.config).with_context(|| format!("config {}", opts.config.display()))?;
    if let Cmd::Monitor = &opts.cmd {
        monitor::run(&opts.config, config)
            .await
            .context("monitor")?;
        return Ok(ExitCode::SUCCESS);
    }
    if !matches!(opts.cmd, Cmd::Test) {
        if let Some(socket) = daemon_socket(&config).await {
            return remote::run(&socket, &config, opts.cmd).await;
        }
    }
    match opts.cmd {
        Cmd::Store(args) => {
            if args.notblocking {
                tracing::debug!("-n/--notblocking: no daemon, storing in the foreground");
            }
            args.warn_unsupported();
            let store = open_store(config)?;
            cmd_store(&store, &args).await
        }
        Cmd::Retrieve { file, out } => {
            let store = open_store(config)?;
            cmd_retrieve(&store, &file, out.as_deref()).await
        }
        Cmd::Check { file } => {
            let store = open_store(config)?;
            let key = keys::lookup_key(&file, store.config().root.as_deref())?;
            match store.checksum(&key).await {
                Ok(sum) => {
                    println!("{}", hex::encode(sum));
                    Ok(ExitCode::SUCCESS)
                }
                Err(Error::NotFound(_)) => {
                    eprintln!("zstor: {}: not stored", key.display());
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(explain(e)).with_context(|| format!("check {}", key.display())),
            }
        }
        Cmd::Status { json } => {
            let st = probe::status(&config).await;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&st).context("encoding status")?
                );
            } else {
                print_status(&st);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Test => cmd_test(&config).await,
        Cmd::Rebuild { file, key } => {
            let store = open_store(config)?;
            let target = match (file, key) {
                (Some(file), None) => {
                    RebuildTarget::Path(keys::lookup_key(&file, store.config().root.as_deref())?)
                }
                (None, Some(key)) => RebuildTarget::Key(key),
                _ => bail!("rebuild: give exactly one of -f FILE or -k KEY"),
            };
            let name = match &target {
                RebuildTarget::Path(p) => p.display().to_string(),
                RebuildTarget::Key(k) => k.clone(),
            };
            let report = store
                .rebuild(&target)
                .await
                .map_err(explain)
                .with_context(|| format!("rebuild {name}"))?;
            if report.reencoded {
                println!("{name}: re-encoded with the current config");
            } else if report.unchanged() && report.moved.is_empty() {
                println!("{name}: healthy, nothing to rebuild");
            } else {
                println!(
                    "{name}: {} piece(s) rewritten, shard(s) moved: {:?}",
                    report.pieces_written, report.moved
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Monitor => bail!("monitor: handled above"),
    }
}

/// The daemon's socket when the config names one and it accepts connections; a configured
/// but unreachable socket is warned about and the command runs in-process.
async fn daemon_socket(config: &Config) -> Option<PathBuf> {
    let socket = config.socket.as_ref()?;
    match monitor::server::reachable(socket).await {
        Ok(()) => Some(socket.clone()),
        Err(e) => {
            tracing::info!(error = %e, "daemon not reachable; running in-process");
            eprintln!("zstor: warning: {e}; running in-process");
            None
        }
    }
}

fn open_store(config: Config) -> Result<Store> {
    Store::new(config).context("setting up the store")
}

/// Add what the user can do about an error of the library.
fn explain(e: Error) -> anyhow::Error {
    match e {
        Error::DecryptionFailed => anyhow!(
            "decryption failed: wrong key ([encryption] or [meta.config.encryption]) or \
             tampered data"
        ),
        Error::NotFound(path) => anyhow!("{path}: not stored"),
        other => anyhow!(other),
    }
}

fn progress_bar(len: u64, message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

async fn cmd_store(store: &Store, args: &StoreArgs) -> Result<ExitCode> {
    let (file, key_path, delete) = (args.file.as_path(), args.key_path.as_deref(), args.delete);
    let kind = std::fs::metadata(file)
        .with_context(|| format!("store {}", file.display()))?
        .file_type();
    if kind.is_file() {
        let len = std::fs::metadata(file)?.len();
        let bar = progress_bar(len, file.display().to_string());
        let stored = store_one(store, file, None, key_path, delete, &bar).await;
        bar.finish_and_clear();
        stored?;
        return Ok(ExitCode::SUCCESS);
    }
    if !kind.is_dir() {
        bail!("store {}: not a regular file or directory", file.display());
    }
    let base = file
        .canonicalize()
        .with_context(|| format!("store {}", file.display()))?;
    let files = keys::files_under(&base)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    let bar = progress_bar(sizes.iter().sum(), format!("{} files", files.len()));
    let (failed, first_error) = store_side_by_side(
        &files,
        &sizes,
        |f| store_one(store, f, Some(&base), key_path, delete, &bar),
        args.error_on_failure,
    )
    .await;
    bar.finish_and_clear();
    if let Some(e) = first_error {
        return Err(e);
    }
    report_unstored(failed, files.len(), &base);
    Ok(ExitCode::SUCCESS)
}

/// Files of a folder store run side by side, weighted by size out of [`FOLDER_UNITS`] units
/// of [`UNIT_BYTES`]: on a link of 50 ms round trip a small file costs about four round trips
/// (metadata lookup, pieces, metadata write, verification), so 200 of them one after another
/// take 40 s; 64 at a time, under a second. A file of 16 MiB or more runs alone (it keeps
/// several chunks in flight itself), which also bounds memory to about 16 MiB of file data.
const FOLDER_UNITS: u32 = 64;
const UNIT_BYTES: u64 = 256 << 10;

/// Run `store_one` over `files` side by side; returns how many failed (each reported on
/// stderr) and, with `stop_at_first`, the first error (no new file starts after it; those
/// running finish).
async fn store_side_by_side<'a, F, Fut>(
    files: &'a [PathBuf],
    sizes: &[u64],
    store_one: F,
    stop_at_first: bool,
) -> (usize, Option<anyhow::Error>)
where
    F: Fn(&'a Path) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let units = tokio::sync::Semaphore::new(FOLDER_UNITS as usize);
    let mut running = FuturesUnordered::new();
    let (mut failed, mut first_error) = (0usize, None);
    let mut settle = |r: Result<()>, failed: &mut usize| {
        if let Err(e) = r {
            *failed += 1;
            if stop_at_first && first_error.is_none() {
                first_error = Some(e);
            } else {
                eprintln!("zstor: error: {e:#}");
            }
        }
    };
    for (f, &size) in files.iter().zip(sizes) {
        let weight = size.div_ceil(UNIT_BYTES).clamp(1, u64::from(FOLDER_UNITS)) as u32;
        let permit = loop {
            tokio::select! {
                p = units.acquire_many(weight) => break p.expect("the semaphore is never closed"),
                Some(r) = running.next(), if !running.is_empty() => settle(r, &mut failed),
            }
        };
        if failed > 0 && stop_at_first {
            break;
        }
        let job = store_one(f);
        running.push(async move {
            let r = job.await;
            drop(permit);
            r
        });
    }
    while let Some(r) = running.next().await {
        settle(r, &mut failed);
    }
    (failed, first_error)
}

async fn store_one(
    store: &Store,
    file: &Path,
    base: Option<&Path>,
    key_path: Option<&Path>,
    delete: bool,
    bar: &ProgressBar,
) -> Result<()> {
    let ctx = || format!("store {}", file.display());
    let key = keys::store_key(file, base, key_path, store.config().root.as_deref())
        .map_err(anyhow::Error::from)
        .with_context(ctx)?;
    let meta = store
        .store_as_with(file, &key, &|n| bar.inc(n))
        .await
        .map_err(explain)
        .with_context(ctx)?;
    tracing::info!(file = %file.display(), key = %key.display(), size = meta.size, "stored");
    let missing = meta.missing_pieces();
    if missing > 0 {
        let total = meta.shards.len() as u64 * meta.chunk_count();
        eprintln!(
            "zstor: warning: {} stored below full redundancy: {missing} of {total} pieces not \
             written (backends down); the monitor or `zstor rebuild` writes them once the \
             backends answer",
            file.display()
        );
    }
    if delete {
        let stored = store
            .checksum(&key)
            .await
            .map_err(explain)
            .with_context(|| format!("verifying {} before deleting it", file.display()))?;
        if stored != meta.checksum {
            bail!(
                "verifying {}: the metadata read back differs; the file is kept",
                file.display()
            );
        }
        // Best effort, as 0-stor v2: the upload itself succeeded.
        if let Err(e) = std::fs::remove_file(file) {
            tracing::warn!(file = %file.display(), error = %e, "could not delete after upload");
            eprintln!(
                "zstor: warning: stored but not deleted {}: {e}",
                file.display()
            );
        }
    }
    Ok(())
}

async fn cmd_retrieve(store: &Store, file: &Path, out: Option<&Path>) -> Result<ExitCode> {
    let key = keys::lookup_key(file, store.config().root.as_deref())?;
    let ctx = || format!("retrieve {}", key.display());
    let out = out.map_or_else(|| key.clone(), Path::to_path_buf);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .with_context(ctx)?;
    }
    store.probe_data_backends();
    let meta = store
        .meta()
        .get(&key)
        .await
        .map_err(explain)
        .with_context(ctx)?;
    let bar = progress_bar(meta.size, out.display().to_string());
    let result = store.retrieve_meta(meta, &out, &|n| bar.inc(n)).await;
    bar.finish_and_clear();
    result.map_err(explain).with_context(ctx)?;
    Ok(ExitCode::SUCCESS)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn print_status(st: &probe::Status) {
    let row = |name: String, b: &probe::BackendStatus| -> [String; 6] {
        let opt = |v: Option<u64>, f: fn(u64) -> String| v.map_or_else(|| "-".into(), f);
        [
            name,
            if b.reachable { "yes" } else { "no" }.into(),
            opt(b.objects, |v| v.to_string()),
            opt(b.used_bytes, human),
            opt(b.free_bytes, human),
            b.usage_percent
                .map_or_else(|| "-".into(), |p| format!("{p:.2}%")),
        ]
    };
    let table = |title: &str, rows: Vec<[String; 6]>| {
        let head = ["backend", "reachable", "objects", "used", "free", "usage"].map(String::from);
        let mut width = [0usize; 6];
        for r in std::iter::once(&head).chain(&rows) {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        println!("{title}");
        for r in std::iter::once(&head).chain(&rows) {
            let mut line = format!("  {:<w$}", r[0], w = width[0]);
            line += &format!("  {:<w$}", r[1], w = width[1]);
            for (c, w) in r[2..].iter().zip(&width[2..]) {
                line += &format!("  {c:>w$}");
            }
            println!("{}", line.trim_end());
        }
    };
    let label = |b: &probe::BackendStatus| format!("{} - {}", b.address, b.namespace);
    table(
        "metadata backends",
        st.meta.iter().map(|b| row(label(b), b)).collect(),
    );
    println!();
    let many = st.groups.len() > 1;
    table(
        "data backends",
        st.groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                group.iter().map(move |b| {
                    let name = if many {
                        format!("[group {g}] {}", label(b))
                    } else {
                        label(b)
                    };
                    row(name, b)
                })
            })
            .collect(),
    );
    for b in st.meta.iter().chain(st.groups.iter().flatten()) {
        if let Some(e) = &b.error {
            eprintln!("zstor: {}: {e}", label(b));
        }
    }
}

async fn cmd_test(config: &Config) -> Result<ExitCode> {
    let rules = config.rules();
    println!(
        "config: valid ({}+{} shards, {} group(s), {} data backend(s), redundant groups {}, \
         redundant nodes {})",
        rules.k,
        rules.n - rules.k,
        config.groups.len(),
        config.backends().count(),
        rules.redundant_groups,
        rules.redundant_nodes
    );
    let d = diagnose::diagnose(config).await;
    let meta_up = d.status.meta.iter().filter(|b| b.reachable).count();
    println!(
        "metadata backends: {meta_up} of {} reachable",
        d.status.meta.len()
    );
    println!(
        "data backends: {} of {} reachable",
        d.data_reachable.0, d.data_reachable.1
    );
    if d.ok() {
        println!("placement: ok");
        println!("test passed");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &d.problems {
        eprintln!("zstor: {p}");
    }
    eprintln!("zstor: test failed: {} problem(s)", d.problems.len());
    Ok(ExitCode::FAILURE)
}

/// After storing a directory file by file without `-e`: say how many failed, if any.
fn report_unstored(failed: usize, total: usize, dir: &Path) {
    if failed > 0 {
        eprintln!(
            "zstor: {failed} of {total} files under {} not stored (use -e to fail on the first)",
            dir.display()
        );
    }
}
