//! GET: the current payload of a key.

use super::args::{exact, read_key};
use super::{CmdResult, Ctx};
use bytes::Bytes;

/// `GET key` → bulk payload, `$-1` if absent or deleted.
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    match ctx.sess.ns.get(key)? {
        Some(v) => ctx.bulk(&v),
        None => ctx.nil(),
    }
}
