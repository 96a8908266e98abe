//! AVX2+FMA+F16C versions of [`crate::vecmath`]: the same fused operations as the scalar
//! references in `crate::vecmath::scalar`, eight lanes at a time, so every result is
//! bit-identical to them.

use core::arch::x86_64::*;

use half::f16;

use crate::vecmath::scalar::{self, F16DotOrder};

/// Eight f16 values at `p` widened to f32.
///
/// # Safety
/// F16C; `p` points at 8 readable f16 values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8(p: *const f16) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes at `p`.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

/// `acc[l] = fma(x[l], y[l], acc[l])` for the lanes `l < x.len().min(y.len())` (at most 8),
/// the other lanes untouched: the tail of a row, without a zero-padded copy.
///
/// # Safety
/// AVX2+FMA+F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fma_tail(x: &[f16], y: &[f16], acc: __m256) -> __m256 {
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    for ((l, a), b) in lanes.iter_mut().zip(x).zip(y) {
        // With FMA enabled in this function, `mul_add` is the fused instruction.
        *l = a.to_f32().mul_add(b.to_f32(), *l);
    }
    // SAFETY: as above.
    unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
}

/// Values `full..len` of the row at `p` (`len - full` of them, 1..=7) in the low lanes,
/// zero above: loaded as the last 8 values of the row and shifted down, so no copy is made.
///
/// # Safety
/// AVX2+FMA+F16C; `8 <= len`, `len - 8 < full < len`, and `p` valid for `len` values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_tail(p: *const f16, full: usize, len: usize) -> __m256 {
    let tail = (len - full) as i32;
    // SAFETY: values len-8..len lie inside the row (caller).
    let v = unsafe { load8(p.add(len - 8)) };
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let shifted = _mm256_permutevar8x32_ps(v, _mm256_add_epi32(lanes, _mm256_set1_epi32(8 - tail)));
    let keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), lanes);
    _mm256_and_ps(shifted, _mm256_castsi256_ps(keep))
}

/// The horizontal sum in `scalar::hsum8`'s order: high + low halves, then `movehl`, then
/// `movehdup`.
///
/// # Safety
/// AVX.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum8(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
}

/// The `ggml_vec_dot_f16` reduction: `(s0+s2)+(s1+s3)`, halves, two pairwise adds.
///
/// # Safety
/// AVX.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn reduce4(s: [__m256; 4]) -> f32 {
    let s = _mm256_add_ps(_mm256_add_ps(s[0], s[2]), _mm256_add_ps(s[1], s[3]));
    let t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let t = _mm_hadd_ps(t, t);
    _mm_cvtss_f32(_mm_hadd_ps(t, t))
}

