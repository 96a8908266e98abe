//! The i8mm level's tiles: SMMLA on pairs of weight rows against pairs of activation rows, for
//! the legacy 32-value types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) in the summation order
//! of ggml's own i8mm kernels, with the row kernel of that order; and the tile driver they share
//! with the k-quants' SMMLA tiles (`super::i8mm_k`, bit for bit the dotprod level's kernels).
//!
//! # The legacy types' order
//!
//! One f32 chain per (weight row, activation row) pair, in block order:
//! `chain = chain + f32(isum) * (d_w * d_a)`, where `isum` is the exact i32 sum of the block's 32
//! code products and `d_w * d_a` is rounded to f32; a multiply, then an add, each rounded (not
//! fused: ggml's `vmlaq_f32`, which Rust keeps unfused too). Q4_1/Q5_1's offset terms go into a
//! second chain, `offs = offs + m_w * s_a`, and the result is `chain + offs` (blocks, then
//! offsets, as the other levels' `Acc::total`). Every path below forms the same exact `isum`,
//! however it gets there, and then does exactly these f32 operations in its own lane, so a pair's
//! bits depend neither on the tile's shape nor on the pair's place in it: the tiles equal [`row`]
//! (the `VecDotFn`) bit for bit, and a batch equals its rows one at a time.
//!
//! # The paths ([`tile`], for every [`PairTiles`] type)
//!
//! - Two or more activation rows: SMMLA on 2x2 blocks, two weight rows against two activation
//!   rows, whose 8-byte chunks [`interleave`] zips into the instruction's operands; 4 SMMLA give
//!   32 values' 4 sums. The register tile is 4 weight rows x 4 activation rows (2 x 2 such
//!   blocks), so that each row's codes are decoded once for 4 rows of the other side. Row and
//!   activation remainders take the same blocks with the last row repeated, whose lanes compute
//!   the same values again (the repeated outputs are written twice, with equal bits), and a last
//!   single activation row takes the one-row path.
//! - One activation row (decoding: the matvec's tiles have one): 4 weight rows per pass with
//!   SDOT. For the legacy types, their block sums are gathered into one vector by pairwise adds
//!   so that the f32 chain runs on four lanes at once.
//! - [`row`], one pair of a legacy type: SDOT and a scalar chain.

use core::arch::aarch64::*;

use super::dot::{smmla, I8Dot, SDot};
use super::legacy::{LegacyCodes, QK};
use super::load::{f16_at, i8x16};
use crate::kernel_set::TileArgs;

/// Block `b` (`size` bytes) of a row.
#[inline(always)]
pub(super) fn block(row: &[u8], b: usize, size: usize) -> &[u8] {
    &row[b * size..][..size]
}

/// The 32 quants of activation block `a` as (values 0..16, values 16..32).
#[inline(always)]
fn act_codes<K: LegacyCodes>(a: &[u8]) -> (int8x16_t, int8x16_t) {
    (i8x16(a, K::A_QS), i8x16(a, K::A_QS + 16))
}

/// The exact dot product of a block's 32 codes `w` with its activation quants `a`, spread over
/// four i32 lanes (their sum is the block's `isum`).
///
/// # Safety
/// The CPU must have dotprod.
#[inline(always)]
unsafe fn sdot32(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int32x4_t {
    // SAFETY: the caller guarantees dotprod.
    unsafe { SDot::dot(SDot::dot(vdupq_n_s32(0), w.0, a.0), w.1, a.1) }
}

/// The dot product of one weight row with one activation row in the i8mm order (module docs):
/// the level's `VecDotFn` body, and the bits every tile path must reproduce.
///
/// # Safety
/// The CPU must have NEON and dotprod; `n` is a multiple of 32 (shorter slices end the sum).
#[inline(always)]
pub(super) unsafe fn row<K: LegacyCodes>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (mut chain, mut offs) = (0.0f32, 0.0f32);
    let blocks = w.chunks_exact(K::W_BYTES).zip(act.chunks_exact(K::A_BYTES));
    for (wb, ab) in blocks.take(n / QK) {
        // SAFETY: the caller guarantees NEON and dotprod; the loads are checked.
        let isum = unsafe { vaddvq_s32(sdot32(K::codes(wb), act_codes::<K>(ab))) };
        // Exact in f32: |isum| <= 32 * 128 * 128 = 2^19.
        chain += isum as f32 * (K::scale(wb) * f16_at(ab, 0));
        if K::HAS_MIN {
            offs += K::min(wb) * f16_at(ab, 2);
        }
    }
    if K::HAS_MIN {
        chain + offs
    } else {
        chain
    }
}

