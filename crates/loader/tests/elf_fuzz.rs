//! Bounded fuzzing of the ELF checks: random mutations of real libraries' ELF headers, program
//! headers and dynamic sections, many of them aimed at what glibc's dynamic loader maps and calls
//! (segment sizes and placement, flags, addresses at segment boundaries, added dynamic entries).
//!
//! - The checks never panic, whatever the bytes.
//! - Accepted mutations of two libraries whose only code is `ret` instructions are loaded for real
//!   (guarded load, unsigned allowed), each in a fresh child process: none may crash (signal),
//!   abort, hang, or make the dynamic loader exit the process. tests/fixtures/fuzz_target.c has no
//!   code that runs on load; tests/fixtures/fuzz_init_target.c has DT_INIT, DT_FINI, init/fini
//!   arrays and an IFUNC resolver, all pointing at `ret`s. A crash while loading a mutation whose
//!   file-backed code is still (part of) those bytes, at the same addresses, can only mean the
//!   loader was sent elsewhere: into zero-filled memory, outside the code, or into a table.
//!   Mutations that make other bytes executable (a data segment marked executable, the code
//!   segment moved over other file contents) are checked but not loaded: the loader would then
//!   run bytes the package itself declared as its code.
//!
//! Knobs (environment): `CLOACINA_FUZZ_ITERATIONS` (mutations per library, default 30000),
//! `CLOACINA_FUZZ_LOADS` (accepted mutations loaded in a child, per loaded library, default 1500),
//! `CLOACINA_FUZZ_SEED`. A failing mutation is saved under the target directory; the message says
//! where.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloacina_sign_loader::{check_shared_library, GuardedLibrary, SealedImage};
use common::*;

const DEFAULT_ITERATIONS: u64 = 30_000;
const DEFAULT_LOADS: u64 = 1500;
const DEFAULT_SEED: u64 = 0x5eed_c10a_c1a0_0001;
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);
const PAGE: u64 = 0x1000;
const PHDR_SIZE: usize = 56;
/// Dynamic tags whose value is an address (the loader reads, writes or calls there).
const ADDRESS_TAGS: &[u64] = &[
    3,
    4,
    5,
    6,
    7,
    12,
    13,
    23,
    25,
    26,
    0x6fff_fef5,
    0x6fff_fff0,
    0x6fff_fffc,
    0x6fff_fffe,
];
/// Dynamic tags whose value is a table's size.
const SIZE_TAGS: &[u64] = &[2, 8, 10, 27, 28, 35, 0x6fff_fff9];

fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        }
        Err(_) => default,
    }
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const PT_TYPES: &[u32] = &[
    0,
    1,
    2,
    3,
    4,
    6,
    7,
    0x6474_e550,
    0x6474_e551,
    0x6474_e552,
    0x6474_e553,
];
const DT_TAGS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    26,
    27,
    28,
    29,
    30,
    32,
    33,
    34,
    35,
    36,
    37,
    0x6fff_fef5,
    0x6fff_fef6,
    0x6fff_fef7,
    0x6fff_fefa,
    0x6fff_fefb,
    0x6fff_fefc,
    0x6fff_fefe,
    0x6fff_feff,
    0x6fff_fff0,
    0x6fff_fff9,
    0x6fff_fffa,
    0x6fff_fffb,
    0x6fff_fffc,
    0x6fff_fffd,
    0x6fff_fffe,
    0x6fff_ffff,
    0x7fff_fffd,
    0x7fff_ffff,
];

struct Target {
    bytes: Vec<u8>,
    /// 8-byte fields worth mutating as numbers: (file offset).
    fields: Vec<usize>,
    /// Byte ranges worth mutating bytewise.
    regions: Vec<(usize, usize)>,
    phdr_at: Vec<usize>,
    /// The program headers of PT_LOAD segments.
    load_at: Vec<usize>,
    dyn_at: Vec<usize>,
    /// Every 16-byte slot of PT_DYNAMIC, including the unused ones after DT_NULL.
    dyn_slots: Vec<usize>,
}

