//! What relocations must leave alone and calls must not enter: the headers and tables the dynamic
//! loader reads, and the writes it makes when it relocates.

use super::dynamic::{DF_TEXTREL, DT_FLAGS, DT_TEXTREL};
use super::init_arrays::{InitArrays, SlotValue};
use super::layout::Layout;
use super::program_headers::{PF_R, PF_W};
use super::{bad, range};
use crate::error::LoadError;

/// The headers, tables and segments the dynamic loader reads, as (address, size, name), in the
/// order they were found: the first that holds an address names it in a message.
pub(super) struct TablesRead(Vec<(u64, u64, &'static str)>);

impl TablesRead {
    /// Starts with the dynamic section, which every object has.
    pub(super) fn new(l: &Layout<'_>) -> Self {
        TablesRead(vec![(
            l.dynamic.vaddr,
            l.dynamic.filesz,
            "the dynamic section",
        )])
    }

    pub(super) fn push(&mut self, addr: u64, size: u64, name: &'static str) {
        self.0.push((addr, size, name));
    }

    /// (start, end), sorted by start, overlapping ranges merged (for the lookup).
    fn merged(&self) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = self
            .0
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
    }
}

/// Addresses the loader calls: inside an executable segment (checked as they are found) and,
/// once every table is known, outside the headers and tables ([`CodePointers::check_outside`]).
#[derive(Default)]
pub(super) struct CodePointers(Vec<(String, u64)>);

impl CodePointers {
    pub(super) fn push(&mut self, what: String, addr: u64) {
        self.0.push((what, addr));
    }

    /// No address the loader calls points into a header or table it reads.
    pub(super) fn check_outside(&self, read: &TablesRead) -> Result<(), LoadError> {
        for (what, addr) in &self.0 {
            if let Some((_, _, table)) = read
                .0
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
}

/// The writes relocations make: each inside a readable, writable segment (any segment with
/// `DT_TEXTREL`), clear of what the loader reads, and into an init/fini array slot only as a
/// whole code address.
pub(super) struct Writes<'l, 'a> {
    layout: &'l Layout<'a>,
    textrel: bool,
    tables_read: TablesRead,
    /// `tables_read`, merged for the lookup.
    protected: Vec<(u64, u64)>,
    arrays: InitArrays,
}

impl<'l, 'a> Writes<'l, 'a> {
    pub(super) fn new(l: &'l Layout<'a>, tables_read: TablesRead, arrays: InitArrays) -> Self {
        let textrel =
            l.get(DT_TEXTREL).is_some() || l.get(DT_FLAGS).is_some_and(|f| f & DF_TEXTREL != 0);
        Writes {
            layout: l,
            textrel,
            protected: tables_read.merged(),
            tables_read,
            arrays,
        }
    }

    /// A write of `size` bytes at `addr` by `what`, leaving `value` there when it is a code
    /// address the loader may call.
    pub(super) fn check(
        &mut self,
        what: &dyn Fn() -> String,
        addr: u64,
        size: u64,
        value: Option<SlotValue>,
    ) -> Result<(), LoadError> {
        let Some(seg) = self.layout.mapped(addr, size) else {
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
        if seg.flags & PF_W == 0 && !self.textrel {
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
        let k = self.protected.partition_point(|(p_addr, _)| *p_addr < end);
        if let Some((_, p_end)) = k.checked_sub(1).map(|k| self.protected[k]) {
            if p_end > addr {
                let p_name = self
                    .tables_read
                    .0
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
        self.arrays.record_write(what, addr, size, value)
    }

    /// The tables the loader reads and the init/fini arrays as the relocations left them.
    pub(super) fn finish(self) -> (TablesRead, InitArrays) {
        (self.tables_read, self.arrays)
    }
}
