//! Symbol versions: the version records (`DT_VERNEED`, `DT_VERDEF`: chains in range, the first
//! version 1, every needed file a `DT_NEEDED` entry) and the version table (`DT_VERSYM`: every
//! index defined).

use super::dynamic::{DynamicInfo, DT_VERDEF, DT_VERNEED, DT_VERSYM};
use super::hash::elf_hash;
use super::layout::Layout;
use super::tables_read::TablesRead;
use super::{bad, u16_at, u32_at};
use crate::error::LoadError;

/// Upper bound on version records walked.
const MAX_VERSION_RECORDS: u64 = 1 << 16;

/// The version table and the highest version index the records define.
pub(super) struct VersionTable<'a> {
    versym: Option<&'a [u8]>,
    ndx_high: u64,
}

impl<'a> VersionTable<'a> {
    /// Checks the version records and reads `DT_VERSYM` for `nsyms` symbols; both are recorded as
    /// read. The `DT_VERNEED` files are added to `info`.
    ///
    /// glibc indexes a table of `ndx_high + 1` versions by each DT_VERSYM entry, without a bounds
    /// check (and has no table at all when `ndx_high` is 0): for the symbols relocations refer to,
    /// and, once the table exists, for every symbol another object may look up.
    pub(super) fn read(
        l: &Layout<'a>,
        info: &mut DynamicInfo,
        nsyms: u64,
        read: &mut TablesRead,
    ) -> Result<Self, LoadError> {
        let ndx_high = check_versions(l, info, read)?;
        if ndx_high > 0 && l.get(DT_VERSYM).is_none() {
            // glibc then reads the version table through the missing entry (a null pointer).
            return Err(bad("DT_VERNEED/DT_VERDEF without DT_VERSYM"));
        }
        let versym = match l.get(DT_VERSYM) {
            Some(addr) => {
                let table = l.table("the version table (DT_VERSYM)", addr, nsyms * 2)?;
                read.push(addr, nsyms * 2, "the version table");
                Some(table)
            }
            None => None,
        };
        let table = VersionTable { versym, ndx_high };
        if ndx_high > 0 {
            for i in 0..nsyms {
                table.check(i)?;
            }
        }
        Ok(table)
    }

    /// The version index of symbol `i` is one the records define.
    pub(super) fn check(&self, i: u64) -> Result<(), LoadError> {
        let Some(table) = self.versym else {
            return Ok(());
        };
        let ndx_high = self.ndx_high;
        let ndx = u16_at(table, i * 2).unwrap_or(0) & 0x7fff;
        if ndx as u64 > ndx_high {
            return Err(bad(format!(
                "DT_VERSYM gives symbol {i} version index {ndx}, but the version records define indices up to {ndx_high}"
            )));
        }
        Ok(())
    }
}

fn check_versions(
    l: &Layout<'_>,
    info: &mut DynamicInfo,
    read: &mut TablesRead,
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
            read.push(at, 16, "the version records");
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
                read.push(aux, 16, "the version records");
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
            read.push(at, 20, "the version records");
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
                read.push(aux, 8, "the version records");
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
