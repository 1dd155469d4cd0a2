//! The headers, tables and segments the dynamic loader reads: what no relocation may overwrite and
//! no call may enter.

use super::layout::Layout;

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
    pub(super) fn merged(&self) -> Vec<(u64, u64)> {
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

    /// The name of the first table that overlaps `[start, end)`.
    pub(super) fn first_overlapping(&self, start: u64, end: u64) -> Option<&'static str> {
        self.0
            .iter()
            .find(|(a, s, _)| start < a.saturating_add(*s) && *a < end)
            .map(|(_, _, name)| *name)
    }
}
