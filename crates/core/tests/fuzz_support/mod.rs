//! Shared plumbing of the bounded fuzz tests (`fuzz_signature.rs`, `fuzz_keys.rs`): a seeded
//! xorshift generator, the iteration budget, and a panic catcher that reports the input.
//!
//! Environment:
//! - `CLOACINA_FUZZ_ITERATIONS`: iterations of each randomised target (default 50000 in a
//!   release build; 500 in a debug build, where the exhaustive checks also take only every 16th
//!   case). `npm test` runs `cargo test --release`: about 4 s for all fuzz targets.
//! - `CLOACINA_FUZZ_SEED`: the run's seed (decimal or 0x-hex; default fixed, so `cargo test` is
//!   reproducible). Every failure prints the seed, the target and the iteration; the iteration's
//!   generator depends on nothing else, so `CLOACINA_FUZZ_SEED=<seed>` replays it.
//!
//! A longer run:
//! `CLOACINA_FUZZ_ITERATIONS=2000000 CLOACINA_FUZZ_SEED=$RANDOM cargo test -p cloacina-sign-core --release --test fuzz_signature --test fuzz_keys -- --nocapture`

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

pub const DEFAULT_SEED: u64 = 0x00c1_0ac1_4a5e_ed25;

pub fn iterations() -> u64 {
    match std::env::var("CLOACINA_FUZZ_ITERATIONS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CLOACINA_FUZZ_ITERATIONS must be a number, got {v:?}")),
        Err(_) if cfg!(debug_assertions) => 500,
        Err(_) => 50_000,
    }
}

/// The step through the exhaustive (bit-by-bit, character-by-character) checks: every case in a
/// release build or when `CLOACINA_FUZZ_ITERATIONS` is set; every 16th in a plain debug build,
/// where unoptimised Ed25519 is about 50 times slower.
pub fn exhaustive_step() -> usize {
    if cfg!(debug_assertions) && std::env::var_os("CLOACINA_FUZZ_ITERATIONS").is_none() {
        16
    } else {
        1
    }
}

pub fn seed() -> u64 {
    match std::env::var("CLOACINA_FUZZ_SEED") {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("CLOACINA_FUZZ_SEED must be a number, got {v:?}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// xorshift64* seeded through splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The generator of one iteration of one target: replayable from the run's seed alone.
    pub fn for_iteration(run_seed: u64, target: &str, iteration: u64) -> Rng {
        let mut h = run_seed ^ 0xcbf2_9ce4_8422_2325;
        for b in target.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng::new(h ^ iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Generic byte-level mutations: bit flips, byte changes, insertions, deletions, duplicated
/// ranges, truncation at either end.
pub fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    let n = data.len();
    match rng.below(9) {
        0 | 1 if n > 0 => {
            let i = rng.below(n);
            data[i] ^= 1 << rng.below(8);
        }
        2 if n > 0 => {
            let i = rng.below(n);
            data[i] = rng.byte();
        }
        3 => {
            let i = rng.below(n + 1);
            let extra = rng.range(1, 4);
            let ins = rng.bytes(extra);
            data.splice(i..i, ins);
        }
        4 if n > 0 => {
            let i = rng.below(n);
            let len = rng.range(1, (n - i).min(16));
            data.drain(i..i + len);
        }
        5 if n > 0 => {
            let i = rng.below(n);
            let len = rng.range(1, (n - i).min(32));
            let copy = data[i..i + len].to_vec();
            let at = rng.below(data.len() + 1);
            data.splice(at..at, copy);
        }
        6 => data.truncate(rng.below(n + 1)),
        7 if n > 0 => {
            data.drain(..rng.below(n));
        }
        _ => {
            let i = rng.below(n + 1);
            let b = *rng.pick(b" \t\r\n\x0b\x0c\x00-=+/");
            data.insert(i, b);
        }
    }
}

/// Runs `f`, turning a panic into a test failure that shows where and on what input.
pub fn no_panic<T>(what: &str, input: &[u8], f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{what} panicked ({msg}) on input {} bytes: {}",
                input.len(),
                show(input)
            )
        }
    }
}

/// Input for a failure message: escaped text, and hex when it is not text.
pub fn show(input: &[u8]) -> String {
    let shown: String = input
        .iter()
        .take(4096)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    format!(
        "b\"{shown}\"{}",
        if input.len() > 4096 { " ..." } else { "" }
    )
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
