//! [`StringArray`]: a GGUF string array kept as the file stores it.
//!
//! A vocabulary is hundreds of thousands of short strings; one heap `String` each costs 24 bytes
//! of header plus an allocation (16+ bytes of allocator overhead) per token, several times the
//! text itself. A `StringArray` instead points into the bytes the strings already occupy (the
//! memory map of the file, shared through an `Arc`), where GGUF lays them out back to back as
//! `len u64 | bytes`. It keeps where every [`STRIDE`]-th string starts; the others are found
//! from there by hopping over length prefixes, a few reads in memory the string itself shares:
//! half a byte per string in all, nothing copied. Arrays built in memory (`From<Vec<String>>`,
//! `collect`) use the same layout in an owned buffer, so both kinds behave alike and the writer
//! can copy either verbatim.

use std::fmt;
use std::sync::Arc;

use super::mmap::Storage;

/// Every this many strings, the position of one is kept. Finding string `i` reads `i % STRIDE`
/// length prefixes first, in memory the strings themselves share. Measured on the tokenizer
/// corpus (SmolLM2 and Gemma 3): at 8, encoding runs about 7% more instructions than with a
/// position per string, decoding about 15% more, for an eighth of the memory (on Gemma 3, 131 KB
/// instead of 1 MB).
const STRIDE: usize = 8;

/// Bytes of the length prefix before each string.
const PREFIX: usize = 8;

/// A list of UTF-8 strings stored back to back in one shared buffer: the value of a GGUF
/// string array (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`, ...).
///
/// Read from a file, the strings stay in the file's memory map: the array holds a reference to
/// the map (so the map lives as long as any array taken from it does, even after its
/// [`GgufFile`](super::GgufFile) is dropped) plus half a byte per string. Cloning is cheap (a
/// reference count). Every string was checked to be UTF-8 when the file was read.
#[derive(Clone)]
pub struct StringArray(Arc<Inner>);

struct Inner {
    /// The buffer holding the strings.
    storage: Arc<Storage>,
    /// Where element 0's length prefix starts in `storage`.
    base: usize,
    /// The number of strings.
    len: usize,
    /// Positions relative to `base`: of the length prefix of elements 0, STRIDE, 2 * STRIDE,
    /// ..., then of the end of the array (the array as GGUF stores it is
    /// `base..base + marks.last()`).
    marks: Offsets,
}

