//! SCAN / SCANX / RSCAN: walk the namespace in write order (or backwards), a time-bounded
//! batch per call.

use super::{fail, CmdResult, Ctx, Fail, Flow};
use bytes::Bytes;
use std::time::{Duration, Instant};
use zdb_engine::{Cursor, Direction, Error, ScanItem};

/// Time budget of one call (0-db: 2 ms).
const BUDGET: Duration = Duration::from_millis(2);
/// Most entries in one reply.
const MAX_ENTRIES: usize = 1000;
/// Entries asked of the engine at a time.
const STEP: usize = 64;

/// `SCAN [cursor]` (alias SCANX): oldest → newest.
pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    walk(ctx, args, Direction::Forward)
}

/// `RSCAN [cursor]`: newest → oldest.
pub fn rscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    walk(ctx, args, Direction::Backward)
}

fn walk(ctx: &mut Ctx<'_>, args: &[Bytes], dir: Direction) -> CmdResult {
    let mut from = match args.get(1) {
        None => None,
        Some(raw) => match Cursor::decode(raw) {
            Some(c) => Some(c),
            None => return fail("Invalid key format"),
        },
    };
    let started = Instant::now();
    let mut items: Vec<ScanItem> = Vec::new();
    loop {
        let want = STEP.min(MAX_ENTRIES - items.len());
        match ctx.sess.ns.scan(from, dir, want) {
            Ok(page) => {
                from = Some(page.next);
                items.extend(page.items);
            }
            Err(Error::NoMoreData) => break,
            Err(e) => return Err(Fail::from(e)),
        }
        if items.len() >= MAX_ENTRIES || started.elapsed() >= BUDGET {
            break;
        }
    }
    let Some(last) = items.last() else {
        return fail("No more data");
    };
    resp::write_array_header(ctx.out, 2);
    resp::write_bulk(ctx.out, &last.cursor.encode());
    resp::write_array_header(ctx.out, items.len());
    for it in &items {
        resp::write_array_header(ctx.out, 3);
        resp::write_bulk(ctx.out, &it.key);
        resp::write_integer(ctx.out, i64::from(it.payload_len));
        resp::write_integer(ctx.out, i64::from(it.timestamp));
    }
    Ok(Flow::Continue)
}
