//! The qsfs configuration: a zstor (0-stor v2) configuration file plus a `[qsfs]` table, and
//! the embedded default written on first run.
//!
//! The whole file is a zstor configuration (zstor ignores `[qsfs]`), so the same file works
//! with `zstor -c FILE status`. Its `root` is ignored: qsfs names the objects it stores itself
//! (see `crate::names`). The cache limit is zstor's `max_zdb_data_dir_size` (MiB).

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Zstor {
        path: PathBuf,
        source: zstor::ConfigError,
    },
}

/// The `[qsfs]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Where the filesystem is mounted.
    pub mountpoint: PathBuf,
    /// The local cache: zdb segments, staged checkpoints, the control socket. Deleting it
    /// loses only the last seconds of writes (see `disperse_seconds`); `qsfs restore`
    /// refills it.
    pub cache_dir: PathBuf,
    /// Size at which a local data segment closes and is offloaded (MiB).
    #[serde(default = "default_segment_mib")]
    pub segment_size_mib: u64,
    /// Age at which a non-empty open segment is closed and offloaded anyway (seconds).
    #[serde(default = "default_rotate_seconds")]
    pub rotate_seconds: u64,
    /// The open segments' new bytes are dispersed (a partial checkpoint: the bytes as an
    /// immutable piece, with the index) at most this many seconds after they were written,
    /// and sooner once `disperse_mib` piled up. This bounds what losing the whole local
    /// machine loses: about this plus zdbfs's 2 s of write-back. 0: only whole segments
    /// (then everything since the last rotation is at risk).
    #[serde(default = "default_disperse_seconds")]
    pub disperse_seconds: u64,
    /// See `disperse_seconds` (MiB).
    #[serde(default = "default_disperse_mib")]
    pub disperse_mib: u64,
    /// What an fsync waits for: `"local"` (the local disk; default) or `"dispersed"` (the
    /// backends hold it too, so losing the machine right after loses nothing fsync'ed;
    /// each fsync then costs a round of uploads, and fails with EIO when the backends do not
    /// take it within a minute).
    #[serde(default)]
    pub fsync: FsyncMode,
    /// A stored data segment whose bytes are at least this percent dead (overwritten or
    /// deleted) is compacted: its live records move to the open segment and its stored copy
    /// is replaced by an empty one, giving the backends' space back.
    #[serde(default = "default_compact_dead_percent")]
    pub compact_dead_percent: u8,
    /// How often compaction runs on its own (seconds); 0: only on `qsfs compact`.
    #[serde(default = "default_compact_seconds")]
    pub compact_seconds: u64,
    /// Embedded default only: folder of the local stand-in backends qsfs starts itself
    /// (one `zdb` per backend of this file, on its 127.0.0.1 port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standin_dir: Option<PathBuf>,
    /// Embedded default only: the stand-ins' admin password (`zdb --admin`), so that no other
    /// local user can delete their namespaces. Each backend's namespace password is its
    /// `password` below. Older embedded defaults have neither: add both, the stand-ins take
    /// them at the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standin_admin_password: Option<String>,
    /// Address of the web file browser (loopback unless you put TLS in front); none: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_listen: Option<std::net::SocketAddr>,
    /// The access token the web page asks for (required with `web_listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_token: Option<String>,
    /// Address of the S3 gateway (buckets are an account's top folders; requests signed
    /// with access keys from `qsfs user access-key`); needs the web UI on. None: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_listen: Option<std::net::SocketAddr>,
    /// Days what is deleted from the web UI stays in its owner's trash.
    #[serde(default = "default_trash_days")]
    pub trash_days: u64,
    /// The web UI's TLS certificate chain and key (PEM). Without them, a web UI listening
    /// beyond loopback gets a self-signed certificate kept in `web-tls/` beside the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Serve the web UI over plain HTTP beyond loopback (behind a TLS proxy, say).
    #[serde(default)]
    pub web_plain_http: bool,
}

fn default_trash_days() -> u64 {
    qsfs_web::DEFAULT_TRASH_DAYS
}

/// See [`Section::fsync`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    #[default]
    Local,
    Dispersed,
}

fn default_disperse_seconds() -> u64 {
    4
}

fn default_disperse_mib() -> u64 {
    32
}

fn default_segment_mib() -> u64 {
    64
}

fn default_rotate_seconds() -> u64 {
    900
}

fn default_compact_dead_percent() -> u8 {
    50
}

