//! AVX2 + FMA + F16C kernels (x86_64). Compiled for every x86_64 build with
//! `#[target_feature(enable = "avx2,fma,f16c")]`, so a build without `-C target-cpu=native`
//! still runs them; `kernel_sets` offers them only when the CPU has all three features.

mod float;
mod kquants;
mod legacy;
mod quantize;
mod simd;

use crate::dispatch::{KernelSet, QuantizeActFn, TileFn, VecDotFn};
use crate::GgmlType;

const VEC_DOT: &[(GgmlType, VecDotFn)] = &[
    (GgmlType::Q4_0, legacy::vec_dot::<legacy::Q4_0>),
    (GgmlType::Q4_1, legacy::vec_dot::<legacy::Q4_1>),
    (GgmlType::Q5_0, legacy::vec_dot::<legacy::Q5_0>),
    (GgmlType::Q8_0, legacy::vec_dot::<legacy::Q8_0>),
    (GgmlType::Q4_K, kquants::vec_dot_q4_k),
    (GgmlType::Q5_K, kquants::vec_dot_q5_k),
    (GgmlType::Q6_K, kquants::vec_dot_q6_k),
    (GgmlType::F16, float::vec_dot_f16),
];

const TILE: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_0, legacy::tile::<legacy::Q4_0>),
    (GgmlType::Q4_1, legacy::tile::<legacy::Q4_1>),
    (GgmlType::Q5_0, legacy::tile::<legacy::Q5_0>),
    (GgmlType::Q8_0, legacy::tile::<legacy::Q8_0>),
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
    vec![KernelSet {
        name: "avx2",
        vec_dot: VEC_DOT,
        tile: TILE,
        quantize_act: QUANTIZE_ACT,
    }]
}
