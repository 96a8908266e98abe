//! Scalar quantize / dequantize / dot product for every supported type: the oracle every SIMD
//! kernel is tested against.
//!
//! Written for clarity, not speed, and to reproduce llama.cpp's bytes: quantizers follow the
//! arithmetic of ggml's `quantize_row_*_ref` operation by operation (same f32 operations in the
//! same order, so the same rounding), dequantizers that of `dequantize_row_*`.
//!
//! Every function checks its lengths and returns [`KernelError`] rather than panicking.

mod dot;
mod float;
mod iq4;
mod kquant_search;
mod kquants;
mod legacy;
mod mxfp4;

pub use dot::{
    block_dot_terms, block_isums, has_batch_order, vec_dot, vec_dot_batch_order,
    vec_dot_ggml_order, vec_dot_row_order, BlockIsum, BATCH_ORDER_MIN_ROWS,
};

use crate::{GgmlType, KernelError};

/// Bytes taken by a row of `n` values of `ty`; `n` must be a whole number of blocks.
pub fn row_bytes(ty: GgmlType, n: usize) -> Result<usize, KernelError> {
    let block = ty.block_size();
    if !n.is_multiple_of(block) {
        return Err(KernelError::NotBlockMultiple {
            what: "row length",
            ty,
            len: n,
            block,
        });
    }
    (n / block)
        .checked_mul(ty.block_bytes())
        .ok_or(KernelError::LengthMismatch {
            what: "row bytes (overflow)",
            expected: usize::MAX,
            got: n,
        })
}

/// Checks that `bytes` holds exactly a row of `n` values of `ty`.
pub(crate) fn check_row(
    what: &'static str,
    ty: GgmlType,
    n: usize,
    bytes: usize,
) -> Result<(), KernelError> {
    let expected = row_bytes(ty, n)?;
    if bytes != expected {
        return Err(KernelError::LengthMismatch {
            what,
            expected,
            got: bytes,
        });
    }
    Ok(())
}

/// Decodes one row: `dst.len()` values of `ty` from `src`. Bit-identical to ggml's
/// `dequantize_row_*` (and `GGML_FP16_TO_FP32` / `GGML_BF16_TO_FP32` for the float types).
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    check_row("dequantize_row source", ty, dst.len(), src.len())?;
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => float::dequantize(ty, src, dst),
        GgmlType::Q4_0 => legacy::dequantize_q4_0(src, dst),
        GgmlType::Q4_1 => legacy::dequantize_q4_1(src, dst),
        GgmlType::Q5_0 => legacy::dequantize_q5_0(src, dst),
        GgmlType::Q5_1 => legacy::dequantize_q5_1(src, dst),
        GgmlType::Q8_0 => legacy::dequantize_q8_0(src, dst),
        GgmlType::Q8_1 => legacy::dequantize_q8_1(src, dst),
        GgmlType::Q2_K => kquants::dequantize_q2_k(src, dst),
        GgmlType::Q3_K => kquants::dequantize_q3_k(src, dst),
        GgmlType::Q4_K => kquants::dequantize_q4_k(src, dst),
        GgmlType::Q5_K => kquants::dequantize_q5_k(src, dst),
        GgmlType::Q6_K => kquants::dequantize_q6_k(src, dst),
        GgmlType::Q8_K => kquants::dequantize_q8_k(src, dst),
        GgmlType::IQ4_NL => iq4::dequantize_iq4_nl(src, dst),
        GgmlType::IQ4_XS => iq4::dequantize_iq4_xs(src, dst),
        GgmlType::MXFP4 => mxfp4::dequantize_mxfp4(src, dst),
        _ => Err(KernelError::Unsupported {
            op: "dequantize_row",
            ty,
        }),
    }
}

