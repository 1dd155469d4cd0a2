//! The addresses the loader calls: `DT_INIT`, `DT_FINI`, the init and fini array slots, `IFUNC`
//! and `IRELATIVE` resolvers.

use super::bad;
use super::tables_read::TablesRead;
use crate::error::LoadError;

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
            if let Some(table) = read.first_overlapping(*addr, addr.saturating_add(1)) {
                return Err(bad(format!(
                    "{what} 0x{addr:x} points into {table}, not to code"
                )));
            }
        }
        Ok(())
    }
}
