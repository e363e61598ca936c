//! SELECT: attach the connection to a namespace, with a plain or SECURE password.

use super::args::{is_prefix_ci, ns_str, nsname};
use super::auth::secure_hash;
use super::{fail, CmdResult, Ctx};
use bytes::Bytes;

/// `SELECT name [password]` / `SELECT name SECURE hash` → `+OK`.
pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() < 2 {
        return fail("Invalid argument");
    }
    let raw = nsname(&args[1])?;
    let Some(ns) = ns_str(raw).and_then(|n| ctx.srv.engine.namespace(n)) else {
        return fail("Namespace not found");
    };
    let Some(password) = ctx.srv.ns_password(&ns) else {
        ctx.sess.attach(ns, true);
        return ctx.ok();
    };
    if args.len() == 2 {
        if !ns.settings().public {
            return fail("Namespace protected and private");
        }
        ctx.sess.attach(ns, false);
        return ctx.ok();
    }
    if args.len() > 4 {
        return fail("Too many arguments");
    }
    if args.len() == 3 {
        if args[2].len() > 255 {
            return fail("Password too long");
        }
        if args[2] != password.as_bytes() {
            return fail("Access denied");
        }
    } else {
        if !is_prefix_ci(&args[2], "SECURE") {
            return fail("Only SECURE extra method supported");
        }
        let Some(nonce) = ctx.sess.nonce.as_deref() else {
            return fail("No CHALLENGE requested, secure authentication not available");
        };
        if args[3].len() != 40 {
            return fail("Invalid hash length");
        }
        if args[3] != secure_hash(nonce, &password).as_bytes() {
            return fail("Access denied");
        }
    }
    ctx.sess.attach(ns, true);
    ctx.ok()
}
