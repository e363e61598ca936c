//! End-to-end store/retrieve throughput over 6 in-process zdb servers (4+2) and 4 metadata
//! servers on loopback. Ignored by default; run with
//! `cargo test -p zstor --release --test throughput -- --ignored --nocapture`
//! (`ZSTOR_BENCH_MB` sets the file size, default 256). Peak RSS includes the servers.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use rand::{RngCore, SeedableRng};
use zstor::{Config, Store};

mod common;
use common::cluster;

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn b2_file(path: &Path) -> [u8; 16] {
    let mut f = std::fs::File::open(path).expect("open");
    let mut h = zstor::hash::FileHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            return h.finish();
        }
        h.update(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run explicitly with --release -- --ignored --nocapture"]
async fn store_retrieve_throughput() {
    let mb: usize = std::env::var("ZSTOR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_data, _meta, text) = cluster(tmp.path(), 6, &"42".repeat(32)).await;
    let store = Store::new(Config::from_toml(&text).expect("config")).expect("store");

    let input = tmp.path().join("input.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).expect("create"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mb {
            rng.fill_bytes(&mut block);
            f.write_all(&block).expect("write");
        }
    }
    let bytes = (mb << 20) as f64;
    let name = Path::new("/virtualroot/big.bin");
    let t = Instant::now();
    let rec = store.store_as(&input, name).await.expect("store");
    let store_s = t.elapsed().as_secs_f64();
    let out = tmp.path().join("out.bin");
    let t = Instant::now();
    store.retrieve_file(name, &out).await.expect("retrieve");
    let retrieve_s = t.elapsed().as_secs_f64();
    assert_eq!(b2_file(&out), rec.checksum);
    println!(
        "{mb} MiB random, 4+2, snappy: store {:.0} MB/s, retrieve {:.0} MB/s, peak RSS {} MiB (incl. 10 in-process zdb servers)",
        bytes / store_s / 1e6,
        bytes / retrieve_s / 1e6,
        peak_rss_mib()
    );
}
