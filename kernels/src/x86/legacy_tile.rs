//! Matvec and GEMM kernels for the Q4_0 family (Q4_0 and MXFP4 in the ordinary tiles; Q4_1,
//! Q5_0 and Q8_0 in the row tiles: see [`super::legacy`]), in the summation order of
//! [`super::legacy`] (one f32 lane per (weight row, activation row) pair), instantiated once
//! per instruction-set level (plain AVX2, and AVX-VNNI or AVX512-VNNI whose `vpdpbusd` does
//! `maddubs` + `madd` + `add` in one instruction without the i16 intermediate).
//!
//! Matvec (one or two activation rows): eight consecutive weight rows at a time (eight
//! sequential streams), their codes and scales extracted once per block for every activation
//! row; each row's block dot product is an 8-lane i32 vector, the eight are reduced with a
//! `hadd` tree to one vector of eight exact block sums, lane = row, and the float part
//! (convert, scale product, fma) runs once per eight rows.
//!
//! GEMM (three activation rows or more): eight weight rows are repacked once per tile into
//! "lane = row" order (register `g` of a block holds codes `4g..4g+4` of each of the eight
//! rows), so one `maddubs`/`vpdpbusd` against four activation bytes broadcast to every lane
//! advances eight pairs at once; the eight block sums come out already in lanes, with no
//! horizontal reduction. Two such groups (sixteen rows) go through the microkernel against two
//! activation rows, so each broadcast feeds two weight registers, except for signed codes
//! without VNNI (whose `abs`/`sign` need more registers): one group against four rows. With
//! VNNI, signed codes are packed as `w + 128` with a zero point of 128 (`vnni_codes`). Each
//! activation block's zero-point correction (`OFFSET * sum(a)`) and f32 scale are computed once
//! per tile.

