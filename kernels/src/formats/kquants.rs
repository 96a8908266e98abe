//! The k-quant super-blocks of 256 values (Q2_K..Q6_K) and Q8_K, the activation format their
//! dot products use.
//!
//! The accessors `q(i)` return the code of value `i` (0..256) in the order values appear in the
//! row, hiding each type's bit interleaving; `scale(i)`/`min(i)` give the small integer scales of
//! the sub-block holding value `i`.

use super::{half, impl_block};
use crate::GgmlType;

/// Values per k-quant super-block.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K/Q5_K.
pub const K_SCALE_SIZE: usize = 12;

/// 2-bit with minimum, 16 sub-blocks of 16: `x = d * sc * q - dmin * m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ2K {
    /// Low nibble: 4-bit scale; high nibble: 4-bit min; one byte per sub-block of 16.
    pub scales: [u8; 16],
    pub qs: [u8; 64],
    pub d: [u8; 2],
    pub dmin: [u8; 2],
}
impl_block!(BlockQ2K, GgmlType::Q2_K, QK_K, 84);

/// 3-bit symmetric, 16 sub-blocks of 16: `x = d * (sc - 32) * q`, q in -4..4.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ3K {
    /// The high bit of each code, set meaning "no -4".
    pub hmask: [u8; 32],
    /// The low two bits of each code.
    pub qs: [u8; 64],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; 12],
    pub d: [u8; 2],
}
impl_block!(BlockQ3K, GgmlType::Q3_K, QK_K, 110);

/// 4-bit with minimum, 8 sub-blocks of 32: `x = d * sc * q - dmin * m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ4K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; 128],
}
impl_block!(BlockQ4K, GgmlType::Q4_K, QK_K, 144);

/// 5-bit with minimum, 8 sub-blocks of 32: `x = d * sc * q - dmin * m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ5K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; K_SCALE_SIZE],
    /// The fifth bit of each code.
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}
impl_block!(BlockQ5K, GgmlType::Q5_K, QK_K, 176);

/// 6-bit symmetric, 16 sub-blocks of 16 with 8-bit scales: `x = d * sc * (q - 32)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ6K {
    /// The low four bits of each code.
    pub ql: [u8; 128],
    /// The high two bits of each code.
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: [u8; 2],
}
impl_block!(BlockQ6K, GgmlType::Q6_K, QK_K, 210);

/// 8-bit activations for k-quant dot products: `x = d * q` with an **f32** scale, plus the sums
/// of each group of 16 codes (`bsums`, little-endian i16) for the k-quants' min terms.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ8K {
    pub d: [u8; 4],
    pub qs: [i8; QK_K],
    pub bsums: [[u8; 2]; 16],
}
impl_block!(BlockQ8K, GgmlType::Q8_K, QK_K, 292);

/// All-zero blocks (arrays over 32 elements have no derived `Default`).
macro_rules! zeroed_default {
    ($($t:ident { $($f:ident: $v:expr),* })*) => {$(
        impl Default for $t {
            fn default() -> Self {
                Self { $($f: $v),* }
            }
        }
    )*};
}

zeroed_default! {
    BlockQ2K { scales: [0; 16], qs: [0; 64], d: [0; 2], dmin: [0; 2] }
    BlockQ3K { hmask: [0; 32], qs: [0; 64], scales: [0; 12], d: [0; 2] }
    BlockQ4K { d: [0; 2], dmin: [0; 2], scales: [0; 12], qs: [0; 128] }
    BlockQ5K { d: [0; 2], dmin: [0; 2], scales: [0; 12], qh: [0; 32], qs: [0; 128] }
    BlockQ6K { ql: [0; 128], qh: [0; 64], scales: [0; 16], d: [0; 2] }
    BlockQ8K { d: [0; 4], qs: [0; QK_K], bsums: [[0; 2]; 16] }
}

/// The 2-bit field of value `i` in the Q2_K/Q3_K layout: 128-value halves of 32 bytes, each
/// byte holding values `l`, `l+32`, `l+64`, `l+96` of its half in bits 0-1, 2-3, 4-5, 6-7.
#[inline]
fn two_bits(qs: &[u8; 64], i: usize) -> u8 {
    let byte = qs[(i / 128) * 32 + i % 32];
    (byte >> (2 * ((i % 128) / 32))) & 3
}