/// See [`crate::vecmath::dot_f16_rows`]. Chunks of 8 past the end of a row are never formed:
/// like the scalar reference, they would only add zero products. A row's last partial chunk
/// is either added lane by lane (`fma_tail`) or as a chunk whose missing lanes are `0 * 0`;
/// that adds `+0` to accumulators that are never `-0` (they start at `+0`, and a sum is `-0`
/// only when both terms are), so it leaves them unchanged, like the scalar reference.
///
/// # Safety
/// AVX2+FMA+F16C; `(out.len() - 1) * stride + y.len() <= rows.len()` when `out` is not empty.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f16_rows(
    order: F16DotOrder,
    rows: &[f16],
    stride: usize,
    y: &[f16],
    out: &mut [f32],
) {
    let len = y.len();
    let full = len & !7;
    let row = |r: usize| &rows[r * stride..r * stride + len];
    match order {
        F16DotOrder::TinyBlas => {
            // Four rows at a time: four independent accumulator chains hide the FMA latency.
            let mut chunks = out.chunks_exact_mut(4);
            let mut r0 = 0;
            for o in &mut chunks {
                let rs = [row(r0), row(r0 + 1), row(r0 + 2), row(r0 + 3)];
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i < full {
                    // SAFETY: i + 8 <= full <= len, the length of `y` and of every row.
                    let yv = unsafe { load8(y.as_ptr().add(i)) };
                    for (a, r) in acc.iter_mut().zip(&rs) {
                        // SAFETY: as above.
                        *a = _mm256_fmadd_ps(unsafe { load8(r.as_ptr().add(i)) }, yv, *a);
                    }
                    i += 8;
                }
                if full < len && len >= 8 {
                    // SAFETY: 8 <= len and full > len - 8 (full is len rounded down to 8).
                    let yv = unsafe { load_tail(y.as_ptr(), full, len) };
                    for (a, r) in acc.iter_mut().zip(&rs) {
                        // SAFETY: as above, for a row of the same length.
                        *a = _mm256_fmadd_ps(unsafe { load_tail(r.as_ptr(), full, len) }, yv, *a);
                    }
                } else if full < len {
                    for (a, r) in acc.iter_mut().zip(&rs) {
                        *a = fma_tail(&r[full..], &y[full..], *a);
                    }
                }
                for (o, a) in o.iter_mut().zip(acc) {
                    *o = hsum8(a);
                }
                r0 += 4;
            }
            for (k, o) in chunks.into_remainder().iter_mut().enumerate() {
                let r = row(r0 + k);
                let mut acc = _mm256_setzero_ps();
                let mut i = 0;
                while i < full {
                    // SAFETY: i + 8 <= full <= len.
                    let (a, b) = unsafe { (load8(r.as_ptr().add(i)), load8(y.as_ptr().add(i))) };
                    acc = _mm256_fmadd_ps(a, b, acc);
                    i += 8;
                }
                if full < len && len >= 8 {
                    // SAFETY: 8 <= len and full > len - 8.
                    let (a, b) = unsafe {
                        (
                            load_tail(r.as_ptr(), full, len),
                            load_tail(y.as_ptr(), full, len),
                        )
                    };
                    acc = _mm256_fmadd_ps(a, b, acc);
                } else if full < len {
                    acc = fma_tail(&r[full..], &y[full..], acc);
                }
                *o = hsum8(acc);
            }
        }
        F16DotOrder::GgmlVec => {
            // `y` is the same for every row: its whole chunks are widened to f32 once (exact)
            // into a per-thread buffer, which halves the conversions of the inner loop. The
            // buffer is taken out of its cell rather than used in a closure, which would not
            // inherit this function's target features.
            thread_local! {
                static Y32: core::cell::Cell<Vec<f32>> = const { core::cell::Cell::new(Vec::new()) };
            }
            let mut yf = Y32.with(|c| c.take());
            yf.clear();
            yf.resize(full, 0.0);
            for (i, dst) in yf.chunks_exact_mut(8).enumerate() {
                // SAFETY: chunk i of `y` is whole (8 * i + 8 <= full <= len); `dst` holds 8.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), load8(y.as_ptr().add(8 * i))) };
            }
            let yp = yf.as_ptr();
            // Chunk c of 8 values goes to accumulator c % 4 (ggml's 32-value step); chunks
            // past the end are all-zero and leave the accumulators unchanged.
            for (r, o) in out.iter_mut().enumerate() {
                let x = row(r);
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                // Whole 32-value steps unrolled, so the accumulators stay in registers (an
                // index `c % 4` computed at run time keeps them in memory).
                while i + 32 <= full {
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: i + 32 <= full <= len (x), = yf.len() (yp).
                        let (xv, yv) = unsafe {
                            (
                                load8(x.as_ptr().add(i + 8 * k)),
                                _mm256_loadu_ps(yp.add(i + 8 * k)),
                            )
                        };
                        *a = _mm256_fmadd_ps(xv, yv, *a);
                    }
                    i += 32;
                }
                let mut c = 0;
                while i < full {
                    // SAFETY: i + 8 <= full <= len (x), = yf.len() (yp).
                    let (a, b) = unsafe { (load8(x.as_ptr().add(i)), _mm256_loadu_ps(yp.add(i))) };
                    acc[c] = _mm256_fmadd_ps(a, b, acc[c]);
                    i += 8;
                    c += 1;
                }
                if full < len && len >= 8 {
                    // SAFETY: 8 <= len and full > len - 8.
                    let (a, b) = unsafe {
                        (
                            load_tail(x.as_ptr(), full, len),
                            load_tail(y.as_ptr(), full, len),
                        )
                    };
                    acc[c % 4] = _mm256_fmadd_ps(a, b, acc[c % 4]);
                } else if full < len {
                    acc[c % 4] = fma_tail(&x[full..], &y[full..], acc[c % 4]);
                }
                *o = reduce4(acc);
            }
            Y32.with(|c| c.set(yf));
        }
    }
}

