//! The zstor configuration file: serde structs with exactly 0-stor v2's TOML keys, and
//! [`Config::validate`], which names the offending field and the reason.
//!
//! Owns: parsing, defaults and static validation (including that a valid shard placement
//! exists, via [`crate::placement`]). Must not touch: backends (no network here) or files
//! other than the one it is asked to load.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::{Compression, DataKey};
use crate::placement::{self, Rules};

/// Largest `expected_shards`: Reed-Solomon over GF(2^8) has at most 256 shards, and the
/// piece header stores the shard index in one byte.
pub const MAX_SHARDS: usize = 255;

/// A configuration problem: which field, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {reason}")]
    Read {
        /// Path given.
        path: PathBuf,
        /// OS error text.
        reason: String,
    },
    /// Not valid TOML, a missing key, an unknown key or a value of the wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A field whose value is not acceptable.
    #[error("invalid config field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `groups[1].backends[0].address`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The whole configuration file (0-stor v2 keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `k`: shards needed to rebuild a file.
    pub minimal_shards: usize,
    /// `n`: shards written per file.
    pub expected_shards: usize,
    /// Shards a store must write for every chunk when backends are down (a degraded
    /// write; repair writes the rest later): `minimal_shards + 1` when absent, at most
    /// `expected_shards` (which refuses degraded writes, as 0-stor v2 does). Not a 0-stor v2
    /// key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_write_shards: Option<usize>,
    /// Whole groups that may be lost.
    #[serde(default)]
    pub redundant_groups: usize,
    /// Nodes that may be lost in each remaining group.
    #[serde(default)]
    pub redundant_nodes: usize,
    /// Stripped from stored paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Unix socket of the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Pid file of the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<PathBuf>,
    /// Port of the Prometheus `/metrics` endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_port: Option<u16>,
    /// Local zdb index dir (accepted for 0-stor v2 compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdb_index_dir_path: Option<PathBuf>,
    /// Local zdb data dir kept under `max_zdb_data_dir_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdb_data_dir_path: Option<PathBuf>,
    /// MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_zdb_data_dir_size: Option<u64>,
    /// zdbfs mount point, for metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdbfs_mountpoint: Option<PathBuf>,
    /// Data encryption.
    pub encryption: Encryption,
    /// Data compression.
    pub compression: CompressionConfig,
    /// Metadata store.
    pub meta: Meta,
    /// Failure domains holding the data backends.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// The `[qsfs]` table of a qsfs configuration: read by qsfs, ignored here, so one file
    /// serves both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qsfs: Option<toml::Table>,
}

/// `[encryption]` / `[meta.config.encryption]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// Only `"AES"` (AES-256-GCM).
    pub algorithm: String,
    /// 64 hex characters (32 bytes).
    pub key: String,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Encryption {
    fn check(&self, field: &str) -> Result<DataKey, ConfigError> {
        if !self.algorithm.eq_ignore_ascii_case("aes") {
            return Err(invalid(
                format!("{field}.algorithm"),
                format!("unknown algorithm {:?}, expected \"AES\"", self.algorithm),
            ));
        }
        DataKey::from_hex(&self.key).map_err(|reason| invalid(format!("{field}.key"), reason))
    }
}

/// `[compression]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    /// `"snappy"` (0-stor v2's only choice), `"lz4"` or `"zstd"`.
    pub algorithm: String,
}

/// `[meta]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Only `"zdb"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `[meta.config]`.
    pub config: MetaConfig,
}

/// `[meta.config]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// Namespace of the metadata keys: `/{prefix}/meta/...`.
    pub prefix: String,
    /// Metadata encryption (a key of its own).
    pub encryption: Encryption,
    /// Exactly 4 user-mode zdb namespaces.
    pub backends: Vec<Backend>,
}

/// One failure domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Sequential-mode zdb namespaces.
    #[serde(default)]
    pub backends: Vec<Backend>,
}

