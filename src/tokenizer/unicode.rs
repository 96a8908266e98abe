//! Code point properties and UTF-8 helpers, with llama.cpp's exact semantics (src/unicode.cpp).
//!
//! The category data comes from `unicode_tables.rs` (generated, Unicode 15.1 like llama.cpp).
//! Everything here is total: no input makes it panic.

use super::unicode_tables::{CATEGORY_RANGES, LOWERCASE, WHITESPACE};

/// Category flag values, as llama.cpp's `unicode_cpt_flags` (unicode.h); the tables also use
/// 0x08 (separator) and 0x80 (control), which no splitter asks about by name.
pub const UNDEFINED: u8 = 0x01;
pub const NUMBER: u8 = 0x02;
pub const LETTER: u8 = 0x04;
pub const ACCENT_MARK: u8 = 0x10;
pub const PUNCTUATION: u8 = 0x20;
pub const SYMBOL: u8 = 0x40;

/// The properties of one code point that the pre-tokenizers look at.
///
/// `Flags::default()` (all zero) is what llama.cpp's splitters see past the end of a chunk: no
/// category, not whitespace. Every real code point has a non-zero category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// One of the category constants above (0 only past the end of a chunk).
    pub category: u8,
    /// White_Space property.
    pub whitespace: bool,
}

impl Flags {
    pub fn is_letter(self) -> bool {
        self.category == LETTER
    }
    pub fn is_number(self) -> bool {
        self.category == NUMBER
    }
    pub fn is_whitespace(self) -> bool {
        self.whitespace
    }
    /// llama.cpp's `flags.as_uint() != 0`: false only for the "past the end" value.
    pub fn is_defined(self) -> bool {
        self.category != 0 || self.whitespace
    }
}

/// The largest code point plus one; flags of anything at or above it are `UNDEFINED`.
pub const MAX_CODEPOINTS: u32 = 0x11_0000;

/// Category and whitespace flags of `cpt`.
pub fn flags(cpt: u32) -> Flags {
    Flags {
        category: category(cpt),
        whitespace: WHITESPACE.binary_search(&cpt).is_ok(),
    }
}

fn category(cpt: u32) -> u8 {
    if cpt >= MAX_CODEPOINTS {
        return UNDEFINED;
    }
    // The run containing cpt is the last one whose start is <= cpt; the table starts at 0.
    let idx = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cpt);
    match idx.checked_sub(1).and_then(|i| CATEGORY_RANGES.get(i)) {
        Some(&(_, flag)) => flag,
        None => UNDEFINED,
    }
}

/// Simple lowercase mapping (llama.cpp's `unicode_tolower`); `cpt` itself when there is none.
pub fn to_lower(cpt: u32) -> u32 {
    match LOWERCASE.binary_search_by_key(&cpt, |&(from, _)| from) {
        Ok(i) => LOWERCASE.get(i).map_or(cpt, |&(_, to)| to),
        Err(_) => cpt,
    }
}

/// Length of the UTF-8 sequence that starts with `first`, judged by its high nibble only
/// (llama.cpp's `unicode_len_utf8`: continuation bytes count as 1).
pub fn utf8_len(first: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[usize::from(first >> 4)]
}

/// Decodes UTF-8 like llama.cpp's `unicode_cpts_from_utf8`: a byte that does not start a
/// well-formed sequence becomes U+FFFD and decoding resumes at the next byte. Like llama.cpp it
/// does not reject overlong forms or surrogates (inputs from `&str` never contain them).
pub fn cpts_from_utf8(bytes: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut offset = 0;
    while offset < bytes.len() {
        match decode_one(bytes, offset) {
            Some((cpt, len)) => {
                out.push(cpt);
                offset += len;
            }
            None => {
                out.push(0xFFFD);
                offset += 1;
            }
        }
    }
    out
}

