//! I/O counters of a namespace (bytes read and written, failed calls, checksum faults), kept
//! with relaxed atomics so readers under the shared lock can count without contention.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
    read_errors: AtomicU64,
    write_errors: AtomicU64,
    last_error: AtomicU64,
    faults: AtomicU64,
}

/// A snapshot of one file kind's counters (data or index).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    /// Unix time of the last failed read or write, 0 if none.
    pub last_error: u64,
    /// Reads that returned bytes failing their checksum.
    pub faults: u64,
}

impl IoCounters {
    /// Element-wise sum (for instance-wide totals); the last error is the most recent.
    pub fn add(&mut self, o: &IoCounters) {
        self.read_bytes += o.read_bytes;
        self.written_bytes += o.written_bytes;
        self.read_errors += o.read_errors;
        self.write_errors += o.write_errors;
        self.last_error = self.last_error.max(o.last_error);
        self.faults += o.faults;
    }
}

impl Counters {
    pub fn read<T, E>(&self, r: &Result<T, E>, bytes: usize) {
        match r {
            Ok(_) => self.read_bytes.fetch_add(bytes as u64, Relaxed),
            Err(_) => self.failed(&self.read_errors),
        };
    }

    pub fn write<T, E>(&self, r: &Result<T, E>, bytes: usize) {
        match r {
            Ok(_) => self.written_bytes.fetch_add(bytes as u64, Relaxed),
            Err(_) => self.failed(&self.write_errors),
        };
    }

    pub fn fault(&self) {
        self.faults.fetch_add(1, Relaxed);
    }

    fn failed(&self, which: &AtomicU64) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_error.store(now, Relaxed);
        which.fetch_add(1, Relaxed)
    }

    pub fn snapshot(&self) -> IoCounters {
        IoCounters {
            read_bytes: self.read_bytes.load(Relaxed),
            written_bytes: self.written_bytes.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            last_error: self.last_error.load(Relaxed),
            faults: self.faults.load(Relaxed),
        }
    }
}

/// Counters of both file kinds of a namespace.
#[derive(Debug, Default)]
pub(crate) struct IoStats {
    pub data: Counters,
    pub index: Counters,
}

impl IoStats {
    pub fn of(&self, data: bool) -> &Counters {
        if data {
            &self.data
        } else {
            &self.index
        }
    }
}
