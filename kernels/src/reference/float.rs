//! F32 / F16 / BF16 rows: plain little-endian conversion with ggml's rounding.

use crate::formats::{
    as_blocks, as_blocks_mut, f32_to_bf16_bits, f32_to_f16_bits, BlockBf16, BlockF16, BlockF32,
};
use crate::{GgmlType, KernelError};

pub(crate) fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    match ty {
        GgmlType::F32 => {
            for (v, b) in dst.iter_mut().zip(as_blocks::<BlockF32>(src)?) {
                *v = b.get();
            }
        }
        GgmlType::F16 => {
            for (v, b) in dst.iter_mut().zip(as_blocks::<BlockF16>(src)?) {
                *v = b.get();
            }
        }
        GgmlType::BF16 => {
            for (v, b) in dst.iter_mut().zip(as_blocks::<BlockBf16>(src)?) {
                *v = b.get();
            }
        }
        _ => {
            return Err(KernelError::Unsupported {
                op: "float dequantize",
                ty,
            })
        }
    }
    Ok(())
}

pub(crate) fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    match ty {
        GgmlType::F32 => {
            for (b, &v) in as_blocks_mut::<BlockF32>(dst)?.iter_mut().zip(src) {
                b.bits = v.to_le_bytes();
            }
        }
        GgmlType::F16 => {
            for (b, &v) in as_blocks_mut::<BlockF16>(dst)?.iter_mut().zip(src) {
                b.bits = f32_to_f16_bits(v).to_le_bytes();
            }
        }
        GgmlType::BF16 => {
            for (b, &v) in as_blocks_mut::<BlockBf16>(dst)?.iter_mut().zip(src) {
                b.bits = f32_to_bf16_bits(v).to_le_bytes();
            }
        }
        _ => {
            return Err(KernelError::Unsupported {
                op: "float quantize",
                ty,
            })
        }
    }
    Ok(())
}