/// Relative positions: 4 bytes each, unless the array spans 4 GiB or more.
enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Offsets {
    fn with_capacity(n: usize) -> Offsets {
        Offsets::Narrow(Vec::with_capacity(n))
    }

    fn len(&self) -> usize {
        match self {
            Offsets::Narrow(v) => v.len(),
            Offsets::Wide(v) => v.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<usize> {
        match self {
            Offsets::Narrow(v) => v.get(i).map(|&x| x as usize),
            Offsets::Wide(v) => v.get(i).and_then(|&x| usize::try_from(x).ok()),
        }
    }

    fn last(&self) -> Option<usize> {
        self.get(self.len().checked_sub(1)?)
    }

    fn push(&mut self, x: usize) {
        match self {
            Offsets::Narrow(v) => match u32::try_from(x) {
                Ok(x) => v.push(x),
                Err(_) => {
                    // Only an array of 4 GiB or more gets here, once.
                    let mut wide: Vec<u64> = v.iter().map(|&y| u64::from(y)).collect();
                    wide.push(x as u64);
                    *self = Offsets::Wide(wide);
                }
            },
            Offsets::Wide(v) => v.push(x as u64),
        }
    }
}

/// Where the string whose length prefix is at `pos` in `bytes` starts and ends.
#[inline]
fn span_at(bytes: &[u8], pos: usize) -> Option<(usize, usize)> {
    let start = pos.checked_add(PREFIX)?;
    let len: [u8; PREFIX] = bytes.get(pos..start)?.try_into().ok()?;
    let end = start.checked_add(usize::try_from(u64::from_le_bytes(len)).ok()?)?;
    Some((start, end))
}

/// The string whose length prefix is at `pos` in `bytes`, and where the next one starts.
#[inline]
fn string_at(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let (start, end) = span_at(bytes, pos)?;
    Some((bytes.get(start..end)?, end))
}

/// Builds a [`StringArray`] over strings already laid out in `storage` (the reader's case):
/// each call to [`push_end`](Self::push_end) records where the next string ended.
pub(crate) struct StringArrayBuilder {
    storage: Arc<Storage>,
    base: usize,
    len: usize,
    end: usize,
    marks: Offsets,
}

impl StringArrayBuilder {
    /// An array whose first length prefix is at `base` in `storage`, with room for `n` strings.
    pub(crate) fn new(storage: Arc<Storage>, base: usize, n: usize) -> Self {
        let mut marks = Offsets::with_capacity(n / STRIDE + 2);
        marks.push(0);
        StringArrayBuilder {
            storage,
            base,
            len: 0,
            end: base,
            marks,
        }
    }

    /// Records that the next string ends at `end` (an absolute position, after `base`); the
    /// caller has checked it is there, length prefix included.
    pub(crate) fn push_end(&mut self, end: usize) {
        self.len += 1;
        self.end = end;
        if self.len.is_multiple_of(STRIDE) {
            self.marks.push(end.saturating_sub(self.base));
        }
    }

    pub(crate) fn finish(mut self) -> StringArray {
        // The end of the array, unless the last push already recorded it.
        if !self.len.is_multiple_of(STRIDE) || self.len == 0 {
            self.marks.push(self.end.saturating_sub(self.base));
        }
        StringArray(Arc::new(Inner {
            storage: self.storage,
            base: self.base,
            len: self.len,
            marks: self.marks,
        }))
    }
}

impl StringArray {
    /// An empty array.
    pub fn new() -> StringArray {
        Self::from_strs(std::iter::empty::<&str>())
    }

    /// Copies `strings` into one owned buffer, in GGUF's layout.
    fn from_strs<S: AsRef<str>>(strings: impl Iterator<Item = S>) -> StringArray {
        let (lower, _) = strings.size_hint();
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(lower);
        for s in strings {
            let s = s.as_ref().as_bytes();
            bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
            bytes.extend_from_slice(s);
            ends.push(bytes.len());
        }
        let storage = Arc::new(Storage::Owned(bytes));
        let mut b = StringArrayBuilder::new(storage, 0, ends.len());
        for end in ends {
            b.push_end(end);
        }
        b.finish()
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// True when there are no strings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of string `i` (its UTF-8, without a check): what hot paths compare and hash.
    #[inline]
    pub fn get_bytes(&self, i: usize) -> Option<&[u8]> {
        let inner = &*self.0;
        if i >= inner.len {
            return None;
        }
        let bytes = inner.storage.bytes();
        let mut pos = inner.base.checked_add(inner.marks.get(i / STRIDE)?)?;
        for _ in 0..i % STRIDE {
            pos = span_at(bytes, pos)?.1;
        }
        string_at(bytes, pos).map(|(s, _)| s)
    }

    /// String `i`, or None when `i` is out of range.
    ///
    /// The bytes were checked to be UTF-8 when the file was read and are checked again here
    /// (a fast scan for the short strings of a vocabulary) rather than trusted: a memory-mapped
    /// file that another process rewrites can change under us. Such a string gives None too.
    pub fn get(&self, i: usize) -> Option<&str> {
        std::str::from_utf8(self.get_bytes(i)?).ok()
    }

    /// The strings in order (a string whose mapped bytes stopped being UTF-8, see
    /// [`get`](Self::get), reads as "").
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            bytes: self.bytes_iter(),
        }
    }

    /// The strings' bytes in order, read one after the other.
    fn bytes_iter(&self) -> BytesIter<'_> {
        BytesIter {
            array: self,
            pos: Some(self.0.base),
            next: 0,
            end: self.len(),
        }
    }

    /// Owned copies of the strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    /// The whole array as GGUF stores it (each string as `len u64 | bytes`, back to back),
    /// without the element type and count: what the writer copies.
    pub(crate) fn gguf_bytes(&self) -> &[u8] {
        let inner = &*self.0;
        let end = inner.marks.last().and_then(|e| inner.base.checked_add(e));
        end.and_then(|end| inner.storage.bytes().get(inner.base..end))
            .unwrap_or(&[])
    }
}

impl Default for StringArray {
    fn default() -> Self {
        StringArray::new()
    }
}

impl fmt::Debug for StringArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for StringArray {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes_iter().eq(other.bytes_iter())
    }
}

impl Eq for StringArray {}

