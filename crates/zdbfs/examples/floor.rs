//! The floor under zdbfs's figures: zdbfs mounted on a store that keeps its records in memory
//! and does no I/O, so what a benchmark measures on it is the FUSE round trips (over the same
//! transport, /dev/fuse or io_uring) and zdbfs's own work, nothing of the storage.
//! `scripts/bench/fuse-floor.sh` runs tar on it beside zdbfs and the local disk.
//!
//! A measuring tool, not a filesystem to keep anything in: it all goes at unmount.
//!
//!     cargo run --release -p zdbfs --example floor -- MOUNTPOINT   # until SIGTERM/SIGINT

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use parking_lot::Mutex;
use zdbfs::error::StoreError;
use zdbfs::{MountOptions, Ns, Store};

/// One sequential namespace: the next id and the live records.
#[derive(Default)]
struct MemNs {
    next: u64,
    records: BTreeMap<u64, Vec<u8>>,
}

#[derive(Default)]
struct MemStore {
    ns: [Mutex<MemNs>; 3],
}

impl MemStore {
    fn of(&self, ns: Ns) -> parking_lot::MutexGuard<'_, MemNs> {
        let i = Ns::ALL.iter().position(|&n| n == ns).unwrap_or(0);
        self.ns[i].lock()
    }
}

impl Store for MemStore {
    fn append(&self, ns: Ns, value: &[u8]) -> Result<u64, StoreError> {
        let mut n = self.of(ns);
        let id = n.next;
        n.next += 1;
        n.records.insert(id, value.to_vec());
        Ok(id)
    }

    fn update(&self, ns: Ns, id: u64, value: &[u8]) -> Result<(), StoreError> {
        self.of(ns).records.insert(id, value.to_vec());
        Ok(())
    }

    fn get(&self, ns: Ns, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.of(ns).records.get(&id).cloned())
    }

    fn delete(&self, ns: Ns, id: u64) -> Result<(), StoreError> {
        self.of(ns).records.remove(&id);
        Ok(())
    }

    fn ids(&self, ns: Ns) -> Result<Vec<u64>, StoreError> {
        Ok(self.of(ns).records.keys().copied().collect())
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn used_bytes(&self, ns: Ns) -> Result<u64, StoreError> {
        Ok(self.of(ns).records.values().map(|v| v.len() as u64).sum())
    }
}

fn main() -> anyhow::Result<()> {
    let mountpoint: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: floor MOUNTPOINT")?
        .into();
    // The engine folder is never opened: the store is given to `mount` directly.
    let opts = MountOptions::engine("unused");
    let mounted = zdbfs::mount(&mountpoint, Arc::new(MemStore::default()), &opts)
        .with_context(|| format!("mounting {}", mountpoint.display()))?;
    eprintln!(
        "floor: zdbfs over memory mounted at {}",
        mountpoint.display()
    );
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())?;
    }
    while !term.load(Ordering::Relaxed) && !mounted.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    mounted.unmount().context("unmounting")?;
    Ok(())
}
