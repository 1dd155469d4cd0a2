//! The program header table: the segments the loader maps (`PT_LOAD`), where the dynamic section
//! lies (`PT_DYNAMIC`), and the other segments glibc reads (`PT_TLS`, `PT_GNU_RELRO`, `PT_PHDR`,
//! notes, the unwind table header).

use super::header::{EHDR_SIZE, PHDR_SIZE};
use super::layout::{Layout, Seg, PF_R, PF_W, PF_X};
use super::notes::check_notes;
use super::tables_read::TablesRead;
use super::{bad, page_size, range, u32_at, u64_at};
use crate::error::LoadError;

const MAX_ALIGN: u64 = 1 << 30;
/// Thread-local storage larger than this, or aligned more strictly, is refused: glibc allocates it
/// for every thread and aborts the process when that allocation fails.
const MAX_TLS_SIZE: u64 = 64 << 20;
const MAX_TLS_ALIGN: u64 = 64 << 10;
/// User-space addresses on x86-64 and AArch64 (48-bit).
const MAX_VADDR: u64 = 1 << 47;

pub(super) const PT_LOAD: u32 = 1;
pub(super) const PT_DYNAMIC: u32 = 2;
pub(super) const PT_NOTE: u32 = 4;
pub(super) const PT_PHDR: u32 = 6;
pub(super) const PT_TLS: u32 = 7;
pub(super) const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
pub(super) const PT_GNU_RELRO: u32 = 0x6474_e552;
pub(super) const PT_GNU_PROPERTY: u32 = 0x6474_e553;

pub(super) fn segment_name(p_type: u32) -> &'static str {
    match p_type {
        PT_LOAD => "PT_LOAD",
        PT_DYNAMIC => "PT_DYNAMIC",
        PT_NOTE => "PT_NOTE",
        PT_PHDR => "PT_PHDR",
        PT_TLS => "PT_TLS",
        PT_GNU_EH_FRAME => "PT_GNU_EH_FRAME",
        PT_GNU_RELRO => "PT_GNU_RELRO",
        PT_GNU_PROPERTY => "PT_GNU_PROPERTY",
        _ => "segment",
    }
}

/// The segments the checks look at, in the order of the program header table.
pub(super) struct Segments {
    /// The `PT_LOAD` segments, sorted by address and not sharing a page.
    pub(super) loads: Vec<Seg>,
    pub(super) dynamic: Seg,
    /// `PT_NOTE`, `PT_PHDR`, `PT_TLS` and the GNU segments, with their types.
    pub(super) others: Vec<(u32, Seg)>,
}

