//! Pool behaviour against a scripted server: per-connection setup, reconnects, retries,
//! pool size, session changes, secure authentication and cancellation.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{bulk, cmd, err, ok, raw, strings, Action, FakeServer};
use zdb_client::{secure_hash, Client, ClientConfig, ClientError};

fn config(server: &FakeServer) -> ClientConfig {
    ClientConfig::new(server.endpoint.clone())
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(5))
}

/// Accepts AUTH/SELECT, answers PING and GET.
fn basic(_: usize, args: &[Bytes]) -> Action {
    match cmd(args).as_str() {
        "AUTH" | "SELECT" => ok(),
        "PING" => raw(b"+PONG\r\n"),
        "GET" => bulk(b"value"),
        "SLOW" => Action::Delay(Duration::from_millis(50), b"+PONG\r\n".to_vec()),
        _ => err("Command not supported"),
    }
}

#[tokio::test]
async fn every_new_connection_is_authenticated_and_selected() {
    let server = FakeServer::tcp(basic).await;
    let client = Client::connect(
        config(&server)
            .with_admin_password("admin")
            .with_namespace("ns1", Some("pw".into()))
            .with_pool_size(2),
    )
    .await
    .unwrap();
    // Two concurrent requests force a second connection.
    let (a, b) = tokio::join!(client.request(&["SLOW"]), client.request(&["SLOW"]));
    a.unwrap();
    b.unwrap();
    assert_eq!(server.accepted(), 2);
    let log = server.requests();
    for conn in 0..2 {
        let mine: Vec<_> = log
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, a)| a.clone())
            .collect();
        assert_eq!(mine[0], vec!["AUTH", "admin"], "conn {conn}: {mine:?}");
        assert_eq!(
            mine[1],
            vec!["SELECT", "ns1", "pw"],
            "conn {conn}: {mine:?}"
        );
    }
}

#[tokio::test]
async fn setup_failure_is_reported() {
    let server = FakeServer::tcp(|_, args| match cmd(args).as_str() {
        "SELECT" => err("Access denied"),
        _ => ok(),
    })
    .await;
    let e = Client::connect(config(&server).with_namespace("secret", None))
        .await
        .unwrap_err();
    assert_eq!(e.server_message(), Some("Access denied"));
}

