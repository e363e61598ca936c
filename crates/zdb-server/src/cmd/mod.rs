//! Commands: the table, the dispatcher and the reply context. One module per command (or small
//! family); each checks its arguments in 0-db's order, calls the engine and writes its reply.
//!
//! Handlers are synchronous: they run inline on the connection's task (or inside
//! `block_in_place` under `--sync`). Only WAIT needs to wait, which it asks for with
//! [`Flow::Wait`]; the connection loop does the waiting.

mod args;
mod auth;
mod compact;
mod data;
mod dbsize;
mod del;
mod flush;
mod get;
mod history;
mod hooks;
mod index;
mod info;
mod keys;
mod kscan;
mod mget;
mod nsadmin;
mod nsinfo;
mod nsset;
mod ping;
mod scan;
mod select;
mod set;
pub(crate) use auth::is_auth;
pub(crate) use set::{is_plain_set, set_run};
mod stop;
mod wait;

use crate::session::Session;
use crate::state::ServerState;
use crate::stats::BatchStats;
use bytes::{Bytes, BytesMut};
use std::borrow::Cow;
use std::time::Duration;

/// What the connection loop does after a command.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Go on with the next request.
    Continue,
    /// Flush the replies and close the connection.
    Close,
    /// Block this connection until another client runs a command on the same namespace.
    Wait(WaitFor),
}

/// A WAIT request: which command (None = any) and for how long.
#[derive(Debug)]
pub(crate) struct WaitFor {
    pub command: Option<&'static str>,
    pub timeout: Duration,
}

/// A failed command: the error text sent as `-text`.
#[derive(Debug)]
pub(crate) enum Fail {
    Text(Cow<'static, str>),
    /// `-Permission denied`, also counted as an unauthorized command.
    Denied,
}

pub(crate) type CmdResult = Result<Flow, Fail>;

/// Shorthand for a failed command with a fixed text.
pub(crate) fn fail<T>(text: &'static str) -> Result<T, Fail> {
    Err(Fail::Text(Cow::Borrowed(text)))
}

impl From<zdb_engine::Error> for Fail {
    fn from(e: zdb_engine::Error) -> Fail {
        use zdb_engine::Error as E;
        match e {
            E::Io { .. } | E::Corrupt { .. } | E::MissingSegment { .. } | E::Offloaded { .. } => {
                tracing::error!(error = %e, "engine failure");
                Fail::Text(Cow::Borrowed("Internal Error"))
            }
            other => Fail::Text(Cow::Owned(other.to_string())),
        }
    }
}

/// Everything a handler may touch.
pub(crate) struct Ctx<'a> {
    pub srv: &'a ServerState,
    pub sess: &'a mut Session,
    pub out: &'a mut BytesMut,
}

impl Ctx<'_> {
    /// `+OK`.
    pub fn ok(&mut self) -> CmdResult {
        self.status("OK")
    }

    /// `+text`.
    pub fn status(&mut self, text: &str) -> CmdResult {
        resp::write_simple(self.out, text);
        Ok(Flow::Continue)
    }

    /// `$len payload`.
    pub fn bulk(&mut self, b: &[u8]) -> CmdResult {
        resp::write_bulk(self.out, b);
        Ok(Flow::Continue)
    }

    /// `$-1`.
    pub fn nil(&mut self) -> CmdResult {
        resp::write_null(self.out);
        Ok(Flow::Continue)
    }

    /// `:n`.
    pub fn int(&mut self, n: i64) -> CmdResult {
        resp::write_integer(self.out, n);
        Ok(Flow::Continue)
    }

    /// Fails with `-Permission denied` unless the client is admin.
    pub fn require_admin(&self) -> Result<(), Fail> {
        if self.sess.admin {
            Ok(())
        } else {
            Err(Fail::Denied)
        }
    }

    /// Fails with the frozen error when the attached namespace is frozen.
    pub fn require_not_frozen(&self) -> Result<(), Fail> {
        if self.sess.ns.is_frozen() {
            return Err(zdb_engine::Error::Frozen.into());
        }
        Ok(())
    }
}

type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// One command table entry.
pub(crate) struct Spec {
    /// Upper-case name, as WAIT reports it.
    pub name: &'static str,
    run: Handler,
}

