//! The engine: the set of namespaces under a data root and an index root.

use crate::disk::DiskGuard;
use crate::error::{Error, IoContext, Result};
use crate::events::{Event, EventSink};
use crate::namespace::{Namespace, Shared};
use crate::settings::Settings;
use crate::{Durability, Mode};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The namespace that always exists.
pub const DEFAULT_NAMESPACE: &str = "default";
const MAX_NAMESPACE_NAME: usize = 128;

/// How an engine is set up; field names follow `zdb`'s flags.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub index_dir: PathBuf,
    /// Forces every namespace into one mode; `None` lets each choose (default: user).
    pub mode: Option<Mode>,
    /// Size at which a data segment is closed and the next one opened.
    pub datasize: u64,
    /// `maxsize` given to new namespaces (0 = unlimited).
    pub default_maxsize: u64,
    pub durability: Durability,
    /// Bytes kept free on the data folder's disk for deletes and compaction (capped at 5 %
    /// of the disk; 0: none). New values are refused with [`Error::DiskFull`] below it.
    pub disk_reserve: u64,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>, index_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            index_dir: index_dir.into(),
            mode: None,
            datasize: 256 * 1024 * 1024,
            default_maxsize: 0,
            durability: Durability::Os,
            disk_reserve: crate::disk::DEFAULT_RESERVE,
        }
    }
}

/// All namespaces of one instance.
pub struct Engine {
    config: EngineConfig,
    disk: Arc<DiskGuard>,
    events: Arc<dyn EventSink>,
    namespaces: RwLock<BTreeMap<String, Arc<Namespace>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Open (or create) the instance, loading and recovering every namespace found on disk.
    pub fn open(config: EngineConfig, events: Arc<dyn EventSink>) -> Result<Engine> {
        if config.datasize < 512 * 1024 || config.datasize >= u64::from(u32::MAX) {
            return Err(Error::InvalidArgument);
        }
        crate::private::private_dir(&config.data_dir).at(&config.data_dir)?;
        crate::private::private_dir(&config.index_dir).at(&config.index_dir)?;
        let init = Event::NamespacesInit {
            index_root: config.index_dir.clone(),
            data_root: config.data_dir.clone(),
        };
        events.emit(&init).map_err(|source| Error::HookRefused {
            event: init.name(),
            source,
        })?;
        let disk = Arc::new(DiskGuard::new(&config.data_dir, config.disk_reserve)?);
        let engine = Engine {
            disk,
            config,
            events,
            namespaces: RwLock::new(BTreeMap::new()),
        };
        let mut names = Vec::new();
        for ent in std::fs::read_dir(&engine.config.index_dir).at(&engine.config.index_dir)? {
            let ent = ent.at(&engine.config.index_dir)?;
            if ent.file_type().at(&ent.path())?.is_dir() {
                if let Some(name) = ent.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        if !names.iter().any(|n| n == DEFAULT_NAMESPACE) {
            names.push(DEFAULT_NAMESPACE.to_string());
        }
        for name in names {
            let ns = engine.load(&name)?;
            engine.namespaces.write().insert(name, ns);
        }
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Bytes new values may still take on the data folder's disk (above the reserve), and
    /// the reserve.
    pub fn disk_space(&self) -> Result<(u64, u64)> {
        Ok((self.disk.available()?, self.disk.reserve()))
    }

    fn load(&self, name: &str) -> Result<Arc<Namespace>> {
        let shared = Shared {
            datasize: self.config.datasize,
            durability: self.config.durability,
            disk: self.disk.clone(),
        };
        let mut defaults = Settings::new(
            self.config.mode.unwrap_or(Mode::User),
            self.config.default_maxsize,
        );
        if name != DEFAULT_NAMESPACE {
            defaults.maxsize = 0;
        }
        let ns = Namespace::open(
            name,
            self.config.data_dir.join(name),
            self.config.index_dir.join(name),
            shared,
            defaults,
            self.events.clone(),
        )?;
        if let Some(forced) = self.config.mode {
            if ns.mode() != forced {
                tracing::warn!(
                    namespace = name,
                    "namespace mode differs from the forced --mode"
                );
            }
        }
        Ok(Arc::new(ns))
    }

    /// The namespace called `name`, if it exists.
    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.read().get(name).cloned()
    }

    /// Names of every namespace, sorted.
    pub fn list(&self) -> Vec<String> {
        self.namespaces.read().keys().cloned().collect()
    }

    /// Check a namespace name: 1..=128 bytes, no `/` or NUL, not `.` or `..`.
    pub fn validate_name(name: &str) -> Result<()> {
        if name.len() > MAX_NAMESPACE_NAME {
            return Err(Error::NamespaceTooLong);
        }
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('\0')
        {
            return Err(Error::InvalidNamespaceName);
        }
        Ok(())
    }

    /// Create a namespace (NSNEW).
    pub fn create(&self, name: &str) -> Result<Arc<Namespace>> {
        Self::validate_name(name)?;
        let mut map = self.namespaces.write();
        if map.contains_key(name) {
            return Err(Error::NamespaceExists);
        }
        let ns = self.load(name)?;
        map.insert(name.to_string(), ns.clone());
        drop(map);
        let _ = self.events.emit(&Event::NamespaceCreated {
            namespace: name.to_string(),
        });
        Ok(ns)
    }

    /// Delete a namespace and its files (NSDEL). Holders of the namespace see it as gone.
    pub fn delete(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NAMESPACE {
            return Err(Error::InvalidArgument);
        }
        let ns = self
            .namespaces
            .write()
            .remove(name)
            .ok_or(Error::NamespaceNotFound)?;
        ns.mark_deleted();
        let (index, data) = ns.current_paths();
        let dirty = ns.dirty_segments(false);
        let _ = self.events.emit(&Event::NamespaceClosing {
            namespace: name.to_string(),
            index,
            data,
            dirty,
        });
        for dir in [
            self.config.data_dir.join(name),
            self.config.index_dir.join(name),
        ] {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&dir),
                _ => {}
            }
        }
        let _ = self.events.emit(&Event::NamespaceDeleted {
            namespace: name.to_string(),
        });
        Ok(())
    }

