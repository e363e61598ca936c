//! Shared folders in process over a plain folder: an admin makes one with a read-write and
//! a read-only member; members work in it with `space=`, others are refused, its trash is
//! its own, nothing counts against a member's quota.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{client_of, Client, TOKEN};

async fn member(st: &Arc<qsfs_web::WebState>, name: &str, quota: Option<u64>) -> Client {
    let password = format!("{name}'s password");
    st.users.add(name, &password, false, quota).unwrap();
    let mut c = client_of(Arc::clone(st));
    assert_eq!(c.sign_in(name, &password).await, StatusCode::OK);
    c
}

#[tokio::test]
async fn members_work_in_a_shared_folder_as_their_access_says() {
    let dir = tempfile::tempdir().unwrap();
    let st = Arc::new(qsfs_web::WebState::open(dir.path(), TOKEN.into(), None).unwrap());
    let alice = member(&st, "alice", Some(100)).await;
    let bob = member(&st, "bob", None).await;
    let carol = member(&st, "carol", None).await;
    let mut admin = client_of(Arc::clone(&st));
    admin.login().await;
    let r = admin
        .post(
            "/api/shared",
            serde_json::json!({"name": "team", "members": {"alice": "write", "bob": "read"}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = alice
        .post("/api/shared", serde_json::json!({"name": "mine"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admins make them");
    assert_eq!(alice.get("/api/shared").await.json()[0]["access"], "write");
    assert_eq!(bob.get("/api/shared").await.json()[0]["access"], "read");
    assert_eq!(
        carol
            .get("/api/shared")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Alice writes 300 bytes (her quota is 100: a shared folder is not hers to count).
    let r = alice
        .send(
            alice
                .req(
                    axum::http::Method::PUT,
                    "/api/file?path=/plan.txt&space=team",
                )
                .body(axum::body::Body::from(vec![b'p'; 300]))
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        std::fs::read(dir.path().join("shared/team/plan.txt"))
            .unwrap()
            .len(),
        300
    );
    assert_eq!(
        alice.names("/").await,
        Vec::<String>::new(),
        "her home is apart"
    );
    assert_eq!(
        bob.get("/api/file?path=/plan.txt&space=team")
            .await
            .body
            .len(),
        300
    );
    let r = bob
        .post("/api/mkdir?space=team", serde_json::json!({"path": "/x"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "read-only");
    for space in ["team", "../home/alice", "nope"] {
        let r = carol.get(&format!("/api/list?path=/&space={space}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{space}");
    }
    let listed = admin.get("/api/list?path=/shared/team").await.json();
    assert_eq!(listed["entries"][0]["name"], "plan.txt");

    // A delete goes to the folder's trash, where members with write access restore it.
    let r = alice
        .post(
            "/api/delete?space=team",
            serde_json::json!({"path": "/plan.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(alice.get("/api/trash").await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let trash = alice.get("/api/trash?space=team").await.json();
    let id = trash["items"][0]["id"].as_str().unwrap().to_string();
    let r = alice
        .post(
            "/api/trash/restore?space=team",
            serde_json::json!({ "id": id }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(dir.path().join("shared/team/plan.txt").exists());
    // Links into a shared folder come from admins.
    let r = alice
        .post(
            "/api/shares?space=team",
            serde_json::json!({"path": "/plan.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Forgotten: members lose it, the files stay.
    admin
        .post("/api/shared/delete", serde_json::json!({"name": "team"}))
        .await;
    assert_eq!(
        alice.get("/api/list?path=/&space=team").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(dir.path().join("shared/team/plan.txt").exists());
}
