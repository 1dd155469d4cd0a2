//! Structural checks of an ELF shared object, done on the sealed bytes before anything is mapped
//! as code.
//!
//! Only signed bytes are ever loaded, but the runner must survive its own dependencies' mistakes:
//! glibc's dynamic loader trusts every offset, address and count in the file, so one malformed
//! (even if signed) object can make it read or write outside the mapped image and kill the whole
//! process with SIGSEGV, or trip one of its `assert`s (SIGABRT). These checks reject every such
//! structure we know the loader dereferences, *before* `dlopen`. They model glibc's dynamic loader
//! on x86-64 and AArch64 (64-bit little-endian, `RELA` relocations).
//!
//! What is checked (each failure is a `NOT_A_SHARED_LIBRARY` error naming the field):
//! - the ELF header: magic, class, byte order, version, type `ET_DYN`, this machine, header sizes,
//!   at most [`MAX_PHNUM`] program headers (glibc copies them to its stack), tables inside the file;
//! - `PT_LOAD`: non-empty, inside the file, `p_filesz <= p_memsz`, inside the user address space,
//!   `p_align` 0, 1 or a power of two (at most 1 GiB) with `p_offset % p_align == p_vaddr %
//!   p_align`, `p_vaddr - p_offset` a multiple of the page size, sorted by address and not sharing
//!   a page with the previous segment; an executable one entirely from the file (`p_filesz ==
//!   p_memsz`: the loader zero-fills the rest, and zero bytes are no code); the segment glibc
//!   finds the program headers in (it reads them during `dlopen`) readable;
//! - `PT_DYNAMIC`: exactly one, non-empty, inside one `PT_LOAD` both by file offset and by address
//!   (the same bytes), in a readable and writable segment (glibc relocates entries in place),
//!   terminated by `DT_NULL`; `PT_PHDR` exactly where the program headers are loaded, in a
//!   readable segment; `PT_TLS` with its initialization image inside the file, a power-of-two
//!   alignment (glibc divides by it) and bounded size; `PT_GNU_RELRO` inside a writable segment;
//!   `PT_NOTE` and `PT_GNU_PROPERTY` inside the segments, every note glibc parses inside its
//!   segment; `PT_GNU_EH_FRAME` inside the segments;
//! - dynamic entries: every address (`DT_STRTAB`, `DT_SYMTAB`, `DT_HASH`, `DT_GNU_HASH`, `DT_RELA`,
//!   `DT_JMPREL`, `DT_RELR`, `DT_INIT`, `DT_FINI`, `DT_INIT_ARRAY`/`DT_FINI_ARRAY` with their sizes,
//!   `DT_VERSYM`/`DT_VERNEED`/`DT_VERDEF`, `DT_PLTGOT`, ...) inside the loaded segments, and every
//!   table the loader reads inside a readable segment's file contents; entries glibc dereferences
//!   together present together (`DT_RELA` with `DT_RELASZ` and `DT_RELAENT == 24`,
//!   `DT_PLTREL == DT_RELA` with `DT_JMPREL` and `DT_PLTRELSZ`, version records with `DT_VERSYM`,
//!   ...); no `DT_REL` (unused on these machines) or `DT_PREINIT_ARRAY`; string offsets
//!   (`DT_NEEDED`, `DT_SONAME`, `DT_RPATH`, `DT_RUNPATH`, symbol and version names) inside
//!   `DT_STRSZ`, whose last byte is NUL;
//! - the tables behind them: hash tables (buckets and chains in range, no cycles, a power-of-two
//!   bloom filter), a symbol table covering every symbol the hash tables and relocations name,
//!   version records (chains in range, the first version 1, every `DT_VERNEED` file a `DT_NEEDED`
//!   entry, every `DT_VERSYM` index defined);
//! - every relocation: a known type (no copy relocations), its target inside a readable, writable
//!   segment (any segment with `DT_TEXTREL`) and outside the ELF header, program headers and every
//!   table the loader reads; `DT_RELACOUNT` within `DT_RELA` and naming relative relocations only;
//!   `DT_RELR` starting with an address; static-TLS relocations (TPOFF, TLSDESC) against this
//!   object only when it has `PT_TLS`;
//! - everything the loader calls: `DT_INIT`, `DT_FINI`, every `DT_INIT_ARRAY`/`DT_FINI_ARRAY` slot
//!   (as it stands after relocation: every slot must be relocated), `IRELATIVE` resolvers and
//!   `IFUNC` symbols point into the file-backed bytes of an executable segment, and not into the
//!   headers or tables; an array slot bound to a symbol is bound to code: not to an `IFUNC` (its
//!   value is whatever the resolver returns), an absolute symbol, or a dependency's symbol that is
//!   not a function.
//!
//! What cannot be judged: whether the bytes at a code address are sensible code. They are the
//! package's own (signed) bytes; running them is running the package.

