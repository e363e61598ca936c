//! Connection-level behaviour against a scripted server: replies, errors, fragmentation,
//! pipelining, timeouts and closed connections.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bulk, cmd, err, raw, Action, FakeServer};
use zdb_client::{ClientError, Connection, ConnectionOptions, Endpoint, Frame};

fn echo_server_handler(_: usize, args: &[Bytes]) -> Action {
    match cmd(args).as_str() {
        "PING" => raw(b"+PONG\r\n"),
        "ECHO" => bulk(&args[1]),
        "FAIL" => err("Permission denied"),
        "SPLIT" => Action::Trickle(b"*2\r\n$5\r\nhello\r\n:42\r\n".to_vec()),
        "QUIT" => Action::Close,
        "HANG" => Action::Silent,
        // 20 bytes, one every 50 ms: a second in all, never silent for long.
        "DRIP" => Action::Drip(Duration::from_millis(50), b"$10\r\n0123456789\r\n".to_vec()),
        _ => err("Command not supported"),
    }
}

fn quick() -> ConnectionOptions {
    ConnectionOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(5)),
        ..ConnectionOptions::default()
    }
}

#[tokio::test]
async fn request_gets_reply() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    assert_eq!(
        conn.request(&["PING"]).await.unwrap(),
        Frame::simple("PONG")
    );
    let value = vec![0u8, 1, 2, b'\r', b'\n', 255];
    assert_eq!(
        conn.request(&[&b"ECHO"[..], &value]).await.unwrap(),
        Frame::bulk(value.clone())
    );
    assert!(!conn.is_broken());
}

#[tokio::test]
async fn unix_socket_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::unix(dir.path(), echo_server_handler).await;
    let ep: Endpoint = format!("unix:{}", dir.path().join("zdb.sock").display())
        .parse()
        .unwrap();
    assert_eq!(ep, server.endpoint);
    let mut conn = Connection::connect_with(&ep, &quick()).await.unwrap();
    assert_eq!(
        conn.request(&["PING"]).await.unwrap(),
        Frame::simple("PONG")
    );
}

#[tokio::test]
async fn server_error_reply_is_typed_and_keeps_connection() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    match conn.request(&["FAIL"]).await {
        Err(ClientError::Server(msg)) => assert_eq!(msg, "Permission denied"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!conn.is_broken());
    assert_eq!(
        conn.request(&["PING"]).await.unwrap(),
        Frame::simple("PONG")
    );
}

#[tokio::test]
async fn reply_arriving_byte_by_byte() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    assert_eq!(
        conn.request(&["SPLIT"]).await.unwrap(),
        Frame::Array(vec![Frame::bulk(&b"hello"[..]), Frame::Integer(42)])
    );
}

#[tokio::test]
async fn pipeline_sends_everything_before_waiting() {
    // The server withholds all replies until it has received all 50 requests: a client
    // that waited for each reply before sending the next request would time out.
    let server = FakeServer::tcp_holding(50, |_, args| bulk(&args[1])).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    let requests: Vec<Vec<Vec<u8>>> = (0..50)
        .map(|i| vec![b"ECHO".to_vec(), format!("v{i}").into_bytes()])
        .collect();
    let replies = conn.pipeline(&requests).await.unwrap();
    assert_eq!(replies.len(), 50);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r, &Frame::bulk(format!("v{i}").into_bytes()));
    }
}

#[tokio::test]
async fn pipeline_keeps_error_replies_in_place() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    let replies = conn
        .pipeline(&[&["PING"][..], &["FAIL"], &["ECHO", "x"]])
        .await
        .unwrap();
    assert_eq!(
        replies,
        vec![
            Frame::simple("PONG"),
            Frame::error("Permission denied"),
            Frame::bulk(&b"x"[..])
        ]
    );
    assert!(zdb_client::check_reply(replies[1].clone()).is_err());
    assert!(conn
        .pipeline::<[&str; 0], &str>(&[])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn large_pipeline_does_not_deadlock() {
    // 200 requests of 256 KiB each, echoed back: ~50 MiB each way, far more than the
    // socket buffers, so writing must overlap with reading.
    let server = FakeServer::tcp(|_, args| bulk(&args[1])).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    let value = vec![b'z'; 256 * 1024];
    let requests: Vec<[&[u8]; 2]> = (0..200).map(|_| [&b"ECHO"[..], &value[..]]).collect();
    let replies = tokio::time::timeout(Duration::from_secs(60), conn.pipeline(&requests))
        .await
        .expect("pipeline finished")
        .unwrap();
    assert_eq!(replies.len(), 200);
    assert!(replies
        .iter()
        .all(|r| r.as_bytes().map(|b| b.len()) == Some(value.len())));
}

#[tokio::test]
async fn request_timeout_breaks_connection() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let opts = ConnectionOptions {
        request_timeout: Some(Duration::from_millis(200)),
        ..quick()
    };
    let mut conn = Connection::connect_with(&server.endpoint, &opts)
        .await
        .unwrap();
    let start = Instant::now();
    assert!(matches!(
        conn.request(&["HANG"]).await,
        Err(ClientError::Timeout(_))
    ));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(conn.is_broken());
    assert!(matches!(
        conn.request(&["PING"]).await,
        Err(ClientError::Broken)
    ));
}

#[tokio::test]
async fn a_silent_peer_fails_at_the_stall_timeout_a_slow_one_does_not() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let opts = ConnectionOptions {
        request_timeout: Some(Duration::from_secs(3600)),
        stall_timeout: Some(Duration::from_millis(400)),
        ..quick()
    };
    let mut conn = Connection::connect_with(&server.endpoint, &opts)
        .await
        .unwrap();
    // Slower in total than the stall timeout, but a byte every 50 ms: it completes.
    assert_eq!(
        conn.request(&["DRIP"]).await.unwrap(),
        Frame::Bulk(Bytes::from_static(b"0123456789"))
    );
    // Silent: given up on after the stall timeout, not the hour of the request timeout.
    let e = conn.request(&["HANG"]).await.unwrap_err();
    assert!(matches!(e, ClientError::Stalled(_)), "{e}");
    assert!(e.is_connection_error());
    assert!(conn.is_broken());
}

#[tokio::test]
async fn closed_connection_is_reported() {
    let server = FakeServer::tcp(echo_server_handler).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    let e = conn.request(&["QUIT"]).await.unwrap_err();
    assert!(e.is_connection_error(), "{e:?}");
    assert!(conn.is_broken());
}

#[tokio::test]
async fn protocol_error_in_reply() {
    let server = FakeServer::tcp(|_, _| raw(b"$99999999999\r\n")).await;
    let mut conn = Connection::connect_with(&server.endpoint, &quick())
        .await
        .unwrap();
    match conn.request(&["GET", "k"]).await {
        Err(ClientError::Protocol(e)) => {
            assert!(e.to_string().contains("exceeds limit"), "{e}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(conn.is_broken());
}

#[tokio::test]
async fn connect_failure_is_an_error_not_a_hang() {
    // A free port: bound, then released, so nobody listens on it.
    let port = test_kit::net::free_port();
    let ep = Endpoint::Tcp(format!("127.0.0.1:{port}"));
    let e = Connection::connect_with(&ep, &quick()).await.unwrap_err();
    assert!(matches!(e, ClientError::Io(_)), "{e:?}");
    let e = Connection::connect_with(&Endpoint::Unix("/nonexistent/zdb.sock".into()), &quick())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Io(_)), "{e:?}");
}
