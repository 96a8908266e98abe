//! Reference dot products of one weight row with one activation row already quantized to the
//! weight type's [`vec_dot_type`](super::vec_dot_type).
//!
//! Every quantized type's dot product is a sum over weight blocks of integer sums of code
//! products times float scales. [`block_isums`] exposes those integer sums (exact, so SIMD
//! kernels can be checked bit for bit), [`block_dot_terms`] the float term of each block, and
//! [`vec_dot`] their sum, accumulated in f64 and rounded once so that it is as close to the exact
//! value as the terms allow.

use super::{check_row, vec_dot_type};
use crate::formats::{
    as_blocks, BlockBf16, BlockF16, BlockF32, BlockIq4Nl, BlockIq4Xs, BlockMxfp4, BlockQ2K,
    BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K,
    BlockQ8_0, BlockQ8_1, IQ4NL_VALUES, MXFP4_VALUES, QK_K,
};
use crate::vecmath::scalar::{ggml_vec_sum, hsum8, tinyblas_sum};
use crate::{GgmlType, KernelError};

/// The integer sums of one weight block's dot product with its activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockIsum {
    /// Sum of weight code times activation code, where each sub-block's sum is first multiplied
    /// by its integer sub-block scale (k-quants, IQ4_XS). Weight codes are signed where the
    /// format is symmetric (Q4_0: q - 8, Q5_0: q - 16, Q3_K: -4..4, Q6_K: q - 32, IQ4: the table
    /// level) and unsigned where it has a minimum (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K).
    pub scaled: i32,
    /// Q2_K/Q4_K/Q5_K: sum over sub-blocks of the integer min times the sum of the activation
    /// codes under it (what ggml computes from Q8_K's `bsums`, here from the codes themselves).
    /// Zero for every other type (Q4_1/Q5_1 take their min term from Q8_1's `s`).
    pub mins: i32,
}

/// The integer sums of each weight block of a row of `n` values (one entry per block of `ty`).
/// Unsupported for the float types, whose products are not integers.
pub fn block_isums(
    ty: GgmlType,
    n: usize,
    w: &[u8],
    act: &[u8],
) -> Result<Vec<BlockIsum>, KernelError> {
    check_dot_args(ty, n, w, act)?;
    Ok(match ty {
        GgmlType::Q4_0 => pairs::<BlockQ4_0, BlockQ8_0>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(x.q(i)) - 8, &y.qs))
            .collect(),
        GgmlType::Q4_1 => pairs::<BlockQ4_1, BlockQ8_1>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(x.q(i)), &y.qs))
            .collect(),
        GgmlType::Q5_0 => pairs::<BlockQ5_0, BlockQ8_0>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(x.q(i)) - 16, &y.qs))
            .collect(),
        GgmlType::Q5_1 => pairs::<BlockQ5_1, BlockQ8_1>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(x.q(i)), &y.qs))
            .collect(),
        GgmlType::Q8_0 => pairs::<BlockQ8_0, BlockQ8_0>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(x.qs[i]), &y.qs))
            .collect(),
        GgmlType::IQ4_NL => pairs::<BlockIq4Nl, BlockQ8_0>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(IQ4NL_VALUES[usize::from(x.q(i))]), &y.qs))
            .collect(),
        GgmlType::MXFP4 => pairs::<BlockMxfp4, BlockQ8_0>(w, act)?
            .map(|(x, y)| plain(|i| i32::from(MXFP4_VALUES[usize::from(x.q(i))]), &y.qs))
            .collect(),
        GgmlType::Q2_K => pairs::<BlockQ2K, BlockQ8K>(w, act)?
            .map(|(x, y)| BlockIsum {
                scaled: scaled_sum(16, |i| i32::from(x.q(i)), |j| x.scale(16 * j).into(), &y.qs),
                mins: scaled_sum(16, |_| 1, |j| x.min(16 * j).into(), &y.qs),
            })
            .collect(),
        GgmlType::Q3_K => pairs::<BlockQ3K, BlockQ8K>(w, act)?
            .map(|(x, y)| BlockIsum {
                scaled: scaled_sum(16, |i| i32::from(x.q(i)), |j| x.sub_scale(j).into(), &y.qs),
                mins: 0,
            })
            .collect(),
        GgmlType::Q4_K => pairs::<BlockQ4K, BlockQ8K>(w, act)?
            .map(|(x, y)| BlockIsum {
                scaled: scaled_sum(
                    32,
                    |i| i32::from(x.q(i)),
                    |j| x.scale_min(32 * j).0.into(),
                    &y.qs,
                ),
                mins: scaled_sum(32, |_| 1, |j| x.scale_min(32 * j).1.into(), &y.qs),
            })
            .collect(),
        GgmlType::Q5_K => pairs::<BlockQ5K, BlockQ8K>(w, act)?
            .map(|(x, y)| BlockIsum {
                scaled: scaled_sum(
                    32,
                    |i| i32::from(x.q(i)),
                    |j| x.scale_min(32 * j).0.into(),
                    &y.qs,
                ),
                mins: scaled_sum(32, |_| 1, |j| x.scale_min(32 * j).1.into(), &y.qs),
            })
            .collect(),
        GgmlType::Q6_K => pairs::<BlockQ6K, BlockQ8K>(w, act)?
            .map(|(x, y)| BlockIsum {
                scaled: scaled_sum(16, |i| i32::from(x.q(i)), |j| x.scales[j].into(), &y.qs),
                mins: 0,
            })
            .collect(),
        GgmlType::IQ4_XS => pairs::<BlockIq4Xs, BlockQ8K>(w, act)?
            .map(|(x, y)| BlockIsum {
                scaled: scaled_sum(
                    32,
                    |i| i32::from(IQ4NL_VALUES[usize::from(x.q(i))]),
                    |j| i32::from(x.ls(j)) - 32,
                    &y.qs,
                ),
                mins: 0,
            })
            .collect(),
        _ => return Err(unsupported("block_isums", ty)),
    })
}

