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

use std::collections::HashSet;

use crate::error::LoadError;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: usize = 64;
const ET_DYN: u16 = 3;
const PN_XNUM: u16 = 0xffff;
/// glibc copies the program headers onto the stack of the thread calling `dlopen` (and keeps a
/// variable-length array of load commands there): a huge count overflows small thread stacks.
pub const MAX_PHNUM: u16 = 512;
/// Upper bound on symbols, hash buckets and relocations (bounds the time the checks take).
const MAX_TABLE_ENTRIES: u64 = 1 << 24;
/// Upper bound on version records walked.
const MAX_VERSION_RECORDS: u64 = 1 << 16;
const MAX_ALIGN: u64 = 1 << 30;
/// Thread-local storage larger than this, or aligned more strictly, is refused: glibc allocates it
/// for every thread and aborts the process when that allocation fails.
const MAX_TLS_SIZE: u64 = 64 << 20;
const MAX_TLS_ALIGN: u64 = 64 << 10;
/// User-space addresses on x86-64 and AArch64 (48-bit).
const MAX_VADDR: u64 = 1 << 47;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

pub(crate) const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_PLTGOT: u64 = 3;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_INIT: u64 = 12;
const DT_FINI: u64 = 13;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_REL: u64 = 17;
const DT_RELSZ: u64 = 18;
const DT_RELENT: u64 = 19;
const DT_PLTREL: u64 = 20;
const DT_TEXTREL: u64 = 22;
const DT_JMPREL: u64 = 23;
const DT_INIT_ARRAY: u64 = 25;
const DT_FINI_ARRAY: u64 = 26;
const DT_INIT_ARRAYSZ: u64 = 27;
const DT_FINI_ARRAYSZ: u64 = 28;
const DT_RUNPATH: u64 = 29;
const DT_FLAGS: u64 = 30;
const DT_PREINIT_ARRAY: u64 = 32;
const DT_PREINIT_ARRAYSZ: u64 = 33;
const DT_SYMTAB_SHNDX: u64 = 34;
const DT_RELRSZ: u64 = 35;
const DT_RELR: u64 = 36;
const DT_RELRENT: u64 = 37;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_TLSDESC_PLT: u64 = 0x6fff_fef6;
const DT_TLSDESC_GOT: u64 = 0x6fff_fef7;
const DT_GNU_CONFLICT: u64 = 0x6fff_fef8;
const DT_GNU_LIBLIST: u64 = 0x6fff_fef9;
const DT_CONFIG: u64 = 0x6fff_fefa;
const DT_DEPAUDIT: u64 = 0x6fff_fefb;
const DT_AUDIT: u64 = 0x6fff_fefc;
const DT_PLTPAD: u64 = 0x6fff_fefd;
const DT_MOVETAB: u64 = 0x6fff_fefe;
const DT_SYMINFO: u64 = 0x6fff_feff;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_RELACOUNT: u64 = 0x6fff_fff9;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
pub(crate) const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_AUXILIARY: u64 = 0x7fff_fffd;
const DT_FILTER: u64 = 0x7fff_ffff;

const DF_TEXTREL: u64 = 0x4;
const STT_NOTYPE: u8 = 0;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const STB_LOCAL: u8 = 0;
const STB_WEAK: u8 = 2;
const SHN_UNDEF: u16 = 0;
const SHN_ABS: u16 = 0xfff1;
const SYM_SIZE: u64 = 24;
const RELA_SIZE: u64 = 24;
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;

#[cfg(target_arch = "x86_64")]
const EXPECTED_MACHINE: (u16, &str) = (62, "x86-64");
#[cfg(target_arch = "aarch64")]
const EXPECTED_MACHINE: (u16, &str) = (183, "AArch64");

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

/// The name of a dynamic tag, for messages.
fn tag_name(tag: u64) -> String {
    let name = match tag {
        DT_NULL => "DT_NULL",
        DT_NEEDED => "DT_NEEDED",
        DT_PLTRELSZ => "DT_PLTRELSZ",
        DT_PLTGOT => "DT_PLTGOT",
        DT_HASH => "DT_HASH",
        DT_STRTAB => "DT_STRTAB",
        DT_SYMTAB => "DT_SYMTAB",
        DT_RELA => "DT_RELA",
        DT_RELASZ => "DT_RELASZ",
        DT_RELAENT => "DT_RELAENT",
        DT_STRSZ => "DT_STRSZ",
        DT_SYMENT => "DT_SYMENT",
        DT_INIT => "DT_INIT",
        DT_FINI => "DT_FINI",
        DT_SONAME => "DT_SONAME",
        DT_RPATH => "DT_RPATH",
        DT_REL => "DT_REL",
        DT_RELSZ => "DT_RELSZ",
        DT_RELENT => "DT_RELENT",
        DT_PLTREL => "DT_PLTREL",
        DT_JMPREL => "DT_JMPREL",
        DT_INIT_ARRAY => "DT_INIT_ARRAY",
        DT_FINI_ARRAY => "DT_FINI_ARRAY",
        DT_INIT_ARRAYSZ => "DT_INIT_ARRAYSZ",
        DT_FINI_ARRAYSZ => "DT_FINI_ARRAYSZ",
        DT_RUNPATH => "DT_RUNPATH",
        DT_PREINIT_ARRAY => "DT_PREINIT_ARRAY",
        DT_SYMTAB_SHNDX => "DT_SYMTAB_SHNDX",
        DT_RELR => "DT_RELR",
        DT_RELRSZ => "DT_RELRSZ",
        DT_RELRENT => "DT_RELRENT",
        DT_GNU_HASH => "DT_GNU_HASH",
        DT_TLSDESC_PLT => "DT_TLSDESC_PLT",
        DT_TLSDESC_GOT => "DT_TLSDESC_GOT",
        DT_GNU_CONFLICT => "DT_GNU_CONFLICT",
        DT_GNU_LIBLIST => "DT_GNU_LIBLIST",
        DT_CONFIG => "DT_CONFIG",
        DT_DEPAUDIT => "DT_DEPAUDIT",
        DT_AUDIT => "DT_AUDIT",
        DT_PLTPAD => "DT_PLTPAD",
        DT_MOVETAB => "DT_MOVETAB",
        DT_SYMINFO => "DT_SYMINFO",
        DT_VERSYM => "DT_VERSYM",
        DT_RELACOUNT => "DT_RELACOUNT",
        DT_FLAGS_1 => "DT_FLAGS_1",
        DT_VERDEF => "DT_VERDEF",
        DT_VERNEED => "DT_VERNEED",
        DT_AUXILIARY => "DT_AUXILIARY",
        DT_FILTER => "DT_FILTER",
        other => return format!("dynamic tag 0x{other:x}"),
    };
    name.to_string()
}

/// `[addr, addr + len)` for messages.
fn range(addr: u64, len: u64) -> String {
    format!("0x{addr:x}..0x{:x}", addr.saturating_add(len))
}

/// What the dependency policy needs from a shared object's dynamic section.
#[derive(Debug, Clone, Default)]
pub(crate) struct DynamicInfo {
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<Vec<u8>>,
    /// `DT_FILTER` names (loaded like `DT_NEEDED`).
    pub filters: Vec<Vec<u8>>,
    /// `DT_AUXILIARY` names (loaded when present).
    pub auxiliary: Vec<Vec<u8>>,
    /// Every `DT_RPATH` / `DT_RUNPATH` / `DT_AUDIT` / `DT_DEPAUDIT` string.
    pub rpath: Vec<Vec<u8>>,
    pub runpath: Vec<Vec<u8>>,
    pub audit: Vec<Vec<u8>>,
    pub depaudit: Vec<Vec<u8>>,
    /// The `vn_file` names of `DT_VERNEED` (filled by the full check only).
    pub verneed_files: Vec<Vec<u8>>,
    /// Whether the object defines symbol versions (`DT_VERDEF`).
    pub has_verdef: bool,
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    index: u64,
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
    align: u64,
}

impl Seg {
    fn mem_end(&self) -> u64 {
        self.vaddr + self.memsz // checked when the segment was accepted
    }
}

/// The checked layout of a shared object: header, segments, dynamic section, string table.
struct Layout<'a> {
    bytes: &'a [u8],
    phoff: u64,
    phnum: u64,
    loads: Vec<Seg>,
    dynamic: Seg,
    others: Vec<(u32, Seg)>,
    /// (tag, value) up to, not including, DT_NULL.
    dyn_entries: Vec<(u64, u64)>,
    strtab: &'a [u8],
    strtab_addr: u64,
}

