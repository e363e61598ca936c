//! GET: the current payload of a key.

use super::args::{exact, read_key};
use super::{CmdResult, Ctx, Flow};
use bytes::Bytes;

/// `GET key` → bulk payload, `$-1` if absent or deleted.
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    let out = &mut *ctx.out;
    ctx.sess.ns.get_with(key, |v| match v {
        Some(v) => resp::write_bulk(out, v),
        None => resp::write_null(out),
    })?;
    Ok(Flow::Continue)
}