fn default_compact_seconds() -> u64 {
    3600
}

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    pub qsfs: Section,
    pub zstor: zstor::Config,
}

impl Config {
    /// Read and validate `path`; relative paths in `[qsfs]` are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let mut zstor = zstor::Config::from_toml(text).map_err(|source| ConfigError::Zstor {
            path: path.to_path_buf(),
            source,
        })?;
        let section = zstor
            .qsfs
            .take()
            .ok_or_else(|| invalid("missing [qsfs] table (mountpoint, cache_dir)".into()))?;
        let mut qsfs: Section = toml::Value::Table(section)
            .try_into()
            .map_err(|e| invalid(format!("[qsfs]: {e}")))?;
        if zstor.root.take().is_some() {
            tracing::warn!("`root` is ignored by qsfs: it names its objects itself");
        }
        if !(1..=4000).contains(&qsfs.segment_size_mib) {
            return Err(invalid(
                "[qsfs].segment_size_mib: must be 1 to 4000 MiB".into(),
            ));
        }
        match (&qsfs.web_listen, &qsfs.web_token) {
            (Some(_), None) => {
                return Err(invalid(
                    "[qsfs].web_token: required when web_listen is set".into(),
                ))
            }
            (Some(_), Some(t)) if t.len() < 16 => {
                return Err(invalid(
                    "[qsfs].web_token: at least 16 characters (a guessable token opens every file)"
                        .into(),
                ))
            }
            _ => {}
        }
        if qsfs.tls_cert.is_some() != qsfs.tls_key.is_some() {
            return Err(invalid(
                "[qsfs].tls_cert and tls_key: give both or neither".into(),
            ));
        }
        if !(1..=100).contains(&qsfs.compact_dead_percent) {
            return Err(invalid(
                "[qsfs].compact_dead_percent: must be 1 to 100".into(),
            ));
        }
        if qsfs.rotate_seconds == 0 {
            return Err(invalid("[qsfs].rotate_seconds: must be at least 1".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            Some(&mut qsfs.mountpoint),
            Some(&mut qsfs.cache_dir),
            qsfs.standin_dir.as_mut(),
            qsfs.tls_cert.as_mut(),
            qsfs.tls_key.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            qsfs,
            zstor,
        })
    }

    /// The zstor configuration qsfs stores through.
    pub fn store(&self) -> Result<zstor::Store, zstor::Error> {
        zstor::Store::new(self.zstor.clone())
    }

    /// Where the local zdb keeps its files.
    pub fn zdb_dir(&self) -> PathBuf {
        self.qsfs.cache_dir.join("zdb")
    }

    /// The control socket of a running qsfs.
    pub fn socket(&self) -> PathBuf {
        self.qsfs.cache_dir.join("qsfs.sock")
    }

    /// The cache limit in bytes, if any.
    pub fn cache_limit(&self) -> Option<u64> {
        self.zstor
            .max_zdb_data_dir_size
            .map(|mib| mib.saturating_mul(1 << 20))
    }
}

/// Shape of the embedded default: a 4+2 code over 6 data and 4 metadata stand-ins.
const META_BACKENDS: usize = 4;
const DATA_BACKENDS: usize = 6;

