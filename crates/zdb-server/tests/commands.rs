//! Key/value commands against the real binary: success shapes and 0-db's error texts, in
//! user and seq mode.

mod common;
use common::*;
use resp::Frame;

#[test]
fn ping_time_info_dbsize_unknown() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["PING"]), status("PONG"));
    assert_eq!(r.cmd(&["ping", "extra"]), status("PONG"));
    match r.cmd(&["TIME"]) {
        Frame::Array(a) => {
            assert_eq!(a.len(), 2);
            let secs: u64 = a[0].as_text().unwrap().parse().unwrap();
            assert!(secs > 1_600_000_000);
            let us: u64 = a[1].as_text().unwrap().parse().unwrap();
            assert!(us < 1_000_000);
        }
        other => panic!("TIME: {other:?}"),
    }
    let info = r.cmd(&["INFO"]);
    assert!(matches!(info, Frame::Bulk(_)));
    assert_eq!(field(&info, "server_name").as_deref(), Some("0-db (zdb)"));
    assert_eq!(field(&info, "sequential_key_size").as_deref(), Some("8"));
    for k in [
        "instance_id",
        "boot_time",
        "uptime",
        "clients_lifetime",
        "commands_executed",
        "network_rx_bytes",
        "network_tx_mb",
    ] {
        assert!(field(&info, k).is_some(), "INFO lacks {k}");
    }
    assert_eq!(r.cmd(&["DBSIZE"]), int(0));
    assert_eq!(r.cmd(&["NOPE"]), err("Command not supported"));
    assert_eq!(r.cmd(&["COMMAND"]), err("Command not supported"));
    assert_eq!(r.cmd(&["S", "k", "v"]), err("Command not supported"));
    assert_eq!(r.cmd(&["*"]), err("This is not a valid command"));
    assert_eq!(r.cmd(&[""]), err("This is not a valid command"));
    assert_eq!(r.cmd(&["STOP"]), err("Unauthorized"));
    let info = r.cmd(&["INFO"]);
    let failed: u64 = field(&info, "commands_failed").unwrap().parse().unwrap();
    assert!(failed >= 3);
}

#[test]
fn user_mode_set_get_del_and_metadata() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["SET", "k", "hello"]), bulk("k"));
    assert_eq!(
        r.cmd(&["SET", "k", "hello"]),
        nil(),
        "same value: nothing written"
    );
    assert_eq!(r.cmd(&["SETX", "k2", "x"]), bulk("k2"));
    assert_eq!(r.cmd(&["GET", "k"]), bulk("hello"));
    assert_eq!(r.cmd(&["GET", "nope"]), nil());
    assert_eq!(r.cmd(&["EXISTS", "k"]), int(1));
    assert_eq!(r.cmd(&["EXISTS", "nope"]), int(0));
    assert_eq!(r.cmd(&["CHECK", "k"]), int(1));
    assert_eq!(r.cmd(&["CHECK", "nope"]), nil());
    assert_eq!(r.cmd(&["LENGTH", "k"]), int(5));
    assert_eq!(r.cmd(&["LENGTH", "nope"]), nil());
    let Frame::Integer(t) = r.cmd(&["KEYTIME", "k"]) else {
        panic!("KEYTIME")
    };
    assert!(t > 1_600_000_000);
    assert_eq!(r.cmd(&["KEYTIME", "nope"]), nil());
    assert_eq!(r.cmd(&["DBSIZE"]), int(2));
    assert_eq!(
        r.cmd(&["MGET", "k", "nope", "k2", ""]),
        Frame::Array(vec![bulk("hello"), nil(), bulk("x"), nil()])
    );
    assert_eq!(r.cmd(&["DEL", "k"]), ok());
    assert_eq!(r.cmd(&["DEL", "k"]), err("Key not found"));
    assert_eq!(r.cmd(&["GET", "k"]), nil());
    assert_eq!(r.cmd(&["EXISTS", "k"]), int(0));
    assert_eq!(r.cmd(&["CHECK", "k"]), nil());
    assert_eq!(r.cmd(&["DBSIZE"]), int(1));
    assert_eq!(
        r.cmd(&["SET", "k", "again"]),
        bulk("k"),
        "SET on a deleted key is a fresh insert"
    );
    // Binary keys and values, empty value.
    assert_eq!(
        r.cmdb(&[b"SET", b"\x00\xff", b"\r\n\x00"]),
        bulk(b"\x00\xff")
    );
    assert_eq!(r.cmdb(&[b"GET", b"\x00\xff"]), bulk(b"\r\n\x00"));
    assert_eq!(r.cmd(&["SET", "empty", ""]), bulk("empty"));
    assert_eq!(r.cmd(&["GET", "empty"]), bulk(""));
    // Timestamp form (admin; every client is admin without --admin).
    assert_eq!(r.cmd(&["SET", "ts", "v", "1234567"]), bulk("ts"));
    assert_eq!(r.cmd(&["KEYTIME", "ts"]), int(1234567));
}

