//! Backends: zdb namespaces reached through `zdb-client`. Data backends are sequential-mode
//! namespaces holding pieces (`SET ""` → id, `GET id`); metadata backends are user-mode
//! namespaces holding the 4 metadata pieces under `/{prefix}/meta/{hash}`.
//!
//! Owns: client construction from config entries, piece put/get, and the metadata store's
//! quorum rules (writes need all 4 metadata backends, reads any 2), and every request's
//! bounds from what [`liveness`] measured of its backend (a silent backend is given up on
//! within seconds, then skipped without waiting). Must not touch: the codec (pieces are
//! opaque bytes here), placement, or local files.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;
use zdb_client::{Client, ClientConfig, Endpoint};

use crate::config::{self, Config};
use crate::hash::Digest128;
use crate::meta::{meta_key, MetaCodec, ObjectMeta};
use crate::Error;

pub mod liveness;
pub use liveness::Liveness;

/// Connections kept per backend, one request in flight on each. A backend across a link of
/// 50 ms round trip answers at most 20 requests a second per connection: a folder of small
/// files stored side by side needs many at once (two metadata requests per file), while a
/// large file keeps only a few chunks in flight. Each is opened on first need.
const CONNECTIONS: usize = 16;

/// One zdb namespace.
#[derive(Clone, Debug)]
pub struct Backend {
    label: String,
    client: Client,
    liveness: Arc<Liveness>,
}

impl Backend {
    /// A lazily connecting client for a config entry.
    pub fn new(conf: &config::Backend) -> Result<Self, Error> {
        let label = conf.label();
        let wrap = |source| Error::Backend {
            address: label.clone(),
            source,
        };
        let endpoint: Endpoint = conf.address.parse().map_err(wrap)?;
        let liveness = Arc::new(Liveness::default());
        // The request timeout only bounds a transfer that keeps moving (a large piece over
        // a slow link); silence is the stall timeout's, which follows the round trip.
        let mut cc = ClientConfig::new(endpoint)
            .with_pool_size(CONNECTIONS)
            .with_connect_timeout(Duration::from_secs(3))
            .with_request_timeout(Duration::from_secs(120))
            .with_stall_timeout(Some(liveness.stall_timeout()));
        if let Some(ns) = &conf.namespace {
            cc = cc.with_namespace(ns, conf.password.clone());
        }
        Ok(Self {
            client: Client::new(cc).map_err(wrap)?,
            label,
            liveness,
        })
    }

