//! FLUSH: empty the attached namespace; only private, password-protected namespaces.

use super::{fail, CmdResult, Ctx, Fail};
use bytes::Bytes;
use zdb_engine::Error;

/// `FLUSH` → `+OK`.
pub fn flush(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let settings = ctx.sess.ns.settings();
    if settings.public || ctx.srv.ns_password(&ctx.sess.ns).is_none() {
        return fail("Flushing public namespace denied");
    }
    match ctx.sess.ns.flush() {
        Ok(()) => ctx.ok(),
        Err(e @ (Error::Locked | Error::Frozen | Error::NamespaceGone)) => Err(Fail::from(e)),
        Err(e) => {
            tracing::error!(error = %e, "FLUSH failed");
            fail("Internal Server Error")
        }
    }
}
