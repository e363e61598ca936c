//! COMPACT (our extension, not in 0-db): online compaction of the attached namespace.

use super::args::overflow;
use super::{fail, CmdResult, Ctx, Flow};
use bytes::Bytes;
use std::fmt::Write;

/// Segments at least this dead are compacted when no fraction is given.
const DEFAULT_MIN_DEAD: f64 = 0.5;

/// `COMPACT [min-dead-fraction]` (admin) → bulk text `key: value` lines: segments emptied,
/// records and bytes moved, bytes freed. Closed segments whose dead share of bytes is at least
/// the fraction (0.0 to 1.0, default 0.5) are emptied; clients keep being served meanwhile.
pub fn compact(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.require_admin()?;
    let min_dead = match args.get(1) {
        None => DEFAULT_MIN_DEAD,
        Some(a) => {
            overflow(a, 32)?;
            match std::str::from_utf8(a)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
            {
                Some(f) if (0.0..=1.0).contains(&f) => f,
                _ => return fail("Invalid argument"),
            }
        }
    };
    if args.len() > 2 {
        return fail("Unexpected arguments");
    }
    let ns = ctx.sess.ns.clone();
    let run = move || ns.compact(min_dead);
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let stats = if multi {
        tokio::task::block_in_place(run)
    } else {
        run()
    }?;
    let mut t = String::new();
    let _ = writeln!(t, "segments_emptied: {}", stats.segments_emptied);
    let _ = writeln!(t, "records_moved: {}", stats.records_moved);
    let _ = writeln!(t, "bytes_moved: {}", stats.bytes_moved);
    let _ = writeln!(t, "bytes_freed: {}", stats.bytes_freed);
    resp::write_bulk(ctx.out, t.as_bytes());
    Ok(Flow::Continue)
}
