//! The integer primitives the quantized kernels are built on: a 16-lane i8 x i8 dot product
//! accumulated into four i32 lanes, in two flavours (plain NEON and SDOT), and for the i8mm
//! level the 2x2 int8 matrix product [`smmla`].
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

/// Armv8.6 int8 matrix multiply (SMMLA): `acc` plus the 2x2 matrix of 8-byte dot products of
/// `a`'s two rows (bytes 0..8 and 8..16) with `b`'s, lane `2 * i + j` += `a_i . b_j`; every
/// product and sum exact in i32. The intrinsic (`vmmlaq_s32`) is unstable on stable Rust, hence
/// the inline assembly, as for [`SDot`]; the kernels that use this run inside
/// `#[target_feature(enable = "neon,dotprod,i8mm")]` functions.
///
/// # Safety
/// The CPU must have i8mm.
#[inline(always)]
pub(super) unsafe fn smmla(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: register-only instruction; the caller guarantees the CPU has i8mm.
    unsafe {
        core::arch::asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}