/// See [`crate::vecmath::dot_f16_rows_multi`] (GgmlVec order): each row is read and widened
/// once for up to three `y` vectors (the query heads of one KV head), and every (y, row)
/// pair goes through exactly the operations of [`dot_f16_rows`]'s GgmlVec arm, so its bits
/// are that function's.
///
/// # Safety
/// AVX2+FMA+F16C; `ys.len() == n_ys * len` with `len` the length of every y; every row
/// `r < n_rows` lies inside `rows` at `r * stride` for `len` values; `out.len() == n_ys * n_rows`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f16_rows_ggml_multi(
    rows: &[f16],
    stride: usize,
    ys: &[f16],
    len: usize,
    out: &mut [f32],
) {
    let n_ys = ys.len().checked_div(len).unwrap_or(0);
    let n_rows = out.len().checked_div(n_ys.max(1)).unwrap_or(0);
    let full = len & !7;
    // Every y's whole chunks widened to f32 once (exact), y after y.
    let mut yf = vec![0.0f32; n_ys * full];
    for (g, dst) in yf.chunks_exact_mut(full.max(1)).enumerate().take(n_ys) {
        for (i, d) in dst.chunks_exact_mut(8).enumerate() {
            // SAFETY: chunk i of y g is whole (8 * i + 8 <= full <= len); `d` holds 8.
            unsafe { _mm256_storeu_ps(d.as_mut_ptr(), load8(ys.as_ptr().add(g * len + 8 * i))) };
        }
    }
    for (g0, n, dst) in y_groups(out, n_ys, n_rows) {
        let y = |g: usize| &ys[(g0 + g) * len..(g0 + g + 1) * len];
        let yw = |g: usize| &yf[(g0 + g) * full..(g0 + g + 1) * full];
        // SAFETY: the caller's contract, for ys g0..g0+n.
        unsafe {
            match n {
                1 => ggml_rows_n::<1>(rows, stride, len, [y(0)], [yw(0)], dst),
                2 => ggml_rows_n::<2>(rows, stride, len, [y(0), y(1)], [yw(0), yw(1)], dst),
                _ => ggml_rows_n::<3>(
                    rows,
                    stride,
                    len,
                    [y(0), y(1), y(2)],
                    [yw(0), yw(1), yw(2)],
                    dst,
                ),
            }
        }
    }
}

/// The ys of a multi-vector dot product in groups of up to three (the most a kernel keeps
/// accumulators for): `(first y, ys in the group, their rows of out)`, the output being
/// `n_rows` values per y, y after y.
fn y_groups(
    out: &mut [f32],
    n_ys: usize,
    n_rows: usize,
) -> impl Iterator<Item = (usize, usize, &mut [f32])> {
    let groups = (0..n_ys).step_by(3).map(move |g0| (g0, (n_ys - g0).min(3)));
    let mut rest = out;
    groups.map(move |(g0, n)| {
        let (dst, tail) = core::mem::take(&mut rest).split_at_mut(n * n_rows);
        rest = tail;
        (g0, n, dst)
    })
}

