//! MXFP4 (OCP microscaling FP4, gpt-oss's expert weights): 32 E2M1 values sharing one E8M0
//! power-of-two exponent.

use super::impl_block;
use crate::GgmlType;

/// The 16 E2M1 values, doubled so that they are integers (`kvalues_mxfp4`): code `q` means
/// `MXFP4_VALUES[q] / 2`, which [`e8m0_to_f32_half`] folds into the block scale.
pub const MXFP4_VALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// `x = e8m0_to_f32_half(e) * MXFP4_VALUES[q]`; nibbles as in Q4_0 (value j low, j + 16 high).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockMxfp4 {
    /// The E8M0 exponent: the block scale is `2^(e - 127)`.
    pub e: u8,
    pub qs: [u8; 16],
}
impl_block!(BlockMxfp4, GgmlType::MXFP4, 32, 17);

impl BlockMxfp4 {
    /// Half the block scale, `2^(e - 128)` (`GGML_E8M0_TO_FP32_HALF`), the factor of the
    /// doubled table values.
    pub fn d(&self) -> f32 {
        e8m0_to_f32_half(self.e)
    }
    /// The code (0..16) of value `i` (0..32).
    pub fn q(&self, i: usize) -> u8 {
        super::legacy::nibble(&self.qs, i)
    }
}

/// `ggml_e8m0_to_fp32_half`: `2^(e - 128)` as f32 bits, the two smallest exponents as the
/// subnormals `2^-128`, `2^-127`. Exponent 255 (E8M0's NaN) gives 2^127, as in ggml.
#[inline]
pub fn e8m0_to_f32_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_scale_is_two_to_the_e_minus_128() {
        assert_eq!(e8m0_to_f32_half(128), 1.0);
        assert_eq!(e8m0_to_f32_half(127), 0.5);
        assert_eq!(e8m0_to_f32_half(2), 2f32.powi(-126));
        assert_eq!(e8m0_to_f32_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_to_f32_half(0), 2f32.powi(-128));
        assert_eq!(e8m0_to_f32_half(254), 2f32.powi(126));
    }

    #[test]
    fn codes_follow_the_nibble_order() {
        let mut b = BlockMxfp4 {
            e: 128,
            qs: [0; 16],
        };
        b.qs[3] = 0xA7;
        assert_eq!((b.q(3), b.q(19)), (7, 10));
        assert_eq!(MXFP4_VALUES[usize::from(b.q(3))], 12);
    }
}