#[tokio::test]
async fn pool_size_bounds_connections() {
    let server = FakeServer::tcp(basic).await;
    let client = Client::new(config(&server).with_pool_size(2)).unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.request(&["SLOW"]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(server.accepted() <= 2, "accepted {}", server.accepted());
    assert_eq!(server.count("SLOW"), 10);
}

#[tokio::test]
async fn connections_are_reused() {
    let server = FakeServer::tcp(basic).await;
    let client = Client::new(config(&server).with_namespace("ns", None)).unwrap();
    for _ in 0..5 {
        client.ping().await.unwrap();
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.count("SELECT"), 1);
}

#[tokio::test]
async fn reconnects_and_reselects_after_server_drops_connection() {
    // The first connection is closed by the server right after its first PING reply.
    let server = FakeServer::tcp(|conn, args| match (conn, cmd(args).as_str()) {
        (_, "SELECT") => ok(),
        (0, "PING") => raw(b"+PONG\r\n"),
        (0, _) => Action::Close,
        (_, "PING") => raw(b"+PONG\r\n"),
        (_, "GET") => bulk(b"v"),
        _ => err("Command not supported"),
    })
    .await;
    let client = Client::new(config(&server).with_namespace("ns", None)).unwrap();
    client.ping().await.unwrap();
    // The pooled connection is still open; the server closes it on the next request.
    // GET is read-only, so the client retries once on a fresh connection.
    assert_eq!(client.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.count("SELECT"), 2);
}

#[tokio::test]
async fn stale_idle_connection_is_replaced_before_use() {
    // The server closes the first connection right after answering PING, while the
    // client holds it idle in the pool.
    let server = FakeServer::tcp(|conn, args| match (conn, cmd(args).as_str()) {
        (0, "PING") => Action::ReplyThenClose(b"+PONG\r\n".to_vec()),
        (_, "SET") => bulk(&args[1]),
        _ => ok(),
    })
    .await;
    let client = Client::new(config(&server)).unwrap();
    client.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A write is never retried, so it must not be sent on the connection that is
    // already known to be closed: the pool notices and connects anew.
    assert_eq!(
        client.set(b"k", b"v").await.unwrap().as_deref(),
        Some(&b"k"[..])
    );
    assert_eq!(server.count("SET"), 1);
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn writes_are_not_retried() {
    let server = FakeServer::tcp(|conn, args| match (conn, cmd(args).as_str()) {
        (_, "PING") => raw(b"+PONG\r\n"),
        (0, "SET") => Action::Close,
        (_, "SET") => bulk(&args[1]),
        _ => ok(),
    })
    .await;
    let client = Client::new(config(&server)).unwrap();
    client.ping().await.unwrap();
    let e = client.set(b"k", b"v").await.unwrap_err();
    assert!(e.is_connection_error(), "{e:?}");
    assert_eq!(server.count("SET"), 1);
    // The next call works on a new connection.
    assert!(client.set(b"k", b"v").await.unwrap().is_some());
}

#[tokio::test]
async fn request_timeout_then_recovery() {
    let hang = Arc::new(AtomicBool::new(true));
    let h = hang.clone();
    let server = FakeServer::tcp(move |_, args| match cmd(args).as_str() {
        "PING" if h.swap(false, Ordering::SeqCst) => Action::Silent,
        "PING" => raw(b"+PONG\r\n"),
        _ => ok(),
    })
    .await;
    let client =
        Client::new(config(&server).with_request_timeout(Duration::from_millis(200))).unwrap();
    assert!(matches!(client.ping().await, Err(ClientError::Timeout(_))));
    client.ping().await.unwrap();
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn cancelled_request_does_not_poison_the_pool() {
    // The first GET never gets a reply; if its connection went back to the pool, the
    // late reply would be read by the next request. Make the server answer late.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = FakeServer::tcp(move |_, args| match cmd(args).as_str() {
        "GET" if c.fetch_add(1, Ordering::SeqCst) == 0 => Action::Silent,
        "GET" => bulk(&args[1]),
        _ => ok(),
    })
    .await;
    let client = Client::new(config(&server).with_pool_size(1)).unwrap();
    let r = tokio::time::timeout(Duration::from_millis(100), client.get(b"first")).await;
    assert!(r.is_err(), "caller-side timeout fired");
    assert_eq!(
        client.get(b"second").await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn select_changes_namespace_for_new_connections() {
    let server = FakeServer::tcp(basic).await;
    let client = Client::new(config(&server).with_namespace("a", None)).unwrap();
    client.ping().await.unwrap();
    client.select("b", Some("pw")).await.unwrap();
    client.ping().await.unwrap();
    let selects: Vec<Vec<String>> = server
        .requests()
        .into_iter()
        .filter(|(_, a)| a[0] == "SELECT")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(selects.first().unwrap(), &vec!["SELECT", "a"]);
    assert_eq!(selects.last().unwrap(), &vec!["SELECT", "b", "pw"]);
    // The PING after select ran on a connection selected on "b".
    let log = server.requests();
    let last_ping_conn = log.iter().rev().find(|(_, a)| a[0] == "PING").unwrap().0;
    let conn_select = log
        .iter()
        .find(|(c, a)| *c == last_ping_conn && a[0] == "SELECT")
        .unwrap();
    assert_eq!(conn_select.1, vec!["SELECT", "b", "pw"]);
}

#[tokio::test]
async fn failed_select_keeps_old_namespace() {
    let server = FakeServer::tcp(|_, args| match strings(args).as_slice() {
        [c, ns, ..] if c == "SELECT" && ns == "bad" => err("Namespace not found"),
        [c, ..] if c == "PING" => raw(b"+PONG\r\n"),
        _ => ok(),
    })
    .await;
    let client = Client::new(config(&server).with_namespace("good", None)).unwrap();
    let e = client.select("bad", None).await.unwrap_err();
    assert_eq!(e.server_message(), Some("Namespace not found"));
    client.ping().await.unwrap();
    let log = server.requests();
    let last_select = log.iter().rev().find(|(_, a)| a[0] == "SELECT").unwrap();
    assert_eq!(last_select.1, vec!["SELECT", "good"]);
}

/// A server that implements AUTH SECURE / SELECT SECURE with a per-connection nonce.
fn secure_server(password: &'static str) -> impl Fn(usize, &[Bytes]) -> Action + Send + Sync {
    let nonces: Arc<Mutex<std::collections::HashMap<usize, String>>> = Arc::default();
    move |conn, args| {
        let a = strings(args);
        match a.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["AUTH", "SECURE", "CHALLENGE"] => {
                let nonce = format!("nonce{conn}");
                nonces.lock().unwrap().insert(conn, nonce.clone());
                raw(format!("+{nonce}\r\n").as_bytes())
            }
            ["AUTH", "SECURE", hash] | ["SELECT", _, "SECURE", hash] => {
                match nonces.lock().unwrap().remove(&conn) {
                    Some(n) if secure_hash(&n, password) == *hash => ok(),
                    Some(_) => err("Access denied"),
                    None => err("No CHALLENGE requested, secure authentication not available"),
                }
            }
            ["PING"] => raw(b"+PONG\r\n"),
            _ => err("Unexpected arguments"),
        }
    }
}

#[tokio::test]
async fn auth_secure_uses_challenge() {
    let server = FakeServer::tcp(secure_server("s3cret")).await;
    let client = Client::new(config(&server)).unwrap();
    client.auth_secure("s3cret").await.unwrap();
    client.ping().await.unwrap();
    assert_eq!(
        client
            .auth_secure("wrong")
            .await
            .unwrap_err()
            .server_message(),
        Some("Access denied")
    );
    // Passwords never cross the wire in clear.
    assert!(server.requests().iter().all(|(_, a)| !a
        .iter()
        .any(|s| s.contains("s3cret") || s.contains("wrong"))));
}

#[tokio::test]
async fn secure_select_on_new_connections() {
    let server = FakeServer::tcp(secure_server("nspw")).await;
    let client = Client::connect(
        config(&server)
            .with_namespace("ns", Some("nspw".into()))
            .with_secure_auth(true),
    )
    .await
    .unwrap();
    client.ping().await.unwrap();
    assert_eq!(server.count("SELECT"), 1);
}

#[tokio::test]
async fn plain_auth() {
    let server = FakeServer::tcp(|_, args| match strings(args).as_slice() {
        [c, p] if c == "AUTH" && p == "pw" => ok(),
        [c, _] if c == "AUTH" => err("Access denied"),
        _ => raw(b"+PONG\r\n"),
    })
    .await;
    let client = Client::new(config(&server)).unwrap();
    assert_eq!(
        client.auth("nope").await.unwrap_err().server_message(),
        Some("Access denied")
    );
    client.auth("pw").await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn client_pipeline_and_zero_pool_size() {
    let server = FakeServer::tcp(basic).await;
    let client = Client::new(config(&server)).unwrap();
    let replies = client
        .pipeline(&[&["PING"][..], &["GET", "k"]])
        .await
        .unwrap();
    assert_eq!(replies.len(), 2);
    assert!(matches!(
        Client::new(config(&server).with_pool_size(0)),
        Err(ClientError::InvalidConfig(_))
    ));
}