/// A weight type as [`tile`] takes it: its SMMLA kernel for pairs of weight rows against pairs
/// of activation rows, and its path for one activation row. Both must give every (weight row,
/// activation row) pair the bits of the level's row kernel for the type.
pub(super) trait PairTiles {
    /// Values per block.
    const VALUES: usize;
    /// Bytes per weight block.
    const W_BYTES: usize;
    /// Bytes per activation block.
    const A_BYTES: usize;

    /// `WP` pairs of weight rows against `AP` pairs of activation rows over `blocks` blocks:
    /// `out[p][q]` is `[w_p0 . a_q0, w_p0 . a_q1, w_p1 . a_q0, w_p1 . a_q1]` (`w[p] = [w_p0,
    /// w_p1]`, `a[q] = [a_q0, a_q1]`).
    ///
    /// # Safety
    /// The CPU must have NEON, dotprod and i8mm; every row holds `blocks` blocks.
    unsafe fn pairs<const WP: usize, const AP: usize>(
        blocks: usize,
        w: [[&[u8]; 2]; WP],
        a: [[&[u8]; 2]; AP],
    ) -> [[float32x4_t; AP]; WP];

    /// Four weight rows against one activation row: lane `i` for `w[i]`.
    ///
    /// # Safety
    /// The CPU must have NEON and dotprod; every row holds `blocks` blocks.
    unsafe fn rows4(blocks: usize, w: [&[u8]; 4], act: &[u8]) -> float32x4_t;
}

/// The legacy types, in the order of the module docs.
impl<K: LegacyCodes> PairTiles for K {
    const VALUES: usize = QK;
    const W_BYTES: usize = K::W_BYTES;
    const A_BYTES: usize = K::A_BYTES;

    #[inline(always)]
    unsafe fn pairs<const WP: usize, const AP: usize>(
        blocks: usize,
        w: [[&[u8]; 2]; WP],
        a: [[&[u8]; 2]; AP],
    ) -> [[float32x4_t; AP]; WP] {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { legacy_pairs::<K, WP, AP>(blocks, w, a) }
    }

    #[inline(always)]
    unsafe fn rows4(blocks: usize, w: [&[u8]; 4], act: &[u8]) -> float32x4_t {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { legacy_rows4::<K>(blocks, w, act) }
    }
}

/// Four weight rows against one activation row: lane `i` is [`row`]`(w[i], act)`, bit for bit.
///
/// # Safety
/// The CPU must have NEON and dotprod; every row holds `blocks` blocks.
#[inline(always)]
unsafe fn legacy_rows4<K: LegacyCodes>(blocks: usize, w: [&[u8]; 4], act: &[u8]) -> float32x4_t {
    // SAFETY: register-only NEON and SDOT (the caller guarantees dotprod) on checked loads;
    // the arrays are 4 floats long.
    unsafe {
        let mut chain = vdupq_n_f32(0.0);
        let mut offs = vdupq_n_f32(0.0);
        for b in 0..blocks {
            let ab = block(act, b, K::A_BYTES);
            let a = act_codes::<K>(ab);
            let wb = [
                block(w[0], b, K::W_BYTES),
                block(w[1], b, K::W_BYTES),
                block(w[2], b, K::W_BYTES),
                block(w[3], b, K::W_BYTES),
            ];
            let s0 = sdot32(K::codes(wb[0]), a);
            let s1 = sdot32(K::codes(wb[1]), a);
            let s2 = sdot32(K::codes(wb[2]), a);
            let s3 = sdot32(K::codes(wb[3]), a);
            // Two rounds of pairwise adds: [sum s0, sum s1, sum s2, sum s3], the rows' isums.
            let isum = vpaddq_s32(vpaddq_s32(s0, s1), vpaddq_s32(s2, s3));
            let d_w = [
                K::scale(wb[0]),
                K::scale(wb[1]),
                K::scale(wb[2]),
                K::scale(wb[3]),
            ];
            // Lane i: d_w[i] * d_a, the scalar product of `row`.
            let scale = vmulq_n_f32(vld1q_f32(d_w.as_ptr()), f16_at(ab, 0));
            chain = vaddq_f32(chain, vmulq_f32(vcvtq_f32_s32(isum), scale));
            if K::HAS_MIN {
                let m_w = [K::min(wb[0]), K::min(wb[1]), K::min(wb[2]), K::min(wb[3])];
                offs = vaddq_f32(offs, vmulq_n_f32(vld1q_f32(m_w.as_ptr()), f16_at(ab, 2)));
            }
        }
        if K::HAS_MIN {
            vaddq_f32(chain, offs)
        } else {
            chain
        }
    }
}