impl<'a> Layout<'a> {
    /// The last value of `tag` (glibc keeps the last entry of a repeated tag).
    fn get(&self, tag: u64) -> Option<u64> {
        self.dyn_entries
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    fn all(&self, tag: u64) -> impl Iterator<Item = u64> + '_ {
        self.dyn_entries
            .iter()
            .filter(move |(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    /// The PT_LOAD whose memory image contains `[addr, addr + len)` (len 0: `addr` may be its end).
    /// The segments are sorted and disjoint, so only the last one starting at or below `addr` can.
    fn segment_at(&self, addr: u64) -> Option<&Seg> {
        let n = self.loads.partition_point(|s| s.vaddr <= addr);
        n.checked_sub(1).map(|i| &self.loads[i])
    }

    fn mapped(&self, addr: u64, len: u64) -> Option<&Seg> {
        let seg = self.segment_at(addr)?;
        let end = addr.checked_add(len)?;
        if len == 0 {
            return (addr <= seg.mem_end()).then_some(seg);
        }
        (end <= seg.mem_end()).then_some(seg)
    }

    /// Whether the loader may jump to `addr`: an executable segment's bytes from the file (the
    /// zero-filled part of a segment is no code; zero bytes crash when run).
    fn executable(&self, addr: u64) -> bool {
        self.segment_at(addr)
            .is_some_and(|s| s.flags & PF_X != 0 && addr - s.vaddr < s.filesz)
    }

    /// The file bytes the loader maps at `[addr, addr + len)`, if they come from the file.
    fn file_bytes(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let end = addr.checked_add(len)?;
        let seg = self.segment_at(addr)?;
        if end > seg.vaddr + seg.filesz {
            return None;
        }
        let off = seg.offset + (addr - seg.vaddr);
        let off = usize::try_from(off).ok()?;
        let len = usize::try_from(len).ok()?;
        self.bytes.get(off..off.checked_add(len)?)
    }

    /// The file bytes from `addr` to the end of the file-backed part of its segment.
    fn file_bytes_to_end(&self, addr: u64) -> Option<&'a [u8]> {
        let seg = self.segment_at(addr)?;
        let end = seg.vaddr + seg.filesz;
        if addr >= end {
            return None;
        }
        self.file_bytes(addr, end - addr)
    }

    /// A table the loader reads: `[addr, addr + len)` must come from the file (an empty table
    /// only needs its address inside a segment).
    fn table(&self, what: &str, addr: u64, len: u64) -> Result<&'a [u8], LoadError> {
        let bytes = if len == 0 && self.mapped(addr, 0).is_some() {
            &[][..]
        } else {
            self.file_bytes(addr, len).ok_or_else(|| {
                bad(format!(
                    "{what} at {} lies outside the loaded segments' file contents",
                    range(addr, len)
                ))
            })?
        };
        match self.segment_at(addr) {
            Some(seg) if seg.flags & PF_R != 0 => Ok(bytes),
            Some(seg) => Err(bad(format!(
                "{what} at {} lies in segment {}, which is not readable",
                range(addr, len),
                seg.index
            ))),
            None => Err(bad(format!(
                "{what} at {} lies outside the loaded segments",
                range(addr, len)
            ))),
        }
    }

    fn string(&self, what: &str, offset: u64) -> Result<Vec<u8>, LoadError> {
        let strsz = self.strtab.len() as u64;
        if offset >= strsz {
            return Err(bad(format!(
                "{what} string offset 0x{offset:x} is outside DT_STRSZ (0x{strsz:x})"
            )));
        }
        let tail = &self.strtab[offset as usize..];
        let n = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Ok(tail[..n].to_vec())
    }
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
    let mut info = dynamic_info(&layout)?;
    validate(&layout, &mut info)?;
    Ok(info)
}

/// Only the layout and the dynamic section's names, for libraries already trusted by location
/// (root-owned system libraries the package depends on).
pub(crate) fn inspect_names(bytes: &[u8]) -> Result<DynamicInfo, LoadError> {
    let layout = parse_layout(bytes)?;
    dynamic_info(&layout)
}

fn parse_header(bytes: &[u8]) -> Result<(u64, u64), LoadError> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        if bytes.is_empty() {
            return Err(bad("not an ELF file (magic: none, the file is empty)"));
        }
        let shown: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!(
            "not an ELF file (magic {shown}, expected 7f454c46)"
        )));
    }
    if bytes.len() < EHDR_SIZE {
        return Err(bad(format!(
            "truncated: {} bytes is smaller than an ELF header ({EHDR_SIZE} bytes)",
            bytes.len()
        )));
    }
    if bytes[4] != 2 {
        return Err(bad(format!(
            "not a 64-bit ELF object (EI_CLASS {})",
            bytes[4]
        )));
    }
    if bytes[5] != 1 {
        return Err(bad(format!(
            "not a little-endian ELF object (EI_DATA {})",
            bytes[5]
        )));
    }
    if bytes[6] != 1 {
        return Err(bad(format!(
            "unknown ELF identification version {}",
            bytes[6]
        )));
    }
    // Offsets below are < EHDR_SIZE <= len, so the reads cannot fail; unwrap_or keeps it panic-free.
    let e_type = u16_at(bytes, 16).unwrap_or(0);
    let e_machine = u16_at(bytes, 18).unwrap_or(0);
    let e_version = u32_at(bytes, 20).unwrap_or(0);
    let e_phoff = u64_at(bytes, 32).unwrap_or(0);
    let e_shoff = u64_at(bytes, 40).unwrap_or(0);
    let e_ehsize = u16_at(bytes, 52).unwrap_or(0);
    let e_phentsize = u16_at(bytes, 54).unwrap_or(0);
    let e_phnum = u16_at(bytes, 56).unwrap_or(0);
    let e_shentsize = u16_at(bytes, 58).unwrap_or(0);
    let e_shnum = u16_at(bytes, 60).unwrap_or(0);

    if e_type != ET_DYN {
        let what = match e_type {
            1 => "a relocatable object (ET_REL)",
            2 => "an executable (ET_EXEC)",
            4 => "a core dump (ET_CORE)",
            _ => "not a shared object",
        };
        return Err(bad(format!("ELF type {e_type} is {what}, expected ET_DYN")));
    }
    if e_machine != EXPECTED_MACHINE.0 {
        return Err(bad(format!(
            "ELF machine {e_machine} does not match this host ({} = {})",
            EXPECTED_MACHINE.1, EXPECTED_MACHINE.0
        )));
    }
    if e_version != 1 {
        return Err(bad(format!("unknown ELF version {e_version}")));
    }
    if e_ehsize as usize != EHDR_SIZE {
        return Err(bad(format!("bad ELF header size {e_ehsize}")));
    }
    if e_phentsize as u64 != PHDR_SIZE {
        return Err(bad(format!("bad program header entry size {e_phentsize}")));
    }
    if e_phnum == 0 {
        return Err(bad("no program headers"));
    }
    if e_phnum == PN_XNUM {
        return Err(bad("extended program header numbering is not supported"));
    }
    if e_phnum > MAX_PHNUM {
        return Err(bad(format!(
            "{e_phnum} program headers exceed the limit of {MAX_PHNUM}"
        )));
    }
    let len = bytes.len() as u64;
    let ph_end = (e_phnum as u64)
        .checked_mul(PHDR_SIZE)
        .and_then(|s| s.checked_add(e_phoff))
        .ok_or_else(|| bad("program header table offset overflows"))?;
    if ph_end > len {
        return Err(bad(format!(
            "truncated: program header table ends at {ph_end} but the file has {len} bytes"
        )));
    }
    if e_shnum > 0 {
        if e_shentsize as usize != SHDR_SIZE {
            return Err(bad(format!("bad section header entry size {e_shentsize}")));
        }
        let sh_end = (e_shnum as u64)
            .checked_mul(SHDR_SIZE as u64)
            .and_then(|s| s.checked_add(e_shoff))
            .ok_or_else(|| bad("section header table offset overflows"))?;
        if sh_end > len {
            return Err(bad(format!(
                "truncated: section header table ends at {sh_end} but the file has {len} bytes"
            )));
        }
    }
    Ok((e_phoff, e_phnum as u64))
}