/// [`dot_f16_rows_ggml_multi`] for `N` ys: `y[g]` (f16, `len` values) with its whole chunks
/// widened in `yw[g]`; writes `out[g * n_rows + r]`.
///
/// # Safety
/// As [`dot_f16_rows_ggml_multi`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
// Indices walk two arrays at once (accumulator `[g][k]`, `yw[g]`): iterators would hide that.
#[allow(clippy::needless_range_loop)]
unsafe fn ggml_rows_n<const N: usize>(
    rows: &[f16],
    stride: usize,
    len: usize,
    y: [&[f16]; N],
    yw: [&[f32]; N],
    out: &mut [f32],
) {
    let full = len & !7;
    let n_rows = out.len() / N;
    for r in 0..n_rows {
        let x = &rows[r * stride..r * stride + len];
        let mut acc = [[_mm256_setzero_ps(); 4]; N];
        let mut i = 0;
        while i + 32 <= full {
            for k in 0..4 {
                // SAFETY: i + 32 <= full <= len (x); yw[g] holds `full` values.
                let xv = unsafe { load8(x.as_ptr().add(i + 8 * k)) };
                for g in 0..N {
                    // SAFETY: as above.
                    let yv = unsafe { _mm256_loadu_ps(yw[g].as_ptr().add(i + 8 * k)) };
                    acc[g][k] = _mm256_fmadd_ps(xv, yv, acc[g][k]);
                }
            }
            i += 32;
        }
        let mut c = 0;
        while i < full {
            // SAFETY: i + 8 <= full <= len.
            let xv = unsafe { load8(x.as_ptr().add(i)) };
            for g in 0..N {
                // SAFETY: as above.
                let yv = unsafe { _mm256_loadu_ps(yw[g].as_ptr().add(i)) };
                acc[g][c] = _mm256_fmadd_ps(xv, yv, acc[g][c]);
            }
            i += 8;
            c += 1;
        }
        if full < len && len >= 8 {
            // SAFETY: 8 <= len and full > len - 8.
            let xv = unsafe { load_tail(x.as_ptr(), full, len) };
            for g in 0..N {
                // SAFETY: as above, for a y of the same length.
                let yv = unsafe { load_tail(y[g].as_ptr(), full, len) };
                acc[g][c % 4] = _mm256_fmadd_ps(xv, yv, acc[g][c % 4]);
            }
        } else if full < len {
            for g in 0..N {
                acc[g][c % 4] = fma_tail(&x[full..], &y[g][full..], acc[g][c % 4]);
            }
        }
        for g in 0..N {
            out[g * n_rows + r] = reduce4(acc[g]);
        }
    }
}

/// See [`crate::vecmath::dot_f16_rows_multi`] (TinyBlas order): each row is read and widened
/// once for up to three `y` vectors (the query heads of one KV head: the softmax weights
/// times V), and every (y, row) pair goes through exactly the operations of
/// [`dot_f16_rows`]'s TinyBlas arm (one 8-lane accumulator, chunks in order, the tail, then
/// [`hsum8`]), so its bits are that function's. The ys stay f16 and are widened chunk by
/// chunk, shared by two rows: widened whole, three of them no longer fit L1 at depth.
///
/// # Safety
/// As [`dot_f16_rows_ggml_multi`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f16_rows_tiny_multi(
    rows: &[f16],
    stride: usize,
    ys: &[f16],
    len: usize,
    out: &mut [f32],
) {
    let n_ys = ys.len().checked_div(len).unwrap_or(0);
    let n_rows = out.len().checked_div(n_ys.max(1)).unwrap_or(0);
    for (g0, n, dst) in y_groups(out, n_ys, n_rows) {
        let y = |g: usize| &ys[(g0 + g) * len..(g0 + g + 1) * len];
        // SAFETY: the caller's contract, for ys g0..g0+n.
        unsafe {
            match n {
                1 => tiny_rows_n::<1>(rows, stride, len, [y(0)], dst),
                2 => tiny_rows_n::<2>(rows, stride, len, [y(0), y(1)], dst),
                _ => tiny_rows_n::<3>(rows, stride, len, [y(0), y(1), y(2)], dst),
            }
        }
    }
}

/// [`dot_f16_rows_tiny_multi`] for `N` ys, two rows at a time (2N independent accumulator
/// chains), the last odd one alone; writes `out[g * n_rows + r]`.
///
/// # Safety
/// As [`dot_f16_rows_ggml_multi`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tiny_rows_n<const N: usize>(
    rows: &[f16],
    stride: usize,
    len: usize,
    y: [&[f16]; N],
    out: &mut [f32],
) {
    let n_rows = out.len() / N;
    let row = |r: usize| &rows[r * stride..r * stride + len];
    let mut r0 = 0;
    while r0 + 2 <= n_rows {
        // SAFETY: the caller's contract; the rows are in bounds (sliced).
        let sums = unsafe { tiny_block::<N, 2>(len, [row(r0), row(r0 + 1)], y) };
        for (k, s) in sums.iter().enumerate() {
            for (g, &v) in s.iter().enumerate() {
                out[g * n_rows + r0 + k] = v;
            }
        }
        r0 += 2;
    }
    if r0 < n_rows {
        // SAFETY: as above.
        let [s] = unsafe { tiny_block::<N, 1>(len, [row(r0)], y) };
        for (g, &v) in s.iter().enumerate() {
            out[g * n_rows + r0] = v;
        }
    }
}

