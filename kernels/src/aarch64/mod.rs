//! NEON kernels for aarch64, in three levels, offered to [`crate::dispatch`] by [`kernel_sets`]:
//! - "neon": plain NEON, baseline on every aarch64 CPU;
//! - "dotprod": NEON + SDOT (Armv8.2+ dotprod);
//! - "i8mm": NEON + SDOT + SMMLA (Armv8.6 int8 matrix multiply, FEAT_I8MM).
//!
//! Every quantized type has one generic block step (`block::BlockDot`, generic over the
//! `dot::I8Dot` primitive) instantiated four times by `levels!`: row and 4-row tile, at the neon
//! and dotprod levels. The legacy 32-value types build that step on their codes and scales
//! (`legacy::LegacyCodes`), which the i8mm level's kernels (`i8mm`, instantiated by `i8mm!`)
//! read too: SMMLA tiles in ggml's i8mm summation order, with a row kernel of the same bits.
//! The i8mm level takes the dotprod level's k-quant and IQ4_XS kernels (their block sums are
//! exact integers combined by scalar f32 already), with SMMLA tiles of the same bits for Q4_K and
//! Q6_K (`i8mm_k`). F16 x F16 and the activation quantizers have no use for SDOT or SMMLA and
//! exist once.

use crate::kernel_set::{KernelSet, QuantizeActFn, TileArgs, TileFn, VecDotFn};
use crate::GgmlType;

/// Instantiates a block step at both levels: `$row_*` are [`VecDotFn`]s, `$tile_*`
/// [`TileFn`]s.
macro_rules! levels {
    ($k:ty, $row_neon:ident, $row_dotprod:ident, $tile_neon:ident, $tile_dotprod:ident) => {
        /// Plain NEON row kernel ([`VecDotFn`] contract; NEON is always present on aarch64).
        #[target_feature(enable = "neon")]
        pub(crate) unsafe fn $row_neon(n: usize, w: &[u8], act: &[u8]) -> f32 {
            // SAFETY: the caller guarantees NEON.
            unsafe { block::row::<$k, dot::Widening>(n, w, act) }
        }

        /// NEON + dotprod row kernel ([`VecDotFn`] contract; the CPU must have dotprod).
        #[target_feature(enable = "neon,dotprod")]
        pub(crate) unsafe fn $row_dotprod(n: usize, w: &[u8], act: &[u8]) -> f32 {
            // SAFETY: the caller guarantees NEON and dotprod.
            unsafe { block::row::<$k, dot::SDot>(n, w, act) }
        }

        /// Plain NEON tile kernel ([`TileFn`] contract).
        #[target_feature(enable = "neon")]
        pub(crate) unsafe fn $tile_neon(t: &TileArgs<'_>, out: &mut [f32], stride: usize) {
            // SAFETY: the caller guarantees NEON.
            unsafe { block::tile::<$k, dot::Widening>(t, out, stride) }
        }

        /// NEON + dotprod tile kernel ([`TileFn`] contract; the CPU must have dotprod).
        #[target_feature(enable = "neon,dotprod")]
        pub(crate) unsafe fn $tile_dotprod(t: &TileArgs<'_>, out: &mut [f32], stride: usize) {
            // SAFETY: the caller guarantees NEON and dotprod.
            unsafe { block::tile::<$k, dot::SDot>(t, out, stride) }
        }
    };
}