fn segment_name(p_type: u32) -> &'static str {
    match p_type {
        PT_LOAD => "PT_LOAD",
        PT_DYNAMIC => "PT_DYNAMIC",
        PT_NOTE => "PT_NOTE",
        PT_PHDR => "PT_PHDR",
        PT_TLS => "PT_TLS",
        PT_GNU_EH_FRAME => "PT_GNU_EH_FRAME",
        PT_GNU_RELRO => "PT_GNU_RELRO",
        PT_GNU_PROPERTY => "PT_GNU_PROPERTY",
        _ => "segment",
    }
}

fn parse_layout(bytes: &[u8]) -> Result<Layout<'_>, LoadError> {
    let (phoff, phnum) = parse_header(bytes)?;
    let len = bytes.len() as u64;
    let page = page_size();

    let mut loads: Vec<Seg> = Vec::new();
    let mut dynamic: Option<Seg> = None;
    let mut others: Vec<(u32, Seg)> = Vec::new();
    for i in 0..phnum {
        // parse_header checked that the whole table lies inside `bytes`.
        let base = phoff + i * PHDR_SIZE;
        let field = |o: u64| u64_at(bytes, base + o).ok_or_else(|| bad("truncated program header"));
        let p_type = u32_at(bytes, base).ok_or_else(|| bad("truncated program header"))?;
        let tracked = matches!(
            p_type,
            PT_LOAD
                | PT_DYNAMIC
                | PT_NOTE
                | PT_PHDR
                | PT_TLS
                | PT_GNU_EH_FRAME
                | PT_GNU_RELRO
                | PT_GNU_PROPERTY
        );
        if !tracked {
            continue;
        }
        let name = segment_name(p_type);
        let seg = Seg {
            index: i,
            flags: u32_at(bytes, base + 4).ok_or_else(|| bad("truncated program header"))?,
            offset: field(8)?,
            vaddr: field(16)?,
            filesz: field(32)?,
            memsz: field(40)?,
            align: field(48)?,
        };
        let file_end = seg
            .offset
            .checked_add(seg.filesz)
            .ok_or_else(|| bad(format!("program header {i}: offset + size overflows")))?;
        if file_end > len {
            return Err(bad(format!(
                "truncated: segment {i} ({name}) ends at {file_end} but the file has {len} bytes"
            )));
        }
        if seg.filesz > seg.memsz {
            return Err(bad(format!(
                "segment {i} ({name}): file size exceeds memory size"
            )));
        }
        match seg.vaddr.checked_add(seg.memsz) {
            Some(end) if end <= MAX_VADDR => {}
            _ => {
                return Err(bad(format!(
                    "segment {i} ({name}) at {} is outside the user address space",
                    range(seg.vaddr, seg.memsz)
                )))
            }
        }
        match p_type {
            PT_LOAD => {
                if seg.memsz == 0 {
                    return Err(bad(format!("segment {i} (PT_LOAD) is empty")));
                }
                // The loader zero-fills memory beyond p_filesz; zero bytes are no code (they crash
                // when run), and linkers never give code a zero-filled tail.
                if seg.flags & PF_X != 0 && seg.filesz != seg.memsz {
                    return Err(bad(format!(
                        "segment {i} (PT_LOAD) is executable but only 0x{:x} of its 0x{:x} bytes come from the file (code must not be zero-filled)",
                        seg.filesz, seg.memsz
                    )));
                }
                if seg.align > 1 {
                    if !seg.align.is_power_of_two() {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD): p_align 0x{:x} is not a power of two",
                            seg.align
                        )));
                    }
                    if seg.align > MAX_ALIGN {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD): p_align 0x{:x} exceeds 0x{MAX_ALIGN:x}",
                            seg.align
                        )));
                    }
                    if seg.offset % seg.align != seg.vaddr % seg.align {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD): p_offset 0x{:x} and p_vaddr 0x{:x} are not congruent modulo p_align 0x{:x}",
                            seg.offset, seg.vaddr, seg.align
                        )));
                    }
                }
                if !seg.vaddr.wrapping_sub(seg.offset).is_multiple_of(page) {
                    return Err(bad(format!(
                        "segment {i} (PT_LOAD): p_vaddr 0x{:x} - p_offset 0x{:x} is not a multiple of the page size 0x{page:x}",
                        seg.vaddr, seg.offset
                    )));
                }
                if let Some(prev) = loads.last() {
                    let prev_end = prev.mem_end().next_multiple_of(page);
                    let start = seg.vaddr - seg.vaddr % page;
                    if seg.vaddr <= prev.vaddr {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD) at 0x{:x} is not sorted after segment {} at 0x{:x}",
                            seg.vaddr, prev.index, prev.vaddr
                        )));
                    }
                    if start < prev_end {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD) at {} overlaps the pages of segment {} at {}",
                            range(seg.vaddr, seg.memsz),
                            prev.index,
                            range(prev.vaddr, prev.memsz)
                        )));
                    }
                }
                loads.push(seg);
            }
            PT_DYNAMIC => {
                if dynamic.is_some() {
                    return Err(bad("more than one PT_DYNAMIC segment"));
                }
                dynamic = Some(seg);
            }
            _ => {
                if p_type != PT_NOTE && others.iter().any(|(t, _)| *t == p_type) {
                    return Err(bad(format!("more than one {name} segment")));
                }
                others.push((p_type, seg));
            }
        }
    }
    if loads.is_empty() {
        return Err(bad("no loadable (PT_LOAD) segments"));
    }
    let dynamic = dynamic.ok_or_else(|| bad("no dynamic section (PT_DYNAMIC)"))?;
    if dynamic.filesz == 0 {
        return Err(bad("the dynamic section (PT_DYNAMIC) is empty"));
    }

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

    // PT_DYNAMIC: inside a PT_LOAD by address, and the bytes there are the ones at its offset.
    let dy = layout.dynamic;
    let Some(home) = layout.mapped(dy.vaddr, dy.filesz).copied() else {
        return Err(bad(format!(
            "PT_DYNAMIC at address {} lies outside every PT_LOAD segment",
            range(dy.vaddr, dy.filesz)
        )));
    };
    let by_offset = layout
        .loads
        .iter()
        .any(|s| dy.offset >= s.offset && dy.offset + dy.filesz <= s.offset + s.filesz);
    if !by_offset {
        return Err(bad(format!(
            "PT_DYNAMIC at file offset {} lies outside every PT_LOAD segment's file contents",
            range(dy.offset, dy.filesz)
        )));
    }
    if dy.vaddr + dy.filesz > home.vaddr + home.filesz
        || dy.vaddr - home.vaddr != dy.offset.wrapping_sub(home.offset)
    {
        return Err(bad(format!(
            "PT_DYNAMIC at address 0x{:x} is not where segment {} maps its file offset 0x{:x}",
            dy.vaddr, home.index, dy.offset
        )));
    }
    if home.flags & (PF_R | PF_W) != PF_R | PF_W {
        return Err(bad(format!(
            "PT_DYNAMIC lies in segment {}, which is not readable and writable (the dynamic loader reads and writes it)",
            home.index
        )));
    }
    let dyn_bytes = layout
        .file_bytes(dy.vaddr, dy.filesz)
        .ok_or_else(|| bad("PT_DYNAMIC lies outside the file"))?;
    let mut terminated = false;
    for entry in dyn_bytes.chunks_exact(16) {
        let tag = u64_at(entry, 0).unwrap_or(0);
        let val = u64_at(entry, 8).unwrap_or(0);
        if tag == DT_NULL {
            terminated = true;
            break;
        }
        layout.dyn_entries.push((tag, val));
    }
    if !terminated {
        return Err(bad(
            "the dynamic section has no DT_NULL terminator inside PT_DYNAMIC",
        ));
    }

    // The string table, which every name below refers to.
    let strtab = layout.get(DT_STRTAB).ok_or_else(|| bad("no DT_STRTAB"))?;
    let strsz = layout.get(DT_STRSZ).ok_or_else(|| bad("no DT_STRSZ"))?;
    if strsz == 0 {
        return Err(bad("DT_STRSZ is 0"));
    }
    let table = layout.table("DT_STRTAB (DT_STRSZ bytes)", strtab, strsz)?;
    if table.last() != Some(&0) {
        return Err(bad(
            "the string table (DT_STRTAB) does not end with a NUL byte",
        ));
    }
    layout.strtab = table;
    layout.strtab_addr = strtab;
    Ok(layout)
}

