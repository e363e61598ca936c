//! Typed helpers against canned 0-db replies: what each helper sends and how it maps the
//! reply. (Semantics are tested against the real server in `live.rs`.)

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bulk, cmd, err, ok, raw, strings, Action, FakeServer};
use zdb_client::{Client, ClientConfig, ClientError, HistoryEntry, ScanEntry};

const NSINFO: &str = "# namespace\nname: ns\nentries: 3\npublic: yes\npassword: no\n\
data_size_bytes: 30\ndata_limits_bytes: 0\nindex_size_bytes: 120\nmode: sequential\n";

/// Canned replies keyed on the request.
fn canned(_: usize, args: &[Bytes]) -> Action {
    let a = strings(args);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["PING"] => raw(b"+PONG\r\n"),
        ["SET", "", _] => bulk(&7u32.to_le_bytes()),
        ["SET", "same", _] => raw(b"$-1\r\n"),
        ["SET", k, _] => bulk(k.as_bytes()),
        ["GET", "missing"] => raw(b"$-1\r\n"),
        ["GET", k] => bulk(format!("value-of-{k}").as_bytes()),
        ["MGET", ..] => raw(b"*3\r\n$1\r\na\r\n$-1\r\n$1\r\nc\r\n"),
        ["DEL", "missing"] => err("Key not found"),
        ["DEL", _] => ok(),
        ["EXISTS", k] => raw(if *k == "yes" { b":1\r\n" } else { b":0\r\n" }),
        ["CHECK", "missing"] => raw(b"$-1\r\n"),
        ["CHECK", "bad"] => raw(b":0\r\n"),
        ["CHECK", _] => raw(b":1\r\n"),
        ["LENGTH" | "KEYTIME", "missing"] => raw(b"$-1\r\n"),
        ["LENGTH", _] => raw(b":5\r\n"),
        ["KEYTIME", _] => raw(b":1700000000\r\n"),
        ["KEYCUR", _] => bulk(b"\x01\x02"),
        ["SCAN"] => raw(b"*2\r\n$2\r\nc1\r\n*1\r\n*3\r\n$1\r\na\r\n:16\r\n:1535361488\r\n"),
        ["SCAN" | "RSCAN", "c1"] => err("No more data"),
        ["SCAN", _] => err("Invalid key format"),
        ["RSCAN"] => raw(b"*2\r\n$2\r\nc1\r\n*0\r\n"),
        ["HISTORY", "k"] => raw(b"*3\r\n$2\r\nh1\r\n$10\r\n1600000000\r\n$3\r\nnew\r\n"),
        ["HISTORY", "k", "h1"] => raw(b"*3\r\n$-1\r\n$10\r\n1500000000\r\n$3\r\nold\r\n"),
        ["HISTORY", "k", _] => err("No more history"),
        ["DBSIZE"] => raw(b":42\r\n"),
        ["TIME"] => raw(b"*2\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n"),
        ["NSNEW" | "NSDEL", _] | ["NSSET", _, _, _] | ["NSJUMP" | "FLUSH"] => ok(),
        ["NSLIST"] => raw(b"*2\r\n$7\r\ndefault\r\n$2\r\nns\r\n"),
        ["NSINFO", "ns"] => bulk(NSINFO.as_bytes()),
        ["NSINFO", _] => err("Namespace not found"),
        ["INDEX", "DIRTY"] => raw(b"*2\r\n:0\r\n:3\r\n"),
        ["INDEX", "DIRTY", "RESET"] => ok(),
        ["INFO"] => bulk(b"# server\nversion: test\n"),
        _ => err("Command not supported"),
    }
}

