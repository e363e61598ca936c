//! Helpers shared by the integration tests: clusters of in-process zdb servers (test-kit's
//! [`TestZdb`]) and configs for them.

#![allow(dead_code)]

pub mod run;

use std::path::Path;

use rand::{RngCore, SeedableRng};

pub use test_kit::zdb::TestZdb;
use zdb_client::{Client, ClientConfig};

pub async fn make_namespace(addr: &str, name: &str, mode: &str) {
    let c = Client::connect(ClientConfig::new(addr.parse().expect("endpoint")))
        .await
        .expect("connect");
    c.nsnew(name).await.expect("nsnew");
    c.nsset(name, "mode", mode).await.expect("nsset mode");
}

/// `data` data backends (sequential namespace `data`) and 4 metadata backends (user
/// namespace `meta`) started under `dir`, and a config for them with data key `key`.
pub async fn cluster(dir: &Path, data: usize, key: &str) -> (Vec<TestZdb>, Vec<TestZdb>, String) {
    let data: Vec<TestZdb> = (0..data)
        .map(|i| TestZdb::start_in(&dir.join(format!("d{i}"))))
        .collect();
    let meta: Vec<TestZdb> = (0..4)
        .map(|i| TestZdb::start_in(&dir.join(format!("m{i}"))))
        .collect();
    for z in &data {
        make_namespace(&z.addr, "data", "seq").await;
    }
    for z in &meta {
        make_namespace(&z.addr, "meta", "user").await;
    }
    let text = config_text(
        &data.iter().collect::<Vec<_>>(),
        &meta.iter().collect::<Vec<_>>(),
        key,
    );
    (data, meta, text)
}

pub fn config_text(data: &[&TestZdb], meta: &[&TestZdb], key: &str) -> String {
    let addrs = |zs: &[&TestZdb]| zs.iter().map(|z| z.addr.clone()).collect::<Vec<_>>();
    config_for(&addrs(data), &addrs(meta), key)
}

/// A 4+2 config (snappy, AES) over the given data and metadata addresses.
pub fn config_for(data: &[String], meta: &[String], key: &str) -> String {
    let mut s = format!(
        "minimal_shards = 4\nexpected_shards = 6\nredundant_groups = 0\nredundant_nodes = 0\n\
         root = \"/virtualroot\"\n\
         [encryption]\nalgorithm = \"AES\"\nkey = \"{key}\"\n\
         [compression]\nalgorithm = \"snappy\"\n\
         [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"test\"\n\
         [meta.config.encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n",
        "11".repeat(32)
    );
    for a in meta {
        s += &format!("[[meta.config.backends]]\naddress = \"{a}\"\nnamespace = \"meta\"\n");
    }
    s += "[[groups]]\n";
    for a in data {
        s += &format!("[[groups.backends]]\naddress = \"{a}\"\nnamespace = \"data\"\n");
    }
    s
}

/// `len` bytes, half seeded random, half compressible text, written to `path`.
pub fn sample(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes[..len / 2]);
    for (i, b) in bytes[len / 2..].iter_mut().enumerate() {
        *b = b"compressible text "[i % 18];
    }
    std::fs::write(path, &bytes).expect("write sample");
    bytes
}
