//! GEMM tiles for Q4_K, Q5_K and Q6_K against Q8_K activations, in the summation orders of
//! [`super::kquants`] (Q4_K: one f32 lane per (weight row, activation row) pair; Q5_K/Q6_K:
//! ggml's eight lanes per pair, in `micro_lanes`), and batch tiles in llama.cpp's tiled-GEMM
//! order for those and for Q2_K and Q3_K (whose ggml lanes `micro_lanes` does not form: their
//! ordinary tiles are `kquants::rows_tile`), instantiated per instruction-set level like
//! `legacy_tile`.
//!
//! Eight weight rows are unpacked once per tile into "lane = row" records, one per
//! super-block: 64 code registers (register `g`, lane r = codes `4g..4g+4` of row r, as u8),
//! one scale register per sub-block (lane r = that row's scale), eight offset registers
//! (lane r = the i16 pair that multiplies activation `bsums` pair k: `(min_k, min_k)` for
//! Q4_K/Q5_K, `(min_2k, min_2k+1)` for Q2_K, `(scale_2k, scale_2k+1)` for Q6_K and Q3_K, whose
//! codes are stored +32 and +4), then `d` and `dmin` as f32 lanes. The
//! activation rows are read in place: four code bytes broadcast to every lane meet eight
//! rows at once, so each loaded weight register serves four activation rows and the
//! super-block sums come out already in lanes, exact, with no horizontal reduction.
//!
//! Integer paths: plain AVX2 sums `maddubs` pairs in i16 for as many registers as cannot
//! overflow (`I16_REGS`), then `madd`s them with the scale pair (exact i32); AVX-VNNI forms
//! each sub-block's exact i32 sum with `vpdpbusd` (two chains) and multiplies it by the
//! scale with `pmulld`. Both give the same integers, hence the same bits as `vec_dot`.

use core::arch::x86_64::*;

use super::kquants::{
    matvec8, q2k_codes, q3k_codes, q3k_scales, scales_mins, vec_dot, Q8K_BSUMS, Q8K_BYTES, Q8K_QS,
};
pub(super) use super::kquants::{KBlock, Q2K, Q3K, Q4K, Q5K, Q6K};
use super::simd::{f16_at, load256};

/// The per-row parameters of one super-block, as vectors (transposed by the pack).
pub(super) struct Params {
    /// Sub-block scales as i32, eight per vector (the first `SUBS / 8` are used).
    pub scales: [__m256i; 2],
    /// Lane k: the i16 pair that multiplies activation bsums pair k
    /// (`bsums[2k], bsums[2k+1]`).
    pub offsets: __m256i,
    pub d: f32,
    pub dmin: f32,
}

/// A k-quant weight format as the tiles see it.
pub(super) trait KQuant: KBlock {
    /// Sub-blocks with their own scale: 8 of 32 values, or 16 of 16 (Q6_K).
    const SUBS: usize;
    /// Code registers (4 values per lane) whose `maddubs` pair sums may be added in i16:
    /// each pair is at most 2 * max_code * 128, so `I16_REGS * 2 * max_code * 128 <= 32767`.
    const I16_REGS: usize;
    /// Vectors per packed super-block record: codes, scales, offsets, d, dmin.
    const REC: usize = 64 + Self::SUBS + 8 + 2;
    /// For formats without mins whose codes are stored with an offset (Q6_K: 32, Q3_K: 4):
    /// its log2; the offset pairs times the activation sums, shifted by it, are subtracted.
    const CODE_OFFSET_SHIFT: i32 = 0;

    /// The 256 codes (u8) of the super-block at `p`, in element order, 32 per register.
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    unsafe fn codes(p: *const u8) -> [__m256i; 8];

    /// The scales, offset pairs and float scales of the super-block at `p`.
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    unsafe fn params(p: *const u8) -> Params;
}

