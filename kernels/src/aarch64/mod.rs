//! NEON kernels for aarch64, in two levels: plain NEON (baseline on every aarch64 CPU) and
//! NEON + dotprod (SDOT, Armv8.2+), picked once per process by runtime detection.
//!
//! Every quantized vec_dot has one generic body (over `dot::I8Dot`) and two entry points made
//! by `levels!`: `*_neon` and `*_dotprod`. F16 x F16 and the activation quantizers have no use
//! for SDOT and exist once.

/// Instantiates a generic vec_dot body at both levels as `unsafe fn(n, w, act) -> f32`.
macro_rules! levels {
    ($m:ident :: $body:ident, $neon:ident, $dotprod:ident) => {
        /// Plain NEON level of the kernel of the same name.
        ///
        /// # Safety
        /// The CPU must have NEON (always true on aarch64). Processes `n / block` blocks, fewer
        /// if either slice runs out.
        #[target_feature(enable = "neon")]
        pub(crate) unsafe fn $neon(n: usize, w: &[u8], act: &[u8]) -> f32 {
            // SAFETY: the caller guarantees NEON.
            unsafe { $m::$body::<$crate::aarch64::dot::Widening>(n, w, act) }
        }

        /// NEON + dotprod level of the kernel of the same name.
        ///
        /// # Safety
        /// The CPU must have NEON and dotprod.
        #[target_feature(enable = "neon,dotprod")]
        pub(crate) unsafe fn $dotprod(n: usize, w: &[u8], act: &[u8]) -> f32 {
            // SAFETY: the caller guarantees NEON and dotprod.
            unsafe { $m::$body::<$crate::aarch64::dot::SDot>(n, w, act) }
        }
    };
}

mod activations;
mod dot;
mod float;
mod k_quants;
mod legacy;
mod load;

pub(crate) use activations::{quantize_q8_0, quantize_q8_1, quantize_q8_k};
pub(crate) use float::f16_f16;

pub(crate) mod vec_dot {
    //! The quantized vec_dot entry points, two levels per weight type.
    use super::{k_quants, legacy};

    levels!(legacy::q4_0_q8_0, q4_0_q8_0_neon, q4_0_q8_0_dotprod);
    levels!(legacy::q4_1_q8_1, q4_1_q8_1_neon, q4_1_q8_1_dotprod);
    levels!(legacy::q5_0_q8_0, q5_0_q8_0_neon, q5_0_q8_0_dotprod);
    levels!(legacy::q8_0_q8_0, q8_0_q8_0_neon, q8_0_q8_0_dotprod);
    levels!(k_quants::q4_k_q8_k, q4_k_q8_k_neon, q4_k_q8_k_dotprod);
    levels!(k_quants::q5_k_q8_k, q5_k_q8_k_neon, q5_k_q8_k_dotprod);
    levels!(k_quants::q6_k_q8_k, q6_k_q8_k_neon, q6_k_q8_k_dotprod);
}
