//! Share links in process over a plain folder: read links (password, counter, limit,
//! expiry, revocation), file drops (no listing, names kept, the owner's quota), confinement
//! (symbolic links and `..` inside a shared folder), who may see and revoke links, and the
//! sign-in checks that hold under concurrency and across sites.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use common::{client_of, enc, Client, TOKEN};

fn state(dir: &std::path::Path) -> Arc<qsfs_web::WebState> {
    Arc::new(qsfs_web::WebState::open(dir, TOKEN.into(), None).unwrap())
}

async fn signed_in(state: &Arc<qsfs_web::WebState>, user: &str, password: &str) -> Client {
    let mut c = client_of(Arc::clone(state));
    assert_eq!(c.sign_in(user, password).await, StatusCode::OK);
    c
}

/// A visitor: no session; keeps the cookie a link's password gives.
fn visitor(state: &Arc<qsfs_web::WebState>) -> Client {
    client_of(Arc::clone(state))
}

async fn share(owner: &Client, body: serde_json::Value) -> String {
    let r = owner.post("/api/shares", body).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/s/") && url.len() == 3 + 22, "{url}");
    url
}

fn text(r: &common::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn a_read_link_with_a_password_counts_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    st.users
        .add("alice", "alice's password", false, None)
        .unwrap();
    let alice = signed_in(&st, "alice", "alice's password").await;
    alice.put("/photos/a.txt", b"hello there", &[]).await;
    alice.put("/photos/sub/b.txt", b"bee", &[]).await;
    alice.put("/private.txt", b"not shared", &[]).await;
    let link = share(
        &alice,
        serde_json::json!({"path": "/photos", "password": "link secret", "max_uses": 3}),
    )
    .await;

    let mut v = visitor(&st);
    assert_eq!(
        v.get(&link).await.status,
        StatusCode::OK,
        "the recipient page"
    );
    let info = v.get(&format!("{link}/api/info")).await;
    assert_eq!(info.json()["needs_password"], true);
    assert!(
        info.json().get("name").is_none(),
        "nothing told before the password"
    );
    assert_eq!(
        v.get(&format!("{link}/api/list?path=/")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = v
        .post(
            &format!("{link}/api/unlock"),
            serde_json::json!({"password": "guess"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = v
        .post(
            &format!("{link}/api/unlock"),
            serde_json::json!({"password": "link secret"}),
        )
        .await;
    assert_eq!(right.status, StatusCode::OK);
    let set = right.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains(&format!("Path={link}")) && set.contains("HttpOnly"),
        "{set}"
    );
    v.cookie = set.split(';').next().unwrap().to_string();

    let info = v.get(&format!("{link}/api/info")).await.json();
    assert_eq!(
        (info["name"].as_str(), info["owner"].as_str()),
        (Some("photos"), Some("alice"))
    );
    let names: Vec<String> = v.get(&format!("{link}/api/list?path=/")).await.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["sub", "a.txt"]);
    let got = v.get(&format!("{link}/api/file?path=/sub/b.txt")).await;
    assert_eq!(
        (got.status, got.body.as_slice()),
        (StatusCode::OK, &b"bee"[..])
    );
    // A range (seeking) is not a download.
    let part = v
        .send(
            v.req(Method::GET, &format!("{link}/api/file?path=/a.txt"))
                .header(header::RANGE, "bytes=0-4")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (part.status, part.body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"hello"[..])
    );
    // Nothing past the folder: `..`, nor the owner's other files.
    assert_eq!(
        v.get(&format!("{link}/api/file?path={}", enc("/../private.txt")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        v.get(&format!("{link}/api/file?path=/private.txt"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let zip = v.get(&format!("{link}/api/zip?path=/")).await;
    assert_eq!(zip.status, StatusCode::OK);
    assert_eq!(&zip.body[..2], b"PK");
    let listed = alice.get("/api/shares").await.json();
    assert_eq!(listed[0]["uses"], 2, "{listed}");
    assert_eq!(listed[0]["path"], "/photos", "as the owner sees it");
    assert_eq!(
        v.get(&format!("{link}/api/file?path=/a.txt")).await.status,
        StatusCode::OK
    );
    let used_up = v.get(&format!("{link}/api/file?path=/a.txt")).await;
    assert_eq!(used_up.status, StatusCode::GONE, "{}", text(&used_up));
    assert_eq!(
        v.get(&format!("{link}/api/info")).await.status,
        StatusCode::GONE
    );

    // Revoked: gone at once, for the same cookie too.
    let id = link.trim_start_matches("/s/");
    let r = alice
        .post("/api/shares/revoke", serde_json::json!({ "id": id }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        v.get(&format!("{link}/api/info")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_file_link_serves_its_one_file_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    let mut admin = client_of(Arc::clone(&st));
    admin.login().await;
    admin.put("/docs/report.pdf", b"%PDF report", &[]).await;
    admin.put("/docs/other.txt", b"other", &[]).await;
    let link = share(&admin, serde_json::json!({"path": "/docs/report.pdf"})).await;
    let v = visitor(&st);
    let info = v.get(&format!("{link}/api/info")).await.json();
    assert_eq!(
        (info["dir"].as_bool(), info["size"].as_u64()),
        (Some(false), Some(11))
    );
    for path in ["/", "/other.txt", "/../x"] {
        let r = v
            .get(&format!("{link}/api/file?path={}&download=1", enc(path)))
            .await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (StatusCode::OK, &b"%PDF report"[..]),
            "{path}"
        );
    }
    assert_eq!(
        v.get(&format!("{link}/api/list?path=/")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        v.get(&format!("{link}/api/zip?path=/")).await.status,
        StatusCode::FORBIDDEN
    );
    // Replaced by a symbolic link: the link no longer serves anything.
    std::fs::remove_file(dir.path().join("docs/report.pdf")).unwrap();
    std::os::unix::fs::symlink("other.txt", dir.path().join("docs/report.pdf")).unwrap();
    assert_eq!(
        v.get(&format!("{link}/api/file?path=/")).await.status,
        StatusCode::NOT_FOUND
    );

    let short = share(
        &admin,
        serde_json::json!({"path": "/docs", "expires_days": 0.00001}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = v.get(&format!("{short}/api/list?path=/")).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", text(&r));
    assert!(text(&r).contains("expired"));
    for bad in [
        serde_json::json!({"path": "/docs", "expires_days": 0}),
        serde_json::json!({"path": "/docs", "max_uses": 0}),
        serde_json::json!({"path": "/docs/other.txt", "kind": "drop"}),
        serde_json::json!({"path": "/.qsfs"}),
        serde_json::json!({"path": "/docs/report.pdf"}),
    ] {
        let r = admin.post("/api/shares", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", text(&r));
    }
}

#[tokio::test]
async fn a_symbolic_link_never_leads_out_of_a_shared_folder() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"SECRET-OUTSIDE").unwrap();
    let st = state(dir.path());
    st.users
        .add("alice", "alice's password", false, None)
        .unwrap();
    let alice = signed_in(&st, "alice", "alice's password").await;
    alice.put("/shared/ok.txt", b"ok", &[]).await;
    alice.put("/mine.txt", b"alice only", &[]).await;
    let shared = dir.path().join("home/alice/shared");
    std::os::unix::fs::symlink("../mine.txt", shared.join("up")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), shared.join("abs")).unwrap();
    std::os::unix::fs::symlink("..", shared.join("parent")).unwrap();
    let link = share(&alice, serde_json::json!({"path": "/shared"})).await;
    let v = visitor(&st);
    for path in ["/up", "/abs", "/parent/mine.txt"] {
        let r = v.get(&format!("{link}/api/file?path={}", enc(path))).await;
        assert!(
            r.status.is_client_error()
                && !text(&r).contains("alice only")
                && !text(&r).contains("SECRET-OUTSIDE"),
            "{path}: {} {}",
            r.status,
            text(&r)
        );
    }
    let zip = v.get(&format!("{link}/api/zip?path=/")).await;
    let body = String::from_utf8_lossy(&zip.body);
    assert!(!body.contains("alice only") && !body.contains("SECRET-OUTSIDE"));
}

#[tokio::test]
async fn a_file_drop_takes_files_and_shows_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    st.users
        .add("bob", "bob's password", false, Some(100))
        .unwrap();
    let bob = signed_in(&st, "bob", "bob's password").await;
    bob.put("/inbox/existing.txt", b"mine", &[]).await;
    let link = share(&bob, serde_json::json!({"path": "/inbox", "kind": "drop"})).await;
    let v = visitor(&st);
    let put = |name: &str, body: &'static [u8]| {
        v.send(
            v.req(Method::PUT, &format!("{link}/api/file?name={}", enc(name)))
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let r = put("existing.txt", b"theirs").await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.json()["path"], "/existing (2).txt");
    assert_eq!(
        std::fs::read(dir.path().join("home/bob/inbox/existing.txt")).unwrap(),
        b"mine"
    );
    assert_eq!(
        std::fs::read(dir.path().join("home/bob/inbox/existing (2).txt")).unwrap(),
        b"theirs"
    );
    assert_eq!(put("sub/x.txt", b"x").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(put("../x.txt", b"x").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v.get(&format!("{link}/api/list?path=/")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        v.get(&format!("{link}/api/file?path=/existing.txt"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The owner's quota (100 bytes; 10 used) holds for what visitors send.
    let r = put("big.bin", &[7u8; 200]).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", text(&r));
    assert!(!dir.path().join("home/bob/inbox/big.bin").exists());
    assert_eq!(bob.get("/api/shares").await.json()[0]["uses"], 1);
}

#[tokio::test]
async fn links_are_their_owners_and_die_with_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    st.users
        .add("alice", "alice's password", false, None)
        .unwrap();
    st.users
        .add("carol", "carol's password", false, None)
        .unwrap();
    let alice = signed_in(&st, "alice", "alice's password").await;
    let carol = signed_in(&st, "carol", "carol's password").await;
    alice.put("/f.txt", b"f", &[]).await;
    let link = share(&alice, serde_json::json!({"path": "/f.txt"})).await;
    let id = link.trim_start_matches("/s/").to_string();
    assert_eq!(
        carol
            .get("/api/shares")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = carol
        .post("/api/shares/revoke", serde_json::json!({ "id": id }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mut admin = client_of(Arc::clone(&st));
    admin.login().await;
    let all = admin.get("/api/shares").await.json();
    assert_eq!(all[0]["path"], "/home/alice/f.txt", "{all}");
    // Deleted outside the web API (as `qsfs user del` does) and made again: still dead.
    st.users.remove("alice").unwrap();
    st.users.add("alice", "new password!", false, None).unwrap();
    let v = visitor(&st);
    assert_eq!(
        v.get(&format!("{link}/api/info")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.get("/api/shares").await.json()[0]["closed"],
        "its owner's account is gone"
    );
    let r = admin
        .post("/api/users/delete", serde_json::json!({"name": "alice"}))
        .await;
    assert_eq!(r.json()["links_revoked"], 1);
}

/// 100 wrong tokens at once meet the same count as 100 one after the other.
#[tokio::test]
async fn concurrent_wrong_tries_are_throttled_like_sequential_ones() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    let c = Arc::new(client_of(Arc::clone(&st)));
    let tries = (0..100).map(|i| {
        let c = Arc::clone(&c);
        tokio::spawn(async move {
            c.post(
                "/api/login",
                serde_json::json!({ "token": format!("wrong{i}") }),
            )
            .await
            .status
        })
    });
    let mut let_through = 0;
    for t in tries {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => let_through += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    assert!(
        let_through <= qsfs_web::throttle::FREE_TRIES as usize,
        "{let_through} tries looked at"
    );
}

#[tokio::test]
async fn requests_from_another_site_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    let mut c = client_of(Arc::clone(&st));
    c.login().await;
    let with_origin = |origin: &str| {
        c.req(Method::POST, "/api/mkdir")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"path":"/x"}"#))
            .unwrap()
    };
    let r = c.send(with_origin("http://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert!(!dir.path().join("x").exists());
    let r = c.send(with_origin("http://127.0.0.1:8080")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
}
