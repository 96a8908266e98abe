//! The on-disk block layouts of every quantized type we read, byte for byte as llama.cpp's
//! `ggml-common.h` lays them out.
//!
//! Each block is a `#[repr(C)]` struct made only of byte arrays (`[u8; N]`, `[i8; N]`), so it has
//! alignment 1, no padding, and every bit pattern is a valid value. That is what lets
//! [`as_blocks`] view any `&[u8]` of the right length (a memory-mapped tensor, a `Vec<u8>`) as a
//! slice of blocks without copying. Multi-byte fields are little-endian, as in GGUF files; the
//! accessor methods decode them.

mod float;
mod iq4;
mod kquants;
mod legacy;
mod mxfp4;

pub use float::{
    bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits, BlockBf16, BlockF16,
    BlockF32,
};
pub use iq4::{BlockIq4Nl, BlockIq4Xs, IQ4NL_VALUES};
pub use kquants::{
    scale_min_k4, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, K_SCALE_SIZE, QK_K,
};
pub use legacy::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK_LEGACY};
pub use mxfp4::{e8m0_to_f32_half, BlockMxfp4, MXFP4_VALUES};

use crate::{GgmlType, KernelError};

mod sealed {
    /// Only the block structs of this module may implement [`super::Block`]: the soundness of
    /// [`super::as_blocks`] rests on every implementor being made of byte arrays only.
    pub trait Sealed {}
}

/// One quantization block of a ggml type.
///
/// Sealed: implemented only by the `#[repr(C)]` byte-array structs of this module, each of which
/// has alignment 1, no padding, and no invalid bit patterns (checked by compile-time asserts
/// beside each struct and by [`as_blocks`] itself).
pub trait Block: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The ggml type this block belongs to.
    const TYPE: GgmlType;
    /// Values encoded by one block (the type's block size).
    const VALUES: usize;
}

/// Implements [`Block`] for a format struct and checks its size at compile time.
macro_rules! impl_block {
    ($block:ty, $ty:expr, $values:expr, $bytes:expr) => {
        impl crate::formats::sealed::Sealed for $block {}
        impl crate::formats::Block for $block {
            const TYPE: crate::GgmlType = $ty;
            const VALUES: usize = $values;
        }
        const _: () = assert!(core::mem::size_of::<$block>() == $bytes);
        const _: () = assert!(core::mem::align_of::<$block>() == 1);
    };
}
pub(crate) use impl_block;

/// Views `bytes` as a slice of blocks, without copying.
///
/// Fails with [`KernelError::LengthMismatch`] when `bytes` is not a whole number of blocks.
pub fn as_blocks<B: Block>(bytes: &[u8]) -> Result<&[B], KernelError> {
    let n = block_count::<B>(bytes.len())?;
    // SAFETY: `B` is one of this module's sealed block structs: `#[repr(C)]`, made only of
    // `u8`/`i8` arrays, so its alignment is 1 (asserted below and at each definition), it has no
    // padding (its size equals the sum of its fields, asserted at each definition) and every bit
    // pattern is a valid value. `bytes` holds exactly `n * size_of::<B>()` initialized bytes
    // (checked by `block_count`), and the returned slice borrows `bytes` for its lifetime.
    Ok(unsafe {
        const { assert!(core::mem::align_of::<B>() == 1) };
        core::slice::from_raw_parts(bytes.as_ptr().cast::<B>(), n)
    })
}

/// Views `bytes` as a mutable slice of blocks, without copying.
///
/// Fails with [`KernelError::LengthMismatch`] when `bytes` is not a whole number of blocks.
pub fn as_blocks_mut<B: Block>(bytes: &mut [u8]) -> Result<&mut [B], KernelError> {
    let n = block_count::<B>(bytes.len())?;
    // SAFETY: as in `as_blocks`: alignment 1, no padding, every bit pattern valid, so any byte
    // written through a block field is a valid `u8` and vice versa; the length is checked, and the
    // exclusive borrow of `bytes` is handed on to the returned slice.
    Ok(unsafe {
        const { assert!(core::mem::align_of::<B>() == 1) };
        core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<B>(), n)
    })
}

fn block_count<B: Block>(len: usize) -> Result<usize, KernelError> {
    let size = core::mem::size_of::<B>();
    if !len.is_multiple_of(size) {
        return Err(KernelError::LengthMismatch {
            what: "block bytes",
            expected: len / size * size + size,
            got: len,
        });
    }
    Ok(len / size)
}

/// Decodes a little-endian IEEE half (`ggml_half`).
#[inline]
pub fn half(bytes: [u8; 2]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes(bytes))
}

/// Encodes an f32 as a little-endian IEEE half, rounding to nearest even like ggml.
#[inline]
pub fn to_half(x: f32) -> [u8; 2] {
    f32_to_f16_bits(x).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<B: Block>() {
        assert_eq!(
            core::mem::size_of::<B>(),
            B::TYPE.block_bytes(),
            "{}",
            B::TYPE
        );
        assert_eq!(B::VALUES, B::TYPE.block_size(), "{}", B::TYPE);
    }

    #[test]
    fn block_sizes_agree_with_the_type_table() {
        check::<BlockF32>();
        check::<BlockF16>();
        check::<BlockBf16>();
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ8_0>();
        check::<BlockQ8_1>();
        check::<BlockQ2K>();
        check::<BlockQ3K>();
        check::<BlockQ4K>();
        check::<BlockQ5K>();
        check::<BlockQ6K>();
        check::<BlockQ8K>();
        check::<BlockIq4Nl>();
        check::<BlockIq4Xs>();
        check::<BlockMxfp4>();
    }

    #[test]
    fn as_blocks_checks_length_and_sees_fields_in_place() {
        let mut bytes = vec![0u8; 36];
        bytes[0..2].copy_from_slice(&to_half(1.5));
        bytes[18 + 2] = 0xAB;
        let blocks = as_blocks::<BlockQ4_0>(&bytes).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].d(), 1.5);
        assert_eq!(blocks[1].qs[0], 0xAB);
        assert!(as_blocks::<BlockQ4_0>(&bytes[..35]).is_err());
        assert!(as_blocks::<BlockQ4_0>(&[]).unwrap().is_empty());
        // Odd offsets are fine: alignment 1.
        let shifted = [0u8; 19];
        assert_eq!(as_blocks::<BlockQ4_0>(&shifted[1..]).unwrap().len(), 1);
        let m = as_blocks_mut::<BlockQ4_0>(&mut bytes).unwrap();
        m[1].d = to_half(-2.0);
        assert_eq!(half([bytes[18], bytes[19]]), -2.0);
    }
}
