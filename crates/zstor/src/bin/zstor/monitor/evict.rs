//! Cache-size keeping: the local zdb data directory (`zdb_data_dir_path`) is kept under
//! `max_zdb_data_dir_size` MiB by deleting closed data segments that are confirmed stored.
//!
//! Every [`super::Tunables::evict_interval`] one pass (the `evict` task):
//! 1. measures the whole tree under `zdb_data_dir_path` (apparent file sizes, symbolic links
//!    not followed) into `zstor_cache_bytes`;
//! 2. when it exceeds the limit, lists the candidates: data segments `<root>/<ns>/d<N>` except
//!    the highest `N` of each namespace (the open segment) and anything of a `zdbfs-temp`
//!    namespace; index files, descriptors and any other file are never candidates;
//! 3. orders them least recently used first by the later of atime and mtime (under
//!    `noatime`/`relatime` the atime may lag, so the mtime stands in for it), ties by path;
//! 4. for each candidate until the tree is under the limit: hashes the local file
//!    (blake2b-128) and asks the metadata for the stored checksum under the key `store` would
//!    use for that path (`root` stripped); equal → delete. Not stored, or stored with another
//!    checksum (an older copy) → store it, read the checksum back, hash the file again, and
//!    delete only if all three agree. Anything that cannot be verified is kept (logged,
//!    `zstor_evict_skipped_total`, counted per attempt); after `MAX_STORE_FAILURES` (3) failed
//!    stores the pass stops early.
//!
//! Closed segments are immutable in zdb, so a segment is not expected to change between its
//! verification and its deletion; the per-key writer lock keeps the daemon's own store of
//! the same path out meanwhile.
//!
//! Owns: the eviction loop and its counters. Must not touch: the stored objects themselves
//! (it only calls [`zstor::Store`]), zdb's index files or the open segment.

use std::path::Path;

use super::Monitor;
use service_kit::Stop;
use zstor::cache::{self, Segment};
use zstor::hash::Digest128;
use zstor::keys;

/// Deepest directory level walked when measuring the data directory.
const MAX_DEPTH: usize = 16;

/// Failed stores after which a pass gives up (the backends are likely unable to take any;
/// the next pass tries again), so a long outage does not re-hash the whole cache each pass.
const MAX_STORE_FAILURES: u32 = 3;

/// Why one file was not evicted, or a pass could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    /// Local I/O (walk, stat, read, delete).
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The path has no metadata key under the config (e.g. outside `root`).
    #[error("no metadata key: {0}")]
    Key(zstor::Error),
    /// Asking for the stored checksum, or storing, failed.
    #[error("{context}: {error}")]
    Store {
        /// What was being done.
        context: &'static str,
        /// Why.
        error: zstor::Error,
    },
    /// The stored copy and the local file disagree after a store (the file changed).
    #[error("checksum not confirmed after store (local {local}, stored {stored})")]
    Unconfirmed {
        /// Hex blake2b-128 of the local file.
        local: String,
        /// Hex blake2b-128 read back from the metadata.
        stored: String,
    },
    /// A blocking task failed.
    #[error("task: {0}")]
    Task(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EvictError {
    let context = context.into();
    move |error| EvictError::Io { context, error }
}

/// Total apparent size of the regular files under `dir` (symbolic links not followed,
/// at most `MAX_DEPTH` (16) levels).
pub fn tree_size(dir: &Path) -> Result<u64, EvictError> {
    let mut total = 0u64;
    let mut todo = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(io_err(format!("list {}", d.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("list {}", d.display())))?;
            let path = entry.path();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Deleted meanwhile (zdb or another pass): not there any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(format!("stat {}", path.display()))(e)),
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    todo.push((path, depth + 1));
                }
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

/// The evictable data segments under `dir`, least recently used first (see the module doc
/// and [`zstor::cache`]).
pub fn candidates(dir: &Path) -> Result<Vec<Segment>, EvictError> {
    let all = cache::segments(dir).map_err(io_err(format!("list {}", dir.display())))?;
    Ok(all
        .into_iter()
        .filter(Segment::evictable_for_room)
        .collect())
}

/// blake2b-128 of the file at `path`, streamed.
fn hash_file(path: &Path) -> Result<Digest128, EvictError> {
    zstor::hash::file_checksum(path).map_err(io_err(format!("read {}", path.display())))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EvictError> + Send + 'static,
) -> Result<T, EvictError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EvictError::Task(e.to_string()))?
}