impl Target {
    fn new(bytes: Vec<u8>) -> Target {
        let ph = phdrs(&bytes);
        let dy = dyn_entries(&bytes);
        let mut fields = vec![24, 32, 40];
        let mut regions = vec![(16, 64)];
        for p in &ph {
            fields.extend([8, 16, 24, 32, 40, 48].map(|o| p.at + o));
        }
        let ph_start = ph.first().map_or(64, |p| p.at);
        regions.push((ph_start, ph_start + 56 * ph.len()));
        for e in &dy {
            fields.extend([e.at, e.at + 8]);
        }
        let dyn_start = dy[0].at;
        regions.push((dyn_start, dyn_start + 16 * dy.len()));
        // The tables the dynamic section points to (hash tables, symbols, strings, versions,
        // relocations): from the lowest such address to the end of the relocation tables.
        let table_tags = [
            4,
            5,
            6,
            7,
            0x6fff_fef5,
            0x6fff_fff0,
            0x6fff_fffc,
            0x6fff_fffe,
            23,
        ];
        let addrs: Vec<u64> = dy
            .iter()
            .filter(|e| table_tags.contains(&e.tag))
            .map(|e| e.val)
            .collect();
        if let (Some(&lo), Some(rela)) = (addrs.iter().min(), dy.iter().find(|e| e.tag == 7)) {
            let size = dy.iter().find(|e| e.tag == 8).map_or(0, |e| e.val);
            let (start, end) = (
                file_offset(&bytes, lo),
                file_offset(&bytes, rela.val) + size as usize,
            );
            regions.push((start, end));
            // Words of the relocation entries.
            let rela_at = file_offset(&bytes, rela.val);
            for k in 0..(size / 8) as usize {
                fields.push(rela_at + 8 * k);
            }
        }
        let dynamic = ph.iter().find(|p| p.p_type == PT_DYNAMIC).unwrap();
        Target {
            fields,
            regions,
            phdr_at: ph.iter().map(|p| p.at).collect(),
            load_at: ph
                .iter()
                .filter(|p| p.p_type == PT_LOAD)
                .map(|p| p.at)
                .collect(),
            dyn_at: dy.iter().map(|e| e.at).collect(),
            dyn_slots: (0..dynamic.p_filesz as usize / 16)
                .map(|k| dynamic.p_offset as usize + 16 * k)
                .collect(),
            bytes,
        }
    }

    fn interesting(&self, rng: &mut Rng, v: u64, other: u64) -> u64 {
        let len = self.bytes.len() as u64;
        match rng.below(24) {
            0 => 0,
            1 => 1,
            2 => 8,
            3 => 0x1000,
            4 => 0xfff,
            5 => u64::MAX,
            6 => 1 << 63,
            7 => 1 << 47,
            8 => len,
            9 => len - 1,
            10 => v.wrapping_add(8),
            11 => v.wrapping_sub(8),
            12 => v.wrapping_add(1),
            13 => v.wrapping_sub(1),
            14 => v.wrapping_add(0x1000),
            15 => v.wrapping_sub(0x1000),
            16 => v.wrapping_mul(2),
            17 => v / 2,
            18 => other,
            19 => other.wrapping_add(rng.below(64) * 8),
            20 => 0xffff_ffff,
            21 => rng.below(0x5000),
            22 => v ^ (1 << rng.below(64)),
            _ => rng.next(),
        }
    }

    /// An address at an edge of a (possibly already mutated) program header's segment: where its
    /// file-backed bytes, its memory and their pages end, give or take a few bytes.
    fn boundary(&self, rng: &mut Rng, b: &[u8]) -> u64 {
        let at = if rng.below(4) == 0 {
            rng.pick(&self.phdr_at)
        } else {
            rng.pick(&self.load_at)
        };
        let (vaddr, filesz, memsz) = (rd64(b, at + 16), rd64(b, at + 32), rd64(b, at + 40));
        let page_end = |a: u64| a.wrapping_add(PAGE - 1) & !(PAGE - 1);
        let edge = match rng.below(6) {
            0 => vaddr,
            1 => vaddr.wrapping_add(filesz),
            2 => vaddr.wrapping_add(memsz),
            3 => page_end(vaddr.wrapping_add(filesz)),
            4 => page_end(vaddr.wrapping_add(memsz)),
            _ => vaddr.wrapping_add(rng.below(memsz.max(1))),
        };
        edge.wrapping_add_signed(rng.pick(&[0i64, 0, -1, 1, -8, 8, -16, 16, -24]))
    }

