//! Storing dirty blocks without holding the state lock, so writers and readers go on while
//! a pass runs (a pass of 64 MiB used to stall every request behind the one mutex):
//!
//! 1. under the lock, pick dirty blocks and take a reference to their bytes (no copy: a writer
//!    that changes a picked block copies it first, see `CBlock::bytes_mut`);
//! 2. without the lock, update each stored block in place or append a new record;
//! 3. under the lock again, reconcile: a new record becomes the block's record only if the
//!    same cache entry still exists and the inode has none (else it is freed); a block is
//!    clean only if its generation did not move meanwhile.
//!
//! Passes run one at a time (`Fs::flush_lock`), so two copies of a block are never in flight
//! and the metadata commit (which deletes freed records) never overlaps a pass. An inode
//! names a record only once the record is stored: the crash ordering of `flush` holds.

use super::{CBlock, Fs, State};
use crate::error::Result;
use crate::inode::BLOCK;
use crate::store::Ns;
use std::sync::Arc;
use std::time::Instant;

/// Which dirty blocks a pass stores.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pick {
    /// Every dirty block (fsync, unmount).
    All,
    /// The blocks of one file (close).
    File(u64),
    /// The background's choice: blocks dirty since before `expired_before`, full blocks not
    /// stored yet (sequential writing: nothing will coalesce into them), and, while more than
    /// `low_water` bytes are dirty, the oldest others down to 5/6 of it.
    Background {
        expired_before: Instant,
        low_water: usize,
    },
}

/// One block to store: its bytes as they were when picked.
struct Job {
    key: (u64, u64),
    data: Arc<Vec<u8>>,
    gen: u64,
    born: u64,
    /// Its record, `None` for a block never stored.
    id: Option<u64>,
}

impl Fs {
    /// Store the dirty blocks `pick` selects; the caller holds `flush_lock`. Returns whether
    /// any block was stored. On a store error the blocks stored before it are reconciled
    /// and the rest stay dirty.
    pub(crate) fn store_blocks(&self, pick: Pick) -> Result<bool> {
        let jobs = select(&mut self.state.lock(), pick);
        if jobs.is_empty() {
            return Ok(false);
        }
        let mut done = Vec::with_capacity(jobs.len());
        let mut failed = None;
        for job in jobs {
            let r = match job.id {
                Some(id) => self.store.update(Ns::Data, id, &job.data).map(|()| id),
                None => self.store.append(Ns::Data, &job.data),
            };
            match r {
                Ok(id) => {
                    self.metrics.count_block_write(job.data.len() as u64);
                    done.push((job, id));
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let mut st = self.state.lock();
        for (job, id) in done {
            reconcile(&mut st, job, id);
        }
        self.evict(&mut st);
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(true),
        }
    }
}

fn select(st: &mut State, pick: Pick) -> Vec<Job> {
    st.full_blocks = 0;
    let dirty = |(_, b): &(&(u64, u64), &CBlock)| b.dirty;
    let mut picked: Vec<((u64, u64), &CBlock)> = match pick {
        Pick::All => st
            .blocks
            .iter()
            .filter(dirty)
            .map(|(k, b)| (*k, b))
            .collect(),
        Pick::File(ino) => st
            .blocks
            .range((ino, 0)..=(ino, u64::MAX))
            .filter(dirty)
            .map(|(k, b)| (*k, b))
            .collect(),
        Pick::Background {
            expired_before,
            low_water,
        } => {
            let mut left = st.dirty_bytes;
            let mut chosen = Vec::new();
            let mut rest = Vec::new();
            for (k, b) in st.blocks.iter().filter(dirty) {
                let unstored = || {
                    st.inodes
                        .get(&k.0)
                        .is_some_and(|i| !i.blocks.contains_key(&k.1))
                };
                if b.dirty_since < expired_before || (b.data.len() == BLOCK as usize && unstored())
                {
                    left = left.saturating_sub(b.data.len());
                    chosen.push((*k, b));
                } else {
                    rest.push((*k, b));
                }
            }
            if left > low_water {
                rest.sort_by_key(|(_, b)| b.dirty_since);
                for (k, b) in rest {
                    if left <= low_water / 6 * 5 {
                        break;
                    }
                    left = left.saturating_sub(b.data.len());
                    chosen.push((k, b));
                }
            }
            chosen
        }
    };
    // Store in key order: consecutive blocks of a file get consecutive ids (one run).
    picked.sort_unstable_by_key(|(k, _)| *k);
    picked
        .into_iter()
        .filter_map(|(key, b)| {
            let id = st.inodes.get(&key.0)?.blocks.get(&key.1).copied();
            Some(Job {
                key,
                data: b.data.clone(),
                gen: b.gen,
                born: b.born,
                id,
            })
        })
        .collect()
}

fn reconcile(st: &mut State, job: Job, id: u64) {
    let (ino, bi) = job.key;
    if job.id.is_none() {
        let same = st.blocks.get(&job.key).is_some_and(|b| b.born == job.born);
        match st.inodes.get_mut(&ino) {
            Some(i) if same && !i.blocks.contains_key(&bi) => {
                i.blocks.insert(bi, id);
                st.dirty_inodes.insert(ino);
            }
            // Truncated, punched or destroyed meanwhile: nothing names the new record.
            _ => {
                st.free_data.push(id);
                return;
            }
        }
    }
    if let Some(b) = st.blocks.get_mut(&job.key) {
        if b.dirty && b.gen == job.gen {
            b.dirty = false;
            st.dirty_bytes -= b.data.len();
        }
    }
}
