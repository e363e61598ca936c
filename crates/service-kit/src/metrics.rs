//! The Prometheus text exposition format (0.0.4): families with their `# HELP` and `# TYPE`
//! lines, samples with escaped label values, and the `/metrics` route that serves a
//! freshly rendered body at each scrape.

use std::fmt::{Display, Write as _};
use std::future::Future;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }
}

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `# HELP` and `# TYPE` lines of family `name`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n"),
            kind.as_str()
        );
    }

    /// One sample of `name` (a family name, or a summary's `_sum`/`_count`).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if let Some((first, rest)) = labels.split_first() {
            self.out.push('{');
            for (i, (k, v)) in std::iter::once(first).chain(rest).enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// Append another, already rendered, exposition.
    pub fn extend(&mut self, rendered: &str) {
        self.out.push_str(rendered);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics` (and `/metrics/`), answering with what `render` returns at that moment.
pub fn route<F, Fut>(render: F) -> Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let scrape = move || {
        let render = render.clone();
        async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], render().await).into_response() }
    };
    Router::new()
        .route("/metrics", get(scrape.clone()))
        .route("/metrics/", get(scrape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaped_labels() {
        let mut o = Exposition::new();
        o.single("a_total", Kind::Counter, "Things.", 3u64);
        o.family("b", Kind::Gauge, "By place.");
        o.sample("b", &[("place", "x\"y\\z\nw"), ("k", "v")], 1.5);
        assert_eq!(
            o.finish(),
            "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n\
             # HELP b By place.\n# TYPE b gauge\nb{place=\"x\\\"y\\\\z\\nw\",k=\"v\"} 1.5\n"
        );
    }
}
