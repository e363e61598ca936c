//! KSCAN: keys of a user-mode namespace starting with a prefix (0-db debug-build behaviour).
//!
//! Walks the whole namespace, so it is meant for debugging and small namespaces.

use super::args::exact;
use super::{fail, CmdResult, Ctx, Fail, Flow};
use bytes::Bytes;
use zdb_engine::{Direction, Error, Mode};

/// Most keys in one reply.
const MAX_KEYS: usize = 10_000;

/// `KSCAN prefix` → `*2` [bulk `0`, `*N` keys]; none → `-No keys match`.
pub fn kscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.sess.ns.mode() == Mode::Seq {
        return fail("Index running mode doesn't support this feature");
    }
    exact(args, 2)?;
    let prefix = &args[1];
    let mut keys = Vec::new();
    let mut from = None;
    while keys.len() < MAX_KEYS {
        match ctx.sess.ns.scan(from, Direction::Forward, 1024) {
            Ok(page) => {
                from = Some(page.next);
                keys.extend(
                    page.items
                        .into_iter()
                        .map(|i| i.key)
                        .filter(|k| k.starts_with(prefix)),
                );
            }
            Err(Error::NoMoreData) => break,
            Err(e) => return Err(Fail::from(e)),
        }
    }
    if keys.is_empty() {
        return fail("No keys match");
    }
    keys.truncate(MAX_KEYS);
    resp::write_array_header(ctx.out, 2);
    resp::write_bulk(ctx.out, b"0");
    resp::write_array_header(ctx.out, keys.len());
    for k in &keys {
        resp::write_bulk(ctx.out, k);
    }
    Ok(Flow::Continue)
}
