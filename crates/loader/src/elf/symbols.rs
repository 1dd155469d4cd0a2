//! The symbol table (`DT_SYMTAB`): as many symbols as the hash tables and the relocations name,
//! every name inside the string table, every `IFUNC` resolver in code.

use std::cell::OnceCell;
use std::collections::HashSet;

use super::code_pointers::CodePointers;
use super::dynamic::{DT_SYMTAB, SYM_SIZE};
use super::hash::hashed_symbol_count;
use super::layout::Layout;
use super::tables_read::TablesRead;
use super::{bad, u16_at, u32_at, u64_at, MAX_TABLE_ENTRIES};
use crate::error::LoadError;

pub(super) const STT_NOTYPE: u8 = 0;
pub(super) const STT_FUNC: u8 = 2;
pub(super) const STT_GNU_IFUNC: u8 = 10;
pub(super) const STB_LOCAL: u8 = 0;
pub(super) const STB_WEAK: u8 = 2;
pub(super) const SHN_UNDEF: u16 = 0;
pub(super) const SHN_ABS: u16 = 0xfff1;

#[derive(Debug, Clone, Copy)]
pub(super) struct Sym {
    pub(super) name: u32,
    pub(super) info: u8,
    pub(super) shndx: u16,
    pub(super) value: u64,
}

/// The checked symbol table.
pub(super) struct SymbolTable<'a> {
    bytes: &'a [u8],
    count: u64,
    /// The names of the symbols this object defines, computed when first needed.
    defined_names: OnceCell<HashSet<Vec<u8>>>,
}

impl<'a> SymbolTable<'a> {
    /// Reads the table, covering every symbol the hash tables and the relocations (which name up
    /// to `reloc_syms` symbols) refer to; records the hash tables and the table as read, and every
    /// `IFUNC` resolver as called.
    pub(super) fn read(
        l: &Layout<'a>,
        reloc_syms: u64,
        read: &mut TablesRead,
        code: &mut CodePointers,
    ) -> Result<Self, LoadError> {
        let nsyms = hashed_symbol_count(l, read)?.max(reloc_syms);
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
        read.push(symtab_addr, nsyms * SYM_SIZE, "the symbol table");
        let symbols = SymbolTable {
            bytes: symtab,
            count: nsyms,
            defined_names: OnceCell::new(),
        };
        for i in 0..nsyms {
            let s = symbols.get(i);
            let name = l.string(&format!("symbol {i}"), s.name as u64)?;
            if s.info & 0xf == STT_GNU_IFUNC && s.shndx != SHN_UNDEF {
                let what = format!("IFUNC symbol {} resolver", String::from_utf8_lossy(&name));
                if s.shndx == SHN_ABS || !l.executable(s.value) {
                    return Err(bad(format!(
                        "{what} 0x{:x} is not in an executable segment",
                        s.value
                    )));
                }
                code.push(what, s.value);
            }
        }
        Ok(symbols)
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Symbol `i`, which is below [`SymbolTable::count`].
    pub(super) fn get(&self, i: u64) -> Sym {
        let b = &self.bytes[(i * SYM_SIZE) as usize..((i + 1) * SYM_SIZE) as usize];
        Sym {
            name: u32_at(b, 0).unwrap_or(0),
            info: b[4],
            shndx: u16_at(b, 6).unwrap_or(0),
            value: u64_at(b, 8).unwrap_or(0),
        }
    }

    /// The names of the symbols this object defines.
    pub(super) fn defined_names(&self, l: &Layout<'_>) -> &HashSet<Vec<u8>> {
        self.defined_names.get_or_init(|| {
            (0..self.count)
                .map(|i| self.get(i))
                .filter(|s| s.shndx != SHN_UNDEF)
                .filter_map(|s| l.string("symbol", s.name as u64).ok())
                .collect()
        })
    }
}