/// Instantiates an i8mm-level row kernel ([`VecDotFn`]) and tile ([`TileFn`]) for a legacy
/// type (`legacy::LegacyCodes`).
macro_rules! i8mm {
    ($k:ty, $row:ident, $tile:ident) => {
        /// i8mm-level row kernel ([`VecDotFn`] contract; the CPU must have dotprod and i8mm):
        /// the i8mm order, bit for bit the level's tile.
        #[target_feature(enable = "neon,dotprod,i8mm")]
        pub(crate) unsafe fn $row(n: usize, w: &[u8], act: &[u8]) -> f32 {
            // SAFETY: the caller guarantees NEON, dotprod and i8mm.
            unsafe { i8mm::row::<$k>(n, w, act) }
        }

        /// i8mm-level tile kernel ([`TileFn`] contract; the CPU must have dotprod and i8mm).
        #[target_feature(enable = "neon,dotprod,i8mm")]
        pub(crate) unsafe fn $tile(t: &TileArgs<'_>, out: &mut [f32], stride: usize) {
            // SAFETY: the caller guarantees NEON, dotprod and i8mm.
            unsafe { i8mm::tile::<$k>(t, out, stride) }
        }
    };
    (tile $k:ty, $tile:ident) => {
        /// i8mm-level tile kernel ([`TileFn`] contract; the CPU must have dotprod and i8mm),
        /// bit for bit the dotprod level's kernels for the type (`i8mm_k`).
        #[target_feature(enable = "neon,dotprod,i8mm")]
        pub(crate) unsafe fn $tile(t: &TileArgs<'_>, out: &mut [f32], stride: usize) {
            // SAFETY: the caller guarantees NEON, dotprod and i8mm.
            unsafe { i8mm::tile::<$k>(t, out, stride) }
        }
    };
}

mod activations;
mod block;
mod dot;
mod float;
mod i8mm;
mod i8mm_k;
mod k_quants;
mod legacy;
mod load;
#[cfg(test)]
mod tests;

use k_quants::{Iq4Xs, Q2K, Q3K, Q4K, Q5K, Q6K};
use legacy::{Iq4Nl, Mxfp4, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};

levels!(
    Q4_0,
    q4_0_neon,
    q4_0_dotprod,
    q4_0_tile_neon,
    q4_0_tile_dotprod
);
levels!(
    Q4_1,
    q4_1_neon,
    q4_1_dotprod,
    q4_1_tile_neon,
    q4_1_tile_dotprod
);
levels!(
    Q5_0,
    q5_0_neon,
    q5_0_dotprod,
    q5_0_tile_neon,
    q5_0_tile_dotprod
);
levels!(
    Q5_1,
    q5_1_neon,
    q5_1_dotprod,
    q5_1_tile_neon,
    q5_1_tile_dotprod
);
levels!(
    Q8_0,
    q8_0_neon,
    q8_0_dotprod,
    q8_0_tile_neon,
    q8_0_tile_dotprod
);
levels!(
    Iq4Nl,
    iq4_nl_neon,
    iq4_nl_dotprod,
    iq4_nl_tile_neon,
    iq4_nl_tile_dotprod
);
levels!(
    Mxfp4,
    mxfp4_neon,
    mxfp4_dotprod,
    mxfp4_tile_neon,
    mxfp4_tile_dotprod
);
levels!(
    Q4K,
    q4_k_neon,
    q4_k_dotprod,
    q4_k_tile_neon,
    q4_k_tile_dotprod
);
levels!(
    Q5K,
    q5_k_neon,
    q5_k_dotprod,
    q5_k_tile_neon,
    q5_k_tile_dotprod
);
levels!(
    Q6K,
    q6_k_neon,
    q6_k_dotprod,
    q6_k_tile_neon,
    q6_k_tile_dotprod
);
levels!(
    Q2K,
    q2_k_neon,
    q2_k_dotprod,
    q2_k_tile_neon,
    q2_k_tile_dotprod
);
levels!(
    Q3K,
    q3_k_neon,
    q3_k_dotprod,
    q3_k_tile_neon,
    q3_k_tile_dotprod
);
levels!(
    Iq4Xs,
    iq4_xs_neon,
    iq4_xs_dotprod,
    iq4_xs_tile_neon,
    iq4_xs_tile_dotprod
);

i8mm!(Q4_0, q4_0_i8mm, q4_0_tile_i8mm);
i8mm!(Q4_1, q4_1_i8mm, q4_1_tile_i8mm);
i8mm!(Q5_0, q5_0_i8mm, q5_0_tile_i8mm);
i8mm!(Q5_1, q5_1_i8mm, q5_1_tile_i8mm);
i8mm!(Q8_0, q8_0_i8mm, q8_0_tile_i8mm);
i8mm!(Iq4Nl, iq4_nl_i8mm, iq4_nl_tile_i8mm);
i8mm!(Mxfp4, mxfp4_i8mm, mxfp4_tile_i8mm);
i8mm!(tile Q4K, q4_k_tile_i8mm);
i8mm!(tile Q6K, q6_k_tile_i8mm);