#[test]
fn argument_errors() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    let long = "x".repeat(256);
    let k511 = "y".repeat(511);
    assert_eq!(r.cmd(&["SET", "k"]), err("Unexpected arguments"));
    assert_eq!(
        r.cmd(&["SET", "", "v"]),
        err("Invalid argument, key needed")
    );
    assert_eq!(r.cmd(&["SET", &long, "v"]), err("Key too large"));
    assert_eq!(
        r.cmd(&["SET", "x".repeat(255).as_str(), "v"]),
        bulk("x".repeat(255))
    );
    for c in ["GET", "EXISTS", "CHECK", "LENGTH", "KEYTIME"] {
        assert_eq!(r.cmd(&[c]), err("Unexpected arguments"), "{c}");
        assert_eq!(r.cmd(&[c, "a", "b"]), err("Unexpected arguments"), "{c}");
        assert_eq!(r.cmd(&[c, ""]), err("Invalid argument"), "{c}");
        assert_eq!(r.cmd(&[c, &k511]), err("Invalid key"), "{c}");
    }
    assert_eq!(r.cmd(&["DEL"]), err("Unexpected arguments"));
    assert_eq!(r.cmd(&["DEL", ""]), err("Invalid argument"));
    assert_eq!(r.cmd(&["DEL", &k511]), err("Invalid key"));
    assert_eq!(r.cmd(&["DEL", "nope"]), err("Key not found"));
    assert_eq!(r.cmd(&["MGET"]), err("Invalid arguments"));
    assert_eq!(r.cmd(&["MGET", &k511]), err("Invalid key"));
    assert_eq!(r.cmd(&["KEYCUR"]), err("Unexpected arguments"));
    assert_eq!(r.cmd(&["KEYCUR", "nope"]), err("Key not found"));
    assert_eq!(r.cmd(&["HISTORY"]), err("Invalid arguments"));
    assert_eq!(r.cmd(&["HISTORY", "nope"]), err("Key not found"));
}

#[test]
fn payload_sizes_round_trip() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    for size in [512usize, 4096, 1 << 20, 8 << 20] {
        let v: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let key = format!("p{size}");
        assert_eq!(r.cmdb(&[b"SET", key.as_bytes(), &v]), bulk(&key));
        assert_eq!(r.cmdb(&[b"GET", key.as_bytes()]), bulk(&v));
    }
}

#[test]
fn seq_mode_ids_updates_and_errors() {
    let z = Zdb::start(&["--mode", "seq"]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["SET", "", "a"]), bulk(id(0)));
    assert_eq!(r.cmd(&["SET", "", "b"]), bulk(id(1)));
    assert_eq!(r.cmdb(&[b"GET", &id(0)]), bulk("a"));
    // An update keeps the id and, as in 0-db, spends the next one (id 2 here).
    assert_eq!(r.cmdb(&[b"SET", &id(0), b"a2"]), bulk(id(0)));
    assert_eq!(r.cmdb(&[b"SET", &id(0), b"a2"]), nil());
    assert_eq!(r.cmdb(&[b"GET", &id(0)]), bulk("a2"));
    assert_eq!(r.cmdb(&[b"DEL", &id(0)]), ok());
    assert_eq!(r.cmdb(&[b"GET", &id(0)]), nil());
    assert_eq!(r.cmd(&["SET", "", "c"]), bulk(id(3)));
    assert_eq!(r.cmdb(&[b"EXISTS", &id(2)]), int(0));
    assert_eq!(
        r.cmdb(&[b"SET", &id(0), b"x"]),
        err("Invalid key, only update authorized")
    );
    assert_eq!(
        r.cmdb(&[b"SET", &id(99), b"x"]),
        err("Invalid key, only update authorized")
    );
    assert_eq!(
        r.cmd(&["SET", "abc", "x"]),
        err("Invalid key, only update authorized")
    );
    assert_eq!(r.cmdb(&[b"DEL", &id(0)]), err("Key not found"));
    assert_eq!(r.cmdb(&[b"EXISTS", &id(1)]), int(1));
    assert_eq!(r.cmdb(&[b"LENGTH", &id(3)]), int(1));
    assert_eq!(r.cmd(&["DBSIZE"]), int(2));
    assert_eq!(
        r.cmd(&["KSCAN", "x"]),
        err("Index running mode doesn't support this feature")
    );
    let info = r.cmd(&["NSINFO", "default"]);
    assert_eq!(field(&info, "mode").as_deref(), Some("sequential"));
    assert_eq!(
        field(&info, "next_internal_id").as_deref(),
        Some("0x400000000000000")
    );
    // A forced mode cannot be changed per namespace.
    assert_eq!(
        r.cmd(&["NSSET", "default", "mode", "user"]),
        err("This server instance is configured to use a single runtime mode")
    );
}