    fn mutate(&self, rng: &mut Rng, b: &mut [u8]) {
        for _ in 0..1 + rng.below(3) {
            match rng.below(18) {
                0 => {
                    let (s, e) = rng.pick(&self.regions);
                    b[s + rng.below((e - s) as u64) as usize] = rng.next() as u8;
                }
                1 => {
                    let (s, e) = rng.pick(&self.regions);
                    b[s + rng.below((e - s) as u64) as usize] ^= 1 << rng.below(8);
                }
                2..=4 => {
                    let at = rng.pick(&self.fields);
                    let other = rd64(b, rng.pick(&self.fields));
                    let v = self.interesting(rng, rd64(b, at), other);
                    wr64(b, at, v);
                }
                5 => {
                    let at = rng.pick(&self.phdr_at);
                    if rng.below(2) == 0 {
                        b[at..at + 4].copy_from_slice(&rng.pick(PT_TYPES).to_le_bytes());
                    } else {
                        b[at + 4..at + 8].copy_from_slice(&(rng.below(8) as u32).to_le_bytes());
                    }
                }
                6 => {
                    let at = rng.pick(&self.dyn_at);
                    wr64(b, at, rng.pick(DT_TAGS));
                }
                7 => {
                    // Point an entry at another table (or near it).
                    let at = rng.pick(&self.dyn_at);
                    let other = rd64(b, rng.pick(&self.dyn_at) + 8);
                    wr64(b, at + 8, other.wrapping_add(rng.below(5) * 8));
                }
                9 | 10 => {
                    // A PT_LOAD's file or memory size cut short, grown or made equal.
                    let at = rng.pick(&self.load_at);
                    let (filesz_at, memsz_at) = (at + 32, at + 40);
                    let field = if rng.below(3) == 0 {
                        memsz_at
                    } else {
                        filesz_at
                    };
                    let other = if field == filesz_at {
                        memsz_at
                    } else {
                        filesz_at
                    };
                    let v = rd64(b, field);
                    let new = match rng.below(9) {
                        0 | 1 => rng.below(v.max(1)),
                        2 => v & !(PAGE - 1),
                        3 => v.saturating_sub(1 + rng.below(16)),
                        4 => rd64(b, other),
                        5 => v.wrapping_add(1 + rng.below(16)),
                        6 => v.wrapping_add(PAGE),
                        7 => 0,
                        _ => v / 2,
                    };
                    wr64(b, field, new);
                    if rng.below(4) == 0 {
                        wr64(b, other, new);
                    }
                }
                11 => {
                    // A segment moved: its file offset, its address or both, by pages or bytes.
                    let at = rng.pick(&self.phdr_at);
                    let d = match rng.below(4) {
                        0 => PAGE,
                        1 => PAGE.wrapping_neg(),
                        2 => 8,
                        _ => rng.below(2 * PAGE),
                    };
                    let which = rng.below(3);
                    for (k, field) in [at + 8, at + 16].into_iter().enumerate() {
                        if which == 2 || which == k as u64 {
                            wr64(b, field, rd64(b, field).wrapping_add(d));
                        }
                    }
                }
                12 => {
                    // A segment's permissions: R, W or X toggled.
                    let at = rng.pick(&self.phdr_at);
                    b[at + 4] ^= 1 << rng.below(3);
                }
                13 | 14 => {
                    // An address entry pointed at a segment edge.
                    let addresses: Vec<usize> = self
                        .dyn_at
                        .iter()
                        .copied()
                        .filter(|&at| ADDRESS_TAGS.contains(&rd64(b, at)))
                        .collect();
                    let at = if addresses.is_empty() {
                        rng.pick(&self.dyn_at)
                    } else {
                        rng.pick(&addresses)
                    };
                    let v = self.boundary(rng, b);
                    wr64(b, at + 8, v);
                }
                15 => {
                    // A size entry a little off.
                    let sizes: Vec<usize> = self
                        .dyn_at
                        .iter()
                        .copied()
                        .filter(|&at| SIZE_TAGS.contains(&rd64(b, at)))
                        .collect();
                    if !sizes.is_empty() {
                        let at = rng.pick(&sizes) + 8;
                        let v = rd64(b, at);
                        let d = rng.pick(&[1i64, -1, 8, -8, 16, -16, 24, -24, 4096]);
                        wr64(b, at, v.wrapping_add_signed(d));
                    }
                }
                16 => {
                    // A new entry in the dynamic section's unused room (a DT_NULL follows it).
                    let free = self.dyn_slots[..self.dyn_slots.len().saturating_sub(1)]
                        .iter()
                        .copied()
                        .find(|&at| rd64(b, at) == 0);
                    if let Some(at) = free {
                        let tag = rng.pick(DT_TAGS);
                        let v = if rng.below(2) == 0 {
                            self.boundary(rng, b)
                        } else {
                            let other = rd64(b, rng.pick(&self.fields));
                            self.interesting(rng, 0, other)
                        };
                        wr64(b, at, tag);
                        wr64(b, at + 8, v);
                    }
                }
                _ => {
                    // Swap two program headers or two dynamic entries.
                    let (list, size) = if rng.below(2) == 0 {
                        (&self.phdr_at, PHDR_SIZE)
                    } else {
                        (&self.dyn_at, 16)
                    };
                    let (x, y) = (rng.pick(list), rng.pick(list));
                    if x != y {
                        for k in 0..size {
                            b.swap(x + k, y + k);
                        }
                    }
                }
            }
        }
    }
}

