//! MGET: several GETs in one reply.

use super::args::MAX_KEY;
use super::{fail, CmdResult, Ctx, Flow};
use bytes::Bytes;

/// `MGET key…` → `*N` of bulk or `$-1`; empty keys are allowed (nil).
pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() < 2 {
        return fail("Invalid arguments");
    }
    let keys = &args[1..];
    if keys.iter().any(|k| k.len() > MAX_KEY) {
        return fail("Invalid key");
    }
    ctx.require_not_frozen()?;
    // Read everything first so that a failure replaces the whole reply.
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        values.push(if key.is_empty() {
            None
        } else {
            ctx.sess.ns.get(key)?
        });
    }
    resp::write_array_header(ctx.out, values.len());
    for v in values {
        match v {
            Some(v) => resp::write_bulk(ctx.out, &v),
            None => resp::write_null(ctx.out),
        }
    }
    Ok(Flow::Continue)
}
