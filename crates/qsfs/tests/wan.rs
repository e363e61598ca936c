//! qsfs over emulated wide-area links (wan-rig): every stand-in backend behind its own link
//! with delay, a bandwidth cap and packet loss, one data backend slow. Losing the frontend
//! (kill -9, cache deleted) keeps what was dispersed, and with `fsync = "dispersed"` what
//! was fsync'ed. (Speed over such links is measured by scripts/bench/wan.sh.)

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use wan_rig::Rig;

/// The small profile CI runs: 5 ms each way, 40 MB/s per link, 0.5 % of packets lost.
const PROFILE: &str = "delay=5ms,rate=40MB,loss=0.5%";
/// One data backend: 10x the delay, 1/10 of the rate.
const SLOW: &str = "delay=50ms,rate=4MB,loss=0.5%";

/// The embedded default's stand-ins, run by the test, each behind a link; `linked.toml` is
/// the same configuration naming the links (and starting no stand-ins itself).
struct OverLinks {
    rig: Rig,
    _backends: qsfs::standin::Standins,
}

fn over_links(root: &Path) -> OverLinks {
    // A first run writes the embedded default (keys, ports, stand-in folders).
    Qsfs::start(root, &["--mountpoint", "mnt"], "run0.log").stop(false);
    let path = root.join("qsfs-data/qsfs.toml");
    let config = qsfs::Config::load(&path).unwrap();
    let specs = qsfs::standin::specs(&config).unwrap();
    let backends = qsfs::standin::Standins::start(
        Path::new(BIN),
        &root.join("qsfs-data/backends"),
        &specs,
        config.qsfs.standin_admin_password.as_deref(),
    )
    .unwrap();
    let upstreams: Vec<SocketAddr> = specs
        .iter()
        .map(|s| SocketAddr::from(([127, 0, 0, 1], s.port)))
        .collect();
    let rig = Rig::start(&upstreams, PROFILE.parse().unwrap()).unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (up, link) in upstreams.iter().zip(rig.addresses()) {
        text = text.replace(&format!("\"{up}\""), &format!("\"{link}\""));
    }
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("standin_"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(root.join(LINKED), text).unwrap();
    OverLinks {
        rig,
        _backends: backends,
    }
}

/// The configuration naming the links (written by [`over_links`]).
const LINKED: &str = "linked.toml";

#[test]
fn over_links_a_lost_frontend_keeps_what_was_dispersed_and_fsynced() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let links = over_links(root);
    // Specs list the 4 metadata backends first: link 4 is the first data backend.
    links.rig.link(4).set_profile(SLOW.parse().unwrap());

    let q = Qsfs::start(root, &["--config", LINKED], "run1.log");
    write_files(&q.mount, 0..30, true);
    wait_dispersed(root, LINKED, Duration::from_secs(120));
    let q = lose_and_restore(q, root, LINKED, "restore1.log");
    read_all_exact(&q.mount, 0..30);
    q.stop(false);

    // Strict mode, periodic dispersal off: the last fsync returned, the machine goes.
    make_strict(root, LINKED);
    let q = Qsfs::start(root, &["--config", LINKED], "run2.log");
    write_files(&q.mount, 30..40, true);
    let q = lose_and_restore(q, root, LINKED, "restore2.log");
    read_all_exact(&q.mount, 0..40);
    q.stop(false);
}