fn dynamic_info(layout: &Layout<'_>) -> Result<DynamicInfo, LoadError> {
    let names = |tag: u64| -> Result<Vec<Vec<u8>>, LoadError> {
        layout
            .all(tag)
            .map(|off| layout.string(&tag_name(tag), off))
            .collect()
    };
    if let Some(off) = layout.get(DT_SONAME) {
        layout.string("DT_SONAME", off)?;
    }
    if let Some(off) = layout.get(DT_CONFIG) {
        layout.string("DT_CONFIG", off)?;
    }
    Ok(DynamicInfo {
        needed: names(DT_NEEDED)?,
        filters: names(DT_FILTER)?,
        auxiliary: names(DT_AUXILIARY)?,
        rpath: names(DT_RPATH)?,
        runpath: names(DT_RUNPATH)?,
        audit: names(DT_AUDIT)?,
        depaudit: names(DT_DEPAUDIT)?,
        verneed_files: Vec::new(),
        has_verdef: layout.get(DT_VERDEF).is_some(),
    })
}

/// How the loader treats a relocation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reloc {
    /// No effect.
    None,
    /// `*where = base + addend` (8 bytes).
    Relative,
    /// `*where = (base + addend)()`: calls code of the object.
    IRelative,
    /// A value computed from a symbol, `size` bytes; `address` when it is the symbol's address
    /// (plus the addend when `addend`).
    Symbol {
        size: u64,
        address: bool,
        addend: bool,
    },
    /// Thread-local storage values, `size` bytes; `static` when it needs the defining object's
    /// block in static TLS (initial-exec offsets, TLS descriptors).
    Tls { size: u64, r#static: bool },
    /// Copies the symbol's bytes: never valid in a shared object.
    Copy,
}

#[cfg(target_arch = "x86_64")]
fn reloc_kind(t: u32) -> Option<Reloc> {
    Some(match t {
        0 => Reloc::None,
        1 => Reloc::Symbol {
            size: 8,
            address: true,
            addend: true,
        }, // R_X86_64_64
        2 => Reloc::Symbol {
            size: 4,
            address: false,
            addend: true,
        }, // R_X86_64_PC32
        5 => Reloc::Copy,
        6 | 7 => Reloc::Symbol {
            size: 8,
            address: true,
            addend: false,
        }, // GLOB_DAT, JUMP_SLOT
        8 => Reloc::Relative,
        10 => Reloc::Symbol {
            size: 4,
            address: false,
            addend: true,
        }, // R_X86_64_32
        16 | 17 => Reloc::Tls {
            size: 8,
            r#static: false,
        }, // DTPMOD64, DTPOFF64
        18 => Reloc::Tls {
            size: 8,
            r#static: true,
        }, // TPOFF64
        32 => Reloc::Symbol {
            size: 4,
            address: false,
            addend: true,
        }, // SIZE32
        33 => Reloc::Symbol {
            size: 8,
            address: false,
            addend: true,
        }, // SIZE64
        36 => Reloc::Tls {
            size: 16,
            r#static: true,
        }, // TLSDESC
        37 => Reloc::IRelative,
        _ => return None,
    })
}

#[cfg(target_arch = "aarch64")]
fn reloc_kind(t: u32) -> Option<Reloc> {
    Some(match t {
        0 | 256 => Reloc::None,
        257 => Reloc::Symbol {
            size: 8,
            address: true,
            addend: true,
        }, // ABS64
        1024 => Reloc::Copy,
        1025 | 1026 => Reloc::Symbol {
            size: 8,
            address: true,
            addend: true,
        }, // GLOB_DAT, JUMP_SLOT
        1027 => Reloc::Relative,
        1028 | 1029 => Reloc::Tls {
            size: 8,
            r#static: false,
        }, // TLS_DTPMOD, TLS_DTPREL
        1030 => Reloc::Tls {
            size: 8,
            r#static: true,
        }, // TLS_TPREL
        1031 => Reloc::Tls {
            size: 16,
            r#static: true,
        }, // TLSDESC
        1032 => Reloc::IRelative,
        _ => return None,
    })
}

#[cfg(target_arch = "x86_64")]
const RELATIVE_TYPE: u32 = 8;
#[cfg(target_arch = "aarch64")]
const RELATIVE_TYPE: u32 = 1027;

#[derive(Debug, Clone, Copy)]
struct Sym {
    name: u32,
    info: u8,
    shndx: u16,
    value: u64,
}

/// What finally sits in an init/fini array slot after relocation.
#[derive(Debug, Clone, Copy)]
enum SlotValue {
    Relative(u64),
    Relr(u64),
    Symbol { index: u64, addend: u64 },
}

