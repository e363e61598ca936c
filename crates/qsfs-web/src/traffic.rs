//! Requests, bytes and latency per protocol (the web page and its API, WebDAV, S3), for the
//! metrics endpoint: requests by status class (4xx and 5xx are the errors), bytes received
//! and sent (body bytes, counted as they stream), and a histogram of the time to the
//! response's head (a GET's body streams on after it).
//!
//! It also closes a connection whose request body was not read to its end (an upload
//! refused before its body was read): the unread rest must not be taken for the next
//! request on the connection (a client saw such replies as bare 400s).
//!
//! Owns: the counters and their exposition. Must not touch: what the requests do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use service_kit::metrics::{Exposition, Kind};

/// The protocols counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Web,
    WebDav,
    S3,
}

impl Protocol {
    const ALL: [Protocol; 3] = [Protocol::Web, Protocol::WebDav, Protocol::S3];

    fn name(self) -> &'static str {
        match self {
            Protocol::Web => "web",
            Protocol::WebDav => "webdav",
            Protocol::S3 => "s3",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds (`+Inf` after them).
const BOUNDS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Counters {
    /// Answers by status class: 1xx to 5xx.
    classes: [AtomicU64; 5],
    received: AtomicU64,
    sent: AtomicU64,
    /// Requests whose head took at most `BOUNDS[i]`; the last, all.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    micros: AtomicU64,
}

/// The counters of every protocol.
#[derive(Default)]
pub struct Traffic {
    counters: [Counters; 3],
}

impl Traffic {
    fn of(&self, p: Protocol) -> &Counters {
        &self.counters[p as usize]
    }

    fn answered(&self, p: Protocol, status: u16, took: Duration) {
        let c = self.of(p);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        c.classes[class].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BOUNDS.len());
        c.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        c.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The families, with a sample per protocol.
    pub fn render(&self, o: &mut Exposition) {
        o.family(
            "qsfs_http_requests_total",
            Kind::Counter,
            "Requests answered, by protocol and status class (4xx, 5xx: errors).",
        );
        for p in Protocol::ALL {
            for (i, n) in self.of(p).classes.iter().enumerate() {
                let class = format!("{}xx", i + 1);
                let labels = [("protocol", p.name()), ("class", class.as_str())];
                o.sample(
                    "qsfs_http_requests_total",
                    &labels,
                    n.load(Ordering::Relaxed),
                );
            }
        }
        for (name, help, pick) in [
            (
                "qsfs_http_received_bytes_total",
                "Request body bytes received, by protocol.",
                (|c: &Counters| &c.received) as fn(&Counters) -> &AtomicU64,
            ),
            (
                "qsfs_http_sent_bytes_total",
                "Response body bytes sent, by protocol.",
                |c: &Counters| &c.sent,
            ),
        ] {
            o.family(name, Kind::Counter, help);
            for p in Protocol::ALL {
                let v = pick(self.of(p)).load(Ordering::Relaxed);
                o.sample(name, &[("protocol", p.name())], v);
            }
        }
        let h = "qsfs_http_request_seconds";
        o.family(
            h,
            Kind::Histogram,
            "Time to the response's head, by protocol.",
        );
        for p in Protocol::ALL {
            let c = self.of(p);
            let mut total = 0;
            for (i, n) in c.buckets.iter().enumerate() {
                total += n.load(Ordering::Relaxed);
                let le = BOUNDS
                    .get(i)
                    .map_or("+Inf".to_string(), ToString::to_string);
                let labels = [("protocol", p.name()), ("le", le.as_str())];
                o.sample(&format!("{h}_bucket"), &labels, total);
            }
            let secs = c.micros.load(Ordering::Relaxed) as f64 / 1e6;
            o.sample(&format!("{h}_sum"), &[("protocol", p.name())], secs);
            o.sample(&format!("{h}_count"), &[("protocol", p.name())], total);
        }
    }
}

/// `router` with its requests counted as `protocol`'s.
pub fn counted(router: axum::Router, traffic: &Arc<Traffic>, protocol: Protocol) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        (Arc::clone(traffic), protocol),
        count,
    ))
}

