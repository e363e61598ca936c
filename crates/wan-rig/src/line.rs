//! The timing of one direction of one link: when a chunk of bytes put on the link at a given
//! instant comes out at the far end. Pure arithmetic over instants, so it is tested without
//! sockets or clocks.
//!
//! Model: the link is a bottleneck of `rate` bytes per second followed by a pipe of `delay`.
//! A chunk is serialised after every chunk put on the link before it (by any connection of the
//! link), then travels `delay`; a lost packet in it adds one retransmission stall.

use crate::profile::{Profile, PACKET};
use rand::Rng;
use std::time::{Duration, Instant};

/// One direction of a link, shared by all its connections.
#[derive(Debug)]
pub struct Line {
    /// When the bottleneck finishes sending what it already holds.
    free_at: Instant,
}

impl Line {
    pub fn new(now: Instant) -> Line {
        Line { free_at: now }
    }

    /// When `len` bytes put on the link at `now` leave it (before loss is counted).
    pub fn schedule(&mut self, now: Instant, len: usize, p: &Profile) -> Instant {
        let sent = match p.rate {
            Some(rate) => {
                let start = self.free_at.max(now);
                self.free_at = start + Duration::from_secs_f64(len as f64 / rate as f64);
                self.free_at
            }
            None => now,
        };
        sent + p.delay
    }
}

/// Whether a chunk of `len` bytes loses at least one of its packets.
pub fn loses_a_packet(len: usize, p: &Profile, rng: &mut impl Rng) -> bool {
    if p.loss <= 0.0 {
        return false;
    }
    let packets = len.div_ceil(PACKET).max(1) as i32;
    let p_any = 1.0 - (1.0 - p.loss).powi(packets);
    rng.gen_bool(p_any.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn profile(delay_ms: u64, rate: Option<u64>) -> Profile {
        Profile {
            delay: Duration::from_millis(delay_ms),
            rate,
            loss: 0.0,
        }
    }

    #[test]
    fn delay_only_adds_the_delay() {
        let t0 = Instant::now();
        let mut l = Line::new(t0);
        let p = profile(25, None);
        assert_eq!(l.schedule(t0, 1 << 20, &p), t0 + Duration::from_millis(25));
        // No cap: a second chunk put on at the same instant is not held behind the first.
        assert_eq!(l.schedule(t0, 1 << 20, &p), t0 + Duration::from_millis(25));
    }

    #[test]
    fn chunks_queue_behind_each_other_at_the_rate() {
        let t0 = Instant::now();
        let mut l = Line::new(t0);
        let p = profile(10, Some(1_000_000)); // 1 MB/s: 1000 bytes take 1 ms
        let ms = Duration::from_millis;
        assert_eq!(l.schedule(t0, 1000, &p), t0 + ms(1) + ms(10));
        assert_eq!(l.schedule(t0, 1000, &p), t0 + ms(2) + ms(10));
        // A chunk put on after the bottleneck drained starts at once.
        assert_eq!(l.schedule(t0 + ms(50), 1000, &p), t0 + ms(51) + ms(10));
        // Throughput over many chunks is the rate, whatever the delay.
        let mut last = t0;
        for _ in 0..1000 {
            last = l.schedule(t0 + ms(51), 1000, &p);
        }
        assert_eq!(last, t0 + ms(51) + ms(1000) + ms(10));
    }

    #[test]
    fn loss_follows_the_packet_count() {
        let mut rng = StdRng::seed_from_u64(7);
        let p = Profile {
            loss: 0.01,
            ..Profile::LOOPBACK
        };
        let trials = 20_000;
        let one = (0..trials)
            .filter(|_| loses_a_packet(PACKET, &p, &mut rng))
            .count();
        let ten = (0..trials)
            .filter(|_| loses_a_packet(10 * PACKET, &p, &mut rng))
            .count();
        // Expected 1 % and 9.6 %; the bounds are many standard deviations wide.
        assert!((100..300).contains(&one), "{one}");
        assert!((1500..2400).contains(&ten), "{ten}");
        assert!(!loses_a_packet(1 << 20, &Profile::LOOPBACK, &mut rng));
    }
}
