//! SMMLA tiles for Q4_K and Q6_K at the i8mm level, bit for bit the dotprod level's kernels,
//! which the i8mm level takes as its row kernels for these types.
//!
//! The dotprod step (`k_quants`) forms each super-block's integer sums exactly (Q4_K:
//! `scaled = sum_j scale_j * dot_j` and `offsets = sum_j min_j * bsum_j`; Q6_K:
//! `scaled = sum_j scale_j * dot_j - 32 * sum_j scale_j * bsum_j`, `offsets = 0`) and only then
//! goes to f32, in a scalar per pair: `s = (s + d * f32(scaled)) - dmin * f32(offsets)`, the
//! result `0 + s` (`Acc::total`, whose lanes these steps leave at zero). Here SMMLA forms the same
//! integers for 2x2 (weight row, activation row) pairs (every sub-block's sum is exact however
//! its products are grouped, and no partial sum comes near 2^31), and each lane does exactly those
//! f32 operations. A single activation row takes the dotprod tile's steps.

use core::arch::aarch64::*;

use super::block::{Acc, BlockDot};
use super::dot::{smmla, SDot};
use super::i8mm::{alternate, block, halves, interleave, interleave16, isums_2x2, PairTiles};
use super::k_quants::{
    min_terms, q6_k_groups, q6_k_offsets, scales_and_mins, Q4K, Q6K, Q8_K_BYTES, Q8_K_QS, QK_K,
};
use super::load::{f16_at, f32_at, i8x16, nibbles, u8x16};

/// The dotprod level's steps of type `K` over four weight rows against one activation row: lane
/// `i` is the dotprod row kernel of `(w[i], act)`, bit for bit (the same steps in the same order).
///
/// # Safety
/// The CPU must have NEON and dotprod; every row holds `blocks` blocks.
#[inline(always)]
unsafe fn dotprod_rows4<K: BlockDot>(blocks: usize, w: [&[u8]; 4], act: &[u8]) -> float32x4_t {
    let mut acc = [Acc::zero(); 4];
    for b in 0..blocks {
        let ab = block(act, b, K::A_BYTES);
        for (acc, w) in acc.iter_mut().zip(w) {
            // SAFETY: the caller guarantees dotprod; the blocks have their exact sizes.
            *acc = unsafe { K::step::<SDot>(*acc, block(w, b, K::W_BYTES), ab) };
        }
    }
    let totals = acc.map(Acc::total);
    // SAFETY: `totals` holds the 4 floats the load reads.
    unsafe { vld1q_f32(totals.as_ptr()) }
}

/// `[x, x, y, y]`: a weight pair's integer in the 2x2 lanes (lane `2i + j` takes `i`'s).
#[inline(always)]
fn halves_i32(x: i32, y: i32) -> int32x4_t {
    // SAFETY: register-only NEON.
    unsafe { vcombine_s32(vdup_n_s32(x), vdup_n_s32(y)) }
}

/// The 2x2 lanes of `k_quants::add_super_block`: `(s + d * f32(scaled)) - dmin * f32(offsets)`,
/// each operation rounded on its own as the scalar expression is.
#[inline(always)]
fn add_super_blocks(
    s: float32x4_t,
    d: float32x4_t,
    scaled: int32x4_t,
    dmin: float32x4_t,
    offsets: int32x4_t,
) -> float32x4_t {
    // SAFETY: register-only NEON.
    unsafe {
        let s = vaddq_f32(s, vmulq_f32(d, vcvtq_f32_s32(scaled)));
        vsubq_f32(s, vmulq_f32(dmin, vcvtq_f32_s32(offsets)))
    }
}

/// `Acc::total` of an accumulator whose lanes are zero and whose scalar is `s`: `0 + s`.
#[inline(always)]
fn totals<const WP: usize, const AP: usize>(s: [[float32x4_t; AP]; WP]) -> [[float32x4_t; AP]; WP] {
    // SAFETY: register-only NEON.
    s.map(|s| s.map(|s| unsafe { vaddq_f32(vdupq_n_f32(0.0), s) }))
}

/// The blocks `b` of pairs of rows `rows` (`size` bytes each).
#[inline(always)]
fn blocks_of<const N: usize>(rows: [[&[u8]; 2]; N], b: usize, size: usize) -> [[&[u8]; 2]; N] {
    rows.map(|[x, y]| [block(x, b, size), block(y, b, size)])
}

