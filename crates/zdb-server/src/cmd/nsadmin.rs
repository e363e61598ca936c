//! Namespace lifecycle: NSNEW, NSDEL, NSLIST, NSJUMP, RELOAD.

use super::args::{exact, ns_str, nsname};
use super::{fail, CmdResult, Ctx, Flow};
use bytes::Bytes;
use zdb_engine::{Engine, Error, DEFAULT_NAMESPACE};

/// `NSNEW name` (admin) → `+OK`.
pub fn nsnew(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    exact(args, 2)?;
    let raw = nsname(&args[1])?;
    let Some(name) =
        ns_str(raw).filter(|n| *n != DEFAULT_NAMESPACE && Engine::validate_name(n).is_ok())
    else {
        return fail("This name is not allowed");
    };
    match ctx.srv.engine.create(name) {
        Ok(_) => ctx.ok(),
        Err(Error::NamespaceExists) => fail("This namespace is not available"),
        Err(e) => {
            tracing::error!(namespace = name, error = %e, "NSNEW failed");
            fail("Could not create namespace")
        }
    }
}

/// `NSDEL name` (admin) → `+OK`; clients still attached to it are disconnected on their next
/// command.
pub fn nsdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    exact(args, 2)?;
    let raw = nsname(&args[1])?;
    if raw == DEFAULT_NAMESPACE.as_bytes() {
        return fail("Cannot remove default namespace");
    }
    let Some(name) = ns_str(raw).filter(|n| ctx.srv.engine.namespace(n).is_some()) else {
        return fail("This namespace doesn't exists");
    };
    if ctx.sess.ns.name() == name {
        return fail("Cannot remove namespace you're currently using.");
    }
    match ctx.srv.engine.delete(name) {
        Ok(()) => ctx.ok(),
        Err(Error::NamespaceNotFound) => fail("This namespace doesn't exists"),
        Err(e) => {
            tracing::error!(namespace = name, error = %e, "NSDEL failed");
            fail("Could not delete this namespace")
        }
    }
}

/// `NSLIST` → `*N` names, `default` first.
pub fn nslist(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let mut names = ctx.srv.engine.list();
    if let Some(i) = names.iter().position(|n| n == DEFAULT_NAMESPACE) {
        let d = names.remove(i);
        names.insert(0, d);
    }
    resp::write_array_header(ctx.out, names.len());
    for n in &names {
        resp::write_bulk(ctx.out, n.as_bytes());
    }
    Ok(Flow::Continue)
}

/// `NSJUMP` (admin) → `+OK` once the attached namespace opened its next segment.
pub fn nsjump(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    ctx.sess.ns.jump()?;
    ctx.ok()
}

/// `RELOAD name` (admin) → `+OK` once the namespace was reloaded from disk.
pub fn reload(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    exact(args, 2)?;
    let raw = nsname(&args[1])?;
    let Some(name) = ns_str(raw).filter(|n| ctx.srv.engine.namespace(n).is_some()) else {
        return fail("Namespace not found");
    };
    ctx.srv.engine.reload(name)?;
    ctx.ok()
}