/// Unpacks the 6-bit (scale, min) pair `j` (0..8) of Q4_K/Q5_K: pairs 0-3 sit in the low six
/// bits of bytes 0-3 (scales) and 4-7 (mins); pairs 4-7 keep their low nibbles in bytes 8-11
/// and their top two bits in the spare high bits of bytes 0-7.
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

impl BlockQ2K {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn dmin(&self) -> f32 {
        half(self.dmin)
    }
    /// The 2-bit code (0..4) of value `i`.
    pub fn q(&self, i: usize) -> u8 {
        two_bits(&self.qs, i)
    }
    /// The 4-bit scale of the sub-block of 16 holding value `i`.
    pub fn scale(&self, i: usize) -> u8 {
        self.scales[i / 16] & 0x0F
    }
    /// The 4-bit min of the sub-block of 16 holding value `i`.
    pub fn min(&self, i: usize) -> u8 {
        self.scales[i / 16] >> 4
    }
}

impl BlockQ3K {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    /// The signed code (-4..4) of value `i`.
    pub fn q(&self, i: usize) -> i8 {
        let low = two_bits(&self.qs, i) as i8;
        let high = (self.hmask[i % 32] >> (i / 32)) & 1;
        if high != 0 {
            low
        } else {
            low - 4
        }
    }
    /// The signed 6-bit scale (-32..32) of sub-block `j` (0..16): low nibble from byte `j % 8`
    /// (low or high half), top two bits from byte `8 + j % 4`.
    pub fn sub_scale(&self, j: usize) -> i8 {
        let low = if j < 8 {
            self.scales[j] & 0x0F
        } else {
            self.scales[j - 8] >> 4
        };
        let high = (self.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
        (low | (high << 4)) as i8 - 32
    }
    /// The signed scale of the sub-block holding value `i`.
    pub fn scale(&self, i: usize) -> i8 {
        self.sub_scale(i / 16)
    }
}

impl BlockQ4K {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn dmin(&self) -> f32 {
        half(self.dmin)
    }
    /// The 4-bit code (0..16) of value `i`: chunks of 64 values over 32 bytes, low nibbles
    /// first.
    pub fn q(&self, i: usize) -> u8 {
        let byte = self.qs[(i / 64) * 32 + i % 32];
        if (i % 64) < 32 {
            byte & 0x0F
        } else {
            byte >> 4
        }
    }
    /// (scale, min) of the sub-block of 32 holding value `i`.
    pub fn scale_min(&self, i: usize) -> (u8, u8) {
        scale_min_k4(i / 32, &self.scales)
    }
}

impl BlockQ5K {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn dmin(&self) -> f32 {
        half(self.dmin)
    }
    /// The 5-bit code (0..32) of value `i`.
    pub fn q(&self, i: usize) -> u8 {
        let byte = self.qs[(i / 64) * 32 + i % 32];
        let low = if (i % 64) < 32 {
            byte & 0x0F
        } else {
            byte >> 4
        };
        let high = (self.qh[i % 32] >> (i / 32)) & 1;
        low | (high << 4)
    }
    /// (scale, min) of the sub-block of 32 holding value `i`.
    pub fn scale_min(&self, i: usize) -> (u8, u8) {
        scale_min_k4(i / 32, &self.scales)
    }
}

impl BlockQ6K {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    /// The signed code (-32..32) of value `i`: 128-value halves; in each, groups `g` of 32 take
    /// low nibbles (g = 0, 1) or high nibbles (g = 2, 3) of `ql[32 * (g % 2) + l]`, and bits
    /// `2g..2g+2` of `qh[l]`.
    pub fn q(&self, i: usize) -> i8 {
        let (half_idx, r) = (i / 128, i % 128);
        let (g, l) = (r / 32, r % 32);
        let lbyte = self.ql[64 * half_idx + 32 * (g % 2) + l];
        let low = if g < 2 { lbyte & 0x0F } else { lbyte >> 4 };
        let high = (self.qh[32 * half_idx + l] >> (2 * g)) & 3;
        (low | (high << 4)) as i8 - 32
    }
    /// The 8-bit scale of the sub-block of 16 holding value `i`.
    pub fn scale(&self, i: usize) -> i8 {
        self.scales[i / 16]
    }
}

impl BlockQ8K {
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }
    /// The stored sum of codes 16j..16j+16.
    pub fn bsum(&self, j: usize) -> i16 {
        i16::from_le_bytes(self.bsums[j])
    }
}