#[test]
fn mixed_mode_namespace_switches_to_seq_while_empty() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["NSNEW", "s"]), ok());
    assert_eq!(
        r.cmd(&["NSSET", "s", "mode", "bogus"]),
        err("Invalid property value (expected: user, seq)")
    );
    assert_eq!(r.cmd(&["NSSET", "s", "mode", "seq"]), ok());
    assert_eq!(r.cmd(&["SELECT", "s"]), ok());
    assert_eq!(r.cmd(&["SET", "", "v"]), bulk(id(0)));
    assert_eq!(
        r.cmd(&["NSSET", "s", "mode", "user"]),
        err("Cannot change mode of used namespace")
    );
    assert_eq!(
        field(&r.cmd(&["NSINFO", "s"]), "next_internal_id").as_deref(),
        Some("0x100000000000000")
    );
    assert_eq!(
        field(&r.cmd(&["NSINFO", "default"]), "mode").as_deref(),
        Some("userkey")
    );
}

#[test]
fn redis_crate_pipelining() {
    let z = Zdb::start(&[]);
    let mut c = z.client();
    let mut p = redis::pipe();
    for i in 0..100 {
        p.cmd("SET").arg(format!("key{i}")).arg(format!("value{i}"));
    }
    let keys: Vec<String> = p.query(&mut c).unwrap();
    assert_eq!(keys.len(), 100);
    assert_eq!(keys[42], "key42");
    let mut p = redis::pipe();
    for i in 0..100 {
        p.cmd("GET").arg(format!("key{i}"));
    }
    let values: Vec<String> = p.query(&mut c).unwrap();
    assert_eq!(values.len(), 100);
    assert!(values
        .iter()
        .enumerate()
        .all(|(i, v)| *v == format!("value{i}")));
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 100);
    let e = redis::cmd("DEL")
        .arg("nope")
        .query::<()>(&mut c)
        .unwrap_err();
    // The redis crate splits an error reply into a code (first word) and a detail.
    assert_eq!(
        (e.code(), e.detail()),
        (Some("Key"), Some("not found")),
        "{e}"
    );
}

/// Entries of a SCAN/RSCAN reply: (cursor, keys).
fn scan_reply(f: Frame) -> (Vec<u8>, Vec<Vec<u8>>) {
    let Frame::Array(a) = f else {
        panic!("scan reply: {f:?}")
    };
    assert_eq!(a.len(), 2);
    let cursor = a[0].as_bytes().expect("cursor bulk").to_vec();
    let Frame::Array(items) = &a[1] else {
        panic!("entries: {:?}", a[1])
    };
    let keys = items
        .iter()
        .map(|e| {
            let Frame::Array(e) = e else {
                panic!("entry {e:?}")
            };
            assert_eq!(e.len(), 3);
            assert!(matches!(e[1], Frame::Integer(_)) && matches!(e[2], Frame::Integer(_)));
            e[0].as_bytes().unwrap().to_vec()
        })
        .collect();
    (cursor, keys)
}

#[test]
fn scan_rscan_keycur() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["SCAN"]), err("No more data"));
    assert_eq!(r.cmd(&["RSCAN"]), err("No more data"));
    for k in ["k1", "k2", "k3", "k4"] {
        r.cmd(&["SET", k, "v"]);
    }
    let (_, keys) = scan_reply(r.cmd(&["SCAN"]));
    assert_eq!(
        keys,
        vec![
            b"k1".to_vec(),
            b"k2".to_vec(),
            b"k3".to_vec(),
            b"k4".to_vec()
        ]
    );
    let (_, keys) = scan_reply(r.cmd(&["RSCAN"]));
    assert_eq!(keys.first().map(Vec::as_slice), Some(&b"k4"[..]));
    // An overwritten key moves to its latest position; a deleted one disappears.
    r.cmd(&["SET", "k1", "v2"]);
    r.cmd(&["DEL", "k2"]);
    let (last, keys) = scan_reply(r.cmd(&["SCANX"]));
    assert_eq!(keys, vec![b"k3".to_vec(), b"k4".to_vec(), b"k1".to_vec()]);
    assert_eq!(r.cmdb(&[b"SCAN", &last]), err("No more data"));
    let Frame::Bulk(cur) = r.cmd(&["KEYCUR", "k3"]) else {
        panic!("KEYCUR")
    };
    let (_, after) = scan_reply(r.cmdb(&[b"SCAN", &cur]));
    assert_eq!(after, vec![b"k4".to_vec(), b"k1".to_vec()]);
    // Before k3 there are only a stale k1 entry and the deleted k2.
    assert_eq!(r.cmdb(&[b"RSCAN", &cur]), err("No more data"));
    let Frame::Bulk(cur4) = r.cmd(&["KEYCUR", "k4"]) else {
        panic!("KEYCUR")
    };
    let (_, before) = scan_reply(r.cmdb(&[b"RSCAN", &cur4]));
    assert_eq!(before, vec![b"k3".to_vec()]);
    assert_eq!(r.cmd(&["SCAN", "key1"]), err("Invalid key format"));
    assert_eq!(r.cmd(&["RSCAN", "key1"]), err("Invalid key format"));
    assert_eq!(r.cmd(&["KEYCUR", "k2"]), err("Key not found"));
}

