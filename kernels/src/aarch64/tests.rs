//! Every NEON kernel against the scalar reference, at every level this CPU can run: "i8mm",
//! "dotprod" and "neon" (run the suite under qemu with the default CPU, `QEMU_CPU=neoverse-n1`
//! and `QEMU_CPU=cortex-a72` to cover the three: `scripts/test-neon` does that).
//!
//! - vec_dot: within `1e-5 * sum |block term|` of `reference::vec_dot` on random rows with
//!   zero blocks and extreme scales; bit-exact integer parts (unit scales, checked against
//!   `reference::block_isums`); tiles bit-identical to the row kernel.
//! - the i8mm level's legacy kernels: bit-identical to a scalar statement of their order (one
//!   f32 chain per pair over the exact block sums); its SMMLA tiles (legacy types, Q4_K, Q6_K)
//!   bit-identical to its row kernels for every shape from 1 x 1 to 9 x 5, at a position
//!   inside a larger matrix with padded strides.
//! - activation quantizers: byte-identical to `reference::quantize_activations`.

use super::kernel_sets;
use crate::formats::to_half;
use crate::kernel_set::{KernelSet, TileArgs};
use crate::{active_kernels, reference, GgmlType};

/// The weight types with NEON vec_dot kernels.
const TYPES: [GgmlType; 14] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::IQ4_NL,
    GgmlType::MXFP4,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_XS,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::F16,
];

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A weight scale: ordinary values, zero, and the f16 extremes (largest finite, smallest
/// subnormal).
fn weight_scale(rng: &mut Rng) -> f32 {
    match rng.below(8) {
        0 => 0.0,
        1 => 65504.0,
        2 => -65504.0,
        3 => 5.960_464_5e-8,
        _ => rng.unit() * 0.05,
    }
}

/// Byte offsets of the f16 scale fields of one block of `ty`.
fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL | GgmlType::IQ4_XS => {
            &[0]
        }
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        _ => &[],
    }
}

/// `blocks` random blocks of `ty` whose f16 scales come from `scale` (random bytes could be
/// NaN there); every fifth block is all zero bytes.
fn weight_row(ty: GgmlType, blocks: usize, rng: &mut Rng, scale: fn(&mut Rng) -> f32) -> Vec<u8> {
    let size = ty.block_bytes();
    let mut row = rng.bytes(blocks * size);
    for (i, block) in row.chunks_exact_mut(size).enumerate() {
        if i % 5 == 4 {
            block.fill(0);
            continue;
        }
        if ty == GgmlType::F16 {
            block.copy_from_slice(&to_half(rng.unit() * 4.0));
        }
        for &off in scale_offsets(ty) {
            block[off..off + 2].copy_from_slice(&to_half(scale(rng)));
        }
        if ty == GgmlType::MXFP4 {
            // An E8M0 exponent (random bytes reach 2^127): 128 (half-scale 1) where the
            // caller wants unit scales, else half-scales 2^-28 .. 2^11.
            let unit = scale(rng) == 1.0;
            block[0] = if unit { 128 } else { 100 + rng.below(40) as u8 };
        }
    }
    row
}

/// `n` activations: random blocks of varied magnitude, some all zero, some with one outlier.
fn activations(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
    for block in x.chunks_mut(32) {
        let magnitude = [0.0, 1e-3, 1.0, 30.0, 1e4][rng.below(5) as usize];
        block.iter_mut().for_each(|v| *v *= magnitude);
        if rng.below(4) == 0 {
            block[rng.below(32) as usize] = 200.0;
        }
    }
    x
}

/// The reference's quantization of `x` into `ty`'s activation type.
fn quantized(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let act_ty = reference::vec_dot_type(ty);
    let mut out = vec![0u8; reference::row_bytes(act_ty, x.len()).unwrap()];
    reference::quantize_activations(act_ty, x, &mut out).unwrap();
    out
}