/// One zdb namespace.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// `host:port` socket address, e.g. `"[::1]:9900"`.
    pub address: String,
    /// Namespace (the server default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Namespace password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Backend {
    /// `address/namespace`, for messages and metadata.
    pub fn label(&self) -> String {
        format!(
            "{}/{}",
            self.address,
            self.namespace.as_deref().unwrap_or("default")
        )
    }

    fn check(&self, field: &str) -> Result<(), ConfigError> {
        self.address.parse::<SocketAddr>().map_err(|e| {
            invalid(
                format!("{field}.address"),
                format!(
                    "{:?} is not a socket address (host:port): {e}",
                    self.address
                ),
            )
        })?;
        if let Some(ns) = &self.namespace {
            if ns.is_empty() || ns.len() > 128 || ns.contains(['/', ' ']) {
                return Err(invalid(
                    format!("{field}.namespace"),
                    "must be 1-128 characters without '/' or spaces",
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Parse and validate TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text)
    }

    /// Serialize back to TOML.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// The placement rules (`k`, `n`, group and node redundancy).
    pub fn rules(&self) -> Rules {
        Rules {
            k: self.minimal_shards,
            n: self.expected_shards,
            redundant_groups: self.redundant_groups,
            redundant_nodes: self.redundant_nodes,
        }
    }

    /// The data key (validated by [`Config::validate`]).
    pub fn data_key(&self) -> Result<DataKey, ConfigError> {
        self.encryption.check("encryption")
    }

    /// The metadata key.
    pub fn meta_key(&self) -> Result<DataKey, ConfigError> {
        self.meta.config.encryption.check("meta.config.encryption")
    }

    /// The data compression algorithm.
    pub fn compression(&self) -> Result<Compression, ConfigError> {
        Compression::from_name(&self.compression.algorithm).ok_or_else(|| {
            invalid(
                "compression.algorithm",
                format!(
                    "unknown algorithm {:?}, expected \"snappy\", \"lz4\" or \"zstd\"",
                    self.compression.algorithm
                ),
            )
        })
    }

    /// Shards every chunk of a store must get ([`Config::minimal_write_shards`]).
    pub fn write_shards(&self) -> usize {
        self.minimal_write_shards
            .unwrap_or(self.minimal_shards + 1)
            .min(self.expected_shards)
    }

    /// All data backends, group by group.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.groups.iter().flat_map(|g| g.backends.iter())
    }

    /// Check every rule; the first failure names its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (k, n) = (self.minimal_shards, self.expected_shards);
        if k < 1 {
            return Err(invalid("minimal_shards", "must be at least 1"));
        }
        if n <= k {
            return Err(invalid(
                "expected_shards",
                format!("must be greater than minimal_shards ({k}), got {n}"),
            ));
        }
        if n > MAX_SHARDS {
            return Err(invalid(
                "expected_shards",
                format!("at most {MAX_SHARDS} shards are supported, got {n}"),
            ));
        }
        if let Some(w) = self.minimal_write_shards {
            if w <= k || w > n {
                return Err(invalid(
                    "minimal_write_shards",
                    format!(
                        "must be more than minimal_shards ({k}) and at most expected_shards ({n}), got {w}"
                    ),
                ));
            }
        }
        self.data_key()?;
        self.compression()?;
        if self.max_zdb_data_dir_size == Some(0) {
            return Err(invalid("max_zdb_data_dir_size", "must be positive (MiB)"));
        }
        if let Some(root) = &self.root {
            if !root.is_absolute() {
                return Err(invalid("root", "must be an absolute path"));
            }
        }
        self.validate_meta()?;
        self.validate_groups()
    }

    fn validate_meta(&self) -> Result<(), ConfigError> {
        if self.meta.kind != "zdb" {
            return Err(invalid(
                "meta.type",
                format!(
                    "unknown metadata store {:?}, expected \"zdb\"",
                    self.meta.kind
                ),
            ));
        }
        let mc = &self.meta.config;
        if mc.prefix.is_empty() || mc.prefix.contains('/') {
            return Err(invalid(
                "meta.config.prefix",
                "must be non-empty and contain no '/'",
            ));
        }
        self.meta_key()?;
        if mc.backends.len() != 4 {
            return Err(invalid(
                "meta.config.backends",
                format!(
                    "exactly 4 metadata backends are needed (2 data + 2 parity), got {}",
                    mc.backends.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, b) in mc.backends.iter().enumerate() {
            let field = format!("meta.config.backends[{i}]");
            b.check(&field)?;
            if !seen.insert((&b.address, &b.namespace)) {
                return Err(invalid(field, format!("{} is listed twice", b.label())));
            }
        }
        Ok(())
    }

    fn validate_groups(&self) -> Result<(), ConfigError> {
        if self.groups.is_empty() {
            return Err(invalid(
                "groups",
                "at least one group of backends is needed",
            ));
        }
        let mut seen = HashSet::new();
        for (g, group) in self.groups.iter().enumerate() {
            if group.backends.is_empty() {
                return Err(invalid(format!("groups[{g}].backends"), "group is empty"));
            }
            for (i, b) in group.backends.iter().enumerate() {
                let field = format!("groups[{g}].backends[{i}]");
                b.check(&field)?;
                if !seen.insert((&b.address, &b.namespace)) {
                    return Err(invalid(
                        field,
                        format!(
                            "{} is listed twice; shards need distinct backends",
                            b.label()
                        ),
                    ));
                }
            }
        }
        let sizes: Vec<usize> = self.groups.iter().map(|g| g.backends.len()).collect();
        placement::plan(&sizes, &self.rules())
            .map(|_| ())
            .map_err(|e| invalid("groups", e.to_string()))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
