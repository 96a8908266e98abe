//! An open-addressing hash table of `u32` indices whose keys live elsewhere (the token texts or
//! merge lines of a [`StringArray`](crate::gguf::StringArray)): 4 bytes per slot and no copy of
//! any key, where a `HashMap<Box<[u8]>, u32>` costs a boxed key, its allocator overhead and a
//! 24-byte bucket per entry. A lookup hashes the probe, walks the slots (linear probing) and
//! asks the caller to compare the candidate's key.
//!
//! The bits of a slot that the largest index does not need hold a tag taken from the key's
//! hash, so most slots of other keys are skipped without looking at their key at all. The tags
//! also order each run of slots (Amble and Knuth's ordered hashing): along the walk from any
//! key's home slot to the key, every tag is at least the key's, so a lookup that meets a
//! smaller tag can stop there. A miss (most merge lookups of BPE, most pair lookups of
//! SentencePiece) then costs about as few probes as a hit, instead of a walk to the next empty
//! slot, 8.5 probes on average at a load of 3/4.

use crate::{Error, Result};

/// A slot that holds nothing. No entry can equal it: see [`IndexTable::tag`].
const EMPTY: u32 = u32::MAX;

/// The table; see the module documentation.
pub struct IndexTable {
    slots: Vec<u32>,
    /// Bits of a slot that hold the index; the rest hold the tag.
    index_bits: u32,
}

/// What [`IndexTable::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The index went in.
    New,
    /// An equal key was already there, with this index; nothing changed.
    Existing(u32),
}

