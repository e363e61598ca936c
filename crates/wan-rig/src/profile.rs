//! What one link does to the bytes crossing it, and its text form
//! (`delay=25ms,rate=100mbit,loss=0.1%`), used by the binary's flags and its control socket.

use std::fmt;
use std::time::Duration;

/// The behaviour of one link, the same in both directions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// One-way delay: a byte leaves the link this long after it was put on it.
    pub delay: Duration,
    /// Bandwidth cap in bytes per second per direction, shared by every connection of the
    /// link; `None` for no cap.
    pub rate: Option<u64>,
    /// Probability that a packet (1448 bytes of payload) is lost. A byte stream cannot drop
    /// bytes, so a loss costs what TCP pays for it: the stream stalls for a retransmission
    /// ([`Profile::loss_penalty`]) and what follows waits behind it.
    pub loss: f64,
}

/// The payload of one TCP packet on an Ethernet path (MTU 1500).
pub const PACKET: usize = 1448;

impl Profile {
    /// A link that adds nothing.
    pub const LOOPBACK: Profile = Profile {
        delay: Duration::ZERO,
        rate: None,
        loss: 0.0,
    };

    /// The round trip of the link alone.
    pub fn rtt(&self) -> Duration {
        self.delay * 2
    }

    /// The stall of one lost packet: the duplicate acknowledgements travel back, the
    /// retransmission forward (fast retransmit), plus a little.
    pub fn loss_penalty(&self) -> Duration {
        self.rtt() + Duration::from_millis(10)
    }

    /// The bandwidth-delay product of one round trip (bytes), if the link is capped.
    pub fn bdp(&self) -> Option<u64> {
        self.rate
            .map(|r| (r as f64 * self.rtt().as_secs_f64()) as u64)
    }
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::LOOPBACK
    }
}

/// A profile that could not be read; says which part and why.
#[derive(Debug, thiserror::Error)]
#[error("bad link profile part {part:?}: {why} (expected e.g. delay=25ms,rate=100mbit,loss=0.1%)")]
pub struct ParseError {
    part: String,
    why: &'static str,
}

impl std::str::FromStr for Profile {
    type Err = ParseError;

    /// Comma-separated `key=value` parts; a part left out keeps the loopback value.
    fn from_str(s: &str) -> Result<Profile, ParseError> {
        let mut p = Profile::LOOPBACK;
        for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let bad = |why| ParseError {
                part: part.to_string(),
                why,
            };
            let (key, value) = part.split_once('=').ok_or_else(|| bad("no '='"))?;
            match key.trim() {
                "delay" => {
                    p.delay = parse_duration(value.trim()).ok_or_else(|| bad("not a duration"))?;
                }
                "rate" => p.rate = parse_rate(value.trim()).ok_or_else(|| bad("not a rate"))?,
                "loss" => {
                    p.loss = parse_fraction(value.trim()).ok_or_else(|| bad("not a fraction"))?;
                }
                _ => return Err(bad("unknown key (delay, rate, loss)")),
            }
        }
        Ok(p)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delay={}us", self.delay.as_micros())?;
        match self.rate {
            Some(r) => write!(f, ",rate={}bit", r * 8)?,
            None => write!(f, ",rate=none")?,
        }
        write!(f, ",loss={}%", self.loss * 100.0)
    }
}

/// `25ms`, `1.5s`, `300us`, `0`.
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = split_unit(s);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "" if v == 0.0 => 0.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Bits per second (`100mbit`, `1gbit`, `800kbit`, `5000bit`) or bytes per second (`12.5MB`,
/// `64KB`, `100B`); `none` for no cap. Units are decimal, as link speeds are.
fn parse_rate(s: &str) -> Option<Option<u64>> {
    if s == "none" {
        return Some(None);
    }
    let (num, unit) = split_unit(s);
    let v: f64 = num.parse().ok()?;
    let bytes = match unit.to_ascii_lowercase().as_str() {
        "bit" => v / 8.0,
        "kbit" => v * 1e3 / 8.0,
        "mbit" => v * 1e6 / 8.0,
        "gbit" => v * 1e9 / 8.0,
        "b" => v,
        "kb" => v * 1e3,
        "mb" => v * 1e6,
        "gb" => v * 1e9,
        _ => return None,
    };
    (bytes.is_finite() && bytes >= 1.0).then_some(Some(bytes as u64))
}

/// `0.1%` or `0.001`, within 0..1.
fn parse_fraction(s: &str) -> Option<f64> {
    let v = match s.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&v).then_some(v)
}

fn split_unit(s: &str) -> (&str, &str) {
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..at], &s[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let p: Profile = "delay=25ms,rate=100mbit,loss=0.1%".parse().unwrap();
        assert_eq!(p.delay, Duration::from_millis(25));
        assert_eq!(p.rate, Some(12_500_000));
        assert!((p.loss - 0.001).abs() < 1e-12);
        assert_eq!(p.bdp(), Some(625_000));
        let q: Profile = "rate=12.5MB, delay=1.5s".parse().unwrap();
        assert_eq!(q.rate, Some(12_500_000));
        assert_eq!(q.delay, Duration::from_millis(1500));
        assert_eq!("".parse::<Profile>().unwrap(), Profile::LOOPBACK);
        assert_eq!(
            "rate=none,delay=0".parse::<Profile>().unwrap(),
            Profile::LOOPBACK
        );
    }

    #[test]
    fn display_reads_back_the_same() {
        let p: Profile = "delay=300us,rate=1gbit,loss=2%".parse().unwrap();
        assert_eq!(p.to_string().parse::<Profile>().unwrap(), p);
    }

    #[test]
    fn refuses_what_it_cannot_mean() {
        for bad in [
            "delay=25",
            "delay=-1ms",
            "rate=fast",
            "rate=0",
            "loss=150%",
            "loss=-0.1",
            "jitter=1ms",
            "delay",
        ] {
            let e = bad.parse::<Profile>().unwrap_err().to_string();
            assert!(e.contains("bad link profile part"), "{bad}: {e}");
        }
    }
}
