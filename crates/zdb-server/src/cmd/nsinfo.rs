//! NSINFO: a namespace's settings and statistics as `key: value` lines, in 0-db's order.

use super::args::{exact, ns_str, nsname};
use super::{fail, CmdResult, Ctx};
use crate::state::ServerState;
use bytes::Bytes;
use stack_abi::zdb::nsinfo;
use std::fmt::Write;
use std::path::Path;
use zdb_engine::{Mode, Namespace};

const MB: f64 = 1024.0 * 1024.0;

/// `NSINFO name` → bulk text.
pub fn nsinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let raw = nsname(&args[1])?;
    let Some(ns) = ns_str(raw).and_then(|n| ctx.srv.engine.namespace(n)) else {
        return fail("Namespace not found");
    };
    let text = render(ctx.srv, &ns, ctx.sess.admin);
    ctx.bulk(text.as_bytes())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    service_kit::sys::space(dir).ok().map(|s| s.available)
}

fn render(srv: &ServerState, ns: &Namespace, admin: bool) -> String {
    let info = ns.info();
    let s = &info.settings;
    let data_size = info.payload_bytes;
    let next_id = u64::from(info.next_id).swap_bytes();
    let mut t = String::with_capacity(1024);
    let _ = writeln!(t, "# namespace");
    let _ = writeln!(t, "{}: {}", nsinfo::NAME, info.name);
    let _ = writeln!(t, "{}: {}", nsinfo::ENTRIES, info.entries);
    let _ = writeln!(t, "{}: {}", nsinfo::PUBLIC, yes(s.public));
    let _ = writeln!(t, "{}: {}", nsinfo::WORM, yes(s.worm));
    let _ = writeln!(t, "{}: {}", nsinfo::LOCKED, yes(s.locked || s.frozen));
    let _ = writeln!(
        t,
        "{}: {}",
        nsinfo::PASSWORD,
        yes(srv.ns_password(ns).is_some())
    );
    let _ = writeln!(t, "{}: {data_size}", nsinfo::DATA_SIZE_BYTES);
    let _ = writeln!(t, "data_size_mb: {:.2}", data_size as f64 / MB);
    let _ = writeln!(t, "{}: {}", nsinfo::DATA_LIMITS_BYTES, s.maxsize);
    let _ = writeln!(t, "{}: {}", nsinfo::INDEX_SIZE_BYTES, info.index_bytes);
    let _ = writeln!(t, "index_size_kb: {:.2}", info.index_bytes as f64 / 1024.0);
    let _ = writeln!(t, "next_internal_id: 0x{next_id:08x}");
    let _ = writeln!(
        t,
        "{}: {}",
        nsinfo::MODE,
        if s.mode == Mode::Seq {
            nsinfo::MODE_SEQ
        } else {
            nsinfo::MODE_USER
        }
    );
    for (kind, io) in [("index", &info.index_io), ("data", &info.data_io)] {
        let _ = writeln!(
            t,
            "stats_{kind}_io_errors: {}",
            io.read_errors + io.write_errors
        );
        let _ = writeln!(t, "stats_{kind}_io_error_last: {}", io.last_error);
        let _ = writeln!(t, "stats_{kind}_faults: {}", io.faults);
    }
    if s.maxsize > 0 {
        let _ = writeln!(
            t,
            "space_available: {}",
            s.maxsize.saturating_sub(data_size)
        );
    }
    for (kind, dir) in [("index", &info.index_dir), ("data", &info.data_dir)] {
        if let Some(free) = free_space(dir) {
            let _ = writeln!(t, "{kind}_disk_freespace_bytes: {free}");
            let _ = writeln!(t, "{kind}_disk_freespace_mb: {:.2}", free as f64 / MB);
        }
    }
    if admin {
        let cfg = &srv.config.engine;
        let (data_root, index_root) = (cfg.data_dir.display(), cfg.index_dir.display());
        let (name, seg) = (&info.name, info.current_segment);
        let _ = writeln!(t, "data_path: {data_root}/{name}");
        let _ = writeln!(t, "data_active: {data_root}/{name}/d{seg}");
        let _ = writeln!(t, "index_path: {index_root}/{name}");
        let _ = writeln!(t, "index_active: {index_root}/{name}/i{seg}");
        let _ = writeln!(t, "data_current_id: {seg}");
        let _ = writeln!(t, "data_current_offset: {}", info.current_offset);
    }
    t
}
