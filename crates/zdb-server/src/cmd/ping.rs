//! PING and TIME: no checks, extra arguments ignored.

use super::{CmdResult, Ctx};
use bytes::Bytes;

/// `PING` → `+PONG`.
pub fn ping(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.status("PONG")
}

/// `TIME` → `*2` of bulk unix seconds and microseconds (not zero-padded).
pub fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    resp::write_array_header(ctx.out, 2);
    resp::write_bulk(ctx.out, now.as_secs().to_string().as_bytes());
    ctx.bulk(now.subsec_micros().to_string().as_bytes())
}
