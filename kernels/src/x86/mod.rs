//! AVX2 + FMA + F16C kernels (x86_64). Compiled for every x86_64 build with
//! `#[target_feature(enable = "avx2,fma,f16c")]`, so a build without `-C target-cpu=native`
//! still runs them; `kernel_sets` offers them only when the CPU has all three features.

mod float;
mod kquant_tile;
mod kquants;
mod legacy;
mod legacy_lanes;
mod legacy_pairs;
mod legacy_tile;
mod quantize;
mod simd;
pub(crate) mod vecmath;

use crate::kernel_set::{KernelSet, QuantizeActFn, TileFn, VecDotFn};
use crate::GgmlType;

const VEC_DOT: &[(GgmlType, VecDotFn)] = &[
    (GgmlType::Q4_0, legacy::vec_dot::<legacy::Q4_0>),
    (GgmlType::MXFP4, legacy::vec_dot::<legacy::Mxfp4>),
    (GgmlType::IQ4_NL, legacy::vec_dot::<legacy::Iq4Nl>),
    (GgmlType::Q4_1, legacy_lanes::vec_dot::<legacy::Q4_1>),
    (GgmlType::Q5_0, legacy_lanes::vec_dot::<legacy::Q5_0>),
    (GgmlType::Q5_1, legacy_lanes::vec_dot::<legacy::Q5_1>),
    (GgmlType::Q8_0, legacy_lanes::vec_dot::<legacy::Q8_0>),
    (GgmlType::Q4_K, kquants::vec_dot_q4_k),
    (GgmlType::Q5_K, kquants::vec_dot_q5_k),
    (GgmlType::Q6_K, kquants::vec_dot_q6_k),
    (GgmlType::IQ4_XS, kquants::vec_dot::<kquants::Iq4Xs>),
    (GgmlType::Q2_K, kquants::vec_dot::<kquants::Q2K>),
    (GgmlType::Q3_K, kquants::vec_dot::<kquants::Q3K>),
    (GgmlType::F16, float::vec_dot_f16),
    (GgmlType::F32, float::vec_dot_f32),
];

const TILE_AVX2: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_0, legacy_tile::avx2::tile::<legacy::Q4_0>),
    (GgmlType::MXFP4, legacy_tile::avx2::tile::<legacy::Mxfp4>),
    (GgmlType::IQ4_NL, legacy_tile::avx2::tile::<legacy::Iq4Nl>),
    (GgmlType::Q4_1, legacy_lanes::tile::<legacy::Q4_1, false>),
    (GgmlType::Q5_0, legacy_lanes::tile::<legacy::Q5_0, false>),
    (GgmlType::Q5_1, legacy_lanes::tile::<legacy::Q5_1, false>),
    (GgmlType::Q8_0, legacy_lanes::tile::<legacy::Q8_0, false>),
    (GgmlType::Q4_K, kquant_tile::avx2::tile::<kquant_tile::Q4K>),
    (GgmlType::Q5_K, kquant_tile::avx2::tile::<kquant_tile::Q5K>),
    (GgmlType::Q6_K, kquant_tile::avx2::tile::<kquant_tile::Q6K>),
    (GgmlType::IQ4_XS, kquants::rows_tile::<kquants::Iq4Xs>),
    (GgmlType::Q2_K, kquants::rows_tile::<kquants::Q2K>),
    (GgmlType::Q3_K, kquants::rows_tile::<kquants::Q3K>),
];

/// Tiles in llama.cpp's batch orders (`reference::vec_dot_batch_order`), for the activation
/// rows `matmul::batch_order_rows` gives them.
const BATCH_TILE_AVX2: &[(GgmlType, TileFn)] = &[
    (GgmlType::F32, float::batch_tile::<float::F32>),
    (GgmlType::F16, float::batch_tile::<float::F16>),
    (GgmlType::MXFP4, legacy_pairs::batch_tile::<legacy::Mxfp4>),
    (GgmlType::IQ4_NL, legacy_pairs::batch_tile::<legacy::Iq4Nl>),
    (
        GgmlType::Q4_K,
        kquant_tile::avx2::batch_tile::<kquant_tile::Q4K>,
    ),
    (
        GgmlType::Q5_K,
        kquant_tile::avx2::batch_tile::<kquant_tile::Q5K>,
    ),
    (
        GgmlType::Q6_K,
        kquant_tile::avx2::batch_tile::<kquant_tile::Q6K>,
    ),
    (
        GgmlType::IQ4_XS,
        kquants::tiled_order_tile::<kquants::Iq4Xs>,
    ),
    (
        GgmlType::Q2_K,
        kquant_tile::avx2::batch_tile::<kquant_tile::Q2K>,
    ),
    (
        GgmlType::Q3_K,
        kquant_tile::avx2::batch_tile::<kquant_tile::Q3K>,
    ),
];