/// The float term of each weight block (each value, for F32/F16/BF16) whose sum is the dot
/// product: `scale * isum.scaled - min_scale * isum.mins (+ m * s for Q4_1/Q5_1)`, with the
/// scales combined as ggml combines them (weight scale times activation scale, in f32).
pub fn block_dot_terms(
    ty: GgmlType,
    n: usize,
    w: &[u8],
    act: &[u8],
) -> Result<Vec<f32>, KernelError> {
    check_dot_args(ty, n, w, act)?;
    match ty {
        GgmlType::F32 => {
            let (x, y) = (as_blocks::<BlockF32>(w)?, as_blocks::<BlockF32>(act)?);
            return Ok(x.iter().zip(y).map(|(a, b)| a.get() * b.get()).collect());
        }
        GgmlType::F16 => {
            let (x, y) = (as_blocks::<BlockF16>(w)?, as_blocks::<BlockF16>(act)?);
            return Ok(x.iter().zip(y).map(|(a, b)| a.get() * b.get()).collect());
        }
        GgmlType::BF16 => {
            let (x, y) = (as_blocks::<BlockBf16>(w)?, as_blocks::<BlockBf16>(act)?);
            return Ok(x.iter().zip(y).map(|(a, b)| a.get() * b.get()).collect());
        }
        _ => {}
    }
    let isums = block_isums(ty, n, w, act)?;
    let terms = |scales: Vec<(f32, f32, f32)>| -> Vec<f32> {
        // (scale of `scaled`, scale of `mins`, constant added)
        scales
            .into_iter()
            .zip(&isums)
            .map(|((s, m, c), isum)| s * isum.scaled as f32 - m * isum.mins as f32 + c)
            .collect()
    };
    Ok(match ty {
        GgmlType::Q4_0 => terms(
            pairs::<BlockQ4_0, BlockQ8_0>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::Q5_0 => terms(
            pairs::<BlockQ5_0, BlockQ8_0>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::Q8_0 => terms(
            pairs::<BlockQ8_0, BlockQ8_0>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::IQ4_NL => terms(
            pairs::<BlockIq4Nl, BlockQ8_0>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::MXFP4 => terms(
            pairs::<BlockMxfp4, BlockQ8_0>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::Q4_1 => terms(
            pairs::<BlockQ4_1, BlockQ8_1>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, x.m() * y.s()))
                .collect(),
        ),
        GgmlType::Q5_1 => terms(
            pairs::<BlockQ5_1, BlockQ8_1>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, x.m() * y.s()))
                .collect(),
        ),
        GgmlType::Q2_K => terms(
            pairs::<BlockQ2K, BlockQ8K>(w, act)?
                .map(|(x, y)| (y.d() * x.d(), y.d() * x.dmin(), 0.0))
                .collect(),
        ),
        GgmlType::Q3_K => terms(
            pairs::<BlockQ3K, BlockQ8K>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::Q4_K => terms(
            pairs::<BlockQ4K, BlockQ8K>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), x.dmin() * y.d(), 0.0))
                .collect(),
        ),
        GgmlType::Q5_K => terms(
            pairs::<BlockQ5K, BlockQ8K>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), x.dmin() * y.d(), 0.0))
                .collect(),
        ),
        GgmlType::Q6_K => terms(
            pairs::<BlockQ6K, BlockQ8K>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        GgmlType::IQ4_XS => terms(
            pairs::<BlockIq4Xs, BlockQ8K>(w, act)?
                .map(|(x, y)| (x.d() * y.d(), 0.0, 0.0))
                .collect(),
        ),
        _ => return Err(unsupported("block_dot_terms", ty)),
    })
}

