//! Single-key metadata commands: EXISTS, CHECK, LENGTH, KEYTIME, KEYCUR.

use super::args::{exact, read_key};
use super::{fail, CmdResult, Ctx, Fail};
use bytes::Bytes;
use zdb_engine::Error;

/// `EXISTS key` → `:1` / `:0` (deleted → `:0`).
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    let found = ctx.sess.ns.meta(key)?.is_some();
    ctx.int(i64::from(found))
}

/// `CHECK key` → `:1` checksum ok, `:0` mismatch, `:-1` read error, `$-1` absent.
pub fn check(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    match ctx.sess.ns.check(key) {
        Ok(None) => ctx.nil(),
        Ok(Some(ok)) => ctx.int(i64::from(ok)),
        Err(e @ (Error::Frozen | Error::NamespaceGone)) => Err(Fail::from(e)),
        Err(e) => {
            tracing::warn!(error = %e, "CHECK read failure");
            ctx.int(-1)
        }
    }
}

/// `LENGTH key` → `:payload length` or `$-1`.
pub fn length(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    match ctx.sess.ns.meta(key)? {
        Some(m) => ctx.int(i64::from(m.payload_len)),
        None => ctx.nil(),
    }
}

/// `KEYTIME key` → `:unix time of the last write` or `$-1`.
pub fn keytime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    match ctx.sess.ns.meta(key)? {
        Some(m) => ctx.int(i64::from(m.timestamp)),
        None => ctx.nil(),
    }
}

/// `KEYCUR key` → bulk cursor of the key's current entry (for SCAN/RSCAN).
pub fn keycur(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    ctx.require_not_frozen()?;
    match ctx.sess.ns.key_cursor(&args[1])? {
        Some(c) => ctx.bulk(&c.encode()),
        None => fail("Key not found"),
    }
}
