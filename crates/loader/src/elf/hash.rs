//! The symbol hash tables (`DT_HASH`, `DT_GNU_HASH`): buckets and chains in range, no cycles, a
//! power-of-two bloom filter; they imply how many symbols the symbol table holds.

use super::dynamic::{DT_GNU_HASH, DT_HASH};
use super::layout::Layout;
use super::tables_read::TablesRead;
use super::{bad, u32_at, MAX_TABLE_ENTRIES};
use crate::error::LoadError;

/// The hash tables (at least one), each recorded as read; returns the symbol count they imply.
pub(super) fn hashed_symbol_count(l: &Layout<'_>, read: &mut TablesRead) -> Result<u64, LoadError> {
    let sysv = l.get(DT_HASH);
    let gnu = l.get(DT_GNU_HASH);
    if sysv.is_none() && gnu.is_none() {
        return Err(bad("no symbol hash table (DT_HASH or DT_GNU_HASH)"));
    }
    let mut nsyms = 0u64;
    if let Some(addr) = sysv {
        let (n, size) = check_sysv_hash(l, addr)?;
        nsyms = nsyms.max(n);
        read.push(addr, size, "the DT_HASH table");
    }
    if let Some(addr) = gnu {
        let (n, size) = check_gnu_hash(l, addr)?;
        nsyms = nsyms.max(n);
        read.push(addr, size, "the DT_GNU_HASH table");
    }
    Ok(nsyms)
}

/// The classic SysV ELF hash (as in `DT_HASH` and version records).
pub(super) fn elf_hash(name: &[u8]) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_hash_matches_the_reference_values() {
        assert_eq!(elf_hash(b""), 0);
        assert_eq!(elf_hash(b"GLIBC_2.2.5"), 0x09691a75);
        assert_eq!(elf_hash(b"printf"), 0x077905a6);
    }
}
