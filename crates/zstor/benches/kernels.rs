//! Kernel benchmarks for the zstor pipeline: Reed-Solomon 8+4 encode/reconstruct, AES-256-GCM,
//! compression and hashing, on 4 MiB buffers (one chunk), each also reported as a fraction of
//! a memcpy of the same size measured in the same run (table printed at the end).
//!
//! `cargo bench -p zstor --bench kernels -- --warm-up-time 1 --measurement-time 2` measures the
//! production kernels; add `--features bench-all` for the alternatives (ring, aes-gcm,
//! reed-solomon-simd).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use rand::{RngCore, SeedableRng};
use reed_solomon_erasure::galois_8::ReedSolomon;
use zstor::pipeline::{ChunkDecoder, ChunkEncoder, CodecParams, Compression, DataKey};

const SIZE: usize = 4 << 20;
const K: usize = 8;
const M: usize = 4;

type Run = Box<dyn FnMut()>;

struct Kernel {
    group: &'static str,
    name: &'static str,
    run: Run,
}

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(42).fill_bytes(&mut v);
    v
}

/// Log-like text: compressible about 3-5x.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "2026-11-25T14:{:02}:{:02} INFO request id={} path=/data/file{}.bin bytes={}\n",
                i % 60,
                (i * 7) % 60,
                i * 2654435761 % 1000003,
                i % 977,
                i * 31 % 65536
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn k(group: &'static str, name: &'static str, run: impl FnMut() + 'static) -> Kernel {
    Kernel {
        group,
        name,
        run: Box::new(run),
    }
}

fn memcpy_kernel() -> Kernel {
    let src = random(SIZE);
    let mut dst = vec![0u8; SIZE];
    k("memcpy", "memcpy", move || {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
    })
}

fn rs_kernels(out: &mut Vec<Kernel>) {
    let shard = SIZE / K;
    let data: Vec<Vec<u8>> = random(SIZE).chunks(shard).map(<[u8]>::to_vec).collect();
    let rs = ReedSolomon::new(K, M).expect("8+4");
    let (d, mut parity) = (data.clone(), vec![vec![0u8; shard]; M]);
    let rs2 = rs.clone();
    out.push(k("rs_encode_8+4", "reed-solomon-erasure", move || {
        rs2.encode_sep(black_box(&d), &mut parity).expect("encode");
    }));
    // Reconstruct with the 4 first data shards lost (the worst case for 8+4).
    let mut full: Vec<Vec<u8>> = data.clone();
    full.extend(vec![vec![0u8; shard]; M]);
    rs.encode(&mut full).expect("encode");
    let mut work: Vec<(Vec<u8>, bool)> = full
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i >= M))
        .collect();
    out.push(k("rs_reconstruct_8+4", "reed-solomon-erasure", move || {
        rs.reconstruct_data(&mut work).expect("reconstruct");
        black_box(&work);
    }));
    #[cfg(feature = "bench-all")]
    {
        let mut enc =
            reed_solomon_simd::ReedSolomonEncoder::new(K, M, shard).expect("simd encoder");
        let d = data.clone();
        out.push(k("rs_encode_8+4", "reed-solomon-simd", move || {
            for s in &d {
                enc.add_original_shard(s).expect("add");
            }
            let r = enc.encode().expect("encode");
            black_box(r.recovery(0));
        }));
        let recovery: Vec<Vec<u8>> = reed_solomon_simd::encode(K, M, &data).expect("simd encode");
        let mut dec =
            reed_solomon_simd::ReedSolomonDecoder::new(K, M, shard).expect("simd decoder");
        out.push(k("rs_reconstruct_8+4", "reed-solomon-simd", move || {
            for (i, s) in data.iter().enumerate().skip(M) {
                dec.add_original_shard(i, s).expect("add");
            }
            for (i, s) in recovery.iter().enumerate() {
                dec.add_recovery_shard(i, s).expect("add");
            }
            let r = dec.decode().expect("decode");
            black_box(r.restored_original(0));
        }));
    }
}

