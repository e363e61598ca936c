//! Wire-level behaviour against the real binary: pipelining, hostile input, connection
//! limits, inline commands and WAIT.

mod common;
use common::*;
use resp::Frame;
use std::time::{Duration, Instant};

/// The server still serves a fresh client.
fn still_serves(z: &Zdb) {
    assert_eq!(z.raw().cmd(&["PING"]), status("PONG"));
}

#[test]
fn raw_pipeline_of_sets_then_gets() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    let mut out = bytes::BytesMut::new();
    for i in 0..100 {
        resp::write_command(
            &mut out,
            &[
                &b"SET"[..],
                format!("k{i}").as_bytes(),
                format!("v{i}").as_bytes(),
            ],
        );
    }
    r.send(&out);
    for i in 0..100 {
        assert_eq!(r.read(), Some(bulk(format!("k{i}"))));
    }
    out.clear();
    for i in 0..100 {
        resp::write_command(&mut out, &[&b"GET"[..], format!("k{i}").as_bytes()]);
    }
    r.send(&out);
    for i in 0..100 {
        assert_eq!(r.read(), Some(bulk(format!("v{i}"))));
    }
}

#[test]
fn huge_bulk_length_is_refused_and_closed() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1099511627776\r\n");
    assert_eq!(r.read(), Some(err("Payload too big")));
    assert!(r.closed());
    // Just over 8 MiB is refused too; exactly 8 MiB was accepted in payload_sizes_round_trip.
    let mut r = z.raw();
    r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8388609\r\n");
    assert_eq!(r.read(), Some(err("Payload too big")));
    assert!(r.closed());
    still_serves(&z);
}

#[test]
fn huge_array_header_is_refused_and_closed() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    r.send(b"*1000000\r\n");
    assert_eq!(r.read(), Some(err("Too many arguments")));
    assert!(r.closed());
    let mut r = z.raw();
    r.send(b"*1025\r\n");
    assert_eq!(r.read(), Some(err("Too many arguments")));
    assert!(r.closed());
    // 1024 elements (MGET of 1023 keys) is fine.
    let keys: Vec<String> = (0..1023).map(|i| format!("k{i}")).collect();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let mut r = z.raw();
    match r.cmdb(&args) {
        Frame::Array(a) => assert_eq!(a.len(), 1023),
        other => panic!("MGET: {other:?}"),
    }
    still_serves(&z);
}

#[test]
fn malformed_requests_get_an_error_and_close() {
    let z = Zdb::start(&[]);
    let cases: [&[u8]; 5] = [
        b"*0\r\n",
        b"*1\r\n*1\r\n$4\r\nPING\r\n",
        b"*abc\r\n",
        b"*1\r\n:12\r\n",
        b"*2\r\n$3\r\nGET\r\n$-5\r\n",
    ];
    for case in cases {
        let mut r = z.raw();
        r.send(case);
        match r.read() {
            Some(Frame::Error(_)) => {}
            other => panic!("{case:?}: {other:?}"),
        }
        assert!(r.closed(), "{case:?}");
    }
    let mut r = z.raw();
    r.send(b"*0\r\n");
    assert_eq!(r.read(), Some(err("Missing arguments")));
    still_serves(&z);
}

#[test]
fn binary_garbage_does_not_hurt_the_server() {
    let z = Zdb::start(&[]);
    // Deterministic pseudo-random bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut r = z.raw();
    let _ = std::io::Write::write_all(&mut r.s, &garbage);
    // Whatever the replies, the connection ends (error + close) rather than hanging.
    wait::until("the replies to end", WAIT, || {
        r.try_read(Duration::from_millis(200)).is_none()
    });
    assert!(r.closed());
    still_serves(&z);
}

#[test]
fn byte_by_byte_and_straddling_requests() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    for b in b"*1\r\n$4\r\nPING\r\n" {
        r.send(&[*b]);
    }
    assert_eq!(r.read(), Some(status("PONG")));
    let name = "x".repeat(8178);
    assert_eq!(r.cmd(&[&name]), err("Command not supported"));
    // Inline commands are accepted too.
    r.send(b"PING\r\n");
    assert_eq!(r.read(), Some(status("PONG")));
    r.send(b"SET inl val\r\nGET inl\r\n");
    assert_eq!(r.read(), Some(bulk("inl")));
    assert_eq!(r.read(), Some(bulk("val")));
}

#[test]
fn partial_request_times_out() {
    let z = Zdb::start(&["--request-timeout", "1", "--idle-timeout", "1"]);
    let mut idle = z.raw();
    let mut r = z.raw();
    r.send(b"*2\r\n$3\r\nGET\r\n$10\r\nabc");
    let t = Instant::now();
    assert!(r.closed());
    assert!(t.elapsed() < Duration::from_secs(10));
    // A connection with nothing pending is not closed for idleness while slots are free.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(idle.cmd(&["PING"]), status("PONG"));
}

/// A connection that answered PING, once a slot is free (the harness's readiness probe may
/// still hold one for a moment, a silent connection may be giving its own up).
fn connect(z: &Zdb) -> Raw {
    let mut conn = None;
    wait::until("a free client slot", WAIT, || {
        let mut c = z.raw();
        c.send(b"*1\r\n$4\r\nPING\r\n");
        let pong = c.read() == Some(status("PONG"));
        if pong {
            conn = Some(c);
        }
        pong
    });
    conn.expect("connected")
}

