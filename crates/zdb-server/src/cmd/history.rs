//! HISTORY: walk back through the versions of a key.

use super::{fail, CmdResult, Ctx, Fail, Flow};
use bytes::Bytes;
use zdb_engine::{Cursor, Error};

/// `HISTORY key [cursor]` → `*3` [bulk cursor of the previous version or `$-1`, bulk decimal
/// timestamp, bulk payload].
pub fn history(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() != 2 && args.len() != 3 {
        return fail("Invalid arguments");
    }
    ctx.require_not_frozen()?;
    let key = &args[1];
    let at = match args.get(2) {
        None => {
            if ctx.sess.ns.meta(key)?.is_none() {
                return fail("Key not found");
            }
            None
        }
        Some(raw) => {
            if raw.len() != Cursor::LEN {
                return fail("Invalid arguments");
            }
            if raw.iter().all(|&b| b == 0) {
                return fail("No more history");
            }
            match Cursor::decode(raw) {
                Some(c) => Some(c),
                None => return fail("Invalid arguments (index query)"),
            }
        }
    };
    let item = match ctx.sess.ns.history(key, at) {
        Ok(Some(item)) => item,
        Ok(None) => return fail("Key not found"),
        Err(Error::InvalidKey) => return fail("Invalid arguments (invalid key)"),
        Err(e) => return Err(Fail::from(e)),
    };
    resp::write_array_header(ctx.out, 3);
    match item.prev {
        Some(c) => resp::write_bulk(ctx.out, &c.encode()),
        None => resp::write_null(ctx.out),
    }
    resp::write_bulk(ctx.out, item.timestamp.to_string().as_bytes());
    resp::write_bulk(ctx.out, &item.payload);
    Ok(Flow::Continue)
}