/// The dot product of a weight row of `n` values of `ty` with an activation row of `n` values
/// of `vec_dot_type(ty)`: the sum of [`block_dot_terms`], accumulated in f64.
pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> Result<f32, KernelError> {
    let terms = block_dot_terms(ty, n, w, act)?;
    Ok(terms.iter().map(|&t| f64::from(t)).sum::<f64>() as f32)
}

/// The order of the row tiles (`dispatch::vec_dot_tile_rows`) for the Q4_0 family: one f32
/// chain per (weight row, activation row) pair, per block `acc = fma(f32(isum), dw * da, acc)`
/// (the scale product rounded to f32 first), and for Q4_1 and Q5_1 then
/// `acc = fma(mw, sa, acc)` with Q8_1's `s`. It is also the order of the ordinary Q4_0, IQ4_NL
/// and MXFP4 kernels on x86 (llama.cpp's repacked Q4_0, IQ4_NL and MXFP4, whose weight scale
/// for MXFP4 is the E8M0 half-scale, multiplied by the activation's `d` in f32). Other types
/// have no row order of their own.
pub fn vec_dot_row_order(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> Result<f32, KernelError> {
    check_dot_args(ty, n, w, act)?;
    let isums = match ty {
        GgmlType::Q4_0
        | GgmlType::Q4_1
        | GgmlType::Q5_0
        | GgmlType::Q5_1
        | GgmlType::Q8_0
        | GgmlType::IQ4_NL
        | GgmlType::MXFP4 => block_isums(ty, n, w, act)?,
        _ => return Err(unsupported("vec_dot_row_order", ty)),
    };
    // (dw * da, mw * sa as the two factors of the second fma, if any)
    let scales: Vec<(f32, Option<(f32, f32)>)> = match ty {
        GgmlType::Q4_0 => pairs::<BlockQ4_0, BlockQ8_0>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), None))
            .collect(),
        GgmlType::Q4_1 => pairs::<BlockQ4_1, BlockQ8_1>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), Some((x.m(), y.s()))))
            .collect(),
        GgmlType::Q5_0 => pairs::<BlockQ5_0, BlockQ8_0>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), None))
            .collect(),
        GgmlType::Q5_1 => pairs::<BlockQ5_1, BlockQ8_1>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), Some((x.m(), y.s()))))
            .collect(),
        GgmlType::MXFP4 => pairs::<BlockMxfp4, BlockQ8_0>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), None))
            .collect(),
        GgmlType::IQ4_NL => pairs::<BlockIq4Nl, BlockQ8_0>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), None))
            .collect(),
        _ => pairs::<BlockQ8_0, BlockQ8_0>(w, act)?
            .map(|(x, y)| (x.d() * y.d(), None))
            .collect(),
    };
    let mut acc = 0.0f32;
    for (isum, (scale, min)) in isums.iter().zip(scales) {
        acc = (isum.scaled as f32).mul_add(scale, acc);
        if let Some((m, s)) = min {
            acc = m.mul_add(s, acc);
        }
    }
    Ok(acc)
}

