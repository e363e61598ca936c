//! Prometheus scrapes: `GET /metrics` on a loopback port, and one series' value.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Bound of one scrape's read.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// The body of `GET /metrics` on 127.0.0.1:`port` (`Connection: close`); None unless it
/// answered 200 (not listening yet, an error status, a cut-off reply).
pub fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(SCRAPE_TIMEOUT)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The value of `series` (a name with its labels, exactly as exposed) in a scrape's text.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Scrape `port` and read `series`: None if either fails.
pub fn get(port: u16, series: &str) -> Option<f64> {
    scrape(port).and_then(|m| value(&m, series))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const TEXT: &str = "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n\
                        b{op=\"x\"} 1.5\nb{op=\"xy\"} 2\n";

    #[test]
    fn value_matches_the_whole_series() {
        assert_eq!(value(TEXT, "a_total"), Some(3.0));
        assert_eq!(value(TEXT, "b{op=\"x\"}"), Some(1.5));
        assert_eq!(value(TEXT, "b{op=\"xy\"}"), Some(2.0));
        assert_eq!(value(TEXT, "a"), None);
        assert_eq!(value(TEXT, "c"), None);
    }

    fn serve_once(reply: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            let _ = s.write_all(reply.as_bytes());
        });
        port
    }

    #[test]
    fn scrape_gives_the_body_of_a_200_only() {
        let ok = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\na_total 3\n");
        assert_eq!(scrape(ok).as_deref(), Some("a_total 3\n"));
        let err = serve_once("HTTP/1.1 500 Oops\r\n\r\nno");
        assert_eq!(scrape(err), None);
        let port = crate::net::free_port();
        assert_eq!(get(port, "a_total"), None);
    }
}