macro_rules! legacy_tiles {
    ($level:ident, $features:literal, $vnni:ident) => {
        /// The kernels of one instruction-set level (see the module docs).
        pub(super) mod $level {
            use core::arch::x86_64::*;

            use crate::formats::e8m0_to_f32_half;
            use crate::kernel_set::TileArgs;
            use crate::x86::legacy::{block_partials, offset_pairs, vec_dot, vnni_codes, Legacy};
            use crate::x86::simd::{
                f16_at, fence4, hsum_epi32, load256, prefetch_ahead, reduce8, sum_pairs_i16,
                transpose8_epi32, $vnni as Dot, Vnni,
            };

            /// [`fence4`] over the `G x NA = 4` accumulators of a microkernel.
            ///
            /// # Safety
            /// Features present.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn fence<const G: usize, const NA: usize>(acc: &mut [[__m256i; G]; NA]) {
                const { assert!(G * NA == 4) };
                let mut flat = [_mm256_setzero_si256(); 4];
                for (i, v) in acc.iter().flatten().enumerate().take(4) {
                    flat[i] = *v;
                }
                // SAFETY: AVX is part of the features (contract).
                unsafe { fence4(&mut flat) };
                for (i, v) in acc.iter_mut().flatten().enumerate().take(4) {
                    *v = flat[i];
                }
            }

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
                if count >= 8 {
                    // Lane by lane into a register: eight 2-byte stores read back as one
                    // 16-byte load would stall on store forwarding, twice per block.
                    // SAFETY: rows 0..8 are readable at this offset (contract).
                    let h = |i: usize| unsafe { half_bits(p.add(i * stride + off)) };
                    let v = _mm_set_epi16(h(7), h(6), h(5), h(4), h(3), h(2), h(1), h(0));
                    return _mm256_cvtph_ps(v);
                }
                let mut h = [0i16; 8];
                for (i, v) in h.iter_mut().enumerate().take(count) {
                    // SAFETY: row i < count is readable at this offset (contract).
                    *v = unsafe { half_bits(p.add(i * stride + off)) };
                }
                // SAFETY: a 16-byte array; loadu has no alignment requirement.
                _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) })
            }

            /// The block scales of rows `i < count` (zero beyond) of blocks at
            /// `p + i * stride`: f16 at offset 0, or E8M0 half-scales (byte 0) for
            /// [`Legacy::E8M0`] types.
            ///
            /// # Safety
            /// Rows `i < count` valid at those offsets for 2 bytes (1 for E8M0).
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn scales8<L: Legacy>(p: *const u8, stride: usize, count: usize) -> __m256 {
                if !L::E8M0 {
                    // SAFETY: forwarded contract.
                    return unsafe { halves8(p, stride, 0, count) };
                }
                // SAFETY: row i < count has its exponent byte at this offset (contract).
                let e = |i: usize| e8m0_to_f32_half(unsafe { *p.add(i * stride) });
                if count >= 8 {
                    return _mm256_setr_ps(e(0), e(1), e(2), e(3), e(4), e(5), e(6), e(7));
                }
                let mut v = [0f32; 8];
                for (i, x) in v.iter_mut().enumerate().take(count) {
                    *x = e(i);
                }
                // SAFETY: a 32-byte array; loadu has no alignment requirement.
                unsafe { _mm256_loadu_ps(v.as_ptr()) }
            }

            /// Eight consecutive weight rows (at `w + r * ws`) against `NA` activation rows
            /// (at `act + j * act_stride`); writes `out[j * out_stride..][0..8]`, each value
            /// bit-identical to [`vec_dot`]. Each block's codes and scales are extracted once
            /// for all `NA` rows: for a few activation rows (decoding a few sequences at once)
            /// this beats packing the weights for the GEMM microkernel.
            ///
            /// # Safety
            /// Features present; eight rows of `nb` blocks at `w + r * ws`, `NA` rows of `nb`
            /// activation blocks at `act + j * act_stride`, eight writable f32 at each
            /// `out + j * out_stride`.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn matvec8<L: Legacy, const NA: usize>(
                nb: usize,
                w: *const u8,
                ws: usize,
                act: *const u8,
                act_stride: usize,
                out: *mut f32,
                out_stride: usize,
            ) {
                let mut acc = [_mm256_setzero_ps(); NA];
                // The eight rows are one contiguous stretch; reading it as eight streams
                // defeats the hardware prefetchers (3 GB/s from DRAM here), so a later
                // stretch (whole passes, `prefetch_ahead`: at least 8 KB on) is prefetched
                // linearly while this one runs. Into L2 (T1), not L1: the L1's few miss
                // buffers capped the stream. From DRAM on a Zen 4, 1 thread: Q4_0 9-12 ->
                // 16-17 GB/s, Q4_K 13 -> 20 GB/s.
                let next = w.wrapping_add(prefetch_ahead(8 * ws));
                let lines_per_block = (8 * ws).div_ceil(64 * nb.max(1));
                for b in 0..nb {
                    for l in 0..lines_per_block {
                        let p = next.wrapping_add(64 * (b * lines_per_block + l));
                        // A hint: it never faults, whatever the address.
                        _mm_prefetch::<_MM_HINT_T1>(p.cast());
                    }
                    // SAFETY: block b of each of the eight rows and of the activation rows is
                    // in bounds (contract); fields as in `Legacy`.
                    unsafe {
                        let x = w.add(b * L::W_BYTES);
                        let mut codes = [_mm256_setzero_si256(); 8];
                        for (r, c) in codes.iter_mut().enumerate() {
                            *c = level_codes::<L>(L::codes(x.add(r * ws)));
                        }
                        let dw = scales8::<L>(x, ws, 8);
                        let mw = if L::HAS_MIN {
                            halves8(x, ws, 2, 8)
                        } else {
                            _mm256_setzero_ps()
                        };
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let y = act.add(j * act_stride + b * L::A_BYTES);
                            let a = load256(y.add(L::A_QS));
                            let mut v = [_mm256_setzero_si256(); 8];
                            if Dot::PRESENT {
                                // (The `unsafe` of `dpbusd`: this level runs only where
                                // `Dot` is present.) The zero-point correction seeds every
                                // row's accumulator.
                                let seed = vnni_seed::<L>(a);
                                for (vr, &c) in v.iter_mut().zip(&codes) {
                                    *vr = Dot::dpbusd(seed, c, a);
                                }
                            } else {
                                let off = offset_pairs::<L>(a);
                                for (vr, &c) in v.iter_mut().zip(&codes) {
                                    *vr = block_partials::<L>(c, a, off);
                                }
                            }
                            let s = _mm256_cvtepi32_ps(reduce8(&v));
                            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(f16_at(y)));
                            *acc = _mm256_fmadd_ps(s, scale, *acc);
                            if L::HAS_MIN {
                                // Weight minimums (bytes 2..4) times Q8_1's s (bytes 2..4).
                                *acc = _mm256_fmadd_ps(mw, _mm256_set1_ps(f16_at(y.add(2))), *acc);
                            }
                        }
                    }
                }
                for (j, &acc) in acc.iter().enumerate() {
                    // SAFETY: eight writable f32 (contract).
                    unsafe { _mm256_storeu_ps(out.add(j * out_stride), acc) };
                }
            }

            /// Every weight row of the tile against `NA` activation rows: eight rows at a
            /// time through [`matvec8`], the last `rows % 8` through [`vec_dot`].
            ///
            /// # Safety
            /// As [`tile`], with `t.acts == NA`.
            #[target_feature(enable = $features)]
            unsafe fn matvec_rows<L: Legacy, const NA: usize>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                let nb = t.n / 32;
                let (w, a, o) = (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr());
                let ws = t.w_stride;
                let mut r = 0;
                while r + 8 <= t.rows {
                    // SAFETY: rows r..r+8, the activation rows and outputs (j, r..r+8) lie
                    // inside the validated tile (TileFn contract).
                    unsafe {
                        matvec8::<L, NA>(
                            nb,
                            w.add(r * ws),
                            ws,
                            a,
                            t.act_stride,
                            o.add(r),
                            out_stride,
                        )
                    };
                    r += 8;
                }
                for r in r..t.rows {
                    for j in 0..NA {
                        // SAFETY: row r, activation row j and output (j, r) are inside the
                        // tile.
                        unsafe {
                            let row =
                                core::slice::from_raw_parts(w.add(r * ws), t.w.len() - r * ws);
                            let act = t.act.get(j * t.act_stride..).unwrap_or(&[]);
                            *o.add(j * out_stride + r) = vec_dot::<L>(t.n, row, act);
                        }
                    }
                }
            }

            /// A block's codes as this level's products take them: made unsigned for
            /// `vpdpbusd` (`vnni_codes`), as they are for `maddubs`. (`legacy_lanes` takes
            /// them so too.)
            #[inline]
            #[target_feature(enable = $features)]
            pub(in crate::x86) fn level_codes<L: Legacy>(codes: __m256i) -> __m256i {
                if Dot::PRESENT {
                    vnni_codes::<L>(codes)
                } else {
                    codes
                }
            }

            /// The zero point of the [`level_codes`]: with `vpdpbusd` every type's codes are
            /// unsigned, else only the unsigned types have one.
            const fn zero_point<L: Legacy>() -> i32 {
                if Dot::PRESENT {
                    L::VNNI_OFFSET as i32
                } else {
                    L::OFFSET as i32
                }
            }

            /// The seed of every `vpdpbusd` of [`level_codes`] against the activation quants
            /// `a`: minus the zero point's products with them (zero without a zero point), so
            /// that each sum comes out exact, offset included. Formed once per activation
            /// block for all the weight rows. (`legacy_lanes` seeds its products so too.)
            ///
            /// # Safety
            /// `Dot`'s instructions are present.
            #[inline]
            #[target_feature(enable = $features)]
            pub(in crate::x86) unsafe fn vnni_seed<L: Legacy>(a: __m256i) -> __m256i {
                if zero_point::<L>() == 0 {
                    return _mm256_setzero_si256();
                }
                // The zero point as a byte (128 is 0x80, an unsigned operand of `vpdpbusd`).
                let zp = _mm256_set1_epi8(zero_point::<L>() as u8 as i8);
                // SAFETY: the caller guarantees `Dot`'s instructions.
                let off = unsafe { Dot::dpbusd(_mm256_setzero_si256(), zp, a) };
                _mm256_sub_epi32(_mm256_setzero_si256(), off)
            }

            /// Whether the packed codes are signed and the products take `|w| x sign(a, w)`
            /// (`maddubs` needs an unsigned operand; `vpdpbusd` gets unsigned codes instead).
            const fn sign_trick<L: Legacy>() -> bool {
                L::SIGNED && !Dot::PRESENT
            }

            /// Vectors per block of a packed weight group: eight code registers (`g`: lane r
            /// holds codes `4g..4g+4` of row r), then the scales (f32 bits), then for types
            /// with a minimum the minimums (f32 bits).
            const fn w_rec(has_min: bool) -> usize {
                if has_min {
                    10
                } else {
                    9
                }
            }
            /// Vectors per block of a packed activation quad: four rows of 32 quants, then
            /// f32 scales in bytes 128..144 and `OFFSET * sum(a)` (i32) in 144..160, or, for
            /// types with a minimum (whose offset is 0), Q8_1's s (f32) there.
            const A_REC: usize = 5;

            /// Repacks `count <= 8` rows of `nb` blocks at `w + r * ws` into `out`
            /// (`w_rec * nb` vectors); missing rows are zero. Prefetches the eight rows
            /// `ahead` rows further on (the same group of the next step).
            ///
            /// # Safety
            /// Features present; those rows are readable.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn pack_weights<L: Legacy>(
                nb: usize,
                w: *const u8,
                ws: usize,
                count: usize,
                ahead: usize,
                out: &mut [__m256i],
            ) {
                // As in `matvec8`: the eight rows are read as eight streams, which the
                // hardware prefetchers do not follow, so the rows that this group's place
                // holds in the next step (of this tile, or the first of the next tile) are
                // prefetched linearly while these are packed; the microkernels' work on
                // this step hides the latency. (Prefetching the group packed right after
                // this one would come too late.)
                let next = w.wrapping_add(ahead * ws);
                let lines_per_block = (8 * ws).div_ceil(64 * nb.max(1));
                for (b, rec) in out.chunks_exact_mut(w_rec(L::HAS_MIN)).take(nb).enumerate() {
                    for l in 0..lines_per_block {
                        let p = next.wrapping_add(64 * (b * lines_per_block + l));
                        // A hint: it never faults, whatever the address.
                        _mm_prefetch::<_MM_HINT_T1>(p.cast());
                    }
                    let x = w.wrapping_add(b * L::W_BYTES);
                    // A 32-byte load at a block's start stays inside its row except at the
                    // last block (a Q4_1 block is 20 bytes).
                    if L::DM_THEN_NIBBLES && (b + 1) * L::W_BYTES + 12 <= nb * L::W_BYTES {
                        let mut rows = [_mm256_setzero_si256(); 8];
                        for (r, row) in rows.iter_mut().enumerate().take(count) {
                            // SAFETY: bytes b * 20 .. b * 20 + 32 of row r < count lie inside
                            // the row (checked above; contract: the rows are readable).
                            *row = unsafe { load256(x.add(r * ws)) };
                        }
                        // Word k of every row, lane = row: 0 is d | m << 16, 1..5 the nibbles.
                        let t = transpose8_epi32(&rows);
                        let low = _mm256_set1_epi8(0x0F);
                        for g in 0..4 {
                            rec[g] = _mm256_and_si256(t[1 + g], low);
                            rec[4 + g] = _mm256_and_si256(_mm256_srli_epi16(t[1 + g], 4), low);
                        }
                        // The eight d (low halves) and m (high halves) as f16 vectors.
                        let pick = _mm256_setr_epi8(
                            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, //
                            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                        );
                        // Quadwords: [d 0-3, m 0-3, d 4-7, m 4-7] -> [d 0-7, m 0-7].
                        let dm = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(
                            t[0], pick,
                        ));
                        rec[8] = _mm256_castps_si256(_mm256_cvtph_ps(_mm256_castsi256_si128(dm)));
                        rec[9] =
                            _mm256_castps_si256(_mm256_cvtph_ps(_mm256_extracti128_si256::<1>(dm)));
                        continue;
                    }
                    let mut rows = [_mm256_setzero_si256(); 8];
                    for (r, row) in rows.iter_mut().enumerate().take(count) {
                        // SAFETY: block b of row r < count is readable (contract).
                        *row = unsafe { L::codes(x.add(r * ws)) };
                    }
                    for (dst, c) in rec[..8].iter_mut().zip(transpose8_epi32(&rows)) {
                        *dst = level_codes::<L>(c);
                    }
                    // SAFETY: as above (d at 0..2 of each block, or the exponent at 0; m at 2..4
                    // with a minimum).
                    rec[8] = _mm256_castps_si256(unsafe { scales8::<L>(x, ws, count) });
                    if L::HAS_MIN {
                        // SAFETY: as above.
                        rec[9] = _mm256_castps_si256(unsafe { halves8(x, ws, 2, count) });
                    }
                }
            }

            /// Copies `acts` activation rows into quads of `A_REC`-vector block records
            /// (rows past `acts` in the last quad keep whatever they held: their results are
            /// never stored), with each block's f32 scale, exact zero-point correction and
            /// Q8_1 `s`.
            ///
            /// # Safety
            /// Features present; `acts` rows of `nb` blocks at `act + j * stride`;
            /// `out.len() == acts.div_ceil(4) * nb * A_REC`.
            #[target_feature(enable = $features)]
            unsafe fn pack_acts<L: Legacy>(
                nb: usize,
                act: *const u8,
                stride: usize,
                acts: usize,
                out: &mut [__m256i],
            ) {
                let base = out.as_mut_ptr().cast::<u8>();
                for j in 0..acts {
                    let (q, jj) = (j / NR, j % NR);
                    for b in 0..nb {
                        // SAFETY: block b of activation row j is in bounds (contract); the
                        // record (q, b) lies inside `out` (its length, contract), and so do
                        // the byte offsets written inside it.
                        unsafe {
                            let y = act.add(j * stride + b * L::A_BYTES);
                            let rec = base.add((q * nb + b) * A_REC * 32);
                            let a = load256(y.add(L::A_QS));
                            _mm256_storeu_si256(rec.add(32 * jj).cast(), a);
                            rec.add(128 + 4 * jj)
                                .cast::<f32>()
                                .write_unaligned(f16_at(y));
                            if zero_point::<L>() != 0 {
                                let ones = _mm256_set1_epi8(1);
                                let sum = hsum_epi32(sum_pairs_i16(_mm256_maddubs_epi16(ones, a)));
                                let off = zero_point::<L>() * sum;
                                rec.add(144 + 4 * jj).cast::<i32>().write_unaligned(off);
                            } else if L::HAS_MIN {
                                rec.add(144 + 4 * jj)
                                    .cast::<f32>()
                                    .write_unaligned(f16_at(y.add(2)));
                            }
                        }
                    }
                }
            }

            /// `G` packed weight groups (consecutive in `wp`, `count <= 8 * G` valid rows in
            /// all) x `NA` rows of one packed activation quad, starting at its row `first`
            /// (`na` valid); writes `out[jj * out_stride + r]` for the valid ones.
            ///
            /// Two shapes are used: one group x four activation rows, and two groups x two
            /// rows (all but the sign trick's). The second loads each broadcast activation word
            /// once for sixteen weight rows, about 15% fewer instructions per product; both
            /// fit the sixteen registers (with [`fence`]). Each pair's sum is the same either
            /// way.
            ///
            /// # Safety
            /// Features present; `wp` holds `G * w_rec * nb` and `ap` `A_REC * nb` vectors;
            /// `first + NA <= NR`; the outputs are writable.
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn micro<L: Legacy, const G: usize, const NA: usize>(
                nb: usize,
                wp: *const __m256i,
                ap: *const __m256i,
                first: usize,
                out: *mut f32,
                out_stride: usize,
                count: usize,
                na: usize,
            ) {
                let ones = _mm256_set1_epi16(1);
                let rec = w_rec(L::HAS_MIN);
                let mut acc = [[_mm256_setzero_ps(); G]; NA];
                for b in 0..nb {
                    // SAFETY: records b of every group and of the activation pack exist
                    // (contract); every read below stays inside them (layouts at `w_rec`,
                    // `A_REC`; rows `first..first + NA` of the quad).
                    unsafe {
                        let wr = |gi: usize| wp.add((gi * nb + b) * rec);
                        let ar = ap.add(b * A_REC).cast::<u8>().add(32 * first);
                        let mut acc32 = [[_mm256_setzero_si256(); G]; NA];
                        let mut acc16 = [[_mm256_setzero_si256(); G]; NA];
                        // VNNI: a second accumulator per pair for the odd groups halves the
                        // dependency chains (vpdpbusd's latency, not its throughput, bounds
                        // chains of eight).
                        let mut odd32 = [[_mm256_setzero_si256(); G]; NA];
                        for g in 0..8 {
                            let mut w = [_mm256_setzero_si256(); G];
                            let mut wa = [_mm256_setzero_si256(); G];
                            for gi in 0..G {
                                w[gi] = *wr(gi).add(g);
                                wa[gi] = if sign_trick::<L>() {
                                    _mm256_abs_epi8(w[gi])
                                } else {
                                    w[gi]
                                };
                            }
                            for jj in 0..NA {
                                let a4 = ar.add(32 * jj + 4 * g).cast::<i32>().read_unaligned();
                                let a = _mm256_set1_epi32(a4);
                                for gi in 0..G {
                                    let a = if sign_trick::<L>() {
                                        _mm256_sign_epi8(a, w[gi])
                                    } else {
                                        a
                                    };
                                    let (acc32, acc16, odd32) = (
                                        &mut acc32[jj][gi],
                                        &mut acc16[jj][gi],
                                        &mut odd32[jj][gi],
                                    );
                                    if Dot::PRESENT {
                                        // (This level runs only where `Dot` is present.)
                                        if g % 2 == 0 {
                                            *acc32 = Dot::dpbusd(*acc32, wa[gi], a);
                                        } else {
                                            *odd32 = Dot::dpbusd(*odd32, wa[gi], a);
                                        }
                                    } else if L::I16_GROUPS == 1 {
                                        let p = _mm256_maddubs_epi16(wa[gi], a);
                                        let p = _mm256_madd_epi16(p, ones);
                                        *acc32 = _mm256_add_epi32(*acc32, p);
                                    } else {
                                        let p = _mm256_maddubs_epi16(wa[gi], a);
                                        *acc16 = _mm256_add_epi16(*acc16, p);
                                        if (g + 1) % L::I16_GROUPS == 0 {
                                            let s = _mm256_madd_epi16(*acc16, ones);
                                            *acc32 = _mm256_add_epi32(*acc32, s);
                                            *acc16 = _mm256_setzero_si256();
                                        }
                                    }
                                }
                            }
                            // One group step at a time, as written (see `fence4`).
                            if Dot::PRESENT {
                                if g % 2 == 0 {
                                    fence(&mut acc32);
                                } else {
                                    fence(&mut odd32);
                                }
                            } else if L::I16_GROUPS == 1 {
                                fence(&mut acc32);
                            } else {
                                fence(&mut acc16);
                            }
                        }
                        let ar = ap.add(b * A_REC).cast::<u8>();
                        for jj in 0..NA {
                            let j = first + jj;
                            let da =
                                _mm256_set1_ps(ar.add(128 + 4 * j).cast::<f32>().read_unaligned());
                            for gi in 0..G {
                                let mut s = acc32[jj][gi];
                                if Dot::PRESENT {
                                    s = _mm256_add_epi32(s, odd32[jj][gi]);
                                }
                                if zero_point::<L>() != 0 {
                                    let off = ar.add(144 + 4 * j).cast::<i32>().read_unaligned();
                                    s = _mm256_sub_epi32(s, _mm256_set1_epi32(off));
                                }
                                let dw = _mm256_castsi256_ps(*wr(gi).add(8));
                                let scale = _mm256_mul_ps(dw, da);
                                let a = &mut acc[jj][gi];
                                *a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, *a);
                                if L::HAS_MIN {
                                    let mw = _mm256_castsi256_ps(*wr(gi).add(9));
                                    let sa = ar.add(144 + 4 * j).cast::<f32>().read_unaligned();
                                    *a = _mm256_fmadd_ps(mw, _mm256_set1_ps(sa), *a);
                                }
                            }
                        }
                    }
                }
                for (jj, acc) in acc.iter().enumerate().take(na.min(NA)) {
                    for (gi, &v) in acc.iter().enumerate() {
                        let mut lanes = [0f32; 8];
                        // SAFETY: a 32-byte array; storeu has no alignment requirement.
                        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
                        let valid = count.saturating_sub(8 * gi).min(8);
                        for (r, &x) in lanes.iter().enumerate().take(valid) {
                            // SAFETY: output (8 * gi + r, jj) is writable (contract).
                            unsafe { *out.add(jj * out_stride + 8 * gi + r) = x };
                        }
                    }
                }
            }

            /// The whole tile.
            ///
            /// # Safety
            /// As [`crate::kernel_set::TileFn`] for a weight type of family `L`.
            #[target_feature(enable = $features)]
            pub(in crate::x86) unsafe fn tile<L: Legacy>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                // SAFETY (both arms): the caller's TileFn contract, with t.acts == NA. From three
                // activation rows on, packing the weights for the microkernel is faster
                // (`kernels --rows-alone`).
                match t.acts {
                    1 => return unsafe { matvec_rows::<L, 1>(t, out, out_stride) },
                    2 => return unsafe { matvec_rows::<L, 2>(t, out, out_stride) },
                    _ => {}
                }
                let nb = t.n / 32;
                let o = out.as_mut_ptr();
                // Activations are packed once per tile, eight weight rows at a time; a packed
                // weight group (about 40 KB for 4096 columns) stays in L1 while every
                // activation quad streams past it.
                let quads = t.acts.div_ceil(NR);
                // Per-thread scratch, reused across calls: a fresh allocation of this size
                // is a fresh mapping, and its page faults cost more than the packing.
                thread_local! {
                    static SCRATCH: core::cell::RefCell<(Vec<__m256i>, Vec<__m256i>)> =
                        const { core::cell::RefCell::new((Vec::new(), Vec::new())) };
                }
                SCRATCH.with(|cell| {
                    let mut guard = cell.borrow_mut();
                    let (acts, group) = &mut *guard;
                    // Grown when too small, never cleared: every record a microkernel reads
                    // is written first, except the rows of a last, partial activation quad,
                    // whose results are never stored (clearing cost more than 3% of decoding
                    // several sequences at once).
                    let (a_len, g_len) = (quads * nb * A_REC, 2 * nb * w_rec(L::HAS_MIN));
                    if acts.len() < a_len {
                        acts.resize(a_len, _mm256_setzero_si256());
                    }
                    if group.len() < g_len {
                        group.resize(g_len, _mm256_setzero_si256());
                    }
                    let (acts, group) = (&mut acts[..a_len], &mut group[..g_len]);
                    // SAFETY: as for `tile` (the caller's contract): the tile is validated.
                    unsafe { tile_packed::<L>(t, o, out_stride, acts, group) };
                });
            }

            /// The GEMM part of [`tile`], with its scratch buffers.
            ///
            /// # Safety
            /// As [`tile`], with `o` its output; `acts` has `acts.div_ceil(NR) * nb * A_REC`
            /// vectors, `group` `2 * nb * w_rec` (two weight groups).
            #[target_feature(enable = $features)]
            unsafe fn tile_packed<L: Legacy>(
                t: &TileArgs<'_>,
                o: *mut f32,
                out_stride: usize,
                acts: &mut [__m256i],
                group: &mut [__m256i],
            ) {
                let nb = t.n / 32;
                let (w, a, ws) = (t.w.as_ptr(), t.act.as_ptr(), t.w_stride);
                // SAFETY: the activation rows are inside the validated tile; `acts` has the
                // required length.
                unsafe { pack_acts::<L>(nb, a, t.act_stride, t.acts, acts) };
                let rec = nb * w_rec(L::HAS_MIN);
                let mut r0 = 0;
                while r0 < t.rows {
                    // Sixteen rows (two groups) at a time while there are more than eight,
                    // except under the sign trick: its `abs`/`sign` pairs need more registers
                    // than the two-group shape leaves (it spills, 20% slower for Q8_0).
                    let step = if sign_trick::<L>() { 8 } else { 16 };
                    let count = (t.rows - r0).min(step);
                    let (g0, g1) = group.split_at_mut(rec);
                    // SAFETY: rows r0..r0+count are inside the tile.
                    unsafe {
                        pack_weights::<L>(nb, w.add(r0 * ws), ws, count.min(8), step, g0);
                        if count > 8 {
                            let w1 = w.add((r0 + 8) * ws);
                            pack_weights::<L>(nb, w1, ws, count - 8, step, g1);
                        }
                    }
                    // SAFETY (both arms): the packs have the sizes `micro` needs; activation
                    // rows j0..min(j0 + NA, acts) and weight rows r0..r0+count have their
                    // outputs inside the validated tile.
                    if count > 8 {
                        for j0 in (0..t.acts).step_by(2) {
                            unsafe {
                                micro::<L, 2, 2>(
                                    nb,
                                    group.as_ptr(),
                                    acts.as_ptr().add(j0 / NR * nb * A_REC),
                                    j0 % NR,
                                    o.add(j0 * out_stride + r0),
                                    out_stride,
                                    count,
                                    t.acts - j0,
                                )
                            };
                        }
                    } else {
                        for j0 in (0..t.acts).step_by(NR) {
                            unsafe {
                                micro::<L, 1, NR>(
                                    nb,
                                    group.as_ptr(),
                                    acts.as_ptr().add(j0 / NR * nb * A_REC),
                                    0,
                                    o.add(j0 * out_stride + r0),
                                    out_stride,
                                    count,
                                    t.acts - j0,
                                )
                            };
                        }
                    }
                    r0 += count;
                }
            }
        }
    };
}

legacy_tiles!(avx2, "avx2,fma,f16c", NoVnni);
// AVX-VNNI's `vpdpbusd` is inline assembly (`simd::AvxVnni`), so its level compiles with the
// AVX2 features; its set is offered only where `x86::kernel_sets` detects AVX-VNNI.
legacy_tiles!(vnni, "avx2,fma,f16c", AvxVnni);
// The AVX-512 level compiles with AVX512VL as well: 32 vector registers for the microkernels.
legacy_tiles!(
    avx512,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Avx512Vnni
);