const NEON_VEC_DOT: &[(GgmlType, VecDotFn)] = &[
    (GgmlType::Q4_0, q4_0_neon),
    (GgmlType::Q4_1, q4_1_neon),
    (GgmlType::Q5_0, q5_0_neon),
    (GgmlType::Q5_1, q5_1_neon),
    (GgmlType::Q8_0, q8_0_neon),
    (GgmlType::MXFP4, mxfp4_neon),
    (GgmlType::IQ4_NL, iq4_nl_neon),
    (GgmlType::Q4_K, q4_k_neon),
    (GgmlType::Q5_K, q5_k_neon),
    (GgmlType::Q6_K, q6_k_neon),
    (GgmlType::IQ4_XS, iq4_xs_neon),
    (GgmlType::Q2_K, q2_k_neon),
    (GgmlType::Q3_K, q3_k_neon),
    (GgmlType::F16, float::f16_f16),
];

const NEON_TILE: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_0, q4_0_tile_neon),
    (GgmlType::Q4_1, q4_1_tile_neon),
    (GgmlType::Q5_0, q5_0_tile_neon),
    (GgmlType::Q5_1, q5_1_tile_neon),
    (GgmlType::Q8_0, q8_0_tile_neon),
    (GgmlType::MXFP4, mxfp4_tile_neon),
    (GgmlType::IQ4_NL, iq4_nl_tile_neon),
    (GgmlType::Q4_K, q4_k_tile_neon),
    (GgmlType::Q5_K, q5_k_tile_neon),
    (GgmlType::Q6_K, q6_k_tile_neon),
    (GgmlType::IQ4_XS, iq4_xs_tile_neon),
    (GgmlType::Q2_K, q2_k_tile_neon),
    (GgmlType::Q3_K, q3_k_tile_neon),
];

const DOTPROD_VEC_DOT: &[(GgmlType, VecDotFn)] = &[
    (GgmlType::Q4_0, q4_0_dotprod),
    (GgmlType::Q4_1, q4_1_dotprod),
    (GgmlType::Q5_0, q5_0_dotprod),
    (GgmlType::Q5_1, q5_1_dotprod),
    (GgmlType::Q8_0, q8_0_dotprod),
    (GgmlType::MXFP4, mxfp4_dotprod),
    (GgmlType::IQ4_NL, iq4_nl_dotprod),
    (GgmlType::Q4_K, q4_k_dotprod),
    (GgmlType::Q5_K, q5_k_dotprod),
    (GgmlType::Q6_K, q6_k_dotprod),
    (GgmlType::IQ4_XS, iq4_xs_dotprod),
    (GgmlType::Q2_K, q2_k_dotprod),
    (GgmlType::Q3_K, q3_k_dotprod),
    (GgmlType::F16, float::f16_f16),
];

const DOTPROD_TILE: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_0, q4_0_tile_dotprod),
    (GgmlType::Q4_1, q4_1_tile_dotprod),
    (GgmlType::Q5_0, q5_0_tile_dotprod),
    (GgmlType::Q5_1, q5_1_tile_dotprod),
    (GgmlType::Q8_0, q8_0_tile_dotprod),
    (GgmlType::MXFP4, mxfp4_tile_dotprod),
    (GgmlType::IQ4_NL, iq4_nl_tile_dotprod),
    (GgmlType::Q4_K, q4_k_tile_dotprod),
    (GgmlType::Q5_K, q5_k_tile_dotprod),
    (GgmlType::Q6_K, q6_k_tile_dotprod),
    (GgmlType::IQ4_XS, iq4_xs_tile_dotprod),
    (GgmlType::Q2_K, q2_k_tile_dotprod),
    (GgmlType::Q3_K, q3_k_tile_dotprod),
];

