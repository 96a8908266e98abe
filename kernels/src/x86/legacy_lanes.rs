//! Q4_1, Q5_0, Q5_1 and Q8_0 in ggml's own summation order, which is what llama.cpp's x86 CPU
//! backend computes for these types (`ggml_vec_dot_q4_1_q8_1` etc. for one token; for a batch,
//! plain `vec_dot` for Q4_1 and Q5_1 and llamafile's tinyBLAS for Q5_0/Q8_0, which sums in the
//! same order).
//!
//! # The summation order
//!
//! Every (weight row, activation row) pair owns an 8-lane f32 accumulator. Per block, lane `i`
//! holds the exact integer sum of the products `4i..4i+4` (what `maddubs` + `madd(1)` gives);
//! it is converted to f32 and fused-multiply-added with the scale product `dw * da` (rounded to
//! f32 first): `acc_i = fma(f32(s_i), dw * da, acc_i)`. At the end the lanes are summed as
//! `hsum_float_8` does ((high half + low half), then pairs), and for Q4_1 and Q5_1 the
//! separately accumulated `summs = summs + mw * sa` (scalar, block by block) is added last.
//!
//! Keeping these bits matters more than it seems: a 30-layer model turns a one-ulp difference
//! in an early dot product into logit differences of order 0.5 (see the fixtures README), so
//! matching llama.cpp closely needs its order, not only its math. Q4_0 is not here: llama.cpp
//! repacks Q4_0 weights on AVX2 and sums them one f32 lane per row, which is the order of
//! [`super::legacy`].
//!
//! `vec_dot` and every position of a tile run the same operations in the same order, so they
//! agree bit for bit and the GEMM result does not depend on the thread count.

use super::legacy::Legacy;
use crate::kernel_set::TileArgs;

