//! AVX2 + FMA + F16C kernels (x86_64). Compiled for every x86_64 build with
//! `#[target_feature(enable = "avx2,fma,f16c")]`, so a build without `-C target-cpu=native`
//! still runs them; `kernel_sets` offers them only when the CPU has all three features.
//!
//! Three levels share these kernels: `avx2`, and `avxvnni` and `avx512` whose tiles form their
//! exact integer sums with `vpdpbusd` (VEX- and EVEX-encoded, `simd::Vnni`) in place of
//! `maddubs` + `madd`. All three compute the same bits.

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

/// The tile tables of one level: `$tiles` is the level's instantiation of the generic tile
/// modules. Every level's integer sums are exact, so all
/// of them compute the same bits as the AVX2 one (and as `vec_dot`).
macro_rules! level_tables {
    ($tables:ident, $tiles:ident) => {
        mod $tables {
            use super::{float, kquant_tile, kquants, legacy, legacy_lanes, legacy_pairs};
            use super::{legacy_tile, GgmlType, TileFn};

            pub(super) const TILE: &[(GgmlType, TileFn)] = &[
                (GgmlType::Q4_0, legacy_tile::$tiles::tile::<legacy::Q4_0>),
                (GgmlType::MXFP4, legacy_tile::$tiles::tile::<legacy::Mxfp4>),
                (GgmlType::IQ4_NL, legacy_tile::$tiles::tile::<legacy::Iq4Nl>),
                (GgmlType::Q4_1, legacy_lanes::$tiles::tile::<legacy::Q4_1>),
                (GgmlType::Q5_0, legacy_lanes::$tiles::tile::<legacy::Q5_0>),
                (GgmlType::Q5_1, legacy_lanes::$tiles::tile::<legacy::Q5_1>),
                (GgmlType::Q8_0, legacy_lanes::$tiles::tile::<legacy::Q8_0>),
                (
                    GgmlType::Q4_K,
                    kquant_tile::$tiles::tile::<kquant_tile::Q4K>,
                ),
                (
                    GgmlType::Q5_K,
                    kquant_tile::$tiles::tile::<kquant_tile::Q5K>,
                ),
                (
                    GgmlType::Q6_K,
                    kquant_tile::$tiles::tile::<kquant_tile::Q6K>,
                ),
                (GgmlType::IQ4_XS, kquants::rows_tile::<kquants::Iq4Xs>),
                (GgmlType::Q2_K, kquants::rows_tile::<kquants::Q2K>),
                (GgmlType::Q3_K, kquants::rows_tile::<kquants::Q3K>),
            ];

            /// Tiles in llama.cpp's batch orders (`reference::vec_dot_batch_order`), for the
            /// activation rows `matmul::batch_order_rows` gives them.
            pub(super) const BATCH_TILE: &[(GgmlType, TileFn)] = &[
                (GgmlType::F32, float::batch_tile::<float::F32>),
                (GgmlType::F16, float::batch_tile::<float::F16>),
                (GgmlType::MXFP4, legacy_pairs::batch_tile::<legacy::Mxfp4>),
                (GgmlType::IQ4_NL, legacy_pairs::batch_tile::<legacy::Iq4Nl>),
                (
                    GgmlType::Q4_K,
                    kquant_tile::$tiles::batch_tile::<kquant_tile::Q4K>,
                ),
                (
                    GgmlType::Q5_K,
                    kquant_tile::$tiles::batch_tile::<kquant_tile::Q5K>,
                ),
                (
                    GgmlType::Q6_K,
                    kquant_tile::$tiles::batch_tile::<kquant_tile::Q6K>,
                ),
                (
                    GgmlType::IQ4_XS,
                    kquants::tiled_order_tile::<kquants::Iq4Xs>,
                ),
                (
                    GgmlType::Q2_K,
                    kquant_tile::$tiles::batch_tile::<kquant_tile::Q2K>,
                ),
                (
                    GgmlType::Q3_K,
                    kquant_tile::$tiles::batch_tile::<kquant_tile::Q3K>,
                ),
            ];

            /// Row tiles (one f32 lane per pair, `reference::vec_dot_row_order`) for the types
            /// whose ordinary tiles keep ggml's 8-lane order: faster, and no output depends on
            /// the tile's shape.
            pub(super) const ROW_TILE: &[(GgmlType, TileFn)] = &[
                (GgmlType::Q4_1, legacy_tile::$tiles::tile::<legacy::Q4_1>),
                (GgmlType::Q5_0, legacy_tile::$tiles::tile::<legacy::Q5_0>),
                (GgmlType::Q5_1, legacy_tile::$tiles::tile::<legacy::Q5_1>),
                (GgmlType::Q8_0, legacy_tile::$tiles::tile::<legacy::Q8_0>),
            ];
        }
    };
}

level_tables!(avx2_tables, avx2);
level_tables!(vnni_tables, vnni);
level_tables!(avx512_tables, avx512);

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
        tile: avx2_tables::TILE,
        batch_orders: true,
        batch_tile: avx2_tables::BATCH_TILE,
        quantize_act: QUANTIZE_ACT,
        row_tile: avx2_tables::ROW_TILE,
    };
    let mut sets = Vec::new();
    if has_avx512_vnni() {
        sets.push(KernelSet {
            name: "avx512",
            tile: avx512_tables::TILE,
            batch_tile: avx512_tables::BATCH_TILE,
            row_tile: avx512_tables::ROW_TILE,
            ..avx2_set
        });
    }
    if has_avx_vnni() {
        sets.push(KernelSet {
            name: "avxvnni",
            tile: vnni_tables::TILE,
            batch_tile: vnni_tables::BATCH_TILE,
            row_tile: vnni_tables::ROW_TILE,
            ..avx2_set
        });
    }
    sets.push(avx2_set);
    sets
}

/// Every feature the avx512 level's kernels are compiled for (AVX512F, BW, VL, VNNI): its
/// `vpdpbusd` on ymm registers needs VL beside VNNI, and the compiler may pick any F, BW or VL
/// instruction for the rest. The macro also checks that the operating system saves the AVX-512
/// state.
fn has_avx512_vnni() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// AVX-VNNI (CPUID leaf 7, sub-leaf 1, EAX bit 4); the YMM state it needs is already implied
/// by the AVX2 detection. Read directly from CPUID: one bit, the same on every toolchain.
fn has_avx_vnni() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 7 is only read when the maximum basic
    // leaf reported by leaf 0 includes it. (Newer Rust made these functions safe.)
    #[allow(unused_unsafe)]
    unsafe {
        __cpuid(0).eax >= 7 && (__cpuid_count(7, 1).eax >> 4) & 1 == 1
    }
}
