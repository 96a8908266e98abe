//! The 4-bit non-linear types: IQ4_NL (32-value blocks) and IQ4_XS (256-value super-blocks with
//! 6-bit sub-block scales). Codes index a fixed table of 16 levels instead of a linear grid.

use super::{half, impl_block};
use crate::GgmlType;

/// The 16 levels of IQ4_NL/IQ4_XS (`kvalues_iq4nl`).
pub const IQ4NL_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// `x = d * IQ4NL_VALUES[q]`; nibbles as in Q4_0 (value j low, j + 16 high).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockIq4Nl {
    pub d: [u8; 2],
    pub qs: [u8; 16],
}
impl_block!(BlockIq4Nl, GgmlType::IQ4_NL, 32, 18);

/// `x = d * (ls - 32) * IQ4NL_VALUES[q]` with a 6-bit `ls` per sub-block of 32: its low nibble
/// in `scales_l`, its top two bits in the little-endian u16 `scales_h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIq4Xs {
    pub d: [u8; 2],
    pub scales_h: [u8; 2],
    pub scales_l: [u8; 4],
    pub qs: [u8; 128],
}
impl_block!(BlockIq4Xs, GgmlType::IQ4_XS, 256, 136);

impl Default for BlockIq4Xs {
    fn default() -> Self {
        Self {
            d: [0; 2],
            scales_h: [0; 2],
            scales_l: [0; 4],
            qs: [0; 128],
        }
    }
}

impl BlockIq4Nl {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    /// The level index (0..16) of value `i` (0..32).
    pub fn q(&self, i: usize) -> u8 {
        super::legacy::nibble(&self.qs, i)
    }
}

impl BlockIq4Xs {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    /// The unsigned 6-bit scale (0..64) of sub-block `ib` (0..8); the effective scale is
    /// `ls - 32`.
    pub fn ls(&self, ib: usize) -> u8 {
        let h = u16::from_le_bytes(self.scales_h);
        let low = (self.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let high = ((h >> (2 * ib)) & 3) as u8;
        low | (high << 4)
    }
    /// The level index (0..16) of value `i` (0..256): sub-blocks of 32 laid out like IQ4_NL.
    pub fn q(&self, i: usize) -> u8 {
        let byte = self.qs[(i / 32) * 16 + i % 16];
        if (i % 32) < 16 {
            byte & 0x0F
        } else {
            byte >> 4
        }
    }
}