/// One code point at `offset` and its byte length, or None where llama.cpp throws.
pub fn decode_one(b: &[u8], offset: usize) -> Option<(u32, usize)> {
    let b0 = u32::from(*b.get(offset)?);
    let cont = |k: usize| -> Option<u32> {
        let c = *b.get(offset + k)?;
        (c & 0xC0 == 0x80).then_some(u32::from(c & 0x3F))
    };
    if b0 & 0x80 == 0 {
        Some((b0, 1))
    } else if b0 & 0x40 == 0 {
        None
    } else if b0 & 0x20 == 0 {
        Some((((b0 & 0x1F) << 6) | cont(1)?, 2))
    } else if b0 & 0x10 == 0 {
        Some((((b0 & 0x0F) << 12) | (cont(1)? << 6) | cont(2)?, 3))
    } else if b0 & 0x08 == 0 {
        Some((
            ((b0 & 0x07) << 18) | (cont(1)? << 12) | (cont(2)? << 6) | cont(3)?,
            4,
        ))
    } else {
        None
    }
}

/// Appends the UTF-8 encoding of `cpt` (llama.cpp's `unicode_cpt_to_utf8`, which also encodes
/// surrogates). Values above U+10FFFF, where llama.cpp throws, append U+FFFD instead.
pub fn push_utf8(cpt: u32, out: &mut Vec<u8>) {
    // Truncating casts below keep only the bits each byte carries.
    match cpt {
        0..=0x7F => out.push(cpt as u8),
        0x80..=0x7FF => {
            out.extend_from_slice(&[0xC0 | (cpt >> 6) as u8, 0x80 | (cpt & 0x3F) as u8])
        }
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cpt >> 12) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]),
        0x1_0000..=0x10_FFFF => out.extend_from_slice(&[
            0xF0 | (cpt >> 18) as u8,
            0x80 | ((cpt >> 12) & 0x3F) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice("\u{FFFD}".as_bytes()),
    }
}

/// GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, the other 68 bytes
/// to U+0100.. in byte order (llama.cpp's `unicode_byte_to_utf8_map`).
pub fn byte_to_cpt(byte: u8) -> u32 {
    BYTE_TO_CPT[usize::from(byte)]
}

/// The inverse of [`byte_to_cpt`].
pub fn cpt_to_byte(cpt: u32) -> Option<u8> {
    let b = u8::try_from(cpt).ok().filter(|&b| is_printable_latin1(b));
    b.or_else(|| {
        let n = cpt.checked_sub(256)?;
        NON_PRINTABLE.get(usize::try_from(n).ok()?).copied()
    })
}

