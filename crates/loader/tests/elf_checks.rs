//! The ELF checks reject what would make glibc's dynamic loader crash. Each test patches one
//! field of a real compiled library (tests/fixtures/elf_features.c) and requires a clean
//! NOT_A_SHARED_LIBRARY error naming the field, from the check itself and from a guarded load
//! of the patched file (which never reaches `dlopen`, so it cannot crash this process).

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use cloacina_sign_core::digest::DigestSet;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_loader::{
    check_shared_library, verify_and_load, GuardedLibrary, SealedImage, MAX_PHNUM,
};
use common::*;

const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
const DT_STRSZ: u64 = 10;
const DT_INIT: u64 = 12;
const DT_SONAME: u64 = 14;
const DT_TEXTREL: u64 = 22;
const DT_JMPREL: u64 = 23;
const DT_INIT_ARRAY: u64 = 25;
const DT_FINI_ARRAY: u64 = 26;
const DT_INIT_ARRAYSZ: u64 = 27;
const DT_FINI_ARRAYSZ: u64 = 28;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_RELACOUNT: u64 = 0x6fff_fff9;
const DT_VERNEED: u64 = 0x6fff_fffe;
/// A tag glibc ignores: "removes" an entry without moving the others.
const DT_UNUSED: u64 = 0x6000_0001;
const FAR: u64 = 0x1000_0000;

