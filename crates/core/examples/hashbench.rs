//! Hashes a file and prints the hex digest and elapsed time.
//!
//! `cargo run --release -p cloacina-sign-core --example hashbench -- FILE [CHUNK_MIB]`
//! `... --example hashbench -- --mem MIB` measures pure in-memory hashing speed.
//! `... --example hashbench -- --blake3 FILE [THREADS]` hashes with BLAKE3 (every core by default).

use std::time::Instant;

use cloacina_sign_core::digest;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: hashbench FILE [CHUNK_MIB] | --mem MIB");
    if path == "--blake3" {
        let file = std::env::args()
            .nth(2)
            .expect("usage: hashbench --blake3 FILE [THREADS]");
        let threads = std::env::args()
            .nth(3)
            .map(|t| t.parse().expect("a number of threads"));
        let start = Instant::now();
        let d = digest::digest_file(file.as_ref(), digest::DigestSet::BLAKE3, None, threads)
            .unwrap_or_else(|e| panic!("{e}"));
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}  {file}",
            digest::to_hex(&d.blake3.expect("BLAKE3 was requested"))
        );
        eprintln!("BLAKE3: {secs:.3} s");
        return;
    }
    let num = args
        .next()
        .map(|m| (m.parse::<f64>().expect("expected a number of MiB") * 1048576.0) as usize);
    if path == "--mem" {
        let buf = vec![0x5au8; num.unwrap_or(256 << 20)];
        let start = Instant::now();
        let d = digest::sha256(&buf);
        let secs = start.elapsed().as_secs_f64();
        println!("{}", digest::to_hex(&d));
        eprintln!("in-memory: {:.0} MB/s", buf.len() as f64 / secs / 1e6);
        return;
    }
    let chunk = num.unwrap_or(digest::CHUNK_SIZE);
    let start = Instant::now();
    let d = digest::sha256_file_with_chunk(path.as_ref(), None, chunk)
        .unwrap_or_else(|e| panic!("{e}"));
    let secs = start.elapsed().as_secs_f64();
    println!("{}  {path}", digest::to_hex(&d));
    eprintln!("chunk {} KiB: {:.3} s", chunk / 1024, secs);
}