fn is_printable_latin1(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The 68 bytes that are not printable Latin-1, ascending: byte `NON_PRINTABLE[n]` maps to
/// U+0100 + n.
const NON_PRINTABLE: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut n = 0;
    let mut b = 0usize;
    while b < 256 {
        let x = b as u8;
        let printable = matches!(x, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        if !printable {
            out[n] = x;
            n += 1;
        }
        b += 1;
    }
    out
};

const BYTE_TO_CPT: [u32; 256] = {
    let mut out = [0u32; 256];
    let mut n = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let x = b as u8;
        let printable = matches!(x, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        if printable {
            out[b] = b as u32;
        } else {
            out[b] = 256 + n;
            n += 1;
        }
        b += 1;
    }
    out
};

/// The one-byte stand-in llama.cpp gives a code point when it runs a `std::regex` that uses
/// Unicode categories ("collapsed" text, unicode.cpp `unicode_regex_split`): ASCII stays
/// itself, other whitespace becomes 0x0B, and other code points become 0xD1 (number),
/// 0xD2 (letter), 0xD3 (punctuation), 0xD4 (mark), 0xD5 (symbol) or 0xD0 (anything else).
pub fn collapse(cpt: u32) -> u8 {
    if let Ok(b) = u8::try_from(cpt) {
        if b < 0x80 {
            return b;
        }
    }
    let f = flags(cpt);
    if f.whitespace {
        return 0x0B;
    }
    match f.category {
        NUMBER => 0xD1,
        LETTER => 0xD2,
        PUNCTUATION => 0xD3,
        ACCENT_MARK => 0xD4,
        SYMBOL => 0xD5,
        _ => 0xD0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs copied from llama.cpp's src/unicode-data.cpp (`unicode_ranges_flags`): each pair is
    /// (start, flags) and must be the flag of `start` here, and differ from the flag of
    /// `start - 1` (a run boundary).
    #[test]
    fn category_runs_match_llama_cpp_spot_checks() {
        let runs: &[(u32, u8)] = &[
            (0x0000, 0x80),
            (0x0020, 0x08),
            (0x0021, 0x20),
            (0x0024, 0x40),
            (0x0030, 0x02),
            (0x0041, 0x04),
            (0x007F, 0x80),
            (0x00A0, 0x08),
            (0x00AD, 0x80),
            (0x00B2, 0x02),
            (0x0378, 0x01),
            (0x0888, 0x40),
            (0x0889, 0x04),
            (0x088F, 0x01),
            (0x0890, 0x80),
            (0x0892, 0x01),
            (0x0898, 0x10),
            (0x1C89, 0x01),
            (0x16FE0, 0x04),
            (0x16FE2, 0x20),
            (0x16FE4, 0x10),
            (0x16FF0, 0x10),
            (0x16FF2, 0x01),
            (0x187F8, 0x01),
            (0x1F6DC, 0x40),
            (0x2EBF0, 0x04),
            (0x2EE5E, 0x01),
            (0x31350, 0x04),
            (0x323B0, 0x01),
            (0xE0001, 0x80),
            (0xE0100, 0x10),
            (0xF0000, 0x80),
            (0xFFFFE, 0x01),
            (0x10_0000, 0x80),
            (0x10_FFFE, 0x01),
        ];
        for &(start, flag) in runs {
            assert_eq!(category(start), flag, "U+{start:04X}");
            if start > 0 {
                assert_ne!(category(start - 1), flag, "U+{:04X}", start - 1);
            }
        }
        assert_eq!(category(0x11_0000), UNDEFINED);
    }

    #[test]
    fn whitespace_is_the_white_space_property_not_python_isspace() {
        for c in [
            0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x3000,
        ] {
            assert!(flags(c).whitespace, "U+{c:04X}");
        }
        for c in [0x1C, 0x1D, 0x1E, 0x1F, 0x200B, 0x180E] {
            assert!(!flags(c).whitespace, "U+{c:04X}");
        }
    }

    #[test]
    fn byte_map_round_trips_and_matches_gpt2() {
        // GPT-2: space -> U+0120 'Ġ', newline -> U+010A 'Ċ', 0xAD -> U+0143 'Ń'.
        assert_eq!(byte_to_cpt(b' '), 0x120);
        assert_eq!(byte_to_cpt(b'\n'), 0x10A);
        assert_eq!(byte_to_cpt(0xAD), 0x143);
        assert_eq!(byte_to_cpt(b'a'), u32::from(b'a'));
        for b in 0..=255u8 {
            assert_eq!(cpt_to_byte(byte_to_cpt(b)), Some(b));
        }
        assert_eq!(cpt_to_byte(0x20), None);
        assert_eq!(cpt_to_byte(0x100 + 68), None);
    }

    #[test]
    fn lossy_decoding_matches_llama_cpp() {
        assert_eq!(
            cpts_from_utf8("aé€😀".as_bytes()),
            vec![0x61, 0xE9, 0x20AC, 0x1F600]
        );
        // A lone continuation byte and a truncated sequence each become U+FFFD per byte.
        assert_eq!(cpts_from_utf8(&[0x80, b'a']), vec![0xFFFD, 0x61]);
        assert_eq!(cpts_from_utf8(&[0xE2, 0x82]), vec![0xFFFD, 0xFFFD]);
        assert_eq!(cpts_from_utf8(&[0xFF]), vec![0xFFFD]);
        let mut v = Vec::new();
        for c in [0x61, 0xE9, 0x20AC, 0x1F600] {
            push_utf8(c, &mut v);
        }
        assert_eq!(v, "aé€😀".as_bytes());
    }

    #[test]
    fn tolower_and_collapse() {
        assert_eq!(to_lower(u32::from(b'S')), u32::from(b's'));
        assert_eq!(to_lower(0x130), u32::from(b'i'));
        assert_eq!(to_lower(u32::from(b's')), u32::from(b's'));
        assert_eq!(collapse(u32::from(b'x')), b'x');
        assert_eq!(collapse(0xE9), 0xD2);
        assert_eq!(collapse(0x0663), 0xD1);
        assert_eq!(collapse(0x3000), 0x0B);
        assert_eq!(collapse(0x200D), 0xD0);
        assert_eq!(collapse(0x1F600), 0xD5);
    }
}