async fn count(
    State((traffic, p)): State<(Arc<Traffic>, Protocol)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let t = Arc::clone(&traffic);
    let read_whole = Arc::new(AtomicBool::new(req.body().is_end_stream()));
    let whole = Arc::clone(&read_whole);
    let req = req.map(|body| {
        Body::new(Counted {
            body,
            traffic: t,
            p,
            read_whole: Some(whole),
        })
    });
    let mut response = next.run(req).await;
    traffic.answered(p, response.status().as_u16(), started.elapsed());
    if !read_whole.load(Ordering::SeqCst) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response.map(|body| {
        Body::new(Counted {
            body,
            traffic,
            p,
            read_whole: None,
        })
    })
}

/// A body whose data bytes are counted as they pass; its size and end are the inner
/// body's (S3 signatures and length checks read them).
struct Counted {
    body: Body,
    traffic: Arc<Traffic>,
    p: Protocol,
    /// A request's body: set once it is read to its end. `None`: a response's body.
    read_whole: Option<Arc<AtomicBool>>,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        let c = self.traffic.of(self.p);
        match (&polled, &self.read_whole) {
            (std::task::Poll::Ready(Some(Ok(frame))), whole) => {
                if let Some(d) = frame.data_ref() {
                    let n = if whole.is_some() {
                        &c.received
                    } else {
                        &c.sent
                    };
                    n.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
                if let Some(w) = whole.as_ref().filter(|_| self.body.is_end_stream()) {
                    w.store(true, Ordering::SeqCst);
                }
            }
            (std::task::Poll::Ready(None), Some(w)) => w.store(true, Ordering::SeqCst),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn answers_land_in_their_class_and_bucket() {
        let t = Traffic::default();
        t.answered(Protocol::S3, 200, Duration::from_millis(3));
        t.answered(Protocol::S3, 404, Duration::from_secs(20));
        t.answered(Protocol::WebDav, 207, Duration::from_micros(10));
        let mut o = Exposition::new();
        t.render(&mut o);
        let text = o.finish();
        for line in [
            "qsfs_http_requests_total{protocol=\"s3\",class=\"2xx\"} 1",
            "qsfs_http_requests_total{protocol=\"s3\",class=\"4xx\"} 1",
            "qsfs_http_request_seconds_bucket{protocol=\"s3\",le=\"0.001\"} 0",
            "qsfs_http_request_seconds_bucket{protocol=\"s3\",le=\"0.005\"} 1",
            "qsfs_http_request_seconds_bucket{protocol=\"s3\",le=\"10\"} 1",
            "qsfs_http_request_seconds_bucket{protocol=\"s3\",le=\"+Inf\"} 2",
            "qsfs_http_request_seconds_count{protocol=\"webdav\"} 1",
            "qsfs_http_requests_total{protocol=\"web\",class=\"2xx\"} 0",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[tokio::test]
    async fn a_body_left_unread_closes_its_connection() {
        use tower::ServiceExt;
        let traffic = Arc::new(Traffic::default());
        let app = axum::Router::new()
            .route(
                "/refuse",
                axum::routing::put(|| async { StatusCode::FORBIDDEN }),
            )
            .route(
                "/take",
                axum::routing::put(|body: String| async move { body }),
            );
        let app = counted(app, &traffic, Protocol::S3);
        let put = |path: &str, body: &'static str| {
            axum::http::Request::put(path)
                .body(Body::from(body))
                .unwrap()
        };
        let refused = app.clone().oneshot(put("/refuse", "unread")).await.unwrap();
        assert_eq!(refused.headers()["connection"], "close");
        let taken = app.clone().oneshot(put("/take", "read")).await.unwrap();
        assert!(taken.headers().get("connection").is_none());
        let empty = app.oneshot(put("/refuse", "")).await.unwrap();
        assert!(empty.headers().get("connection").is_none());
        let mut o = Exposition::new();
        traffic.render(&mut o);
        let text = o.finish();
        assert!(
            text.contains("qsfs_http_received_bytes_total{protocol=\"s3\"} 4"),
            "{text}"
        );
    }
}
