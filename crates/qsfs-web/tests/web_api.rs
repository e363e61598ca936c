//! The web API in process over a plain folder: authentication, CSRF, path confinement
//! (`..`, NUL, long names, symbolic links leading out), uploads, ranges, conflicts, folder
//! operations, zip and Markdown.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use common::{client, client_of, enc, TOKEN};

/// An account sees only its home folder, an admin the whole drive but the drive's own
/// folder; a password change or a deletion ends the account's sessions.
#[tokio::test]
async fn accounts_see_their_home_and_admins_everything() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    state
        .users
        .add("alice", "alice's password", false, None)
        .unwrap();
    state
        .users
        .add("root", "the admin password", true, None)
        .unwrap();
    std::fs::write(dir.path().join("top.txt"), b"admins only").unwrap();

    let mut alice = client_of(Arc::clone(&state));
    assert_eq!(
        alice.sign_in("alice", "wrong password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alice.sign_in("nobody", "alice's password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alice.sign_in("alice", "alice's password").await,
        StatusCode::OK
    );
    let me = alice.get("/api/session").await.json();
    assert_eq!(
        (me["user"].as_str(), me["admin"].as_bool()),
        (Some("alice"), Some(false))
    );
    assert_eq!(
        alice.put("/notes/a.txt", b"mine", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        std::fs::read(dir.path().join("home/alice/notes/a.txt")).unwrap(),
        b"mine"
    );
    assert_eq!(alice.names("/").await, ["notes"]);
    // Nothing outside the home folder is reachable.
    for path in ["/../top.txt", "/../../top.txt", "/.qsfs/users.json"] {
        let r = alice.get(&format!("/api/file?path={}", enc(path))).await;
        assert!(r.status.is_client_error(), "{path}: {}", r.status);
    }
    std::os::unix::fs::symlink("../..", dir.path().join("home/alice/up")).unwrap();
    let r = alice
        .get(&format!("/api/file?path={}", enc("/up/top.txt")))
        .await;
    assert!(
        r.status.is_client_error(),
        "through a symlink: {}",
        r.status
    );

    let mut admin = client_of(Arc::clone(&state));
    assert_eq!(
        admin.sign_in("root", "the admin password").await,
        StatusCode::OK
    );
    assert_eq!(admin.names("/").await, ["home", "top.txt"], "no .qsfs");
    assert_eq!(admin.names("/home").await, ["alice", "root"]);
    let r = admin
        .get(&format!("/api/file?path={}", enc("/.qsfs/users.json")))
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the account file is never served"
    );
    let r = admin.get("/api/search?path=/&q=users").await;
    assert_eq!(r.json()["results"].as_array().map(Vec::len), Some(0));

    // A new password ends the old sessions; the new one signs in.
    state.users.set_password("alice", "a new password").unwrap();
    assert_eq!(
        alice.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alice.sign_in("alice", "alice's password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alice.sign_in("alice", "a new password").await,
        StatusCode::OK
    );
    state.users.remove("alice").unwrap();
    assert_eq!(
        alice.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The token still signs in the built-in admin.
    let mut token = client_of(state);
    token.login().await;
    assert_eq!(token.get("/api/session").await.json()["admin"], true);
}

#[tokio::test]
async fn login_sessions_and_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    assert_eq!(
        c.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = c
        .post(
            "/api/login",
            serde_json::json!({ "token": "wrong-token-wrong-token" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "wrong user name, password or token");
    c.login().await;
    assert_eq!(c.get("/api/list?path=/").await.status, StatusCode::OK);
    assert_eq!(c.get("/api/session").await.json()["csrf"], c.csrf.as_str());

    // A change without the CSRF token is refused, whatever the cookie.
    let csrf = std::mem::take(&mut c.csrf);
    let r = c
        .post("/api/mkdir", serde_json::json!({ "path": "/x" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    c.csrf = "0".repeat(32);
    assert_eq!(
        c.post("/api/mkdir", serde_json::json!({ "path": "/x" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    c.csrf = csrf;
    assert_eq!(
        c.post("/api/mkdir", serde_json::json!({ "path": "/x" }))
            .await
            .status,
        StatusCode::OK
    );
    assert!(dir.path().join("x").is_dir());

    c.post("/api/logout", serde_json::json!({})).await;
    assert_eq!(
        c.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn every_path_stays_inside_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inside.txt"), b"inside").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    std::os::unix::fs::symlink("inside.txt", dir.path().join("alias")).unwrap();
    let mut c = client(dir.path());
    c.login().await;

    for (uri, status) in [
        ("/api/list?path=..", StatusCode::BAD_REQUEST),
        ("/api/list?path=/a/../..", StatusCode::BAD_REQUEST),
        ("/api/file?path=inside.txt%00.png", StatusCode::BAD_REQUEST),
        ("/api/list?path=/escape", StatusCode::FORBIDDEN),
        ("/api/file?path=/escape/secret", StatusCode::FORBIDDEN),
        ("/api/file?path=/passwd", StatusCode::FORBIDDEN),
        // An absolute path is relative to the root, never the machine's.
        ("/api/file?path=/etc/passwd", StatusCode::NOT_FOUND),
    ] {
        let r = c.get(uri).await;
        assert_eq!(r.status, status, "{uri}: {:?}", r.json());
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{uri}: a clear error"
        );
    }
    let long = "n".repeat(256);
    let r = c.get(&format!("/api/list?path=/{long}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("longer than 255"));
    // Writes cannot leave either.
    let r = c.put("/escape/planted", b"x", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json());
    assert!(!outside.path().join("planted").exists());
    let r = c
        .post(
            "/api/rename",
            serde_json::json!({"from": "/inside.txt", "to": "/escape/moved"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .post("/api/delete", serde_json::json!({"path": "/escape/secret"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(outside.path().join("secret").exists());
    // Deleting the link removes the link, not its target; a link inside the root reads.
    assert_eq!(c.get("/api/file?path=/alias").await.body, b"inside");
    let r = c
        .post("/api/delete", serde_json::json!({"path": "/escape"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(outside.path().join("secret").exists());
    let r = c
        .post("/api/delete", serde_json::json!({"path": "/"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn upload_download_ranges_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    c.login().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = c.put("/videos/clip.mp4", &data, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(
        std::fs::read(dir.path().join("videos/clip.mp4")).unwrap(),
        data
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("videos"))
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left");

    let full = c.get("/api/file?path=/videos/clip.mp4").await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.headers[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(full.headers[header::ACCEPT_RANGES], "bytes");
    assert_eq!(full.body, data);
    let req = c
        .req(Method::GET, "/api/file?path=/videos/clip.mp4")
        .header(header::RANGE, "bytes=1000-1999")
        .body(Body::empty())
        .unwrap();
    let part = c.send(req).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers[header::CONTENT_RANGE],
        "bytes 1000-1999/300000"
    );
    assert_eq!(part.body, &data[1000..2000]);
    let req = c
        .req(Method::GET, "/api/file?path=/videos/clip.mp4")
        .header(header::RANGE, "bytes=300000-")
        .body(Body::empty())
        .unwrap();
    assert_eq!(c.send(req).await.status, StatusCode::RANGE_NOT_SATISFIABLE);

    // No size limit on uploads; the small JSON bodies keep one.
    let big = vec![7u8; 5 << 20];
    assert_eq!(c.put("/big.bin", &big, &[]).await.status, StatusCode::OK);
    let huge = serde_json::json!({ "from": "x".repeat(3 << 20), "to": "/y" });
    assert_eq!(
        c.post("/api/rename", huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Edit with conflict detection: the ETag read is the one a save must match.
    c.put("/notes.md", b"# v1\n", &[]).await;
    let read = c.get("/api/file?path=/notes.md").await;
    let tag = read.headers[header::ETAG].to_str().unwrap().to_string();
    let r = c.put("/notes.md", b"# v2\n", &[("if-match", &tag)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let stale = c
        .put(
            "/notes.md",
            b"# v3 from a stale page\n",
            &[("if-match", &tag)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.json()["error"]
        .as_str()
        .unwrap()
        .contains("changed since"));
    assert_eq!(
        std::fs::read(dir.path().join("notes.md")).unwrap(),
        b"# v2\n"
    );
    let r = c.put("/notes.md", b"x", &[("if-none-match", "*")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Inline HTML never runs with this origin.
    c.put("/page.html", b"<script>alert(1)</script>", &[]).await;
    let r = c.get("/api/file?path=/page.html").await;
    assert!(r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert_ne!(r.headers[header::CONTENT_TYPE], "text/html");
    let r = c.get("/api/file?path=/page.html&download=1").await;
    assert!(r.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
}

#[tokio::test]
async fn folders_search_zip_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    c.login().await;
    for i in 0..250 {
        std::fs::write(dir.path().join(format!("f{i:03}.txt")), vec![b'x'; i]).unwrap();
    }
    assert_eq!(
        c.post("/api/mkdir", serde_json::json!({"path": "/sub"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        c.post("/api/mkdir", serde_json::json!({"path": "/sub"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    c.put("/sub/deep/Report-Final.txt", b"report", &[]).await;

    let page = c
        .get("/api/list?path=/&limit=100&sort=size&order=desc")
        .await
        .json();
    assert_eq!(page["total"], 251);
    assert_eq!(page["entries"][0]["name"], "sub", "folders first");
    assert_eq!(page["entries"][1]["name"], "f249.txt");
    assert_eq!(page["entries"].as_array().unwrap().len(), 100);
    let last = c.get("/api/list?path=/&offset=200&limit=100").await.json();
    assert_eq!(last["entries"].as_array().unwrap().len(), 51);

    let found = c.get("/api/search?path=/&q=report-final").await.json();
    assert_eq!(found["results"][0]["path"], "/sub/deep/Report-Final.txt");

    let r = c
        .post(
            "/api/rename",
            serde_json::json!({"from": "/f000.txt", "to": "/f001.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "no silent overwrite");
    let r = c
        .post(
            "/api/rename",
            serde_json::json!({"from": "/f000.txt", "to": "/sub/moved.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(dir.path().join("sub/moved.txt").exists());

    let zip = c.get("/api/zip?path=/sub").await;
    assert_eq!(zip.status, StatusCode::OK);
    assert!(zip.body.starts_with(b"PK"), "a zip archive");
    let text = String::from_utf8_lossy(&zip.body);
    assert!(text.contains("deep/Report-Final.txt") && text.contains("moved.txt"));

    assert_eq!(
        c.post("/api/delete", serde_json::json!({"path": "/sub"}))
            .await
            .status,
        StatusCode::OK
    );
    assert!(!dir.path().join("sub").exists());

    let req = c
        .req(Method::POST, "/api/markdown")
        .body(Body::from("**bold**"))
        .unwrap();
    assert_eq!(
        String::from_utf8(c.send(req).await.body).unwrap().trim(),
        "<p><strong>bold</strong></p>"
    );
    let page = c.get("/").await;
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    assert_eq!(c.get("/assets/app.js").await.status, StatusCode::OK);
    assert_eq!(c.get("/assets/nope.js").await.status, StatusCode::NOT_FOUND);
}

/// A FIFO is never opened (opening it waits for a writer: each GET used to hold a thread
/// until the listing timed out); a socket or device likewise; a symlink loop is the
/// caller's 400, not a 500.
#[tokio::test]
async fn only_regular_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("socket")).unwrap();
    let mut c = client(dir.path());
    c.login().await;
    for (uri, status) in [
        ("/api/file?path=/fifo", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("/api/file?path=/socket", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("/api/file?path=/loop", StatusCode::BAD_REQUEST),
    ] {
        // Bounded: a hang here is the failure being tested.
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), c.get(uri))
            .await
            .unwrap_or_else(|_| panic!("{uri} hung"));
        assert_eq!(r.status, status, "{uri}: {:?}", r.json());
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{uri}: a clear error"
        );
    }
    let r = c.get("/api/list?path=/").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}

/// An upload larger than the room left is a 507 that says how much room there is, and the
/// partial upload is removed, so the drive is not left full.
#[tokio::test]
async fn an_upload_that_does_not_fit_is_507_with_the_room_left() {
    let disk = test_kit::mount::SmallDisk::new(16);
    let mut c = client(&disk.path);
    c.login().await;
    let big = vec![7u8; 40 << 20];
    let r = c.put("/big.bin", &big, &[]).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{:?}", r.json());
    let message = r.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("MiB free of"), "{message}");
    assert_eq!(
        std::fs::read_dir(&disk.path).unwrap().count(),
        0,
        "no partial upload left"
    );
    let r = c.put("/small.txt", b"fits", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}

/// Uploads past an account's quota are refused with 507 and the numbers, whether the body's
/// length is announced or not; nothing of a refused upload stays; a replaced file gives its
/// bytes back.
#[tokio::test]
async fn quotas_refuse_uploads_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    state
        .users
        .add("bob", "bob's password", false, Some(1000))
        .unwrap();
    let mut bob = client_of(Arc::clone(&state));
    assert_eq!(bob.sign_in("bob", "bob's password").await, StatusCode::OK);
    assert_eq!(bob.put("/a", &[1u8; 600], &[]).await.status, StatusCode::OK);
    // Streamed (no length announced): stopped once past the quota.
    let r = bob.put("/b", &[2u8; 600], &[]).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        msg.contains("over the quota of bob") && msg.contains("MiB"),
        "{msg}"
    );
    // Announced: refused before the body is read.
    let r = bob
        .put("/c", &[3u8; 600], &[("content-length", "600")])
        .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(
        bob.names("/").await,
        ["a"],
        "nothing of the refused uploads stays"
    );
    // Replacing a file counts only the difference.
    assert_eq!(bob.put("/a", &[4u8; 900], &[]).await.status, StatusCode::OK);
    assert_eq!(
        std::fs::read(dir.path().join("home/bob/a")).unwrap(),
        [4u8; 900]
    );
    // A deletion gives the room back.
    assert_eq!(
        bob.post("/api/delete", serde_json::json!({ "path": "/a" }))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        bob.put("/b", &[5u8; 1000], &[]).await.status,
        StatusCode::OK
    );
    // Admins have no quota.
    let mut admin = client_of(state);
    admin.login().await;
    assert_eq!(
        admin.put("/big", &[6u8; 5000], &[]).await.status,
        StatusCode::OK
    );
}

/// A burst of wrong passwords meets a wait (429, Retry-After) after a few tries, even with
/// the right one; other accounts sign in meanwhile.
#[tokio::test]
async fn wrong_passwords_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    state
        .users
        .add("carol", "carol's password", false, None)
        .unwrap();
    state
        .users
        .add("dave", "dave's password", false, None)
        .unwrap();
    let mut c = client_of(Arc::clone(&state));
    for _ in 0..qsfs_web::throttle::FREE_TRIES {
        assert_eq!(
            c.sign_in("carol", "guess guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = c
        .post(
            "/api/login",
            serde_json::json!({ "user": "carol", "password": "carol's password" }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let wait: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait >= 1 && wait <= qsfs_web::throttle::FIRST_WAIT.as_secs(),
        "{wait}"
    );
    assert_eq!(c.sign_in("dave", "dave's password").await, StatusCode::OK);
}

/// An account lists its sessions, ends one elsewhere, and signs out everywhere.
#[tokio::test]
async fn sessions_are_listed_and_ended_by_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    state
        .users
        .add("erin", "erin's password", false, None)
        .unwrap();
    let mut laptop = client_of(Arc::clone(&state));
    let mut phone = client_of(Arc::clone(&state));
    let mut admin = client_of(Arc::clone(&state));
    assert_eq!(
        laptop.sign_in("erin", "erin's password").await,
        StatusCode::OK
    );
    assert_eq!(
        phone.sign_in("erin", "erin's password").await,
        StatusCode::OK
    );
    admin.login().await;
    let list = laptop.get("/api/sessions").await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = laptop
        .post("/api/sessions/end", serde_json::json!({ "id": other }))
        .await;
    assert_eq!(r.json()["ended"], 1);
    assert_eq!(
        phone.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        phone.sign_in("erin", "erin's password").await,
        StatusCode::OK
    );
    let r = laptop
        .post("/api/sessions/end", serde_json::json!({ "all": true }))
        .await;
    assert_eq!(r.json()["ended"], 2);
    assert_eq!(
        phone.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        laptop.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin.get("/api/list?path=/").await.status,
        StatusCode::OK,
        "not the admin's"
    );
}

/// Admins manage accounts over the API; anyone changes their own password with the current
/// one and keeps working under the fresh session, while their other sessions end.
#[tokio::test]
async fn accounts_are_managed_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    let mut admin = client_of(Arc::clone(&state));
    admin.login().await;
    let r = admin
        .post(
            "/api/users",
            serde_json::json!({ "name": "fay", "password": "fay's password", "quota": 4096 }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let again = admin
        .post(
            "/api/users",
            serde_json::json!({ "name": "fay", "password": "other password" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let bad = admin
        .post(
            "/api/users",
            serde_json::json!({ "name": "../x", "password": "long enough" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let list = admin.get("/api/users").await.json();
    assert_eq!(list[0]["name"], "fay");
    assert_eq!(list[0]["quota"], 4096);

    let mut fay = client_of(Arc::clone(&state));
    let mut fay_phone = client_of(Arc::clone(&state));
    assert_eq!(fay.sign_in("fay", "fay's password").await, StatusCode::OK);
    assert_eq!(
        fay_phone.sign_in("fay", "fay's password").await,
        StatusCode::OK
    );
    assert_eq!(
        fay.get("/api/users").await.status,
        StatusCode::FORBIDDEN,
        "admins only"
    );
    let wrong = fay
        .post(
            "/api/users/password",
            serde_json::json!({ "current": "not it", "password": "fay's new one" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let r = fay
        .post(
            "/api/users/password",
            serde_json::json!({ "current": "fay's password", "password": "fay's new one" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    fay.cookie = r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    fay.csrf = r.json()["csrf"].as_str().unwrap().to_string();
    assert_eq!(
        fay.get("/api/list?path=/").await.status,
        StatusCode::OK,
        "this session goes on"
    );
    assert_eq!(
        fay_phone.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );

    // An admin sets the password, then deletes the account: its sessions end.
    let r = admin
        .post(
            "/api/users/password",
            serde_json::json!({ "name": "fay", "password": "reset by admin" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        fay.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fay.sign_in("fay", "reset by admin").await, StatusCode::OK);
    let r = admin
        .post("/api/users/delete", serde_json::json!({ "name": "fay" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        fay.get("/api/list?path=/").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(dir.path().join("home/fay").is_dir(), "the files stay");
}

/// Deletes go to the caller's own trash, which lists their size, restores them where they
/// were (or elsewhere on a conflict) and empties; `permanent` skips it.
#[tokio::test]
async fn deletes_go_to_a_trash_of_ones_own() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    state
        .users
        .add("gus", "gus's password", false, None)
        .unwrap();
    state
        .users
        .add("hal", "hal's password", false, None)
        .unwrap();
    let mut gus = client_of(Arc::clone(&state));
    let mut hal = client_of(Arc::clone(&state));
    assert_eq!(gus.sign_in("gus", "gus's password").await, StatusCode::OK);
    assert_eq!(hal.sign_in("hal", "hal's password").await, StatusCode::OK);
    assert_eq!(
        gus.put("/photos/a.jpg", &[1u8; 300], &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        gus.put("/notes.txt", b"remember", &[]).await.status,
        StatusCode::OK
    );

    let r = gus
        .post("/api/delete", serde_json::json!({ "path": "/photos" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!dir.path().join("home/gus/photos").exists());
    let t = gus.get("/api/trash").await.json();
    assert_eq!(t["items"][0]["path"], "/photos");
    assert_eq!(t["items"][0]["kind"], "dir");
    assert_eq!(t["size"], 300);
    assert_eq!(t["days"], 30);
    assert_eq!(
        hal.get("/api/trash").await.json()["items"],
        serde_json::json!([])
    );
    let id = t["items"][0]["id"].as_str().unwrap().to_string();
    let r = hal
        .post("/api/trash/restore", serde_json::json!({ "id": id }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not hal's to restore");

    let r = gus
        .post("/api/trash/restore", serde_json::json!({ "id": id }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        std::fs::read(dir.path().join("home/gus/photos/a.jpg")).unwrap(),
        [1u8; 300]
    );

    // Restoring over a name taken meanwhile: 409, then elsewhere.
    gus.post("/api/delete", serde_json::json!({ "path": "/notes.txt" }))
        .await;
    assert_eq!(
        gus.put("/notes.txt", b"new notes", &[]).await.status,
        StatusCode::OK
    );
    let id = gus.get("/api/trash").await.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gus
        .post("/api/trash/restore", serde_json::json!({ "id": id }))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = gus
        .post(
            "/api/trash/restore",
            serde_json::json!({ "id": id, "to": "/old notes.txt" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        std::fs::read(dir.path().join("home/gus/old notes.txt")).unwrap(),
        b"remember"
    );

    // Emptied for good; a permanent delete skips the trash.
    gus.post("/api/delete", serde_json::json!({ "path": "/photos" }))
        .await;
    gus.post(
        "/api/delete",
        serde_json::json!({ "path": "/old notes.txt" }),
    )
    .await;
    let r = gus
        .post("/api/trash/remove", serde_json::json!({ "all": true }))
        .await;
    assert_eq!(r.json()["removed"], 2);
    assert_eq!(gus.get("/api/trash").await.json()["size"], 0);
    let r = gus
        .post(
            "/api/delete",
            serde_json::json!({ "path": "/notes.txt", "permanent": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        gus.get("/api/trash").await.json()["items"],
        serde_json::json!([])
    );
    assert!(!dir.path().join("home/gus/notes.txt").exists());
}