/// The TinyBlas-order dots of `R` rows with `N` ys: `[row][y]`. A constant number of each,
/// so that the accumulators stay in registers.
///
/// # Safety
/// AVX2+FMA+F16C; every row and y has `len` values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
// Indices walk two arrays at once (accumulator `[k][g]`, `yv[g]`): iterators would hide that.
#[allow(clippy::needless_range_loop)]
unsafe fn tiny_block<const N: usize, const R: usize>(
    len: usize,
    xs: [&[f16]; R],
    y: [&[f16]; N],
) -> [[f32; N]; R] {
    let full = len & !7;
    let mut acc = [[_mm256_setzero_ps(); N]; R];
    let mut i = 0;
    while i < full {
        let mut yv = [_mm256_setzero_ps(); N];
        for g in 0..N {
            // SAFETY: i + 8 <= full <= len, the length of every y and row.
            yv[g] = unsafe { load8(y[g].as_ptr().add(i)) };
        }
        for k in 0..R {
            // SAFETY: as above.
            let xv = unsafe { load8(xs[k].as_ptr().add(i)) };
            for g in 0..N {
                acc[k][g] = _mm256_fmadd_ps(xv, yv[g], acc[k][g]);
            }
        }
        i += 8;
    }
    let mut sums = [[0.0f32; N]; R];
    for k in 0..R {
        let x = xs[k];
        if full < len && len >= 8 {
            // SAFETY: 8 <= len and full > len - 8 (full is len rounded down to 8).
            let xv = unsafe { load_tail(x.as_ptr(), full, len) };
            for g in 0..N {
                // SAFETY: as above, for a y of the same length.
                let yv = unsafe { load_tail(y[g].as_ptr(), full, len) };
                acc[k][g] = _mm256_fmadd_ps(xv, yv, acc[k][g]);
            }
        } else if full < len {
            for g in 0..N {
                acc[k][g] = fma_tail(&x[full..], &y[g][full..], acc[k][g]);
            }
        }
        for g in 0..N {
            sums[k][g] = hsum8(acc[k][g]);
        }
    }
    sums
}

/// `ggml_v_expf` on 8 lanes: the lane-wise operations of `scalar::expf`, with its two rare
/// branches (|n| > 126, |n| > 192) as blends.
///
/// # Safety
/// AVX2+FMA.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn expf8(x: __m256) -> __m256 {
    let r = bits(0x4b40_0000);
    let z = _mm256_fmadd_ps(x, bits(0x3fb8_aa3b), r);
    let n = _mm256_sub_ps(z, r);
    let b = _mm256_fnmadd_ps(
        n,
        bits(0x35bf_be8e),
        _mm256_fnmadd_ps(n, bits(0x3f31_7200), x),
    );
    let e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    let k = _mm256_castsi256_ps(_mm256_add_epi32(
        e,
        _mm256_castps_si256(_mm256_set1_ps(1.0)),
    ));
    let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let c = _mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0), _CMP_GT_OQ);
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(bits(0x3c07_2010), b, bits(0x3d2b_9f17)),
            u,
            _mm256_fmadd_ps(bits(0x3e2a_af33), b, bits(0x3eff_fedb)),
        ),
        u,
        _mm256_mul_ps(bits(0x3f7f_fff6), b),
    );
    let normal = _mm256_fmadd_ps(k, j, k);
    if _mm256_movemask_ps(c) == 0 {
        return normal;
    }
    let g = _mm256_and_si256(
        _mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
        _mm256_set1_epi32(0x8200_0000u32 as i32),
    );
    let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
    let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    let d = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0), _CMP_GT_OQ);
    let big = _mm256_blendv_ps(
        _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1),
        _mm256_mul_ps(s1, s1),
        d,
    );
    _mm256_blendv_ps(normal, big, c)
}

/// Eight lanes of the f32 whose bit pattern is `b`.
///
/// # Safety
/// AVX.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bits(b: u32) -> __m256 {
    _mm256_castsi256_ps(_mm256_set1_epi32(b as i32))
}