fn vec_dot_of(set: &KernelSet, ty: GgmlType) -> crate::kernel_set::VecDotFn {
    let found = set.vec_dot.iter().find(|(t, _)| *t == ty);
    found
        .unwrap_or_else(|| panic!("{} has no {ty} vec_dot", set.name))
        .1
}

fn tile_of(set: &KernelSet, ty: GgmlType) -> crate::kernel_set::TileFn {
    let found = set.tile.iter().find(|(t, _)| *t == ty);
    found
        .unwrap_or_else(|| panic!("{} has no {ty} tile", set.name))
        .1
}

fn assert_close(set: &KernelSet, ty: GgmlType, n: usize, w: &[u8], act: &[u8], got: f32) {
    let want = reference::vec_dot(ty, n, w, act).unwrap();
    let terms = reference::block_dot_terms(ty, n, w, act).unwrap();
    let scale: f32 = terms.iter().map(|t| t.abs()).sum();
    // `got == want` also admits the same infinity (an f16 scale of 65504 times large
    // activations overflows in both), and two NaNs the overflow of two opposite terms (Q4_1's
    // `d * sum` against `m * s`, both infinite).
    assert!(
        got == want || (got.is_nan() && want.is_nan()) || (got - want).abs() <= 1e-5 * scale,
        "{} {ty} n={n}: got {got}, reference {want}, sum |terms| {scale}",
        set.name
    );
}

#[test]
fn vec_dot_matches_reference() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for set in kernel_sets() {
        for ty in TYPES {
            let f = vec_dot_of(&set, ty);
            let per_block = ty.block_size();
            for blocks in [1, 2, 3, 8, 13] {
                // F16 "blocks" are single values: use longer rows with odd tails.
                let blocks = if ty == GgmlType::F16 {
                    blocks * 37
                } else {
                    blocks
                };
                let n = blocks * per_block;
                let w = weight_row(ty, blocks, &mut rng, weight_scale);
                let act = quantized(ty, &activations(n.max(32).next_multiple_of(32), &mut rng));
                let act = &act[..reference::row_bytes(reference::vec_dot_type(ty), n).unwrap()];
                // SAFETY: `set` came from `kernel_sets()` (this CPU runs it); exact rows.
                let got = unsafe { f(n, &w, act) };
                assert_close(&set, ty, n, &w, act, got);
            }
        }
    }
}

/// Activation blocks with unit scales and random codes, with consistent Q8_1 sums and Q8_K
/// bsums: the kernel's result is then its integer sum, exactly.
fn unit_activations(act_ty: GgmlType, blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..blocks {
        match act_ty {
            GgmlType::Q8_K => {
                let qs: Vec<i8> = (0..256)
                    .map(|_| (rng.below(255) as i32 - 127) as i8)
                    .collect();
                out.extend_from_slice(&1.0f32.to_le_bytes());
                out.extend(qs.iter().map(|&q| q as u8));
                for g in qs.chunks_exact(16) {
                    let s: i16 = g.iter().map(|&q| i16::from(q)).sum();
                    out.extend_from_slice(&s.to_le_bytes());
                }
            }
            _ => {
                let qs: Vec<i8> = (0..32)
                    .map(|_| (rng.below(255) as i32 - 127) as i8)
                    .collect();
                out.extend_from_slice(&to_half(1.0));
                if act_ty == GgmlType::Q8_1 {
                    let s: i32 = qs.iter().map(|&q| i32::from(q)).sum();
                    out.extend_from_slice(&to_half(s as f32));
                }
                out.extend(qs.iter().map(|&q| q as u8));
            }
        }
    }
    out
}

