//! Streaming store and retrieve of whole files: read a chunk, encode it, send its `n` pieces
//! to their backends in parallel, repeat; memory is a few chunks whatever the file size.
//!
//! Owns: the file ↔ chunks loop, choosing backends (skipping unreachable ones) through
//! [`crate::placement`], building the [`ObjectMeta`], the file checksum, and writing the
//! output to a temporary file renamed only once verified. Must not touch: the codec's
//! internals, piece formats, or how the metadata is encrypted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rand::RngCore;
use tokio::task::JoinSet;

use crate::backend::{Backend, MetaStore};
use crate::config::Config;
use crate::hash::{Digest128, FileHasher};
use crate::meta::{
    shard_checksum, BackendRef, EncryptionAlgorithm, ObjectMeta, ShardMeta, META_VERSION,
};
use crate::pipeline::{
    ChunkDecoder, ChunkEncoder, CodecParams, DataKey, PieceHeader, DEFAULT_CHUNK_SIZE,
};
use crate::placement;
use crate::Error;

/// A configured store: data backends by group, metadata store, keys.
pub struct Store {
    config: Config,
    data_key: DataKey,
    groups: Vec<Vec<(crate::config::Backend, Backend)>>,
    meta: MetaStore,
    chunk_size: usize,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

impl Store {
    /// From a config (validated here).
    pub fn new(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let groups = config
            .groups
            .iter()
            .map(|g| {
                g.backends
                    .iter()
                    .map(|b| Ok((b.clone(), Backend::new(b)?)))
                    .collect::<Result<Vec<_>, Error>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            data_key: config.data_key()?,
            meta: MetaStore::new(&config)?,
            groups,
            config,
            chunk_size: DEFAULT_CHUNK_SIZE,
        })
    }

    /// Use another chunk size (tests, tuning).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// The metadata store.
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// Indices of the reachable data backends, by group.
    async fn reachable(&self) -> Vec<Vec<usize>> {
        let mut tasks = JoinSet::new();
        for (g, group) in self.groups.iter().enumerate() {
            for (i, (_, b)) in group.iter().enumerate() {
                let b = b.clone();
                tasks.spawn(async move { (g, i, b.ping().await) });
            }
        }
        let mut up = vec![Vec::new(); self.groups.len()];
        while let Some(Ok((g, i, ok))) = tasks.join_next().await {
            if ok {
                up[g].push(i);
            }
        }
        for idx in &mut up {
            idx.sort_unstable();
        }
        up
    }

    /// Store the file at `path` under its own path; returns the metadata written.
    pub async fn store_file(&self, path: &Path) -> Result<ObjectMeta, Error> {
        self.store_as(path, path).await
    }

    /// Store the file at `source` under the name `path`.
    pub async fn store_as(&self, source: &Path, path: &Path) -> Result<ObjectMeta, Error> {
        let rules = self.config.rules();
        let up = self.reachable().await;
        let sizes: Vec<usize> = up.iter().map(Vec::len).collect();
        let reachable: usize = sizes.iter().sum();
        let slots = placement::choose(&sizes, &rules, rand::thread_rng().next_u64()).map_err(
            |e| match e {
                placement::PlacementError::TooFewBackends { n, available } => {
                    Error::TooFewBackends {
                        reachable: available,
                        needed: n,
                    }
                }
                other => {
                    tracing::warn!(reachable, "no placement over the reachable backends");
                    Error::Placement(other)
                }
            },
        )?;
        let targets: Vec<&(crate::config::Backend, Backend)> = slots
            .iter()
            .map(|s| &self.groups[s.group][up[s.group][s.backend]])
            .collect();

        let params = CodecParams {
            k: rules.k,
            m: rules.n - rules.k,
            compression: self.config.compression()?,
            chunk_size: self.chunk_size,
        };
        let mut object_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut object_id);
        let mut encoder = ChunkEncoder::new(params, &self.data_key, object_id)?;
        let mut file =
            std::fs::File::open(source).map_err(io(format!("open {}", source.display())))?;
        let mut buf = vec![0u8; self.chunk_size];
        let mut hasher = FileHasher::new();
        let n = params.n();
        let mut keys: Vec<Vec<u64>> = vec![Vec::new(); n];
        let mut sums: Vec<Vec<Digest128>> = vec![Vec::new(); n];
        let mut size = 0u64;
        for chunk in 0u64.. {
            let len =
                read_full(&mut file, &mut buf).map_err(io(format!("read {}", source.display())))?;
            if len == 0 {
                break;
            }
            size += len as u64;
            hasher.update(&buf[..len]);
            let pieces = encoder.encode(chunk, &buf[..len])?;
            let mut tasks = JoinSet::new();
            for (i, (piece, (_, b))) in pieces.iter().zip(&targets).enumerate() {
                let piece = Bytes::copy_from_slice(piece);
                if let Some(sum) = PieceHeader::stored_checksum(&piece) {
                    sums[i].push(sum);
                }
                let b = b.clone();
                tasks.spawn(async move { (i, b.put_piece(&piece).await) });
            }
            while let Some(r) = tasks.join_next().await {
                let (i, r) = r.map_err(|e| Error::Meta(format!("upload task: {e}")))?;
                keys[i].push(r?);
            }
            if len < buf.len() {
                break;
            }
        }
        let shards = (0..n)
            .map(|i| {
                let conf = &targets[i].0;
                ShardMeta {
                    index: i as u8,
                    backend: BackendRef {
                        address: conf.address.clone(),
                        namespace: conf.namespace.clone(),
                    },
                    keys: std::mem::take(&mut keys[i]),
                    checksum: shard_checksum(&sums[i]),
                }
            })
            .collect();
        let meta = ObjectMeta {
            version: META_VERSION,
            object_id,
            checksum: hasher.finish(),
            size,
            chunk_size: self.chunk_size as u32,
            k: params.k as u8,
            m: params.m as u8,
            compression: params.compression,
            encryption: EncryptionAlgorithm::Aes256Gcm,
            shards,
        };
        self.meta.put(path, &meta).await?;
        Ok(meta)
    }