/// The classic SysV ELF hash (as in `DT_HASH` and version records).
fn elf_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 4).wrapping_add(c as u32);
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// The deep checks: tables the loader walks, relocations it applies, code it calls.
fn validate(l: &Layout<'_>, info: &mut DynamicInfo) -> Result<(), LoadError> {
    // Program headers other than PT_LOAD/PT_DYNAMIC.
    let mut protected: Vec<(u64, u64, &'static str)> = Vec::new();
    protected.push((l.dynamic.vaddr, l.dynamic.filesz, "the dynamic section"));
    for (p_type, seg) in &l.others {
        let name = segment_name(*p_type);
        let i = seg.index;
        match *p_type {
            PT_TLS => {
                // glibc divides by it when it places the block in static TLS.
                if !seg.align.is_power_of_two() {
                    return Err(bad(format!(
                        "segment {i} (PT_TLS): p_align 0x{:x} is not a power of two",
                        seg.align
                    )));
                }
                if seg.align > MAX_TLS_ALIGN || seg.memsz > MAX_TLS_SIZE {
                    return Err(bad(format!(
                        "segment {i} (PT_TLS): {} bytes aligned to {} exceed the limits ({MAX_TLS_SIZE} bytes, alignment {MAX_TLS_ALIGN})",
                        seg.memsz, seg.align
                    )));
                }
                // glibc copies the initialization image (p_filesz bytes at p_vaddr) per thread.
                l.table("the PT_TLS initialization image", seg.vaddr, seg.filesz)?;
            }
            PT_GNU_RELRO
                if l.mapped(seg.vaddr, seg.memsz)
                    .is_none_or(|s| s.flags & PF_W == 0) =>
            {
                return Err(bad(format!(
                    "segment {i} (PT_GNU_RELRO) at {} lies outside every writable PT_LOAD segment (the loader would make other memory read-only)",
                    range(seg.vaddr, seg.memsz)
                )));
            }
            PT_PHDR => {
                let size = l.phnum * PHDR_SIZE;
                let here = l.file_bytes(seg.vaddr, size);
                let table = l.bytes.get(l.phoff as usize..(l.phoff + size) as usize);
                if here.is_none() || here.map(|h| h.as_ptr()) != table.map(|t| t.as_ptr()) {
                    return Err(bad(format!(
                        "segment {i} (PT_PHDR) at {} is not where the program header table (file offset 0x{:x}) is loaded",
                        range(seg.vaddr, size),
                        l.phoff
                    )));
                }
                if l.segment_at(seg.vaddr).is_none_or(|s| s.flags & PF_R == 0) {
                    return Err(bad(format!(
                        "segment {i} (PT_PHDR) at {} is not in a readable segment",
                        range(seg.vaddr, size)
                    )));
                }
                protected.push((seg.vaddr, size, "the program headers"));
            }
            PT_NOTE | PT_GNU_PROPERTY => {
                if seg.memsz != seg.filesz {
                    return Err(bad(format!(
                        "segment {i} ({name}): memory size differs from file size"
                    )));
                }
                let notes = l.table(&format!("segment {i} ({name})"), seg.vaddr, seg.memsz)?;
                check_notes(notes, seg.align)
                    .map_err(|e| bad(format!("segment {i} ({name}): {e}")))?;
                protected.push((seg.vaddr, seg.memsz, "a note segment"));
            }
            PT_GNU_EH_FRAME => {
                l.table(&format!("segment {i} ({name})"), seg.vaddr, seg.memsz)?;
                protected.push((seg.vaddr, seg.memsz, "the unwind table header"));
            }
            _ => {}
        }
    }
    // The ELF header and the program headers as loaded (glibc finds the latter inside a segment
    // when there is no PT_PHDR).
    if let Some(seg) = l
        .loads
        .iter()
        .find(|s| s.offset == 0 && s.filesz >= EHDR_SIZE as u64)
    {
        protected.push((seg.vaddr, EHDR_SIZE as u64, "the ELF header"));
    }
    let ph_size = l.phnum * PHDR_SIZE;
    // glibc points the object's program header list, which it reads during dlopen (and
    // `dl_iterate_phdr` later), into the first segment whose mapped pages hold the table.
    let page = page_size();
    if let Some(seg) = l.loads.iter().find(|s| {
        let map_offset = s.offset - s.offset % page;
        let map_len = (s.vaddr + s.filesz).next_multiple_of(page) - (s.vaddr - s.vaddr % page);
        map_offset <= l.phoff && map_offset + map_len >= l.phoff + ph_size
    }) {
        if seg.flags & PF_R == 0 {
            return Err(bad(format!(
                "the program headers are loaded in segment {}, which is not readable",
                seg.index
            )));
        }
    }
    if let Some(seg) = l
        .loads
        .iter()
        .find(|s| l.phoff >= s.offset && l.phoff + ph_size <= s.offset + s.filesz)
    {
        protected.push((
            seg.vaddr + (l.phoff - seg.offset),
            ph_size,
            "the program headers",
        ));
    }

    // Entries glibc dereferences together, and entries it must never see.
    let has = |t: u64| l.get(t).is_some();
    if has(DT_REL) || has(DT_RELSZ) || has(DT_RELENT) {
        return Err(bad(
            "DT_REL relocations are not used on this architecture (only DT_RELA)",
        ));
    }
    if has(DT_PREINIT_ARRAY) || has(DT_PREINIT_ARRAYSZ) {
        return Err(bad("DT_PREINIT_ARRAY in a shared object"));
    }
    for (a, b) in [
        (DT_RELA, DT_RELASZ),
        (DT_RELASZ, DT_RELA),
        (DT_RELA, DT_RELAENT),
        (DT_JMPREL, DT_PLTRELSZ),
        (DT_JMPREL, DT_PLTREL),
        (DT_PLTREL, DT_JMPREL),
        (DT_PLTRELSZ, DT_JMPREL),
        (DT_RELR, DT_RELRSZ),
        (DT_RELRSZ, DT_RELR),
        (DT_RELR, DT_RELRENT),
        (DT_INIT_ARRAY, DT_INIT_ARRAYSZ),
        (DT_INIT_ARRAYSZ, DT_INIT_ARRAY),
        (DT_FINI_ARRAY, DT_FINI_ARRAYSZ),
        (DT_FINI_ARRAYSZ, DT_FINI_ARRAY),
    ] {
        if has(a) && !has(b) {
            return Err(bad(format!("{} without {}", tag_name(a), tag_name(b))));
        }
    }
    for (tag, want) in [
        (DT_RELAENT, RELA_SIZE),
        (DT_SYMENT, SYM_SIZE),
        (DT_RELRENT, 8),
    ] {
        if let Some(v) = l.get(tag) {
            if v != want {
                return Err(bad(format!("{} is {v}, expected {want}", tag_name(tag))));
            }
        }
    }
    if let Some(v) = l.get(DT_PLTREL) {
        if v != DT_RELA {
            return Err(bad(format!(
                "DT_PLTREL is {v}, expected DT_RELA ({DT_RELA})"
            )));
        }
    }
    // Every address the loader (or the unwinder, or a debugger) may follow.
    for tag in [
        DT_PLTGOT,
        DT_HASH,
        DT_STRTAB,
        DT_SYMTAB,
        DT_RELA,
        DT_INIT,
        DT_FINI,
        DT_JMPREL,
        DT_INIT_ARRAY,
        DT_FINI_ARRAY,
        DT_SYMTAB_SHNDX,
        DT_RELR,
        DT_GNU_HASH,
        DT_TLSDESC_PLT,
        DT_TLSDESC_GOT,
        DT_GNU_CONFLICT,
        DT_GNU_LIBLIST,
        DT_PLTPAD,
        DT_MOVETAB,
        DT_SYMINFO,
        DT_VERSYM,
        DT_VERDEF,
        DT_VERNEED,
    ] {
        for addr in l.all(tag) {
            if l.mapped(addr, 0).is_none() {
                return Err(bad(format!(
                    "{} 0x{addr:x} points outside the loaded segments",
                    tag_name(tag)
                )));
            }
        }
    }
    // Addresses the loader calls: inside an executable segment (checked as they are found) and,
    // once every table is known, outside the headers and tables (checked at the end).
    let mut code_pointers: Vec<(String, u64)> = Vec::new();
    for tag in [DT_INIT, DT_FINI] {
        if let Some(addr) = l.get(tag) {
            if !l.executable(addr) {
                return Err(bad(format!(
                    "{} 0x{addr:x} does not point into an executable segment",
                    tag_name(tag)
                )));
            }
            code_pointers.push((tag_name(tag), addr));
        }
    }
    protected.push((l.strtab_addr, l.strtab.len() as u64, "the string table"));

    // Relocations.
    let textrel = has(DT_TEXTREL) || l.get(DT_FLAGS).is_some_and(|f| f & DF_TEXTREL != 0);
    let mut tables: Vec<(&str, u64, &[u8])> = Vec::new();
    if let Some(addr) = l.get(DT_RELA) {
        let size = l.get(DT_RELASZ).unwrap_or(0);
        let t = l.table(
            "the relocation table (DT_RELA, DT_RELASZ bytes)",
            addr,
            size,
        )?;
        tables.push(("DT_RELA", addr, t));
    }
    if let Some(addr) = l.get(DT_JMPREL) {
        let size = l.get(DT_PLTRELSZ).unwrap_or(0);
        let t = l.table(
            "the PLT relocation table (DT_JMPREL, DT_PLTRELSZ bytes)",
            addr,
            size,
        )?;
        tables.push(("DT_JMPREL", addr, t));
    }
    let relr = match l.get(DT_RELR) {
        Some(addr) => {
            let size = l.get(DT_RELRSZ).unwrap_or(0);
            if !size.is_multiple_of(8) {
                return Err(bad(format!("DT_RELRSZ {size} is not a multiple of 8")));
            }
            let t = l.table(
                "the relative relocation table (DT_RELR, DT_RELRSZ bytes)",
                addr,
                size,
            )?;
            protected.push((addr, size, "the DT_RELR table"));
            Some(t)
        }
        None => None,
    };
    let mut total = 0u64;
    for (name, addr, t) in &tables {
        if !(t.len() as u64).is_multiple_of(RELA_SIZE) {
            return Err(bad(format!(
                "{name} table size {} is not a multiple of {RELA_SIZE}",
                t.len()
            )));
        }
        total += t.len() as u64 / RELA_SIZE;
        protected.push((*addr, t.len() as u64, "a relocation table"));
    }
    if total > MAX_TABLE_ENTRIES {
        return Err(bad(format!(
            "{total} relocations exceed the limit of {MAX_TABLE_ENTRIES}"
        )));
    }
    // The loader reads the symbol of every relocation: the symbol table must cover them all,
    // also those the hash tables do not (undefined symbols in an object that exports nothing).
    let reloc_syms = tables
        .iter()
        .flat_map(|(_, _, t)| t.chunks_exact(RELA_SIZE as usize))
        .map(|r| u64_at(r, 8).unwrap_or(0) >> 32)
        .max()
        .map_or(0, |m| m + 1);

    // Symbol hash tables, and the symbol count they imply.
    let sysv = l.get(DT_HASH);
    let gnu = l.get(DT_GNU_HASH);
    if sysv.is_none() && gnu.is_none() {
        return Err(bad("no symbol hash table (DT_HASH or DT_GNU_HASH)"));
    }
    let mut nsyms = 0u64;
    if let Some(addr) = sysv {
        let (n, size) = check_sysv_hash(l, addr)?;
        nsyms = nsyms.max(n);
        protected.push((addr, size, "the DT_HASH table"));
    }
    if let Some(addr) = gnu {
        let (n, size) = check_gnu_hash(l, addr)?;
        nsyms = nsyms.max(n);
        protected.push((addr, size, "the DT_GNU_HASH table"));
    }
    nsyms = nsyms.max(reloc_syms);
    if nsyms == 0 || nsyms > MAX_TABLE_ENTRIES {
        return Err(bad(format!(
            "the hash tables imply {nsyms} symbols (at least 1, at most {MAX_TABLE_ENTRIES})"
        )));
    }
    let symtab_addr = l.get(DT_SYMTAB).ok_or_else(|| bad("no DT_SYMTAB"))?;
    let symtab = l.table(
        &format!(
            "the symbol table (DT_SYMTAB, {nsyms} symbols for the hash tables and relocations)"
        ),
        symtab_addr,
        nsyms * SYM_SIZE,
    )?;
    protected.push((symtab_addr, nsyms * SYM_SIZE, "the symbol table"));
    let sym = |i: u64| -> Sym {
        let b = &symtab[(i * SYM_SIZE) as usize..((i + 1) * SYM_SIZE) as usize];
        Sym {
            name: u32_at(b, 0).unwrap_or(0),
            info: b[4],
            shndx: u16_at(b, 6).unwrap_or(0),
            value: u64_at(b, 8).unwrap_or(0),
        }
    };
    for i in 0..nsyms {
        let s = sym(i);
        let name = l.string(&format!("symbol {i}"), s.name as u64)?;
        if s.info & 0xf == STT_GNU_IFUNC && s.shndx != SHN_UNDEF {
            let what = format!("IFUNC symbol {} resolver", String::from_utf8_lossy(&name));
            if s.shndx == SHN_ABS || !l.executable(s.value) {
                return Err(bad(format!(
                    "{what} 0x{:x} is not in an executable segment",
                    s.value
                )));
            }
            code_pointers.push((what, s.value));
        }
    }

    // Symbol versions.
    // glibc indexes a table of `ndx_high + 1` versions by each DT_VERSYM entry, without a bounds
    // check (and has no table at all when `ndx_high` is 0): for the symbols relocations refer to,
    // and, once the table exists, for every symbol another object may look up.
    let ndx_high = check_versions(l, info, &mut protected)?;
    if ndx_high > 0 && l.get(DT_VERSYM).is_none() {
        // glibc then reads the version table through the missing entry (a null pointer).
        return Err(bad("DT_VERNEED/DT_VERDEF without DT_VERSYM"));
    }
    let versym = match l.get(DT_VERSYM) {
        Some(addr) => {
            let table = l.table("the version table (DT_VERSYM)", addr, nsyms * 2)?;
            protected.push((addr, nsyms * 2, "the version table"));
            Some(table)
        }
        None => None,
    };
    let check_versym = |i: u64| -> Result<(), LoadError> {
        let Some(table) = versym else { return Ok(()) };
        let ndx = u16_at(table, i * 2).unwrap_or(0) & 0x7fff;
        if ndx as u64 > ndx_high {
            return Err(bad(format!(
                "DT_VERSYM gives symbol {i} version index {ndx}, but the version records define indices up to {ndx_high}"
            )));
        }
        Ok(())
    };
    if ndx_high > 0 {
        for i in 0..nsyms {
            check_versym(i)?;
        }
    }

    // Init/fini array slots, to see what each finally holds.
    let mut arrays: Vec<(&str, u64, u64)> = Vec::new();
    for (name, a, s) in [
        ("DT_INIT_ARRAY", DT_INIT_ARRAY, DT_INIT_ARRAYSZ),
        ("DT_FINI_ARRAY", DT_FINI_ARRAY, DT_FINI_ARRAYSZ),
    ] {
        if let Some(addr) = l.get(a) {
            let size = l.get(s).unwrap_or(0);
            if !size.is_multiple_of(8) {
                return Err(bad(format!("{name}SZ {size} is not a multiple of 8")));
            }
            l.table(&format!("{name} ({name}SZ bytes)"), addr, size)?;
            if size / 8 > MAX_TABLE_ENTRIES {
                return Err(bad(format!("{name} has too many entries")));
            }
            arrays.push((name, addr, size));
        }
    }
    let mut slots: Vec<Vec<Option<SlotValue>>> = arrays
        .iter()
        .map(|(_, _, size)| vec![None; (size / 8) as usize])
        .collect();
    // (start, end), sorted by start, overlapping ranges merged (for the lookup); the original
    // list names the table in a message.
    let tables_read = protected;
    let protected = {
        let mut ranges: Vec<(u64, u64)> = tables_read
            .iter()
            .map(|(a, s, _)| (*a, a.saturating_add(*s)))
            .collect();
        ranges.sort_by_key(|r| r.0);
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        merged
    };
    // A write to [addr, addr + size): inside a writable segment, clear of what the loader reads.
    let check_write = |what: &dyn Fn() -> String,
                       addr: u64,
                       size: u64,
                       value: Option<SlotValue>,
                       slots: &mut Vec<Vec<Option<SlotValue>>>|
     -> Result<(), LoadError> {
        let Some(seg) = l.mapped(addr, size) else {
            return Err(bad(format!(
                "{} writes {} outside the loaded segments",
                what(),
                range(addr, size)
            )));
        };
        if seg.flags & PF_R == 0 {
            return Err(bad(format!(
                "{} writes {} in segment {}, which is not readable",
                what(),
                range(addr, size),
                seg.index
            )));
        }
        if seg.flags & PF_W == 0 && !textrel {
            return Err(bad(format!(
                "{} writes {} in the read-only segment {} (and there is no DT_TEXTREL)",
                what(),
                range(addr, size),
                seg.index
            )));
        }
        let end = addr + size;
        // `protected` is sorted and coalesced: only the last range starting below `end` can
        // overlap.
        let k = protected.partition_point(|(p_addr, _)| *p_addr < end);
        if let Some((_, p_end)) = k.checked_sub(1).map(|k| protected[k]) {
            if p_end > addr {
                let p_name = tables_read
                    .iter()
                    .find(|(a, s, _)| addr < a.saturating_add(*s) && *a < end)
                    .map_or("a table", |(_, _, n)| *n);
                return Err(bad(format!(
                    "{} writes {} inside {p_name}, which the dynamic loader reads",
                    what(),
                    range(addr, size)
                )));
            }
        }
        for (k, (name, a_addr, a_size)) in arrays.iter().enumerate() {
            if addr < a_addr + a_size && *a_addr < end {
                let exact = addr >= *a_addr && (addr - a_addr).is_multiple_of(8) && size == 8;
                match (exact, value) {
                    (true, Some(v)) => slots[k][((addr - a_addr) / 8) as usize] = Some(v),
                    _ => {
                        return Err(bad(format!(
                            "{} writes {} inside {name} with a value that is not a code address",
                            what(),
                            range(addr, size)
                        )))
                    }
                }
            }
        }
        Ok(())
    };

    // DT_RELR runs first (glibc applies it before DT_RELA).
    if let Some(t) = relr {
        let mut next: Option<u64> = None;
        let mut writes = 0u64;
        for (n, entry) in t.chunks_exact(8).enumerate() {
            let e = u64_at(entry, 0).unwrap_or(0);
            let what = || format!("DT_RELR entry {n}");
            let mut write = |addr: u64, slots: &mut Vec<Vec<Option<SlotValue>>>| {
                writes += 1;
                if writes > MAX_TABLE_ENTRIES {
                    return Err(bad("DT_RELR encodes too many relocations"));
                }
                let value = l.file_bytes(addr, 8).and_then(|b| u64_at(b, 0));
                check_write(&what, addr, 8, value.map(SlotValue::Relr), slots)
            };
            if e & 1 == 0 {
                write(e, &mut slots)?;
                next = Some(
                    e.checked_add(8)
                        .ok_or_else(|| bad("DT_RELR address overflows"))?,
                );
            } else {
                let Some(base) = next else {
                    return Err(bad(format!(
                        "DT_RELR entry {n} is a bitmap before any address (the loader would write near address 0)"
                    )));
                };
                for bit in 1..64 {
                    if e >> bit & 1 == 1 {
                        let addr = base
                            .checked_add((bit - 1) * 8)
                            .ok_or_else(|| bad("DT_RELR address overflows"))?;
                        write(addr, &mut slots)?;
                    }
                }
                next = Some(
                    base.checked_add(63 * 8)
                        .ok_or_else(|| bad("DT_RELR address overflows"))?,
                );
            }
        }
    }
    // glibc applies the first DT_RELACOUNT entries of DT_RELA as relative relocations without
    // bounding the count by DT_RELASZ (and asserts each is one).
    // A static-TLS relocation (TPOFF, TLSDESC) that resolves into this object makes glibc place
    // the object's TLS block in static TLS, dividing by its PT_TLS alignment (0 without PT_TLS).
    let has_tls = l.others.iter().any(|(t, _)| *t == PT_TLS);
    let mut defined_names: Option<HashSet<Vec<u8>>> = None;
    let mut check_static_tls = |r_sym: u64, what: &dyn Fn() -> String| -> Result<(), LoadError> {
        if has_tls {
            return Ok(());
        }
        let s = sym(r_sym);
        let local = r_sym == 0 || s.info >> 4 == STB_LOCAL || s.shndx != SHN_UNDEF;
        let names = defined_names.get_or_insert_with(|| {
            (0..nsyms)
                .map(sym)
                .filter(|s| s.shndx != SHN_UNDEF)
                .filter_map(|s| l.string("symbol", s.name as u64).ok())
                .collect()
        });
        let name = l.string("symbol", s.name as u64)?;
        if local || names.contains(&name) {
            return Err(bad(format!(
                "{} is a static TLS relocation against this object, which has no PT_TLS segment",
                what()
            )));
        }
        Ok(())
    };
    let relacount = l.get(DT_RELACOUNT).unwrap_or(0);
    if let Some((_, _, t)) = tables.iter().find(|(name, _, _)| *name == "DT_RELA") {
        let n = t.len() as u64 / RELA_SIZE;
        if relacount > n {
            return Err(bad(format!(
                "DT_RELACOUNT {relacount} exceeds the {n} entries of DT_RELA"
            )));
        }
    }
    for (name, _, t) in &tables {
        for (n, r) in t.chunks_exact(RELA_SIZE as usize).enumerate() {
            let offset = u64_at(r, 0).unwrap_or(0);
            let r_info = u64_at(r, 8).unwrap_or(0);
            let addend = u64_at(r, 16).unwrap_or(0);
            let r_type = (r_info & 0xffff_ffff) as u32;
            let r_sym = r_info >> 32;
            let what = || format!("relocation {n} of {name} (type {r_type})");
            if *name == "DT_RELA" && (n as u64) < relacount && r_type != RELATIVE_TYPE {
                return Err(bad(format!(
                    "{} is within DT_RELACOUNT ({relacount}) but is not a relative relocation",
                    what()
                )));
            }
            let Some(kind) = reloc_kind(r_type) else {
                return Err(bad(format!("{} has an unsupported type", what())));
            };
            check_versym(r_sym)?; // r_sym < nsyms: nsyms covers every relocation's symbol
            match kind {
                Reloc::None => {}
                Reloc::Copy => {
                    return Err(bad(format!(
                        "{} is a copy relocation, which a shared object cannot use",
                        what()
                    )))
                }
                Reloc::Relative => check_write(
                    &what,
                    offset,
                    8,
                    Some(SlotValue::Relative(addend)),
                    &mut slots,
                )?,
                Reloc::IRelative => {
                    if !l.executable(addend) {
                        return Err(bad(format!(
                            "{}: its resolver 0x{addend:x} is not in an executable segment",
                            what()
                        )));
                    }
                    code_pointers.push((format!("the resolver of {}", what()), addend));
                    check_write(&what, offset, 8, None, &mut slots)?
                }
                Reloc::Symbol {
                    size,
                    address,
                    addend: with_addend,
                } => {
                    let value = (address && size == 8).then_some(SlotValue::Symbol {
                        index: r_sym,
                        addend: if with_addend { addend } else { 0 },
                    });
                    check_write(&what, offset, size, value, &mut slots)?
                }
                Reloc::Tls { size, r#static } => {
                    if r#static {
                        check_static_tls(r_sym, &what)?;
                    }
                    check_write(&what, offset, size, None, &mut slots)?
                }
            }
        }
    }
    // Every slot the loader will call must hold an address in executable code.
    for (k, (name, addr, _)) in arrays.iter().enumerate() {
        for (i, slot) in slots[k].iter().enumerate() {
            let target = match slot {
                None => {
                    return Err(bad(format!(
                        "entry {i} of {name} (at 0x{:x}) is never relocated, so it holds no code address",
                        addr + 8 * i as u64
                    )))
                }
                Some(SlotValue::Relative(v)) | Some(SlotValue::Relr(v)) => Some(*v),
                Some(SlotValue::Symbol { index, addend }) => {
                    let s = sym(*index);
                    let kind = s.info & 0xf;
                    let symbol = || {
                        l.string("symbol", s.name as u64)
                            .map(|n| String::from_utf8_lossy(&n).into_owned())
                            .unwrap_or_default()
                    };
                    if kind == STT_GNU_IFUNC {
                        // The slot gets what the resolver returns, which no check can see.
                        return Err(bad(format!(
                            "entry {i} of {name} refers to the IFUNC symbol {}, whose value only its resolver knows",
                            symbol()
                        )));
                    }
                    if s.shndx == SHN_ABS {
                        // Not relative to the load address: no code of this object.
                        return Err(bad(format!(
                            "entry {i} of {name} refers to the absolute symbol {}, which is no code of this object",
                            symbol()
                        )));
                    }
                    if s.shndx == SHN_UNDEF && s.info >> 4 != STB_LOCAL {
                        if s.info >> 4 == STB_WEAK {
                            return Err(bad(format!(
                                "entry {i} of {name} refers to an undefined weak symbol (it may be null)"
                            )));
                        }
                        if kind != STT_FUNC {
                            return Err(bad(format!(
                                "entry {i} of {name} refers to the undefined symbol {}, which is not a function",
                                symbol()
                            )));
                        }
                        None // defined by a dependency: code the process already trusts
                    } else if s.info >> 4 == STB_LOCAL {
                        // The loader resolves a local symbol (symbol 0 included) in this object.
                        Some(s.value.wrapping_add(*addend))
                    } else {
                        // An exported symbol is looked up by name. The lookup skips types other
                        // than code and data, and a weak reference it cannot resolve becomes 0.
                        if kind != STT_FUNC && kind != STT_NOTYPE {
                            return Err(bad(format!(
                                "entry {i} of {name} refers to the symbol {} of type {kind}, which is not a function",
                                symbol()
                            )));
                        }
                        if s.info >> 4 == STB_WEAK {
                            return Err(bad(format!(
                                "entry {i} of {name} refers to the weak symbol {} (it may resolve to null)",
                                symbol()
                            )));
                        }
                        Some(s.value.wrapping_add(*addend))
                    }
                }
            };
            if let Some(t) = target {
                if !l.executable(t) {
                    return Err(bad(format!(
                        "entry {i} of {name} points to 0x{t:x}, which is not in an executable segment"
                    )));
                }
                code_pointers.push((format!("entry {i} of {name}"), t));
            }
        }
    }
    for (what, addr) in &code_pointers {
        if let Some((_, _, table)) = tables_read
            .iter()
            .find(|(a, size, _)| *addr >= *a && *addr < a.saturating_add(*size))
        {
            return Err(bad(format!(
                "{what} 0x{addr:x} points into {table}, not to code"
            )));
        }
    }
    Ok(())
}

