//! The notes glibc parses in `PT_NOTE` and `PT_GNU_PROPERTY` segments.

use super::u32_at;

const NT_GNU_PROPERTY_TYPE_0: u32 = 5;

/// Walks notes the way glibc does for `PT_NOTE` / `PT_GNU_PROPERTY` segments aligned to 8, and
/// requires every note it would look at to lie inside the segment.
pub(super) fn check_notes(notes: &[u8], align: u64) -> Result<(), String> {
    if align != 8 {
        return Ok(()); // glibc does not parse these
    }
    let size = notes.len() as u64;
    let mut pos = 0u64;
    while pos + 12 < size {
        let namesz = u32_at(notes, pos).unwrap_or(0) as u64;
        let descsz = u32_at(notes, pos + 4).unwrap_or(0) as u64;
        let n_type = u32_at(notes, pos + 8).unwrap_or(0);
        let name_end = (12 + namesz).next_multiple_of(8);
        let next = pos + name_end + descsz.next_multiple_of(8);
        if namesz == 4 && n_type == NT_GNU_PROPERTY_TYPE_0 && pos + 16 + descsz > size {
            return Err(format!(
                "the property note at offset {pos} claims {descsz} bytes beyond the segment"
            ));
        }
        pos = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_that_overrun_their_segment_are_refused() {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&64u32.to_le_bytes()); // descsz beyond the end
        n.extend_from_slice(&NT_GNU_PROPERTY_TYPE_0.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(&[0u8; 16]);
        assert!(check_notes(&n, 8).is_err());
        assert!(check_notes(&n, 4).is_ok());
        n[4..8].copy_from_slice(&16u32.to_le_bytes());
        assert!(check_notes(&n, 8).is_ok());
    }
}
