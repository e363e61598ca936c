//! SET / SETX: store a value (user mode: under the key; seq mode: append with an empty key or
//! update an existing id).

use super::args::{atoll, exact_empty_ok, MAX_KEY};
use super::{fail, CmdResult, Ctx, Fail, Flow};
use crate::session::Session;
use crate::state::ServerState;
use crate::stats::BatchStats;
use bytes::{Bytes, BytesMut};
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

/// Whether `args` is a plain `SET key value` (or SETX) that may join a batched run.
pub(crate) fn is_plain_set(args: &[Bytes]) -> bool {
    args.len() == 3
        && (args[0].eq_ignore_ascii_case(b"SET") || args[0].eq_ignore_ascii_case(b"SETX"))
}

/// Execute a run of consecutive plain SETs from one connection as one engine batch
/// (`Namespace::set_many`): the same checks, replies and order as one by one, with one hold of
/// the namespace lock and two system calls for the whole run.
pub(crate) fn set_run(
    srv: &ServerState,
    sess: &mut Session,
    run: &[Vec<Bytes>],
    out: &mut BytesMut,
    batch: &mut BatchStats,
) -> Flow {
    if let Some(closed) = super::refuse_on_deleted_namespace(sess, out) {
        return closed;
    }
    // Per-request checks first; the survivors go to the engine together.
    let checks: Vec<Result<(), &'static str>> = run
        .iter()
        .map(|args| {
            if args[1].len() > MAX_KEY {
                Err("Key too large")
            } else if !sess.writable {
                Err("Namespace is in read-only mode")
            } else {
                Ok(())
            }
        })
        .collect();
    let items: Vec<(&[u8], &[u8])> = run
        .iter()
        .zip(&checks)
        .filter(|(_, c)| c.is_ok())
        .map(|(args, _)| (&args[1][..], &args[2][..]))
        .collect();
    let mut results = sess.ns.set_many(&items, None).into_iter();
    for (args, check) in run.iter().zip(checks) {
        batch.executed += 1;
        let reply = check.map_err(|t| Fail::Text(t.into())).and_then(|()| {
            results
                .next()
                .expect("one result per item")
                .map_err(Fail::from)
        });
        match reply {
            Ok(SetOutcome::Written(k)) => resp::write_bulk(out, &k),
            Ok(SetOutcome::Unchanged) => resp::write_null(out),
            Err(Fail::Text(text)) => resp::write_error(out, &text),
            Err(Fail::Denied) => resp::write_error(out, "Permission denied"),
        }
        let name = if args[0].eq_ignore_ascii_case(b"SETX") {
            "SETX"
        } else {
            "SET"
        };
        srv.waiters.notify(sess.ns.name(), sess.id, name);
    }
    Flow::Continue
}
