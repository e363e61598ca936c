//! Sign-in throttling: tries are counted per account name and per client address. A try is
//! counted as wrong the moment it is let through and given back when it proves right, so
//! concurrent tries meet the same count as tries one after the other. The
//! first [`FREE_TRIES`] wrong ones cost nothing but a short pause; each one after waits twice as long as
//! the last ([`FIRST_WAIT`], doubling, at most [`MAX_WAIT`]) before the next try is even
//! looked at, so a burst of wrong passwords gets a few tries a minute, and a guesser spread
//! over many addresses still meets the account's own count. A right password clears the
//! account's count (not the address's). Counts are forgotten after [`FORGET_AFTER`] without
//! a wrong try.
//!
//! Owns: the counts and the waits. Must not touch: passwords, sessions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tries let through before waits begin.
pub const FREE_TRIES: u32 = 5;
/// The wait after the first wrong try past the free ones.
pub const FIRST_WAIT: Duration = Duration::from_secs(15);
pub const MAX_WAIT: Duration = Duration::from_secs(3600);
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most counts kept (the oldest go first): bounded memory whatever the addresses.
const MAX_KEYS: usize = 65_536;

/// What a count is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Account(String),
    Address(IpAddr),
}

struct Count {
    wrong: u32,
    last: Instant,
    /// No try is looked at before this.
    until: Option<Instant>,
}

#[derive(Default)]
pub struct Throttle {
    counts: Mutex<HashMap<Key, Count>>,
}

fn wait_after(wrong: u32) -> Option<Duration> {
    let past = wrong.checked_sub(FREE_TRIES)?;
    Some(FIRST_WAIT.saturating_mul(1 << past.min(16)).min(MAX_WAIT))
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Count>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Let a try with these keys through, counted as wrong until [`Throttle::right`] says
    /// otherwise, or say how long the caller must still wait.
    pub fn begin(&self, keys: &[Key]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.lock();
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k)?.until?.checked_duration_since(now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        map.retain(|_, c| now.duration_since(c.last) < FORGET_AFTER);
        crate::bounded::make_room(&mut map, MAX_KEYS, |c| c.last);
        for k in keys {
            let c = map.entry(k.clone()).or_insert(Count {
                wrong: 0,
                last: now,
                until: None,
            });
            c.wrong += 1;
            c.last = now;
            c.until = wait_after(c.wrong).map(|w| now + w);
        }
        Ok(())
    }

    /// The try let through with `keys` was right: `account`'s count is cleared, the
    /// others get this try back.
    pub fn right(&self, keys: &[Key], account: &Key) {
        let mut map = self.lock();
        map.remove(account);
        for k in keys.iter().filter(|k| *k != account) {
            if let Some(c) = map.get_mut(k) {
                c.wrong = c.wrong.saturating_sub(1);
                c.until = wait_after(c.wrong).map(|w| c.last + w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_begin_after_the_free_tries_and_double() {
        assert_eq!(wait_after(FREE_TRIES - 1), None);
        assert_eq!(wait_after(FREE_TRIES), Some(FIRST_WAIT));
        assert_eq!(wait_after(FREE_TRIES + 1), Some(FIRST_WAIT * 2));
        assert_eq!(wait_after(FREE_TRIES + 3), Some(FIRST_WAIT * 8));
        assert_eq!(wait_after(1000), Some(MAX_WAIT));
        // A burst: the free tries, then at most two more in the first minute.
        let allowed_in_a_minute = (1..100)
            .scan(Duration::ZERO, |t, n| {
                let at = *t;
                *t += wait_after(n).unwrap_or_default();
                Some(at)
            })
            .take_while(|&at| at < Duration::from_secs(60))
            .count();
        assert!(
            allowed_in_a_minute <= FREE_TRIES as usize + 2,
            "{allowed_in_a_minute}"
        );
    }

    #[test]
    fn accounts_and_addresses_are_counted_apart() {
        let t = Throttle::default();
        let alice = Key::Account("alice".into());
        let here = Key::Address("127.0.0.1".parse().unwrap());
        let there = Key::Address("10.0.0.9".parse().unwrap());
        for _ in 0..FREE_TRIES {
            assert_eq!(t.begin(&[alice.clone(), here.clone()]), Ok(()));
        }
        assert!(
            t.begin(std::slice::from_ref(&alice)).is_err(),
            "the account waits"
        );
        assert!(
            t.begin(&[Key::Account("bob".into()), here.clone()])
                .is_err(),
            "so does the address"
        );
        let bob_there = [Key::Account("bob".into()), there.clone()];
        assert_eq!(t.begin(&bob_there), Ok(()));
        t.right(&bob_there, &bob_there[0]);
        t.right(std::slice::from_ref(&alice), &alice);
        assert_eq!(
            t.begin(&[alice.clone(), there.clone()]),
            Ok(()),
            "a right password clears the account"
        );
        assert!(t.begin(&[alice, here]).is_err(), "not the address");
    }

    #[test]
    fn right_tries_give_the_address_its_count_back() {
        let t = Throttle::default();
        let here = Key::Address("127.0.0.1".parse().unwrap());
        for n in 0..3 * FREE_TRIES {
            let keys = [Key::Account(format!("user{n}")), here.clone()];
            assert_eq!(t.begin(&keys), Ok(()), "try {n}");
            t.right(&keys, &keys[0]);
        }
    }
}
