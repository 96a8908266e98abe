//! Small AVX2 helpers shared by the x86 kernels.

use core::arch::x86_64::*;

/// Transposes eight rows of eight i32 (`m[r]` lane g -> result `g` lane r).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn transpose8_epi32(m: &[__m256i; 8]) -> [__m256i; 8] {
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

/// Per-lane exact sums of eight 8-lane vectors: lane r = sum of the lanes of `v[r]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn reduce8(v: &[__m256i; 8]) -> __m256i {
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

/// Horizontal sum of 8 f32 lanes as ggml's `hsum_float_8` forms it: (high half + low half),
/// then pairwise within the half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Horizontal sum of 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01));
    _mm_cvtsi128_si32(s)
}

/// How far ahead of a matvec pass (bytes from the start of its rows) the next rows are
/// prefetched: whole passes of `stretch` bytes (the rows one pass reads), at least
/// [`PREFETCH_DISTANCE`] so that short rows (576 columns: a pass of a few hundred bytes) are
/// still asked for a DRAM latency or more before they are read.
pub(super) fn prefetch_ahead(stretch: usize) -> usize {
    let stretch = stretch.max(1);
    stretch * PREFETCH_DISTANCE.div_ceil(stretch)
}

/// The least distance of [`prefetch_ahead`], in bytes.
const PREFETCH_DISTANCE: usize = 8192;

/// An IEEE half (little-endian bytes at `p`) converted to f32 in all 8 lanes, via F16C.
///
/// The broadcast load (`vpbroadcastw`) writes a whole register: a scalar insert would merge
/// into a live register and chain every block's conversion to the previous iteration.
///
/// # Safety
/// `p` is valid for reading 2 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_splat(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 2 readable bytes; unaligned read.
    let bits = unsafe { p.cast::<i16>().read_unaligned() };
    _mm256_cvtph_ps(_mm_set1_epi16(i16::from_le(bits)))
}

/// An IEEE half (little-endian bytes at `p`) as f32.
///
/// # Safety
/// `p` is valid for reading 2 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: forwarded contract.
    _mm256_cvtss_f32(unsafe { f16_splat(p) })
}

/// An f32 (little-endian bytes at `p`).
///
/// # Safety
/// `p` is valid for reading 4 bytes.
#[inline]
pub(super) unsafe fn f32_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 4 readable bytes; unaligned read.
    unsafe { p.cast::<f32>().read_unaligned() }
}

/// 32 bytes at `p`.
///
/// # Safety
/// `p` is valid for reading 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load256(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// 16 packed nibbles at `p` as 32 bytes 0..15: low nibbles in bytes 0..16, high nibbles in
/// bytes 16..32 (the ggml element order of Q4_0/Q4_1/Q5_0 blocks).
///
/// # Safety
/// `p` is valid for reading 16 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles32(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes.
    let v = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(p.cast()) });
    let v = _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
}

/// Bit `j` of `bits` as byte `j` (0xFF when set, 0 when clear), for j in 0..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bits_to_bytes(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    let pick = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let v = _mm256_shuffle_epi8(v, pick);
    let mask = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask)
}

/// Sums adjacent i16 pairs into i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn sum_pairs_i16(v: __m256i) -> __m256i {
    _mm256_madd_epi16(v, _mm256_set1_epi16(1))
}

/// How a kernel level forms `acc + sum_{k<4} u8(a[4i+k]) * i8(b[4i+k])` in each i32 lane `i`
/// (`vpdpbusd`): exact, with no i16 intermediate and no saturation. The tiles are generic over
/// it, so one body serves the AVX2, AVX-VNNI and AVX-512 VNNI levels; where `PRESENT` is
/// false they take their `maddubs` + `madd` route instead.
pub(super) trait Vnni {
    /// Whether the level has the instruction (the tiles branch on it at compile time).
    const PRESENT: bool;

    /// `vpdpbusd acc, a, b` on ymm registers.
    ///
    /// # Safety
    /// AVX2 present, and the instruction set of the implementing level.
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i;
}

/// Plain AVX2: no `vpdpbusd`. Its `dpbusd` is an exact emulation (four `madd`s' worth of
/// work), so that it is correct where it is called, but the tiles never call it.
#[derive(Clone, Copy, Debug)]
pub(super) struct NoVnni;

/// AVX-VNNI (Alder Lake and later, Zen 5): the VEX-encoded `vpdpbusd`.
#[derive(Clone, Copy, Debug)]
pub(super) struct AvxVnni;

