//! MXFP4: ggml's `dequantize_row_mxfp4` and `quantize_row_mxfp4_ref` (which is also what
//! `ggml_quantize_chunk` runs for MXFP4: it has no importance-matrix search).

use crate::formats::{as_blocks, as_blocks_mut, e8m0_to_f32_half, BlockMxfp4, MXFP4_VALUES};
use crate::KernelError;

pub(crate) fn dequantize_mxfp4(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockMxfp4>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = f32::from(MXFP4_VALUES[usize::from(b.q(i))]) * d;
        }
    }
    Ok(())
}

/// The block exponent of `quantize_row_mxfp4_ref`:
/// `(uint8_t)(floorf(log2f(amax)) - 2 + 127)`, 0 when `amax` is 0.
///
/// `log2f` is glibc's, whose result is the correctly rounded f32 of the f64 logarithm wherever
/// the floor can tell (its only error is the final rounding); computing it in f64 and rounding
/// once reproduces that. The conversion to `uint8_t` goes through a 32-bit integer on x86
/// (`cvttss2si`), so the exponent of an `amax` below 2^-125 wraps around as there.
fn exponent(amax: f32) -> u8 {
    if amax > 0.0 {
        let log2 = f64::from(amax).log2() as f32;
        let e = log2.floor() - 2.0 + 127.0;
        // `as i32` saturates where cvttss2si gives i32::MIN; both end in the same low byte
        // for every finite f32 (|e| < 2^8 here), and infinity is not a possible `amax`
        // above f32::MAX's exponent (log2 <= 128).
        (e as i32) as u8
    } else {
        0
    }
}

/// `best_index_mxfp4`: the first code whose value `MXFP4_VALUES[i] * d` is nearest to `x`.
fn best_index(x: f32, d: f32) -> u8 {
    let err = |i: usize| (f32::from(MXFP4_VALUES[i]) * d - x).abs();
    let mut best = 0usize;
    let mut best_err = err(0);
    for i in 1..16 {
        let e = err(i);
        if e < best_err {
            best = i;
            best_err = e;
        }
    }
    best as u8
}

/// `quantize_row_mxfp4_ref`.
pub(crate) fn quantize_mxfp4(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockMxfp4>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(32))
    {
        let mut amax = 0.0f32;
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
            }
        }
        b.e = exponent(amax);
        let d = e8m0_to_f32_half(b.e);
        for j in 0..16 {
            b.qs[j] = best_index(x[j], d) | (best_index(x[j + 16], d) << 4);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_puts_amax_in_the_top_binade() {
        // amax in [4, 8): floor(log2) = 2, e = 127: half-scale 0.5, so the table's 12 is 6.
        assert_eq!(exponent(4.0), 127);
        assert_eq!(exponent(7.99), 127);
        assert_eq!(exponent(8.0), 128);
        assert_eq!(exponent(0.0), 0);
        // Just below a power of two, log2f rounds up to the integer: so does this.
        assert_eq!(exponent(8.0 * (1.0 - f32::EPSILON / 2.0)), 128);
        assert_eq!(exponent(f32::MIN_POSITIVE), 255);
    }

    #[test]
    fn round_trip_of_representable_values() {
        // Every value of the table at scale 2^0 (e = 128 after amax = 6 -> floor(log2 6) = 2,
        // e = 127, half-scale 0.5: values MXFP4_VALUES / 2).
        let x: Vec<f32> = (0..32)
            .map(|i| f32::from(MXFP4_VALUES[i % 16]) * 0.5)
            .collect();
        let mut q = vec![0u8; 17];
        quantize_mxfp4(&x, &mut q).unwrap();
        let mut y = vec![0f32; 32];
        dequantize_mxfp4(&q, &mut y).unwrap();
        assert_eq!(x, y);
    }
}
