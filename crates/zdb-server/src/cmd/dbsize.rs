//! DBSIZE: live entries of the attached namespace (no checks, not even frozen).

use super::{CmdResult, Ctx};
use bytes::Bytes;

/// `DBSIZE` → `:entries`.
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let n = ctx.sess.ns.len();
    ctx.int(i64::try_from(n).unwrap_or(i64::MAX))
}