macro_rules! lanes_tiles {
    ($level:ident, $features:literal, $vnni:ident) => {
        /// The kernels of one instruction-set level (see the module docs).
        pub(super) mod $level {
            use core::arch::x86_64::*;

            use crate::kernel_set::TileArgs;
            use crate::x86::legacy::{block_partials, offset_pairs, Legacy};
            use crate::x86::legacy_tile::$level::{level_codes, vnni_seed};
            use crate::x86::simd::{
                f16_at, f16_splat, hsum_ps, load256, prefetch_ahead, $vnni as Dot, Vnni,
            };

            /// One weight block as the microkernel consumes it: the codes (unsigned for
            /// `vpdpbusd` on a VNNI level: `level_codes`), `d` in every lane, and `m` (0 without
            /// a minimum).
            type WeightBlock = (__m256i, __m256, f32);

            /// `MR` weight rows x `NR` activation rows over `nb` blocks; writes
            /// `out[j * out_stride + i]`. `weight(i, b)` gives block `b` of weight row `i` (read
            /// from the file, or from [`gemm`]'s unpacked copy: the same values, so the same bits).
            ///
            /// # Safety
            /// AVX2+FMA+F16C present, and `Dot`'s instruction set; `weight(i, b)` is valid for
            /// `i < MR`, `b < nb`; row `j < NR` of activations holds `nb` blocks at
            /// `a + j * a_stride`; the `MR x NR` outputs at `out + j * out_stride + i` are
            /// writable.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn micro<L: Legacy, const MR: usize, const NR: usize>(
                nb: usize,
                weight: impl Fn(usize, usize) -> WeightBlock,
                a: *const u8,
                a_stride: usize,
                out: *mut f32,
                out_stride: usize,
            ) {
                const { assert!(NR <= 4) };
                let mut acc = [[_mm256_setzero_ps(); NR]; MR];
                // Row i's `summs` of activation row j in lane j: each lane rounds `mw * sa` and the
                // sum as the scalar chain would, and four lanes take one register, not four.
                let mut summs = [_mm_setzero_ps(); MR];
                for b in 0..nb {
                    let blocks: [WeightBlock; MR] = core::array::from_fn(|i| weight(i, b));
                    let mut sa4 = [0f32; 4];
                    for (j, sa4) in sa4.iter_mut().enumerate().take(NR) {
                        if L::HAS_MIN {
                            // SAFETY: block b of activation row j is in bounds (function contract);
                            // Q8_1's s lies at bytes 2..4.
                            *sa4 = unsafe { f16_at(a.add(j * a_stride + b * L::A_BYTES + 2)) };
                        }
                    }
                    if L::HAS_MIN {
                        let sa = _mm_loadu_ps(sa4.as_ptr());
                        for (s, &(_, _, mw)) in summs.iter_mut().zip(&blocks) {
                            *s = _mm_add_ps(*s, _mm_mul_ps(_mm_set1_ps(mw), sa));
                        }
                    }
                    for j in 0..NR {
                        // SAFETY: block b of activation row j is in bounds (function contract); d
                        // at 0..2 and the 32 quants at A_QS.. lie inside the block.
                        let (av, da) = unsafe {
                            let q = a.add(j * a_stride + b * L::A_BYTES);
                            (load256(q.add(L::A_QS)), f16_splat(q))
                        };
                        // With VNNI, every block takes one `vpdpbusd` on unsigned codes (signed
                        // ones as the bytes `w + 128`, `level_codes`), seeded with minus the
                        // products of their zero point, formed once per activation block for
                        // all rows (`vnni_seed`): the exact i32 lanes of `maddubs` + `madd`,
                        // one operation per pair.
                        let seed = if Dot::PRESENT {
                            // SAFETY: `Dot`'s instructions are present (function contract).
                            unsafe { vnni_seed::<L>(av) }
                        } else {
                            _mm256_setzero_si256()
                        };
                        let off = if Dot::PRESENT {
                            _mm256_setzero_si256()
                        } else {
                            offset_pairs::<L>(av)
                        };
                        for (i, &(codes, dw, _)) in blocks.iter().enumerate() {
                            let partials = if Dot::PRESENT {
                                // SAFETY: as above.
                                unsafe { Dot::dpbusd(seed, codes, av) }
                            } else {
                                block_partials::<L>(codes, av, off)
                            };
                            let lanes = _mm256_cvtepi32_ps(partials);
                            acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), lanes, acc[i][j]);
                        }
                    }
                }
                for i in 0..MR {
                    let mut mins = [0f32; 4];
                    _mm_storeu_ps(mins.as_mut_ptr(), summs[i]);
                    for j in 0..NR {
                        // SAFETY: output (i, j) is writable (function contract).
                        unsafe { *out.add(j * out_stride + i) = hsum_ps(acc[i][j]) + mins[j] };
                    }
                }
            }

            /// Block `b` of the weight row at `row`, straight from the file's bytes.
            ///
            /// # Safety
            /// AVX2+FMA+F16C present; block `b` of the row is readable.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn file_block<L: Legacy>(row: *const u8, b: usize) -> WeightBlock {
                // SAFETY: forwarded contract; d sits at bytes 0..2 of every block of the family, m
                // (when present) at 2..4.
                unsafe {
                    let p = row.add(b * L::W_BYTES);
                    let m = if L::HAS_MIN { L::m(p) } else { 0.0 };
                    let d = if L::E8M0 {
                        _mm256_set1_ps(L::d(p))
                    } else {
                        f16_splat(p)
                    };
                    (level_codes::<L>(L::codes(p)), d, m)
                }
            }

            /// The whole tile: a matvec streams the rows (one sequential read of the weights, four
            /// rows per pass for unsigned codes); a GEMM unpacks the tile's weight rows once (codes
            /// and f32 scales, into a per-thread buffer) and runs 4x4 register blocks over them
            /// (measured best of 2x4 to 8x4 on SmolLM2 and Gemma 3 prefill), with 1-wide
            /// remainders.
            ///
            /// # Safety
            /// As [`crate::kernel_set::TileFn`] for a weight type of family `L`.
            #[target_feature(enable = $features)]
            pub(in crate::x86) unsafe fn tile<L: Legacy>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                let nb = t.n / 32;
                let (w, a, o) = (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr());
                let (ws, as_) = (t.w_stride, t.act_stride);
                if t.acts > 1 {
                    // SAFETY: forwarded contract.
                    unsafe { gemm::<L>(t, out, out_stride) };
                    return;
                }
                // MATVEC_ROWS rows at a time: their accumulator chains interleave (one row's
                // chain of dependent fmas bounds the loop by the fma latency), and each
                // activation block is read once for all of them. The rows are one contiguous
                // stretch read as several streams, which the hardware prefetchers do not follow
                // (a third of the speed), so a later stretch is prefetched linearly (into L2, at
                // least `prefetch_ahead`'s distance on, as in `legacy_tile`), a share per block.
                // (Q8_0 went one row at a time while the prefetch was into L1 and one stretch
                // ahead: four rows were no faster then, and are 10-40% faster now.)
                let mut r = 0;
                while r < t.rows {
                    let mr = if t.rows - r >= MATVEC_ROWS {
                        MATVEC_ROWS
                    } else {
                        1
                    };
                    let lines_per_block = (mr * ws).div_ceil(64 * nb.max(1));
                    let next = w.wrapping_add(r * ws + prefetch_ahead(mr * ws));
                    // SAFETY: rows r..r+mr and activation row 0 are inside the tile (TileFn
                    // contract); so are outputs r..r+mr.
                    unsafe {
                        let row = w.add(r * ws);
                        let block = |i: usize, b: usize| {
                            if i == 0 {
                                for l in 0..lines_per_block {
                                    let p = next.wrapping_add(64 * (b * lines_per_block + l));
                                    // A hint: it never faults, whatever the address.
                                    _mm_prefetch::<_MM_HINT_T1>(p.cast());
                                }
                            }
                            file_block::<L>(row.add(i * ws), b)
                        };
                        if mr == MATVEC_ROWS {
                            micro::<L, MATVEC_ROWS, 1>(nb, block, a, as_, o.add(r), out_stride)
                        } else {
                            micro::<L, 1, 1>(nb, block, a, as_, o.add(r), out_stride)
                        }
                    };
                    r += mr;
                }
            }

            /// Weight rows per pass of the matvec.
            const MATVEC_ROWS: usize = 4;

            /// The GEMM part of [`tile`] (two or more activation rows).
            ///
            /// # Safety
            /// As [`tile`].
            #[target_feature(enable = $features)]
            unsafe fn gemm<L: Legacy>(t: &TileArgs<'_>, out: &mut [f32], out_stride: usize) {
                const MR: usize = 4;
                const NR: usize = 4;
                let nb = t.n / 32;
                let (w, a, o) = (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr());
                let (ws, as_) = (t.w_stride, t.act_stride);
                // Per-thread unpacked rows, reused across calls (a fresh allocation page-faults).
                thread_local! {
                    static PACK: core::cell::RefCell<(Vec<__m256i>, Vec<f32>, Vec<f32>)> =
                        const { core::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
                }
                PACK.with(|cell| {
                    let mut pack = cell.borrow_mut();
                    let (codes, d, m) = &mut *pack;
                    let len = t.rows * nb;
                    codes.clear();
                    codes.resize(len, _mm256_setzero_si256());
                    d.clear();
                    d.resize(len, 0.0);
                    m.clear();
                    m.resize(len, 0.0);
                    for r in 0..t.rows {
                        for b in 0..nb {
                            // SAFETY: block b of weight row r is inside the tile (TileFn contract).
                            let (c, dw, mw) = unsafe { file_block::<L>(w.add(r * ws), b) };
                            codes[r * nb + b] = c;
                            d[r * nb + b] = _mm256_cvtss_f32(dw);
                            m[r * nb + b] = mw;
                        }
                    }
                    let (cp, dp, mp) = (codes.as_ptr(), d.as_ptr(), m.as_ptr());
                    let mut r = 0;
                    while r < t.rows {
                        let mr = if t.rows - r >= MR { MR } else { 1 };
                        let mut j = 0;
                        while j < t.acts {
                            let nr = if t.acts - j >= NR { NR } else { 1 };
                            // SAFETY: packed rows r..r+mr hold nb entries each; activation rows
                            // j..j+nr and their outputs are inside the tile (TileFn contract).
                            unsafe {
                                let k = r * nb;
                                let (c, dd, mm) = (cp.add(k), dp.add(k), mp.add(k));
                                // The unpacked copy: entry b of row i at i * nb + b.
                                let packed = |i: usize, b: usize| {
                                    let e = i * nb + b;
                                    (*c.add(e), _mm256_set1_ps(*dd.add(e)), *mm.add(e))
                                };
                                let (ap, op) = (a.add(j * as_), o.add(j * out_stride + r));
                                match (mr, nr) {
                                    (MR, NR) => {
                                        micro::<L, MR, NR>(nb, packed, ap, as_, op, out_stride)
                                    }
                                    (MR, _) => {
                                        micro::<L, MR, 1>(nb, packed, ap, as_, op, out_stride)
                                    }
                                    (_, NR) => {
                                        micro::<L, 1, NR>(nb, packed, ap, as_, op, out_stride)
                                    }
                                    _ => micro::<L, 1, 1>(nb, packed, ap, as_, op, out_stride),
                                }
                            }
                            j += nr;
                        }
                        r += mr;
                    }
                });
            }
        }
    };
}

/// One weight row against one activation row: a one-row tile of the AVX2 level (every level
/// computes the same bits).
///
/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for a weight type of family `L`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot<L: Legacy>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let mut out = [0f32];
    let t = TileArgs {
        n,
        w,
        w_stride: w.len(),
        rows: 1,
        act,
        act_stride: act.len(),
        acts: 1,
    };
    // SAFETY: one row each, lengths guaranteed by the VecDotFn contract; one output.
    unsafe { avx2::tile::<L>(&t, &mut out, 1) };
    out[0]
}

lanes_tiles!(avx2, "avx2,fma,f16c", NoVnni);
// AVX-VNNI's `vpdpbusd` is inline assembly (`simd::AvxVnni`), so its level compiles with the
// AVX2 features; its set is offered only where `x86::kernel_sets` detects AVX-VNNI.
lanes_tiles!(vnni, "avx2,fma,f16c", AvxVnni);
// The AVX-512 level compiles with AVX512VL as well: 32 vector registers, so the 4x4
// accumulators of the GEMM microkernel do not spill.
lanes_tiles!(
    avx512,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Avx512Vnni
);
