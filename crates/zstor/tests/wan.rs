//! zstor over emulated wide-area links (wan-rig): each of the 10 backends behind its own link
//! with delay, a bandwidth cap and packet loss; a partition in the middle of a transfer.
//! Round trips must stay byte-exact. (Speed under these links is measured by
//! scripts/bench/wan.sh, not asserted here.)

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use test_kit::wait;
use wan_rig::{Link, Rig};
use zstor::{Config, Store};

mod common;
use common::{cluster, config_for, sample};

/// The small profile CI runs: 5 ms each way, 40 MB/s per link, 0.5 % of packets lost.
const PROFILE: &str = "delay=5ms,rate=40MB,loss=0.5%";

/// A 4+2 cluster whose 6 data and 4 metadata backends each sit behind a link of [`PROFILE`],
/// and a config naming the links.
struct Linked {
    _zdbs: (Vec<common::TestZdb>, Vec<common::TestZdb>),
    data_rig: Rig,
    meta_rig: Rig,
    config_text: String,
}

async fn behind_links(dir: &Path, key: &str) -> Linked {
    let (data, meta, _) = cluster(dir, 6, key).await;
    let rig = |zs: &[common::TestZdb]| {
        let up: Vec<SocketAddr> = zs.iter().map(|z| z.addr.parse().expect("addr")).collect();
        Rig::start(&up, PROFILE.parse().expect("profile")).expect("rig")
    };
    let (data_rig, meta_rig) = (rig(&data), rig(&meta));
    let text = |rig: &Rig| {
        rig.addresses()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    Linked {
        config_text: config_for(&text(&data_rig), &text(&meta_rig), key),
        _zdbs: (data, meta),
        data_rig,
        meta_rig,
    }
}

impl Linked {
    /// A store over the links, in chunks of 256 KiB (a few MiB make many chunks).
    fn store(&self) -> std::sync::Arc<Store> {
        let config = Config::from_toml(&self.config_text).expect("config");
        std::sync::Arc::new(
            Store::new(config)
                .expect("store")
                .with_chunk_size(256 << 10),
        )
    }
}

/// Wait (bounded) until `link` has carried more than `bytes` toward its backend.
async fn until_carried(link: &Link, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while link.carried().0 <= bytes {
        assert!(
            Instant::now() < deadline,
            "link carried only {:?}",
            link.carried()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_stay_exact_under_delay_loss_and_a_partition() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "42".repeat(32);
    let linked = behind_links(tmp.path(), &key).await;
    let (data_rig, meta_rig) = (&linked.data_rig, &linked.meta_rig);
    let store = linked.store();

    let input = tmp.path().join("input.bin");
    let bytes = sample(&input, 6 << 20, 11);
    let name = Path::new("/virtualroot/wan/input.bin");

    // Store, with data link 2 partitioned for half a second once the upload is under way.
    let before = data_rig.link(2).carried().0;
    let storing = {
        let (store, input) = (store.clone(), input.clone());
        tokio::spawn(async move { store.store_as(&input, name).await })
    };
    until_carried(data_rig.link(2), before + (256 << 10)).await;
    data_rig.link(2).set_partitioned(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    data_rig.link(2).set_partitioned(false);
    let meta_rec = storing
        .await
        .expect("join")
        .expect("store across the partition");
    assert_eq!(meta_rec.checksum, zstor::hash::blake2b_128(&bytes));

    // Retrieve, with a metadata link and a data link partitioned for a moment meanwhile.
    let out = tmp.path().join("out.bin");
    let before = data_rig.link(4).carried().1;
    let retrieving = {
        let (store, out) = (store.clone(), out.clone());
        tokio::spawn(async move { store.retrieve_file(name, &out).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while data_rig.link(4).carried().1 <= before + (64 << 10) && !retrieving.is_finished() {
        assert!(Instant::now() < deadline, "retrieve never used data link 4");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    meta_rig.link(1).set_partitioned(true);
    data_rig.link(4).set_partitioned(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    meta_rig.link(1).set_partitioned(false);
    data_rig.link(4).set_partitioned(false);
    retrieving
        .await
        .expect("join")
        .expect("retrieve across the partition");
    assert!(
        std::fs::read(&out).expect("read out") == bytes,
        "retrieved bytes differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_stored_side_by_side_over_links_is_complete_and_exact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "24".repeat(32);
    let linked = behind_links(tmp.path(), &key).await;
    let root = tmp.path().join("root");
    let config_text = linked.config_text.replace(
        "root = \"/virtualroot\"",
        &format!("root = {:?}", root.display().to_string()),
    );
    let config_path = tmp.path().join("zstor.toml");
    std::fs::write(&config_path, &config_text).expect("write config");

    // 120 small files in nested folders and two of several chunks (they run alone).
    let tree = root.join("tree");
    let mut files = Vec::new();
    for i in 0..120 {
        let p = tree.join(format!("d{}/f{i}", i % 7));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        files.push((p.clone(), sample(&p, 1000 + i * 97, i as u64)));
    }
    for (i, len) in [(0, 9 << 20), (1, (5 << 20) + 3)] {
        let p = tree.join(format!("large{i}"));
        files.push((p.clone(), sample(&p, len, 1000 + i)));
    }
    let dir = tree.to_str().expect("utf8").to_string();
    let cfg = config_path.clone();
    let out =
        tokio::task::spawn_blocking(move || common::run::zstor(&cfg, &["store", "-f", &dir, "-e"]))
            .await
            .expect("join");
    common::run::ok(&out);

    let store = Store::new(Config::from_toml(&config_text).expect("config")).expect("store");
    for (path, bytes) in &files {
        let sum = store.checksum(path).await.expect("stored");
        assert_eq!(sum, zstor::hash::blake2b_128(bytes), "{}", path.display());
    }
    for (path, bytes) in files.iter().step_by(11).chain(files.iter().rev().take(2)) {
        let out = tmp.path().join("out");
        store.retrieve_file(path, &out).await.expect("retrieve");
        assert!(
            std::fs::read(&out).unwrap() == *bytes,
            "{} differs",
            path.display()
        );
    }
}

/// A store over the links with a 6 MiB file in chunks of 256 KiB (24 chunks).
async fn stored_file(
    tmp: &Path,
    linked: &Linked,
) -> (std::sync::Arc<Store>, &'static Path, Vec<u8>) {
    let store = linked.store();
    let input = tmp.join("input.bin");
    let bytes = sample(&input, 6 << 20, 5);
    let name = Path::new("/virtualroot/wan/slow.bin");
    store.store_as(&input, name).await.expect("store");
    (store, name, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_holds_neither_a_retrieve_nor_a_store_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "43".repeat(32);
    let linked = behind_links(tmp.path(), &key).await;
    let (store, name, bytes) = stored_file(tmp.path(), &linked).await;

    // Data shard 0's backend (asked first: data shards decode without Reed-Solomon) becomes
    // 40 times farther and 40 times narrower.
    let slow: wan_rig::Profile = "delay=200ms,rate=1MB".parse().expect("profile");
    for i in 0..6 {
        linked.data_rig.link(i).set_profile(if i == 0 {
            slow
        } else {
            PROFILE.parse().unwrap()
        });
    }
    // A fresh process has measured nothing: the pings a retrieve sends before it reads the
    // metadata find the far backend, and no piece is asked of it while 5 others can serve.
    let fresh = linked.store();
    fresh.probe_data_backends();
    tokio::task::block_in_place(|| {
        wait::until("5 data backends measured", Duration::from_secs(30), || {
            fresh.data_round_trips().iter().flatten().count() >= 5
        });
    });
    let out = tmp.path().join("out.bin");
    fresh.retrieve_file(name, &out).await.expect("retrieve");
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "retrieved bytes differ"
    );
    // Not one piece was asked again: none was asked of the slow backend and waited for.
    assert_eq!(
        fresh.hedged_reads(),
        0,
        "a piece was asked of the slow backend"
    );

    // The store that measured the links before one became slow asks it for chunk 0; the
    // other pieces came back long before, so another backend was asked instead of waiting.
    store.retrieve_file(name, &out).await.expect("retrieve");
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "retrieved bytes differ"
    );
    assert!(store.hedged_reads() > 0, "no piece was asked again");

    // Storing: once the other 5 pieces of a chunk are in, the slow one's upload is given a
    // few times as long; slower still (here 100 KB/s for a 64 KiB piece), its shard is left
    // to repair instead of setting the pace of the whole store.
    linked
        .data_rig
        .link(0)
        .set_profile("delay=200ms,rate=100KB".parse().expect("profile"));
    let input = tmp.path().join("again.bin");
    let again = sample(&input, 6 << 20, 6);
    let name = Path::new("/virtualroot/wan/again.bin");
    let meta = store.store_as(&input, name).await.expect("store");
    let slow_shard = meta
        .shards
        .iter()
        .position(|s| s.backend.address == linked.data_rig.addresses()[0].to_string());
    let missing = meta.missing_pieces();
    assert!(missing > 0, "the slow backend's shard was waited for");
    assert_eq!(
        missing,
        meta.shards[slow_shard.expect("a shard on the slow backend")]
            .keys
            .iter()
            .filter(|&&k| k == zstor::meta::MISSING_PIECE)
            .count(),
        "only the slow backend's pieces are missing"
    );
    store.retrieve_file(name, &out).await.expect("retrieve");
    assert!(
        std::fs::read(&out).unwrap() == again,
        "retrieved bytes differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_backends_are_given_up_on_then_skipped_until_they_answer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "44".repeat(32);
    let linked = behind_links(tmp.path(), &key).await;
    let (store, name, bytes) = stored_file(tmp.path(), &linked).await;
    let out = tmp.path().join("out.bin");

    // Every data link drops everything, with no reset: only the stall timeout, which follows
    // the measured round trip, ends the wait. (The bound here only catches a hang.)
    linked.data_rig.set_partitioned(true);
    let first = tokio::time::timeout(Duration::from_secs(60), store.retrieve_file(name, &out))
        .await
        .expect("a retrieve from silent backends must give up, not hang")
        .expect_err("nothing can be read");
    assert!(
        matches!(first, zstor::Error::ChunkUnavailable { available: 0, .. }),
        "{first}"
    );
    // The stall itself, or (for pieces asked once their backend was marked) the mark.
    let text = first.to_string();
    assert!(
        text.contains("no answer") || text.contains("not answering"),
        "{text}"
    );
    // Marked down: the next attempt is refused without asking them again.
    let second = store
        .retrieve_file(name, &out)
        .await
        .expect_err("still down");
    assert!(second.to_string().contains("not answering"), "{second}");
    assert!(!out.exists());

    // Healed: once their retry time comes, they are asked again and answer.
    linked.data_rig.set_partitioned(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.retrieve_file(name, &out).await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "backends never used again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "retrieved bytes differ"
    );
}

/// Store `len` bytes under `name` (a fresh sample each call, seeded by `seed`).
async fn store_sample(
    store: &Store,
    dir: &Path,
    name: &str,
    len: usize,
    seed: u64,
) -> (Result<zstor::meta::ObjectMeta, zstor::Error>, Vec<u8>) {
    let input = dir.join(format!("in-{seed}"));
    let bytes = sample(&input, len, seed);
    (store.store_as(&input, Path::new(name)).await, bytes)
}

async fn retrieves_exactly(store: &Store, name: &str, bytes: &[u8], dir: &Path) {
    let out = dir.join("out.bin");
    store
        .retrieve_file(Path::new(name), &out)
        .await
        .unwrap_or_else(|e| panic!("retrieve {name}: {e}"));
    assert!(std::fs::read(&out).unwrap() == bytes, "{name} differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_on_with_a_backend_down_and_repair_fills_in_when_it_returns() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "45".repeat(32);
    let linked = behind_links(tmp.path(), &key).await;
    let config = Config::from_toml(&linked.config_text).expect("config");
    assert_eq!(config.write_shards(), 5, "k + 1 by default");
    let store = linked.store();
    let links = &linked.data_rig;

    // One of the 6 data backends down (connections reset): the store still succeeds, with
    // the shard placed on it recorded as never written.
    links.link(5).set_down(true);
    let (stored, degraded) = store_sample(&store, tmp.path(), "/virtualroot/a", 3 << 20, 1).await;
    let meta = stored.expect("store with one backend down");
    assert_eq!(meta.missing_pieces() as u64, meta.chunk_count());
    assert_eq!(store.degraded_stores(), 1);
    retrieves_exactly(&store, "/virtualroot/a", &degraded, tmp.path()).await;

    // Two down: fewer than k + 1 shards could be written: refused, saying so.
    links.link(4).set_down(true);
    let (refused, _) = store_sample(&store, tmp.path(), "/virtualroot/b", 1 << 20, 2).await;
    let e = refused.expect_err("only 4 backends for 5 shards");
    assert!(
        matches!(
            e,
            zstor::Error::TooFewBackends {
                reachable: 4,
                needed: 5
            }
        ),
        "{e}"
    );

    // Both back: once their retry time comes they are written to again, fully.
    links.link(4).set_down(false);
    links.link(5).set_down(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (stored, _) = store_sample(&store, tmp.path(), "/virtualroot/b", 1 << 20, 2).await;
        if stored.as_ref().is_ok_and(|m| m.missing_pieces() == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backends not used again: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A backend failing during the upload loses its shard from there on; the store goes on.
    let storing = {
        let store = store.clone();
        let dir = tmp.path().to_path_buf();
        tokio::spawn(async move { store_sample(&store, &dir, "/virtualroot/c", 6 << 20, 3).await })
    };
    let cut = links.link(3).carried().0 + (512 << 10);
    until_carried(links.link(3), cut).await;
    links.link(3).set_down(true);
    let (stored, cut_short) = storing.await.expect("join");
    let meta = stored.expect("store with a backend failing midway");
    let missing = meta.missing_pieces() as u64;
    assert!(
        missing > 0,
        "the failed backend's pieces are recorded missing"
    );
    retrieves_exactly(&store, "/virtualroot/c", &cut_short, tmp.path()).await;

    // Back up, repair (what the monitor's sweep runs) writes exactly the missing pieces.
    links.link(3).set_down(false);
    for (name, expected) in [
        ("/virtualroot/a", 12usize),
        ("/virtualroot/c", missing as usize),
    ] {
        let target = zstor::store::RebuildTarget::Path(name.into());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match store.rebuild(&target).await {
                Ok(report) if report.pieces_written == expected => break,
                other => {
                    // Marked down a moment ago: asked again once its retry time comes.
                    assert!(Instant::now() < deadline, "{name} not repaired: {other:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        assert_eq!(
            store
                .meta()
                .get(Path::new(name))
                .await
                .unwrap()
                .missing_pieces(),
            0
        );
    }
    // The repaired shards are real: with two other backends gone they are needed.
    links.link(0).set_down(true);
    links.link(1).set_down(true);
    retrieves_exactly(&store, "/virtualroot/a", &degraded, tmp.path()).await;
    retrieves_exactly(&store, "/virtualroot/c", &cut_short, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_repairs_a_degraded_object_once_its_backend_is_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "46".repeat(32);
    let linked = behind_links(tmp.path(), &key).await;
    let store = linked.store();
    let settings = zstor::maintenance::Settings {
        probe_interval: Duration::from_millis(100),
        probe_failures: 1,
        scrub_interval: None,
    };
    let monitor =
        zstor::maintenance::Maintenance::start(Path::new("test"), store.clone(), settings);

    linked.data_rig.link(2).set_down(true);
    let (stored, bytes) = store_sample(&store, tmp.path(), "/virtualroot/d", 2 << 20, 7).await;
    assert!(stored.expect("degraded store").missing_pieces() > 0);
    // While the backend stays down, the object is counted below full redundancy.
    let deadline = Instant::now() + Duration::from_secs(60);
    while monitor.summary().degraded == 0 {
        assert!(
            Instant::now() < deadline,
            "never counted: {:?}",
            monitor.summary()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    linked.data_rig.link(2).set_down(false);
    let name = Path::new("/virtualroot/d");
    loop {
        let meta = store.meta().get(name).await.expect("record");
        if meta.missing_pieces() == 0 && monitor.summary().degraded == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not repaired: {:?}",
            monitor.summary()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(monitor.summary().repaired >= 1);
    linked.data_rig.link(0).set_down(true);
    linked.data_rig.link(1).set_down(true);
    retrieves_exactly(&store, "/virtualroot/d", &bytes, tmp.path()).await;
    monitor.stop().await;
}
