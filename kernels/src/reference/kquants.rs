//! Q2_K Q3_K Q4_K Q5_K Q6_K Q8_K: ggml's `quantize_row_*_ref` / `dequantize_row_*`.

use super::nearest_int;
use crate::formats::{
    as_blocks, as_blocks_mut, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, QK_K,
};
use crate::KernelError;

// ---------------------------------------------------------------- dequantize

pub(crate) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ2K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = (b.d(), b.dmin());
        for (i, v) in y.iter_mut().enumerate() {
            let dl = d * f32::from(b.scale(i));
            let ml = dmin * f32::from(b.min(i));
            *v = dl * f32::from(b.q(i)) - ml;
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ3K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            let dl = d * f32::from(b.scale(i));
            *v = dl * f32::from(b.q(i));
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ4K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = (b.d(), b.dmin());
        for (i, v) in y.iter_mut().enumerate() {
            let (sc, m) = b.scale_min(i);
            *v = (d * f32::from(sc)) * f32::from(b.q(i)) - dmin * f32::from(m);
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ5K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = (b.d(), b.dmin());
        for (i, v) in y.iter_mut().enumerate() {
            let (sc, m) = b.scale_min(i);
            *v = (d * f32::from(sc)) * f32::from(b.q(i)) - dmin * f32::from(m);
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ6K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = d * f32::from(b.scale(i)) * f32::from(b.q(i));
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ8K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (v, &q) in y.iter_mut().zip(&b.qs) {
            *v = d * f32::from(q);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- quantize

/// `quantize_row_q8_K_ref`: the signed value of largest magnitude `max` gives
/// `iscale = -127 / max`, codes `nearest_int(iscale * x)` capped at 127, `d = 1 / iscale` as f32,
/// and the sums of each 16 codes.
pub(crate) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockQ8K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let (amax, max) = super::legacy::signed_absmax(x);
        if amax == 0.0 {
            *b = BlockQ8K::default();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).clamp(-128, 127) as i8;
        }
        for (sum, group) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            let s: i32 = group.iter().map(|&q| i32::from(q)).sum();
            *sum = (s as i16).to_le_bytes();
        }
        b.d = (1.0 / iscale).to_le_bytes();
    }
    Ok(())
}

pub(crate) fn quantize_q2_k(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::Q2_K,
    })
}
pub(crate) fn quantize_q3_k(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::Q3_K,
    })
}
pub(crate) fn quantize_q4_k(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::Q4_K,
    })
}
pub(crate) fn quantize_q5_k(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::Q5_K,
    })
}
pub(crate) fn quantize_q6_k(_src: &[f32], _dst: &mut [u8]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported {
        op: "quantize_row (not yet)",
        ty: crate::GgmlType::Q6_K,
    })
}