impl IndexTable {
    /// A table for up to `n` entries, each index below `n` (`n` fits u32 or is u32::MAX + 1).
    /// Sized for a load of at most 3/4: runs of occupied slots stay short, and each probe is
    /// one compare of neighbouring words.
    pub fn new(n: usize) -> Result<IndexTable> {
        let capacity = n
            .checked_add(n / 3)
            .and_then(|c| c.checked_add(1))
            .ok_or_else(|| Error::OutOfMemory {
                what: format!("a hash table for {n} entries"),
            })?;
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|_| Error::OutOfMemory {
                what: format!("a hash table for {n} entries"),
            })?;
        slots.resize(capacity, EMPTY);
        let max_index = n.saturating_sub(1) as u64;
        let index_bits = (u64::BITS - max_index.leading_zeros()).clamp(1, 32);
        Ok(IndexTable { slots, index_bits })
    }

    /// The slot a hash starts probing at (the high bits of the hash scaled to the capacity,
    /// which need not be a power of two).
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    /// The tag bits of a hash, placed above the index bits; never all ones, so that an entry
    /// (tag | index) is never EMPTY. With 32 index bits there is no tag, and an index below
    /// u32::MAX is never EMPTY either.
    fn tag(&self, hash: u64) -> u32 {
        if self.index_bits >= 32 {
            return 0;
        }
        let max = u32::MAX >> self.index_bits;
        let t = (hash as u32) >> self.index_bits;
        let t = if t == max { max - 1 } else { t };
        t << self.index_bits
    }

    fn index_mask(&self) -> u32 {
        u32::MAX >> (32 - self.index_bits)
    }

    /// The index whose key `is_key` accepts, among the entries with this `hash`.
    #[inline]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let (tag, mask) = (self.tag(hash), self.index_mask());
        let n = self.slots.len();
        let mut i = self.home(hash);
        // Bounded by the capacity, though an empty slot or a smaller tag always ends the walk
        // before that.
        for _ in 0..n {
            let e = *self.slots.get(i)?;
            if e == EMPTY {
                return None;
            }
            let t = e & !mask;
            if t == tag {
                if is_key(e & mask) {
                    return Some(e & mask);
                }
            } else if t < tag {
                return None;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        None
    }

    /// Adds `index` under `hash` unless `is_key` accepts an entry already there. `index` must be
    /// below the `n` the table was made for, and at most `n` entries go in (then there is
    /// always an empty slot, and inserting cannot fail).
    pub fn insert(
        &mut self,
        hash: u64,
        index: u32,
        mut is_key: impl FnMut(u32) -> bool,
    ) -> Result<Inserted> {
        let (tag, mask) = (self.tag(hash), self.index_mask());
        if index & !mask != 0 {
            return Err(Error::Tokenizer {
                what: format!("index {index} does not fit its hash table"),
            });
        }
        let n = self.slots.len();
        let mut i = self.home(hash);
        // The entry being placed: the new one, then whichever one it displaced (which moves on
        // along its own walk, the same slots from here on under linear probing).
        let (mut entry, mut entry_tag) = (tag | index, tag);
        let mut placed_new = false;
        for _ in 0..n {
            let Some(slot) = self.slots.get_mut(i) else {
                break;
            };
            let e = *slot;
            if e == EMPTY {
                *slot = entry;
                return Ok(Inserted::New);
            }
            let t = e & !mask;
            // An equal key sits before the first smaller tag on the new key's walk.
            if !placed_new && t == tag && is_key(e & mask) {
                return Ok(Inserted::Existing(e & mask));
            }
            if t < entry_tag {
                *slot = entry;
                (entry, entry_tag) = (e, t);
                placed_new = true;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        Err(Error::Tokenizer {
            what: "a hash table is full (more entries than it was made for)".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::hash::hash_bytes;

    #[test]
    fn insert_and_find() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let mut t = IndexTable::new(keys.len()).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let r = t.insert(hash_bytes(k.as_bytes()), i as u32, |j| {
                keys[j as usize] == *k
            });
            assert_eq!(r.unwrap(), Inserted::New);
        }
        let r = t.insert(hash_bytes(b"k7"), 999, |j| keys[j as usize] == "k7");
        assert_eq!(r.unwrap(), Inserted::Existing(7));
        for (i, k) in keys.iter().enumerate() {
            let found = t.find(hash_bytes(k.as_bytes()), |j| keys[j as usize] == *k);
            assert_eq!(found, Some(i as u32));
        }
        assert_eq!(
            t.find(hash_bytes(b"nope"), |j| keys[j as usize] == "nope"),
            None
        );
    }

    /// Many keys in few homes and tags, some never inserted, against a plain map.
    #[test]
    fn ordered_runs_agree_with_a_map() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for &n in &[2usize, 10, 300, 5000] {
            // Hashes drawn from a small set of well-spread values: every home and tag repeats.
            let spread = |x: u64| (x + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
            let hashes: Vec<u64> = (0..2 * n)
                .map(|_| spread(rand() % (n as u64 / 2 + 3)))
                .collect();
            let mut t = IndexTable::new(n).unwrap();
            let inserted = n - n / 4;
            for (i, &h) in hashes.iter().enumerate().take(inserted) {
                let r = t.insert(h, i as u32, |j| j as usize == i).unwrap();
                assert_eq!(r, Inserted::New);
            }
            for (i, &h) in hashes.iter().enumerate() {
                // Keys are their position in `hashes`; index i stands for key i below n.
                let found = t.find(h, |j| j as usize == i);
                let expected = (i < inserted).then_some(i as u32);
                assert_eq!(found, expected, "n {n} key {i}");
            }
            let again = t.insert(hashes[0], 0, |j| j == 0).unwrap();
            assert_eq!(again, Inserted::Existing(0));
        }
    }

    #[test]
    fn tiny_and_full_tables() {
        // One entry: index 0 in 1 bit, tags in the other 31.
        let mut t = IndexTable::new(1).unwrap();
        assert_eq!(t.insert(5, 0, |_| false).unwrap(), Inserted::New);
        assert_eq!(t.find(5, |j| j == 0), Some(0));
        assert!(t.insert(6, 2, |_| false).is_err(), "index too big");
        // Every hash collides: still found; once every slot is taken, inserting fails.
        let mut t = IndexTable::new(4).unwrap();
        for i in 0..4 {
            assert_eq!(t.insert(0, i, |j| j == i).unwrap(), Inserted::New);
        }
        for i in 0..4 {
            assert_eq!(t.find(0, |j| j == i), Some(i));
        }
        assert_eq!(t.slots.len(), 6);
        for _ in 4..6 {
            assert_eq!(t.insert(0, 0, |_| false).unwrap(), Inserted::New);
        }
        assert!(t.insert(0, 0, |_| false).is_err());
        // A full table has no empty slot to stop at: the walk is bounded anyway.
        assert_eq!(t.find(9, |_| false), None);
        let empty = IndexTable::new(0).unwrap();
        assert_eq!(empty.find(1, |_| true), None);
    }
}