/// Two rows' 32 codes as the four SMMLA operands: operand `k` holds values `8k..8k + 8` of
/// `r0` in bytes 0..8 and those of `r1` in bytes 8..16.
#[inline(always)]
pub(super) fn interleave(r0: (int8x16_t, int8x16_t), r1: (int8x16_t, int8x16_t)) -> [int8x16_t; 4] {
    let [o0, o1] = interleave16(r0.0, r1.0);
    let [o2, o3] = interleave16(r0.1, r1.1);
    [o0, o1, o2, o3]
}

/// Two rows' 16 values as two SMMLA operands: operand `k` holds values `8k..8k + 8` of `x` in
/// bytes 0..8 and those of `y` in bytes 8..16.
#[inline(always)]
pub(super) fn interleave16(x: int8x16_t, y: int8x16_t) -> [int8x16_t; 2] {
    // SAFETY: register-only NEON (baseline on aarch64).
    unsafe {
        let (x, y) = (vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y));
        [
            vreinterpretq_s8_s64(vzip1q_s64(x, y)),
            vreinterpretq_s8_s64(vzip2q_s64(x, y)),
        ]
    }
}

/// The exact block sums of two weight rows against two activation rows (operands from
/// [`interleave`]): lanes `[w0 . a0, w0 . a1, w1 . a0, w1 . a1]`.
///
/// # Safety
/// The CPU must have i8mm.
#[inline(always)]
pub(super) unsafe fn isums_2x2(w: &[int8x16_t; 4], a: &[int8x16_t; 4]) -> int32x4_t {
    // SAFETY: the caller guarantees i8mm; register-only.
    unsafe {
        let acc = smmla(vdupq_n_s32(0), w[0], a[0]);
        let acc = smmla(acc, w[1], a[1]);
        let acc = smmla(acc, w[2], a[2]);
        smmla(acc, w[3], a[3])
    }
}

/// `[x, y, x, y]`: an activation pair's value in the 2x2 lanes (lane `2i + j` takes `j`'s).
#[inline(always)]
pub(super) fn alternate(x: f32, y: f32) -> float32x4_t {
    // SAFETY: register-only NEON.
    unsafe {
        let v = vset_lane_f32::<1>(y, vdup_n_f32(x));
        vcombine_f32(v, v)
    }
}

/// `[x, x, y, y]`: a weight pair's value in the 2x2 lanes (lane `2i + j` takes `i`'s).
#[inline(always)]
pub(super) fn halves(x: f32, y: f32) -> float32x4_t {
    // SAFETY: register-only NEON.
    unsafe { vcombine_f32(vdup_n_f32(x), vdup_n_f32(y)) }
}

