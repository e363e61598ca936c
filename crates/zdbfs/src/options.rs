//! The `-o` options, as ThreeFold's zdbfs takes them, plus our own.
//!
//! | option | meaning |
//! | --- | --- |
//! | `host=H`, `port=P`, `unix=PATH` | one zdb server for all three namespaces |
//! | `mh`/`mp`/`mu`/`mn`/`ms` | meta namespace: host, port, unix socket, name, secret (password) |
//! | `dh`/`dp`/`du`/`dn`/`ds` | data namespace, same fields |
//! | `th`/`tp`/`tu`/`tn`/`ts` | temp namespace, same fields |
//! | `size=BYTES` | size reported by statfs (suffixes K, M, G, T) |
//! | `nocache` | no clean-block read cache (dirty blocks are still batched) |
//! | `cachesize=N` | read cache of N blocks of 128 KiB (default 1024) |
//! | `autons` | create missing namespaces (sequential mode) |
//! | `background` | detach once mounted |
//! | `logfile=PATH` | log there instead of stderr |
//! | `engine=DIR` | in-process engine in DIR (the default when no server option is given) |
//! | `flush=SECONDS` | timer flush interval (default 1) |
//! | `timeout=SECONDS` | remote request timeout: a dead server fails calls with EIO after it (default 10) |
//! | `threads=N` | FUSE worker threads (default 8: a worker blocked in an fsync or a fetch holds no other request up) |
//! | `dirty=SIZE` | dirty block bytes kept for writes to coalesce (default RAM/8, ≤ 2 GiB) |
//! | `expire=SECS` | how long a dirty block of an open file may wait (default 30) |
//! | `nowbcache` | no kernel writeback cache (every write(2) is a FUSE WRITE) |
//! | `strictlimit` | keep the kernel's strict dirty-page limit for this mount |
//! | `readahead=KiB` | the mount's kernel readahead, set as root (default 4096; 0 keeps the kernel's 128) |
//! | `uring` | FUSE over io_uring, turning the kernel's `fuse.enable_uring` switch on if needed (root) |
//! | `nouring` | never FUSE over io_uring (default: as root the switch is turned on, logged; otherwise io_uring is used when the kernel offers it) |

use crate::error::{Error, Result};
use crate::fs::FsConfig;
use crate::store::remote::RemoteNs;
use crate::store::{Ns, RemoteConfig};
use std::path::PathBuf;
use std::time::Duration;
use zdb_client::Endpoint;

/// Where the namespaces live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The zdb engine inside this process, data under this directory.
    Engine(PathBuf),
    /// zdb servers.
    Remote(Box<RemoteConfig>),
}

/// Everything a mount needs.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub backend: Backend,
    pub fs: FsConfig,
    pub background: bool,
    pub logfile: Option<PathBuf>,
    pub flush_interval: Duration,
    pub threads: usize,
    /// Lift the kernel's strict per-mount dirty-page limit (see `crate::mount`).
    pub relax_dirty_limit: bool,
    /// The mount's kernel readahead in KiB, set as root (0: the kernel's 128 KiB).
    pub readahead_kib: u32,
    /// Whether requests come over io_uring (see [`crate::fuse`]).
    pub uring: Uring,
}

/// FUSE over io_uring (Linux 6.14+): one request queue per CPU, served on that CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uring {
    /// Never: every request through `/dev/fuse`.
    Off,
    /// As root, turn the kernel's switch on first (logged), as `On` does: it is off by
    /// default, and /dev/fuse is up to 2x slower for small requests. Otherwise whenever the
    /// kernel offers it (its `fuse.enable_uring` switch is on).
    Auto,
    /// Turn the kernel's switch on first if it is off (needs root; it only lets FUSE servers
    /// ask for io_uring, others are unaffected).
    On,
}

impl MountOptions {
    /// Defaults with the in-process engine in `dir`.
    pub fn engine(dir: impl Into<PathBuf>) -> Self {
        MountOptions {
            backend: Backend::Engine(dir.into()),
            fs: FsConfig::default(),
            background: false,
            logfile: None,
            flush_interval: Duration::from_secs(1),
            threads: 8,
            relax_dirty_limit: true,
            readahead_kib: 4096,
            uring: Uring::Auto,
        }
    }
}

#[derive(Default, Clone)]
struct NsSpec {
    host: Option<String>,
    port: Option<u16>,
    unix: Option<String>,
    name: Option<String>,
    secret: Option<String>,
}

fn bad(field: &str, msg: impl Into<String>) -> Error {
    Error::Option {
        field: field.to_string(),
        msg: msg.into(),
    }
}

fn parse_size(field: &str, v: &str) -> Result<u64> {
    let v = v.trim();
    let (num, mul) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(bad(field, "unknown size suffix")),
            };
            (&v[..i], m)
        }
        _ => (v, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| bad(field, format!("not a size: {v:?}")))
}

fn parse_num<T: std::str::FromStr>(field: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| bad(field, format!("not a number: {v:?}")))
}

