//! SET / SETX: store a value (user mode: under the key; seq mode: append with an empty key or
//! update an existing id).

use super::args::{atoll, exact_empty_ok, MAX_KEY};
use super::{fail, CmdResult, Ctx};
use bytes::Bytes;
use zdb_engine::SetOutcome;

/// `SET key value [timestamp]`: bulk key (seq: 8-byte id), `$-1` when unchanged.
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timestamp = if args.len() == 4 {
        ctx.require_admin()?;
        // atoll semantics, then the 32-bit field of the record (as 0-db).
        Some(atoll(&args[3]) as u32)
    } else {
        exact_empty_ok(args, 3)?;
        None
    };
    let (key, value) = (&args[1], &args[2]);
    if key.len() > MAX_KEY {
        return fail("Key too large");
    }
    if !ctx.sess.writable {
        return fail("Namespace is in read-only mode");
    }
    match ctx.sess.ns.set(key, value, timestamp)? {
        SetOutcome::Written(k) => ctx.bulk(&k),
        SetOutcome::Unchanged => ctx.nil(),
    }
}