//!
//! Each table has its module; [`validate`] runs their checks in the order the loader meets them.

mod code_pointers;
mod dynamic;
mod hash;
mod header;
mod initializers;
mod layout;
mod notes;
mod program_headers;
mod relocations;
mod symbols;
mod tables_read;
mod versions;
mod writes;

pub(crate) use dynamic::{DynamicInfo, DT_NULL, DT_VERDEF};
pub use header::MAX_PHNUM;

use crate::error::LoadError;
use code_pointers::CodePointers;
use header::parse_header;
use initializers::InitArrays;
use layout::Layout;
use program_headers::{read_segments, Segments};
use relocations::Relocations;
use symbols::SymbolTable;
use tables_read::TablesRead;
use versions::VersionTable;
use writes::Writes;

/// Upper bound on symbols, hash buckets and relocations (bounds the time the checks take).
const MAX_TABLE_ENTRIES: u64 = 1 << 24;

fn bad(msg: impl Into<String>) -> LoadError {
    LoadError::NotASharedLibrary(msg.into())
}

fn u16_at(b: &[u8], off: u64) -> Option<u16> {
    let off = usize::try_from(off).ok()?;
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: u64) -> Option<u32> {
    let off = usize::try_from(off).ok()?;
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

fn u64_at(b: &[u8], off: u64) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 && (p as u64).is_power_of_two() {
        p as u64
    } else {
        4096
    }
}

/// `[addr, addr + len)` for messages.
fn range(addr: u64, len: u64) -> String {
    format!("0x{addr:x}..0x{:x}", addr.saturating_add(len))
}

/// Checks that `bytes` is a complete 64-bit little-endian ELF shared object (ET_DYN) for the
/// machine this crate was built for, which glibc's dynamic loader can map and relocate without
/// reading or writing outside the object (see the module documentation for the list).
/// Never panics.
pub fn check_shared_library(bytes: &[u8]) -> Result<(), LoadError> {
    inspect(bytes).map(|_| ())
}

/// [`check_shared_library`], returning what the dependency policy needs.
pub(crate) fn inspect(bytes: &[u8]) -> Result<DynamicInfo, LoadError> {
    let layout = parse_layout(bytes)?;
    let mut info = dynamic::dynamic_info(&layout)?;
    validate(&layout, &mut info)?;
    Ok(info)
}

/// Only the layout and the dynamic section's names, for libraries already trusted by location
/// (root-owned system libraries the package depends on).
pub(crate) fn inspect_names(bytes: &[u8]) -> Result<DynamicInfo, LoadError> {
    let layout = parse_layout(bytes)?;
    dynamic::dynamic_info(&layout)
}

/// The header, the segments, the dynamic section and its string table, checked.
fn parse_layout(bytes: &[u8]) -> Result<Layout<'_>, LoadError> {
    let (phoff, phnum) = parse_header(bytes)?;
    let Segments {
        loads,
        dynamic,
        others,
    } = read_segments(bytes, phoff, phnum)?;
    let mut layout = Layout {
        bytes,
        phoff,
        phnum,
        loads,
        dynamic,
        others,
        dyn_entries: Vec::new(),
        strtab: &[],
        strtab_addr: 0,
    };
    layout.dyn_entries = dynamic::read_entries(&layout)?;
    (layout.strtab, layout.strtab_addr) = dynamic::read_string_table(&layout)?;
    Ok(layout)
}

/// The deep checks: tables the loader walks, relocations it applies, code it calls.
fn validate(l: &Layout<'_>, info: &mut DynamicInfo) -> Result<(), LoadError> {
    let mut read = TablesRead::new(l);
    program_headers::check_other_segments(l, &mut read)?;
    program_headers::check_loaded_headers(l, &mut read)?;
    dynamic::check_entries(l)?;
    let mut code = CodePointers::default();
    initializers::check_init_fini(l, &mut code)?;
    read.push(l.strtab_addr, l.strtab.len() as u64, "the string table");
    let relocations = Relocations::read(l, &mut read)?;
    let symbols = SymbolTable::read(l, relocations.symbol_count(), &mut read, &mut code)?;
    let versions = VersionTable::read(l, info, symbols.count(), &mut read)?;
    let arrays = InitArrays::read(l)?;
    let mut writes = Writes::new(l, read, arrays);
    relocations.apply(l, &symbols, &versions, &mut writes, &mut code)?;
    let (read, arrays) = writes.finish();
    arrays.check_slots(l, &symbols, &mut code)?;
    code.check_outside(&read)
}
