//! The first-generation 32-value blocks: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0, and Q8_1 (activations only).
//!
//! Nibble order (all 4- and 5-bit types): byte `j` of `qs` holds value `j` in its low nibble and
//! value `j + 16` in its high nibble. The fifth bit of value `j` is bit `j` of the little-endian
//! u32 `qh`.

use super::{half, impl_block};
use crate::GgmlType;

/// Values per block of every legacy type.
pub const QK_LEGACY: usize = 32;

/// 4-bit, symmetric: `x = d * (q - 8)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; 16],
}
impl_block!(BlockQ4_0, GgmlType::Q4_0, 32, 18);

/// 4-bit with minimum: `x = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ4_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qs: [u8; 16],
}
impl_block!(BlockQ4_1, GgmlType::Q4_1, 32, 20);

/// 5-bit, symmetric: `x = d * (q - 16)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ5_0 {
    pub d: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}
impl_block!(BlockQ5_0, GgmlType::Q5_0, 32, 22);

/// 5-bit with minimum: `x = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ5_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}
impl_block!(BlockQ5_1, GgmlType::Q5_1, 32, 24);

/// 8-bit, symmetric: `x = d * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ8_0 {
    pub d: [u8; 2],
    pub qs: [i8; 32],
}
impl_block!(BlockQ8_0, GgmlType::Q8_0, 32, 34);

/// 8-bit activations for Q4_1/Q5_1 dot products: `x = d * q`, and `s = d * sum(q)` so the
/// weight minimum can be applied once per block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ8_1 {
    pub d: [u8; 2],
    pub s: [u8; 2],
    pub qs: [i8; 32],
}
impl_block!(BlockQ8_1, GgmlType::Q8_1, 32, 36);

/// The 4-bit code of value `i` (0..32) of a nibble-packed 32-value block.
#[inline]
pub(crate) fn nibble(qs: &[u8; 16], i: usize) -> u8 {
    let byte = qs[i % 16];
    if i < 16 {
        byte & 0x0F
    } else {
        byte >> 4
    }
}

impl BlockQ4_0 {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    /// The unsigned code (0..16) of value `i` (0..32).
    pub fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i)
    }
}

impl BlockQ4_1 {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn m(&self) -> f32 {
        half(self.m)
    }
    /// The unsigned code (0..16) of value `i` (0..32).
    pub fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i)
    }
}

impl BlockQ5_0 {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
    /// The unsigned code (0..32) of value `i` (0..32).
    pub fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i) | ((((self.qh() >> (i % 32)) & 1) as u8) << 4)
    }
}

impl BlockQ5_1 {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn m(&self) -> f32 {
        half(self.m)
    }
    pub fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
    /// The unsigned code (0..32) of value `i` (0..32).
    pub fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i) | ((((self.qh() >> (i % 32)) & 1) as u8) << 4)
    }
}

impl BlockQ8_0 {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
}

impl BlockQ8_1 {
    pub fn d(&self) -> f32 {
        half(self.d)
    }
    pub fn s(&self) -> f32 {
        half(self.s)
    }
}