impl PairTiles for Q4K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = <Q4K as BlockDot>::W_BYTES;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn pairs<const WP: usize, const AP: usize>(
        blocks: usize,
        w: [[&[u8]; 2]; WP],
        a: [[&[u8]; 2]; AP],
    ) -> [[float32x4_t; AP]; WP] {
        // SAFETY: register-only NEON and SMMLA (the caller guarantees i8mm) on checked loads;
        // `offsets` holds the 4 integers its load reads.
        unsafe {
            let zero = vdupq_n_f32(0.0);
            let mut acc = [[zero; AP]; WP];
            for b in 0..blocks {
                let ab = blocks_of(a, b, Q8_K_BYTES);
                let wb = blocks_of(w, b, <Self as BlockDot>::W_BYTES);
                let sm = wb.map(|[x, y]| [scales_and_mins(&x[4..16]), scales_and_mins(&y[4..16])]);
                let mut isum = [[vdupq_n_s32(0); AP]; WP];
                for k in 0..4 {
                    // Sub-blocks 2k (quants off..off + 32) and 2k + 1 (off + 32..off + 64).
                    let off = Q8_K_QS + 64 * k;
                    let act = |x: &[u8], at: usize| (i8x16(x, at), i8x16(x, at + 16));
                    let a_ops = ab.map(|[x, y]| {
                        [
                            interleave(act(x, off), act(y, off)),
                            interleave(act(x, off + 32), act(y, off + 32)),
                        ]
                    });
                    for ((isum, [x, y]), [(sx, _), (sy, _)]) in isum.iter_mut().zip(wb).zip(sm) {
                        // 32 bytes hold sub-block 2k in their low nibbles and 2k+1 in their
                        // high ones.
                        let (x0, x1) = (
                            nibbles(u8x16(x, 16 + 32 * k)),
                            nibbles(u8x16(x, 32 + 32 * k)),
                        );
                        let (y0, y1) = (
                            nibbles(u8x16(y, 16 + 32 * k)),
                            nibbles(u8x16(y, 32 + 32 * k)),
                        );
                        let lo = interleave((x0.0, x1.0), (y0.0, y1.0));
                        let hi = interleave((x0.1, x1.1), (y0.1, y1.1));
                        let sc_lo = halves_i32(sx[2 * k].into(), sy[2 * k].into());
                        let sc_hi = halves_i32(sx[2 * k + 1].into(), sy[2 * k + 1].into());
                        for (isum, a_ops) in isum.iter_mut().zip(&a_ops) {
                            *isum = vmlaq_s32(*isum, isums_2x2(&lo, &a_ops[0]), sc_lo);
                            *isum = vmlaq_s32(*isum, isums_2x2(&hi, &a_ops[1]), sc_hi);
                        }
                    }
                }
                for (p, [x, y]) in wb.into_iter().enumerate() {
                    let [(_, mx), (_, my)] = sm[p];
                    for (q, [u, v]) in ab.into_iter().enumerate() {
                        let offsets = [
                            min_terms(&mx, u),
                            min_terms(&mx, v),
                            min_terms(&my, u),
                            min_terms(&my, v),
                        ];
                        let da = alternate(f32_at(u, 0), f32_at(v, 0));
                        let d = vmulq_f32(halves(f16_at(x, 0), f16_at(y, 0)), da);
                        let dmin = vmulq_f32(halves(f16_at(x, 2), f16_at(y, 2)), da);
                        let offsets = vld1q_s32(offsets.as_ptr());
                        acc[p][q] = add_super_blocks(acc[p][q], d, isum[p][q], dmin, offsets);
                    }
                }
            }
            totals(acc)
        }
    }

    #[inline(always)]
    unsafe fn rows4(blocks: usize, w: [&[u8]; 4], act: &[u8]) -> float32x4_t {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { dotprod_rows4::<Q4K>(blocks, w, act) }
    }
}

impl PairTiles for Q6K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = <Q6K as BlockDot>::W_BYTES;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn pairs<const WP: usize, const AP: usize>(
        blocks: usize,
        w: [[&[u8]; 2]; WP],
        a: [[&[u8]; 2]; AP],
    ) -> [[float32x4_t; AP]; WP] {
        // SAFETY: register-only NEON and SMMLA (the caller guarantees i8mm) on checked loads;
        // `offsets` holds the 4 integers its load reads.
        unsafe {
            let zero = vdupq_n_f32(0.0);
            let mut acc = [[zero; AP]; WP];
            for b in 0..blocks {
                let ab = blocks_of(a, b, Q8_K_BYTES);
                let wb = blocks_of(w, b, <Self as BlockDot>::W_BYTES);
                for (p, [x, y]) in wb.into_iter().enumerate() {
                    // One weight pair at a time: its 2 x 8 decoded groups per half are
                    // already 16 registers.
                    let mut isum = [vdupq_n_s32(0); AP];
                    for half in 0..2 {
                        let (gx, gy) = (q6_k_groups(x, half), q6_k_groups(y, half));
                        for g in 0..8 {
                            let w_ops = interleave16(gx[g], gy[g]);
                            // The signed scale of group g (bytes 192..208 of the block).
                            let s = 192 + 8 * half + g;
                            let sc = halves_i32((x[s] as i8).into(), (y[s] as i8).into());
                            let at = Q8_K_QS + 128 * half + 16 * g;
                            for (isum, [u, v]) in isum.iter_mut().zip(ab) {
                                let a_ops = interleave16(i8x16(u, at), i8x16(v, at));
                                let dot = smmla(vdupq_n_s32(0), w_ops[0], a_ops[0]);
                                let dot = smmla(dot, w_ops[1], a_ops[1]);
                                *isum = vmlaq_s32(*isum, dot, sc);
                            }
                        }
                    }
                    for (q, [u, v]) in ab.into_iter().enumerate() {
                        let offsets = [
                            q6_k_offsets(x, u),
                            q6_k_offsets(x, v),
                            q6_k_offsets(y, u),
                            q6_k_offsets(y, v),
                        ];
                        // The stored values are q - 32 (exact in i32, as in the dotprod step).
                        let scaled =
                            vsubq_s32(isum[q], vmulq_n_s32(vld1q_s32(offsets.as_ptr()), 32));
                        let da = alternate(f32_at(u, 0), f32_at(v, 0));
                        let d = vmulq_f32(halves(f16_at(x, 208), f16_at(y, 208)), da);
                        // No min term: dmin 0 and offsets 0, as the dotprod step passes them.
                        acc[p][q] = add_super_blocks(acc[p][q], d, scaled, zero, vdupq_n_s32(0));
                    }
                }
            }
            totals(acc)
        }
    }

    #[inline(always)]
    unsafe fn rows4(blocks: usize, w: [&[u8]; 4], act: &[u8]) -> float32x4_t {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { dotprod_rows4::<Q6K>(blocks, w, act) }
    }
}