/// Seal and open kernels for a crate with ring's AEAD API (`aws_lc_rs`, `ring`).
macro_rules! ring_style_aead {
    ($out:expr, $krate:ident, $label:literal, $key:expr, $nonce:expr, $buf:expr) => {{
        use $krate::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let (raw, nonce): ([u8; 32], [u8; 12]) = ($key, $nonce);
        let new_key = || LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).expect("key"));
        let seal = move |key: &LessSafeKey, buf: &mut Vec<u8>| {
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"aad"),
                buf,
            )
            .expect("seal")
        };
        let (key, mut buf) = (new_key(), $buf.clone());
        $out.push(k("aes256gcm_seal", $label, move || {
            let _ = black_box(seal(&key, &mut buf));
        }));
        // Open (decrypt + verify) of the same size.
        let key = new_key();
        let mut sealed = random(SIZE);
        let tag = seal(&key, &mut sealed);
        sealed.extend_from_slice(tag.as_ref());
        let mut work = sealed.clone();
        $out.push(k("aes256gcm_open", $label, move || {
            work.copy_from_slice(&sealed);
            let plain = key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(b"aad"),
                    &mut work,
                )
                .expect("open");
            black_box(plain.len());
        }));
    }};
}

fn aead_kernels(out: &mut Vec<Kernel>) {
    let key = [7u8; 32];
    let nonce = [1u8; 12];
    let mut buf = random(SIZE);
    ring_style_aead!(out, aws_lc_rs, "aws-lc-rs", key, nonce, buf);
    #[cfg(feature = "bench-all")]
    ring_style_aead!(out, ring, "ring", key, nonce, buf);
    #[cfg(feature = "bench-all")]
    {
        use aes_gcm::aead::AeadInPlace;
        use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
        let cipher = Aes256Gcm::new_from_slice(&key).expect("key");
        let mut buf = buf.clone();
        out.push(k("aes256gcm_seal", "aes-gcm", move || {
            let tag = cipher
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"aad", &mut buf)
                .expect("seal");
            let _ = black_box(tag);
        }));
    }
    buf.truncate(0);
}

fn compression_kernels(out: &mut Vec<Kernel>) {
    for (label, input) in [("text", text(SIZE)), ("random", random(SIZE))] {
        let (cg, dg): (&'static str, &'static str) = if label == "text" {
            ("compress_text", "decompress_text")
        } else {
            ("compress_random", "decompress_random")
        };
        {
            let src = input.clone();
            let mut enc = snap::raw::Encoder::new();
            let mut buf = vec![0u8; snap::raw::max_compress_len(SIZE)];
            out.push(k(cg, "snappy", move || {
                black_box(enc.compress(&src, &mut buf).expect("snappy"));
            }));
            let packed = snap::raw::Encoder::new()
                .compress_vec(&input)
                .expect("snappy");
            let mut dec = snap::raw::Decoder::new();
            let mut plain = vec![0u8; SIZE];
            out.push(k(dg, "snappy", move || {
                black_box(dec.decompress(&packed, &mut plain).expect("snappy"));
            }));
        }
        {
            let src = input.clone();
            let mut buf = vec![0u8; lz4_flex::block::get_maximum_output_size(SIZE)];
            out.push(k(cg, "lz4", move || {
                black_box(lz4_flex::block::compress_into(&src, &mut buf).expect("lz4"));
            }));
            let packed = lz4_flex::block::compress(&input);
            let mut plain = vec![0u8; SIZE];
            out.push(k(dg, "lz4", move || {
                black_box(lz4_flex::block::decompress_into(&packed, &mut plain).expect("lz4"));
            }));
        }
        {
            let src = input.clone();
            let mut enc = zstd::bulk::Compressor::new(3).expect("zstd");
            let mut buf = vec![0u8; zstd::zstd_safe::compress_bound(SIZE)];
            out.push(k(cg, "zstd-3", move || {
                black_box(enc.compress_to_buffer(&src, &mut buf[..]).expect("zstd"));
            }));
            let packed = zstd::bulk::compress(&input, 3).expect("zstd");
            let mut dec = zstd::bulk::Decompressor::new().expect("zstd");
            let mut plain = vec![0u8; SIZE];
            out.push(k(dg, "zstd-3", move || {
                black_box(
                    dec.decompress_to_buffer(&packed, &mut plain[..])
                        .expect("zstd"),
                );
            }));
        }
    }
}