    /// Reload a namespace from disk (RELOAD).
    pub fn reload(&self, name: &str) -> Result<()> {
        let ns = self.namespace(name).ok_or(Error::NamespaceNotFound)?;
        ns.reload()?;
        let _ = self.events.emit(&Event::NamespaceReloaded {
            namespace: name.to_string(),
        });
        Ok(())
    }

    /// fsync every namespace with unsynced writes.
    pub fn sync_all(&self) -> Result<()> {
        let all: Vec<Arc<Namespace>> = self.namespaces.read().values().cloned().collect();
        let all: Vec<&Namespace> = all.iter().map(|ns| &**ns).collect();
        crate::namespace::sync_namespaces(&all)
    }

    /// Close the open segment of every namespace whose segment is older than `age`.
    pub fn rotate_all(&self, age: Duration) -> Result<()> {
        for ns in self.namespaces.read().values() {
            ns.rotate_if_older(age)?;
        }
        Ok(())
    }

    /// Partial checkpoints of the namespaces `names`, in that order (see
    /// [`Namespace::snapshot_if`]); namespaces that do not exist are skipped.
    pub fn snapshot_all(&self, names: &[&str], age: Duration, bytes: u64) -> Result<()> {
        for name in names {
            if let Some(ns) = self.namespace(name) {
                ns.snapshot_if(age, bytes)?;
            }
        }
        Ok(())
    }

    /// Close cached handles of closed segments in every namespace (see
    /// [`Namespace::release_handles`]).
    pub fn release_handles(&self) {
        for ns in self.namespaces.read().values() {
            ns.release_handles();
        }
    }

    /// The event sink this engine reports to.
    pub fn events(&self) -> &Arc<dyn EventSink> {
        &self.events
    }
}