async fn client() -> (FakeServer, Client) {
    let server = FakeServer::tcp(canned).await;
    let client = Client::new(
        ClientConfig::new(server.endpoint.clone()).with_request_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    (server, client)
}

#[tokio::test]
async fn key_value_helpers() {
    let (server, c) = client().await;
    c.ping().await.unwrap();
    assert_eq!(c.set(b"k", b"v").await.unwrap().as_deref(), Some(&b"k"[..]));
    assert_eq!(c.set(b"same", b"v").await.unwrap(), None);
    assert_eq!(
        c.get(b"k").await.unwrap().as_deref(),
        Some(&b"value-of-k"[..])
    );
    assert_eq!(c.get(b"missing").await.unwrap(), None);
    assert_eq!(
        c.mget(&[&b"a"[..], b"b", b"c"]).await.unwrap(),
        vec![
            Some(Bytes::from_static(b"a")),
            None,
            Some(Bytes::from_static(b"c"))
        ]
    );
    assert!(c.mget::<&[u8]>(&[]).await.unwrap().is_empty());
    assert!(matches!(
        c.mget(&[&b"a"[..]]).await,
        Err(ClientError::UnexpectedReply { .. })
    ));
    c.del(b"k").await.unwrap();
    assert_eq!(
        c.del(b"missing").await.unwrap_err().server_message(),
        Some("Key not found")
    );
    assert!(c.exists(b"yes").await.unwrap());
    assert!(!c.exists(b"no").await.unwrap());
    assert_eq!(c.check(b"k").await.unwrap(), Some(true));
    assert_eq!(c.check(b"bad").await.unwrap(), Some(false));
    assert_eq!(c.check(b"missing").await.unwrap(), None);
    assert_eq!(c.length(b"k").await.unwrap(), Some(5));
    assert_eq!(c.length(b"missing").await.unwrap(), None);
    assert_eq!(c.keytime(b"k").await.unwrap(), Some(1_700_000_000));
    assert_eq!(c.keytime(b"missing").await.unwrap(), None);
    assert_eq!(&c.keycur(b"k").await.unwrap()[..], b"\x01\x02");
    assert_eq!(c.dbsize().await.unwrap(), 42);
    assert_eq!(c.time().await.unwrap(), (1_700_000_000, 123_456));
    assert!(server.count("SET") == 2);
}

#[tokio::test]
async fn sequential_helpers() {
    let (server, c) = client().await;
    assert_eq!(c.set_seq(b"payload").await.unwrap(), 7);
    assert!(c.update_seq(7, b"new").await.unwrap());
    let log = server.requests();
    // update_seq sends the id as 8 little-endian bytes, as 0-db returns it.
    assert_eq!(log.last().unwrap().1[1].as_bytes(), &7u64.to_le_bytes()[..]);
}

#[tokio::test]
async fn scan_helpers() {
    let (_server, c) = client().await;
    let (cursor, entries) = c.scan(None).await.unwrap().unwrap();
    assert_eq!(&cursor[..], b"c1");
    assert_eq!(
        entries,
        vec![ScanEntry {
            key: Bytes::from_static(b"a"),
            size: 16,
            timestamp: 1_535_361_488
        }]
    );
    assert_eq!(c.scan(Some(&cursor)).await.unwrap(), None);
    assert_eq!(
        c.scan(Some(b"zz")).await.unwrap_err().server_message(),
        Some("Invalid key format")
    );
    let (cursor, entries) = c.rscan(None).await.unwrap().unwrap();
    assert!(entries.is_empty());
    assert_eq!(c.rscan(Some(&cursor)).await.unwrap(), None);
}

#[tokio::test]
async fn history_helper_walks_back() {
    let (_server, c) = client().await;
    let first = c.history(b"k", None).await.unwrap().unwrap();
    assert_eq!(
        first,
        HistoryEntry {
            previous: Some(Bytes::from_static(b"h1")),
            timestamp: 1_600_000_000,
            payload: Bytes::from_static(b"new"),
        }
    );
    let second = c
        .history(b"k", first.previous.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.previous, None);
    assert_eq!(&second.payload[..], b"old");
    assert_eq!(c.history(b"k", Some(b"zz")).await.unwrap(), None);
}

#[tokio::test]
async fn namespace_and_admin_helpers() {
    let (server, c) = client().await;
    c.nsnew("ns").await.unwrap();
    c.nsset("ns", "maxsize", "1000").await.unwrap();
    assert_eq!(c.nslist().await.unwrap(), vec!["default", "ns"]);
    let info = c.nsinfo("ns").await.unwrap();
    assert_eq!(info.name(), Some("ns"));
    assert_eq!(info.entries(), Some(3));
    assert_eq!(info.mode(), Some("sequential"));
    assert_eq!(info.public(), Some(true));
    assert_eq!(
        c.nsinfo("nope").await.unwrap_err().server_message(),
        Some("Namespace not found")
    );
    c.nsjump().await.unwrap();
    assert_eq!(c.index_dirty().await.unwrap(), vec![0, 3]);
    c.index_dirty_reset().await.unwrap();
    c.flush().await.unwrap();
    c.nsdel("ns").await.unwrap();
    assert!(c.info().await.unwrap().contains("version: test"));
    let sent: Vec<String> = server
        .requests()
        .into_iter()
        .map(|(_, a)| a.join(" "))
        .collect();
    assert!(
        sent.contains(&"NSSET ns maxsize 1000".to_string()),
        "{sent:?}"
    );
    assert!(sent.contains(&"INDEX DIRTY RESET".to_string()), "{sent:?}");
}

#[tokio::test]
async fn wrong_reply_shape_is_typed() {
    let server = FakeServer::tcp(|_, args| match cmd(args).as_str() {
        "GET" => raw(b":1\r\n"),
        "SET" => bulk(b"abc"),
        _ => raw(b"*0\r\n"),
    })
    .await;
    let c = Client::new(ClientConfig::new(server.endpoint.clone())).unwrap();
    assert!(matches!(
        c.get(b"k").await,
        Err(ClientError::UnexpectedReply { command: "GET", .. })
    ));
    assert!(matches!(
        c.set_seq(b"v").await,
        Err(ClientError::UnexpectedReply { command: "SET", .. })
    ));
    assert!(matches!(
        c.ping().await,
        Err(ClientError::UnexpectedReply { .. })
    ));
    assert!(matches!(
        c.scan(None).await,
        Err(ClientError::UnexpectedReply { .. })
    ));
}