/// Walks notes the way glibc does for `PT_NOTE` / `PT_GNU_PROPERTY` segments aligned to 8, and
/// requires every note it would look at to lie inside the segment.
fn check_notes(notes: &[u8], align: u64) -> Result<(), String> {
    if align != 8 {
        return Ok(()); // glibc does not parse these
    }
    let size = notes.len() as u64;
    let mut pos = 0u64;
    while pos + 12 < size {
        let namesz = u32_at(notes, pos).unwrap_or(0) as u64;
        let descsz = u32_at(notes, pos + 4).unwrap_or(0) as u64;
        let n_type = u32_at(notes, pos + 8).unwrap_or(0);
        let name_end = (12 + namesz).next_multiple_of(8);
        let next = pos + name_end + descsz.next_multiple_of(8);
        if namesz == 4 && n_type == NT_GNU_PROPERTY_TYPE_0 && pos + 16 + descsz > size {
            return Err(format!(
                "the property note at offset {pos} claims {descsz} bytes beyond the segment"
            ));
        }
        pos = next;
    }
    Ok(())
}

/// `DT_HASH`: returns (symbol count, table size).
fn check_sysv_hash(l: &Layout<'_>, addr: u64) -> Result<(u64, u64), LoadError> {
    let head = l.table("the DT_HASH header", addr, 8)?;
    let nbucket = u32_at(head, 0).unwrap_or(0) as u64;
    let nchain = u32_at(head, 4).unwrap_or(0) as u64;
    if nbucket == 0 {
        return Err(bad("DT_HASH has no buckets"));
    }
    if nbucket > MAX_TABLE_ENTRIES || nchain > MAX_TABLE_ENTRIES {
        return Err(bad(format!(
            "DT_HASH has {nbucket} buckets and {nchain} chains, beyond the limit of {MAX_TABLE_ENTRIES}"
        )));
    }
    let size = 8 + 4 * (nbucket + nchain);
    let t = l.table("the DT_HASH table", addr, size)?;
    let word = |i: u64| u32_at(t, 8 + 4 * i).unwrap_or(0) as u64;
    let mut seen = vec![false; nchain as usize];
    for b in 0..nbucket {
        let mut i = word(b);
        while i != 0 {
            if i >= nchain {
                return Err(bad(format!(
                    "DT_HASH refers to symbol {i}, beyond its {nchain} chain entries"
                )));
            }
            if std::mem::replace(&mut seen[i as usize], true) {
                return Err(bad(format!(
                    "DT_HASH chains are cyclic or shared (symbol {i} is reached twice)"
                )));
            }
            i = word(nbucket + i);
        }
    }
    Ok((nchain, size))
}