/// Reads the program header table (inside the file: checked with the header) and checks every
/// segment the loader maps or reads on its own.
pub(super) fn read_segments(bytes: &[u8], phoff: u64, phnum: u64) -> Result<Segments, LoadError> {
    let len = bytes.len() as u64;
    let page = page_size();

    let mut loads: Vec<Seg> = Vec::new();
    let mut dynamic: Option<Seg> = None;
    let mut others: Vec<(u32, Seg)> = Vec::new();
    for i in 0..phnum {
        // parse_header checked that the whole table lies inside `bytes`.
        let base = phoff + i * PHDR_SIZE;
        let field = |o: u64| u64_at(bytes, base + o).ok_or_else(|| bad("truncated program header"));
        let p_type = u32_at(bytes, base).ok_or_else(|| bad("truncated program header"))?;
        let tracked = matches!(
            p_type,
            PT_LOAD
                | PT_DYNAMIC
                | PT_NOTE
                | PT_PHDR
                | PT_TLS
                | PT_GNU_EH_FRAME
                | PT_GNU_RELRO
                | PT_GNU_PROPERTY
        );
        if !tracked {
            continue;
        }
        let name = segment_name(p_type);
        let seg = Seg {
            index: i,
            flags: u32_at(bytes, base + 4).ok_or_else(|| bad("truncated program header"))?,
            offset: field(8)?,
            vaddr: field(16)?,
            filesz: field(32)?,
            memsz: field(40)?,
            align: field(48)?,
        };
        let file_end = seg
            .offset
            .checked_add(seg.filesz)
            .ok_or_else(|| bad(format!("program header {i}: offset + size overflows")))?;
        if file_end > len {
            return Err(bad(format!(
                "truncated: segment {i} ({name}) ends at {file_end} but the file has {len} bytes"
            )));
        }
        if seg.filesz > seg.memsz {
            return Err(bad(format!(
                "segment {i} ({name}): file size exceeds memory size"
            )));
        }
        match seg.vaddr.checked_add(seg.memsz) {
            Some(end) if end <= MAX_VADDR => {}
            _ => {
                return Err(bad(format!(
                    "segment {i} ({name}) at {} is outside the user address space",
                    range(seg.vaddr, seg.memsz)
                )))
            }
        }
        match p_type {
            PT_LOAD => {
                if seg.memsz == 0 {
                    return Err(bad(format!("segment {i} (PT_LOAD) is empty")));
                }
                // The loader zero-fills memory beyond p_filesz; zero bytes are no code (they crash
                // when run), and linkers never give code a zero-filled tail.
                if seg.flags & PF_X != 0 && seg.filesz != seg.memsz {
                    return Err(bad(format!(
                        "segment {i} (PT_LOAD) is executable but only 0x{:x} of its 0x{:x} bytes come from the file (code must not be zero-filled)",
                        seg.filesz, seg.memsz
                    )));
                }
                if seg.align > 1 {
                    if !seg.align.is_power_of_two() {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD): p_align 0x{:x} is not a power of two",
                            seg.align
                        )));
                    }
                    if seg.align > MAX_ALIGN {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD): p_align 0x{:x} exceeds 0x{MAX_ALIGN:x}",
                            seg.align
                        )));
                    }
                    if seg.offset % seg.align != seg.vaddr % seg.align {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD): p_offset 0x{:x} and p_vaddr 0x{:x} are not congruent modulo p_align 0x{:x}",
                            seg.offset, seg.vaddr, seg.align
                        )));
                    }
                }
                if !seg.vaddr.wrapping_sub(seg.offset).is_multiple_of(page) {
                    return Err(bad(format!(
                        "segment {i} (PT_LOAD): p_vaddr 0x{:x} - p_offset 0x{:x} is not a multiple of the page size 0x{page:x}",
                        seg.vaddr, seg.offset
                    )));
                }
                if let Some(prev) = loads.last() {
                    let prev_end = prev.mem_end().next_multiple_of(page);
                    let start = seg.vaddr - seg.vaddr % page;
                    if seg.vaddr <= prev.vaddr {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD) at 0x{:x} is not sorted after segment {} at 0x{:x}",
                            seg.vaddr, prev.index, prev.vaddr
                        )));
                    }
                    if start < prev_end {
                        return Err(bad(format!(
                            "segment {i} (PT_LOAD) at {} overlaps the pages of segment {} at {}",
                            range(seg.vaddr, seg.memsz),
                            prev.index,
                            range(prev.vaddr, prev.memsz)
                        )));
                    }
                }
                loads.push(seg);
            }
            PT_DYNAMIC => {
                if dynamic.is_some() {
                    return Err(bad("more than one PT_DYNAMIC segment"));
                }
                dynamic = Some(seg);
            }
            _ => {
                if p_type != PT_NOTE && others.iter().any(|(t, _)| *t == p_type) {
                    return Err(bad(format!("more than one {name} segment")));
                }
                others.push((p_type, seg));
            }
        }
    }
    if loads.is_empty() {
        return Err(bad("no loadable (PT_LOAD) segments"));
    }
    let dynamic = dynamic.ok_or_else(|| bad("no dynamic section (PT_DYNAMIC)"))?;
    if dynamic.filesz == 0 {
        return Err(bad("the dynamic section (PT_DYNAMIC) is empty"));
    }
    Ok(Segments {
        loads,
        dynamic,
        others,
    })
}