fn hash_kernels(out: &mut Vec<Kernel>) {
    let input = random(SIZE);
    let i2 = input.clone();
    out.push(k("hash", "blake2b-128", move || {
        black_box(zstor::hash::blake2b_128(&i2));
    }));
    out.push(k("hash", "blake3", move || {
        black_box(blake3::hash(&input));
    }));
}

fn pipeline_kernels(out: &mut Vec<Kernel>) {
    let params = CodecParams {
        k: 4,
        m: 2,
        compression: Compression::Snappy,
        chunk_size: SIZE,
    };
    let key = DataKey::new([7; 32]);
    for (label, input) in [("random", random(SIZE)), ("text", text(SIZE))] {
        let mut enc = ChunkEncoder::new(params, &key, [1; 16]).expect("encoder");
        let pieces: Vec<Vec<u8>> = enc
            .encode(0, &input)
            .expect("encode")
            .iter()
            .map(<[u8]>::to_vec)
            .collect();
        let input2 = input.clone();
        let (eg, dg, lg): (&'static str, &'static str, &'static str) = if label == "random" {
            ("chunk_4+2_random", "chunk_4+2_random", "chunk_4+2_random")
        } else {
            ("chunk_4+2_text", "chunk_4+2_text", "chunk_4+2_text")
        };
        out.push(k(eg, "encode", move || {
            black_box(enc.encode(0, &input2).expect("encode").len());
        }));
        let mut dec = ChunkDecoder::new(params, &key, [1; 16]).expect("decoder");
        let all = pieces.clone();
        out.push(k(dg, "decode_all", move || {
            let refs: [Option<&[u8]>; 6] = std::array::from_fn(|i| Some(all[i].as_slice()));
            black_box(dec.decode(0, &refs).expect("decode").len());
        }));
        let mut dec = ChunkDecoder::new(params, &key, [1; 16]).expect("decoder");
        out.push(k(lg, "decode_2_lost", move || {
            let refs: [Option<&[u8]>; 6] =
                std::array::from_fn(|i| (i >= 2).then(|| pieces[i].as_slice()));
            black_box(dec.decode(0, &refs).expect("decode").len());
        }));
    }
}

/// Best-of-5 throughput in GB/s, each try running for ~`budget`.
fn gbps(run: &mut Run, budget: Duration) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut iters = 0u32;
        while start.elapsed() < budget || iters == 0 {
            run();
            iters += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / f64::from(iters));
    }
    SIZE as f64 / best / 1e9
}

fn main() {
    let mut kernels = vec![memcpy_kernel()];
    rs_kernels(&mut kernels);
    aead_kernels(&mut kernels);
    compression_kernels(&mut kernels);
    hash_kernels(&mut kernels);
    pipeline_kernels(&mut kernels);

    let mut c = Criterion::default().configure_from_args();
    for kernel in &mut kernels {
        let mut g = c.benchmark_group(kernel.group);
        g.throughput(Throughput::Bytes(SIZE as u64));
        let run = &mut kernel.run;
        g.bench_function(kernel.name, |b| b.iter(&mut *run));
        g.finish();
    }
    c.final_summary();

    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    // Same-run table: memcpy measured before and after, kernels relative to its mean.
    let budget = Duration::from_millis(60);
    let (first, rest) = kernels.split_at_mut(1);
    let memcpy_before = gbps(&mut first[0].run, budget);
    let mut rows = Vec::new();
    for kernel in rest.iter_mut() {
        rows.push((kernel.group, kernel.name, gbps(&mut kernel.run, budget)));
    }
    let memcpy = (memcpy_before + gbps(&mut first[0].run, budget)) / 2.0;
    println!("\n| kernel (4 MiB, 1 thread) | implementation | GB/s | fraction of memcpy |");
    println!("| --- | --- | ---: | ---: |");
    println!("| memcpy | `copy_from_slice` | {memcpy:.2} | 1.00 |");
    for (group, name, g) in rows {
        println!("| {group} | {name} | {g:.2} | {:.3} |", g / memcpy);
    }
}
