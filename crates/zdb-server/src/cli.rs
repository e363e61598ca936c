//! Command-line flags, named as 0-db's `zdbd` (plus our documented limit extensions), and
//! their translation into a [`ServerConfig`].

use anyhow::{bail, Context};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use zdb_engine::{Durability, Mode};
use zdb_server::{ConnLimits, ServerConfig};

/// 0-db compatible key-value server (RESP protocol, default port 9900).
#[derive(Parser, Debug, Clone)]
#[command(name = "zdb", version, infer_long_args = true)]
pub struct Cli {
    /// TCP address to listen on (falls back to 0.0.0.0 when `::` is unavailable)
    #[arg(long, default_value = "::")]
    pub listen: String,
    /// TCP port
    #[arg(long, default_value_t = 9900)]
    pub port: u16,
    /// Unix socket path (disables TCP unless --dualnet)
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Listen on both the unix socket and TCP
    #[arg(long)]
    pub dualnet: bool,
    /// Data root directory
    #[arg(long, default_value = "./zdb-data")]
    pub data: PathBuf,
    /// Index root directory
    #[arg(long, default_value = "./zdb-index")]
    pub index: PathBuf,
    /// Force one mode for every namespace: user, seq (direct = seq), or mix (each chooses)
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<ModeArg>,
    /// Admin password (without it every client is admin)
    #[arg(long)]
    pub admin: Option<String>,
    /// Make `default` read-only unless selected with the admin password (needs --admin)
    #[arg(long)]
    pub protect: bool,
    /// Data segment size: bytes or k/M/G suffix (powers of 1024), 512k <= size < 4G
    #[arg(long, value_parser = parse_datasize, default_value = "256M")]
    pub datasize: u64,
    /// Size limit of the default namespace in bytes (0 = none)
    #[arg(long, default_value_t = 0)]
    pub maxsize: u64,
    /// Hook executable, run as `hook <event> <instance-id> [args…]`
    #[arg(long)]
    pub hook: Option<PathBuf>,
    /// fsync every write before replying
    #[arg(long)]
    pub sync: bool,
    /// fsync unsynced writes every N seconds (0 = off)
    #[arg(long, default_value_t = 0)]
    pub synctime: u64,
    /// fsync segments before each jump (always done by this engine; accepted for compatibility)
    #[arg(long)]
    pub secure: bool,
    /// Close a namespace's open segment once it is N seconds old and holds data (0 = off)
    #[arg(long, default_value_t = 0)]
    pub rotate: u64,
    /// Run in the background once ready
    #[arg(long)]
    pub background: bool,
    /// Write logs to this file
    #[arg(long)]
    pub logfile: Option<PathBuf>,
    /// Verbose logs
    #[arg(long)]
    pub verbose: bool,
    /// Load the dataset, print namespaces and their statistics, exit
    #[arg(long)]
    pub dump: bool,
    /// [extension] Largest request in bytes; bulk arguments are capped at min(this, 8 MiB)
    #[arg(long, default_value_t = 9 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// [extension] Most arguments per request, command name included
    #[arg(long, default_value_t = 1024)]
    pub max_args: usize,
    /// [extension] Most simultaneous client connections (an admin may still authenticate on
    /// a few more)
    #[arg(long, default_value_t = 4096)]
    pub max_clients: usize,
    /// [extension] Seconds a partially received request may take before the connection is
    /// closed (0 = never)
    #[arg(long, default_value_t = 60)]
    pub request_timeout: u64,
    /// [extension] Seconds of silence after which a connection gives its slot to a new
    /// client when all --max-clients slots are taken (0 = never)
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
    /// [extension] Threads serving clients (0 = one per CPU). 1 is one event loop, as in
    /// 0-db and redis: the fewest wake-ups per request. The default is 1, or one per CPU
    /// when a request can wait on something outside the loop: the disk (--sync) or a
    /// blocking hook run (--hook: e.g. `missing-data` fetching a segment back). With one
    /// thread a COMPACT holds every client until it is done.
    #[arg(long)]
    pub threads: Option<usize>,
    /// [extension] Space kept free on the --data disk for DEL and compaction: SETs of new
    /// values are refused below it (at most 5 % of the disk; 0 = none)
    #[arg(long, value_parser = parse_bytes, default_value = "64M")]
    pub disk_reserve: u64,
}

impl Cli {
    /// How many threads serve clients (see `--threads`).
    pub fn serving_threads(&self) -> usize {
        let cpus = || std::thread::available_parallelism().map_or(1, usize::from);
        match self.threads {
            Some(0) => cpus(),
            Some(n) => n,
            None if self.sync || self.hook.is_some() => cpus(),
            None => 1,
        }
    }
}

/// A duration flag in seconds, 0 meaning none.
fn seconds(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

/// The `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    User,
    Seq,
    Mix,
}