fn library() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = vec![
        "-Wl,--hash-style=both".to_string(),
        "-Wl,-soname,libfeatures.so".to_string(),
    ];
    if cfg!(target_env = "musl") {
        // musl's C library defines no symbol versions: take them from a versioned library.
        let map = fixture("versioned_dep.map");
        build(
            dir.path(),
            "versioned_dep.c",
            "libversioned_dep.so",
            &[&format!("-Wl,--version-script={}", map.display())],
        );
        flags.extend([
            "-DCLOACINA_VERSIONED_DEP".to_string(),
            format!("-L{}", dir.path().display()),
            "-lversioned_dep".to_string(),
        ]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let so = build(dir.path(), "elf_features.c", "libfeatures.so", &flags);
    let bytes = std::fs::read(so).unwrap();
    check_shared_library(&bytes).expect("the unpatched library passes");
    (dir, bytes)
}

fn loads(b: &[u8]) -> Vec<Phdr> {
    phdrs(b)
        .into_iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect()
}

fn set_dyn(b: &mut [u8], tag: u64, val: u64) {
    let e = dyn_entry(b, tag);
    wr64(b, e.at + 8, val);
}

fn retag(b: &mut [u8], tag: u64, new_tag: u64) {
    let e = dyn_entry(b, tag);
    wr64(b, e.at, new_tag);
}

/// The patched bytes are refused by the check and by every way of loading them, and no
/// verifier is ever consulted.
fn refused(dir: &Path, name: &str, b: &[u8], expect: &[&str]) {
    let err = check_shared_library(b).unwrap_err();
    assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY", "{err}");
    let msg = err.to_string();
    for e in expect {
        assert!(msg.contains(e), "{name}: expected {e:?} in: {msg}");
    }
    let path = dir.join(format!("{name}.so"));
    std::fs::write(&path, b).unwrap();
    let called = Cell::new(false);
    let err = verify_and_load(&path, MAX, &Policy::default(), |d| {
        called.set(true);
        accept_all(d)
    })
    .unwrap_err();
    assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY", "{name}: {err}");
    assert!(
        called.get(),
        "{name}: the signature is decided before any byte is parsed"
    );
    let image = SealedImage::from_path(&path, MAX, DigestSet::SHA256)
        .unwrap()
        .allow_unsigned();
    let err = GuardedLibrary::load(image).unwrap_err();
    assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY", "{name}: {err}");
}

#[test]
fn pt_dynamic_outside_every_pt_load() {
    let (dir, good) = library();
    let dynamic = phdrs(&good)
        .into_iter()
        .find(|p| p.p_type == PT_DYNAMIC)
        .unwrap();
    let last = *loads(&good).last().unwrap();

    // By address: beyond the last segment.
    let mut b = good.clone();
    wr64(
        &mut b,
        dynamic.at + 16,
        last.p_vaddr + last.p_memsz + 0x10_0000,
    );
    refused(
        dir.path(),
        "dyn-vaddr",
        &b,
        &["PT_DYNAMIC at address", "outside every PT_LOAD"],
    );

    // By file offset: the section header table, which no segment loads.
    let mut b = good.clone();
    let shoff = rd64(&b, 40);
    wr64(&mut b, dynamic.at + 8, shoff);
    refused(
        dir.path(),
        "dyn-offset",
        &b,
        &[
            "PT_DYNAMIC at file offset",
            "outside every PT_LOAD segment's file contents",
        ],
    );

    // Inside a segment, but not where that segment maps its file offset.
    let mut b = good.clone();
    wr64(&mut b, dynamic.at + 16, dynamic.p_vaddr + 8);
    refused(
        dir.path(),
        "dyn-mismatch",
        &b,
        &["PT_DYNAMIC at address", "is not where segment"],
    );

    // In a segment the loader cannot write.
    let mut b = good.clone();
    let data = loads(&good)
        .into_iter()
        .find(|p| p.p_flags & 2 != 0)
        .unwrap();
    b[data.at + 4] = 4; // PF_R only
    refused(
        dir.path(),
        "dyn-readonly",
        &b,
        &["PT_DYNAMIC lies in segment", "not readable and writable"],
    );
}

#[test]
fn dynamic_addresses_outside_the_segments() {
    let (dir, good) = library();
    for (tag, name) in [
        (DT_STRTAB, "DT_STRTAB"),
        (DT_SYMTAB, "DT_SYMTAB"),
        (DT_HASH, "DT_HASH"),
        (DT_GNU_HASH, "DT_GNU_HASH"),
        (DT_RELA, "DT_RELA"),
        (DT_JMPREL, "DT_JMPREL"),
        (DT_INIT, "DT_INIT"),
        (DT_INIT_ARRAY, "DT_INIT_ARRAY"),
        (DT_VERSYM, "DT_VERSYM"),
        (DT_VERNEED, "DT_VERNEED"),
    ] {
        let mut b = good.clone();
        set_dyn(&mut b, tag, FAR);
        refused(dir.path(), name, &b, &[name, "outside the loaded segments"]);
    }
    // Inside the segments, but code the loader would call is not executable.
    let mut b = good.clone();
    let rodata = loads(&good)[2];
    set_dyn(&mut b, DT_INIT, rodata.p_vaddr);
    refused(
        dir.path(),
        "init-data",
        &b,
        &["DT_INIT", "not point into an executable segment"],
    );
}

#[test]
fn array_sizes_and_relocation_counts() {
    let (dir, good) = library();
    let mut b = good.clone();
    set_dyn(&mut b, DT_INIT_ARRAYSZ, 0x10_0000);
    refused(
        dir.path(),
        "init-array-size",
        &b,
        &["DT_INIT_ARRAY (DT_INIT_ARRAYSZ bytes)", "outside"],
    );

    let mut b = good.clone();
    set_dyn(&mut b, DT_FINI_ARRAYSZ, 12);
    refused(
        dir.path(),
        "fini-array-size",
        &b,
        &["DT_FINI_ARRAYSZ 12 is not a multiple of 8"],
    );

    let mut b = good.clone();
    set_dyn(&mut b, DT_PLTRELSZ, 0x10_0000);
    refused(dir.path(), "pltrelsz", &b, &["DT_JMPREL", "outside"]);

    let mut b = good.clone();
    set_dyn(&mut b, DT_RELACOUNT, 1000);
    refused(dir.path(), "relacount", &b, &["DT_RELACOUNT 1000 exceeds"]);

    // Entries glibc dereferences together.
    let mut b = good.clone();
    retag(&mut b, DT_RELAENT, DT_UNUSED);
    refused(
        dir.path(),
        "no-relaent",
        &b,
        &["DT_RELA without DT_RELAENT"],
    );
    let mut b = good.clone();
    retag(&mut b, DT_VERSYM, DT_UNUSED);
    refused(dir.path(), "no-versym", &b, &["without DT_VERSYM"]);
}

#[test]
fn string_offsets_beyond_dt_strsz() {
    let (dir, good) = library();
    let strsz = dyn_entry(&good, DT_STRSZ).val;
    let mut b = good.clone();
    set_dyn(&mut b, DT_NEEDED, strsz + 5);
    refused(
        dir.path(),
        "needed",
        &b,
        &["DT_NEEDED string offset", "outside DT_STRSZ"],
    );
    let mut b = good.clone();
    set_dyn(&mut b, DT_SONAME, strsz);
    refused(
        dir.path(),
        "soname",
        &b,
        &["DT_SONAME string offset", "outside DT_STRSZ"],
    );
    // A string table whose last byte is not NUL lets names run past its end.
    let mut b = good.clone();
    set_dyn(&mut b, DT_STRSZ, strsz - 1);
    refused(dir.path(), "strsz", &b, &["does not end with a NUL byte"]);
}

#[test]
fn impossible_segment_alignments_and_order() {
    let (dir, good) = library();
    let l = loads(&good);

    let mut b = good.clone();
    wr64(&mut b, l[0].at + 48, 0x1800);
    refused(
        dir.path(),
        "align-pow2",
        &b,
        &["p_align 0x1800 is not a power of two"],
    );

    let mut b = good.clone();
    wr64(&mut b, l[1].at + 16, l[1].p_vaddr + 0x10);
    refused(
        dir.path(),
        "align-congruent",
        &b,
        &["not congruent modulo p_align"],
    );

    let mut b = good.clone();
    wr64(&mut b, l[1].at + 48, 1); // no alignment constraint left, but not page-aligned either
    wr64(&mut b, l[1].at + 16, l[1].p_vaddr + 0x10);
    refused(
        dir.path(),
        "page-aligned",
        &b,
        &["is not a multiple of the page size"],
    );

    let mut b = good.clone();
    for k in 0..56 {
        b.swap(l[0].at + k, l[1].at + k);
    }
    refused(dir.path(), "unsorted", &b, &["is not sorted after segment"]);

    let mut b = good.clone();
    wr64(&mut b, l[0].at + 40, l[1].p_vaddr - l[0].p_vaddr + 0x10);
    refused(
        dir.path(),
        "overlap",
        &b,
        &["overlaps the pages of segment"],
    );
}

#[test]
fn relocations_writing_where_they_must_not() {
    let (dir, good) = library();
    let rela = file_offset(&good, dyn_entry(&good, DT_RELA).val);
    let text = loads(&good)[1];
    let mut b = good.clone();
    wr64(&mut b, rela, text.p_vaddr + 8);
    refused(
        dir.path(),
        "reloc-text",
        &b,
        &["relocation 0 of DT_RELA", "read-only segment"],
    );

    let mut b = good.clone();
    let symtab = dyn_entry(&good, DT_SYMTAB).val;
    wr64(&mut b, rela, symtab);
    refused(
        dir.path(),
        "reloc-symtab",
        &b,
        &["in the read-only segment"],
    );

    // With DT_TEXTREL read-only segments become writable during relocation, but the tables the
    // loader is reading meanwhile still may not be written.
    let mut b = good.clone();
    retag(&mut b, DT_SONAME, DT_TEXTREL);
    wr64(&mut b, rela, symtab + 24);
    refused(
        dir.path(),
        "reloc-textrel-symtab",
        &b,
        &["inside the symbol table"],
    );

    let mut b = good.clone();
    wr64(&mut b, rela, FAR);
    refused(
        dir.path(),
        "reloc-far",
        &b,
        &["outside the loaded segments"],
    );
}

#[test]
fn hash_tables_that_loop_or_overrun() {
    let (dir, good) = library();
    let hash = file_offset(&good, dyn_entry(&good, DT_HASH).val);
    let nbucket = u32::from_le_bytes(good[hash..hash + 4].try_into().unwrap()) as usize;
    let nchain = u32::from_le_bytes(good[hash + 4..hash + 8].try_into().unwrap()) as usize;
    assert!(nchain >= 2);
    // Bucket 0 -> symbol 1, whose chain points back to itself.
    let mut b = good.clone();
    b[hash + 8..hash + 12].copy_from_slice(&1u32.to_le_bytes());
    let chain1 = hash + 8 + 4 * nbucket + 4;
    b[chain1..chain1 + 4].copy_from_slice(&1u32.to_le_bytes());
    refused(dir.path(), "hash-cycle", &b, &["DT_HASH chains are cyclic"]);
    // A bucket naming a symbol beyond the table.
    let mut b = good.clone();
    b[hash + 8..hash + 12].copy_from_slice(&(nchain as u32 + 7).to_le_bytes());
    refused(dir.path(), "hash-range", &b, &["DT_HASH refers to symbol"]);

    let gnu = file_offset(&good, dyn_entry(&good, DT_GNU_HASH).val);
    let mut b = good.clone();
    b[gnu + 8..gnu + 12].copy_from_slice(&3u32.to_le_bytes()); // bloom size 3
    refused(
        dir.path(),
        "gnu-bloom",
        &b,
        &["bloom filter size 3 is not a power of two"],
    );
}

#[test]
fn too_many_program_headers() {
    let (dir, good) = library();
    let mut b = good.clone();
    let n = MAX_PHNUM + 1;
    b.resize(64 + 56 * n as usize + 4096, 0);
    b[56..58].copy_from_slice(&n.to_le_bytes());
    refused(
        dir.path(),
        "phnum",
        &b,
        &["program headers exceed the limit of 512"],
    );
}

// ---------------------------------------------------------------------------------------------
// Why: the same patched file, loaded without the checks, kills the process.

/// Not a test of its own: the child side of the test below (returns at once otherwise).
#[test]
fn raw_dlopen_child() {
    let Some(path) = std::env::var_os("CLOACINA_TEST_PACKAGE") else {
        return;
    };
    let c = std::ffi::CString::new(path.into_encoded_bytes()).unwrap();
    // SAFETY: a valid C string. This child exists to show that an unchecked dlopen of the file
    // crashes the process.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    println!("RAW: {}", if h.is_null() { "refused" } else { "loaded" });
}

#[test]
fn without_the_checks_one_malformed_library_kills_the_process() {
    let (dir, good) = library();
    let mut b = good.clone();
    set_dyn(&mut b, DT_STRTAB, 0x7000_0000_0000);
    let path: PathBuf = dir.path().join("crashes.so");
    std::fs::write(&path, &b).unwrap();
    // The guarded load refuses it...
    let image = SealedImage::from_path(&path, MAX, DigestSet::SHA256)
        .unwrap()
        .allow_unsigned();
    assert_eq!(
        GuardedLibrary::load(image).unwrap_err().code(),
        "NOT_A_SHARED_LIBRARY"
    );
    // ...a plain dlopen of it dies of SIGSEGV.
    let out = run_test_in_child(
        "raw_dlopen_child",
        &[("CLOACINA_TEST_PACKAGE", path.as_os_str())],
        false,
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        output_text(&out)
    );
}

/// tests/fixtures/fuzz_init_target.c: code the loader calls (DT_INIT, DT_FINI, init and fini array
/// entries relocated relatively and through the symbol `which`), an IFUNC symbol (`chosen`) and a
/// dependency's data symbol (`environ`).
fn init_library() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let so = build(
        dir.path(),
        "fuzz_init_target.c",
        "libfuzz_init_target.so",
        &[
            "-nostartfiles",
            "-Wl,--hash-style=both",
            "-Wl,-soname,libfuzz_init_target.so",
            "-Wl,--no-as-needed",
            "-lc",
            "-Wl,-init=which",
            "-Wl,-fini=which",
        ],
    );
    let bytes = std::fs::read(so).unwrap();
    check_shared_library(&bytes).expect("the unpatched library passes");
    (dir, bytes)
}

