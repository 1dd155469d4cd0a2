//! The dynamic section: where it lies, its entries and their string table, the names the
//! dependency policy needs, and the entries glibc must see together, never, or pointing inside
//! the loaded segments.

use super::layout::{Layout, PF_R, PF_W};
use super::{bad, range, u64_at};
use crate::error::LoadError;

pub(crate) const DT_NULL: u64 = 0;
pub(super) const DT_NEEDED: u64 = 1;
pub(super) const DT_PLTRELSZ: u64 = 2;
pub(super) const DT_PLTGOT: u64 = 3;
pub(super) const DT_HASH: u64 = 4;
pub(super) const DT_STRTAB: u64 = 5;
pub(super) const DT_SYMTAB: u64 = 6;
pub(super) const DT_RELA: u64 = 7;
pub(super) const DT_RELASZ: u64 = 8;
pub(super) const DT_RELAENT: u64 = 9;
pub(super) const DT_STRSZ: u64 = 10;
pub(super) const DT_SYMENT: u64 = 11;
pub(super) const DT_INIT: u64 = 12;
pub(super) const DT_FINI: u64 = 13;
pub(super) const DT_SONAME: u64 = 14;
pub(super) const DT_RPATH: u64 = 15;
pub(super) const DT_REL: u64 = 17;
pub(super) const DT_RELSZ: u64 = 18;
pub(super) const DT_RELENT: u64 = 19;
pub(super) const DT_PLTREL: u64 = 20;
pub(super) const DT_TEXTREL: u64 = 22;
pub(super) const DT_JMPREL: u64 = 23;
pub(super) const DT_INIT_ARRAY: u64 = 25;
pub(super) const DT_FINI_ARRAY: u64 = 26;
pub(super) const DT_INIT_ARRAYSZ: u64 = 27;
pub(super) const DT_FINI_ARRAYSZ: u64 = 28;
pub(super) const DT_RUNPATH: u64 = 29;
pub(super) const DT_FLAGS: u64 = 30;
pub(super) const DT_PREINIT_ARRAY: u64 = 32;
pub(super) const DT_PREINIT_ARRAYSZ: u64 = 33;
pub(super) const DT_SYMTAB_SHNDX: u64 = 34;
pub(super) const DT_RELRSZ: u64 = 35;
pub(super) const DT_RELR: u64 = 36;
pub(super) const DT_RELRENT: u64 = 37;
pub(super) const DT_GNU_HASH: u64 = 0x6fff_fef5;
pub(super) const DT_TLSDESC_PLT: u64 = 0x6fff_fef6;
pub(super) const DT_TLSDESC_GOT: u64 = 0x6fff_fef7;
pub(super) const DT_GNU_CONFLICT: u64 = 0x6fff_fef8;
pub(super) const DT_GNU_LIBLIST: u64 = 0x6fff_fef9;
pub(super) const DT_CONFIG: u64 = 0x6fff_fefa;
pub(super) const DT_DEPAUDIT: u64 = 0x6fff_fefb;
pub(super) const DT_AUDIT: u64 = 0x6fff_fefc;
pub(super) const DT_PLTPAD: u64 = 0x6fff_fefd;
pub(super) const DT_MOVETAB: u64 = 0x6fff_fefe;
pub(super) const DT_SYMINFO: u64 = 0x6fff_feff;
pub(super) const DT_VERSYM: u64 = 0x6fff_fff0;
pub(super) const DT_RELACOUNT: u64 = 0x6fff_fff9;
pub(super) const DT_FLAGS_1: u64 = 0x6fff_fffb;
pub(crate) const DT_VERDEF: u64 = 0x6fff_fffc;
pub(super) const DT_VERNEED: u64 = 0x6fff_fffe;
pub(super) const DT_AUXILIARY: u64 = 0x7fff_fffd;
pub(super) const DT_FILTER: u64 = 0x7fff_ffff;

pub(super) const DF_TEXTREL: u64 = 0x4;

/// The size of a symbol table entry (`DT_SYMENT`).
pub(super) const SYM_SIZE: u64 = 24;
/// The size of a `RELA` relocation (`DT_RELAENT`).
pub(super) const RELA_SIZE: u64 = 24;

/// The name of a dynamic tag, for messages.
pub(super) fn tag_name(tag: u64) -> String {
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

/// The entries of `PT_DYNAMIC` up to, not including, `DT_NULL`: the section must lie inside one
/// `PT_LOAD` both by file offset and by address (the same bytes), in a readable and writable
/// segment (glibc relocates entries in place), and be terminated.
pub(super) fn read_entries(layout: &Layout<'_>) -> Result<Vec<(u64, u64)>, LoadError> {
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
    let mut entries = Vec::new();
    let mut terminated = false;
    for entry in dyn_bytes.chunks_exact(16) {
        let tag = u64_at(entry, 0).unwrap_or(0);
        let val = u64_at(entry, 8).unwrap_or(0);
        if tag == DT_NULL {
            terminated = true;
            break;
        }
        entries.push((tag, val));
    }
    if !terminated {
        return Err(bad(
            "the dynamic section has no DT_NULL terminator inside PT_DYNAMIC",
        ));
    }
    Ok(entries)
}

/// The string table (`DT_STRTAB`, `DT_STRSZ` bytes), which every name refers to, and its address.
pub(super) fn read_string_table<'a>(layout: &Layout<'a>) -> Result<(&'a [u8], u64), LoadError> {
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
    Ok((table, strtab))
}

/// The names the dependency policy needs; every one inside the string table.
pub(super) fn dynamic_info(layout: &Layout<'_>) -> Result<DynamicInfo, LoadError> {
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

/// Entries glibc dereferences together present together, entries it must never see absent, entry
/// sizes as this machine's, and every address the loader (or the unwinder, or a debugger) may
/// follow inside the loaded segments.
pub(super) fn check_entries(l: &Layout<'_>) -> Result<(), LoadError> {
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
    Ok(())
}