fn parse_mode(s: &str) -> Result<ModeArg, String> {
    match s {
        "user" => Ok(ModeArg::User),
        "seq" | "sequential" => Ok(ModeArg::Seq),
        "direct" => {
            eprintln!("zdb: warning: direct mode is served as seq mode");
            Ok(ModeArg::Seq)
        }
        "mix" | "mixed" => Ok(ModeArg::Mix),
        _ => Err("expected user, seq or mix".into()),
    }
}

/// Parse a size such as `1048576`, `512k`, `1.5M`, `2G` (powers of 1024, case-sensitive
/// suffix) and check 512 KiB <= size < 4 GiB.
pub fn parse_datasize(s: &str) -> Result<u64, String> {
    let bytes = parse_bytes(s)?;
    if bytes < 512 * 1024 || bytes >= u64::from(u32::MAX) {
        return Err(format!(
            "datasize {bytes} out of range (512 KiB <= size < 4 GiB)"
        ));
    }
    Ok(bytes)
}

/// A size flag (see [`service_kit::flags::parse_size`]).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    service_kit::flags::parse_size(s)
}

impl Cli {
    /// The server configuration these flags describe.
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        if self.protect && self.admin.is_none() {
            bail!("--protect needs --admin");
        }
        if self.max_args < 2 {
            bail!("--max-args must be at least 2");
        }
        let mut c = ServerConfig::new(&self.data, &self.index);
        c.listen = self.listen.clone();
        c.port = self.port;
        c.socket = self.socket.clone();
        c.dualnet = self.dualnet;
        c.engine.mode = match self.mode {
            Some(ModeArg::User) => Some(Mode::User),
            Some(ModeArg::Seq) => Some(Mode::Seq),
            Some(ModeArg::Mix) | None => None,
        };
        c.engine.datasize = self.datasize;
        c.engine.disk_reserve = self.disk_reserve;
        c.engine.default_maxsize = self.maxsize;
        c.engine.durability = if self.sync {
            Durability::Always
        } else {
            Durability::Os
        };
        c.admin = self.admin.clone();
        c.protect = self.protect;
        c.hook = match &self.hook {
            Some(h) => {
                Some(std::fs::canonicalize(h).with_context(|| format!("hook {}", h.display()))?)
            }
            None => None,
        };
        c.synctime = self.synctime;
        c.rotate = self.rotate;
        c.limits = ConnLimits {
            max_request_bytes: self.max_request_bytes,
            max_args: self.max_args,
            max_clients: self.max_clients,
            request_timeout: seconds(self.request_timeout),
            idle_timeout: seconds(self.idle_timeout),
        };
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasize_suffixes_and_range() {
        assert_eq!(parse_datasize("512k"), Ok(512 * 1024));
        assert_eq!(parse_datasize("1.5M"), Ok(3 * 512 * 1024));
        assert_eq!(parse_datasize("256M"), Ok(256 << 20));
        assert_eq!(parse_datasize("3G"), Ok(3 << 30));
        assert!(parse_datasize("8G").is_err());
        assert!(parse_datasize("4G").is_err());
        assert!(parse_datasize("32").is_err());
        assert!(parse_datasize("1m").is_err());
        assert!(parse_datasize("abc").is_err());
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "zdb",
            "--port",
            "1234",
            "--mode",
            "seq",
            "--sync",
            "--datasize",
            "1M",
            "--disk-reserve",
            "1G",
        ])
        .unwrap();
        let c = cli.server_config().unwrap();
        assert_eq!(c.engine.disk_reserve, 1 << 30);
        let default = Cli::try_parse_from(["zdb"])
            .unwrap()
            .server_config()
            .unwrap();
        assert_eq!(default.engine.disk_reserve, 64 << 20);
        assert_eq!(c.port, 1234);
        assert_eq!(c.engine.mode, Some(Mode::Seq));
        assert_eq!(c.engine.datasize, 1 << 20);
        assert!(c.sync_writes());
        assert!(Cli::try_parse_from(["zdb", "--protect"])
            .unwrap()
            .server_config()
            .is_err());
        assert!(Cli::try_parse_from(["zdb", "--mode", "bad"]).is_err());
    }

    #[test]
    fn one_event_loop_unless_writes_wait_for_the_disk() {
        let threads = |args: &[&str]| {
            let mut all = vec!["zdb"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap().serving_threads()
        };
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(threads(&[]), 1);
        assert_eq!(threads(&["--sync"]), cpus);
        assert_eq!(threads(&["--hook", "/bin/true"]), cpus);
        assert_eq!(threads(&["--threads", "0"]), cpus);
        assert_eq!(threads(&["--sync", "--threads", "1"]), 1);
        assert_eq!(threads(&["--threads", "3"]), 3);
    }
}