const BATCH_TILE_VNNI: &[(GgmlType, TileFn)] = &[
    (GgmlType::F32, float::batch_tile::<float::F32>),
    (GgmlType::F16, float::batch_tile::<float::F16>),
    (GgmlType::MXFP4, legacy_pairs::batch_tile::<legacy::Mxfp4>),
    (GgmlType::IQ4_NL, legacy_pairs::batch_tile::<legacy::Iq4Nl>),
    (
        GgmlType::Q4_K,
        kquant_tile::vnni::batch_tile::<kquant_tile::Q4K>,
    ),
    (
        GgmlType::Q5_K,
        kquant_tile::vnni::batch_tile::<kquant_tile::Q5K>,
    ),
    (
        GgmlType::Q6_K,
        kquant_tile::vnni::batch_tile::<kquant_tile::Q6K>,
    ),
    (
        GgmlType::IQ4_XS,
        kquants::tiled_order_tile::<kquants::Iq4Xs>,
    ),
    (
        GgmlType::Q2_K,
        kquant_tile::vnni::batch_tile::<kquant_tile::Q2K>,
    ),
    (
        GgmlType::Q3_K,
        kquant_tile::vnni::batch_tile::<kquant_tile::Q3K>,
    ),
];

/// AVX-VNNI tiles; the integer sums they form are exact, so every value equals the AVX2
/// set's (and `vec_dot`'s) bit for bit.
const TILE_VNNI: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_0, legacy_tile::vnni::tile::<legacy::Q4_0>),
    (GgmlType::MXFP4, legacy_tile::vnni::tile::<legacy::Mxfp4>),
    (GgmlType::IQ4_NL, legacy_tile::vnni::tile::<legacy::Iq4Nl>),
    (GgmlType::Q4_1, legacy_lanes::tile::<legacy::Q4_1, true>),
    (GgmlType::Q5_0, legacy_lanes::tile::<legacy::Q5_0, true>),
    (GgmlType::Q5_1, legacy_lanes::tile::<legacy::Q5_1, true>),
    // Signed codes gain nothing from VNNI here (they still need the sign trick).
    (GgmlType::Q8_0, legacy_lanes::tile::<legacy::Q8_0, false>),
    (GgmlType::Q4_K, kquant_tile::vnni::tile::<kquant_tile::Q4K>),
    (GgmlType::Q5_K, kquant_tile::vnni::tile::<kquant_tile::Q5K>),
    (GgmlType::Q6_K, kquant_tile::vnni::tile::<kquant_tile::Q6K>),
    (GgmlType::IQ4_XS, kquants::rows_tile::<kquants::Iq4Xs>),
    (GgmlType::Q2_K, kquants::rows_tile::<kquants::Q2K>),
    (GgmlType::Q3_K, kquants::rows_tile::<kquants::Q3K>),
];

/// Row tiles (one f32 lane per pair, `reference::vec_dot_row_order`) for the types whose
/// ordinary tiles keep ggml's 8-lane order: faster, and no output depends on the tile's shape.
const ROW_TILE_AVX2: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_1, legacy_tile::avx2::tile::<legacy::Q4_1>),
    (GgmlType::Q5_0, legacy_tile::avx2::tile::<legacy::Q5_0>),
    (GgmlType::Q5_1, legacy_tile::avx2::tile::<legacy::Q5_1>),
    (GgmlType::Q8_0, legacy_tile::avx2::tile::<legacy::Q8_0>),
];

const ROW_TILE_VNNI: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_1, legacy_tile::vnni::tile::<legacy::Q4_1>),
    (GgmlType::Q5_0, legacy_tile::vnni::tile::<legacy::Q5_0>),
    (GgmlType::Q5_1, legacy_tile::vnni::tile::<legacy::Q5_1>),
    (GgmlType::Q8_0, legacy_tile::vnni::tile::<legacy::Q8_0>),
];

const QUANTIZE_ACT: &[(GgmlType, QuantizeActFn)] = &[
    (GgmlType::Q8_0, quantize::quantize_q8_0),
    (GgmlType::Q8_1, quantize::quantize_q8_1),
    (GgmlType::Q8_K, quantize::quantize_q8_k),
    (GgmlType::F16, quantize::quantize_f16),
];

/// The x86 sets this CPU can run, best first.
pub(crate) fn kernel_sets() -> Vec<KernelSet> {
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    if !avx2 {
        return Vec::new();
    }
    let avx2_set = KernelSet {
        name: "avx2",
        vec_dot: VEC_DOT,
        tile: TILE_AVX2,
        batch_orders: true,
        batch_tile: BATCH_TILE_AVX2,
        quantize_act: QUANTIZE_ACT,
        row_tile: ROW_TILE_AVX2,
    };
    if has_avx_vnni() {
        let vnni_set = KernelSet {
            name: "avxvnni",
            tile: TILE_VNNI,
            batch_tile: BATCH_TILE_VNNI,
            row_tile: ROW_TILE_VNNI,
            ..avx2_set
        };
        vec![vnni_set, avx2_set]
    } else {
        vec![avx2_set]
    }
}

/// AVX-VNNI (CPUID leaf 7, sub-leaf 1, EAX bit 4); the YMM state it needs is already implied
/// by the AVX2 detection. Read directly because `is_x86_feature_detected!("avxvnni")` needs a
/// newer Rust than the crate's minimum.
fn has_avx_vnni() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 7 is only read when the maximum basic
    // leaf reported by leaf 0 includes it. (Newer Rust made these functions safe.)
    #[allow(unused_unsafe)]
    unsafe {
        __cpuid(0).eax >= 7 && (__cpuid_count(7, 1).eax >> 4) & 1 == 1
    }
}