#[test]
fn scan_walks_many_entries_in_batches() {
    let z = Zdb::start(&[]);
    let mut c = z.client();
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("SET").arg(format!("key{i:05}")).arg("x").ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let mut r = z.raw();
    let mut seen = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let reply = match &cursor {
            None => r.cmd(&["SCAN"]),
            Some(cur) => r.cmdb(&[b"SCAN", cur]),
        };
        if reply == err("No more data") {
            break;
        }
        let (next, keys) = scan_reply(reply);
        assert!(!keys.is_empty() && keys.len() <= 1000);
        seen.extend(keys);
        cursor = Some(next);
    }
    assert_eq!(seen.len(), 3000);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn history_walks_back() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    for v in ["v1", "v2", "v3"] {
        r.cmd(&["SET", "h", v]);
    }
    let Frame::Array(a) = r.cmd(&["HISTORY", "h"]) else {
        panic!("HISTORY")
    };
    assert_eq!(a.len(), 3);
    assert_eq!(a[2], bulk("v3"));
    let ts: u64 = a[1]
        .as_text()
        .expect("timestamp is a bulk string")
        .parse()
        .unwrap();
    assert!(ts > 1_600_000_000);
    let mut prev = a[0].as_bytes().expect("previous cursor").to_vec();
    assert_eq!(prev.len(), 8);
    let Frame::Array(b) = r.cmdb(&[b"HISTORY", b"h", &prev]) else {
        panic!("HISTORY 2")
    };
    assert_eq!(b[2], bulk("v2"));
    prev = b[0].as_bytes().unwrap().to_vec();
    let Frame::Array(c) = r.cmdb(&[b"HISTORY", b"h", &prev]) else {
        panic!("HISTORY 3")
    };
    assert_eq!(c[2], bulk("v1"));
    assert_eq!(c[0], nil(), "no version before the first");
    assert_eq!(
        r.cmdb(&[b"HISTORY", b"h", &[0u8; 8]]),
        err("No more history")
    );
    assert_eq!(r.cmd(&["HISTORY", "h", "short"]), err("Invalid arguments"));
    r.cmd(&["SET", "other", "o"]);
    assert_eq!(
        r.cmdb(&[b"HISTORY", b"other", &prev]),
        err("Invalid arguments (invalid key)")
    );
}

#[test]
fn kscan_prefix() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["KSCAN"]), err("Unexpected arguments"));
    for k in ["hello1", "hello2", "world"] {
        r.cmd(&["SET", k, "v"]);
    }
    assert_eq!(
        r.cmd(&["KSCAN", "h"]),
        Frame::Array(vec![
            bulk("0"),
            Frame::Array(vec![bulk("hello1"), bulk("hello2")])
        ])
    );
    assert_eq!(r.cmd(&["KSCAN", "zz"]), err("No keys match"));
}

/// On a disk down to its reserve a SET of a new value is refused with the numbers, while
/// reads and DEL go on (tombstones use the reserve), so the disk can be emptied from inside.
#[test]
fn a_full_disk_refuses_sets_with_the_numbers_and_keeps_reads_and_deletes() {
    let disk = test_kit::mount::SmallDisk::new(32);
    let z = Zdb::start_in(&disk.path, &["--datasize", "1M"]);
    let mut r = z.raw();
    let value = vec![b'v'; 512 * 1024];
    let mut stored = 0;
    let refusal = loop {
        let key = format!("k{stored}");
        match r.cmdb(&[b"SET", key.as_bytes(), &value]) {
            Frame::Bulk(_) => stored += 1,
            other => break other,
        }
        assert!(stored < 1000, "the disk never filled");
    };
    let Frame::Error(text) = refusal else {
        panic!("expected an error, got {refusal:?}")
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(
        text.starts_with("No space left on device") && text.contains("kept for deletes"),
        "{text}"
    );
    assert!(stored > 10, "most of the disk was usable: {stored}");
    assert_eq!(r.cmd(&["GET", "k0"]), bulk(&value));
    for i in 0..stored {
        assert_eq!(r.cmd(&["DEL", &format!("k{i}")]), ok());
    }
    assert_eq!(r.cmd(&["GET", "k0"]), nil());
}
