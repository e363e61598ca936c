//! DATA RAW: one raw data record by segment id and offset.

use super::args::{atoll, min, overflow};
use super::{fail, CmdResult, Ctx, Flow};
use bytes::Bytes;
use zdb_engine::Error;

/// `DATA RAW fileid offset` (admin) → `*6` [key, `:previous offset`, bulk `0x%08x` crc,
/// `:flags`, `:timestamp`, payload or `$-1`].
pub fn data(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    min(args, 2)?;
    overflow(&args[1], 256)?;
    if !args[1].eq_ignore_ascii_case(b"RAW") {
        return fail("Unknown DATA subcommand");
    }
    min(args, 4)?;
    let (Ok(seg), Ok(off)) = (
        u32::try_from(atoll(&args[2])),
        u32::try_from(atoll(&args[3])),
    ) else {
        return fail("Invalid Request");
    };
    let info = ctx.sess.ns.info();
    match std::fs::metadata(info.data_dir.join(format!("d{seg}"))) {
        Ok(m) if u64::from(off) >= m.len() => return fail("EOF"),
        Ok(_) => {}
        Err(_) => return fail("Invalid Request"),
    }
    let (h, key, payload) = match ctx.sess.ns.raw_record(seg, off) {
        Ok(r) => r,
        Err(Error::Io { .. } | Error::MissingSegment { .. }) => return fail("Invalid Request"),
        Err(e) => {
            tracing::warn!(error = %e, "DATA RAW");
            return fail("Unexpected Internal Error");
        }
    };
    if h.is_deleted() {
        return fail("Unexpected Internal Error");
    }
    resp::write_array_header(ctx.out, 6);
    resp::write_bulk(ctx.out, &key);
    resp::write_integer(ctx.out, h.prev().map_or(0, |(_, off)| i64::from(off)));
    resp::write_bulk(ctx.out, format!("0x{:08x}", h.payload_crc).as_bytes());
    resp::write_integer(ctx.out, i64::from(h.flags));
    resp::write_integer(ctx.out, i64::from(h.timestamp));
    if payload.is_empty() {
        resp::write_null(ctx.out);
    } else {
        resp::write_bulk(ctx.out, &payload);
    }
    Ok(Flow::Continue)
}
