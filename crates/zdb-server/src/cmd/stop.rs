//! STOP: a debug-build command in 0-db; release builds (which we match) refuse it.

use super::{fail, CmdResult, Ctx};
use bytes::Bytes;

/// `STOP` → `-Unauthorized`, as release 0-db.
pub fn stop(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    fail("Unauthorized")
}