/// The index of the dynamic symbol `name` (the string table follows the symbol table).
fn symbol_index(b: &[u8], name: &str) -> u64 {
    let symtab = file_offset(b, dyn_entry(b, DT_SYMTAB).val);
    let strtab = file_offset(b, dyn_entry(b, DT_STRTAB).val);
    (0..(strtab - symtab) / 24)
        .find(|i| {
            let at =
                strtab + u32::from_le_bytes(b[symtab + 24 * i..][..4].try_into().unwrap()) as usize;
            b[at..].split(|c| *c == 0).next() == Some(name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no dynamic symbol {name}")) as u64
}

/// The file offset of the DT_RELA relocation that writes the first slot of the array `tag` and
/// names a symbol.
fn symbolic_array_relocation(b: &[u8], tag: u64) -> usize {
    let array = dyn_entry(b, tag).val;
    let size = dyn_entry(
        b,
        if tag == DT_INIT_ARRAY {
            DT_INIT_ARRAYSZ
        } else {
            DT_FINI_ARRAYSZ
        },
    )
    .val;
    let rela = file_offset(b, dyn_entry(b, DT_RELA).val);
    let count = dyn_entry(b, DT_RELASZ).val as usize / 24;
    (0..count)
        .map(|k| rela + 24 * k)
        .find(|&at| {
            let target = rd64(b, at);
            target >= array && target < array + size && rd64(b, at + 8) >> 32 != 0
        })
        .expect("a symbolic relocation of the array")
}

#[test]
fn when_the_code_segment_comes_partly_from_zero_fill_it_is_refused() {
    let (dir, good) = library();
    let text = loads(&good)
        .into_iter()
        .find(|p| p.p_flags & 1 != 0)
        .unwrap();
    for (name, filesz) in [("text-filesz-0", 0), ("text-filesz-short", 0x10)] {
        let mut b = good.clone();
        wr64(&mut b, text.at + 32, filesz);
        refused(
            dir.path(),
            name,
            &b,
            &[
                &format!("is executable but only 0x{filesz:x} of its"),
                "code must not be zero-filled",
            ],
        );
    }
}

#[test]
fn when_an_init_array_entry_refers_to_a_dependency_s_data_it_is_refused() {
    let (dir, good) = init_library();
    let at = symbolic_array_relocation(&good, DT_INIT_ARRAY);
    let mut b = good.clone();
    let info = rd64(&b, at + 8) & 0xffff_ffff | symbol_index(&good, "environ") << 32;
    wr64(&mut b, at + 8, info);
    refused(
        dir.path(),
        "init-array-data-symbol",
        &b,
        &["of DT_INIT_ARRAY refers to the undefined symbol environ, which is not a function"],
    );
}

#[test]
fn when_a_fini_array_entry_refers_to_an_ifunc_it_is_refused() {
    let (dir, good) = init_library();
    let at = symbolic_array_relocation(&good, DT_FINI_ARRAY);
    let mut b = good.clone();
    let info = rd64(&b, at + 8) & 0xffff_ffff | symbol_index(&good, "chosen") << 32;
    wr64(&mut b, at + 8, info);
    refused(
        dir.path(),
        "fini-array-ifunc",
        &b,
        &["of DT_FINI_ARRAY refers to the IFUNC symbol chosen"],
    );
}

#[test]
fn when_an_init_array_entry_refers_to_symbol_zero_it_is_refused() {
    // Symbol 0 is local: the loader stores the load address plus the addend (here 0).
    let (dir, good) = init_library();
    let at = symbolic_array_relocation(&good, DT_INIT_ARRAY);
    let mut b = good.clone();
    let info = rd64(&b, at + 8) & 0xffff_ffff;
    wr64(&mut b, at + 8, info);
    wr64(&mut b, at + 16, 0);
    refused(
        dir.path(),
        "init-array-symbol-0",
        &b,
        &["of DT_INIT_ARRAY points to 0x0, which is not in an executable segment"],
    );
}

#[test]
fn when_the_program_headers_are_loaded_in_an_unreadable_segment_it_is_refused() {
    // glibc reads the program headers where the first segment covering them maps them.
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(build_fuzz_target(dir.path())).unwrap();
    check_shared_library(&good).expect("the unpatched library passes");
    let text = loads(&good)
        .into_iter()
        .find(|p| p.p_flags & 1 != 0)
        .unwrap();
    let phoff = rd64(&good, 32) as usize;
    let phnum = u16::from_le_bytes([good[56], good[57]]) as usize;
    let mut b = good.clone();
    // The table copied over the start of the code segment, which the copy makes execute-only.
    let at = text.p_offset as usize;
    b.copy_within(phoff..phoff + 56 * phnum, at);
    wr64(&mut b, 32, at as u64);
    b[at + (text.at - phoff) + 4] = 1;
    refused(
        dir.path(),
        "phdrs-unreadable",
        &b,
        &[
            &format!(
                "the program headers are loaded in segment {}",
                (text.at - phoff) / 56
            ),
            "which is not readable",
        ],
    );
}

#[test]
fn when_an_init_array_entry_refers_to_an_exported_symbol_the_lookup_skips_it_is_refused() {
    // The loader's lookup by name ignores symbols that are neither code nor data (here: a file
    // symbol); a weak reference it cannot resolve would leave a null entry.
    let (dir, good) = init_library();
    let symtab = file_offset(&good, dyn_entry(&good, DT_SYMTAB).val);
    let which = symtab + 24 * symbol_index(&good, "which") as usize;
    let mut b = good.clone();
    b[which + 4] = 1 << 4 | 4; // STB_GLOBAL, STT_FILE
    refused(
        dir.path(),
        "init-array-file-symbol",
        &b,
        &["refers to the symbol which of type 4, which is not a function"],
    );
    let mut b = good.clone();
    b[which + 4] = 2 << 4 | 2; // STB_WEAK, STT_FUNC
    refused(
        dir.path(),
        "init-array-weak-symbol",
        &b,
        &["refers to the weak symbol which (it may resolve to null)"],
    );
}