/// Parse comma-separated `-o` strings (several `-o` may be given). `engine_dir` is the
/// directory used when no server option is given.
pub fn parse(opts: &[String], engine_dir: PathBuf) -> Result<MountOptions> {
    let mut m = MountOptions::engine(engine_dir);
    let mut all = NsSpec::default();
    let mut per: [NsSpec; 3] = Default::default();
    let mut remote = false;
    let mut autons = false;
    let mut timeout = Duration::from_secs(10);
    for opt in opts.iter().flat_map(|o| o.split(',')) {
        let opt = opt.trim();
        if opt.is_empty() {
            continue;
        }
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let val = || v.ok_or_else(|| bad(k, "needs a value (key=value)"));
        match k {
            "nocache" => m.fs.cache_limit = 0,
            "nowbcache" => m.fs.writeback_cache = false,
            "strictlimit" => m.relax_dirty_limit = false,
            "readahead" => m.readahead_kib = parse_num(k, val()?)?,
            "uring" => m.uring = Uring::On,
            "nouring" => m.uring = Uring::Off,
            "dirty" => {
                let n = parse_size(k, val()?)?;
                m.fs.dirty_limit = usize::try_from(n).map_err(|_| bad(k, "too large"))?;
            }
            "expire" => {
                m.fs.dirty_expire = Duration::from_secs_f64(parse_num::<f64>(k, val()?)?.max(0.0));
            }
            "cachesize" => {
                let n: usize = parse_num(k, val()?)?;
                m.fs.cache_limit = n.saturating_mul(crate::inode::BLOCK as usize);
            }
            "autons" => autons = true,
            "background" => m.background = true,
            "logfile" => m.logfile = Some(PathBuf::from(val()?)),
            "size" => m.fs.size = parse_size(k, val()?)?,
            "engine" => m.backend = Backend::Engine(PathBuf::from(val()?)),
            "flush" => {
                m.flush_interval = Duration::from_secs_f64(parse_num::<f64>(k, val()?)?.max(0.05));
            }
            "timeout" => timeout = Duration::from_secs_f64(parse_num::<f64>(k, val()?)?.max(0.1)),
            "threads" => m.threads = parse_num::<usize>(k, val()?)?.clamp(1, 64),
            "host" => (all.host, remote) = (Some(val()?.to_string()), true),
            "port" => (all.port, remote) = (Some(parse_num(k, val()?)?), true),
            "unix" => (all.unix, remote) = (Some(val()?.to_string()), true),
            _ if k.len() == 2 && matches!(&k[..1], "m" | "d" | "t") => {
                let i = match &k[..1] {
                    "m" => 0,
                    "d" => 1,
                    _ => 2,
                };
                let s = &mut per[i];
                match &k[1..] {
                    "h" => (s.host, remote) = (Some(val()?.to_string()), true),
                    "p" => (s.port, remote) = (Some(parse_num(k, val()?)?), true),
                    "u" => (s.unix, remote) = (Some(val()?.to_string()), true),
                    "n" => s.name = Some(val()?.to_string()),
                    "s" => s.secret = Some(val()?.to_string()),
                    _ => return Err(bad(k, "unknown option")),
                }
            }
            _ => return Err(bad(k, "unknown option")),
        }
    }
    if remote {
        let mut out = Vec::new();
        for (ns, s) in Ns::ALL.iter().zip(per.iter()) {
            let host = s
                .host
                .clone()
                .or(all.host.clone())
                .unwrap_or_else(|| "127.0.0.1".into());
            let port = s.port.or(all.port).unwrap_or(9900);
            let endpoint = match s.unix.clone().or(all.unix.clone()) {
                Some(path) => Endpoint::Unix(path.into()),
                None if host.contains(':') => Endpoint::Tcp(format!("[{host}]:{port}")),
                None => Endpoint::Tcp(format!("{host}:{port}")),
            };
            out.push(RemoteNs {
                endpoint,
                name: s
                    .name
                    .clone()
                    .unwrap_or_else(|| ns.default_name().to_string()),
                password: s.secret.clone(),
            });
        }
        let namespaces: [RemoteNs; 3] = out
            .try_into()
            .map_err(|_| bad("backend", "three namespaces expected"))?;
        m.backend = Backend::Remote(Box::new(RemoteConfig {
            namespaces,
            autons,
            timeout,
        }));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threefold_style_options() {
        let o = parse(
            &[
                "mh=10.0.0.1,mp=9901,dn=d1,ds=pw".into(),
                "size=5G,autons,cachesize=4".into(),
            ],
            "x".into(),
        )
        .unwrap();
        assert_eq!(o.fs.size, 5 << 30);
        assert_eq!(o.fs.cache_limit, 4 << 17);
        let Backend::Remote(r) = o.backend else {
            panic!("remote expected")
        };
        assert!(r.autons);
        assert_eq!(
            r.namespaces[0].endpoint,
            Endpoint::Tcp("10.0.0.1:9901".into())
        );
        assert_eq!(r.namespaces[1].name, "d1");
        assert_eq!(r.namespaces[1].password.as_deref(), Some("pw"));
        assert_eq!(r.namespaces[2].name, "zdbfs-temp");
    }

    #[test]
    fn defaults_to_engine_and_names_bad_fields() {
        let o = parse(&[], "dir".into()).unwrap();
        assert_eq!(o.backend, Backend::Engine("dir".into()));
        assert_eq!(o.readahead_kib, 4096);
        assert_eq!(
            parse(&["readahead=0".into()], "dir".into())
                .unwrap()
                .readahead_kib,
            0
        );
        let e = parse(&["size=12Q".into()], "x".into()).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        assert!(parse(&["bogus".into()], "x".into()).is_err());
    }
}