/// [`PairTiles::pairs`] for a legacy type: every lane [`row`] of its pair, bit for bit.
///
/// # Safety
/// The CPU must have NEON and i8mm; every row holds `blocks` blocks.
#[inline(always)]
unsafe fn legacy_pairs<K: LegacyCodes, const WP: usize, const AP: usize>(
    blocks: usize,
    w: [[&[u8]; 2]; WP],
    a: [[&[u8]; 2]; AP],
) -> [[float32x4_t; AP]; WP] {
    // SAFETY: register-only NEON and SMMLA (the caller guarantees i8mm) on checked loads.
    unsafe {
        let zero = vdupq_n_f32(0.0);
        let mut chain = [[zero; AP]; WP];
        let mut offs = [[zero; AP]; WP];
        for b in 0..blocks {
            // The activation pairs' operands and scales, shared by every weight pair.
            let mut a_ops = [[vdupq_n_s8(0); 4]; AP];
            let mut a_d = [zero; AP];
            let mut a_s = [zero; AP];
            for (q, [a0, a1]) in a.iter().enumerate() {
                let (a0, a1) = (block(a0, b, K::A_BYTES), block(a1, b, K::A_BYTES));
                a_ops[q] = interleave(act_codes::<K>(a0), act_codes::<K>(a1));
                a_d[q] = alternate(f16_at(a0, 0), f16_at(a1, 0));
                if K::HAS_MIN {
                    a_s[q] = alternate(f16_at(a0, 2), f16_at(a1, 2));
                }
            }
            for (p, [w0, w1]) in w.iter().enumerate() {
                let (w0, w1) = (block(w0, b, K::W_BYTES), block(w1, b, K::W_BYTES));
                let w_ops = interleave(K::codes(w0), K::codes(w1));
                let w_d = halves(K::scale(w0), K::scale(w1));
                let w_m = if K::HAS_MIN {
                    halves(K::min(w0), K::min(w1))
                } else {
                    zero
                };
                for q in 0..AP {
                    let isum = isums_2x2(&w_ops, &a_ops[q]);
                    // Lane 2i + j: d_wi * d_aj, the scalar product of `row`.
                    let scale = vmulq_f32(w_d, a_d[q]);
                    let term = vmulq_f32(vcvtq_f32_s32(isum), scale);
                    chain[p][q] = vaddq_f32(chain[p][q], term);
                    if K::HAS_MIN {
                        offs[p][q] = vaddq_f32(offs[p][q], vmulq_f32(w_m, a_s[q]));
                    }
                }
            }
        }
        if K::HAS_MIN {
            for (c, o) in chain.iter_mut().flatten().zip(offs.iter().flatten()) {
                *c = vaddq_f32(*c, *o);
            }
        }
        chain
    }
}

/// A tile's operands, cut to whole rows, and its output.
struct Tile<'a, 'o> {
    /// The operands.
    t: TileArgs<'a>,
    /// Blocks per row.
    blocks: usize,
    /// Bytes of a weight row's blocks.
    w_row: usize,
    /// Bytes of an activation row's blocks.
    a_row: usize,
    /// `out[a * stride + r]` receives (weight row `r`, activation row `a`).
    out: &'o mut [f32],
    /// Floats between the outputs of consecutive activation rows.
    stride: usize,
}

impl<'a> Tile<'a, '_> {
    /// Rows `idx` of `data` (`stride` bytes apart, `len` long), or `None` if one falls outside
    /// it (never for a tile the dispatcher has checked; then nothing is computed for them).
    fn rows<const N: usize>(
        data: &'a [u8],
        stride: usize,
        len: usize,
        idx: [usize; N],
    ) -> Option<[&'a [u8]; N]> {
        let mut rows: [&[u8]; N] = [&[]; N];
        for (row, i) in rows.iter_mut().zip(idx) {
            *row = data.get(i.checked_mul(stride)?..)?.get(..len)?;
        }
        Some(rows)
    }

    /// Weight rows `idx`.
    fn weights<const N: usize>(&self, idx: [usize; N]) -> Option<[&'a [u8]; N]> {
        Self::rows(self.t.w, self.t.w_stride, self.w_row, idx)
    }

    /// Activation rows `idx`.
    fn acts<const N: usize>(&self, idx: [usize; N]) -> Option<[&'a [u8]; N]> {
        Self::rows(self.t.act, self.t.act_stride, self.a_row, idx)
    }

    /// Writes the output of (weight row `r`, activation row `a`).
    fn put(&mut self, a: usize, r: usize, v: f32) {
        if let Some(o) = self.out.get_mut(a * self.stride + r) {
            *o = v;
        }
    }
}

/// The four lanes of `v`.
#[inline(always)]
fn lanes(v: float32x4_t) -> [f32; 4] {
    let mut l = [0.0f32; 4];
    // SAFETY: `l` holds the 4 floats the store writes; NEON is baseline on aarch64.
    unsafe { vst1q_f32(l.as_mut_ptr(), v) };
    l
}

