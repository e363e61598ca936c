//! What this process has seen of one backend: its round trip, and whether it answers.
//!
//! A backend across a wide-area link is given up on by how long its connections stay silent
//! (the client's stall timeout), and that bound follows the round trip measured on it: the
//! smallest latency of its recent requests (a ping or a small GET is one round trip; a large
//! transfer only adds to it, so the minimum is what the path costs). A backend whose
//! connection fails or stalls is marked down: requests to it fail at once, without waiting,
//! until a retry time (5 s, then doubling to 20 s while it stays down); the first request
//! after that time is the probe, and any answer clears the mark.
//!
//! Owns: that state and the timeouts derived from it. Must not touch: connections (the
//! caller applies the timeout to its client) or what a failure means for an object.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The stall timeout is `STALL_FLOOR + RTT_FACTOR x round trip`, at most `STALL_CEILING`:
/// a loaded server or a lost segment's retransmit takes a few round trips, a dead path
/// takes forever.
pub const STALL_FLOOR: Duration = Duration::from_secs(2);
const RTT_FACTOR: u32 = 8;
/// Where the timeout stops growing: a backend 10 s silent is treated as gone whatever its
/// round trip (reads must fail within seconds, not minutes).
pub const STALL_CEILING: Duration = Duration::from_secs(10);
/// The timeout before any round trip was measured.
const UNMEASURED: Duration = Duration::from_secs(5);
/// A round trip measured longer ago than this is replaced by the next sample even when
/// that one is larger: the path may have changed.
const RTT_WINDOW: Duration = Duration::from_secs(30);
/// How long a backend marked down is skipped: doubling from the first to the last. The first
/// is longer than a stall, so an operation still waiting on the backend's other requests
/// does not ask it again meanwhile.
const BACKOFF_FIRST: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(20);

/// A backend's round trip and down mark; shared by every clone of the backend.
#[derive(Debug, Default)]
pub struct Liveness {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Smallest recent latency and when it was seen.
    rtt: Option<(Duration, Instant)>,
    down: Option<Down>,
}

#[derive(Debug, Clone, Copy)]
struct Down {
    since: Instant,
    retry_at: Instant,
    failures: u32,
}

/// Why a request was not sent: the backend is marked down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Since when it has not answered.
    pub silent_for: Duration,
    /// When it will be tried again.
    pub retry_in: Duration,
}

impl Liveness {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The round trip measured (`None` before the first answer).
    pub fn round_trip(&self) -> Option<Duration> {
        self.state().rtt.map(|(d, _)| d)
    }

    /// How long a request may make no progress before it is given up on.
    pub fn stall_timeout(&self) -> Duration {
        match self.round_trip() {
            None => UNMEASURED,
            Some(rtt) => (STALL_FLOOR + rtt * RTT_FACTOR).min(STALL_CEILING),
        }
    }

    /// `Some` while the backend is marked down and its retry time has not come.
    pub fn refuses(&self, now: Instant) -> Option<Refusal> {
        let down = self.state().down?;
        (now < down.retry_at).then(|| Refusal {
            silent_for: now.saturating_duration_since(down.since),
            retry_in: down.retry_at - now,
        })
    }

    /// Whether the backend is marked down (refusing or waiting for its probe).
    pub fn is_down(&self) -> bool {
        self.state().down.is_some()
    }

    /// The backend answered a request that took `latency` (an error reply is an answer).
    pub fn answered(&self, latency: Duration, now: Instant) {
        let mut s = self.state();
        s.down = None;
        s.rtt = match s.rtt {
            Some((best, at))
                if best <= latency && now.saturating_duration_since(at) < RTT_WINDOW =>
            {
                Some((best, at))
            }
            _ => Some((latency, now)),
        };
    }

    /// A request failed at the connection (refused, reset, stalled): marked down, or kept
    /// down with a longer wait when the probe after a retry time failed. Failures of
    /// requests sent before the mark (many run at once) do not lengthen the wait.
    pub fn failed(&self, now: Instant) {
        let mut s = self.state();
        let (since, failures) = match s.down {
            Some(d) if now < d.retry_at => return,
            Some(d) => (d.since, d.failures.saturating_add(1)),
            None => (now, 1),
        };
        let wait = BACKOFF_FIRST
            .saturating_mul(1 << (failures - 1).min(8))
            .min(BACKOFF_MAX);
        s.down = Some(Down {
            since,
            retry_at: now + wait,
            failures,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_timeout_follows_the_smallest_recent_round_trip() {
        let l = Liveness::default();
        let t0 = Instant::now();
        assert_eq!(l.stall_timeout(), UNMEASURED);
        l.answered(50 * MS, t0);
        assert_eq!(l.stall_timeout(), STALL_FLOOR + 400 * MS);
        // A large transfer takes longer: the round trip stays what the small request showed.
        l.answered(900 * MS, t0 + MS);
        assert_eq!(l.round_trip(), Some(50 * MS));
        l.answered(20 * MS, t0 + 2 * MS);
        assert_eq!(l.round_trip(), Some(20 * MS));
        // Once the window passed, the path may have changed: the next sample replaces it.
        l.answered(300 * MS, t0 + RTT_WINDOW + 3 * MS);
        assert_eq!(l.round_trip(), Some(300 * MS));
        // Whatever the round trip, a silent backend is given up on within the ceiling.
        l.answered(Duration::from_secs(5), t0 + 3 * RTT_WINDOW);
        assert_eq!(l.stall_timeout(), STALL_CEILING);
    }

    #[test]
    fn a_failed_backend_is_refused_with_a_growing_wait_until_it_answers() {
        let l = Liveness::default();
        let t0 = Instant::now();
        assert_eq!(l.refuses(t0), None);
        l.failed(t0);
        assert!(l.is_down());
        let r = l.refuses(t0 + 100 * MS).unwrap();
        assert_eq!(r.silent_for, 100 * MS);
        assert_eq!(r.retry_in, BACKOFF_FIRST - 100 * MS);
        // The retry time came: the next request goes through (the probe) ...
        assert_eq!(l.refuses(t0 + BACKOFF_FIRST), None);
        // ... fails again: twice as long, counted from the first failure.
        l.failed(t0 + BACKOFF_FIRST);
        let r = l.refuses(t0 + BACKOFF_FIRST).unwrap();
        assert_eq!(r.retry_in, 2 * BACKOFF_FIRST);
        assert_eq!(r.silent_for, BACKOFF_FIRST);
        // Requests that were already on their way fail too: the wait does not grow.
        l.failed(t0 + BACKOFF_FIRST + MS);
        assert_eq!(
            l.refuses(t0 + BACKOFF_FIRST).unwrap().retry_in,
            2 * BACKOFF_FIRST
        );
        let mut at = t0;
        for i in 0..20 {
            at = t0 + Duration::from_secs(100 * (i + 1));
            l.failed(at);
        }
        assert_eq!(l.refuses(at).unwrap().retry_in, BACKOFF_MAX);
        // An answer clears it.
        l.answered(10 * MS, at);
        assert!(!l.is_down());
        assert_eq!(l.refuses(at), None);
    }
}
