//! What the background flusher thread (`crate::mount`) asks of the filesystem, and how writers
//! wake it: past the low-water mark (3/4 of the dirty limit: dirty blocks are kept as long as
//! possible, for writes to coalesce) or after a run of full blocks.
//! Writers only wait at the dirty limit itself, and then store blocks themselves.

use super::blocks::Pick;
use super::Fs;
use crate::error::Result;
use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Full blocks written since the last pass that wake the flusher (4 MiB): sequential writes
/// reach the store while the writer goes on.
const EAGER_BLOCKS: usize = 32;

/// A wake-up for the flusher that is not lost if it comes while the flusher is busy.
#[derive(Default)]
pub(crate) struct Kick {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Kick {
    fn kick(&self) {
        let mut p = self.pending.lock();
        if !*p {
            *p = true;
            self.cv.notify_one();
        }
    }

    fn wait(&self, timeout: Duration) -> bool {
        let mut p = self.pending.lock();
        if !*p {
            self.cv.wait_for(&mut p, timeout);
        }
        std::mem::take(&mut *p)
    }
}

impl Fs {
    /// Wake the background flusher.
    pub fn kick_flusher(&self) {
        self.kick.kick();
    }

    /// Block until a writer wakes the flusher or `timeout` passes; returns whether woken.
    pub fn wait_for_work(&self, timeout: Duration) -> bool {
        self.kick.wait(timeout)
    }

    /// One round of the background flusher: expired blocks, full blocks not stored yet, and
    /// the oldest others while past the low-water mark; with `commit`, then the metadata.
    pub fn background_flush(&self, commit: bool) -> Result<()> {
        let _pass = self.flush_lock.lock();
        self.store_blocks(self.background_pick())?;
        if commit {
            self.commit_meta(false)?;
        }
        Ok(())
    }

    fn background_pick(&self) -> Pick {
        let now = Instant::now();
        Pick::Background {
            expired_before: now.checked_sub(self.config.dirty_expire).unwrap_or(now),
            low_water: self.low_water(),
        }
    }

    fn low_water(&self) -> usize {
        self.config.dirty_limit / 4 * 3
    }

    /// After a write left `dirty` bytes dirty and `full` full blocks since the last pass:
    /// wake the flusher if there is work, store blocks here at the dirty limit.
    pub(crate) fn after_write(&self, dirty: usize, full: usize) -> Result<()> {
        if full >= EAGER_BLOCKS || dirty > self.low_water() {
            self.kick_flusher();
        }
        if dirty > self.config.dirty_limit {
            // Waits for a pass in progress first; it may have made room already.
            let _pass = self.flush_lock.lock();
            if self.state.lock().dirty_bytes > self.config.dirty_limit {
                self.store_blocks(self.background_pick())?;
            }
        }
        Ok(())
    }
}