/// The i8mm level's row kernels: its own for the legacy types, the dotprod level's for the rest.
const I8MM_VEC_DOT: &[(GgmlType, VecDotFn)] = &[
    (GgmlType::Q4_0, q4_0_i8mm),
    (GgmlType::Q4_1, q4_1_i8mm),
    (GgmlType::Q5_0, q5_0_i8mm),
    (GgmlType::Q5_1, q5_1_i8mm),
    (GgmlType::Q8_0, q8_0_i8mm),
    (GgmlType::MXFP4, mxfp4_i8mm),
    (GgmlType::IQ4_NL, iq4_nl_i8mm),
    (GgmlType::Q4_K, q4_k_dotprod),
    (GgmlType::Q5_K, q5_k_dotprod),
    (GgmlType::Q6_K, q6_k_dotprod),
    (GgmlType::IQ4_XS, iq4_xs_dotprod),
    (GgmlType::Q2_K, q2_k_dotprod),
    (GgmlType::Q3_K, q3_k_dotprod),
    (GgmlType::F16, float::f16_f16),
];

/// The i8mm level's tiles: SMMLA for the legacy types, and for Q4_K and Q6_K with the dotprod
/// level's bits (`i8mm_k`), the dotprod level's own for the rest; each matches its row kernel
/// above bit for bit.
const I8MM_TILE: &[(GgmlType, TileFn)] = &[
    (GgmlType::Q4_0, q4_0_tile_i8mm),
    (GgmlType::Q4_1, q4_1_tile_i8mm),
    (GgmlType::Q5_0, q5_0_tile_i8mm),
    (GgmlType::Q5_1, q5_1_tile_i8mm),
    (GgmlType::Q8_0, q8_0_tile_i8mm),
    (GgmlType::MXFP4, mxfp4_tile_i8mm),
    (GgmlType::IQ4_NL, iq4_nl_tile_i8mm),
    (GgmlType::Q4_K, q4_k_tile_i8mm),
    (GgmlType::Q5_K, q5_k_tile_dotprod),
    (GgmlType::Q6_K, q6_k_tile_i8mm),
    (GgmlType::IQ4_XS, iq4_xs_tile_dotprod),
    (GgmlType::Q2_K, q2_k_tile_dotprod),
    (GgmlType::Q3_K, q3_k_tile_dotprod),
];

/// Shared by every level: the quantizers gain nothing from SDOT or SMMLA.
const QUANTIZE_ACT: &[(GgmlType, QuantizeActFn)] = &[
    (GgmlType::Q8_0, activations::quantize_q8_0),
    (GgmlType::Q8_1, activations::quantize_q8_1),
    (GgmlType::Q8_K, activations::quantize_q8_k),
    (GgmlType::F16, float::quantize_f16),
];

/// The plain NEON level.
const NEON: KernelSet = KernelSet {
    name: "neon",
    vec_dot: NEON_VEC_DOT,
    tile: NEON_TILE,
    // llama.cpp has its batch kernels (tiled GEMM, tinyBLAS orders) only for x86.
    batch_orders: false,
    batch_tile: &[],
    quantize_act: QUANTIZE_ACT,
    row_tile: &[],
};

/// The NEON + dotprod level.
const DOTPROD: KernelSet = KernelSet {
    name: "dotprod",
    vec_dot: DOTPROD_VEC_DOT,
    tile: DOTPROD_TILE,
    batch_orders: false,
    batch_tile: &[],
    quantize_act: QUANTIZE_ACT,
    row_tile: &[],
};

/// The NEON + dotprod + i8mm level.
const I8MM: KernelSet = KernelSet {
    name: "i8mm",
    vec_dot: I8MM_VEC_DOT,
    tile: I8MM_TILE,
    batch_orders: false,
    batch_tile: &[],
    quantize_act: QUANTIZE_ACT,
    // Its tiles already give every pair its own order, whatever the tile's shape.
    row_tile: &[],
};

/// The aarch64 sets this CPU can run, best first: `[i8mm, dotprod, neon]` with i8mm (which
/// always comes with dotprod, but the i8mm level runs SDOT too, so both are checked),
/// `[dotprod, neon]` with dotprod only, `[neon]` without (so `TRAMONTANE_KERNELS` can still
/// force a lower level).
pub(crate) fn kernel_sets() -> Vec<KernelSet> {
    let mut sets = Vec::new();
    if !std::arch::is_aarch64_feature_detected!("neon") {
        return sets;
    }
    let dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
    if dotprod && std::arch::is_aarch64_feature_detected!("i8mm") {
        sets.push(I8MM);
    }
    if dotprod {
        sets.push(DOTPROD);
    }
    sets.push(NEON);
    sets
}