/// Smallest number of activation rows for which llama.cpp's x86 CPU backend multiplies the
/// k-quants it does not repack (Q2_K, Q3_K, Q5_K, Q6_K) and IQ4_XS with its tiled GEMM
/// (`ggml-cpu/tiled`) instead of `vec_dot`; a MoE expert counts the rows routed to it.
pub const BATCH_ORDER_MIN_ROWS: usize = 8;

/// The types with a batch order ([`vec_dot_batch_order`]) of their own.
pub fn has_batch_order(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::F32
            | GgmlType::F16
            | GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ4_NL
            | GgmlType::IQ4_XS
            | GgmlType::MXFP4
    )
}

/// The dot product summed the way llama.cpp's x86 batch kernels sum it. Every rounding is
/// fixed, so a SIMD kernel in this order must give the same bits.
///
/// - Q2_K, Q3_K, Q5_K, Q6_K, IQ4_XS: the tiled GEMM (see [`BATCH_ORDER_MIN_ROWS`]). Per
///   super-block, the exact integer sums of [`block_isums`] become `t = d * scaled - dmin *
///   mins` in f32 (the second product fused), and the row total is the chain
///   `acc = fma(t, d_act, acc)`.
/// - F32, F16: llamafile's tinyBLAS (batches of two or more rows), one 8-lane f32
///   accumulator fed by fused multiply-adds (element `i` into lane `i % 8`), then the AVX
///   horizontal sum; when `n` is not a multiple of 8 tinyBLAS declines and ggml's `vec_dot`
///   order applies ([`vec_dot_ggml_order`]).
/// - Q4_K: the repacked gemm (`ggml_gemm_q4_K_8x8_q8_K`, which serves activation rows in
///   groups of four; the rest go through its gemv, our `vec_dot` order). Per pair of
///   sub-blocks (64 values), `acc = fma(scaled, d * d_act, acc)` and
///   `macc = fma(mins, dmin * d_act, macc)`, and the result is `acc - macc`.
/// - MXFP4 and IQ4_NL: `ggml_vec_dot_mxfp4_q8_0` / `ggml_vec_dot_iq4_nl_q8_0` (one loop),
///   which llama.cpp runs for the matrices it does not repack (rows not a multiple of 8; the
///   repacked ones sum in [`vec_dot_row_order`]'s order), for one activation row as for many
///   (but IQ4_NL batches of two or more rows in `mul_mat`, which llamafile's tinyBLAS takes:
///   one 8-lane accumulator, not kept here). Per block, lane `i` of an 8-lane register holds the
///   exact integer sum of the products `4i..4i+4`; even blocks of each pair accumulate into one
///   register, odd blocks into another (`acc = fma(dw * da, f32(lane), acc)`, the scale
///   product rounded first); the sum of the two registers is reduced as `hsum_float_8` does,
///   and an unpaired last block is added as `fma(dw * da, f32(isum), total)`.
pub fn vec_dot_batch_order(
    ty: GgmlType,
    n: usize,
    w: &[u8],
    act: &[u8],
) -> Result<f32, KernelError> {
    match ty {
        GgmlType::Q4_K => return q4_k_repack_gemm_order(n, w, act),
        GgmlType::MXFP4 | GgmlType::IQ4_NL => return paired_ggml_order(ty, n, w, act),
        GgmlType::F32 | GgmlType::F16 if !n.is_multiple_of(8) => {
            return vec_dot_ggml_order(ty, n, w, act)
        }
        GgmlType::F32 | GgmlType::F16 => return Ok(tinyblas_sum(float_values(ty, n, w, act)?)),
        _ => {}
    }
    let isums = block_isums(ty, n, w, act)?;
    // (weight d, weight dmin, activation d) per super-block.
    let scales: Vec<(f32, f32, f32)> = match ty {
        GgmlType::Q2_K => pairs::<BlockQ2K, BlockQ8K>(w, act)?
            .map(|(x, y)| (x.d(), x.dmin(), y.d()))
            .collect(),
        GgmlType::Q3_K => pairs::<BlockQ3K, BlockQ8K>(w, act)?
            .map(|(x, y)| (x.d(), 0.0, y.d()))
            .collect(),
        GgmlType::Q5_K => pairs::<BlockQ5K, BlockQ8K>(w, act)?
            .map(|(x, y)| (x.d(), x.dmin(), y.d()))
            .collect(),
        GgmlType::Q6_K => pairs::<BlockQ6K, BlockQ8K>(w, act)?
            .map(|(x, y)| (x.d(), 0.0, y.d()))
            .collect(),
        GgmlType::IQ4_XS => pairs::<BlockIq4Xs, BlockQ8K>(w, act)?
            .map(|(x, y)| (x.d(), 0.0, y.d()))
            .collect(),
        _ => return Err(unsupported("vec_dot_batch_order", ty)),
    };
    Ok(scales
        .iter()
        .zip(&isums)
        .fold(0.0f32, |acc, (&(d, dmin, d_act), isum)| {
            let t = (-dmin).mul_add(isum.mins as f32, d * isum.scaled as f32);
            t.mul_add(d_act, acc)
        }))
}