#[test]
fn integer_parts_are_exact() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for set in kernel_sets() {
        for ty in TYPES.into_iter().filter(|&t| t != GgmlType::F16) {
            let f = vec_dot_of(&set, ty);
            for _ in 0..20 {
                let n = ty.block_size();
                let mut w = weight_row(ty, 1, &mut rng, |_| 1.0);
                let mut w2 = rng.bytes(ty.block_bytes());
                let has_min = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
                if has_min {
                    // m = 0: the block is then only its integer sum.
                    w[2..4].copy_from_slice(&to_half(0.0));
                }
                if ty == GgmlType::Q6_K {
                    // Scales within +-4 keep every partial sum below 2^24 (exact in f32).
                    for s in &mut w[192..208] {
                        *s = (rng.below(9) as i8 - 4) as u8;
                    }
                }
                // Also the all-ones-bits codes, the largest magnitudes the formats hold.
                if rng.below(4) == 0 {
                    let scales = scale_offsets(ty);
                    w2.iter_mut().for_each(|b| *b = 0xff);
                    for &off in scales {
                        w2[off..off + 2].copy_from_slice(&to_half(1.0));
                    }
                    if has_min {
                        w2[2..4].copy_from_slice(&to_half(0.0));
                    }
                    if ty == GgmlType::MXFP4 {
                        w2[0] = 128; // half-scale 1
                    }
                    if ty == GgmlType::Q6_K {
                        w2[192..208].fill(0xfc); // -4
                    }
                    if ty != GgmlType::Q8_0 {
                        w = w2;
                    }
                }
                let act = unit_activations(reference::vec_dot_type(ty), 1, &mut rng);
                let isum = reference::block_isums(ty, n, &w, &act).unwrap()[0];
                let want = isum.scaled as f32 - isum.mins as f32;
                // SAFETY: `set` came from `kernel_sets()`; exact one-block rows.
                let got = unsafe { f(n, &w, &act) };
                assert_eq!(got, want, "{} {ty}: integer sum {isum:?}", set.name);
            }
        }
    }
}

#[test]
fn f16_dot_is_bit_identical_to_the_x86_order() {
    // ggml's AVX2 order, spelled out in scalar code: lanes j % 32 accumulate with fused
    // multiply-adds; (a0 + a2) + (a1 + a3) per lane of 8, halves, pairs; tail in f64.
    let mut rng = Rng(4242);
    for n in [0usize, 5, 32, 96, 100, 1000] {
        let w = weight_row(GgmlType::F16, n, &mut rng, weight_scale);
        let act = weight_row(GgmlType::F16, n, &mut rng, weight_scale);
        let h = |b: &[u8], i: usize| crate::formats::half([b[2 * i], b[2 * i + 1]]);
        let body = n / 32 * 32;
        let mut acc = [[0f32; 8]; 4];
        for i in (0..body).step_by(32) {
            for (k, a) in acc.iter_mut().enumerate() {
                for (l, lane) in a.iter_mut().enumerate() {
                    let j = i + 8 * k + l;
                    *lane = h(&w, j).mul_add(h(&act, j), *lane);
                }
            }
        }
        let s: Vec<f32> = (0..8)
            .map(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]))
            .collect();
        let t: Vec<f32> = (0..4).map(|l| s[l] + s[l + 4]).collect();
        let mut want = f64::from((t[0] + t[1]) + (t[2] + t[3]));
        for j in body..n {
            want += f64::from(h(&w, j) * h(&act, j));
        }
        let f = super::float::f16_f16;
        // SAFETY: NEON is baseline on aarch64; exact rows.
        let got = unsafe { f(n, &w, &act) };
        assert_eq!(got.to_bits(), (want as f32).to_bits(), "n={n}");
    }
}

#[test]
fn q8_0_weights_at_minus_128_do_not_overflow() {
    // Every weight code -128 against every activation code -127: 32 * 16256 = 520192.
    let mut w = vec![0x80u8; 34];
    w[..2].copy_from_slice(&to_half(1.0));
    let mut act = vec![0x81u8; 34];
    act[..2].copy_from_slice(&to_half(1.0));
    for set in kernel_sets() {
        // SAFETY: `set` came from `kernel_sets()`; one-block rows.
        let got = unsafe { vec_dot_of(&set, GgmlType::Q8_0)(32, &w, &act) };
        assert_eq!(got, 520_192.0, "{}", set.name);
    }
}

