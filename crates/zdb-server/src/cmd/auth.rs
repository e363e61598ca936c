//! AUTH: admin login, plain or with a SECURE challenge (nonce, SHA-1 of `nonce:password`).

use super::args::{exact, is_prefix_ci};
use super::{fail, CmdResult, Ctx};
use bytes::Bytes;

pub use stack_abi::zdb::secure_hash;

/// Whether a request is AUTH (the only command served in the admin room, `admission.rs`).
pub(crate) fn is_auth(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"AUTH"))
}

/// `AUTH password` / `AUTH SECURE CHALLENGE` / `AUTH SECURE hash`.
pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => plain(ctx, args),
        3 => secure(ctx, args),
        _ => fail("Unexpected arguments"),
    }
}

fn plain(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(admin) = ctx.srv.config.admin.as_deref() else {
        return fail("Authentication disabled");
    };
    exact(args, 2)?;
    if args[1].len() > 128 {
        return fail("Password too long");
    }
    if args[1] != admin.as_bytes() {
        return fail("Access denied");
    }
    ctx.sess.admin = true;
    ctx.ok()
}

fn secure(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 3)?;
    if !is_prefix_ci(&args[1], "SECURE") {
        return fail("Only SECURE extra method supported");
    }
    if is_prefix_ci(&args[2], "CHALLENGE") {
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        ctx.sess.nonce = Some(nonce.clone());
        return ctx.status(&nonce);
    }
    let Some(admin) = ctx.srv.config.admin.as_deref() else {
        return fail("Authentication disabled");
    };
    let Some(nonce) = ctx.sess.nonce.as_deref() else {
        return fail("No CHALLENGE requested, secure authentication not available");
    };
    if args[2].len() != 40 {
        return fail("Invalid hash length");
    }
    let ok = args[2] == secure_hash(nonce, admin).as_bytes();
    ctx.sess.nonce = None;
    if !ok {
        return fail("Access denied");
    }
    ctx.sess.admin = true;
    ctx.ok()
}
