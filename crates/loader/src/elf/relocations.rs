//! Relocations (`DT_RELA`, `DT_JMPREL`, `DT_RELR`): every table inside the file, every type one
//! the loader applies in a shared object, every write where the loader may write, and the code
//! `IRELATIVE` resolvers run.

use super::code_pointers::CodePointers;
use super::dynamic::{
    DT_JMPREL, DT_PLTRELSZ, DT_RELA, DT_RELACOUNT, DT_RELASZ, DT_RELR, DT_RELRSZ, RELA_SIZE,
};
use super::initializers::SlotValue;
use super::layout::Layout;
use super::program_headers::PT_TLS;
use super::symbols::{SymbolTable, SHN_UNDEF, STB_LOCAL};
use super::tables_read::TablesRead;
use super::versions::VersionTable;
use super::writes::Writes;
use super::{bad, u64_at, MAX_TABLE_ENTRIES};
use crate::error::LoadError;

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

/// The relocation tables of an object.
pub(super) struct Relocations<'a> {
    /// `DT_RELA` and `DT_JMPREL`, as (name, address, bytes).
    tables: Vec<(&'static str, u64, &'a [u8])>,
    /// `DT_RELR`.
    relr: Option<&'a [u8]>,
}

impl<'a> Relocations<'a> {
    /// The tables, each inside a readable segment's file contents, a whole number of entries, at
    /// most [`MAX_TABLE_ENTRIES`] relocations in all; recorded as read.
    pub(super) fn read(l: &Layout<'a>, read: &mut TablesRead) -> Result<Self, LoadError> {
        let mut tables: Vec<(&'static str, u64, &'a [u8])> = Vec::new();
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
                read.push(addr, size, "the DT_RELR table");
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
            read.push(*addr, t.len() as u64, "a relocation table");
        }
        if total > MAX_TABLE_ENTRIES {
            return Err(bad(format!(
                "{total} relocations exceed the limit of {MAX_TABLE_ENTRIES}"
            )));
        }
        Ok(Relocations { tables, relr })
    }

    /// How many symbols the relocations refer to: the loader reads the symbol of every relocation,
    /// so the symbol table must cover them all, also those the hash tables do not (undefined
    /// symbols in an object that exports nothing).
    pub(super) fn symbol_count(&self) -> u64 {
        self.tables
            .iter()
            .flat_map(|(_, _, t)| t.chunks_exact(RELA_SIZE as usize))
            .map(|r| u64_at(r, 8).unwrap_or(0) >> 32)
            .max()
            .map_or(0, |m| m + 1)
    }

    /// Every write the relocations make, in the loader's order: `DT_RELR` first (glibc applies it
    /// before `DT_RELA`), then `DT_RELA` and `DT_JMPREL`.
    ///
    /// glibc applies the first `DT_RELACOUNT` entries of `DT_RELA` as relative relocations without
    /// bounding the count by `DT_RELASZ` (and asserts each is one).
    pub(super) fn apply(
        &self,
        l: &Layout<'_>,
        symbols: &SymbolTable<'_>,
        versions: &VersionTable<'_>,
        writes: &mut Writes<'_, '_>,
        code: &mut CodePointers,
    ) -> Result<(), LoadError> {
        if let Some(t) = self.relr {
            let mut next: Option<u64> = None;
            let mut count = 0u64;
            for (n, entry) in t.chunks_exact(8).enumerate() {
                let e = u64_at(entry, 0).unwrap_or(0);
                let what = || format!("DT_RELR entry {n}");
                let mut write = |addr: u64| {
                    count += 1;
                    if count > MAX_TABLE_ENTRIES {
                        return Err(bad("DT_RELR encodes too many relocations"));
                    }
                    let value = l.file_bytes(addr, 8).and_then(|b| u64_at(b, 0));
                    writes.check(&what, addr, 8, value.map(SlotValue::Relr))
                };
                if e & 1 == 0 {
                    write(e)?;
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
                            write(addr)?;
                        }
                    }
                    next = Some(
                        base.checked_add(63 * 8)
                            .ok_or_else(|| bad("DT_RELR address overflows"))?,
                    );
                }
            }
        }
        let relacount = l.get(DT_RELACOUNT).unwrap_or(0);
        if let Some((_, _, t)) = self.tables.iter().find(|(name, _, _)| *name == "DT_RELA") {
            let n = t.len() as u64 / RELA_SIZE;
            if relacount > n {
                return Err(bad(format!(
                    "DT_RELACOUNT {relacount} exceeds the {n} entries of DT_RELA"
                )));
            }
        }
        for (name, _, t) in &self.tables {
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
                versions.check(r_sym)?; // r_sym < nsyms: nsyms covers every relocation's symbol
                match kind {
                    Reloc::None => {}
                    Reloc::Copy => {
                        return Err(bad(format!(
                            "{} is a copy relocation, which a shared object cannot use",
                            what()
                        )))
                    }
                    Reloc::Relative => {
                        writes.check(&what, offset, 8, Some(SlotValue::Relative(addend)))?
                    }
                    Reloc::IRelative => {
                        if !l.executable(addend) {
                            return Err(bad(format!(
                                "{}: its resolver 0x{addend:x} is not in an executable segment",
                                what()
                            )));
                        }
                        code.push(format!("the resolver of {}", what()), addend);
                        writes.check(&what, offset, 8, None)?
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
                        writes.check(&what, offset, size, value)?
                    }
                    Reloc::Tls { size, r#static } => {
                        if r#static {
                            check_static_tls(l, symbols, r_sym, &what)?;
                        }
                        writes.check(&what, offset, size, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// A static-TLS relocation (TPOFF, TLSDESC) that resolves into this object makes glibc place the
/// object's TLS block in static TLS, dividing by its PT_TLS alignment (0 without PT_TLS).
fn check_static_tls(
    l: &Layout<'_>,
    symbols: &SymbolTable<'_>,
    r_sym: u64,
    what: &dyn Fn() -> String,
) -> Result<(), LoadError> {
    if l.others.iter().any(|(t, _)| *t == PT_TLS) {
        return Ok(());
    }
    let s = symbols.get(r_sym);
    let local = r_sym == 0 || s.info >> 4 == STB_LOCAL || s.shndx != SHN_UNDEF;
    let names = symbols.defined_names(l);
    let name = l.string("symbol", s.name as u64)?;
    if local || names.contains(&name) {
        return Err(bad(format!(
            "{} is a static TLS relocation against this object, which has no PT_TLS segment",
            what()
        )));
    }
    Ok(())
}