#[test]
fn tiles_equal_row_kernel_bit_for_bit() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for set in kernel_sets() {
        for ty in TYPES.into_iter().filter(|&t| t != GgmlType::F16) {
            let (row, tile) = (vec_dot_of(&set, ty), tile_of(&set, ty));
            let blocks = 3;
            let n = blocks * ty.block_size();
            let (rows, acts) = (7, 3); // one full group of 4 rows plus a remainder of 3
            let w_stride = ty.block_bytes() * blocks + 5; // padded rows
            let w: Vec<u8> = (0..rows)
                .flat_map(|_| {
                    let mut r = weight_row(ty, blocks, &mut rng, weight_scale);
                    r.extend_from_slice(&[0xAA; 5]);
                    r
                })
                .collect();
            let a_row = reference::row_bytes(reference::vec_dot_type(ty), n).unwrap();
            let act: Vec<u8> = (0..acts)
                .flat_map(|_| quantized(ty, &activations(n, &mut rng)))
                .collect();
            let stride = rows + 2;
            let mut out = vec![f32::NAN; (acts - 1) * stride + rows];
            let t = TileArgs {
                n,
                w: &w,
                w_stride,
                rows,
                act: &act,
                act_stride: a_row,
                acts,
            };
            crate::dispatch::check_tile(ty, &t, out.len(), stride).unwrap();
            // SAFETY: `set` came from `kernel_sets()`; `check_tile` accepted the tile.
            unsafe { tile(&t, &mut out, stride) };
            for a in 0..acts {
                for r in 0..rows {
                    let (wr, ar) = (
                        &w[r * w_stride..][..n / ty.block_size() * ty.block_bytes()],
                        &act[a * a_row..][..a_row],
                    );
                    // SAFETY: as above; exact rows.
                    let want = unsafe { row(n, wr, ar) };
                    let got = out[a * stride + r];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{} {ty} row {r} act {a}",
                        set.name
                    );
                    assert_close(&set, ty, n, wr, ar, got);
                }
                // The padding between output rows is untouched.
                if a + 1 < acts {
                    assert!(out[a * stride + rows..(a + 1) * stride]
                        .iter()
                        .all(|v| v.is_nan()));
                }
            }
        }
    }
}

/// The legacy types, which the i8mm level sums in its own order.
const LEGACY: [GgmlType; 7] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::IQ4_NL,
    GgmlType::MXFP4,
];

/// The i8mm level, where this CPU runs it (`sets_follow_cpu_features` and
/// `TRAMONTANE_EXPECT_KERNELS` make sure that qemu's default CPU does).
fn i8mm_set() -> Option<KernelSet> {
    let set = kernel_sets().into_iter().find(|s| s.name == "i8mm");
    if set.is_none() {
        eprintln!("skipped: this CPU has no i8mm");
    }
    set
}

/// The i8mm level's order for a legacy type, restated in scalar code over the exact block sums
/// of `reference::block_isums`: per block `chain = chain + f32(isum) * (d_w * d_a)` (two
/// roundings, not fused), Q4_1/Q5_1's `m_w * s_a` in a second chain added at the end.
fn i8mm_order(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    let h = |b: &[u8], off: usize| crate::formats::half([b[off], b[off + 1]]);
    let (wb, ab) = (ty.block_bytes(), reference::vec_dot_type(ty).block_bytes());
    let has_min = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
    let (mut chain, mut offs) = (0.0f32, 0.0f32);
    let isums = reference::block_isums(ty, n, w, act).unwrap();
    for (b, isum) in isums.iter().enumerate() {
        let (w, a) = (&w[b * wb..][..wb], &act[b * ab..][..ab]);
        let d_w = if ty == GgmlType::MXFP4 {
            crate::formats::e8m0_to_f32_half(w[0])
        } else {
            h(w, 0)
        };
        let term = isum.scaled as f32 * (d_w * h(a, 0));
        chain += term;
        if has_min {
            let offset = h(w, 2) * h(a, 2);
            offs += offset;
        }
    }
    if has_min {
        chain + offs
    } else {
        chain
    }
}