/// Weight rows `r..r + 2 * WP` (the tile's last row repeated past its end) against the
/// activation pairs `a` (activation rows `ai`), written to the tile's output.
///
/// # Safety
/// The CPU must have NEON and i8mm; `r < tile.t.rows`.
#[inline(always)]
unsafe fn row_group<K: PairTiles, const WP: usize, const AP: usize>(
    tile: &mut Tile<'_, '_>,
    r: usize,
    ai: [[usize; 2]; AP],
    a: [[&[u8]; 2]; AP],
) {
    let last = tile.t.rows - 1;
    let ri: [[usize; 2]; WP] =
        core::array::from_fn(|p| [(r + 2 * p).min(last), (r + 2 * p + 1).min(last)]);
    let mut w: [[&[u8]; 2]; WP] = [[&[]; 2]; WP];
    for (w, ri) in w.iter_mut().zip(ri) {
        let Some(rows) = tile.weights(ri) else {
            return;
        };
        *w = rows;
    }
    // SAFETY: the caller guarantees NEON and i8mm; every row holds `tile.blocks` blocks.
    let sums = unsafe { K::pairs::<WP, AP>(tile.blocks, w, a) };
    for (sums, [r0, r1]) in sums.iter().zip(ri) {
        for (&v, [a0, a1]) in sums.iter().zip(ai) {
            let l = lanes(v);
            // A repeated row or activation writes its output again, with the same bits.
            tile.put(a0, r0, l[0]);
            tile.put(a1, r0, l[1]);
            tile.put(a0, r1, l[2]);
            tile.put(a1, r1, l[3]);
        }
    }
}

/// Activation rows `a0..a0 + 2 * AP` (the tile's last activation row repeated past its end)
/// against every weight row of the tile: 4 rows at a time, then 2 (a last odd row repeated).
///
/// # Safety
/// The CPU must have NEON and i8mm; `a0 < tile.t.acts`.
#[inline(always)]
unsafe fn act_group<K: PairTiles, const AP: usize>(tile: &mut Tile<'_, '_>, a0: usize) {
    let last = tile.t.acts - 1;
    let ai: [[usize; 2]; AP] =
        core::array::from_fn(|q| [(a0 + 2 * q).min(last), (a0 + 2 * q + 1).min(last)]);
    let mut a: [[&[u8]; 2]; AP] = [[&[]; 2]; AP];
    for (a, ai) in a.iter_mut().zip(ai) {
        let Some(rows) = tile.acts(ai) else {
            return;
        };
        *a = rows;
    }
    let mut r = 0;
    while r < tile.t.rows {
        // SAFETY: the caller guarantees NEON and i8mm; `r < rows`.
        unsafe {
            if tile.t.rows - r > 2 {
                row_group::<K, 2, AP>(tile, r, ai, a);
                r += 4;
            } else {
                row_group::<K, 1, AP>(tile, r, ai, a);
                r += 2;
            }
        }
    }
}

/// Activation row `a0` against every weight row of the tile, 4 rows per pass with SDOT (the
/// tile's last row repeated past its end).
///
/// # Safety
/// The CPU must have NEON and dotprod.
#[inline(always)]
unsafe fn one_act<K: PairTiles>(tile: &mut Tile<'_, '_>, a0: usize) {
    let Some([act]) = tile.acts([a0]) else {
        return;
    };
    let mut r = 0;
    while r < tile.t.rows {
        let last = tile.t.rows - 1;
        let ri: [usize; 4] = core::array::from_fn(|i| (r + i).min(last));
        if let Some(w) = tile.weights(ri) {
            // SAFETY: the caller guarantees NEON and dotprod; every row holds `blocks` blocks.
            let l = lanes(unsafe { K::rows4(tile.blocks, w, act) });
            for (&r, v) in ri.iter().zip(l) {
                tile.put(a0, r, v);
            }
        }
        r += 4;
    }
}

/// The i8mm level's tile (`TileFn` contract): `out[a * stride + r]` = the level's row kernel for
/// (weight row r, activation row a), bit for bit, through the paths of the module docs.
///
/// # Safety
/// The CPU must have NEON, dotprod and i8mm; the tile satisfies `TileFn`'s invariants (rows or
/// outputs outside the slices are skipped rather than read or written).
#[inline(always)]
pub(super) unsafe fn tile<K: PairTiles>(t: &TileArgs<'_>, out: &mut [f32], stride: usize) {
    let blocks = t.n / K::VALUES;
    let mut tile = Tile {
        t: *t,
        blocks,
        w_row: blocks * K::W_BYTES,
        a_row: blocks * K::A_BYTES,
        out,
        stride,
    };
    let mut a = 0;
    while a < t.acts {
        // SAFETY: the caller guarantees the features; `a < acts`.
        a += unsafe {
            match t.acts - a {
                1 => {
                    one_act::<K>(&mut tile, a);
                    1
                }
                2 => {
                    act_group::<K, 1>(&mut tile, a);
                    2
                }
                // Three left: the second pair repeats the last activation row.
                _ => {
                    act_group::<K, 2>(&mut tile, a);
                    4
                }
            }
        };
    }
}