/// Scales and mins pairs of a Q4_K/Q5_K super-block (d, dmin, 12 scale bytes at 0..16).
///
/// # Safety
/// AVX2+FMA+F16C present; `p` valid for 16 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn params_q45k(p: *const u8) -> Params {
    // SAFETY: d at 0..2, dmin at 2..4, scales at 4..16 (contract).
    let (packed, d, dmin) = unsafe {
        (
            scales_mins(&*p.add(4).cast::<[u8; 12]>()),
            f16_at(p),
            f16_at(p.add(2)),
        )
    };
    let scales = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(packed as i64));
    let mins = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((packed >> 64) as i64));
    Params {
        scales: [scales, _mm256_setzero_si256()],
        // (min_k, min_k): both bsums of sub-block k meet its min.
        offsets: _mm256_or_si256(mins, _mm256_slli_epi32(mins, 16)),
        d,
        dmin,
    }
}

impl KQuant for Q4K {
    const SUBS: usize = 8;
    const I16_REGS: usize = 8; // 8 * 2 * 15 * 128 = 30720

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        let m4 = _mm256_set1_epi8(0x0F);
        let mut out = [_mm256_setzero_si256(); 8];
        for j in 0..4 {
            // SAFETY: qs at 16..144: 32 bytes per 64 values, low nibbles first.
            let bits = unsafe { load256(p.add(16 + 32 * j)) };
            out[2 * j] = _mm256_and_si256(bits, m4);
            out[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        }
        out
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn params(p: *const u8) -> Params {
        // SAFETY: forwarded contract.
        unsafe { params_q45k(p) }
    }
}

impl KQuant for Q5K {
    const SUBS: usize = 8;
    const I16_REGS: usize = 4; // 4 * 2 * 31 * 128 = 31744

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        let m4 = _mm256_set1_epi8(0x0F);
        let one = _mm256_set1_epi8(1);
        let two = _mm256_set1_epi8(2);
        // SAFETY: qh at 16..48, qs at 48..176.
        let mut qh = unsafe { load256(p.add(16)) };
        let mut out = [_mm256_setzero_si256(); 8];
        for j in 0..4 {
            // SAFETY: as above.
            let bits = unsafe { load256(p.add(48 + 32 * j)) };
            // Bits 2j, 2j+1 of qh[l] (bits 0, 1 after the shifts) are the fifth bits.
            let lo = _mm256_and_si256(bits, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            out[2 * j] = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
            out[2 * j + 1] = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(qh, two), 3));
            qh = _mm256_srli_epi16(qh, 2);
        }
        out
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn params(p: *const u8) -> Params {
        // SAFETY: forwarded contract.
        unsafe { params_q45k(p) }
    }
}

impl KQuant for Q6K {
    const SUBS: usize = 16;
    const I16_REGS: usize = 2; // 2 * 2 * 63 * 128 = 32256
    const CODE_OFFSET_SHIFT: i32 = 5;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        let m4 = _mm256_set1_epi8(0x0F);
        let m2 = _mm256_set1_epi8(0x03);
        let mut out = [_mm256_setzero_si256(); 8];
        for h in 0..2 {
            // SAFETY: ql at 0..128, qh at 128..192.
            let (ql0, ql1, qh) = unsafe {
                (
                    load256(p.add(64 * h)),
                    load256(p.add(64 * h + 32)),
                    load256(p.add(128 + 32 * h)),
                )
            };
            let high = |shift: i32| {
                let v = match shift {
                    0 => qh,
                    2 => _mm256_srli_epi16(qh, 2),
                    4 => _mm256_srli_epi16(qh, 4),
                    _ => _mm256_srli_epi16(qh, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(v, m2), 4)
            };
            out[4 * h] = _mm256_or_si256(_mm256_and_si256(ql0, m4), high(0));
            out[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), high(2));
            out[4 * h + 2] =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), high(4));
            out[4 * h + 3] =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), high(6));
        }
        out
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn params(p: *const u8) -> Params {
        // SAFETY: scales (i8) at 192..208, d (f16) at 208..210.
        unsafe {
            let sc = _mm_loadu_si128(p.add(192).cast());
            Params {
                scales: [
                    _mm256_cvtepi8_epi32(sc),
                    _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(sc, sc)),
                ],
                // (scale_2k, scale_2k+1) as i16 pairs: the sign-extended bytes in order.
                offsets: _mm256_cvtepi8_epi16(sc),
                d: f16_at(p.add(208)),
                dmin: 0.0,
            }
        }
    }
}