    /// The backend holding a shard, from the current config.
    fn backend_for(&self, r: &BackendRef) -> Result<Backend, Error> {
        let found = self
            .groups
            .iter()
            .flatten()
            .find(|(c, _)| c.address == r.address && c.namespace == r.namespace);
        match found {
            Some((_, b)) => Ok(b.clone()),
            None => Backend::new(&crate::config::Backend {
                address: r.address.clone(),
                namespace: r.namespace.clone(),
                password: None,
            }),
        }
    }

    /// Retrieve `path` into `out`: written to a temporary file next to `out`, renamed only
    /// after every chunk decoded and the file checksum matched.
    pub async fn retrieve_file(&self, path: &Path, out: &Path) -> Result<ObjectMeta, Error> {
        let meta = self.meta.get(path).await?;
        let params = meta.params();
        let backends: Vec<Backend> = meta
            .shards
            .iter()
            .map(|s| self.backend_for(&s.backend))
            .collect::<Result<_, _>>()?;
        let mut decoder = ChunkDecoder::new(params, &self.data_key, meta.object_id)?;
        let tmp = temp_name(out);
        let mut file =
            std::fs::File::create(&tmp).map_err(io(format!("create {}", tmp.display())))?;
        let result = self
            .retrieve_into(&meta, &backends, &mut decoder, &mut file)
            .await;
        let result = result.and_then(|()| {
            file.sync_all()
                .map_err(io(format!("sync {}", tmp.display())))?;
            std::fs::rename(&tmp, out).map_err(io(format!("rename to {}", out.display())))
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| meta)
    }

    async fn retrieve_into(
        &self,
        meta: &ObjectMeta,
        backends: &[Backend],
        decoder: &mut ChunkDecoder,
        file: &mut std::fs::File,
    ) -> Result<(), Error> {
        let k = meta.k as usize;
        let n = backends.len();
        let mut hasher = FileHasher::new();
        let mut left = meta.size;
        for chunk in 0..meta.chunk_count() {
            let mut pieces: Vec<Option<Bytes>> = vec![None; n];
            // Data shards first; parity only when something is missing or bad.
            fetch(meta, backends, chunk, 0..k, &mut pieces).await;
            let mut decoded = decoder.decode(chunk, &as_refs(&pieces)).map(<[u8]>::len);
            if matches!(decoded, Err(Error::TooFewPieces { .. })) {
                fetch(meta, backends, chunk, k..n, &mut pieces).await;
                decoded = decoder.decode(chunk, &as_refs(&pieces)).map(<[u8]>::len);
            }
            let len = decoded?;
            let expected = left.min(meta.chunk_size as u64);
            if len as u64 != expected {
                return Err(Error::CorruptChunk(
                    "chunk length differs from the metadata",
                ));
            }
            left -= expected;
            let bytes = decoder.output();
            hasher.update(bytes);
            file.write_all(bytes).map_err(io("write output"))?;
        }
        let actual = hasher.finish();
        if actual != meta.checksum {
            return Err(Error::ChecksumMismatch {
                expected: hex::encode(meta.checksum),
                actual: hex::encode(actual),
            });
        }
        Ok(())
    }
}

fn as_refs(pieces: &[Option<Bytes>]) -> Vec<Option<&[u8]>> {
    pieces.iter().map(|p| p.as_deref()).collect()
}

/// Fetch the pieces of `chunk` for `shards` in parallel; failures leave `None`.
async fn fetch(
    meta: &ObjectMeta,
    backends: &[Backend],
    chunk: u64,
    shards: std::ops::Range<usize>,
    pieces: &mut [Option<Bytes>],
) {
    let mut tasks = JoinSet::new();
    for i in shards {
        let (Some(b), Some(id)) = (
            backends.get(i),
            meta.shards.get(i).and_then(|s| s.keys.get(chunk as usize)),
        ) else {
            continue;
        };
        let (b, id) = (b.clone(), *id);
        tasks.spawn(async move { (i, b.get_piece(id).await) });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((i, Ok(piece))) => pieces[i] = piece,
            Ok((i, Err(e))) => tracing::debug!(shard = i, error = %e, "piece unavailable"),
            Err(e) => tracing::debug!(error = %e, "fetch task failed"),
        }
    }
}

/// Fill `buf` from `r` unless end of file comes first; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn temp_name(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".zstor-tmp-{:08x}", rand::thread_rng().next_u32()));
    out.with_file_name(name)
}
