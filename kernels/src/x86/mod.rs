//! AVX2 + FMA + F16C kernels (x86_64). Compiled for every x86_64 build with
//! `#[target_feature(enable = "avx2,fma,f16c")]`, so a build without `-C target-cpu=native`
//! still runs them; `kernel_sets` offers them only when the CPU has all three features.

use crate::dispatch::{KernelSet, QuantizeActFn, TileFn, VecDotFn};
use crate::GgmlType;

const VEC_DOT: &[(GgmlType, VecDotFn)] = &[];
const TILE: &[(GgmlType, TileFn)] = &[];
const QUANTIZE_ACT: &[(GgmlType, QuantizeActFn)] = &[];

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
