//! WAIT: block until another client runs a given command on the same namespace.

use super::args::atoll;
use super::{fail, lookup, CmdResult, Ctx, Flow, WaitFor};
use bytes::Bytes;
use std::time::Duration;

/// `WAIT command|* [timeout_ms]`: the connection loop replies `+COMMAND` or `-Timeout`.
pub fn wait(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() != 2 && args.len() != 3 {
        return fail("Invalid arguments");
    }
    let Some(spec) = lookup(&args[1]) else {
        return fail("Unknown command to watch");
    };
    let command = (spec.name != "*").then_some(spec.name);
    let mut timeout_ms: u64 = 5000;
    if let Some(t) = args.get(2) {
        if t.len() > 16 {
            return fail("Invalid timeout");
        }
        timeout_ms = u64::try_from(atoll(t)).unwrap_or(0);
        if !(100..=1_800_000).contains(&timeout_ms) {
            return fail("Invalid timeout");
        }
    }
    Ok(Flow::Wait(WaitFor {
        command,
        timeout: Duration::from_millis(timeout_ms),
    }))
}