impl From<Vec<String>> for StringArray {
    fn from(v: Vec<String>) -> Self {
        Self::from_strs(v.iter())
    }
}

impl From<Vec<&str>> for StringArray {
    fn from(v: Vec<&str>) -> Self {
        Self::from_strs(v.iter())
    }
}

impl From<&[&str]> for StringArray {
    fn from(v: &[&str]) -> Self {
        Self::from_strs(v.iter())
    }
}

impl<S: AsRef<str>> FromIterator<S> for StringArray {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::from_strs(iter.into_iter())
    }
}

impl<'a> IntoIterator for &'a StringArray {
    type Item = &'a str;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The bytes of the strings of a [`StringArray`], in order: each found from the previous one's
/// end (no hops), the back ones by index.
#[derive(Clone)]
struct BytesIter<'a> {
    array: &'a StringArray,
    /// Where string `next` starts (None once a read failed: a file changed under us).
    pos: Option<usize>,
    next: usize,
    end: usize,
}

impl<'a> Iterator for BytesIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next >= self.end {
            return None;
        }
        self.next += 1;
        let bytes = self.array.0.storage.bytes();
        match self.pos.and_then(|p| string_at(bytes, p)) {
            Some((s, end)) => {
                self.pos = Some(end);
                Some(s)
            }
            None => {
                self.pos = None;
                Some(&[])
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl DoubleEndedIterator for BytesIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        self.end -= 1;
        Some(self.array.get_bytes(self.end).unwrap_or(&[]))
    }
}

/// The strings of a [`StringArray`], in order.
#[derive(Clone)]
pub struct Iter<'a> {
    bytes: BytesIter<'a>,
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.bytes.size_hint().0)
            .finish()
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.bytes
            .next()
            .map(|b| std::str::from_utf8(b).unwrap_or(""))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.bytes.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.bytes
            .next_back()
            .map(|b| std::str::from_utf8(b).unwrap_or(""))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_arrays() {
        let a = StringArray::from(vec!["a".to_string(), String::new(), "héllo".into()]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(0), Some("a"));
        assert_eq!(a.get(1), Some(""));
        assert_eq!(a.get(2), Some("héllo"));
        assert_eq!(a.get(3), None);
        assert_eq!(a.get_bytes(2), Some("héllo".as_bytes()));
        assert_eq!(a.iter().rev().collect::<Vec<_>>(), ["héllo", "", "a"]);
        assert_eq!(a, ["a", "", "héllo"].into_iter().collect());
        assert_ne!(a, StringArray::from(vec!["a", ""]));
        assert_ne!(a, StringArray::from(vec!["a", "", "hello"]));
        assert_eq!(format!("{a:?}"), r#"["a", "", "héllo"]"#);
        assert_eq!(a.gguf_bytes().len(), 3 * 8 + 1 + 6);
        let e = StringArray::default();
        assert!(e.is_empty());
        assert_eq!(e.get(0), None);
        assert_eq!(e.gguf_bytes(), b"");
        assert_eq!(e, StringArray::from(Vec::<String>::new()));
    }

    #[test]
    fn every_index_around_the_stride() {
        for n in [
            1,
            STRIDE - 1,
            STRIDE,
            STRIDE + 1,
            2 * STRIDE,
            3 * STRIDE + 2,
        ] {
            let v: Vec<String> = (0..n).map(|i| "x".repeat(i % 5)).collect();
            let a = StringArray::from(v.clone());
            assert_eq!(a.len(), n);
            for (i, s) in v.iter().enumerate() {
                assert_eq!(a.get(i), Some(s.as_str()), "n {n} i {i}");
            }
            assert_eq!(a.get(n), None);
            assert_eq!(a.to_vec(), v);
            let back: Vec<&str> = a.iter().rev().collect();
            assert!(back.iter().rev().eq(v.iter()));
            let total: usize = v.iter().map(|s| 8 + s.len()).sum();
            assert_eq!(a.gguf_bytes().len(), total);
        }
    }

    #[test]
    fn wide_offsets() {
        let mut o = Offsets::with_capacity(2);
        o.push(0);
        if let Some(big) = (u32::MAX as usize).checked_add(1) {
            o.push(big);
            assert!(matches!(o, Offsets::Wide(_)));
            assert_eq!(o.get(1), Some(big));
        }
        assert_eq!(o.get(0), Some(0));
        assert_eq!(o.last(), o.get(o.len() - 1));
    }
}
