//! The checked layout of a shared object, and the queries every other check asks of it: which
//! segment holds an address, which file bytes the loader maps there, which tables it reads.

use super::{bad, range};
use crate::error::LoadError;

pub(super) const PF_X: u32 = 1;
pub(super) const PF_W: u32 = 2;
pub(super) const PF_R: u32 = 4;

#[derive(Debug, Clone, Copy)]
pub(super) struct Seg {
    pub(super) index: u64,
    pub(super) vaddr: u64,
    pub(super) memsz: u64,
    pub(super) offset: u64,
    pub(super) filesz: u64,
    pub(super) flags: u32,
    pub(super) align: u64,
}

impl Seg {
    pub(super) fn mem_end(&self) -> u64 {
        self.vaddr + self.memsz // checked when the segment was accepted
    }
}

/// The checked layout of a shared object: header, segments, dynamic section, string table.
pub(super) struct Layout<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) phoff: u64,
    pub(super) phnum: u64,
    pub(super) loads: Vec<Seg>,
    pub(super) dynamic: Seg,
    pub(super) others: Vec<(u32, Seg)>,
    /// (tag, value) up to, not including, DT_NULL.
    pub(super) dyn_entries: Vec<(u64, u64)>,
    pub(super) strtab: &'a [u8],
    pub(super) strtab_addr: u64,
}

impl<'a> Layout<'a> {
    /// The last value of `tag` (glibc keeps the last entry of a repeated tag).
    pub(super) fn get(&self, tag: u64) -> Option<u64> {
        self.dyn_entries
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    pub(super) fn all(&self, tag: u64) -> impl Iterator<Item = u64> + '_ {
        self.dyn_entries
            .iter()
            .filter(move |(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    /// The PT_LOAD whose memory image contains `[addr, addr + len)` (len 0: `addr` may be its end).
    /// The segments are sorted and disjoint, so only the last one starting at or below `addr` can.
    pub(super) fn segment_at(&self, addr: u64) -> Option<&Seg> {
        let n = self.loads.partition_point(|s| s.vaddr <= addr);
        n.checked_sub(1).map(|i| &self.loads[i])
    }

    pub(super) fn mapped(&self, addr: u64, len: u64) -> Option<&Seg> {
        let seg = self.segment_at(addr)?;
        let end = addr.checked_add(len)?;
        if len == 0 {
            return (addr <= seg.mem_end()).then_some(seg);
        }
        (end <= seg.mem_end()).then_some(seg)
    }

    /// Whether the loader may jump to `addr`: an executable segment's bytes from the file (the
    /// zero-filled part of a segment is no code; zero bytes crash when run).
    pub(super) fn executable(&self, addr: u64) -> bool {
        self.segment_at(addr)
            .is_some_and(|s| s.flags & PF_X != 0 && addr - s.vaddr < s.filesz)
    }

    /// The file bytes the loader maps at `[addr, addr + len)`, if they come from the file.
    pub(super) fn file_bytes(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let end = addr.checked_add(len)?;
        let seg = self.segment_at(addr)?;
        if end > seg.vaddr + seg.filesz {
            return None;
        }
        let off = seg.offset + (addr - seg.vaddr);
        let off = usize::try_from(off).ok()?;
        let len = usize::try_from(len).ok()?;
        self.bytes.get(off..off.checked_add(len)?)
    }

    /// The file bytes from `addr` to the end of the file-backed part of its segment.
    pub(super) fn file_bytes_to_end(&self, addr: u64) -> Option<&'a [u8]> {
        let seg = self.segment_at(addr)?;
        let end = seg.vaddr + seg.filesz;
        if addr >= end {
            return None;
        }
        self.file_bytes(addr, end - addr)
    }

    /// A table the loader reads: `[addr, addr + len)` must come from the file (an empty table
    /// only needs its address inside a segment).
    pub(super) fn table(&self, what: &str, addr: u64, len: u64) -> Result<&'a [u8], LoadError> {
        let bytes = if len == 0 && self.mapped(addr, 0).is_some() {
            &[][..]
        } else {
            self.file_bytes(addr, len).ok_or_else(|| {
                bad(format!(
                    "{what} at {} lies outside the loaded segments' file contents",
                    range(addr, len)
                ))
            })?
        };
        match self.segment_at(addr) {
            Some(seg) if seg.flags & PF_R != 0 => Ok(bytes),
            Some(seg) => Err(bad(format!(
                "{what} at {} lies in segment {}, which is not readable",
                range(addr, len),
                seg.index
            ))),
            None => Err(bad(format!(
                "{what} at {} lies outside the loaded segments",
                range(addr, len)
            ))),
        }
    }

    pub(super) fn string(&self, what: &str, offset: u64) -> Result<Vec<u8>, LoadError> {
        let strsz = self.strtab.len() as u64;
        if offset >= strsz {
            return Err(bad(format!(
                "{what} string offset 0x{offset:x} is outside DT_STRSZ (0x{strsz:x})"
            )));
        }
        let tail = &self.strtab[offset as usize..];
        let n = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Ok(tail[..n].to_vec())
    }
}