#[test]
fn i8mm_follows_its_scalar_order_bit_for_bit() {
    let Some(set) = i8mm_set() else {
        return;
    };
    let mut rng = Rng(0x1858_6b3a_77e1_0c4d);
    for ty in LEGACY {
        let f = vec_dot_of(&set, ty);
        for blocks in [1, 2, 3, 8, 13, 40] {
            for _ in 0..4 {
                let n = blocks * ty.block_size();
                let w = weight_row(ty, blocks, &mut rng, weight_scale);
                let act = quantized(ty, &activations(n, &mut rng));
                // SAFETY: `set` came from `kernel_sets()`; exact rows.
                let got = unsafe { f(n, &w, &act) };
                let want = i8mm_order(ty, n, &w, &act);
                assert_eq!(got.to_bits(), want.to_bits(), "{ty} n={n}: {got} vs {want}");
                assert_close(&set, ty, n, &w, &act, got);
            }
        }
    }
}

#[test]
fn i8mm_tiles_equal_its_row_kernels_for_every_small_shape() {
    let Some(set) = i8mm_set() else {
        return;
    };
    let mut rng = Rng(0x7f4a_7c15_9e37_79b9);
    // The tile sits at weight row 2 and activation row 1 of a larger matrix, whose rows are
    // padded (strides longer than a row) and whose output rows are too.
    let (r0, a0) = (2, 1);
    let sentinel = f32::from_bits(0x7fa5_a5a5);
    // The legacy types in the i8mm order, Q4_K and Q6_K in the dotprod level's.
    let k_quants = [GgmlType::Q4_K, GgmlType::Q6_K];
    for ty in LEGACY.into_iter().chain(k_quants) {
        let (row, tile) = (vec_dot_of(&set, ty), tile_of(&set, ty));
        for blocks in [1, 3] {
            let n = blocks * ty.block_size();
            let w_row = ty.block_bytes() * blocks;
            let a_row = reference::row_bytes(reference::vec_dot_type(ty), n).unwrap();
            let (w_stride, act_stride) = (w_row + 7, a_row + 3);
            let (all_rows, all_acts) = (9 + r0 + 1, 5 + a0 + 1);
            let w: Vec<u8> = (0..all_rows)
                .flat_map(|_| {
                    let mut r = weight_row(ty, blocks, &mut rng, weight_scale);
                    r.extend_from_slice(&[0xAA; 7]);
                    r
                })
                .collect();
            let act: Vec<u8> = (0..all_acts)
                .flat_map(|_| {
                    let mut a = quantized(ty, &activations(n, &mut rng));
                    a.extend_from_slice(&[0x55; 3]);
                    a
                })
                .collect();
            for rows in 1..=9 {
                for acts in 1..=5 {
                    let stride = rows + 3;
                    let t = TileArgs {
                        n,
                        w: &w[r0 * w_stride..],
                        w_stride,
                        rows,
                        act: &act[a0 * act_stride..],
                        act_stride,
                        acts,
                    };
                    // The tile writes from the output's second row on (the first is padding).
                    let mut all_out = vec![sentinel; (acts + 2) * stride];
                    let out = &mut all_out[stride..];
                    let len = (acts - 1) * stride + rows;
                    crate::dispatch::check_tile(ty, &t, len, stride).unwrap();
                    // SAFETY: `set` came from `kernel_sets()`; `check_tile` accepted the tile
                    // with an output of `len` floats, and `out` is longer.
                    unsafe { tile(&t, out, stride) };
                    for (i, &got) in all_out.iter().enumerate() {
                        let (a, r) = ((i / stride).wrapping_sub(1), i % stride);
                        if a >= acts || r >= rows {
                            assert_eq!(got.to_bits(), sentinel.to_bits(), "{ty} {rows}x{acts}");
                            continue;
                        }
                        let wr = &w[(r0 + r) * w_stride..][..w_row];
                        let ar = &act[(a0 + a) * act_stride..][..a_row];
                        // SAFETY: as above; exact rows.
                        let want = unsafe { row(n, wr, ar) };
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{ty} n={n} {rows}x{acts} at row {r} act {a}: {got} vs {want}"
                        );
                        if LEGACY.contains(&ty) {
                            let order = i8mm_order(ty, n, wr, ar);
                            assert_eq!(got.to_bits(), order.to_bits(), "{ty} {rows}x{acts}");
                        }
                        assert_close(&set, ty, n, wr, ar, got);
                    }
                }
            }
        }
    }
}