/// Not a test of its own: the child side of `fuzzed_libraries_*` (returns at once otherwise).
#[test]
fn fuzz_child_load() {
    let Some(path) = std::env::var_os("CLOACINA_FUZZ_FILE") else {
        return;
    };
    let image = SealedImage::from_path(
        Path::new(&path),
        MAX,
        cloacina_sign_core::digest::DigestSet::SHA256,
    )
    .unwrap();
    match GuardedLibrary::load(image.allow_unsigned()) {
        Ok(lib) => {
            // Look a symbol up (walks the hash tables, versions, dladdr's symbol scan).
            let found = lib.has_symbol("which");
            println!("FUZZ-RESULT: loaded (which: {found})");
        }
        Err(e) => println!("FUZZ-RESULT: {}: {e}", e.code()),
    }
}

/// Loads `file` in a fresh copy of this test binary; `Err` describes a crash, abort or hang.
fn load_in_child(file: &Path) -> Result<String, String> {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "fuzz_child_load",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CLOACINA_FUZZ_FILE", file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the load hung for more than {CHILD_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .find("FUZZ-RESULT: ")
            .map(|i| stdout[i..].lines().next().unwrap_or_default().to_string())
            .ok_or_else(|| format!("the child printed no result:\n{}", output_text(&out)))
    } else {
        Err(output_text(&out))
    }
}

