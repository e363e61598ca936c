//! Readiness waits: poll a condition with a short interval until it holds or a deadline
//! passes, then panic with what was awaited.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(20);

/// Poll `condition` until it holds; panic "timed out waiting for {what}" after `timeout`.
#[track_caller]
pub fn until(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    until_or(what, timeout, condition, String::new);
}

/// Like [`until`], with `context()` (a log, a state dump) appended to the panic message.
#[track_caller]
pub fn until_or(
    what: &str,
    timeout: Duration,
    condition: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    until_every(what, timeout, POLL, condition, context);
}

/// Like [`until_or`], polling every `interval` (for a condition that is costly to ask, e.g.
/// one that runs a command).
#[track_caller]
pub fn until_every(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut condition: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            let context = context();
            if context.is_empty() {
                panic!("timed out waiting for {what} ({timeout:?})");
            }
            panic!("timed out waiting for {what} ({timeout:?}); {context}");
        }
        std::thread::sleep(interval);
    }
}

/// Poll `f` until it gives a value; panic like [`until`] after `timeout`.
#[track_caller]
pub fn until_some<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let mut got = None;
    until(what, timeout, || {
        got = f();
        got.is_some()
    });
    got.expect("the condition held")
}

/// Wait (bounded) for `child` to exit and return its status; panic naming `what` after
/// `timeout` (the child is left running: its owner's drop kills it).
#[track_caller]
pub fn exit(what: &str, child: &mut Child, timeout: Duration) -> ExitStatus {
    exit_or(what, child, timeout, String::new)
}

/// Like [`exit`], with `context()` (e.g. the child's log) appended to the panic message.
#[track_caller]
pub fn exit_or(
    what: &str,
    child: &mut Child,
    timeout: Duration,
    context: impl FnOnce() -> String,
) -> ExitStatus {
    let mut status = None;
    until_or(
        &format!("{what} to exit"),
        timeout,
        || {
            status = child.try_wait().expect("wait for child");
            status.is_some()
        },
        context,
    );
    status.expect("the child exited")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_returns_once_the_condition_holds() {
        let mut n = 0;
        until("three polls", Duration::from_secs(5), || {
            n += 1;
            n == 3
        });
        assert_eq!(n, 3);
    }

    #[test]
    #[should_panic(expected = "timed out waiting for nothing")]
    fn until_panics_with_what_it_waited_for() {
        until("nothing", Duration::from_millis(50), || false);
    }

    #[test]
    #[should_panic(expected = "log: boom")]
    fn until_or_appends_the_context() {
        until_or(
            "nothing",
            Duration::from_millis(50),
            || false,
            || "log: boom".into(),
        );
    }

    #[test]
    fn until_some_gives_the_value() {
        let mut n = 0;
        let v = until_some("a value", Duration::from_secs(5), || {
            n += 1;
            (n > 2).then_some(n * 10)
        });
        assert_eq!(v, 30);
    }

    #[test]
    fn exit_reaps_a_child() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        assert!(exit("true", &mut child, Duration::from_secs(10)).success());
    }
}
