//! What the API tests share: a client over the router in process (cookie and CSRF kept).
#![allow(dead_code)]
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

pub struct Client {
    pub app: Router,
    pub cookie: String,
    pub csrf: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 1 << 30)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn req(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method.clone()).uri(uri);
        if !self.cookie.is_empty() {
            b = b.header(header::COOKIE, &self.cookie);
        }
        if method != Method::GET && !self.csrf.is_empty() {
            b = b.header("x-csrf-token", &self.csrf);
        }
        b
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(self.req(Method::GET, uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, uri: &str, json: serde_json::Value) -> Reply {
        let req = self
            .req(Method::POST, uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_string()))
            .unwrap();
        self.send(req).await
    }

    pub async fn put(&self, path: &str, body: &[u8], extra: &[(&str, &str)]) -> Reply {
        let mut b = self.req(
            Method::PUT,
            &format!("/api/file?path={}&parents=1", enc(path)),
        );
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_vec())).unwrap()).await
    }

    pub async fn login(&mut self) {
        let r = self
            .post("/api/login", serde_json::json!({ "token": TOKEN }))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        self.cookie = set.split(';').next().unwrap().to_string();
        self.csrf = r.json()["csrf"].as_str().unwrap().to_string();
    }
}

pub fn client(root: &std::path::Path) -> Client {
    let state = qsfs_web::WebState::open(root, TOKEN.into(), None).unwrap();
    client_of(Arc::new(state))
}

pub fn client_of(state: Arc<qsfs_web::WebState>) -> Client {
    Client {
        app: qsfs_web::router(state),
        cookie: String::new(),
        csrf: String::new(),
    }
}

impl Client {
    /// Sign in with an account; the status of the answer.
    pub async fn sign_in(&mut self, user: &str, password: &str) -> StatusCode {
        let r = self
            .post(
                "/api/login",
                serde_json::json!({ "user": user, "password": password }),
            )
            .await;
        if r.status == StatusCode::OK {
            let set = r.headers[header::SET_COOKIE].to_str().unwrap();
            self.cookie = set.split(';').next().unwrap().to_string();
            self.csrf = r.json()["csrf"].as_str().unwrap().to_string();
        }
        r.status
    }

    pub async fn names(&self, path: &str) -> Vec<String> {
        let r = self.get(&format!("/api/list?path={}", enc(path))).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    }
}
