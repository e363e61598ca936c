//! [`Store`] on the zdb engine in the same process: no network hop, no serialization.

use super::{Ns, Part, Store};
use crate::error::StoreError;
use std::path::Path;
use std::sync::Arc;
use zdb_engine::{
    seq_key, Direction, Engine, EngineConfig, Mode, Namespace, NoEvents, SettingChange,
};

/// The three namespaces on an engine opened (or shared) by this process.
pub struct EngineStore {
    engine: Arc<Engine>,
    ns: [Arc<Namespace>; 3],
    /// Exclusive lock on the engine directory while this store lives (one mount at a time).
    _lock: Option<std::fs::File>,
}

fn err(ns: Ns, e: zdb_engine::Error) -> StoreError {
    if e.is_no_space() {
        return StoreError::Full {
            ns: ns.default_name(),
            msg: e.to_string(),
        };
    }
    StoreError::Backend {
        ns: ns.default_name(),
        msg: e.to_string(),
    }
}

impl EngineStore {
    /// Open an engine whose data and index live under `dir` (`dir/data`, `dir/index`), creating
    /// the namespaces when missing.
    pub fn open(dir: &Path) -> Result<EngineStore, crate::Error> {
        let lock = lock_dir(dir)?;
        let config = EngineConfig::new(dir.join("data"), dir.join("index"));
        let engine = Arc::new(Engine::open(config, Arc::new(NoEvents))?);
        let names = Ns::ALL.map(|n| n.default_name().to_string());
        let mut store = Self::with_engine(engine, &names, true)?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// Use namespaces `names` (meta, data, temp) of an engine shared with others (e.g. qsfs).
    pub fn with_engine(
        engine: Arc<Engine>,
        names: &[String; 3],
        create: bool,
    ) -> Result<EngineStore, crate::Error> {
        let mut out = Vec::with_capacity(3);
        for name in names {
            let ns = match engine.namespace(name) {
                Some(ns) => ns,
                None if create => engine.create(name)?,
                None => return Err(StoreError::NoNamespace(name.clone()).into()),
            };
            if ns.mode() != Mode::Seq {
                if ns.is_empty() {
                    ns.change_setting(SettingChange::Mode(Mode::Seq))?;
                } else {
                    return Err(StoreError::NotSeq(name.clone()).into());
                }
            }
            out.push(ns);
        }
        // Unlinking a file rewrites metadata: that must work on a full disk, so metadata may
        // use the reserve the engine keeps (file data may not).
        out[Ns::Meta.index()].use_reserve(true);
        let ns: [Arc<Namespace>; 3] = out
            .try_into()
            .map_err(|_| crate::Error::Corrupt("namespace count".into()))?;
        Ok(EngineStore {
            engine,
            ns,
            _lock: None,
        })
    }

    /// The engine under this store.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn ns(&self, ns: Ns) -> &Namespace {
        &self.ns[ns.index()]
    }
}

impl Store for EngineStore {
    fn append(&self, ns: Ns, value: &[u8]) -> Result<u64, StoreError> {
        match self.ns(ns).set(b"", value, None).map_err(|e| err(ns, e))? {
            zdb_engine::SetOutcome::Written(key) => parse_id(&key).ok_or(StoreError::Backend {
                ns: ns.default_name(),
                msg: "bad id returned by append".into(),
            }),
            zdb_engine::SetOutcome::Unchanged => Err(StoreError::Backend {
                ns: ns.default_name(),
                msg: "append reported unchanged".into(),
            }),
        }
    }

    fn update(&self, ns: Ns, id: u64, value: &[u8]) -> Result<(), StoreError> {
        let id = u32::try_from(id).map_err(|_| StoreError::Backend {
            ns: ns.default_name(),
            msg: format!("id {id} out of range"),
        })?;
        self.ns(ns)
            .set(&seq_key(id), value, None)
            .map(|_| ())
            .map_err(|e| err(ns, e))
    }

    fn get(&self, ns: Ns, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Ok(id) = u32::try_from(id) else {
            return Ok(None);
        };
        self.ns(ns).get(&seq_key(id)).map_err(|e| err(ns, e))
    }

    /// Each part is copied once, from the engine's map of its segment into `out`; a part
    /// from a record's start is checksummed as it is copied (`get_append`).
    fn append_parts(&self, ns: Ns, parts: &[Part], out: &mut Vec<u8>) -> Result<usize, StoreError> {
        for (n, part) in parts.iter().enumerate() {
            let Ok(id) = u32::try_from(part.id) else {
                return Ok(n);
            };
            let key = seq_key(id);
            let found = if part.from == 0 {
                let at = out.len();
                let found = self.ns(ns).get_append(&key, out);
                if let Ok(true) = found {
                    // Exactly `len` bytes: a shorter record ends in zeros.
                    out.truncate(at + part.len);
                    out.resize(at + part.len, 0);
                }
                found
            } else {
                self.ns(ns)
                    .get_with(&key, |record| record.map(|r| part.append(r, out)).is_some())
            }
            .map_err(|e| err(ns, e))?;
            if !found {
                return Ok(n);
            }
        }
        Ok(parts.len())
    }

    fn delete(&self, ns: Ns, id: u64) -> Result<(), StoreError> {
        let Ok(id) = u32::try_from(id) else {
            return Ok(());
        };
        match self.ns(ns).delete(&seq_key(id)) {
            Ok(()) | Err(zdb_engine::Error::KeyNotFound) => Ok(()),
            Err(e) => Err(err(ns, e)),
        }
    }

    fn ids(&self, ns: Ns) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let mut from = None;
        loop {
            match self.ns(ns).scan(from, Direction::Forward, 4096) {
                Ok(page) => {
                    out.extend(page.items.iter().filter_map(|i| parse_id(&i.key)));
                    from = Some(page.next);
                }
                Err(zdb_engine::Error::NoMoreData) => break,
                Err(e) => return Err(err(ns, e)),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn sync(&self) -> Result<(), StoreError> {
        let all = self.ns.each_ref().map(|ns| &**ns);
        zdb_engine::sync_namespaces(&all).map_err(|e| err(Ns::Data, e))
    }

    fn used_bytes(&self, ns: Ns) -> Result<u64, StoreError> {
        Ok(self.ns(ns).info().payload_bytes)
    }

    fn available_bytes(&self) -> Result<Option<u64>, StoreError> {
        let (available, _) = self.engine.disk_space().map_err(|e| err(Ns::Data, e))?;
        Ok(Some(available))
    }
}

/// A seq-mode key (4 or 8 bytes little-endian) as an id.
pub(crate) fn parse_id(key: &[u8]) -> Option<u64> {
    match key.len() {
        4 => Some(u64::from(u32::from_le_bytes(key.try_into().ok()?))),
        8 => Some(u64::from_le_bytes(key.try_into().ok()?)),
        _ => None,
    }
}

/// Take `dir/zdbfs.lock` exclusively: a second zdbfs on the same directory would corrupt it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, crate::Error> {
    // The engine files hold the filesystem's blocks in plaintext: its owner's alone.
    zdb_engine::private::private_dir(dir)?;
    match service_kit::sys::lock_exclusive(&dir.join("zdbfs.lock")) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(crate::Error::Option {
            field: "engine".into(),
            msg: format!("{} is in use by another zdbfs", dir.display()),
        }),
        r => Ok(r?),
    }
}