/// Rows that exercise every branch of the quantizers: ordinary, zero, tiny (where `127 / amax`
/// overflows), huge, with NaN and infinities, and exact half-way products.
fn quantizer_rows(n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut rows = vec![activations(n, rng), vec![0.0; n]];
    rows.push((0..n).map(|_| rng.unit() * 1e-38).collect());
    rows.push((0..n).map(|_| rng.unit() * 3e38).collect());
    rows.push((0..n).map(|i| (i % 64) as f32 - 31.5).collect()); // halves after scaling
    rows.push(
        (0..n)
            .map(|i| if i % 3 == 0 { -2.5 } else { 2.5 })
            .collect(),
    ); // ties on amax
    let mut odd = activations(n, rng);
    odd[1] = f32::NAN;
    odd[40] = f32::INFINITY;
    odd[77] = f32::NEG_INFINITY;
    rows.push(odd);
    rows.push(vec![f32::NAN; n]);
    rows
}

#[test]
fn activation_quantizers_are_byte_identical() {
    let mut rng = Rng(0x5555_aaaa_1234_5678);
    let n = 512;
    for set in kernel_sets() {
        for (act_ty, f) in set.quantize_act {
            for (i, x) in quantizer_rows(n, &mut rng).into_iter().enumerate() {
                let len = reference::row_bytes(*act_ty, n).unwrap();
                let mut want = vec![0u8; len];
                reference::quantize_activations(*act_ty, &x, &mut want).unwrap();
                let mut got = vec![0x5Au8; len];
                // SAFETY: `set` came from `kernel_sets()`; exact output length.
                unsafe { f(&x, &mut got) };
                assert_eq!(got, want, "{} {act_ty} row kind {i}", set.name);
            }
        }
    }
}

#[test]
fn sets_follow_cpu_features() {
    let dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
    let i8mm = dotprod && std::arch::is_aarch64_feature_detected!("i8mm");
    let names: Vec<&str> = kernel_sets().iter().map(|s| s.name).collect();
    let expected: &[&str] = if i8mm {
        &["i8mm", "dotprod", "neon"]
    } else if dotprod {
        &["dotprod", "neon"]
    } else {
        &["neon"]
    };
    assert_eq!(names, expected);
    // The dispatcher picks the best set unless TRAMONTANE_KERNELS forces another this CPU runs.
    let best = expected[0];
    let want = match std::env::var("TRAMONTANE_KERNELS")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some(s) if s.eq_ignore_ascii_case("scalar") => "scalar",
        Some(s) => expected
            .iter()
            .copied()
            .find(|n| n.eq_ignore_ascii_case(s))
            .unwrap_or(best),
        None => best,
    };
    assert_eq!(active_kernels(), want);
    // scripts/test-neon names the level each qemu CPU model must reach, so that a CPU model
    // that lost a feature cannot silently turn the matrix into three runs of one level.
    if let Ok(expected) = std::env::var("TRAMONTANE_EXPECT_KERNELS") {
        assert_eq!(active_kernels(), expected.trim());
    }
}