    /// What was measured of this backend (round trip, down mark).
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Run one request: refused at once while the backend is marked down, its latency or
    /// failure recorded, the client's stall timeout kept in step with the round trip.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, zdb_client::ClientError>>,
    ) -> Result<T, Error> {
        if let Some(r) = self.liveness.refuses(Instant::now()) {
            return Err(Error::BackendDown {
                address: self.label.clone(),
                silent_for: r.silent_for,
                retry_in: r.retry_in,
            });
        }
        let start = Instant::now();
        let result = request.await;
        let now = Instant::now();
        match &result {
            Err(e) if e.is_connection_error() => self.liveness.failed(now),
            _ => {
                self.liveness.answered(now - start, now);
                self.client
                    .set_stall_timeout(Some(self.liveness.stall_timeout()));
            }
        }
        result.map_err(|e| self.err(e))
    }

    /// `address/namespace`.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn err(&self, source: zdb_client::ClientError) -> Error {
        Error::Backend {
            address: self.label.clone(),
            source,
        }
    }

    /// Whether the backend answers `PING` (a backend marked down is not asked before its
    /// retry time).
    pub async fn ping(&self) -> bool {
        self.call(self.client.ping()).await.is_ok()
    }

    /// Append a piece to a sequential namespace; returns its id.
    pub async fn put_piece(&self, piece: &[u8]) -> Result<u64, Error> {
        self.call(self.client.set_seq(piece)).await
    }

    /// Read a piece by sequential id (`None`: absent).
    pub async fn get_piece(&self, id: u64) -> Result<Option<Bytes>, Error> {
        self.call(self.client.get(&id.to_le_bytes())).await
    }

    /// Delete a piece (zdb appends a tombstone; the space returns when the backend compacts).
    /// An absent piece counts as deleted.
    pub async fn delete_piece(&self, id: u64) -> Result<(), Error> {
        self.delete(&id.to_le_bytes()).await
    }

    /// `DEL key`; an absent key counts as deleted.
    pub async fn delete(&self, key: &[u8]) -> Result<(), Error> {
        match self.call(self.client.del(key)).await {
            Err(Error::Backend {
                source: zdb_client::ClientError::Server(msg),
                ..
            }) if msg.contains("Key not found") => Ok(()),
            other => other,
        }
    }

    /// `SET key value` in a user-mode namespace.
    pub async fn put_key(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.call(self.client.set(key, value)).await.map(|_| ())
    }

    /// `GET key` in a user-mode namespace.
    pub async fn get_key(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        self.call(self.client.get(key)).await
    }

    /// Every key of the namespace, following `SCAN` cursors to the end (not just the first
    /// batch: 0-stor v2's metadata walk stopped there). At most `max_pages` pages are read;
    /// more is reported as an error rather than looping forever on a misbehaving server.
    pub async fn scan_keys(&self, max_pages: usize) -> Result<Vec<Bytes>, Error> {
        let mut keys = Vec::new();
        let mut cursor: Option<Bytes> = None;
        for _ in 0..max_pages {
            match self.call(self.client.scan(cursor.as_deref())).await? {
                None => return Ok(keys),
                Some((next, entries)) => {
                    keys.extend(entries.into_iter().map(|e| e.key));
                    cursor = Some(next);
                }
            }
        }
        Err(Error::Internal(format!(
            "{}: SCAN did not end within {max_pages} pages",
            self.label
        )))
    }
}

/// Bound on `SCAN` pages read by [`MetaStore::keys`] (zdb answers one or a few keys a page).
pub const MAX_SCAN_PAGES: usize = 10_000_000;

/// The metadata store: 4 user-mode backends, records dispersed 2+2.
pub struct MetaStore {
    backends: Vec<Backend>,
    prefix: String,
    root: Option<std::path::PathBuf>,
    codec: MetaCodec,
}

