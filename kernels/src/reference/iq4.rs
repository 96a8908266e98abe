//! IQ4_NL / IQ4_XS: ggml's `dequantize_row_iq4_*` and the chunk quantizer.

use crate::formats::{as_blocks, BlockIq4Nl, BlockIq4Xs, IQ4NL_VALUES, QK_K};
use crate::KernelError;

pub(crate) fn dequantize_iq4_nl(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockIq4Nl>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = d * f32::from(IQ4NL_VALUES[usize::from(b.q(i))]);
        }
    }
    Ok(())
}

pub(crate) fn dequantize_iq4_xs(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockIq4Xs>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            let dl = d * (i32::from(b.ls(i / 32)) - 32) as f32;
            *v = dl * f32::from(IQ4NL_VALUES[usize::from(b.q(i))]);
        }
    }
    Ok(())
}

pub(crate) fn quantize_iq4_nl(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::IQ4_NL,
    })
}
pub(crate) fn quantize_iq4_xs(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::IQ4_XS,
    })
}
