//! HOOKS: recent runs of the `--hook` executable.

use super::{CmdResult, Ctx, Flow};
use bytes::Bytes;

/// `HOOKS` (admin) → `*N` of `*6` [event, `*M` args, `:pid`, `:started`, `:finished`, `:status`].
pub fn hooks(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    let runs = ctx.srv.hooks.runs();
    resp::write_array_header(ctx.out, runs.len());
    for r in &runs {
        resp::write_array_header(ctx.out, 6);
        resp::write_bulk(ctx.out, r.event.as_bytes());
        resp::write_array_header(ctx.out, r.args.len());
        for a in &r.args {
            resp::write_bulk(ctx.out, a.as_bytes());
        }
        resp::write_integer(ctx.out, i64::from(r.pid));
        resp::write_integer(ctx.out, r.started as i64);
        resp::write_integer(ctx.out, r.finished as i64);
        resp::write_integer(ctx.out, i64::from(r.status));
    }
    Ok(Flow::Continue)
}
