//! A small fast hasher for the vocabulary maps (keys are short byte strings; the default SipHash
//! costs more than the tokenizer's own work). Not DoS-resistant, which does not matter here: the
//! keys come from the model file, not from the text being tokenized.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The Fx hash (rustc's multiply-rotate over 8-byte words) with a final mix.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits depending only on the low bytes of the last word,
        // and hashbrown picks buckets by the low bits: without this final mix, tokens sharing
        // their first bytes all probe the same buckets. MurmurHash3's fmix64 spreads them.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A HashMap with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The hash of a token text, for [`IndexTable`](super::table::IndexTable).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// The hash of a merge's (left, right) pair, computed from the two halves so that a lookup
/// needs no "left right" key built for it.
pub fn hash_pair(left: &[u8], right: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(left);
    // The length keeps ("ab", "c") and ("a", "bc") apart when their words happen to collide.
    h.write_usize(left.len());
    h.write(right);
    h.finish()
}
