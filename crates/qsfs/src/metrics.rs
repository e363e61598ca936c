//! Prometheus `/metrics` on `127.0.0.1:<prometheus_port>` (zstor's key): the same data as
//! `qsfs status` in the text exposition format, gathered at each scrape.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::node::Shared;
use crate::status::Status;

/// The routes this module serves.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut body = render(&shared.status().await);
    body += &shared.offloader.maintenance().render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Serve on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let app = routes().with_state(shared);
    crate::web::serve_app(listener, app, stop, "metrics endpoint").await
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let _ = write!(self.0, "{name}");
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text for `s`.
pub fn render(s: &Status) -> String {
    let mut o = Out(String::new());
    o.one(
        "qsfs_cache_bytes",
        "gauge",
        "Bytes of local data segments.",
        s.cache.bytes,
    );
    o.one(
        "qsfs_cache_limit_bytes",
        "gauge",
        "Local cache limit (0: none).",
        s.cache.limit.unwrap_or(0),
    );
    o.family(
        "qsfs_segments",
        "gauge",
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
    o.one(
        "qsfs_offload_pending",
        "gauge",
        "Checkpoints staged, not uploaded yet.",
        f.pending as u64,
    );
    o.one(
        "qsfs_offload_checkpoints_total",
        "counter",
        "Checkpoints uploaded.",
        f.checkpoints_uploaded,
    );
    o.one(
        "qsfs_offload_bytes_total",
        "counter",
        "Bytes uploaded.",
        f.bytes_uploaded,
    );
    o.one(
        "qsfs_offload_failures_total",
        "counter",
        "Failed upload attempts.",
        f.upload_failures,
    );
    o.one(
        "qsfs_fetch_segments_total",
        "counter",
        "Evicted segments fetched back.",
        f.segments_fetched,
    );
    o.one(
        "qsfs_fetch_bytes_total",
        "counter",
        "Bytes fetched back.",
        f.bytes_fetched,
    );
    o.one(
        "qsfs_fetch_failures_total",
        "counter",
        "Fetches that failed (reads got EIO).",
        f.fetch_failures,
    );
    let c = &s.compaction;
    o.one(
        "qsfs_compaction_reclaimable_bytes",
        "gauge",
        "Bytes of stored data segments no live record uses.",
        c.reclaimable_bytes,
    );
    o.one(
        "qsfs_compaction_segments_total",
        "counter",
        "Stored data segments emptied by compaction.",
        c.segments_compacted,
    );
    o.one(
        "qsfs_compaction_bytes_given_back_total",
        "counter",
        "Stored bytes given back by replacing segments with emptied copies.",
        c.bytes_given_back,
    );
    o.family(
        "qsfs_backend_up",
        "gauge",
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
            "Operations answered with an error other than ENOENT.",
            x.errors,
        ),
    ] {
        o.one(name, "counter", help, v);
    }
    o.0
}