#[test]
fn max_clients_and_many_connections() {
    let z = Zdb::start(&["--max-clients", "2"]);
    let connect = || connect(&z);
    let a = connect();
    let _b = connect();
    let mut c = z.raw();
    assert_eq!(c.read(), Some(err("Too many clients")));
    drop(a);
    connect();

    let z = Zdb::start(&[]);
    let mut conns: Vec<Raw> = (0..128).map(|_| z.raw()).collect();
    for c in &mut conns {
        assert_eq!(c.cmd(&["PING"]), status("PONG"));
    }
}

/// Idle sockets must not lock real clients out: on a full server a new client takes the slot
/// of the connection silent the longest, once silent for --idle-timeout; never a busy one.
#[test]
fn a_full_server_gives_a_silent_connections_slot_to_a_new_client() {
    let z = Zdb::start(&["--max-clients", "2", "--idle-timeout", "1"]);
    let mut silent = connect(&z);
    let mut talking = connect(&z);
    // `talking` keeps speaking, so `silent` is the one that has been silent the longest.
    let mut newcomer = wait::until_some("the silent connection's slot", WAIT, || {
        assert_eq!(talking.cmd(&["PING"]), status("PONG"));
        let mut c = z.raw();
        c.send(b"*1\r\n$4\r\nPING\r\n");
        (c.read() == Some(status("PONG"))).then_some(c)
    });
    assert!(silent.closed(), "the silent connection was closed");
    assert_eq!(talking.cmd(&["PING"]), status("PONG"));
    assert_eq!(newcomer.cmd(&["PING"]), status("PONG"));
}

/// At the limit with nothing silent enough, an admin can still get in (a few connections over
/// the limit that serve only AUTH); anyone else is refused as before.
#[test]
fn an_admin_gets_in_on_a_full_server() {
    let z = Zdb::start(&["--max-clients", "1", "--idle-timeout", "0", "--admin", "pw"]);
    let _holder = connect(&z);
    let mut user = z.raw();
    assert_eq!(user.cmd(&["PING"]), err("Too many clients"));
    assert!(user.closed());
    let mut admin = z.raw();
    assert_eq!(admin.cmd(&["AUTH", "bad"]), err("Access denied"));
    assert_eq!(admin.cmd(&["AUTH", "pw"]), status("OK"));
    assert_eq!(admin.cmd(&["PING"]), status("PONG"));
    assert!(matches!(admin.cmd(&["NSLIST"]), Frame::Array(_)));
    // The room is small: three more fill it, the next is refused at once.
    let mut room: Vec<Raw> = (0..3).map(|_| z.raw()).collect();
    for r in &mut room {
        assert_eq!(r.cmd(&["AUTH", "bad"]), err("Access denied"));
    }
    let mut over = z.raw();
    assert_eq!(over.read(), Some(err("Too many clients")));
}

#[test]
fn wait_argument_errors_and_timeout() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["WAIT"]), err("Invalid arguments"));
    assert_eq!(
        r.cmd(&["WAIT", "nonexisting"]),
        err("Unknown command to watch")
    );
    assert_eq!(r.cmd(&["WAIT", "PING", "50"]), err("Invalid timeout"));
    assert_eq!(r.cmd(&["WAIT", "PING", "abc"]), err("Invalid timeout"));
    assert_eq!(
        r.cmd(&["WAIT", "PING", "99999999999999999"]),
        err("Invalid timeout")
    );
    let t = Instant::now();
    assert_eq!(r.cmd(&["WAIT", "PING", "100"]), err("Timeout"));
    assert!(t.elapsed() >= Duration::from_millis(100));
}

/// Send WAIT on `waiter`, then run `poke` from another client until the waiter replies.
fn wait_for(z: &Zdb, waiter: &mut Raw, request: &[&str], poke: &[&str]) -> Frame {
    let a: Vec<&[u8]> = request.iter().map(|s| s.as_bytes()).collect();
    waiter.send_cmd(&a);
    let mut other = z.raw();
    wait::until_some("WAIT to wake", WAIT, || {
        other.cmd(poke);
        waiter.try_read(Duration::from_millis(50))
    })
}

#[test]
fn wait_wakes_on_commands_of_the_same_namespace() {
    let z = Zdb::start(&[]);
    let mut w = z.raw();
    assert_eq!(
        wait_for(&z, &mut w, &["WAIT", "PING"], &["PING"]),
        status("PING")
    );
    assert_eq!(
        wait_for(&z, &mut w, &["WAIT", "*"], &["SET", "k", "v"]),
        status("SET")
    );
    assert_eq!(
        wait_for(&z, &mut w, &["WAIT", "setx"], &["SETX", "k", "w"]),
        status("SETX")
    );
    // A failed command still counts.
    assert_eq!(
        wait_for(&z, &mut w, &["WAIT", "DEL"], &["DEL", "nope"]),
        status("DEL")
    );
    assert_eq!(
        w.cmd(&["PING"]),
        status("PONG"),
        "connection usable after WAIT"
    );

    // Commands on another namespace do not wake a waiter.
    let mut r = z.raw();
    assert_eq!(r.cmd(&["NSNEW", "other"]), ok());
    assert_eq!(r.cmd(&["SELECT", "other"]), ok());
    w.send_cmd(&[b"WAIT", b"*", b"500"]);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        r.cmd(&["PING"]);
    }
    assert_eq!(w.read(), Some(err("Timeout")));
}
