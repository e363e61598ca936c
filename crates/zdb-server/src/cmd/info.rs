//! INFO: server identity and counters as `key: value` lines, in 0-db's order.

use super::{CmdResult, Ctx};
use crate::stats::Stats;
use bytes::Bytes;
use std::fmt::Write;
use zdb_engine::IoCounters;

const MB: f64 = 1024.0 * 1024.0;

/// `INFO` → bulk text (arguments ignored).
pub fn info(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let srv = ctx.srv;
    let st = &srv.stats;
    let version = crate::ZDB_COMPAT_VERSION;
    let mut t = String::with_capacity(1024);
    let _ = writeln!(t, "# server");
    let _ = writeln!(t, "server_name: 0-db (zdb)");
    let _ = writeln!(
        t,
        "server_revision: {version} (qsfs-rs {})",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        t,
        "engine_revision: {version} (qsfs-rs {})",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(t, "instance_id: {}", srv.instance_id);
    let _ = writeln!(t, "boot_time: {}", srv.boot_time);
    let _ = writeln!(t, "uptime: {}", srv.boot_instant.elapsed().as_secs());
    let _ = writeln!(t, "\n# clients");
    let _ = writeln!(t, "clients_lifetime: {}", Stats::get(&st.clients_lifetime));
    let _ = writeln!(t, "\n# internals");
    let _ = writeln!(t, "sequential_key_size: 8");
    let _ = writeln!(t, "data_version: 3");
    let _ = writeln!(t, "index_version: 4");
    let _ = writeln!(t, "\n# stats");
    let _ = writeln!(
        t,
        "commands_executed: {}",
        Stats::get(&st.commands_executed)
    );
    let _ = writeln!(t, "commands_failed: {}", Stats::get(&st.commands_failed));
    let _ = writeln!(
        t,
        "commands_unauthorized: {}",
        Stats::get(&st.commands_unauthorized)
    );
    let (mut data, mut index) = (IoCounters::default(), IoCounters::default());
    for ns in ctx
        .srv
        .engine
        .list()
        .iter()
        .filter_map(|n| ctx.srv.engine.namespace(n))
    {
        let i = ns.info();
        data.add(&i.data_io);
        index.add(&i.index_io);
    }
    for (kind, io) in [("index", &index), ("data", &data)] {
        let _ = writeln!(t, "{kind}_disk_read_failed: {}", io.read_errors);
        let _ = writeln!(t, "{kind}_disk_write_failed: {}", io.write_errors);
    }
    for (name, bytes) in [
        ("index_disk_read", index.read_bytes),
        ("index_disk_write", index.written_bytes),
        ("data_disk_read", data.read_bytes),
        ("data_disk_write", data.written_bytes),
        ("network_rx", Stats::get(&st.network_rx)),
        ("network_tx", Stats::get(&st.network_tx)),
    ] {
        let _ = writeln!(t, "{name}_bytes: {bytes}");
        let _ = writeln!(t, "{name}_mb: {:.2}", bytes as f64 / MB);
    }
    ctx.bulk(t.as_bytes())
}