/// `DT_GNU_HASH`: returns (symbol count, table size).
fn check_gnu_hash(l: &Layout<'_>, addr: u64) -> Result<(u64, u64), LoadError> {
    let head = l.table("the DT_GNU_HASH header", addr, 16)?;
    let nbuckets = u32_at(head, 0).unwrap_or(0) as u64;
    let symoffset = u32_at(head, 4).unwrap_or(0) as u64;
    let bloom_size = u32_at(head, 8).unwrap_or(0) as u64;
    if nbuckets == 0 {
        return Err(bad("DT_GNU_HASH has no buckets"));
    }
    if bloom_size == 0 || !bloom_size.is_power_of_two() {
        return Err(bad(format!(
            "DT_GNU_HASH bloom filter size {bloom_size} is not a power of two"
        )));
    }
    if nbuckets > MAX_TABLE_ENTRIES
        || bloom_size > MAX_TABLE_ENTRIES
        || symoffset > MAX_TABLE_ENTRIES
    {
        return Err(bad("DT_GNU_HASH is larger than the limits"));
    }
    let buckets_at = 16 + 8 * bloom_size;
    let chains_at = buckets_at + 4 * nbuckets;
    let fixed = l.table("the DT_GNU_HASH table", addr, chains_at)?;
    // Chains run on from there; they must stay inside the segment's file contents.
    let rest = l.file_bytes_to_end(addr).unwrap_or(fixed);
    let chain_words = (rest.len() as u64).saturating_sub(chains_at) / 4;
    let mut end_index = symoffset; // one past the last hashed symbol
    let limit = chain_words.min(MAX_TABLE_ENTRIES);
    let mut seen: Vec<bool> = Vec::new();
    for b in 0..nbuckets {
        let start = u32_at(fixed, buckets_at + 4 * b).unwrap_or(0) as u64;
        if start == 0 {
            continue;
        }
        if start < symoffset {
            return Err(bad(format!(
                "DT_GNU_HASH bucket {b} starts at symbol {start}, below the first hashed symbol {symoffset}"
            )));
        }
        let mut i = start;
        loop {
            let k = i - symoffset;
            if k >= limit {
                return Err(bad(format!(
                    "DT_GNU_HASH chain for bucket {b} runs past the end of its segment"
                )));
            }
            if k >= seen.len() as u64 {
                seen.resize(k as usize + 1, false);
            }
            if std::mem::replace(&mut seen[k as usize], true) {
                break; // the rest of this chain was checked already
            }
            let v = u32_at(rest, chains_at + 4 * k).unwrap_or(1);
            if v & 1 == 1 {
                end_index = end_index.max(i + 1);
                break;
            }
            i += 1;
        }
    }
    let size = chains_at + 4 * (end_index - symoffset);
    Ok((end_index, size))
}