impl KQuant for Q2K {
    const SUBS: usize = 16;
    const I16_REGS: usize = 4; // 4 * 2 * 3 * 128 = 3072

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        // SAFETY: forwarded contract.
        unsafe { q2k_codes(p) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn params(p: *const u8) -> Params {
        // SAFETY: scales (low nibble) and mins (high nibble) at 0..16, d and dmin at 80..84.
        unsafe {
            let packed = _mm_loadu_si128(p.cast());
            let m4 = _mm_set1_epi8(0x0F);
            let sc = _mm_and_si128(packed, m4);
            let mins = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
            Params {
                scales: [
                    _mm256_cvtepu8_epi32(sc),
                    _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(sc, sc)),
                ],
                // (min_2k, min_2k+1): the mins of the two 16-value sub-blocks of bsums pair k.
                offsets: _mm256_cvtepu8_epi16(mins),
                d: f16_at(p.add(80)),
                dmin: f16_at(p.add(82)),
            }
        }
    }
}

impl KQuant for Q3K {
    const SUBS: usize = 16;
    const I16_REGS: usize = 4; // 4 * 2 * 7 * 128 = 7168
    const CODE_OFFSET_SHIFT: i32 = 2;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        // SAFETY: forwarded contract.
        unsafe { q3k_codes(p) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn params(p: *const u8) -> Params {
        // SAFETY: the packed scales at 96..108, d at 108..110.
        unsafe {
            let sc = _mm_sub_epi8(q3k_scales(p), _mm_set1_epi8(32));
            Params {
                scales: [
                    _mm256_cvtepi8_epi32(sc),
                    _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(sc, sc)),
                ],
                // (scale_2k, scale_2k+1): the codes' +4 comes back as 4x these times bsums.
                offsets: _mm256_cvtepi8_epi16(sc),
                d: f16_at(p.add(108)),
                dmin: 0.0,
            }
        }
    }
}

