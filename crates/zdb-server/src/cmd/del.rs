//! DEL: append a tombstone for a key.

use super::args::{atoll, exact, read_key};
use super::{fail, CmdResult, Ctx, Fail};
use bytes::Bytes;
use zdb_engine::Error;

/// `DEL key [timestamp]` → `+OK`; the timestamp form (replication) is admin only and, as in
/// 0-db, takes the number leniently (garbage reads as 0).
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timestamp = if args.len() == 3 {
        ctx.require_admin()?;
        exact(args, 3)?;
        Some(atoll(&args[2]) as u32)
    } else {
        exact(args, 2)?;
        None
    };
    let key = read_key(&args[1])?;
    if !ctx.sess.writable {
        return fail("Namespace is in read-only mode");
    }
    match ctx.sess.ns.delete_at(key, timestamp) {
        Ok(()) => ctx.ok(),
        // A seq-mode key that cannot be an id names no entry.
        Err(Error::InvalidKey) => fail("Key not found"),
        Err(e @ (Error::Io { .. } | Error::Corrupt { .. } | Error::MissingSegment { .. })) => {
            tracing::error!(error = %e, "delete failed");
            fail("Cannot delete key (data)")
        }
        Err(e) => Err(Fail::from(e)),
    }
}
