//! INDEX DIRTY [RESET]: index segments modified since the last reset.

use super::args::{min, overflow};
use super::{fail, CmdResult, Ctx, Flow};
use bytes::Bytes;

/// `INDEX DIRTY` → `*N` of `:segment id`; `INDEX DIRTY RESET` → `+OK`.
pub fn index(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    min(args, 2)?;
    overflow(&args[1], 256)?;
    if !args[1].eq_ignore_ascii_case(b"DIRTY") {
        return fail("Unknown INDEX subcommand");
    }
    if args.len() == 3 {
        overflow(&args[2], 256)?;
        if !args[2].eq_ignore_ascii_case(b"RESET") {
            return fail("Unknown INDEX DIRTY subcommand");
        }
        ctx.sess.ns.dirty_segments(true);
        return ctx.ok();
    }
    let ids = ctx.sess.ns.dirty_segments(false);
    resp::write_array_header(ctx.out, ids.len());
    for id in ids {
        resp::write_integer(ctx.out, i64::from(id));
    }
    Ok(Flow::Continue)
}