/// The segments other than `PT_LOAD` and `PT_DYNAMIC`: each inside the loaded segments, with the
/// properties glibc relies on; what they hold is added to the tables the loader reads.
pub(super) fn check_other_segments(l: &Layout<'_>, read: &mut TablesRead) -> Result<(), LoadError> {
    for (p_type, seg) in &l.others {
        let name = segment_name(*p_type);
        let i = seg.index;
        match *p_type {
            PT_TLS => {
                // glibc divides by it when it places the block in static TLS.
                if !seg.align.is_power_of_two() {
                    return Err(bad(format!(
                        "segment {i} (PT_TLS): p_align 0x{:x} is not a power of two",
                        seg.align
                    )));
                }
                if seg.align > MAX_TLS_ALIGN || seg.memsz > MAX_TLS_SIZE {
                    return Err(bad(format!(
                        "segment {i} (PT_TLS): {} bytes aligned to {} exceed the limits ({MAX_TLS_SIZE} bytes, alignment {MAX_TLS_ALIGN})",
                        seg.memsz, seg.align
                    )));
                }
                // glibc copies the initialization image (p_filesz bytes at p_vaddr) per thread.
                l.table("the PT_TLS initialization image", seg.vaddr, seg.filesz)?;
            }
            PT_GNU_RELRO
                if l.mapped(seg.vaddr, seg.memsz)
                    .is_none_or(|s| s.flags & PF_W == 0) =>
            {
                return Err(bad(format!(
                    "segment {i} (PT_GNU_RELRO) at {} lies outside every writable PT_LOAD segment (the loader would make other memory read-only)",
                    range(seg.vaddr, seg.memsz)
                )));
            }
            PT_PHDR => {
                let size = l.phnum * PHDR_SIZE;
                let here = l.file_bytes(seg.vaddr, size);
                let table = l.bytes.get(l.phoff as usize..(l.phoff + size) as usize);
                if here.is_none() || here.map(|h| h.as_ptr()) != table.map(|t| t.as_ptr()) {
                    return Err(bad(format!(
                        "segment {i} (PT_PHDR) at {} is not where the program header table (file offset 0x{:x}) is loaded",
                        range(seg.vaddr, size),
                        l.phoff
                    )));
                }
                if l.segment_at(seg.vaddr).is_none_or(|s| s.flags & PF_R == 0) {
                    return Err(bad(format!(
                        "segment {i} (PT_PHDR) at {} is not in a readable segment",
                        range(seg.vaddr, size)
                    )));
                }
                read.push(seg.vaddr, size, "the program headers");
            }
            PT_NOTE | PT_GNU_PROPERTY => {
                if seg.memsz != seg.filesz {
                    return Err(bad(format!(
                        "segment {i} ({name}): memory size differs from file size"
                    )));
                }
                let notes = l.table(&format!("segment {i} ({name})"), seg.vaddr, seg.memsz)?;
                check_notes(notes, seg.align)
                    .map_err(|e| bad(format!("segment {i} ({name}): {e}")))?;
                read.push(seg.vaddr, seg.memsz, "a note segment");
            }
            PT_GNU_EH_FRAME => {
                l.table(&format!("segment {i} ({name})"), seg.vaddr, seg.memsz)?;
                read.push(seg.vaddr, seg.memsz, "the unwind table header");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The ELF header and the program header table as loaded: recorded as read by the loader, and the
/// segment glibc reads the program headers from readable.
pub(super) fn check_loaded_headers(l: &Layout<'_>, read: &mut TablesRead) -> Result<(), LoadError> {
    // The ELF header and the program headers as loaded (glibc finds the latter inside a segment
    // when there is no PT_PHDR).
    if let Some(seg) = l
        .loads
        .iter()
        .find(|s| s.offset == 0 && s.filesz >= EHDR_SIZE as u64)
    {
        read.push(seg.vaddr, EHDR_SIZE as u64, "the ELF header");
    }
    let ph_size = l.phnum * PHDR_SIZE;
    // glibc points the object's program header list, which it reads during dlopen (and
    // `dl_iterate_phdr` later), into the first segment whose mapped pages hold the table.
    let page = page_size();
    if let Some(seg) = l.loads.iter().find(|s| {
        let map_offset = s.offset - s.offset % page;
        let map_len = (s.vaddr + s.filesz).next_multiple_of(page) - (s.vaddr - s.vaddr % page);
        map_offset <= l.phoff && map_offset + map_len >= l.phoff + ph_size
    }) {
        if seg.flags & PF_R == 0 {
            return Err(bad(format!(
                "the program headers are loaded in segment {}, which is not readable",
                seg.index
            )));
        }
    }
    if let Some(seg) = l
        .loads
        .iter()
        .find(|s| l.phoff >= s.offset && l.phoff + ph_size <= s.offset + s.filesz)
    {
        read.push(
            seg.vaddr + (l.phoff - seg.offset),
            ph_size,
            "the program headers",
        );
    }
    Ok(())
}
