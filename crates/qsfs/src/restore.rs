//! Restore: refill an empty cache folder from the backends, from the last complete checkpoint
//! of each namespace (see `crate::manifest`).
//!
//! Fetched eagerly: the manifest, each namespace's descriptor and index files, and its newest
//! data segment: the one the last checkpoint closed, or, after a partial checkpoint, the open
//! segment put together from its pieces. The engine opens that one for appending; qsfs then
//! closes it at once so stored segments stay immutable. Older data segments come back on
//! first read.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::manifest::{self, Manifest, ManifestError};

/// Why a restore could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} already holds a local cache; move it away to restore into a fresh one")]
    NotEmpty(PathBuf),
    #[error("the backends hold no qsfs manifest for this configuration (prefix {0:?})")]
    NothingStored(String),
    #[error("fetching {what}: {source}")]
    Store { what: String, source: zstor::Error },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What a restore brought back.
#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreReport {
    pub namespaces: usize,
    pub files: usize,
    pub bytes: u64,
}

/// Whether the local zdb folder is absent or empty.
pub fn cache_is_empty(config: &Config) -> bool {
    match std::fs::read_dir(config.zdb_dir()) {
        Ok(mut d) => d.next().is_none(),
        Err(_) => true,
    }
}

/// The manifest stored on the backends: `Ok(None)` when none was ever stored.
pub async fn stored_manifest(
    config: &Config,
    store: &zstor::Store,
) -> Result<Option<Manifest>, RestoreError> {
    let cache = &config.qsfs.cache_dir;
    std::fs::create_dir_all(cache).map_err(|source| RestoreError::Io {
        path: cache.clone(),
        source,
    })?;
    let out = cache.join("manifest.fetch");
    match store
        .retrieve_file(Path::new(manifest::MANIFEST_NAME), &out)
        .await
    {
        Ok(_) => {}
        Err(zstor::Error::NotFound(_)) => return Ok(None),
        Err(source) => {
            return Err(RestoreError::Store {
                what: "the manifest".into(),
                source,
            })
        }
    }
    let bytes = std::fs::read(&out).map_err(|source| RestoreError::Io {
        path: out.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&out);
    Ok(Some(Manifest::decode(
        &bytes,
        Path::new(manifest::MANIFEST_NAME),
    )?))
}

/// Fill the (empty) cache folder of `config` from the backends.
pub async fn restore(config: &Config, store: &zstor::Store) -> Result<RestoreReport, RestoreError> {
    if !cache_is_empty(config) {
        return Err(RestoreError::NotEmpty(config.zdb_dir()));
    }
    let manifest = stored_manifest(config, store)
        .await?
        .ok_or_else(|| RestoreError::NothingStored(config.zstor.meta.config.prefix.clone()))?;
    let zdb = config.zdb_dir();
    let mut report = RestoreReport::default();
    for (ns, m) in &manifest.namespaces {
        let (index, data) = (zdb.join("index").join(ns), zdb.join("data").join(ns));
        for dir in [&index, &data] {
            std::fs::create_dir_all(dir).map_err(|source| RestoreError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let mut wanted = vec![(
            manifest::descriptor_name(ns, m.descriptor),
            index.join("zdb-namespace"),
        )];
        for (&seg, &version) in &m.index {
            wanted.push((
                manifest::index_name(ns, seg, version),
                index.join(format!("i{seg}")),
            ));
        }
        match &m.open {
            Some(open) => {
                let out = data.join(format!("d{}", open.segment));
                report.bytes += restore_pieces(store, ns, open, &out).await?;
                report.files += 1;
            }
            None => wanted.push((
                manifest.data_object(ns, m.checkpoint),
                data.join(format!("d{}", m.checkpoint)),
            )),
        }
        for (name, out) in wanted {
            let meta = fetch_object(store, &name, &out).await?;
            report.files += 1;
            report.bytes += meta.size;
        }
        report.namespaces += 1;
        tracing::info!(namespace = %ns, checkpoint = %m.version(), "namespace restored");
    }
    manifest.save(&config.qsfs.cache_dir.join("manifest.json"))?;
    Ok(report)
}

/// Put open segment `open` of `ns` together from its pieces into `out`; returns its size.
async fn restore_pieces(
    store: &zstor::Store,
    ns: &str,
    open: &manifest::OpenSegment,
    out: &Path,
) -> Result<u64, RestoreError> {
    use std::io::Write;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io { path, source }
    };
    let part = out.with_extension("piece");
    let mut file = std::fs::File::create(out).map_err(io(out))?;
    for piece in &open.pieces {
        let name = manifest::piece_name(ns, open.segment, piece.start);
        let meta = fetch_object(store, &name, &part).await?;
        // A stored piece is never rewritten: one that is not the manifest's is damage.
        let actual = hex::encode(meta.checksum);
        if meta.size != piece.size || actual != piece.checksum {
            return Err(RestoreError::Store {
                what: name.display().to_string(),
                source: zstor::Error::ChecksumMismatch {
                    expected: piece.checksum.clone(),
                    actual,
                },
            });
        }
        let bytes = std::fs::read(&part).map_err(io(&part))?;
        file.write_all(&bytes).map_err(io(out))?;
    }
    let _ = std::fs::remove_file(&part);
    file.sync_all().map_err(io(out))?;
    Ok(open.len())
}

/// Retrieve stored object `name` into `out`; a failure names the object.
async fn fetch_object(
    store: &zstor::Store,
    name: &Path,
    out: &Path,
) -> Result<zstor::meta::ObjectMeta, RestoreError> {
    store
        .retrieve_file(name, out)
        .await
        .map_err(|source| RestoreError::Store {
            what: name.display().to_string(),
            source,
        })
}
