//! Prometheus `/metrics` on `127.0.0.1:<prometheus_port>` (zstor's key): the same data as
//! `qsfs status` in the text exposition format, gathered at each scrape, with the background
//! tasks' runs and zstor's repair families.

use std::sync::Arc;

use axum::Router;
use service_kit::metrics::{Exposition, Kind};

use crate::stack::Stack;
use crate::status::Status;

/// `GET /metrics` for `stack`.
pub fn routes(stack: Arc<Stack>) -> Router {
    service_kit::metrics::route(move || {
        let stack = stack.clone();
        async move {
            let mut out = render(&Status::gather(&stack).await);
            stack.tasks.write_metrics(&mut out, "qsfs");
            stack.traffic.render(&mut out);
            out.extend(&stack.offloader.maintenance().render_metrics());
            out.finish()
        }
    })
}

/// The exposition of `s`.
pub fn render(s: &Status) -> Exposition {
    let mut o = Exposition::new();
    o.single(
        "qsfs_cache_bytes",
        Kind::Gauge,
        "Bytes of local data segments.",
        s.cache.bytes,
    );
    o.single(
        "qsfs_cache_limit_bytes",
        Kind::Gauge,
        "Local cache limit (0: none).",
        s.cache.limit.unwrap_or(0),
    );
    o.family(
        "qsfs_segments",
        Kind::Gauge,
        "Data segments by namespace and state.",
    );
    for n in &s.namespaces {
        for (state, v) in [
            ("local", n.local_segments),
            ("offloaded", n.offloaded_segments),
            ("evicted", n.evicted_segments),
        ] {
            o.sample(
                "qsfs_segments",
                &[("namespace", &n.name), ("state", state)],
                v as u64,
            );
        }
    }
    let f = &s.offload;
    o.single(
        "qsfs_offload_pending",
        Kind::Gauge,
        "Checkpoints staged, not uploaded yet.",
        f.pending as u64,
    );
    o.single(
        "qsfs_exposure_bytes",
        Kind::Gauge,
        "Bytes written that are not on the backends yet (what losing this machine loses).",
        f.exposure.bytes,
    );
    o.single(
        "qsfs_exposure_seconds",
        Kind::Gauge,
        "Seconds since the newest checkpoint on the backends was taken, while bytes are exposed.",
        f.exposure.seconds.ceil() as u64,
    );
    o.single(
        "qsfs_offload_checkpoints_total",
        Kind::Counter,
        "Checkpoints uploaded.",
        f.checkpoints_uploaded,
    );
    o.single(
        "qsfs_offload_bytes_total",
        Kind::Counter,
        "Bytes uploaded.",
        f.bytes_uploaded,
    );
    o.single(
        "qsfs_offload_failures_total",
        Kind::Counter,
        "Failed upload attempts.",
        f.upload_failures,
    );
    o.single(
        "qsfs_fetch_segments_total",
        Kind::Counter,
        "Evicted segments fetched back.",
        f.segments_fetched,
    );
    o.single(
        "qsfs_fetch_ranges_total",
        Kind::Counter,
        "First reads of evicted segments served from the chunk covering them.",
        f.ranges_fetched,
    );
    o.single(
        "qsfs_fetch_without_room_total",
        Kind::Counter,
        "Fetches put off because the cache's disk had no room (reads served range by range).",
        f.fetches_without_room,
    );
    o.single(
        "qsfs_fetch_bytes_total",
        Kind::Counter,
        "Bytes fetched back.",
        f.bytes_fetched,
    );
    o.single(
        "qsfs_fetch_failures_total",
        Kind::Counter,
        "Fetches that failed (reads got EIO).",
        f.fetch_failures,
    );
    let c = &s.compaction;
    o.single(
        "qsfs_compaction_reclaimable_bytes",
        Kind::Gauge,
        "Bytes of stored data segments no live record uses.",
        c.reclaimable_bytes,
    );
    o.single(
        "qsfs_compaction_segments_total",
        Kind::Counter,
        "Stored data segments emptied by compaction.",
        c.segments_compacted,
    );
    o.single(
        "qsfs_compaction_bytes_given_back_total",
        Kind::Counter,
        "Stored bytes given back by replacing segments with emptied copies.",
        c.bytes_given_back,
    );
    o.family(
        "qsfs_backend_up",
        Kind::Gauge,
        "Whether a backend answered a ping.",
    );
    for b in &s.backends {
        let ns = b.namespace.as_deref().unwrap_or("default");
        let labels = [
            ("role", b.role.as_str()),
            ("address", b.address.as_str()),
            ("namespace", ns),
        ];
        o.sample("qsfs_backend_up", &labels, u64::from(b.up));
    }
    let x = &s.filesystem;
    for (name, help, v) in [
        ("zdbfs_ops_total", "Metadata operations.", x.ops),
        (
            "zdbfs_requests_total",
            "Kernel requests answered.",
            x.requests,
        ),
        ("zdbfs_reads_total", "Read calls.", x.calls.read),
        ("zdbfs_writes_total", "Write calls.", x.calls.write),
        ("zdbfs_read_bytes_total", "Bytes read.", x.bytes_read),
        (
            "zdbfs_written_bytes_total",
            "Bytes written.",
            x.bytes_written,
        ),
        (
            "zdbfs_cache_hits_total",
            "Block lookups served by the cache.",
            x.cache_hits,
        ),
        (
            "zdbfs_cache_misses_total",
            "Block lookups that went to the store.",
            x.cache_misses,
        ),
        (
            "zdbfs_errors_total",
            "Operations that failed (EIO, ENOSPC, ...).",
            x.errors,
        ),
        (
            "zdbfs_refused_total",
            "Operations refused as asked (unsupported, not allowed, exists, not empty, ...).",
            x.refused,
        ),
    ] {
        o.single(name, Kind::Counter, help, v);
    }
    o
}