fn save_artifact(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("elf-fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The executable PT_LOADs of a library. The fixtures' only executable bytes are `ret`s.
fn code_segments(b: &[u8]) -> Vec<Phdr> {
    phdrs(b)
        .into_iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_flags & 1 != 0)
        .collect()
}

/// Whether every byte a mutation maps as code from the file is one of the original code bytes at
/// its original address: the file-backed part of each executable PT_LOAD lies inside an original
/// one, with the same distance between address and file offset. Shorter or zero-filled code
/// segments qualify (the checks must keep the loader out of the zero-filled part).
fn code_unchanged(b: &[u8], original: &[Phdr]) -> bool {
    // With DT_TEXTREL (or DF_TEXTREL in DT_FLAGS) relocations may rewrite the code itself.
    let textrel = dyn_entries(b)
        .iter()
        .any(|e| e.tag == 22 || (e.tag == 30 && e.val & 4 != 0));
    !textrel
        && code_segments(b).iter().all(|p| {
            original.iter().any(|o| {
                p.p_vaddr.wrapping_sub(p.p_offset) == o.p_vaddr.wrapping_sub(o.p_offset)
                    && p.p_offset >= o.p_offset
                    && p.p_offset.saturating_add(p.p_filesz) <= o.p_offset + o.p_filesz
            })
        })
}

struct Outcome {
    accepted: u64,
    /// Accepted, but their executable bytes are no longer only the fixture's code.
    not_code: u64,
    loaded: u64,
    results: std::collections::BTreeMap<String, u64>,
}

fn fuzz(label: &str, base: Vec<u8>, seed: u64, iterations: u64, loads: u64) -> Outcome {
    assert!(
        check_shared_library(&base).is_ok(),
        "{label}: the unmutated library must pass"
    );
    let code = code_segments(&base);
    let target = Target::new(base);
    let work = tempfile::tempdir().unwrap();
    // splitmix64 of the seed: distinct seeds give distinct, never-zero states.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let mut rng = Rng((z ^ (z >> 31)) | 1);
    let mut seen = HashSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut out = Outcome {
        accepted: 0,
        not_code: 0,
        loaded: 0,
        results: Default::default(),
    };
    for i in 0..iterations {
        let mut b = target.bytes.clone();
        target.mutate(&mut rng, &mut b);
        let verdict = std::panic::catch_unwind(|| check_shared_library(&b));
        let accepted = match verdict {
            Err(_) => {
                let p = save_artifact(&format!("{label}-panic-{seed:x}-{i}.so"), &b);
                failures.push(format!(
                    "iteration {i}: the checks panicked ({})",
                    p.display()
                ));
                continue;
            }
            Ok(r) => r.is_ok(),
        };
        if !accepted {
            continue;
        }
        out.accepted += 1;
        if out.loaded >= loads || !seen.insert(sha256_bytes(&b)) {
            continue;
        }
        if !code_unchanged(&b, &code) {
            // Other bytes of the library became code (a data segment made executable, the code
            // segment moved over other file contents): the loader would then run the package's
            // own bytes as its init code, which no check can judge. Checked, not loaded.
            out.not_code += 1;
            continue;
        }
        out.loaded += 1;
        let file = work.path().join(format!("mutation-{i}.so"));
        std::fs::write(&file, &b).unwrap();
        match load_in_child(&file) {
            Ok(line) => {
                let key: String = line.chars().take(60).collect();
                *out.results.entry(key).or_default() += 1;
            }
            Err(what) => {
                let p = save_artifact(&format!("{label}-crash-{seed:x}-{i}.so"), &b);
                failures.push(format!(
                    "iteration {i}: an accepted mutation did not load cleanly (saved as {}):\n{what}",
                    p.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{label} (seed 0x{seed:x}): {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    out
}

fn sha256_bytes(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

#[test]
fn fuzzed_libraries_never_crash_the_checks_or_the_loader() {
    let seed = knob("CLOACINA_FUZZ_SEED", DEFAULT_SEED);
    let iterations = knob("CLOACINA_FUZZ_ITERATIONS", DEFAULT_ITERATIONS);
    let loads = knob("CLOACINA_FUZZ_LOADS", DEFAULT_LOADS);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    // The load targets: accepted mutations are loaded.
    let base = std::fs::read(build_fuzz_target(dir.path())).unwrap();
    let plain = fuzz("fuzz_target", base, seed, iterations, loads);
    let base = std::fs::read(build(
        dir.path(),
        "fuzz_init_target.c",
        "fuzz_init_target.so",
        &[
            "-nostartfiles",
            "-Wl,--hash-style=both",
            "-Wl,-soname,libfuzz_init_target.so",
            "-Wl,--no-as-needed",
            "-lc",
            "-Wl,-init=which",
            "-Wl,-fini=which",
        ],
    ))
    .unwrap();
    let init = fuzz(
        "fuzz_init_target",
        base,
        seed.rotate_left(31),
        iterations,
        loads,
    );
    // A complete package built the usual way (startup files, PLT, init/fini arrays): the checks
    // alone (its own code could legitimately crash if a mutation pointed the loader at it).
    let base = std::fs::read(build(dir.path(), "package.c", "package.so", &[])).unwrap();
    let checked = fuzz("package", base, seed.rotate_left(17), iterations, 0);

    let summary = |o: &Outcome| {
        format!(
            "{} accepted ({} with other bytes made executable, not loaded), {} loaded in a child {:?}",
            o.accepted, o.not_code, o.loaded, o.results
        )
    };
    eprintln!(
        "elf fuzz (seed 0x{seed:x}, {iterations} mutations per library, {:?}): fuzz_target: {}; fuzz_init_target: {}; package: {} accepted",
        started.elapsed(),
        summary(&plain),
        summary(&init),
        checked.accepted,
    );
    assert!(
        (plain.loaded > 0 && init.loaded > 0) || loads == 0,
        "no accepted mutation was loaded: the test exercised nothing"
    );
}