/// Version records: returns the highest version index they define (glibc sizes its table by it).
fn check_versions(
    l: &Layout<'_>,
    info: &mut DynamicInfo,
    protected: &mut Vec<(u64, u64, &'static str)>,
) -> Result<u64, LoadError> {
    let mut ndx_high = 0u64;
    let mut records = 0u64;
    let mut count = |what: &str| -> Result<(), LoadError> {
        records += 1;
        if records > MAX_VERSION_RECORDS {
            return Err(bad(format!("{what}: too many version records")));
        }
        Ok(())
    };
    if let Some(mut at) = l.get(DT_VERNEED) {
        let mut first = true;
        loop {
            count("DT_VERNEED")?;
            let e = l.table("a DT_VERNEED record", at, 16)?;
            protected.push((at, 16, "the version records"));
            let version = u16_at(e, 0).unwrap_or(0);
            if first && version != 1 {
                return Err(bad(format!("DT_VERNEED record version {version} is not 1")));
            }
            first = false;
            let file = l.string("DT_VERNEED file", u32_at(e, 4).unwrap_or(0) as u64)?;
            if !info.needed.contains(&file) {
                // glibc asserts (aborts the process) when a version's file is not a dependency.
                return Err(bad(format!(
                    "DT_VERNEED names {}, which is not a DT_NEEDED dependency",
                    String::from_utf8_lossy(&file)
                )));
            }
            if !info.verneed_files.contains(&file) {
                info.verneed_files.push(file);
            }
            let mut aux = at
                .checked_add(u32_at(e, 8).unwrap_or(0) as u64)
                .ok_or_else(|| bad("DT_VERNEED offset overflows"))?;
            loop {
                count("DT_VERNEED")?;
                let a = l.table("a DT_VERNEED auxiliary record", aux, 16)?;
                protected.push((aux, 16, "the version records"));
                l.string("DT_VERNEED version", u32_at(a, 8).unwrap_or(0) as u64)?;
                ndx_high = ndx_high.max((u16_at(a, 6).unwrap_or(0) & 0x7fff) as u64);
                let next = u32_at(a, 12).unwrap_or(0) as u64;
                if next == 0 {
                    break;
                }
                aux = aux
                    .checked_add(next)
                    .ok_or_else(|| bad("DT_VERNEED offset overflows"))?;
            }
            let next = u32_at(e, 12).unwrap_or(0) as u64;
            if next == 0 {
                break;
            }
            at = at
                .checked_add(next)
                .ok_or_else(|| bad("DT_VERNEED offset overflows"))?;
        }
    }
    if let Some(mut at) = l.get(DT_VERDEF) {
        loop {
            count("DT_VERDEF")?;
            let e = l.table("a DT_VERDEF record", at, 20)?;
            protected.push((at, 20, "the version records"));
            let version = u16_at(e, 0).unwrap_or(0);
            if version != 1 {
                return Err(bad(format!("DT_VERDEF record version {version} is not 1")));
            }
            ndx_high = ndx_high.max((u16_at(e, 4).unwrap_or(0) & 0x7fff) as u64);
            let cnt = u16_at(e, 6).unwrap_or(0);
            let mut aux = at
                .checked_add(u32_at(e, 12).unwrap_or(0) as u64)
                .ok_or_else(|| bad("DT_VERDEF offset overflows"))?;
            // glibc reads the first auxiliary record (the version's name); others name parents.
            for k in 0..cnt.max(1) {
                count("DT_VERDEF")?;
                let a = l.table("a DT_VERDEF auxiliary record", aux, 8)?;
                protected.push((aux, 8, "the version records"));
                let name = l.string("DT_VERDEF version", u32_at(a, 0).unwrap_or(0) as u64)?;
                if k == 0 && u32_at(e, 8).unwrap_or(0) != elf_hash(&name) {
                    return Err(bad(format!(
                        "DT_VERDEF record for {} has the wrong hash",
                        String::from_utf8_lossy(&name)
                    )));
                }
                let next = u32_at(a, 4).unwrap_or(0) as u64;
                if next == 0 {
                    break;
                }
                aux = aux
                    .checked_add(next)
                    .ok_or_else(|| bad("DT_VERDEF offset overflows"))?;
            }
            let next = u32_at(e, 16).unwrap_or(0) as u64;
            if next == 0 {
                break;
            }
            at = at
                .checked_add(next)
                .ok_or_else(|| bad("DT_VERDEF offset overflows"))?;
        }
    }
    Ok(ndx_high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_hash_matches_the_reference_values() {
        assert_eq!(elf_hash(b""), 0);
        assert_eq!(elf_hash(b"GLIBC_2.2.5"), 0x09691a75);
        assert_eq!(elf_hash(b"printf"), 0x077905a6);
    }

    #[test]
    fn notes_that_overrun_their_segment_are_refused() {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&64u32.to_le_bytes()); // descsz beyond the end
        n.extend_from_slice(&NT_GNU_PROPERTY_TYPE_0.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(&[0u8; 16]);
        assert!(check_notes(&n, 8).is_err());
        assert!(check_notes(&n, 4).is_ok());
        n[4..8].copy_from_slice(&16u32.to_le_bytes());
        assert!(check_notes(&n, 8).is_ok());
    }
}