/// The float dot products summed as ggml's x86 `vec_dot` kernels sum them (AVX2 + FMA):
/// four 8-lane accumulators over steps of 32 values (fused multiply-adds), reduced as
/// `(s0+s2)+(s1+s3)`, then halves and two pairwise adds; the `n % 32` leftovers are added one
/// at a time, fused into an f32 total (`ggml_vec_dot_f32`) or as f64 products of the f32
/// product (`ggml_vec_dot_f16`). F32 and F16 only.
pub fn vec_dot_ggml_order(
    ty: GgmlType,
    n: usize,
    w: &[u8],
    act: &[u8],
) -> Result<f32, KernelError> {
    let values: Vec<(f32, f32)> = float_values(ty, n, w, act)?.collect();
    let np = n - n % 32;
    let sum = ggml_vec_sum(values[..np].iter().copied());
    let tail = &values[np..];
    Ok(if ty == GgmlType::F16 {
        let total = tail
            .iter()
            .fold(f64::from(sum), |s, &(x, y)| s + f64::from(x * y));
        total as f32
    } else {
        tail.iter().fold(sum, |s, &(x, y)| x.mul_add(y, s))
    })
}

/// The `(weight, activation)` value pairs of an F32 or F16 dot product.
fn float_values<'a>(
    ty: GgmlType,
    n: usize,
    w: &'a [u8],
    act: &'a [u8],
) -> Result<Box<dyn Iterator<Item = (f32, f32)> + 'a>, KernelError> {
    check_dot_args(ty, n, w, act)?;
    Ok(match ty {
        GgmlType::F32 => {
            Box::new(pairs::<BlockF32, BlockF32>(w, act)?.map(|(x, y)| (x.get(), y.get())))
        }
        GgmlType::F16 => {
            Box::new(pairs::<BlockF16, BlockF16>(w, act)?.map(|(x, y)| (x.get(), y.get())))
        }
        _ => return Err(unsupported("float_values", ty)),
    })
}

