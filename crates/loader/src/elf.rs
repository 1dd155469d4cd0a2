//! Structural check of an ELF shared object, done on the sealed bytes before anything is mapped
//! as code. This is not a security boundary by itself (the signature is); it turns garbage,
//! truncated files and foreign-architecture objects into clear errors instead of dlerror text.

use crate::error::LoadError;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PN_XNUM: u16 = 0xffff;

#[cfg(target_arch = "x86_64")]
const EXPECTED_MACHINE: (u16, &str) = (62, "x86-64");
#[cfg(target_arch = "aarch64")]
const EXPECTED_MACHINE: (u16, &str) = (183, "AArch64");

fn bad(msg: impl Into<String>) -> LoadError {
    LoadError::NotASharedLibrary(msg.into())
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// Checks that `bytes` is a complete 64-bit little-endian ELF shared object (ET_DYN) for the
/// machine this crate was built for. Never panics.
pub fn check_shared_library(bytes: &[u8]) -> Result<(), LoadError> {
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
    if e_phentsize as usize != PHDR_SIZE {
        return Err(bad(format!("bad program header entry size {e_phentsize}")));
    }
    if e_phnum == 0 {
        return Err(bad("no program headers"));
    }
    if e_phnum == PN_XNUM {
        return Err(bad("extended program header numbering is not supported"));
    }
    let len = bytes.len() as u64;
    let ph_end = (e_phnum as u64)
        .checked_mul(PHDR_SIZE as u64)
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

    let mut loads = 0usize;
    for i in 0..e_phnum as u64 {
        // ph_end <= len, so every header lies inside `bytes`.
        let base = (e_phoff + i * PHDR_SIZE as u64) as usize;
        let field = |o: usize| -> Result<u64, LoadError> {
            u64_at(bytes, base + o).ok_or_else(|| bad("truncated program header"))
        };
        let p_type = u32_at(bytes, base).ok_or_else(|| bad("truncated program header"))?;
        if p_type != PT_LOAD && p_type != PT_DYNAMIC {
            continue;
        }
        let p_offset = field(8)?;
        let p_filesz = field(32)?;
        let p_memsz = field(40)?;
        let end = p_offset
            .checked_add(p_filesz)
            .ok_or_else(|| bad(format!("program header {i}: offset + size overflows")))?;
        if end > len {
            return Err(bad(format!(
                "truncated: segment {i} ({}) ends at {end} but the file has {len} bytes",
                if p_type == PT_LOAD {
                    "PT_LOAD"
                } else {
                    "PT_DYNAMIC"
                }
            )));
        }
        if p_type == PT_LOAD {
            if p_filesz > p_memsz {
                return Err(bad(format!("segment {i}: file size exceeds memory size")));
            }
            loads += 1;
        }
    }
    if loads == 0 {
        return Err(bad("no loadable (PT_LOAD) segments"));
    }
    Ok(())
}
