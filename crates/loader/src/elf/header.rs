//! The ELF header: identification, type, machine, and where the program and section header
//! tables lie.

use super::{bad, u16_at, u32_at, u64_at};
use crate::error::LoadError;

pub(super) const EHDR_SIZE: usize = 64;
pub(super) const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: usize = 64;
const ET_DYN: u16 = 3;
const PN_XNUM: u16 = 0xffff;
/// glibc copies the program headers onto the stack of the thread calling `dlopen` (and keeps a
/// variable-length array of load commands there): a huge count overflows small thread stacks.
pub const MAX_PHNUM: u16 = 512;

#[cfg(target_arch = "x86_64")]
const EXPECTED_MACHINE: (u16, &str) = (62, "x86-64");
#[cfg(target_arch = "aarch64")]
const EXPECTED_MACHINE: (u16, &str) = (183, "AArch64");

/// Checks the header; returns the program header table's file offset and entry count.
pub(super) fn parse_header(bytes: &[u8]) -> Result<(u64, u64), LoadError> {
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