impl MetaStore {
    /// From a validated config.
    pub fn new(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            backends: config
                .meta
                .config
                .backends
                .iter()
                .map(Backend::new)
                .collect::<Result<_, _>>()?,
            prefix: config.meta.config.prefix.clone(),
            root: config.root.clone(),
            codec: MetaCodec::new(config.meta_key()?),
        })
    }

    /// The metadata backends.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The storage key of `path`'s record and its path hash (see [`meta_key`]).
    pub fn key_of(&self, path: &Path) -> (String, Digest128) {
        meta_key(&self.prefix, self.root.as_deref(), path)
    }

    /// Parse a raw storage key `/{prefix}/meta/{32 hex}` (as `rebuild -k` takes it) into the
    /// key and its path hash.
    pub fn parse_key(&self, key: &str) -> Result<(String, Digest128), Error> {
        let bad = |why: &str| Error::InvalidPath {
            path: key.to_owned(),
            reason: why.to_owned(),
        };
        let hex_hash = key
            .strip_prefix(&format!("/{}/meta/", self.prefix))
            .ok_or_else(|| bad("not a metadata key of this config's prefix"))?;
        let mut hash = [0u8; 16];
        hex::decode_to_slice(hex_hash, &mut hash)
            .map_err(|_| bad("expected 32 hex digits after the prefix"))?;
        Ok((key.to_owned(), hash))
    }

    /// Every metadata key of this config's prefix (`/{prefix}/meta/…`), sorted, from the
    /// first metadata backend that lists its whole namespace (writes reach all 4, so any
    /// one of them holds every key).
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        let prefix = format!("/{}/meta/", self.prefix);
        let mut last = None;
        for b in &self.backends {
            match b.scan_keys(MAX_SCAN_PAGES).await {
                Ok(raw) => {
                    let set: std::collections::BTreeSet<String> = raw
                        .iter()
                        .filter_map(|k| std::str::from_utf8(k).ok())
                        .filter(|k| k.starts_with(&prefix))
                        .map(str::to_owned)
                        .collect();
                    return Ok(set.into_iter().collect());
                }
                Err(e) => {
                    tracing::debug!(backend = b.label(), error = %e, "metadata key listing failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::TooFewBackends {
            reachable: 0,
            needed: 1,
        }))
    }

    /// Store the record of `path`; every one of the 4 backends must accept its piece.
    pub async fn put(&self, path: &Path, meta: &ObjectMeta) -> Result<(), Error> {
        let (key, hash) = self.key_of(path);
        self.put_at(&key, hash, meta).await
    }

    /// Store a record under a storage key from [`MetaStore::key_of`] or
    /// [`MetaStore::parse_key`].
    /// Remove the record under `key` from every metadata backend (all must answer, as for a
    /// write, so that no backend keeps serving it).
    pub async fn delete_at(&self, key: &str) -> Result<(), Error> {
        let mut tasks = JoinSet::new();
        for b in &self.backends {
            let (b, key) = (b.clone(), key.to_owned());
            tasks.spawn(async move { b.delete(key.as_bytes()).await });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            if matches!(r, Ok(Ok(()))) {
                ok += 1;
            }
        }
        if ok < self.backends.len() {
            return Err(Error::TooFewBackends {
                reachable: ok,
                needed: self.backends.len(),
            });
        }
        Ok(())
    }

    pub async fn put_at(&self, key: &str, hash: Digest128, meta: &ObjectMeta) -> Result<(), Error> {
        let pieces = self.codec.seal(hash, meta)?;
        let mut tasks = JoinSet::new();
        for (b, piece) in self.backends.iter().cloned().zip(pieces) {
            let key = key.to_owned();
            tasks.spawn(async move { b.put_key(key.as_bytes(), &piece).await });
        }
        let mut ok = 0;
        let mut last = None;
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => ok += 1,
                Ok(Err(e)) => last = Some(e),
                Err(e) => last = Some(Error::Internal(format!("metadata write task: {e}"))),
            }
        }
        if ok < self.backends.len() {
            tracing::warn!(error = ?last, "metadata write incomplete");
            return Err(Error::TooFewBackends {
                reachable: ok,
                needed: self.backends.len(),
            });
        }
        Ok(())
    }

    /// The record of `path`, from any 2 of the 4 backends.
    pub async fn get(&self, path: &Path) -> Result<ObjectMeta, Error> {
        let (key, hash) = self.key_of(path);
        self.get_at(&key, hash, &path.display().to_string()).await
    }

    /// The record under a storage key; `name` is what a not-found error reports.
    pub async fn get_at(
        &self,
        key: &str,
        hash: Digest128,
        name: &str,
    ) -> Result<ObjectMeta, Error> {
        let mut tasks = JoinSet::new();
        for (i, b) in self.backends.iter().cloned().enumerate() {
            let key = key.to_owned();
            tasks.spawn(async move { (i, b.get_key(key.as_bytes()).await) });
        }
        let mut pieces: Vec<Option<Bytes>> = vec![None; self.backends.len()];
        let (mut answered, mut found) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            if let Ok((i, Ok(value))) = r {
                answered += 1;
                if value.is_some() {
                    found += 1;
                }
                pieces[i] = value;
            }
        }
        if answered < 2 {
            return Err(Error::TooFewBackends {
                reachable: answered,
                needed: 2,
            });
        }
        if found == 0 {
            return Err(Error::NotFound(name.to_owned()));
        }
        let refs: Vec<Option<&[u8]>> = pieces.iter().map(|p| p.as_deref()).collect();
        match self.codec.open(hash, &refs) {
            // Values under this key, none of them a piece of ours: another program's record
            // (0-stor v2 keeps its metadata under the same key) or one damaged beyond use.
            Err(Error::TooFewPieces { available: 0, .. }) if found >= 2 => {
                Err(Error::Meta(format!(
                "the record of {name} is not in this zstor's format (another program's, such as \
                 0-stor v2, or damaged)"
            )))
            }
            other => other,
        }
    }
}