/// AVX512-VNNI with AVX512VL (Ice Lake and later Xeons, Zen 4): the EVEX-encoded `vpdpbusd`
/// on ymm registers, the same exact lanes as AVX-VNNI's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx512Vnni;

impl Vnni for NoVnni {
    const PRESENT: bool = false;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // u8 halves zero-extended and i8 halves sign-extended to i16: each `madd` then sums
        // two products exactly (|255 * -128| * 2 fits i32 and i16 holds every factor).
        let low = _mm256_set1_epi16(0x00ff);
        let a_even = _mm256_and_si256(a, low);
        let a_odd = _mm256_srli_epi16(a, 8);
        let b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);
        let b_odd = _mm256_srai_epi16(b, 8);
        let even = _mm256_madd_epi16(a_even, b_even);
        let odd = _mm256_madd_epi16(a_odd, b_odd);
        _mm256_add_epi32(acc, _mm256_add_epi32(even, odd))
    }
}

impl Vnni for AvxVnni {
    const PRESENT: bool = true;

    /// Inline assembly with an explicit `{vex}`: the VEX form is the one CPUs with AVX-VNNI
    /// but without AVX-512 (Alder Lake's E-cores, Arrow Lake) decode.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        let mut acc = acc;
        // SAFETY: the caller guarantees AVX-VNNI; the instruction only reads and writes these
        // registers.
        unsafe {
            core::arch::asm!(
                "{{vex}} vpdpbusd {acc}, {a}, {b}",
                acc = inout(ymm_reg) acc,
                a = in(ymm_reg) a,
                b = in(ymm_reg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        acc
    }
}

impl Vnni for Avx512Vnni {
    const PRESENT: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, a, b)
    }
}

/// Keeps the compiler from moving work across this point for the accumulators `acc` (an
/// empty instruction sequence that "uses and redefines" them, and that is ordered with every
/// other fence). Without it, LLVM reorders an unrolled GEMM microkernel so that weight
/// registers live across activation rows, and spills them to the stack: about a third slower.
///
/// # Safety
/// AVX present (the registers are ymm).
#[inline]
#[target_feature(enable = "avx")]
pub(super) unsafe fn fence4(acc: &mut [__m256i; 4]) {
    let [a, b, c, d] = acc;
    // SAFETY: the assembly is empty: it reads and writes nothing but names four registers
    // (AVX is present: contract).
    unsafe {
        core::arch::asm!(
            "/* {0} {1} {2} {3} */",
            inout(ymm_reg) * a,
            inout(ymm_reg) * b,
            inout(ymm_reg) * c,
            inout(ymm_reg) * d,
            options(nomem, nostack, preserves_flags),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Vnni` the CPU runs against the lane formula, on extreme and mixed bytes (the
    /// emulation of `NoVnni` included: a wrong sign extension would show at 255 x -128).
    #[test]
    fn dpbusd_matches_the_lane_formula() {
        fn check<V: Vnni>(a: &[u8; 32], b: &[i8; 32], acc: &[i32; 8]) {
            let lanes = |v: __m256i| -> [i32; 8] {
                // SAFETY: both are 32-byte plain-data values.
                unsafe { core::mem::transmute::<__m256i, [i32; 8]>(v) }
            };
            // SAFETY: the caller checked the CPU features; the loads read 32 bytes each.
            let got = unsafe {
                let va = _mm256_loadu_si256(a.as_ptr().cast());
                let vb = _mm256_loadu_si256(b.as_ptr().cast());
                let vc = _mm256_loadu_si256(acc.as_ptr().cast());
                lanes(V::dpbusd(vc, va, vb))
            };
            for (i, &g) in got.iter().enumerate() {
                let want = acc[i]
                    + (0..4)
                        .map(|k| i32::from(a[4 * i + k]) * i32::from(b[4 * i + k]))
                        .sum::<i32>();
                assert_eq!(g, want, "lane {i}");
            }
        }
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..64 {
            let a: [u8; 32] = core::array::from_fn(|i| match round {
                0 => 255,
                1 => i as u8,
                _ => next() as u8,
            });
            let b: [i8; 32] = core::array::from_fn(|_| match round {
                0 => -128,
                _ => next() as i8,
            });
            let acc: [i32; 8] = core::array::from_fn(|_| (next() >> 40) as i32 - (1 << 23));
            check::<NoVnni>(&a, &b, &acc);
            if super::super::has_avx_vnni() {
                check::<AvxVnni>(&a, &b, &acc);
            }
            if super::super::has_avx512_vnni() {
                check::<Avx512Vnni>(&a, &b, &acc);
            }
        }
    }
}
