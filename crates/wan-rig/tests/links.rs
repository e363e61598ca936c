//! The rig against real sockets: an echo server behind a link. Only lower bounds of time are
//! asserted (the rig must hold bytes at least as long as its profile says; how much longer
//! depends on the machine).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use wan_rig::{control, Profile, Rig};

/// An echo server on loopback, one thread per connection, for the life of the test process.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn connect(rig: &Rig) -> TcpStream {
    let s = TcpStream::connect(rig.addresses()[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Send `data` and read it all back (writer on its own thread so neither side blocks).
fn echo_round_trip(s: &TcpStream, data: &[u8]) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let out = data.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&out).unwrap());
    let mut back = vec![0u8; data.len()];
    (&*s).read_exact(&mut back).unwrap();
    writer.join().unwrap();
    back
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn a_round_trip_takes_at_least_the_link_round_trip() {
    let rig = Rig::start(&[echo_server()], "delay=40ms".parse().unwrap()).unwrap();
    let s = connect(&rig);
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(echo_round_trip(&s, b"ping"), b"ping");
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
    }
    // A chunk is counted once written on: the echo may be read before its count moves.
    test_kit::wait::until_or(
        "the link to count the 12 bytes each way",
        Duration::from_secs(5),
        || rig.link(0).carried() == (12, 12),
        || format!("{:?}", rig.link(0).carried()),
    );
}

#[test]
fn the_rate_caps_throughput_and_the_delay_does_not() {
    // 2 MB each way at 10 MB/s: at least 0.2 s, whatever the delay (20 ms here).
    let rig = Rig::start(&[echo_server()], "delay=20ms,rate=10MB".parse().unwrap()).unwrap();
    let s = connect(&rig);
    let data = pattern(2_000_000);
    let t = Instant::now();
    assert!(echo_round_trip(&s, &data) == data);
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    // Two connections share the cap: 1 MB each still takes 0.2 s in all.
    let (a, b) = (connect(&rig), connect(&rig));
    let half = pattern(1_000_000);
    let t = Instant::now();
    std::thread::scope(|sc| {
        let h = sc.spawn(|| echo_round_trip(&a, &half));
        assert!(echo_round_trip(&b, &half) == half);
        assert!(h.join().unwrap() == half);
    });
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn loss_stalls_but_never_corrupts() {
    let rig = Rig::start(&[echo_server()], "delay=1ms,loss=2%".parse().unwrap()).unwrap();
    let s = connect(&rig);
    let data = pattern(3 << 20);
    assert!(echo_round_trip(&s, &data) == data);
}

#[test]
fn a_partition_holds_everything_until_the_heal() {
    let rig = Rig::start(&[echo_server()], "delay=5ms".parse().unwrap()).unwrap();
    let mut s = connect(&rig);
    assert_eq!(echo_round_trip(&s, b"before"), b"before");
    rig.link(0).set_partitioned(true);
    s.write_all(b"during").unwrap();
    // A connection made during the partition connects but carries nothing either.
    let mut late = connect(&rig);
    late.write_all(b"late").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 6];
    let e = s.read_exact(&mut buf).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    assert_eq!(
        rig.link(0).carried(),
        (6, 6),
        "nothing crossed during the partition"
    );
    rig.link(0).set_partitioned(false);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"during");
    let mut buf = [0u8; 4];
    late.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"late");
}

#[test]
fn a_down_link_resets_its_connections_and_new_ones() {
    let rig = Rig::start(&[echo_server()], Profile::LOOPBACK).unwrap();
    let mut s = connect(&rig);
    assert_eq!(echo_round_trip(&s, b"x"), b"x");
    rig.link(0).set_down(true);
    let mut buf = [0u8; 1];
    let r = s.write_all(b"y").and_then(|()| s.read(&mut buf));
    assert!(
        matches!(&r, Ok(0))
            || r.as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
        "{r:?}"
    );
    let mut again = connect(&rig);
    let r = again.read(&mut buf);
    assert!(
        matches!(&r, Ok(0))
            || r.as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
        "{r:?}"
    );
    rig.link(0).set_down(false);
    assert_eq!(echo_round_trip(&connect(&rig), b"z"), b"z");
}

#[test]
fn the_control_commands_change_the_links() {
    let rig = Rig::start(&[echo_server(), echo_server()], Profile::LOOPBACK).unwrap();
    let links = rig.links();
    assert!(control::apply("partition 1", links).is_ok());
    assert!(links[1].state().partitioned && !links[0].state().partitioned);
    control::apply("profile all delay=7ms,rate=1mbit", links).unwrap();
    assert_eq!(links[0].state().profile.delay, Duration::from_millis(7));
    assert_eq!(links[1].state().profile.rate, Some(125_000));
    control::apply("down 0,1", links).unwrap();
    assert!(links.iter().all(|l| l.state().down));
    let shown = control::apply("show", links).unwrap();
    assert!(
        shown.contains("partitioned") && shown.contains("down"),
        "{shown}"
    );
    for bad in [
        "",
        "partition",
        "partition 2",
        "heal x",
        "profile all delay=fast",
        "jump all",
    ] {
        assert!(control::apply(bad, links).is_err(), "{bad:?} was accepted");
    }
}
