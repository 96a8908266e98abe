//! Plain float element types (F32, F16, BF16) as one-value "blocks", and the f16/bf16
//! conversions with ggml's exact rounding.

use super::impl_block;
use crate::GgmlType;

/// One little-endian f32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockF32 {
    pub bits: [u8; 4],
}
impl_block!(BlockF32, GgmlType::F32, 1, 4);

impl BlockF32 {
    pub fn get(&self) -> f32 {
        f32::from_le_bytes(self.bits)
    }
}

/// One little-endian IEEE half.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockF16 {
    pub bits: [u8; 2],
}
impl_block!(BlockF16, GgmlType::F16, 1, 2);

impl BlockF16 {
    pub fn get(&self) -> f32 {
        f16_bits_to_f32(u16::from_le_bytes(self.bits))
    }
}

/// One little-endian bfloat16.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockBf16 {
    pub bits: [u8; 2],
}
impl_block!(BlockBf16, GgmlType::BF16, 1, 2);

impl BlockBf16 {
    pub fn get(&self) -> f32 {
        bf16_bits_to_f32(u16::from_le_bytes(self.bits))
    }
}

/// IEEE half to f32 (exact).
#[inline]
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// f32 to IEEE half, round to nearest even, as ggml's `GGML_FP32_TO_FP16` (and F16C): overflow
/// gives infinity, and every NaN becomes the quiet NaN 0x7E00 with the input's sign.
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    if x.is_nan() {
        let sign = ((x.to_bits() >> 16) & 0x8000) as u16;
        return sign | 0x7E00;
    }
    half::f16::from_f32(x).to_bits()
}

/// bfloat16 to f32 (exact).
#[inline]
pub fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// f32 to bfloat16 as ggml's `GGML_FP32_TO_BF16`: round to nearest even, subnormals kept, NaNs
/// truncated and forced quiet.
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    // Cannot overflow for non-NaN inputs: the largest finite value plus 0x8000 stays below the
    // NaN range, and infinities have a zero mantissa.
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounds_to_nearest_even() {
        // 1 + 2^-11 is exactly halfway between 1 and the next half (1 + 2^-10): ties to even (1).
        assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11)), 0x3C00);
        // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even).
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3C02);
        assert_eq!(f32_to_f16_bits(65520.0), 0x7C00); // rounds up to infinity
        assert_eq!(f32_to_f16_bits(65519.0), 0x7BFF);
        assert_eq!(f32_to_f16_bits(-f32::NAN), 0xFE00);
        assert_eq!(f32_to_f16_bits(2f32.powi(-24)), 0x0001); // smallest subnormal
        assert_eq!(f32_to_f16_bits(2f32.powi(-26)), 0x0000);
    }

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_subnormals() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3F80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3F80_8000)), 0x3F80); // tie, even stays
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3F81_8000)), 0x3F82); // tie, odd rounds up
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x0001_8000)), 0x0002); // subnormal kept
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7F80_0001)), 0x7FC0);
        assert_eq!(bf16_bits_to_f32(0x3F80), 1.0);
    }
}