/// Write the embedded default configuration for the data folder `data` to `data/qsfs.toml`:
/// fresh random keys, stand-in backends on free loopback ports. Refuses to overwrite.
pub fn write_embedded_default(
    data: &Path,
    mountpoint: &Path,
    cache_mib: u64,
    segment_mib: u64,
) -> Result<Config, ConfigError> {
    let path = data.join("qsfs.toml");
    let io = |source| ConfigError::Io {
        path: path.clone(),
        source,
    };
    zdb_engine::private::private_dir(data).map_err(io)?;
    // One port per stand-in, and the metrics endpoint's, the web UI's and the S3 gateway's.
    let mut ports = free_ports(META_BACKENDS + DATA_BACKENDS + 3).map_err(io)?;
    let metrics_port = ports.pop().unwrap_or(9100);
    let web_port = ports.pop().unwrap_or(9980);
    let s3_port = ports.pop().unwrap_or(9981);
    let key = || {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        hex::encode(k)
    };
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut text = String::from(
        "# qsfs embedded default, generated on first run.\n\
         # BACK THIS FILE UP: its two keys are the only way to read the stored data; lose them\n\
         # and every backend holds only ciphertext. Restore elsewhere: qsfs restore --config FILE\n\n",
    );
    let section = Section {
        mountpoint: abs(mountpoint),
        cache_dir: abs(&data.join("cache")),
        segment_size_mib: segment_mib,
        rotate_seconds: default_rotate_seconds(),
        disperse_seconds: default_disperse_seconds(),
        disperse_mib: default_disperse_mib(),
        fsync: FsyncMode::Local,
        compact_dead_percent: default_compact_dead_percent(),
        compact_seconds: default_compact_seconds(),
        standin_dir: Some(abs(&data.join("backends"))),
        standin_admin_password: Some(key()),
        web_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], web_port))),
        web_token: Some(qsfs_web::auth::new_token()),
        s3_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], s3_port))),
        trash_days: default_trash_days(),
        tls_cert: None,
        tls_key: None,
        web_plain_http: false,
    };
    text += &format!(
        "minimal_shards = 4\nexpected_shards = 6\nredundant_groups = 0\nredundant_nodes = 0\n\
         max_zdb_data_dir_size = {cache_mib}\nprometheus_port = {metrics_port}\n\n\
         [encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n\n\
         [compression]\nalgorithm = \"snappy\"\n\n\
         [meta]\ntype = \"zdb\"\n\n[meta.config]\nprefix = \"qsfs\"\n\n\
         [meta.config.encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n\n",
        key(),
        key()
    );
    for port in &ports[..META_BACKENDS] {
        text += &format!(
            "[[meta.config.backends]]\naddress = \"127.0.0.1:{port}\"\nnamespace = \"qsfs-meta\"\n\
             password = \"{}\"\n\n",
            key()
        );
    }
    text += "[[groups]]\n\n";
    for port in &ports[META_BACKENDS..] {
        text += &format!(
            "[[groups.backends]]\naddress = \"127.0.0.1:{port}\"\nnamespace = \"qsfs-data\"\n\
             password = \"{}\"\n\n",
            key()
        );
    }
    let mut qsfs = toml::Table::new();
    qsfs.insert(
        "qsfs".into(),
        toml::Value::try_from(&section).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?,
    );
    text += &toml::to_string(&qsfs).map_err(|e| ConfigError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let config = Config::parse(&path, &text)?;
    write_private(&path, text.as_bytes()).map_err(io)?;
    Ok(config)
}

/// Create `path` readable by its owner only (it holds keys); never replaces a file.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// `n` distinct loopback ports free right now, all bound at once then released. They are
/// taken below Linux's ephemeral range (32768 and up by default), so that outgoing
/// connections, which the kernel numbers from that range, do not take them later.
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    use rand::Rng;
    const RANGE: std::ops::Range<u16> = 20000..32000;
    let mut held = Vec::with_capacity(n);
    let mut tries = 0;
    while held.len() < n {
        tries += 1;
        if tries > 1000 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no {n} free loopback ports in {RANGE:?}"),
            ));
        }
        let port = rand::thread_rng().gen_range(RANGE);
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_embedded_default(dir.path(), &dir.path().join("mnt"), 512, 64).unwrap();
        let loaded = Config::load(&dir.path().join("qsfs.toml")).unwrap();
        assert_eq!(loaded.qsfs, written.qsfs);
        assert_eq!(loaded.zstor.backends().count(), 6);
        assert_eq!(loaded.zstor.meta.config.backends.len(), 4);
        assert_eq!(loaded.cache_limit(), Some(512 << 20));
        assert_ne!(
            loaded.zstor.encryption.key, loaded.zstor.meta.config.encryption.key,
            "data and metadata keys are independent"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("qsfs.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys must not be readable by others");
        let again = write_embedded_default(dir.path(), &dir.path().join("mnt"), 512, 64);
        assert!(
            again.is_err(),
            "an existing config (and its keys) is never replaced"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_embedded_default(dir.path(), &dir.path().join("mnt"), 512, 64).unwrap();
        let text = std::fs::read_to_string(&written.path).unwrap();
        let bad = text.replace("segment_size_mib = 64", "segment_size_mib = 0");
        let err = Config::parse(&written.path, &bad).unwrap_err().to_string();
        assert!(err.contains("segment_size_mib"), "{err}");
        let bad = text.replace("minimal_shards = 4", "minimal_shards = 9");
        let err = Config::parse(&written.path, &bad).unwrap_err().to_string();
        assert!(err.contains("shards"), "{err}");
        let bad = &text[..text.find("[qsfs]").unwrap()];
        let err = Config::parse(&written.path, bad).unwrap_err().to_string();
        assert!(err.contains("[qsfs]"), "{err}");
    }
}
