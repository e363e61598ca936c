//! Tests against a real zdb server over loopback TCP. By default the server is our own,
//! started in-process once for the whole file (`--admin admin`, mixed mode); set
//! `$ZDB_TEST_ENDPOINT` (and `$ZDB_TEST_ADMIN`) to run the same tests against another server,
//! e.g. ThreeFold's 0-db.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use test_kit::zdb::TestZdb;
use zdb_client::{Client, ClientConfig, Endpoint};

/// The server under test: `$ZDB_TEST_ENDPOINT`, or an in-process `zdb` on 127.0.0.1 that
/// lives as long as the test process (a static is never dropped).
fn endpoint() -> Endpoint {
    static OURS: OnceLock<TestZdb> = OnceLock::new();
    match std::env::var("ZDB_TEST_ENDPOINT") {
        Ok(e) => e.parse().expect("valid endpoint"),
        Err(_) => OURS
            .get_or_init(|| TestZdb::options().admin("admin").start())
            .addr
            .parse()
            .expect("valid endpoint"),
    }
}

fn admin_password() -> String {
    std::env::var("ZDB_TEST_ADMIN").unwrap_or_else(|_| "admin".into())
}

/// A namespace name unique to this run.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn admin_client() -> Client {
    Client::connect(ClientConfig::new(endpoint()).with_admin_password(admin_password()))
        .await
        .expect("connect as admin")
}

#[tokio::test]
async fn live_user_key_round_trip() {
    let admin = admin_client().await;
    let ns = unique("client-user");
    admin.nsnew(&ns).await.unwrap();
    admin.nsset(&ns, "mode", "user").await.ok();
    let c = Client::connect(
        ClientConfig::new(endpoint())
            .with_admin_password(admin_password())
            .with_namespace(&ns, None),
    )
    .await
    .unwrap();
    c.ping().await.unwrap();
    assert_eq!(
        c.set(b"k", b"v1").await.unwrap().as_deref(),
        Some(&b"k"[..])
    );
    assert_eq!(
        c.set(b"k", b"v1").await.unwrap(),
        None,
        "unchanged value gives nil"
    );
    assert_eq!(c.get(b"k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(c.exists(b"k").await.unwrap());
    assert_eq!(c.length(b"k").await.unwrap(), Some(2));
    assert_eq!(c.check(b"k").await.unwrap(), Some(true));
    c.set(b"k", b"v2").await.unwrap();
    let h = c.history(b"k", None).await.unwrap().unwrap();
    assert_eq!(&h.payload[..], b"v2");
    let (_, entries) = c.scan(None).await.unwrap().unwrap();
    assert!(!entries.is_empty());
    c.del(b"k").await.unwrap();
    assert_eq!(c.get(b"k").await.unwrap(), None);
    let info = c.nsinfo(&ns).await.unwrap();
    assert_eq!(info.name(), Some(ns.as_str()));
    admin.nsdel(&ns).await.unwrap();
}

#[tokio::test]
async fn live_sequential_round_trip() {
    let admin = admin_client().await;
    let ns = unique("client-seq");
    admin.nsnew(&ns).await.unwrap();
    admin.nsset(&ns, "mode", "seq").await.unwrap();
    let c = Client::connect(
        ClientConfig::new(endpoint())
            .with_admin_password(admin_password())
            .with_namespace(&ns, None),
    )
    .await
    .unwrap();
    let a = c.set_seq(b"first").await.unwrap();
    let b = c.set_seq(b"second").await.unwrap();
    assert_eq!(b, a + 1);
    assert!(c.update_seq(a, b"first-v2").await.unwrap());
    assert_eq!(
        c.get(&a.to_le_bytes()).await.unwrap().as_deref(),
        Some(&b"first-v2"[..])
    );
    admin.nsdel(&ns).await.unwrap();
}

#[tokio::test]
async fn live_pipeline_and_secure_auth() {
    let c = Client::new(ClientConfig::new(endpoint())).unwrap();
    c.auth_secure(&admin_password()).await.unwrap();
    let replies = c.pipeline(&[&["PING"][..], &["DBSIZE"]]).await.unwrap();
    assert_eq!(replies.len(), 2);
    assert!(!c.nslist().await.unwrap().is_empty());
}
