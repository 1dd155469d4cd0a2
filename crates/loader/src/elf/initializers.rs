//! The code the loader calls when it loads and unloads the object: `DT_INIT`, `DT_FINI`, and every
//! slot of the init and fini arrays (`DT_INIT_ARRAY`, `DT_FINI_ARRAY`) as it stands after
//! relocation, so every slot must be relocated to code of this object or a dependency's function.

use super::code_pointers::CodePointers;
use super::dynamic::{
    tag_name, DT_FINI, DT_FINI_ARRAY, DT_FINI_ARRAYSZ, DT_INIT, DT_INIT_ARRAY, DT_INIT_ARRAYSZ,
};
use super::layout::Layout;
use super::symbols::{
    SymbolTable, SHN_ABS, SHN_UNDEF, STB_LOCAL, STB_WEAK, STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE,
};
use super::{bad, range, MAX_TABLE_ENTRIES};
use crate::error::LoadError;

/// `DT_INIT` and `DT_FINI`, which the loader calls: inside an executable segment.
pub(super) fn check_init_fini(l: &Layout<'_>, code: &mut CodePointers) -> Result<(), LoadError> {
    for tag in [DT_INIT, DT_FINI] {
        if let Some(addr) = l.get(tag) {
            if !l.executable(addr) {
                return Err(bad(format!(
                    "{} 0x{addr:x} does not point into an executable segment",
                    tag_name(tag)
                )));
            }
            code.push(tag_name(tag), addr);
        }
    }
    Ok(())
}

/// What finally sits in an init/fini array slot after relocation.
#[derive(Debug, Clone, Copy)]
pub(super) enum SlotValue {
    Relative(u64),
    Relr(u64),
    Symbol { index: u64, addend: u64 },
}

/// The arrays, as (name, address, size), and what each slot holds once relocated.
pub(super) struct InitArrays {
    arrays: Vec<(&'static str, u64, u64)>,
    slots: Vec<Vec<Option<SlotValue>>>,
}

impl InitArrays {
    /// The arrays, each inside a readable segment's file contents, with no slot relocated yet.
    pub(super) fn read(l: &Layout<'_>) -> Result<Self, LoadError> {
        let mut arrays: Vec<(&'static str, u64, u64)> = Vec::new();
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
        let slots: Vec<Vec<Option<SlotValue>>> = arrays
            .iter()
            .map(|(_, _, size)| vec![None; (size / 8) as usize])
            .collect();
        Ok(InitArrays { arrays, slots })
    }

    /// A relocation's write of `size` bytes at `addr`: inside an array, only a whole slot, and only
    /// with a value that is a code address.
    pub(super) fn record_write(
        &mut self,
        what: &dyn Fn() -> String,
        addr: u64,
        size: u64,
        value: Option<SlotValue>,
    ) -> Result<(), LoadError> {
        let end = addr + size;
        for (k, (name, a_addr, a_size)) in self.arrays.iter().enumerate() {
            if addr < a_addr + a_size && *a_addr < end {
                let exact = addr >= *a_addr && (addr - a_addr).is_multiple_of(8) && size == 8;
                match (exact, value) {
                    (true, Some(v)) => self.slots[k][((addr - a_addr) / 8) as usize] = Some(v),
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
    }

    /// Every slot the loader will call must hold an address in executable code.
    pub(super) fn check_slots(
        &self,
        l: &Layout<'_>,
        symbols: &SymbolTable<'_>,
        code: &mut CodePointers,
    ) -> Result<(), LoadError> {
        for (k, (name, addr, _)) in self.arrays.iter().enumerate() {
            for (i, slot) in self.slots[k].iter().enumerate() {
                let target = match slot {
                    None => {
                        return Err(bad(format!(
                            "entry {i} of {name} (at 0x{:x}) is never relocated, so it holds no code address",
                            addr + 8 * i as u64
                        )))
                    }
                    Some(SlotValue::Relative(v)) | Some(SlotValue::Relr(v)) => Some(*v),
                    Some(SlotValue::Symbol { index, addend }) => {
                        let s = symbols.get(*index);
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
                    code.push(format!("entry {i} of {name}"), t);
                }
            }
        }
        Ok(())
    }
}
