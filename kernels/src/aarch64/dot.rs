//! The one integer primitive every quantized kernel is built on: a 16-lane i8 x i8 dot product
//! accumulated into four i32 lanes, in two flavours (plain NEON and SDOT).
//!
//! Kernels are written once, generic over [`I8Dot`], and instantiated inside a
//! `#[target_feature]` wrapper per level, so that both levels share one body and differ only
//! in this primitive. Callers must only rely on the sum of all four lanes: the two flavours
//! spread the products over the lanes differently.

use core::arch::aarch64::*;

/// A 16 x i8 dot product added into an i32x4 accumulator.
pub(super) trait I8Dot {
    /// Returns `acc` plus the products `a[i] * b[i]` distributed over its lanes; the sum of the
    /// returned lanes minus the sum of `acc`'s lanes is exactly `sum(a[i] * b[i])`.
    ///
    /// # Safety
    /// The CPU must support the instructions of the implementing level.
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// Baseline NEON: widening multiplies to i16, then pairwise widening adds to i32. Every i16
/// product fits (|-128 * -128| = 16384) and pairs are only ever added after widening to i32, so
/// nothing overflows even for Q8_0 weights that use -128.
pub(super) struct Widening;

impl I8Dot for Widening {
    #[inline(always)]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let hi = vmull_high_s8(a, b);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

/// Armv8.2 dot product: one SDOT per 16 bytes. The intrinsic is unstable on stable Rust, hence
/// the inline assembly; the kernels that use this run inside `#[target_feature(enable =
/// "neon,dotprod")]` functions.
pub(super) struct SDot;

impl I8Dot for SDot {
    #[inline(always)]
    unsafe fn dot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: register-only instruction; the caller guarantees the CPU has dotprod.
        unsafe {
            core::arch::asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        acc
    }
}
