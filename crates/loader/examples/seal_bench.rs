//! Measures SealedImage::from_path (pre-seal, copy into the memfd while hashing, seal, map) against a plain
//! "read the file and SHA-256 it" on the same (page-cached) file.
//!
//! cargo run --release -p cloacina-sign-loader --example seal_bench [-- SIZE_MIB [RUNS [DIR]]]

use std::io::Read;
use std::time::{Duration, Instant};

use cloacina_sign_loader::SealedImage;
use sha2::{Digest, Sha256};

fn plain_hash(path: &std::path::Path, buf_size: usize) -> [u8; 32] {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; buf_size];
    let mut h = Sha256::new();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().into()
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(100);
    let runs: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(9);
    let dir = match args.get(3) {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("package.bin");
    let mut data = vec![0u8; mib << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&path, &data).unwrap();
    let expected: [u8; 32] = Sha256::digest(&data).into();
    drop(data);
    let max = (mib as u64) << 21;
    println!(
        "file: {} ({mib} MiB, page-cached), {runs} runs each; min / median in ms",
        path.display()
    );

    // Warm up the page cache and the CPU.
    assert_eq!(plain_hash(&path, 1 << 20), expected);

    let mut results = Vec::new();
    for (name, buf) in [
        ("plain read(1 MiB)+sha256", 1usize << 20),
        ("plain read(128 KiB)+sha256", 128 << 10),
    ] {
        let t: Vec<_> = (0..runs)
            .map(|_| {
                let s = Instant::now();
                assert_eq!(plain_hash(&path, buf), expected);
                s.elapsed()
            })
            .collect();
        results.push((name.to_string(), stats(t)));
    }
    {
        let t: Vec<_> = (0..runs)
            .map(|_| {
                let s = Instant::now();
                let d: [u8; 32] = Sha256::digest(std::fs::read(&path).unwrap()).into();
                assert_eq!(d, expected);
                s.elapsed()
            })
            .collect();
        results.push(("plain fs::read+sha256".to_string(), stats(t)));
    }
    // Interleaved: one run of each per round, so machine-load drift hits both alike.
    let mut plain = Vec::new();
    let mut sealed = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        assert_eq!(plain_hash(&path, 1 << 20), expected);
        plain.push(s.elapsed());
        let s = Instant::now();
        let img = SealedImage::from_path(&path, max, cloacina_sign_core::digest::DigestSet::SHA256)
            .unwrap();
        assert_eq!(img.digests().sha256, Some(expected));
        sealed.push(s.elapsed());
    }
    let (pmin, pmed) = stats(plain);
    let (smin, smed) = stats(sealed);
    println!("plain read(1 MiB)+sha256 {pmin:8.1} / {pmed:8.1}");
    println!(
        "SealedImage::from_path   {smin:8.1} / {smed:8.1}   x{:.2} (median), x{:.2} (min)",
        smed / pmed,
        smin / pmin
    );
    for (name, (min, med)) in &results {
        println!("{name:<28} {min:8.1} / {med:8.1}");
    }
}