macro_rules! kquant_tiles {
    ($level:ident, $features:literal, $vnni:ident) => {
        /// The tile of one instruction-set level (see the module docs).
        pub(super) mod $level {
            use core::arch::x86_64::*;

            use super::{matvec8, vec_dot, KQuant, Q8K_BSUMS, Q8K_BYTES, Q8K_QS};
            use crate::kernel_set::TileArgs;
            use crate::x86::simd::{transpose8_epi32, $vnni as Dot, Vnni};

            /// Activation rows sharing one weight register.
            const NR: usize = 4;

            /// [`micro`]'s summation orders. `GEMV`: one f32 step per super-block,
            /// `acc += scaled * (d * d_act)` and `macc += mins * (dmin * d_act)`, `acc - macc`
            /// at the end (llama.cpp's repacked Q4_K gemv; our Q4_K `vec_dot`).
            const GEMV: u8 = 0;
            /// llama.cpp's tiled k-quant GEMM: `t = d * scaled - dmin * mins` (fused) per
            /// super-block, then `acc += t * d_act` (`reference::vec_dot_batch_order`).
            const TILED: u8 = 1;
            /// llama.cpp's repacked Q4_K gemm (`ggml_gemm_q4_K_8x8_q8_K`): like `GEMV`, but one
            /// f32 step per pair of sub-blocks (64 values).
            const REPACK_GEMM: u8 = 2;

            /// Unpacks `count <= 8` rows of `nb` super-blocks at `w + r * ws` into `out`
            /// (`L::REC * nb` vectors); missing rows are zero.
            ///
            /// # Safety
            /// Features present; those rows are readable; `out` has `L::REC * nb` vectors.
            #[target_feature(enable = $features)]
            unsafe fn pack<L: KQuant>(
                nb: usize,
                w: *const u8,
                ws: usize,
                count: usize,
                plain_scales: bool,
                out: &mut [__m256i],
            ) {
                for (b, rec) in out.chunks_exact_mut(L::REC).take(nb).enumerate() {
                    let x = w.wrapping_add(b * L::W_BYTES);
                    let zero = _mm256_setzero_si256();
                    // [piece][row]: transposed below into [lane group][row lane].
                    let mut codes = [[zero; 8]; 8];
                    let mut scales = [[zero; 8]; 2];
                    let mut offsets = [zero; 8];
                    let (mut d, mut dmin) = ([0f32; 8], [0f32; 8]);
                    for r in 0..count {
                        // SAFETY: super-block b of row r < count is readable (contract).
                        let (c, p) = unsafe { (L::codes(x.add(r * ws)), L::params(x.add(r * ws))) };
                        for (piece, cr) in c.iter().enumerate() {
                            codes[piece][r] = *cr;
                        }
                        for (h, sr) in p.scales.iter().enumerate() {
                            scales[h][r] = if plain_scales {
                                *sr
                            } else {
                                // The scale in both i16 halves, for `madd`.
                                let low = _mm256_and_si256(*sr, _mm256_set1_epi32(0xFFFF));
                                _mm256_or_si256(low, _mm256_slli_epi32(*sr, 16))
                            };
                        }
                        offsets[r] = p.offsets;
                        d[r] = p.d;
                        dmin[r] = p.dmin;
                    }
                    for (piece, rows) in codes.iter().enumerate() {
                        rec[8 * piece..8 * piece + 8].copy_from_slice(&transpose8_epi32(rows));
                    }
                    for h in 0..L::SUBS / 8 {
                        let t = transpose8_epi32(&scales[h]);
                        rec[64 + 8 * h..64 + 8 * h + 8].copy_from_slice(&t);
                    }
                    let o = 64 + L::SUBS;
                    rec[o..o + 8].copy_from_slice(&transpose8_epi32(&offsets));
                    // SAFETY: 32-byte arrays; loadu has no alignment requirement.
                    unsafe {
                        rec[o + 8] = _mm256_castps_si256(_mm256_loadu_ps(d.as_ptr()));
                        rec[o + 9] = _mm256_castps_si256(_mm256_loadu_ps(dmin.as_ptr()));
                    }
                }
            }

            /// i32 at `p` in every lane.
            ///
            /// # Safety
            /// `p` valid for 4 bytes.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn bcast(p: *const u8) -> __m256i {
                // SAFETY: forwarded contract; unaligned read.
                _mm256_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
            }

            /// One packed group (`count` valid rows) x activation rows `act + jj * stride`
            /// (`na` valid); writes `out[jj * out_stride + r]` for the valid ones, summed in
            /// `ORDER` (see [`GEMV`], [`TILED`], [`REPACK_GEMM`]); the integer sums are
            /// exact on every path.
            ///
            /// # Safety
            /// Features present; `wp` holds `L::REC * nb` vectors; `na >= 1` activation rows
            /// of `nb` Q8_K blocks at `act + jj * stride`; the outputs are writable.
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn micro<L: KQuant, const ORDER: u8>(
                nb: usize,
                wp: *const __m256i,
                act: *const u8,
                stride: usize,
                out: *mut f32,
                out_stride: usize,
                count: usize,
                na: usize,
            ) {
                let regs = 64 / L::SUBS;
                // Sub-blocks per f32 step: the whole super-block, or (REPACK_GEMM) a pair.
                let step = if ORDER == REPACK_GEMM { 2 } else { L::SUBS };
                let mut acc = [_mm256_setzero_ps(); NR];
                let mut macc = [_mm256_setzero_ps(); NR];
                // Missing activation rows re-read the last valid one (results dropped).
                let rows: [*const u8; NR] =
                    core::array::from_fn(|jj| act.wrapping_add(jj.min(na - 1) * stride));
                for b in 0..nb {
                    // SAFETY: record b of the pack and block b of each activation row exist
                    // (contract); reads stay inside them (layouts in the module docs).
                    unsafe {
                        let wr = wp.add(b * L::REC);
                        let y: [*const u8; NR] =
                            core::array::from_fn(|jj| rows[jj].add(b * Q8K_BYTES));
                        let dw = _mm256_castsi256_ps(*wr.add(64 + L::SUBS + 8));
                        let dmin = _mm256_castsi256_ps(*wr.add(64 + L::SUBS + 9));
                        let mut blk = [_mm256_setzero_si256(); NR];
                        // Register pairs, in loops without conditions (so they unroll):
                        // `gi` is the code register, `4 * gi` its activation offset.
                        for j in 0..L::SUBS {
                            let sc = *wr.add(64 + j);
                            let first = j * regs;
                            if Dot::PRESENT {
                                // (This level runs only where `Dot` is present.) Two chains per
                                // row: vpdpbusd's latency, not its throughput, bounds one chain.
                                let mut even = [_mm256_setzero_si256(); NR];
                                let mut odd = [_mm256_setzero_si256(); NR];
                                for gp in 0..regs / 2 {
                                    let gi = first + 2 * gp;
                                    let (w0, w1) = (*wr.add(gi), *wr.add(gi + 1));
                                    for jj in 0..NR {
                                        let q = y[jj].add(Q8K_QS + 4 * gi);
                                        even[jj] = Dot::dpbusd(even[jj], w0, bcast(q));
                                        odd[jj] = Dot::dpbusd(odd[jj], w1, bcast(q.add(4)));
                                    }
                                }
                                for jj in 0..NR {
                                    let s = _mm256_add_epi32(even[jj], odd[jj]);
                                    blk[jj] = _mm256_add_epi32(blk[jj], _mm256_mullo_epi32(s, sc));
                                }
                            } else {
                                for chunk in 0..regs / L::I16_REGS {
                                    let mut acc16 = [_mm256_setzero_si256(); NR];
                                    for gp in 0..L::I16_REGS / 2 {
                                        let gi = first + chunk * L::I16_REGS + 2 * gp;
                                        let (w0, w1) = (*wr.add(gi), *wr.add(gi + 1));
                                        for jj in 0..NR {
                                            let q = y[jj].add(Q8K_QS + 4 * gi);
                                            let p0 = _mm256_maddubs_epi16(w0, bcast(q));
                                            let p1 = _mm256_maddubs_epi16(w1, bcast(q.add(4)));
                                            let p = _mm256_add_epi16(p0, p1);
                                            acc16[jj] = _mm256_add_epi16(acc16[jj], p);
                                        }
                                    }
                                    for jj in 0..NR {
                                        let s = _mm256_madd_epi16(acc16[jj], sc);
                                        blk[jj] = _mm256_add_epi32(blk[jj], s);
                                    }
                                }
                            }
                            if (j + 1) % step != 0 {
                                continue;
                            }
                            // The f32 step over sub-blocks `j + 1 - step ..= j` (offset
                            // pairs: the whole super-block's eight, or this pair's two).
                            let (k0, k1) = if step == L::SUBS {
                                (0, 8)
                            } else {
                                (j - 1, j + 1)
                            };
                            for jj in 0..NR {
                                let mut off = _mm256_setzero_si256();
                                for k in k0..k1 {
                                    let o = _mm256_madd_epi16(
                                        *wr.add(64 + L::SUBS + k),
                                        bcast(y[jj].add(Q8K_BSUMS + 4 * k)),
                                    );
                                    off = _mm256_add_epi32(off, o);
                                }
                                let da = _mm256_set1_ps(y[jj].cast::<f32>().read_unaligned());
                                // Codes stored +32 (Q6_K) or +4 (Q3_K): the offsets take that
                                // many times the activation sums back.
                                let s = if L::HAS_MIN {
                                    blk[jj]
                                } else {
                                    let shift = _mm_cvtsi32_si128(L::CODE_OFFSET_SHIFT);
                                    _mm256_sub_epi32(blk[jj], _mm256_sll_epi32(off, shift))
                                };
                                let s = _mm256_cvtepi32_ps(s);
                                if ORDER == TILED {
                                    // t = d*scaled - dmin*mins (fused), one fma by da.
                                    let mut t = _mm256_mul_ps(dw, s);
                                    if L::HAS_MIN {
                                        t = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(off), t);
                                    }
                                    acc[jj] = _mm256_fmadd_ps(t, da, acc[jj]);
                                } else {
                                    acc[jj] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, da), acc[jj]);
                                    if L::HAS_MIN {
                                        let m = _mm256_cvtepi32_ps(off);
                                        let dm = _mm256_mul_ps(dmin, da);
                                        macc[jj] = _mm256_fmadd_ps(m, dm, macc[jj]);
                                    }
                                }
                                blk[jj] = _mm256_setzero_si256();
                            }
                        }
                    }
                }
                for jj in 0..na.min(NR) {
                    let v = if L::HAS_MIN && ORDER != TILED {
                        _mm256_sub_ps(acc[jj], macc[jj])
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

            /// [`micro`] in ggml's eight-lane order (Q5_K and Q6_K only; see `kquants`): code
            /// register `gi` holds positions `4 * (gi % 8)..+4` of 32-value chunk `gi / 8`,
            /// so its scaled products go to ggml lane `gi % 8`, kept per activation row as a
            /// vector over the eight weight rows, one ggml lane at a time (so its sums stay
            /// in registers); both levels use `maddubs` + `madd` (exact, so the same integers
            /// as `vec_dot`; no i16 accumulation across registers, which would mix lanes), then
            /// eight f32 lanes per pair. About 1.4x the time of [`micro`]'s order.
            ///
            /// # Safety
            /// As [`micro`].
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn micro_lanes<L: KQuant>(
                nb: usize,
                wp: *const __m256i,
                act: *const u8,
                stride: usize,
                out: *mut f32,
                out_stride: usize,
                count: usize,
                na: usize,
            ) {
                let regs = 64 / L::SUBS;
                let mut acc = [[_mm256_setzero_ps(); 8]; NR];
                let mut summs = [_mm256_setzero_ps(); NR];
                // Missing activation rows re-read the last valid one (results dropped).
                let rows: [*const u8; NR] =
                    core::array::from_fn(|jj| act.wrapping_add(jj.min(na - 1) * stride));
                for b in 0..nb {
                    // SAFETY: record b of the pack and block b of each activation row exist
                    // (contract); reads stay inside them (layouts in the module docs).
                    unsafe {
                        let wr = wp.add(b * L::REC);
                        let y: [*const u8; NR] =
                            core::array::from_fn(|jj| rows[jj].add(b * Q8K_BYTES));
                        let dw = _mm256_castsi256_ps(*wr.add(64 + L::SUBS + 8));
                        let d: [__m256; NR] = core::array::from_fn(|jj| {
                            _mm256_mul_ps(_mm256_set1_ps(y[jj].cast::<f32>().read_unaligned()), dw)
                        });
                        // One ggml lane at a time, so its NR integer sums stay in registers.
                        for lane in 0..8 {
                            // Offset pair `lane`: Q6_K's -32 term of this ggml lane (its
                            // CODE_OFFSET_SHIFT, as in `micro`);
                            // Q4_K/Q5_K's mins of sub-block `lane` (into `summs` below).
                            let mut s: [__m256i; NR] = core::array::from_fn(|jj| {
                                if L::HAS_MIN {
                                    _mm256_setzero_si256()
                                } else {
                                    let o = _mm256_madd_epi16(
                                        *wr.add(64 + L::SUBS + lane),
                                        bcast(y[jj].add(Q8K_BSUMS + 4 * lane)),
                                    );
                                    let shift = _mm_cvtsi32_si128(L::CODE_OFFSET_SHIFT);
                                    _mm256_sub_epi32(
                                        _mm256_setzero_si256(),
                                        _mm256_sll_epi32(o, shift),
                                    )
                                }
                            });
                            for chunk in 0..8 {
                                let gi = 8 * chunk + lane;
                                // The scale in both i16 halves (the pack's format for these).
                                let (w0, sc) = (*wr.add(gi), *wr.add(64 + gi / regs));
                                for jj in 0..NR {
                                    let q = bcast(y[jj].add(Q8K_QS + 4 * gi));
                                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(w0, q), sc);
                                    s[jj] = _mm256_add_epi32(s[jj], p);
                                }
                            }
                            for jj in 0..NR {
                                let f = _mm256_cvtepi32_ps(s[jj]);
                                acc[jj][lane] = _mm256_fmadd_ps(d[jj], f, acc[jj][lane]);
                            }
                        }
                        if L::HAS_MIN {
                            let dmin = _mm256_castsi256_ps(*wr.add(64 + L::SUBS + 9));
                            let sign = _mm256_set1_ps(-0.0);
                            for jj in 0..NR {
                                let mut off = _mm256_setzero_si256();
                                for k in 0..8 {
                                    let o = _mm256_madd_epi16(
                                        *wr.add(64 + L::SUBS + k),
                                        bcast(y[jj].add(Q8K_BSUMS + 4 * k)),
                                    );
                                    off = _mm256_add_epi32(off, o);
                                }
                                let da = _mm256_set1_ps(y[jj].cast::<f32>().read_unaligned());
                                let nm = _mm256_xor_ps(_mm256_mul_ps(da, dmin), sign);
                                summs[jj] = _mm256_fmadd_ps(nm, _mm256_cvtepi32_ps(off), summs[jj]);
                            }
                        }
                    }
                }
                for jj in 0..na.min(NR) {
                    // hsum_float_8 per row, lane-wise: ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
                    let a = &acc[jj];
                    let r: [__m256; 4] = core::array::from_fn(|i| _mm256_add_ps(a[i + 4], a[i]));
                    let v = _mm256_add_ps(_mm256_add_ps(r[0], r[2]), _mm256_add_ps(r[1], r[3]));
                    let v = _mm256_add_ps(v, summs[jj]);
                    let mut lanes = [0f32; 8];
                    // SAFETY: a 32-byte array; storeu has no alignment requirement.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
                    for (r, &x) in lanes.iter().enumerate().take(count) {
                        // SAFETY: output (r, jj) is writable (contract).
                        unsafe { *out.add(jj * out_stride + r) = x };
                    }
                }
            }

            /// The whole tile: a matvec runs eight rows at a time through `kquants::matvec8`
            /// (streaming; a pack would cost more than it saves), a GEMM through the packed
            /// microkernel.
            ///
            /// # Safety
            /// As [`crate::kernel_set::TileFn`] for a weight type of family `L`.
            #[target_feature(enable = $features)]
            pub(in crate::x86) unsafe fn tile<L: KQuant>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                if t.acts == 1 {
                    let (w, a, o, ws) =
                        (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr(), t.w_stride);
                    let mut r = 0;
                    while r + 8 <= t.rows {
                        // SAFETY: rows r..r+8 and outputs r..r+8 lie inside the validated
                        // tile (TileFn contract).
                        unsafe { matvec8::<L>(t.n / 256, w.add(r * ws), ws, a, o.add(r)) };
                        r += 8;
                    }
                    for r in r..t.rows {
                        // SAFETY: row r and output r are inside the validated tile; `vec_dot`
                        // reads only the row's first `n` values.
                        unsafe {
                            let row =
                                core::slice::from_raw_parts(w.add(r * ws), t.w.len() - r * ws);
                            *o.add(r) = vec_dot::<L>(t.n, row, t.act);
                        }
                    }
                    return;
                }
                // SAFETY: forwarded contract.
                unsafe { gemm::<L, GEMV>(t, out, out_stride) }
            }

            /// The tile in `reference::vec_dot_batch_order`'s order: llama.cpp's repacked gemm
            /// for Q4_K ([`REPACK_GEMM`]), its tiled GEMM for Q5_K and Q6_K ([`TILED`]).
            ///
            /// # Safety
            /// As [`crate::kernel_set::TileFn`] for a weight type of family `L`.
            #[target_feature(enable = $features)]
            pub(in crate::x86) unsafe fn batch_tile<L: KQuant>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                // SAFETY: forwarded contract.
                unsafe {
                    // Q4_K is the one family summed lane per row (not in ggml's lanes).
                    if L::GGML_LANES {
                        gemm::<L, TILED>(t, out, out_stride)
                    } else {
                        gemm::<L, REPACK_GEMM>(t, out, out_stride)
                    }
                }
            }

            /// The GEMM part of [`tile`].
            ///
            /// # Safety
            /// As [`tile`].
            #[target_feature(enable = $features)]
            unsafe fn gemm<L: KQuant, const ORDER: u8>(
                t: &TileArgs<'_>,
                out: &mut [f32],
                out_stride: usize,
            ) {
                // `micro_lanes` (ggml's eight-lane vec_dot order) madds the scales in i16
                // halves on every level; `micro` on the VNNI level multiplies plain i32 ones.
                let lanes = L::GGML_LANES && ORDER == GEMV;
                let plain_scales = Dot::PRESENT && !lanes;
                let nb = t.n / 256;
                let (w, a, o, ws) = (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr(), t.w_stride);
                // Per-thread scratch for one packed group, reused across calls (a fresh
                // allocation page-faults on every call).
                thread_local! {
                    static GROUP: core::cell::RefCell<Vec<__m256i>> =
                        const { core::cell::RefCell::new(Vec::new()) };
                }
                GROUP.with(|cell| {
                    let mut group = cell.borrow_mut();
                    group.clear();
                    group.resize(nb * L::REC, _mm256_setzero_si256());
                    let mut r0 = 0;
                    while r0 < t.rows {
                        let count = (t.rows - r0).min(8);
                        // SAFETY: rows r0..r0+count are inside the validated tile; `group`
                        // has `nb * L::REC` vectors.
                        unsafe {
                            pack::<L>(nb, w.add(r0 * ws), ws, count, plain_scales, &mut group)
                        };
                        let mut j0 = 0;
                        while j0 < t.acts {
                            // SAFETY: activation rows j0..acts and weight rows r0..r0+count
                            // and their outputs are inside the validated tile.
                            unsafe {
                                let kernel = if lanes {
                                    micro_lanes::<L>
                                } else {
                                    micro::<L, ORDER>
                                };
                                kernel(
                                    nb,
                                    group.as_ptr(),
                                    a.add(j0 * t.act_stride),
                                    t.act_stride,
                                    o.add(j0 * out_stride + r0),
                                    out_stride,
                                    count,
                                    t.acts - j0,
                                )
                            };
                            j0 += NR;
                        }
                        r0 += count;
                    }
                });
            }
        }
    };
}

kquant_tiles!(avx2, "avx2,fma,f16c", NoVnni);
// AVX-VNNI's `vpdpbusd` is inline assembly (`simd::AvxVnni`), so its level compiles with the
// AVX2 features; its set is offered only where `x86::kernel_sets` detects AVX-VNNI.
kquant_tiles!(vnni, "avx2,fma,f16c", AvxVnni);
// The AVX-512 level compiles with AVX512VL as well: 32 vector registers for the microkernels.
kquant_tiles!(
    avx512,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Avx512Vnni
);
