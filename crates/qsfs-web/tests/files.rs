//! Copies and selection zips over the API: a folder copied whole (links as links, the
//! quota checked first), never into itself nor over something; a zip of chosen entries
//! that names what it left out.

mod common;

use std::io::Read;
use std::sync::Arc;

use axum::http::StatusCode;
use common::{client, client_of, enc, TOKEN};

#[tokio::test]
async fn copies_are_whole_and_refuse_what_they_must() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    c.login().await;
    c.put("/a/one.txt", b"one", &[]).await;
    c.put("/a/sub/two.txt", b"two!", &[]).await;
    std::os::unix::fs::symlink("one.txt", dir.path().join("a/link")).unwrap();
    let r = c
        .post("/api/copy", serde_json::json!({"from": "/a", "to": "/b"}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["bytes"], 7);
    assert_eq!(
        std::fs::read(dir.path().join("b/sub/two.txt")).unwrap(),
        b"two!"
    );
    assert_eq!(
        std::fs::read_link(dir.path().join("b/link"))
            .unwrap()
            .to_str(),
        Some("one.txt")
    );
    let again = c
        .post("/api/copy", serde_json::json!({"from": "/a", "to": "/b"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let inside = c
        .post(
            "/api/copy",
            serde_json::json!({"from": "/a", "to": "/a/sub/a"}),
        )
        .await;
    assert_eq!(inside.status, StatusCode::BAD_REQUEST);
    let file = c
        .post(
            "/api/copy",
            serde_json::json!({"from": "/a/one.txt", "to": "/one copy.txt"}),
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(
        std::fs::read(dir.path().join("one copy.txt")).unwrap(),
        b"one"
    );
    let names = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    assert!(
        !names.iter().any(|n| n.contains(".part")),
        "no temporary left: {names:?}"
    );

    // Over the quota: refused before anything is copied.
    let state = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    state
        .users
        .add("alice", "alice's password", false, Some(10))
        .unwrap();
    let mut alice = client_of(Arc::clone(&state));
    assert_eq!(
        alice.sign_in("alice", "alice's password").await,
        StatusCode::OK
    );
    alice.put("/f.bin", &[1u8; 8], &[]).await;
    let r = alice
        .post(
            "/api/copy",
            serde_json::json!({"from": "/f.bin", "to": "/g.bin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(!dir.path().join("home/alice/g.bin").exists());
}

#[tokio::test]
async fn a_zip_of_chosen_entries_says_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    c.login().await;
    c.put("/d/keep.txt", b"keep", &[]).await;
    c.put("/d/also/x.txt", b"x", &[]).await;
    c.put("/d/not.txt", b"not", &[]).await;
    std::os::unix::fs::symlink("keep.txt", dir.path().join("d/link")).unwrap();
    let names = enc(r#"["keep.txt","also","link"]"#);
    let r = c.get(&format!("/api/zip?path=/d&names={names}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    let mut inside: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    inside.sort();
    assert_eq!(
        inside,
        [
            "also/",
            "also/x.txt",
            "keep.txt",
            qsfs_web::transfer::LEFT_OUT
        ]
    );
    let mut note = String::new();
    zip.by_name(qsfs_web::transfer::LEFT_OUT)
        .unwrap()
        .read_to_string(&mut note)
        .unwrap();
    assert!(note.contains("link\tsymbolic link"), "{note}");
    let bad = c
        .get(&format!("/api/zip?path=/d&names={}", enc(r#"["../x"]"#)))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// A name that is not UTF-8 is listed with a path the API takes back: it opens, comes back
/// from the trash under its own bytes, and can be renamed.
#[tokio::test]
async fn names_that_are_not_utf8_open_rename_and_delete() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    c.login().await;
    c.put("/d/plain.txt", b"plain", &[]).await;
    let raw = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(dir.path().join("d").join(raw), b"latin-1 name").unwrap();
    let listed = c.get("/api/list?path=/d").await.json();
    let e = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "caf\u{fffd}.txt")
        .unwrap()
        .clone();
    let path = e["path"].as_str().unwrap().to_string();
    assert!(path.starts_with('\0'), "{path:?}");
    let got = c.get(&format!("/api/file?path={}", enc(&path))).await;
    assert_eq!(got.body, b"latin-1 name");
    // Deleted and restored: the same bytes come back.
    assert_eq!(
        c.post("/api/delete", serde_json::json!({ "path": path }))
            .await
            .status,
        StatusCode::OK
    );
    assert!(!dir.path().join("d").join(raw).exists());
    let item = c.get("/api/trash").await.json()["items"][0].clone();
    assert_eq!(item["shown"], "/d/caf\u{fffd}.txt");
    let r = c
        .post(
            "/api/trash/restore",
            serde_json::json!({ "id": item["id"] }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(dir.path().join("d").join(raw).exists());
    // Renamed to a text name in the same folder.
    let r = c
        .post(
            "/api/rename",
            serde_json::json!({ "from": path, "to_name": "cafe.txt" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        std::fs::read(dir.path().join("d/cafe.txt")).unwrap(),
        b"latin-1 name"
    );
    assert_eq!(
        c.post(
            "/api/rename",
            serde_json::json!({ "from": "/d/cafe.txt", "to_name": "a/b" })
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
}
