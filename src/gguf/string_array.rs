//! [`StringArray`]: a GGUF string array kept as the file stores it.
//!
//! A vocabulary is hundreds of thousands of short strings; one heap `String` each costs 24 bytes
//! of header plus an allocation (16+ bytes of allocator overhead) per token, several times the
//! text itself. A `StringArray` instead points into the bytes the strings already occupy (the
//! memory map of the file, shared through an `Arc`), where GGUF lays them out back to back as
//! `len u64 | bytes`, and keeps one offset per element: 4 bytes per string, nothing copied.
//! Arrays built in memory (`From<Vec<String>>`, `collect`) use the same layout in an owned
//! buffer, so both kinds behave alike and the writer can copy either verbatim.

use std::fmt;
use std::sync::Arc;

use super::mmap::Storage;

/// A list of UTF-8 strings stored back to back in one shared buffer: the value of a GGUF
/// string array (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`, ...).
///
/// Read from a file, the strings stay in the file's memory map: the array holds a reference to
/// the map (so the map lives as long as any array taken from it does, even after its
/// [`GgufFile`](super::GgufFile) is dropped) plus 4 bytes of offset per string. Cloning is
/// cheap (a reference count). Every string was checked to be UTF-8 when the file was read.
#[derive(Clone)]
pub struct StringArray(Arc<Inner>);

struct Inner {
    /// The buffer holding the strings.
    storage: Arc<Storage>,
    /// Where element 0's length prefix starts in `storage`.
    base: usize,
    /// `len + 1` positions relative to `base`: element `i` is encoded (length prefix, then its
    /// bytes) in `offsets[i]..offsets[i + 1]`, so the array as GGUF stores it is
    /// `base..base + offsets[len]`.
    offsets: Offsets,
}

/// Relative positions: 4 bytes each, unless the array spans 4 GiB or more.
enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

/// Bytes of the length prefix before each string.
const PREFIX: u64 = 8;

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

    fn get(&self, i: usize) -> Option<u64> {
        match self {
            Offsets::Narrow(v) => v.get(i).map(|&x| u64::from(x)),
            Offsets::Wide(v) => v.get(i).copied(),
        }
    }

    fn push(&mut self, x: u64) {
        match self {
            Offsets::Narrow(v) => match u32::try_from(x) {
                Ok(x) => v.push(x),
                Err(_) => {
                    // Only an array of 4 GiB or more gets here, once.
                    let mut wide: Vec<u64> = v.iter().map(|&y| u64::from(y)).collect();
                    wide.push(x);
                    *self = Offsets::Wide(wide);
                }
            },
            Offsets::Wide(v) => v.push(x),
        }
    }
}

/// Builds a [`StringArray`] over strings already laid out in `storage` (the reader's case):
/// each call to [`push_end`](Self::push_end) records where the next string ended.
pub(crate) struct StringArrayBuilder {
    storage: Arc<Storage>,
    base: usize,
    offsets: Offsets,
}

impl StringArrayBuilder {
    /// An array whose first length prefix is at `base` in `storage`, with room for `n` strings
    /// (the caller has bounded `n` by the bytes that remain).
    pub(crate) fn new(storage: Arc<Storage>, base: usize, n: usize) -> Self {
        let mut offsets = Offsets::with_capacity(n.saturating_add(1));
        offsets.push(0);
        StringArrayBuilder {
            storage,
            base,
            offsets,
        }
    }

    /// Records that the string just read ends at `end` (an absolute position, after `base`).
    pub(crate) fn push_end(&mut self, end: usize) {
        self.offsets.push(end.saturating_sub(self.base) as u64);
    }

    pub(crate) fn finish(self) -> StringArray {
        StringArray(Arc::new(Inner {
            storage: self.storage,
            base: self.base,
            offsets: self.offsets,
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
        let mut offsets = Offsets::with_capacity(lower.saturating_add(1));
        offsets.push(0);
        for s in strings {
            let s = s.as_ref().as_bytes();
            bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
            bytes.extend_from_slice(s);
            offsets.push(bytes.len() as u64);
        }
        StringArray(Arc::new(Inner {
            storage: Arc::new(Storage::Owned(bytes)),
            base: 0,
            offsets,
        }))
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.0.offsets.len().saturating_sub(1)
    }

    /// True when there are no strings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of string `i` (its UTF-8, without a check): what hot paths compare and hash.
    #[inline]
    pub fn get_bytes(&self, i: usize) -> Option<&[u8]> {
        let inner = &*self.0;
        let (start, end) = match &inner.offsets {
            Offsets::Narrow(v) => match v.get(i..i.checked_add(2)?)? {
                &[s, e] => (s as usize, e as usize),
                _ => return None,
            },
            Offsets::Wide(v) => match v.get(i..i.checked_add(2)?)? {
                &[s, e] => (usize::try_from(s).ok()?, usize::try_from(e).ok()?),
                _ => return None,
            },
        };
        let start = inner
            .base
            .checked_add(start)?
            .checked_add(PREFIX as usize)?;
        let end = inner.base.checked_add(end)?;
        inner.storage.bytes().get(start..end)
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
            array: self,
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
        let end = inner
            .offsets
            .get(inner.offsets.len().saturating_sub(1))
            .and_then(|e| usize::try_from(e).ok())
            .and_then(|e| inner.base.checked_add(e));
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
        self.len() == other.len()
            && (0..self.len()).all(|i| self.get_bytes(i) == other.get_bytes(i))
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

/// The strings of a [`StringArray`], in order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    array: &'a StringArray,
    next: usize,
    end: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(self.array.get(i).unwrap_or(""))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        self.end -= 1;
        Some(self.array.get(self.end).unwrap_or(""))
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
        assert_eq!(format!("{a:?}"), r#"["a", "", "héllo"]"#);
        assert_eq!(a.gguf_bytes().len(), 3 * 8 + 1 + 6);
        let e = StringArray::default();
        assert!(e.is_empty());
        assert_eq!(e.get(0), None);
        assert_eq!(e.gguf_bytes(), b"");
        assert_eq!(e, StringArray::from(Vec::<String>::new()));
    }

    #[test]
    fn wide_offsets() {
        let mut o = Offsets::with_capacity(2);
        o.push(0);
        o.push(u64::from(u32::MAX) + 1);
        assert!(matches!(o, Offsets::Wide(_)));
        assert_eq!(o.get(0), Some(0));
        assert_eq!(o.get(1), Some(u64::from(u32::MAX) + 1));
        assert_eq!(o.len(), 2);
    }
}
