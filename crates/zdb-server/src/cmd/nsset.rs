//! NSSET: change one namespace property (persisted in its descriptor by the engine).

use super::args::{atoll, exact, ns_str, nsname, overflow};
use super::{fail, CmdResult, Ctx, Fail};
use bytes::Bytes;
use zdb_engine::{Error, Event, Mode, Namespace, SettingChange, DEFAULT_NAMESPACE};

/// `NSSET name property value` (admin) → `+OK`.
pub fn nsset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    exact(args, 4)?;
    let raw = nsname(&args[1])?;
    overflow(&args[2], 256)?;
    overflow(&args[3], 63)?;
    let Some(ns) = ns_str(raw).and_then(|n| ctx.srv.engine.namespace(n)) else {
        return fail("Namespace not found");
    };
    let (prop, value) = (&args[2][..], &args[3][..]);
    let is_default = ns.name() == DEFAULT_NAMESPACE;
    let one = value.first() == Some(&b'1');
    match prop {
        b"mode" => set_mode(ctx, &ns, value)?,
        b"lock" => {
            apply(&ns, SettingChange::Freeze(false))?;
            apply(&ns, SettingChange::Lock(one))?;
        }
        b"freeze" => {
            apply(&ns, SettingChange::Lock(false))?;
            apply(&ns, SettingChange::Freeze(one))?;
        }
        _ if is_default => return fail("Cannot update default namespace"),
        b"maxsize" => apply(
            &ns,
            SettingChange::MaxSize(u64::try_from(atoll(value)).unwrap_or(0)),
        )?,
        b"password" => {
            let pw = match value {
                b"*" => None,
                v => match std::str::from_utf8(v) {
                    Ok(s) => Some(s.to_string()),
                    Err(_) => return fail("Invalid argument"),
                },
            };
            apply(&ns, SettingChange::Password(pw))?;
        }
        b"public" => apply(&ns, SettingChange::Public(one))?,
        b"worm" => apply(&ns, SettingChange::Worm(one))?,
        _ => return fail("Invalid property"),
    }
    let _ = ctx.srv.engine.events().emit(&Event::NamespaceUpdated {
        namespace: ns.name().to_string(),
    });
    ctx.ok()
}

fn set_mode(ctx: &Ctx<'_>, ns: &Namespace, value: &[u8]) -> Result<(), Fail> {
    if ctx.srv.config.engine.mode.is_some() {
        return fail("This server instance is configured to use a single runtime mode");
    }
    let mode = match value {
        b"user" => Mode::User,
        b"seq" => Mode::Seq,
        _ => return fail("Invalid property value (expected: user, seq)"),
    };
    match ns.change_setting(SettingChange::Mode(mode)) {
        Ok(()) => Ok(()),
        Err(Error::NamespaceNotEmpty) => fail("Cannot change mode of used namespace"),
        Err(e) => Err(e.into()),
    }
}

fn apply(ns: &Namespace, change: SettingChange) -> Result<(), Fail> {
    ns.change_setting(change).map_err(Fail::from)
}