const fn spec(name: &'static str, run: Handler) -> Spec {
    Spec { name, run }
}

/// The command table, in 0-db's order (MIRROR/MASTER are not supported).
static TABLE: &[Spec] = &[
    spec("*", invalid),
    spec("WAIT", wait::wait),
    spec("PING", ping::ping),
    spec("TIME", ping::time),
    spec("AUTH", auth::auth),
    spec("HOOKS", hooks::hooks),
    spec("INDEX", index::index),
    spec("DATA", data::data),
    spec("SET", set::set),
    spec("SETX", set::set),
    spec("GET", get::get),
    spec("MGET", mget::mget),
    spec("DEL", del::del),
    spec("EXISTS", keys::exists),
    spec("CHECK", keys::check),
    spec("SCAN", scan::scan),
    spec("SCANX", scan::scan),
    spec("RSCAN", scan::rscan),
    spec("KSCAN", kscan::kscan),
    spec("HISTORY", history::history),
    spec("KEYCUR", keys::keycur),
    spec("LENGTH", keys::length),
    spec("KEYTIME", keys::keytime),
    spec("INFO", info::info),
    spec("STOP", stop::stop),
    spec("DBSIZE", dbsize::dbsize),
    spec("NSNEW", nsadmin::nsnew),
    spec("NSDEL", nsadmin::nsdel),
    spec("NSLIST", nsadmin::nslist),
    spec("NSSET", nsset::nsset),
    spec("NSINFO", nsinfo::nsinfo),
    spec("NSJUMP", nsadmin::nsjump),
    spec("SELECT", select::select),
    spec("RELOAD", nsadmin::reload),
    spec("FLUSH", flush::flush),
    // Our extensions.
    spec("COMPACT", compact::compact),
];

fn invalid(_: &mut Ctx<'_>, _: &[Bytes]) -> CmdResult {
    fail("This is not a valid command")
}

/// The table entry named `name` (case-insensitive, exact match); an empty name is `*`.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.is_empty() {
        return TABLE.first();
    }
    TABLE
        .iter()
        .find(|s| s.name.len() == name.len() && s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// A session whose namespace was deleted under it (NSDEL from another connection) gets
/// one error and is closed, whatever it asks.
pub(crate) fn refuse_on_deleted_namespace(sess: &Session, out: &mut BytesMut) -> Option<Flow> {
    if !sess.ns.is_deleted() {
        return None;
    }
    resp::write_error(out, &zdb_engine::Error::NamespaceGone.to_string());
    Some(Flow::Close)
}

/// Execute one request (`args` non-empty), appending its reply to `out`.
pub(crate) fn execute(
    srv: &ServerState,
    sess: &mut Session,
    args: &[Bytes],
    out: &mut BytesMut,
    batch: &mut BatchStats,
) -> Flow {
    if let Some(closed) = refuse_on_deleted_namespace(sess, out) {
        return closed;
    }
    let Some(spec) = args.first().and_then(|name| lookup(name)) else {
        batch.failed += 1;
        resp::write_error(out, "Command not supported");
        return Flow::Continue;
    };
    batch.executed += 1;
    let mut ctx = Ctx { srv, sess, out };
    let flow = match (spec.run)(&mut ctx, args) {
        Ok(flow) => flow,
        Err(Fail::Text(text)) => {
            resp::write_error(ctx.out, &text);
            Flow::Continue
        }
        Err(Fail::Denied) => {
            batch.unauthorized += 1;
            resp::write_error(ctx.out, "Permission denied");
            Flow::Continue
        }
    };
    // Waiters of the namespace the client is on once the command ran (SELECT moves it).
    if !matches!(flow, Flow::Wait(_)) {
        srv.waiters
            .notify(ctx.sess.ns.name(), ctx.sess.id, spec.name);
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_exact_and_case_insensitive() {
        assert_eq!(lookup(b"set").map(|s| s.name), Some("SET"));
        assert_eq!(lookup(b"SeTx").map(|s| s.name), Some("SETX"));
        assert!(lookup(b"S").is_none());
        assert!(lookup(b"SETXX").is_none());
        assert_eq!(lookup(b"").map(|s| s.name), Some("*"));
        assert!(lookup(b"COMMAND").is_none());
    }
}
