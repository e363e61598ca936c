//! Compaction of stored segments: the dead bytes of each stored copy ([`stored_usage`], also
//! what `qsfs status` reports as reclaimable) and the pass that empties the mostly dead
//! ones so their next checkpoint gives the space back on the backends.
//!
//! Must not touch: the engine's compaction itself (`Namespace::compact_segments`) or the
//! upload of the emptied segments (the offloader's checkpoints).

use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context;
use zdb_engine::format::FILE_HEADER_LEN;

use crate::manifest::NsManifest;
use crate::stack::Stack;

/// A stored data segment: the record bytes of its stored copy (`area`) and how many of
/// them live records still use.
pub(crate) struct StoredUsage {
    pub segment: u32,
    pub area: u64,
    pub live: u64,
}

impl StoredUsage {
    /// Bytes of the stored copy no live record uses.
    pub fn dead(&self) -> u64 {
        self.area.saturating_sub(self.live)
    }
}

/// The closed segments of `ns` that `stored` (its manifest part) holds a copy of.
pub(crate) fn stored_usage<'a>(
    ns: &zdb_engine::Namespace,
    stored: &'a NsManifest,
) -> impl Iterator<Item = StoredUsage> + 'a {
    ns.segment_usage().into_iter().filter_map(|u| {
        Some(StoredUsage {
            segment: u.segment,
            area: stored
                .data
                .get(&u.segment)?
                .size
                .saturating_sub(FILE_HEADER_LEN as u64),
            live: u.live_bytes,
        })
    })
}

/// What a compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompactReport {
    /// Stored data segments emptied (their old copies go once the next checkpoint is up).
    pub segments: u64,
    pub records_moved: u64,
    pub bytes_moved: u64,
}

impl Stack {
    /// Compact, in every offloaded namespace, the stored data segments at least
    /// `dead_percent` dead by bytes: their live records move to the open segment (an evicted
    /// segment is fetched back for that), each is left as just its header, and the
    /// namespace's next checkpoint stores that in place of the old copy, which is then
    /// deleted from the backends.
    pub fn compact(&self, dead_percent: u8) -> anyhow::Result<CompactReport> {
        let manifest = self.offloader.manifest();
        // A staged checkpoint holds a link to its closed segment's file (or a partial one a
        // reference into it), which compaction would truncate under it: such segments wait
        // until that checkpoint is uploaded.
        let staged: std::collections::HashSet<(String, u32)> = self
            .offloader
            .pending()
            .into_iter()
            .map(|p| (p.ns, p.version.segment))
            .collect();
        let mut report = CompactReport::default();
        for name in self.engine.list() {
            let (Some(ns), Some(stored)) =
                (self.engine.namespace(&name), manifest.namespaces.get(&name))
            else {
                continue;
            };
            let picked: Vec<u32> = stored_usage(&ns, stored)
                .filter(|u| {
                    u.area > 0
                        && !staged.contains(&(name.clone(), u.segment))
                        && u.dead().saturating_mul(100)
                            >= u.area.saturating_mul(u64::from(dead_percent))
                })
                .map(|u| u.segment)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let stats = ns
                .compact_segments(&picked)
                .with_context(|| format!("compacting {name}"))?;
            self.offloader.note_emptied(&name, &stats.emptied);
            let counters = &self.offloader.stats;
            counters
                .segments_compacted
                .fetch_add(u64::from(stats.segments_emptied), Relaxed);
            counters
                .records_moved
                .fetch_add(stats.records_moved, Relaxed);
            report.segments += u64::from(stats.segments_emptied);
            report.records_moved += stats.records_moved;
            report.bytes_moved += stats.bytes_moved;
            tracing::info!(namespace = %name, segments = ?stats.emptied, records_moved = stats.records_moved, "compacted");
        }
        Ok(report)
    }
}
