//! The writes relocations make: each inside a readable, writable segment (any segment with
//! `DT_TEXTREL`), clear of what the loader reads, and into an init/fini array slot only as a
//! whole code address.

use super::dynamic::{DF_TEXTREL, DT_FLAGS, DT_TEXTREL};
use super::initializers::{InitArrays, SlotValue};
use super::layout::{Layout, PF_R, PF_W};
use super::tables_read::TablesRead;
use super::{bad, range};
use crate::error::LoadError;

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
                    .first_overlapping(addr, end)
                    .unwrap_or("a table");
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
