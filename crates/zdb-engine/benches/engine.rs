//! Engine kernels: SET of new keys, identical rewrites and GET, 4 KiB values, user mode, against
//! a plain `pwrite` of the same bytes (the floor any append-only store pays) in the same run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use zdb_engine::{Engine, EngineConfig, NoEvents, DEFAULT_NAMESPACE};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path().join("d"), dir.path().join("i"));
    cfg.datasize = 1 << 30;
    let engine = Engine::open(cfg, Arc::new(NoEvents)).unwrap();
    let ns = engine.namespace(DEFAULT_NAMESPACE).unwrap();
    let value = vec![0x5au8; 4096];
    let mut g = c.benchmark_group("engine-4KiB");
    g.throughput(Throughput::Elements(1));

    let raw = std::fs::File::create(dir.path().join("raw")).unwrap();
    let mut off = 0u64;
    g.bench_function("pwrite (floor)", |b| {
        b.iter(|| {
            raw.write_all_at(&value, off).unwrap();
            off += value.len() as u64;
        });
    });

    let mut i = 0u64;
    g.bench_function("set new key", |b| {
        b.iter(|| {
            i += 1;
            ns.set(format!("key:{i:012}").as_bytes(), &value, None)
                .unwrap()
        });
    });
    let n = i.max(1);
    let mut j = 0u64;
    g.bench_function("set identical value", |b| {
        b.iter(|| {
            j = (j + 1) % n + 1;
            ns.set(format!("key:{j:012}").as_bytes(), &value, None)
                .unwrap()
        });
    });
    g.bench_function("get", |b| {
        b.iter(|| {
            j = (j + 1) % n + 1;
            ns.get(format!("key:{j:012}").as_bytes()).unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
