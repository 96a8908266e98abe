//! Matvec and GEMM kernels for Q4_0, Q4_1, Q5_0 and Q8_0, in the summation order of
//! [`super::legacy`] (one f32 lane per (weight row, activation row) pair), instantiated once
//! per instruction-set level (plain AVX2, and AVX-VNNI whose `vpdpbusd` does
//! `maddubs` + `madd` + `add` in one instruction without the i16 intermediate).
//!
//! Matvec: eight consecutive weight rows at a time (eight sequential streams); each row's
//! block dot product is an 8-lane i32 vector, the eight are reduced with a `hadd` tree to one
//! vector of eight exact block sums, lane = row, and the float part (convert, scale product,
//! fma) runs once per eight rows.
//!
//! GEMM: eight weight rows are repacked once per tile into "lane = row" order (register `g`
//! of a block holds codes `4g..4g+4` of each of the eight rows), so one `maddubs`/`vpdpbusd`
//! against four activation bytes broadcast to every lane advances eight pairs at once; the
//! eight block sums come out already in lanes, with no horizontal reduction. Up to four
//! activation rows share each loaded weight register. Each activation block's zero-point
//! correction (`OFFSET * sum(a)`) and f32 scale are computed once per tile.

macro_rules! legacy_tiles {
    ($level:ident, $features:literal, $vnni:literal) => {
        /// The kernels of one instruction-set level (see the module docs).
        pub(super) mod $level {
            use core::arch::x86_64::*;

            use crate::dispatch::TileArgs;
            use crate::x86::legacy::{block_partials, offset_pairs, vec_dot, Legacy};
            use crate::x86::simd::{dpbusd, f16_at, hsum_epi32, load256, sum_pairs_i16};

            /// Activation rows sharing one weight register in the GEMM microkernel.
            const NR: usize = 4;

            /// The f16 bits at `p`.
            ///
            /// # Safety
            /// `p` valid for 2 bytes.
            #[inline]
            unsafe fn half_bits(p: *const u8) -> i16 {
                // SAFETY: forwarded contract; unaligned read.
                i16::from_le(unsafe { p.cast::<i16>().read_unaligned() })
            }

            /// Eight f16 values at `p + i * stride + off` (i < count; zero beyond) as f32.
            ///
            /// # Safety
            /// Rows `i < count` valid at those offsets for 2 bytes.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn halves8(p: *const u8, stride: usize, off: usize, count: usize) -> __m256 {
                let mut h = [0i16; 8];
                for (i, v) in h.iter_mut().enumerate().take(count) {
                    // SAFETY: row i < count is readable at this offset (contract).
                    *v = unsafe { half_bits(p.add(i * stride + off)) };
                }
                // SAFETY: a 16-byte array; loadu has no alignment requirement.
                _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) })
            }

            /// Per-lane exact sums of eight 8-lane vectors: lane r = sum of `v[r]`.
            #[inline]
            #[target_feature(enable = $features)]
            fn reduce8(v: &[__m256i; 8]) -> __m256i {
                let h01 = _mm256_hadd_epi32(v[0], v[1]);
                let h23 = _mm256_hadd_epi32(v[2], v[3]);
                let h45 = _mm256_hadd_epi32(v[4], v[5]);
                let h67 = _mm256_hadd_epi32(v[6], v[7]);
                // Low half: rows 0..4 (resp. 4..8) over lanes 0..4, high half over lanes 4..8.
                let lo = _mm256_hadd_epi32(h01, h23);
                let hi = _mm256_hadd_epi32(h45, h67);
                _mm256_add_epi32(
                    _mm256_permute2x128_si256(lo, hi, 0x20),
                    _mm256_permute2x128_si256(lo, hi, 0x31),
                )
            }

            /// Eight consecutive weight rows (at `w + r * ws`) against one activation row;
            /// writes `out[0..8]`, each bit-identical to [`vec_dot`].
            ///
            /// # Safety
            /// Features present; eight rows of `nb` blocks at `w + r * ws`, `nb` activation
            /// blocks at `act`, eight writable f32 at `out`.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn matvec8<L: Legacy>(
                nb: usize,
                w: *const u8,
                ws: usize,
                act: *const u8,
                out: *mut f32,
            ) {
                let mut acc = _mm256_setzero_ps();
                let mut macc = _mm256_setzero_ps();
                // The eight rows are one contiguous stretch; reading it as eight streams
                // defeats the hardware prefetchers (3 GB/s from DRAM here), so the next
                // stretch (the next eight rows) is prefetched linearly while this one runs.
                let next = w.wrapping_add(8 * ws);
                let lines_per_block = (8 * ws).div_ceil(64 * nb.max(1));
                for b in 0..nb {
                    for l in 0..lines_per_block {
                        let p = next.wrapping_add(64 * (b * lines_per_block + l));
                        // A hint: it never faults, whatever the address.
                        _mm_prefetch::<_MM_HINT_T0>(p.cast());
                    }
                    // SAFETY: block b of each of the eight rows and of the activation row is
                    // in bounds (contract); fields as in `Legacy`.
                    unsafe {
                        let y = act.add(b * L::A_BYTES);
                        let a = load256(y.add(L::A_QS));
                        let x = w.add(b * L::W_BYTES);
                        let mut v = [_mm256_setzero_si256(); 8];
                        if $vnni {
                            // (The `unsafe` of `dpbusd`: this level runs only with AVX-VNNI.)
                            // The zero-point correction seeds every row's accumulator.
                            let seed = if L::OFFSET != 0 {
                                let off =
                                    dpbusd(_mm256_setzero_si256(), _mm256_set1_epi8(L::OFFSET), a);
                                _mm256_sub_epi32(_mm256_setzero_si256(), off)
                            } else {
                                _mm256_setzero_si256()
                            };
                            for (r, vr) in v.iter_mut().enumerate() {
                                let c = L::codes(x.add(r * ws));
                                *vr = if L::SIGNED {
                                    dpbusd(seed, _mm256_abs_epi8(c), _mm256_sign_epi8(a, c))
                                } else {
                                    dpbusd(seed, c, a)
                                };
                            }
                        } else {
                            let off = offset_pairs::<L>(a);
                            for (r, vr) in v.iter_mut().enumerate() {
                                *vr = block_partials::<L>(L::codes(x.add(r * ws)), a, off);
                            }
                        }
                        let s = _mm256_cvtepi32_ps(reduce8(&v));
                        let dw = halves8(x, ws, 0, 8);
                        let scale = _mm256_mul_ps(dw, _mm256_set1_ps(f16_at(y)));
                        acc = _mm256_fmadd_ps(s, scale, acc);
                        if L::HAS_MIN {
                            let mw = halves8(x, ws, 2, 8);
                            macc = _mm256_add_ps(
                                macc,
                                _mm256_mul_ps(mw, _mm256_set1_ps(f16_at(y.add(2)))),
                            );
                        }
                    }
                }
                if L::HAS_MIN {
                    acc = _mm256_add_ps(acc, macc);
                }
                // SAFETY: eight writable f32 (contract).
                unsafe { _mm256_storeu_ps(out, acc) };
            }

            /// Transposes eight rows of eight i32 (`m[r]` lane g -> result `g` lane r).
            #[inline]
            #[target_feature(enable = $features)]
            fn transpose8(m: &[__m256i; 8]) -> [__m256i; 8] {
                let t0 = _mm256_unpacklo_epi32(m[0], m[1]);
                let t1 = _mm256_unpackhi_epi32(m[0], m[1]);
                let t2 = _mm256_unpacklo_epi32(m[2], m[3]);
                let t3 = _mm256_unpackhi_epi32(m[2], m[3]);
                let t4 = _mm256_unpacklo_epi32(m[4], m[5]);
                let t5 = _mm256_unpackhi_epi32(m[4], m[5]);
                let t6 = _mm256_unpacklo_epi32(m[6], m[7]);
                let t7 = _mm256_unpackhi_epi32(m[6], m[7]);
                // u0: lanes 0 and 4 of rows 0..4, u4: the same of rows 4..8, etc.
                let u0 = _mm256_unpacklo_epi64(t0, t2);
                let u1 = _mm256_unpackhi_epi64(t0, t2);
                let u2 = _mm256_unpacklo_epi64(t1, t3);
                let u3 = _mm256_unpackhi_epi64(t1, t3);
                let u4 = _mm256_unpacklo_epi64(t4, t6);
                let u5 = _mm256_unpackhi_epi64(t4, t6);
                let u6 = _mm256_unpacklo_epi64(t5, t7);
                let u7 = _mm256_unpackhi_epi64(t5, t7);
                [
                    _mm256_permute2x128_si256(u0, u4, 0x20),
                    _mm256_permute2x128_si256(u1, u5, 0x20),
                    _mm256_permute2x128_si256(u2, u6, 0x20),
                    _mm256_permute2x128_si256(u3, u7, 0x20),
                    _mm256_permute2x128_si256(u0, u4, 0x31),
                    _mm256_permute2x128_si256(u1, u5, 0x31),
                    _mm256_permute2x128_si256(u2, u6, 0x31),
                    _mm256_permute2x128_si256(u3, u7, 0x31),
                ]
            }

            /// Up to eight weight rows repacked "lane = row": `codes[8 * b + g]` lane r holds
            /// codes `4g..4g+4` of block b of row r; `d[b]` (and `m[b]`) lane r its scale
            /// (and minimum). Missing rows are zero.
            struct Packed {
                codes: Vec<__m256i>,
                d: Vec<__m256>,
                m: Vec<__m256>,
            }

            /// Repacks `count <= 8` rows of `nb` blocks at `w + r * ws` into `p`.
            ///
            /// # Safety
            /// Features present; those rows are readable.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn repack<L: Legacy>(
                nb: usize,
                w: *const u8,
                ws: usize,
                count: usize,
                p: &mut Packed,
            ) {
                for b in 0..nb {
                    let x = w.wrapping_add(b * L::W_BYTES);
                    let mut rows = [_mm256_setzero_si256(); 8];
                    for (r, row) in rows.iter_mut().enumerate().take(count) {
                        // SAFETY: block b of row r < count is readable (contract).
                        *row = unsafe { L::codes(x.add(r * ws)) };
                    }
                    for (dst, v) in p.codes[8 * b..8 * b + 8].iter_mut().zip(transpose8(&rows)) {
                        *dst = v;
                    }
                    // SAFETY: as above (d at 0..2, m at 2..4 of each block).
                    p.d[b] = unsafe { halves8(x, ws, 0, count) };
                    if L::HAS_MIN {
                        // SAFETY: as above.
                        p.m[b] = unsafe { halves8(x, ws, 2, count) };
                    }
                }
            }

            /// Per activation row and block: f32 scale, exact `OFFSET * sum(a)`, f32 `s`.
            struct ActPrep {
                d: Vec<f32>,
                off: Vec<i32>,
                s: Vec<f32>,
            }

            /// # Safety
            /// Features present; `acts` rows of `nb` blocks at `act + j * stride`.
            #[target_feature(enable = $features)]
            unsafe fn prep_acts<L: Legacy>(
                nb: usize,
                act: *const u8,
                stride: usize,
                acts: usize,
            ) -> ActPrep {
                let mut p = ActPrep {
                    d: Vec::with_capacity(nb * acts),
                    off: Vec::with_capacity(if L::OFFSET != 0 { nb * acts } else { 0 }),
                    s: Vec::with_capacity(if L::HAS_MIN { nb * acts } else { 0 }),
                };
                for j in 0..acts {
                    for b in 0..nb {
                        // SAFETY: block b of activation row j is in bounds (contract).
                        unsafe {
                            let y = act.add(j * stride + b * L::A_BYTES);
                            p.d.push(f16_at(y));
                            if L::OFFSET != 0 {
                                let a = load256(y.add(L::A_QS));
                                let sum =
                                    sum_pairs_i16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a));
                                p.off.push(i32::from(L::OFFSET) * hsum_epi32(sum));
                            }
                            if L::HAS_MIN {
                                p.s.push(f16_at(y.add(2)));
                            }
                        }
                    }
                }
                p
            }

            /// `count <= 8` packed rows x `NA <= NR` activation rows (from `j0`); writes
            /// `out[jj * out_stride + r]`.
            ///
            /// # Safety
            /// Features present; `act + (j0 + jj) * a_stride` holds `nb` blocks for
            /// `jj < NA`; the outputs are writable; `pk` and `ap` were built for `nb`
            /// blocks and cover those rows.
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn micro<L: Legacy, const NA: usize>(
                nb: usize,
                pk: &Packed,
                act: *const u8,
                a_stride: usize,
                ap: &ActPrep,
                j0: usize,
                out: *mut f32,
                out_stride: usize,
                count: usize,
            ) {
                let ones = _mm256_set1_epi16(1);
                let mut acc = [_mm256_setzero_ps(); NA];
                let mut macc = [_mm256_setzero_ps(); NA];
                let codes = pk.codes.as_ptr();
                for b in 0..nb {
                    let mut acc32 = [_mm256_setzero_si256(); NA];
                    let mut acc16 = [_mm256_setzero_si256(); NA];
                    for g in 0..8 {
                        // SAFETY: `codes` holds 8 * nb vectors (contract).
                        let w = unsafe { *codes.add(8 * b + g) };
                        let wa = if L::SIGNED { _mm256_abs_epi8(w) } else { w };
                        for jj in 0..NA {
                            // SAFETY: bytes 4g..4g+4 of block b's quants of activation row
                            // j0 + jj lie inside that block (contract).
                            let a4 = unsafe {
                                act.add((j0 + jj) * a_stride + b * L::A_BYTES + L::A_QS + 4 * g)
                                    .cast::<i32>()
                                    .read_unaligned()
                            };
                            let a = _mm256_set1_epi32(a4);
                            let a = if L::SIGNED { _mm256_sign_epi8(a, w) } else { a };
                            if $vnni {
                                // SAFETY: only the AVX-VNNI level takes this branch, and its
                                // set is offered only on CPUs with AVX-VNNI.
                                acc32[jj] = unsafe { dpbusd(acc32[jj], wa, a) };
                            } else if L::I16_GROUPS == 1 {
                                let p = _mm256_maddubs_epi16(wa, a);
                                acc32[jj] = _mm256_add_epi32(acc32[jj], _mm256_madd_epi16(p, ones));
                            } else {
                                let p = _mm256_maddubs_epi16(wa, a);
                                acc16[jj] = _mm256_add_epi16(acc16[jj], p);
                                if (g + 1) % L::I16_GROUPS == 0 {
                                    let s = _mm256_madd_epi16(acc16[jj], ones);
                                    acc32[jj] = _mm256_add_epi32(acc32[jj], s);
                                    acc16[jj] = _mm256_setzero_si256();
                                }
                            }
                        }
                    }
                    for jj in 0..NA {
                        let k = (j0 + jj) * nb + b;
                        let mut s = acc32[jj];
                        if L::OFFSET != 0 {
                            s = _mm256_sub_epi32(s, _mm256_set1_epi32(ap.off[k]));
                        }
                        let scale = _mm256_mul_ps(pk.d[b], _mm256_set1_ps(ap.d[k]));
                        acc[jj] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[jj]);
                        if L::HAS_MIN {
                            let min = _mm256_mul_ps(pk.m[b], _mm256_set1_ps(ap.s[k]));
                            macc[jj] = _mm256_add_ps(macc[jj], min);
                        }
                    }
                }
                for jj in 0..NA {
                    let v = if L::HAS_MIN {
                        _mm256_add_ps(acc[jj], macc[jj])
                    } else {
                        acc[jj]
                    };
                    let mut lanes = [0f32; 8];
                    // SAFETY: a 32-byte array; storeu has no alignment requirement.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
                    for (r, &x) in lanes.iter().enumerate().take(count) {
                        // SAFETY: output (r, jj) is writable (contract).
                        unsafe { *out.add(jj * out_stride + r) = x };
                    }
                }
            }

            /// The whole tile.
            ///
            /// # Safety
            /// As [`crate::dispatch::TileFn`] for a weight type of family `L`.
            #[target_feature(enable = $features)]
            pub(in crate::x86) unsafe fn tile<L: Legacy>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                let nb = t.n / 32;
                let (w, a, o) = (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr());
                let ws = t.w_stride;
                if t.acts == 1 {
                    let mut r = 0;
                    while r + 8 <= t.rows {
                        // SAFETY: rows r..r+8 and outputs r..r+8 lie inside the validated
                        // tile (TileFn contract).
                        unsafe { matvec8::<L>(nb, w.add(r * ws), ws, a, o.add(r)) };
                        r += 8;
                    }
                    for r in r..t.rows {
                        // SAFETY: row r and output r are inside the tile; one row each.
                        unsafe {
                            let row =
                                core::slice::from_raw_parts(w.add(r * ws), t.w.len() - r * ws);
                            *o.add(r) = vec_dot::<L>(t.n, row, t.act);
                        }
                    }
                    return;
                }
                // SAFETY: the activation rows are inside the validated tile.
                let ap = unsafe { prep_acts::<L>(nb, a, t.act_stride, t.acts) };
                let mut pk = Packed {
                    codes: vec![_mm256_setzero_si256(); 8 * nb],
                    d: vec![_mm256_setzero_ps(); nb],
                    m: vec![_mm256_setzero_ps(); if L::HAS_MIN { nb } else { 0 }],
                };
                let mut r0 = 0;
                while r0 < t.rows {
                    let count = (t.rows - r0).min(8);
                    // SAFETY: rows r0..r0+count are inside the tile.
                    unsafe { repack::<L>(nb, w.add(r0 * ws), ws, count, &mut pk) };
                    let mut j0 = 0;
                    while j0 < t.acts {
                        let na = (t.acts - j0).min(NR);
                        let (s, as_) = (out_stride, t.act_stride);
                        // SAFETY: activation rows j0..j0+na and the outputs of rows
                        // r0..r0+count for them are inside the validated tile.
                        unsafe {
                            let op = o.add(j0 * s + r0);
                            match na {
                                4 => micro::<L, 4>(nb, &pk, a, as_, &ap, j0, op, s, count),
                                3 => micro::<L, 3>(nb, &pk, a, as_, &ap, j0, op, s, count),
                                2 => micro::<L, 2>(nb, &pk, a, as_, &ap, j0, op, s, count),
                                _ => micro::<L, 1>(nb, &pk, a, as_, &ap, j0, op, s, count),
                            }
                        }
                        j0 += na;
                    }
                    r0 += count;
                }
            }
        }
    };
}

legacy_tiles!(avx2, "avx2,fma,f16c", false);
// AVX-VNNI is used through inline assembly (`simd::dpbusd`), so this level compiles with the
// same target features; its set is offered only where `x86::has_avx_vnni` holds.
legacy_tiles!(vnni, "avx2,fma,f16c", true);
