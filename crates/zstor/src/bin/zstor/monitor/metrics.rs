//! The daemon's counters and the Prometheus `/metrics` endpoint.
//!
//! Owns: [`Metrics`] (lock-free counters of requests, the store queue and the cache, updated
//! by the other monitor tasks), rendering them with the maintenance's families (repair,
//! scrub, the last backend probe, the tasks) in the Prometheus text format (service-kit's
//! writer), served on `127.0.0.1:prometheus_port` at `GET /metrics`. Must not touch:
//! probing backends (the health task does it; a scrape only reads its last result).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{io_err, Monitor, MonitorError};
use service_kit::metrics::{Exposition, Kind};

/// Operations counted per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `store`.
    Store,
    /// `retrieve`.
    Retrieve,
    /// `check`.
    Check,
    /// `rebuild` (asked by a client).
    Rebuild,
    /// `status`.
    Status,
}

const OPS: [Op; 5] = [Op::Store, Op::Retrieve, Op::Check, Op::Rebuild, Op::Status];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Store => "store",
            Op::Retrieve => "retrieve",
            Op::Check => "check",
            Op::Rebuild => "rebuild",
            Op::Status => "status",
        }
    }
}

#[derive(Debug, Default)]
struct OpStats {
    count: AtomicU64,
    errors: AtomicU64,
    micros: AtomicU64,
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    ops: [OpStats; 5],
    /// Requests executing now.
    pub in_flight: AtomicU64,
    /// Background stores (`store -n`) waiting or running.
    pub store_queue: AtomicU64,
    /// Plaintext bytes stored.
    pub bytes_in: AtomicU64,
    /// Plaintext bytes retrieved.
    pub bytes_out: AtomicU64,
    /// Successful config reloads.
    pub config_reloads: AtomicU64,
    /// Bytes under `zdb_data_dir_path` at the last eviction pass.
    pub cache_bytes: AtomicU64,
    /// `max_zdb_data_dir_size` in bytes (0: none).
    pub cache_limit_bytes: AtomicU64,
    /// Data segments deleted locally once confirmed stored.
    pub evicted_files: AtomicU64,
    /// Bytes of those segments.
    pub evicted_bytes: AtomicU64,
    /// Segments over the limit kept because they could not be stored or verified.
    pub evict_skipped: AtomicU64,
}

impl Metrics {
    /// Add one.
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Add `n`.
    pub fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtract `n` (saturating at 0).
    pub fn sub(&self, c: &AtomicU64, n: u64) {
        let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }

    /// Set a gauge.
    pub fn set(&self, c: &AtomicU64, n: u64) {
        c.store(n, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    fn stats(&self, op: Op) -> &OpStats {
        let i = OPS.iter().position(|&o| o == op).unwrap_or(0);
        &self.ops[i]
    }

    /// Count one request of kind `op`.
    pub fn record(&self, op: Op, took: Duration, ok: bool) {
        let s = self.stats(op);
        s.count.fetch_add(1, Ordering::Relaxed);
        if !ok {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        s.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Requests of kind `op` served so far.
    pub fn count(&self, op: Op) -> u64 {
        self.stats(op).count.load(Ordering::Relaxed)
    }
}

/// The whole exposition, Prometheus text format 0.0.4.
pub fn render(shared: &Monitor) -> String {
    let m = &shared.metrics;
    let mut out = Exposition::new();
    for (name, help, value) in [
        (
            "zstor_requests_total",
            "Requests served by the daemon, by operation.",
            (|m, op| m.count(op)) as fn(&Metrics, Op) -> u64,
        ),
        (
            "zstor_request_errors_total",
            "Requests that failed, by operation.",
            |m, op| m.stats(op).errors.load(Ordering::Relaxed),
        ),
    ] {
        out.family(name, Kind::Counter, help);
        for op in OPS {
            out.sample(name, &[("op", op.name())], value(m, op));
        }
    }
    let duration = "zstor_request_duration_seconds";
    out.family(
        duration,
        Kind::Summary,
        "Time spent serving requests, by operation.",
    );
    for op in OPS {
        let micros = m.stats(op).micros.load(Ordering::Relaxed);
        let labels = [("op", op.name())];
        out.sample(
            &format!("{duration}_sum"),
            &labels,
            format!("{:.6}", micros as f64 / 1e6),
        );
        out.sample(&format!("{duration}_count"), &labels, m.count(op));
    }
    let scalars: [(&str, Kind, &str, &AtomicU64); 10] = [
        (
            "zstor_store_queue_length",
            Kind::Gauge,
            "Background stores (store -n) waiting or running.",
            &m.store_queue,
        ),
        (
            "zstor_requests_in_flight",
            Kind::Gauge,
            "Requests executing now.",
            &m.in_flight,
        ),
        (
            "zstor_bytes_in_total",
            Kind::Counter,
            "Plaintext bytes stored.",
            &m.bytes_in,
        ),
        (
            "zstor_bytes_out_total",
            Kind::Counter,
            "Plaintext bytes retrieved.",
            &m.bytes_out,
        ),
        (
            "zstor_config_reloads_total",
            Kind::Counter,
            "Configs reloaded by SIGUSR1.",
            &m.config_reloads,
        ),
        (
            "zstor_cache_bytes",
            Kind::Gauge,
            "Bytes under zdb_data_dir_path at the last eviction pass (0: not set).",
            &m.cache_bytes,
        ),
        (
            "zstor_cache_limit_bytes",
            Kind::Gauge,
            "max_zdb_data_dir_size in bytes (0: none).",
            &m.cache_limit_bytes,
        ),
        (
            "zstor_evicted_files_total",
            Kind::Counter,
            "Data segments deleted locally once confirmed stored.",
            &m.evicted_files,
        ),
        (
            "zstor_evicted_bytes_total",
            Kind::Counter,
            "Bytes of the data segments evicted.",
            &m.evicted_bytes,
        ),
        (
            "zstor_evict_skipped_total",
            Kind::Counter,
            "Segments kept although over the limit: not storable or not verified.",
            &m.evict_skipped,
        ),
    ];
    for (name, kind, help, v) in scalars {
        out.single(name, kind, help, m.get(v));
    }

    shared.maintenance.write_metrics(&mut out);
    let zdbfs = *shared.zdbfs.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(stats) = zdbfs {
        super::zdbfs::render(&stats, &mut out);
    }
    out.finish()
}

/// Bind `127.0.0.1:port` (loopback only).
pub async fn bind(port: u16) -> Result<TcpListener, MonitorError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(io_err(format!("bind metrics on 127.0.0.1:{port}")))
}

/// Serve `/metrics` until `stop`.
pub async fn serve(listener: TcpListener, shared: Arc<Monitor>, stop: service_kit::Stop) {
    let app = service_kit::metrics::route(move || {
        let shared = Arc::clone(&shared);
        async move { render(&shared) }
    });
    service_kit::http::serve(listener, app, stop, "metrics endpoint").await;
}