/// See [`crate::vecmath::soft_max`].
///
/// # Safety
/// AVX2+FMA+F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn soft_max(row: &mut [f32], scale: f32, sink: Option<f32>) {
    let full = row.len() & !7;
    let sv = _mm256_set1_ps(scale);
    // `max_ps(x, m)` returns `m` when `x` is NaN, like `f32::max`.
    let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
    let (head, tail) = row.split_at_mut(full);
    for c in head.chunks_exact_mut(8) {
        // SAFETY: `c` holds 8 values.
        let x = _mm256_mul_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, sv);
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), x) };
        mv = _mm256_max_ps(x, mv);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mv) };
    let mut max = lanes.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for x in tail.iter_mut() {
        *x *= scale;
        max = max.max(*x);
    }
    if let Some(sk) = sink {
        // ggml: MAX(max, sink).
        max = if max > sk { max } else { sk };
    }
    let maxv = _mm256_set1_ps(max);
    let mut sum = 0.0f64;
    for c in head.chunks_exact_mut(8) {
        // SAFETY: `c` holds 8 values.
        let x = expf8(_mm256_sub_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, maxv));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), x) };
        sum += f64::from(hsum8(x));
    }
    if !tail.is_empty() {
        sum += scalar::exp_block(tail, max);
    }
    if let Some(sk) = sink {
        // ggml adds the sink's term with libm's expf, in double.
        sum += f64::from((sk - max).exp());
    }
    let inv = _mm256_set1_ps((1.0 / sum) as f32);
    for c in head.chunks_exact_mut(8) {
        // SAFETY: `c` holds 8 values.
        unsafe {
            _mm256_storeu_ps(
                c.as_mut_ptr(),
                _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), inv),
            )
        };
    }
    let inv = (1.0 / sum) as f32;
    for x in tail.iter_mut() {
        *x *= inv;
    }
}

/// See [`crate::vecmath::swiglu`].
///
/// # Safety
/// AVX2+FMA+F16C; the three slices have one length.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let full = out.len() & !7;
    let one = _mm256_set1_ps(1.0);
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 <= full <= the length of all three slices.
        unsafe {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let u = _mm256_loadu_ps(up.as_ptr().add(i));
            let e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), g));
            let silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(silu, u));
        }
        i += 8;
    }
    scalar::swiglu(&gate[full..], &up[full..], &mut out[full..]);
}

/// See [`crate::vecmath::geglu`]: eight gates at a time, rounded to f16 by F16C (to nearest
/// even, as `f16::from_f32`) and the table entries widened back by it; the lookups stay
/// scalar, the clamps at -10 and 10 are the scalar ones as blends.
///
/// # Safety
/// AVX2+FMA+F16C; the three slices have one length.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn geglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let table = scalar::gelu_table();
    let full = out.len() & !7;
    let (low, high) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 <= full <= the length of all three slices; the index and entry arrays
        // are 16 bytes each.
        unsafe {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let mut bits = [0u16; 8];
            let h = _mm256_cvtps_ph(g, _MM_FROUND_TO_NEAREST_INT);
            _mm_storeu_si128(bits.as_mut_ptr().cast(), h);
            // The table covers every u16 (65536 entries), so no index is out of range.
            let entries: [u16; 8] = core::array::from_fn(|k| table[usize::from(bits[k])].to_bits());
            let t = _mm256_cvtph_ps(_mm_loadu_si128(entries.as_ptr().cast()));
            let t = _mm256_blendv_ps(t, _mm256_setzero_ps(), _mm256_cmp_ps(g, low, _CMP_LE_OQ));
            let t = _mm256_blendv_ps(t, g, _mm256_cmp_ps(g, high, _CMP_GE_OQ));
            let u = _mm256_loadu_ps(up.as_ptr().add(i));
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(t, u));
        }
        i += 8;
    }
    scalar::geglu(&gate[full..], &up[full..], &mut out[full..]);
}

/// See [`crate::vecmath::f32_to_f16`].
///
/// # Safety
/// AVX2+FMA+F16C; the slices have one length.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f32_to_f16(src: &[f32], dst: &mut [f16]) {
    let full = src.len() & !7;
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 <= full <= both lengths; f16 is 2 bytes, so 8 of them are 16 bytes.
        unsafe {
            let h = _mm256_cvtps_ph(
                _mm256_loadu_ps(src.as_ptr().add(i)),
                _MM_FROUND_TO_NEAREST_INT,
            );
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
        }
        i += 8;
    }
    scalar::f32_to_f16(&src[full..], &mut dst[full..]);
}