/// `ggml_vec_dot_mxfp4_q8_0` and `ggml_vec_dot_iq4_nl_q8_0` on AVX2 (one loop): per block,
/// lane `i` of an 8-lane register holds the exact integer sum of the products `4i..4i+4`;
/// even blocks (of each pair) accumulate into one register and odd blocks into another,
/// `acc = fma(dw * da, f32(lane), acc)` with the scale product rounded first; the sum of the
/// two registers is reduced as `hsum_float_8` does, and a last, unpaired block is added as
/// `fma(dw * da, f32(isum), total)` (the C `sumf += d * (sumi1 + sumi2)`, contracted by the
/// compiler).
fn paired_ggml_order(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> Result<f32, KernelError> {
    check_dot_args(ty, n, w, act)?;
    // Each block's eight lane sums and its scale product `da * dw`.
    let lanes = |value: &dyn Fn(usize) -> i32, qs: &[i8; 32]| -> [i32; 8] {
        core::array::from_fn(|l| {
            (4 * l..4 * l + 4)
                .map(|i| value(i) * i32::from(qs[i]))
                .sum()
        })
    };
    let blocks: Vec<([i32; 8], f32)> = match ty {
        GgmlType::MXFP4 => pairs::<BlockMxfp4, BlockQ8_0>(w, act)?
            .map(|(x, y)| {
                let value = |i: usize| i32::from(MXFP4_VALUES[usize::from(x.q(i))]);
                (lanes(&value, &y.qs), y.d() * x.d())
            })
            .collect(),
        GgmlType::IQ4_NL => pairs::<BlockIq4Nl, BlockQ8_0>(w, act)?
            .map(|(x, y)| {
                let value = |i: usize| i32::from(IQ4NL_VALUES[usize::from(x.q(i))]);
                (lanes(&value, &y.qs), y.d() * x.d())
            })
            .collect(),
        _ => return Err(unsupported("paired_ggml_order", ty)),
    };
    let mut acc = [[0f32; 8]; 2];
    let paired = blocks.len() - blocks.len() % 2;
    for (b, (block_lanes, scale)) in blocks[..paired].iter().enumerate() {
        for (a, &s) in acc[b % 2].iter_mut().zip(block_lanes) {
            *a = scale.mul_add(s as f32, *a);
        }
    }
    let sum: [f32; 8] = core::array::from_fn(|l| acc[0][l] + acc[1][l]);
    let mut total = hsum8(&sum);
    if let Some((block_lanes, scale)) = blocks.get(paired) {
        let isum: i32 = block_lanes.iter().sum();
        total = scale.mul_add(isum as f32, total);
    }
    Ok(total)
}

/// [`vec_dot_batch_order`] for Q4_K: two f32 chains, one step per pair of sub-blocks.
fn q4_k_repack_gemm_order(n: usize, w: &[u8], act: &[u8]) -> Result<f32, KernelError> {
    check_dot_args(GgmlType::Q4_K, n, w, act)?;
    let (mut acc, mut macc) = (0.0f32, 0.0f32);
    for (x, y) in pairs::<BlockQ4K, BlockQ8K>(w, act)? {
        let (d, dm) = (x.d() * y.d(), x.dmin() * y.d());
        for pair in 0..QK_K / 64 {
            let (mut scaled, mut mins) = (0i32, 0i32);
            for j in 2 * pair..2 * pair + 2 {
                let (scale, min) = x.scale_min(32 * j);
                let (dot, sum) = (32 * j..32 * j + 32).fold((0i32, 0i32), |(dot, sum), i| {
                    let a = i32::from(y.qs[i]);
                    (dot + i32::from(x.q(i)) * a, sum + a)
                });
                scaled += i32::from(scale) * dot;
                mins += i32::from(min) * sum;
            }
            acc = (scaled as f32).mul_add(d, acc);
            macc = (mins as f32).mul_add(dm, macc);
        }
    }
    Ok(acc - macc)
}

fn unsupported(op: &'static str, ty: GgmlType) -> KernelError {
    KernelError::Unsupported { op, ty }
}

fn check_dot_args(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> Result<(), KernelError> {
    let act_ty = vec_dot_type(ty);
    let supported = matches!(
        ty,
        GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ4_NL
            | GgmlType::IQ4_XS
            | GgmlType::MXFP4
    );
    if !supported {
        return Err(unsupported("vec_dot", ty));
    }
    check_row("vec_dot weights", ty, n, w.len())?;
    check_row("vec_dot activations", act_ty, n, act.len())
}

/// Weight blocks paired with the activation blocks under them (one activation block per weight
/// block: the legacy types pair 32 with 32, the 256-value types 256 with 256).
fn pairs<'a, W: crate::formats::Block, A: crate::formats::Block>(
    w: &'a [u8],
    act: &'a [u8],
) -> Result<impl Iterator<Item = (&'a W, &'a A)>, KernelError> {
    Ok(as_blocks::<W>(w)?.iter().zip(as_blocks::<A>(act)?))
}

/// Sum of weight code times activation code over one 32-value block.
fn plain(code: impl Fn(usize) -> i32, act: &[i8; 32]) -> BlockIsum {
    let scaled = act
        .iter()
        .enumerate()
        .map(|(i, &a)| code(i) * i32::from(a))
        .sum();
    BlockIsum { scaled, mins: 0 }
}

/// Sum over sub-blocks of `sub` values of `scale(sub-block) * sum(code * act)`.
fn scaled_sum(
    sub: usize,
    code: impl Fn(usize) -> i32,
    scale: impl Fn(usize) -> i32,
    act: &[i8; QK_K],
) -> i32 {
    act.chunks_exact(sub)
        .enumerate()
        .map(|(j, group)| {
            let s: i32 = group
                .iter()
                .enumerate()
                .map(|(l, &a)| code(j * sub + l) * i32::from(a))
                .sum();
            scale(j) * s
        })
        .sum()
}