/// Encodes one row: `src.len()` values into `dst` as `ty`, byte-identical to what llama.cpp
/// writes without an importance matrix (`ggml_quantize_chunk(.., imatrix = NULL)`, which is
/// `quantize_row_*_ref` for every type here except IQ4_NL/IQ4_XS, whose chunk quantizer
/// searches 7 scale candidates either side where their `_ref` searches none).
///
/// For Q8_0/Q8_1 this is the `_ref` arithmetic (`x * (1/d)`, round half away from zero); the way
/// ggml-cpu quantizes activations is [`quantize_activations`].
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    check_row("quantize_row destination", ty, src.len(), dst.len())?;
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => float::quantize(ty, src, dst),
        GgmlType::Q4_0 => legacy::quantize_q4_0(src, dst),
        GgmlType::Q4_1 => legacy::quantize_q4_1(src, dst),
        GgmlType::Q5_0 => legacy::quantize_q5_0(src, dst),
        GgmlType::Q5_1 => legacy::quantize_q5_1(src, dst),
        GgmlType::Q8_0 => legacy::quantize_q8_0_ref(src, dst),
        GgmlType::Q8_1 => legacy::quantize_q8_1_ref(src, dst),
        GgmlType::Q2_K => kquants::quantize_q2_k(src, dst),
        GgmlType::Q3_K => kquants::quantize_q3_k(src, dst),
        GgmlType::Q4_K => kquants::quantize_q4_k(src, dst),
        GgmlType::Q5_K => kquants::quantize_q5_k(src, dst),
        GgmlType::Q6_K => kquants::quantize_q6_k(src, dst),
        GgmlType::Q8_K => kquants::quantize_q8_k(src, dst),
        GgmlType::IQ4_NL => iq4::quantize_iq4_nl(src, dst),
        GgmlType::IQ4_XS => iq4::quantize_iq4_xs(src, dst),
        GgmlType::MXFP4 => mxfp4::quantize_mxfp4(src, dst),
        _ => Err(KernelError::Unsupported {
            op: "quantize_row",
            ty,
        }),
    }
}

/// The type llama.cpp's ggml-cpu converts activations to before a dot product with weights of
/// `ty` (`type_traits_cpu[ty].vec_dot_type`): Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for
/// Q4_1/Q5_1, Q8_K for Q2_K..Q6_K and IQ4_XS, and the type itself for F32/F16/BF16.
/// Types without a dot product here give F32 (ggml's default); [`vec_dot`] refuses them.
pub fn vec_dot_type(ty: GgmlType) -> GgmlType {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL | GgmlType::MXFP4 => {
            GgmlType::Q8_0
        }
        GgmlType::Q4_1 | GgmlType::Q5_1 => GgmlType::Q8_1,
        GgmlType::Q2_K
        | GgmlType::Q3_K
        | GgmlType::Q4_K
        | GgmlType::Q5_K
        | GgmlType::Q6_K
        | GgmlType::IQ4_XS => GgmlType::Q8_K,
        GgmlType::F16 => GgmlType::F16,
        GgmlType::BF16 => GgmlType::BF16,
        _ => GgmlType::F32,
    }
}

/// Quantizes an activation row the way llama.cpp's x86 (AVX2) runtime does
/// (`type_traits_cpu[act_ty].from_float`):
/// - Q8_0 / Q8_1: `d = amax / 127` stored as f16, `q = round_half_even(x * (127 / amax))`; Q8_1
///   also stores `s = f16(d * sum(q))` (with the unrounded f32 `d`). This differs from the
///   `_ref` functions ([`quantize_row`]) on about one block in 200.
/// - Q8_K: `quantize_row_q8_K_ref`.
/// - F32 / F16 / BF16: plain conversion (round to nearest even).
pub fn quantize_activations(
    act_ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), KernelError> {
    check_row(
        "quantize_activations destination",
        act_ty,
        src.len(),
        dst.len(),
    )?;
    match act_ty {
        GgmlType::Q8_0 => legacy::quantize_q8_0_x86(src, dst),
        GgmlType::Q8_1 => legacy::quantize_q8_1_x86(src, dst),
        GgmlType::Q8_K => kquants::quantize_q8_k(src, dst),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => float::quantize(act_ty, src, dst),
        _ => Err(KernelError::Unsupported {
            op: "quantize_activations",
            ty: act_ty,
        }),
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, by adding 1.5 * 2^23 and reading the
/// mantissa. Exact for |x| <= 2^22 - 1; beyond that it returns the same garbage ggml does (the
/// callers clamp it), which is what keeps the bytes identical on extreme inputs.
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    ((v.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-2.6), -3);
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
    }

    #[test]
    fn row_bytes_is_checked() {
        assert_eq!(row_bytes(GgmlType::Q4_K, 512), Ok(288));
        assert!(row_bytes(GgmlType::Q4_K, 100).is_err());
        assert!(row_bytes(GgmlType::F32, usize::MAX).is_err());
    }
}
