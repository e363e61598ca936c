//! Cross-site requests are refused: a request that changes something (anything but GET,
//! HEAD and OPTIONS) and comes from a browser page of another origin (its `Origin` header
//! names another host than the request's own) gets 403 before any handler runs. Requests
//! without `Origin` (curl, WebDAV and S3 clients) are not browsers' cross-site requests
//! and pass; the session's CSRF token still guards the API on top of this.
//!
//! Owns: that one check. Must not touch: sessions.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Whether `origin` (`scheme://host[:port]`) is the host the request was sent to.
fn same_host(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// The middleware (see the module's doc).
pub async fn same_origin(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("");
            if !origin.to_str().is_ok_and(|o| same_host(o, host)) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "a request from another site was refused",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_their_host_only() {
        assert!(same_host("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_host("https://Drive.example", "drive.example"));
        assert!(!same_host("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_host("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_host("null", "127.0.0.1:8080"));
        assert!(!same_host("http://127.0.0.1:8080", ""));
    }
}