/// One pass: measure, and evict while over the limit.
pub async fn pass(shared: &Monitor, stop: &Stop) -> Result<(), EvictError> {
    let m = &shared.metrics;
    let store = shared.store();
    let config = store.config();
    let Some(dir) = config.zdb_data_dir_path.clone() else {
        m.set(&m.cache_bytes, 0);
        m.set(&m.cache_limit_bytes, 0);
        return Ok(());
    };
    let limit = config
        .max_zdb_data_dir_size
        .map(|mib| mib.saturating_mul(1 << 20));
    m.set(&m.cache_limit_bytes, limit.unwrap_or(0));
    let measured = dir.clone();
    let mut total = blocking(move || tree_size(&measured)).await?;
    m.set(&m.cache_bytes, total);
    let Some(limit) = limit.filter(|&l| total > l) else {
        return Ok(());
    };
    tracing::info!(
        dir = %dir.display(),
        bytes = total,
        limit,
        "data directory over its limit; evicting stored segments"
    );
    let listed = dir.clone();
    let list = blocking(move || candidates(&listed)).await?;
    let mut store_failures = 0u32;
    for c in list {
        if total <= limit || stop.is_set() {
            break;
        }
        if store_failures >= MAX_STORE_FAILURES {
            tracing::warn!(
                failures = store_failures,
                "stores failing; eviction pass stopped early"
            );
            break;
        }
        match evict_one(shared, &c.path).await {
            Ok(()) => {
                total = total.saturating_sub(c.size);
                m.set(&m.cache_bytes, total);
                m.inc(&m.evicted_files);
                m.add(&m.evicted_bytes, c.size);
                tracing::info!(path = %c.path.display(), bytes = c.size, "segment evicted");
            }
            Err(e) => {
                if matches!(
                    e,
                    EvictError::Store {
                        context: "store",
                        ..
                    }
                ) {
                    store_failures += 1;
                }
                m.inc(&m.evict_skipped);
                tracing::warn!(path = %c.path.display(), error = %e, "segment kept");
            }
        }
    }
    if total > limit {
        tracing::warn!(bytes = total, limit, "data directory still over its limit");
    }
    Ok(())
}

/// Delete `path` once its content is confirmed stored (storing it first if needed).
async fn evict_one(shared: &Monitor, path: &Path) -> Result<(), EvictError> {
    let store = shared.store();
    let key = keys::store_key(path, None, None, store.config().root.as_deref())
        .map_err(EvictError::Key)?;
    let _writer = shared
        .maintenance
        .key_locks()
        .lock(&store.meta().key_of(&key).0)
        .await;
    let p = path.to_path_buf();
    let local = blocking(move || hash_file(&p)).await?;
    let stored = match store.checksum(&key).await {
        Ok(sum) => Some(sum),
        Err(zstor::Error::NotFound(_)) => None,
        Err(error) => {
            return Err(EvictError::Store {
                context: "read stored checksum",
                error,
            })
        }
    };
    if stored != Some(local) {
        tracing::info!(
            path = %path.display(),
            stored = stored.is_some(),
            "segment not stored as it is; storing before eviction"
        );
        let meta = store
            .store_as(path, &key)
            .await
            .map_err(|error| EvictError::Store {
                context: "store",
                error,
            })?;
        let m = &shared.metrics;
        m.add(&m.bytes_in, meta.size);
        let back = store
            .checksum(&key)
            .await
            .map_err(|error| EvictError::Store {
                context: "read back stored checksum",
                error,
            })?;
        let p = path.to_path_buf();
        let now = blocking(move || hash_file(&p)).await?;
        if back != meta.checksum || now != back {
            return Err(EvictError::Unconfirmed {
                local: hex::encode(now),
                stored: hex::encode(back),
            });
        }
    }
    std::fs::remove_file(path).map_err(io_err(format!("delete {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use std::path::PathBuf;
    use std::time::Duration;
    use std::time::SystemTime;
    use zstor::cache::TEMP_NAMESPACE;

    fn file(path: &Path, size: usize, age_secs: u64) {
        std::fs::write(path, vec![7u8; size]).expect("write");
        let t = SystemTime::now() - Duration::from_secs(age_secs);
        File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_times(FileTimes::new().set_accessed(t).set_modified(t)))
            .expect("times");
    }

    #[test]
    fn candidates_skip_open_segments_temp_and_index_oldest_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for ns in ["a", "b", TEMP_NAMESPACE, "c"] {
            std::fs::create_dir(root.join(ns)).expect("mkdir");
        }
        file(&root.join("a/d0"), 10, 100);
        file(&root.join("a/d1"), 20, 300);
        file(&root.join("a/d10"), 5, 1000); // open (highest N), though oldest
        file(&root.join("a/i0"), 5, 2000);
        file(&root.join("a/zdb-namespace"), 5, 2000);
        file(&root.join("a/dx"), 5, 2000);
        file(&root.join("b/d2"), 30, 200);
        file(&root.join("b/d3"), 30, 5000); // open
        file(&root.join(TEMP_NAMESPACE).join("d0"), 40, 9000);
        file(&root.join(TEMP_NAMESPACE).join("d1"), 40, 9000);
        file(&root.join("c/d0"), 1, 1); // a lone segment is the open one
        file(&root.join("stray"), 3, 1);
        // A link is neither measured nor followed, nor a candidate.
        let outside = tempfile::tempdir().expect("tempdir");
        file(&outside.path().join("big"), 1000, 1);
        std::os::unix::fs::symlink(outside.path().join("big"), root.join("b/d1")).expect("ln");
        std::os::unix::fs::symlink(outside.path(), root.join("linked")).expect("ln");
        let got: Vec<(PathBuf, u64)> = candidates(root)
            .expect("list")
            .into_iter()
            .map(|c| (c.path, c.size))
            .collect();
        assert_eq!(
            got,
            vec![
                (root.join("a/d1"), 20),
                (root.join("b/d2"), 30),
                (root.join("a/d0"), 10),
            ]
        );
        assert_eq!(
            tree_size(root).expect("size"),
            10 + 20 + 5 * 4 + 60 + 80 + 4
        );
        assert_eq!(cache::segment_number("d0"), Some(0));
        assert_eq!(cache::segment_number("d"), None);
        assert_eq!(cache::segment_number("d+1"), None);
        assert_eq!(cache::segment_number("i3"), None);
    }
}
