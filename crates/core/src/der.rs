//! The DER the key and signature formats need, read by hand: one tag-length-value at a time, with
//! definite minimal lengths (short form below 128, long form with one or two bytes above).
//! Indefinite and non-minimal lengths are not DER and are refused.

/// One tag-length-value at the front of `input`, and what follows it; `None` when truncated or
/// not DER.
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (first as usize, rest),
        0x81 => {
            let (&b, rest) = rest.split_first()?;
            if b < 0x80 {
                return None;
            }
            (b as usize, rest)
        }
        0x82 => {
            if rest.len() < 2 || rest[0] == 0 {
                return None;
            }
            ((rest[0] as usize) << 8 | rest[1] as usize, &rest[2..])
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// The tag and the content of the value at the front of `input`, the content cut short when the
/// input is (so that a truncated structure is still recognized by its header).
pub(crate) fn header(input: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (first as usize, rest),
        0x81 => (*rest.first()? as usize, &rest[1..]),
        0x82 if rest.len() >= 2 => ((rest[0] as usize) << 8 | rest[1] as usize, &rest[2..]),
        _ => return None,
    };
    Some((tag, &rest[..len.min(rest.len())]))
}

/// The values of a SEQUENCE's content, read in order.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(content: &'a [u8]) -> Self {
        Reader(content)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one tag-length-value; `None` if truncated or badly encoded.
    pub(crate) fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let (tag, value, rest) = tlv(self.0)?;
        self.0 = rest;
        Some((tag, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_length_is_not_minimal_the_value_is_not_der() {
        assert_eq!(tlv(&[0x04, 0x01, 0xaa]), Some((0x04, &[0xaa][..], &[][..])));
        assert_eq!(tlv(&[0x04, 0x81, 0x01, 0xaa]), None);
        assert_eq!(tlv(&[0x04, 0x82, 0x00, 0x01, 0xaa]), None);
        assert_eq!(tlv(&[0x04, 0x80]), None);
    }

    #[test]
    fn when_the_input_is_cut_short_the_header_still_reads() {
        assert_eq!(tlv(&[0x30, 0x05, 0x02]), None);
        assert_eq!(header(&[0x30, 0x05, 0x02]), Some((0x30, &[0x02][..])));
    }
}
