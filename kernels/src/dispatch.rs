//! Runtime kernel dispatch: one pick per process, by CPU feature detection.
//!
//! # The contract for architecture modules
//!
//! Each architecture module (`x86`, `aarch64`) exposes
//!
//! ```ignore
//! pub(crate) fn kernel_sets() -> Vec<KernelSet>
//! ```
//!
//! returning every [`KernelSet`] the *running* CPU can execute, best first (empty when none,
//! e.g. x86 without AVX2+FMA+F16C). The detection happens inside that function
//! (`is_x86_feature_detected!`, `is_aarch64_feature_detected!`), and a set is only returned
//! when every feature its kernels were compiled for (`#[target_feature(enable = ...)]`) is
//! present. The aarch64 module returns `[i8mm, dotprod, neon]` on a CPU with i8mm,
//! `[dotprod, neon]` on one with dotprod only and `[neon]` without, so that
//! `TRAMONTANE_KERNELS` can still force a lower level.
//!
//! A set may leave any slot empty: the scalar reference ([`crate::reference`]) fills every
//! gap, and a missing tile kernel is replaced by a loop over the set's (or the scalar)
//! `vec_dot`. So an architecture may provide only [`VecDotFn`]s.
//!
//! # SAFETY argument (written once, here)
//!
//! The function pointers in a [`KernelSet`] are `unsafe fn`s compiled with
//! `#[target_feature]`. They are called only from this module, through the process-wide
//! table built by `active()`, and that table only ever holds sets that their own module's
//! `kernel_sets()` returned after checking the CPU features at run time. Every call site
//! below validates the sizes the pointer's documented contract requires (block multiples,
//! buffer lengths, strides) before calling it. Those two facts together discharge the
//! `unsafe` preconditions of every pointer type in this file.
//!
//! # Forcing a level
//!
//! `TRAMONTANE_KERNELS=scalar|avx2|avxvnni|avx512|neon|dotprod|i8mm` (read once, at the first
//! kernel call) forces a level. A level the CPU (or the build's architecture) lacks, or an
//! unknown name, falls back to the best available set; it never executes an unsupported
//! instruction.

use std::sync::OnceLock;

use crate::{reference, GgmlType, KernelError};

pub use crate::kernel_set::{KernelSet, QuantizeActFn, TileArgs, TileFn, VecDotFn};

/// Enough slots for every `GgmlType` discriminant.
const SLOTS: usize = 64;

/// The resolved per-type table of the chosen set: O(1) lookups on the hot path.
struct Active {
    name: &'static str,
    batch_orders: bool,
    vec_dot: [Option<VecDotFn>; SLOTS],
    tile: [Option<TileFn>; SLOTS],
    batch_tile: [Option<TileFn>; SLOTS],
    quantize_act: [Option<QuantizeActFn>; SLOTS],
    row_tile: [Option<TileFn>; SLOTS],
}

fn slot(ty: GgmlType) -> usize {
    // A fieldless enum's discriminant: 0..number of variants, far below SLOTS.
    ty as usize
}

fn resolve<F: Copy>(entries: &[(GgmlType, F)]) -> [Option<F>; SLOTS] {
    let mut table = [None; SLOTS];
    for &(ty, f) in entries {
        if let Some(s) = table.get_mut(slot(ty)) {
            if s.is_none() {
                *s = Some(f);
            }
        }
    }
    table
}

/// Every set this CPU can run, best first (the scalar level is implicit and always last).
fn available_sets() -> Vec<KernelSet> {
    #[allow(unused_mut)]
    let mut sets = Vec::new();
    #[cfg(target_arch = "x86_64")]
    sets.extend(crate::x86::kernel_sets());
    #[cfg(target_arch = "aarch64")]
    sets.extend(crate::aarch64::kernel_sets());
    sets
}

fn choose(requested: Option<&str>, sets: &[KernelSet]) -> Option<KernelSet> {
    match requested {
        Some(name) if name.eq_ignore_ascii_case("scalar") => None,
        Some(name) => sets
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .or_else(|| sets.first())
            .copied(),
        None => sets.first().copied(),
    }
}

impl Active {
    fn scalar() -> Self {
        Active {
            name: "scalar",
            batch_orders: true,
            vec_dot: [None; SLOTS],
            tile: [None; SLOTS],
            batch_tile: [None; SLOTS],
            quantize_act: [None; SLOTS],
            row_tile: [None; SLOTS],
        }
    }

    fn from_set(set: &KernelSet) -> Self {
        Active {
            name: set.name,
            batch_orders: set.batch_orders,
            vec_dot: resolve(set.vec_dot),
            tile: resolve(set.tile),
            batch_tile: resolve(set.batch_tile),
            quantize_act: resolve(set.quantize_act),
            row_tile: resolve(set.row_tile),
        }
    }
}

/// Every level this CPU runs, resolved, best first, the scalar one last.
fn all_levels() -> &'static [Active] {
    static LEVELS: OnceLock<Vec<Active>> = OnceLock::new();
    LEVELS.get_or_init(|| {
        let mut levels: Vec<Active> = available_sets().iter().map(Active::from_set).collect();
        levels.push(Active::scalar());
        levels
    })
}

fn active() -> &'static Active {
    static ACTIVE: OnceLock<&'static Active> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        let requested = std::env::var("TRAMONTANE_KERNELS").ok();
        let sets = available_sets();
        let name = choose(requested.as_deref().map(str::trim), &sets).map_or("scalar", |s| s.name);
        let levels = all_levels();
        levels
            .iter()
            .find(|l| l.name == name)
            // The scalar level is always the last entry, so the list is never empty.
            .unwrap_or(&levels[levels.len() - 1])
    })
}

/// The names of every kernel level this CPU can run, best first, "scalar" last (e.g.
/// `["avx512", "avx2", "scalar"]`): for tests and benchmarks that compare levels.
pub fn available_levels() -> Vec<&'static str> {
    all_levels().iter().map(|l| l.name).collect()
}

fn level(name: &str, ty: GgmlType) -> Result<&'static Active, KernelError> {
    all_levels()
        .iter()
        .find(|l| l.name == name)
        .ok_or(KernelError::Unsupported {
            op: "a kernel level this CPU lacks",
            ty,
        })
}

/// The name of the kernel level this process uses: "scalar", "avx2", "avxvnni", "avx512",
/// "neon", "dotprod" or "i8mm".
pub fn active_kernels() -> &'static str {
    active().name
}

/// Whether the active level computes the bits of llama.cpp's AVX2 build: every x86 SIMD level
/// (`avx2`, `avxvnni`, `avx512`) follows its summation orders operation for operation. The
/// scalar reference sums in f64 and NEON in its own lanes, within the documented bounds.
pub fn follows_llama_cpp_avx2() -> bool {
    cfg!(target_arch = "x86_64") && active().name != "scalar"
}

/// Whether the active set has a SIMD `vec_dot` for weight type `ty` (otherwise the scalar
/// reference serves it).
pub fn has_simd_vec_dot(ty: GgmlType) -> bool {
    matches!(active().vec_dot.get(slot(ty)), Some(Some(_)))
}

fn check_row(what: &'static str, ty: GgmlType, n: usize, len: usize) -> Result<usize, KernelError> {
    let expected = reference::row_bytes(ty, n)?;
    if len != expected {
        return Err(KernelError::LengthMismatch {
            what,
            expected,
            got: len,
        });
    }
    Ok(expected)
}

/// Dot product of one weight row (`n` values of `ty`) with one activation row already in
/// `reference::vec_dot_type(ty)`; the fastest kernel of the active set, else the reference.
pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> Result<f32, KernelError> {
    vec_dot_with(active(), ty, n, w, act)
}

/// [`vec_dot`] with the kernels of the named level (one of [`available_levels`]).
pub fn vec_dot_at(
    level_name: &str,
    ty: GgmlType,
    n: usize,
    w: &[u8],
    act: &[u8],
) -> Result<f32, KernelError> {
    vec_dot_with(level(level_name, ty)?, ty, n, w, act)
}

fn vec_dot_with(
    table: &Active,
    ty: GgmlType,
    n: usize,
    w: &[u8],
    act: &[u8],
) -> Result<f32, KernelError> {
    match table.vec_dot.get(slot(ty)).copied().flatten() {
        Some(f) => {
            check_row("vec_dot weights", ty, n, w.len())?;
            check_row(
                "vec_dot activations",
                reference::vec_dot_type(ty),
                n,
                act.len(),
            )?;
            // SAFETY: the pointer comes from a detected set (module docs) and the two
            // checks above establish the length contract of `VecDotFn`.
            Ok(unsafe { f(n, w, act) })
        }
        None => reference::vec_dot(ty, n, w, act),
    }
}

/// Quantizes an f32 row to activation type `act_ty` exactly as
/// `reference::quantize_activations` does, with the fastest kernel available.
pub fn quantize_activations(
    act_ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), KernelError> {
    match active().quantize_act.get(slot(act_ty)).copied().flatten() {
        Some(f) => {
            let block = act_ty.block_size();
            if !src.len().is_multiple_of(block) {
                return Err(KernelError::NotBlockMultiple {
                    what: "quantize_activations",
                    ty: act_ty,
                    len: src.len(),
                    block,
                });
            }
            check_row("quantize_activations output", act_ty, src.len(), dst.len())?;
            // SAFETY: detected active set (module docs); block multiple and exact output
            // length checked above, as `QuantizeActFn` requires.
            unsafe { f(src, dst) };
            Ok(())
        }
        None => reference::quantize_activations(act_ty, src, dst),
    }
}

/// Checks that `count` rows of `row_len` bytes at `stride` fit in `len` bytes.
fn check_strided(
    what: &'static str,
    count: usize,
    row_len: usize,
    stride: usize,
    len: usize,
) -> Result<(), KernelError> {
    if count == 0 {
        return Ok(());
    }
    if stride < row_len {
        return Err(KernelError::LengthMismatch {
            what,
            expected: row_len,
            got: stride,
        });
    }
    let needed = (count - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(row_len))
        .ok_or(KernelError::LengthMismatch {
            what,
            expected: usize::MAX,
            got: len,
        })?;
    if len < needed {
        return Err(KernelError::LengthMismatch {
            what,
            expected: needed,
            got: len,
        });
    }
    Ok(())
}

/// Validates a tile against its documented invariants for weight type `ty`.
pub fn check_tile(
    ty: GgmlType,
    t: &TileArgs<'_>,
    out_len: usize,
    out_stride: usize,
) -> Result<(), KernelError> {
    let w_row = reference::row_bytes(ty, t.n)?;
    let a_row = reference::row_bytes(reference::vec_dot_type(ty), t.n)?;
    check_strided("tile weights", t.rows, w_row, t.w_stride, t.w.len())?;
    check_strided("tile activations", t.acts, a_row, t.act_stride, t.act.len())?;
    check_strided("tile output", t.acts, t.rows, out_stride, out_len)
}

/// `out[a * out_stride + r] = vec_dot(ty, weight row r, activation row a)` for the whole
/// tile, with the active set's tile kernel, or a loop over its `vec_dot` (or the
/// reference's) when it has none.
pub fn vec_dot_tile(
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    vec_dot_tile_with(active(), ty, t, out, out_stride)
}

/// [`vec_dot_tile`] with the kernels of the named level (one of [`available_levels`]).
pub fn vec_dot_tile_at(
    level_name: &str,
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    vec_dot_tile_with(level(level_name, ty)?, ty, t, out, out_stride)
}

fn vec_dot_tile_with(
    table: &Active,
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    let simd = table.vec_dot.get(slot(ty)).copied().flatten();
    run_tile(&table.tile, ty, t, out, out_stride, |w, act| match simd {
        // SAFETY: detected active set; `w` and `act` are exact rows of `n` values.
        Some(f) => Ok(unsafe { f(t.n, w, act) }),
        None => reference::vec_dot(ty, t.n, w, act),
    })
}

/// Checks the tile, then runs the slot's kernel for `ty` (from `kernels`, one of the
/// level's tables), or, without one, fills it one (weight row, activation row) pair at a
/// time with `dot`, which gets exact rows of `t.n` values.
fn run_tile(
    kernels: &[Option<TileFn>; SLOTS],
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
    dot: impl Fn(&[u8], &[u8]) -> Result<f32, KernelError>,
) -> Result<(), KernelError> {
    check_tile(ty, t, out.len(), out_stride)?;
    if let Some(f) = kernels.get(slot(ty)).copied().flatten() {
        // SAFETY: detected active set (module docs); `check_tile` established the
        // `TileArgs` and output invariants `TileFn` requires.
        unsafe { f(t, out, out_stride) };
        return Ok(());
    }
    let w_row = reference::row_bytes(ty, t.n)?;
    let a_row = reference::row_bytes(reference::vec_dot_type(ty), t.n)?;
    for a in 0..t.acts {
        let act = t
            .act
            .get(a * t.act_stride..a * t.act_stride + a_row)
            .ok_or(KernelError::LengthMismatch {
                what: "tile activations",
                expected: a * t.act_stride + a_row,
                got: t.act.len(),
            })?;
        for r in 0..t.rows {
            let w = t.w.get(r * t.w_stride..r * t.w_stride + w_row).ok_or(
                KernelError::LengthMismatch {
                    what: "tile weights",
                    expected: r * t.w_stride + w_row,
                    got: t.w.len(),
                },
            )?;
            let v = dot(w, act)?;
            if let Some(o) = out.get_mut(a * out_stride + r) {
                *o = v;
            }
        }
    }
    Ok(())
}

/// Like [`vec_dot_tile`], but with the level's row tile for `ty` where it has one (see
/// `KernelSet::row_tile`): every output depends only on its own pair of rows, whatever the
/// tile's shape, including a single activation row. Types without a row tile use
/// [`vec_dot_tile`], whose outputs have that property too.
pub fn vec_dot_tile_rows(
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    vec_dot_tile_rows_with(active(), ty, t, out, out_stride)
}

/// [`vec_dot_tile_rows`] with the kernels of the named level (one of [`available_levels`]).
pub fn vec_dot_tile_rows_at(
    level_name: &str,
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    vec_dot_tile_rows_with(level(level_name, ty)?, ty, t, out, out_stride)
}

fn vec_dot_tile_rows_with(
    table: &Active,
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    if table.row_tile.get(slot(ty)).copied().flatten().is_none() {
        return vec_dot_tile_with(table, ty, t, out, out_stride);
    }
    run_tile(&table.row_tile, ty, t, out, out_stride, |w, act| {
        reference::vec_dot_row_order(ty, t.n, w, act)
    })
}

/// Like [`vec_dot_tile`], but each output in [`reference::vec_dot_batch_order`]'s summation
/// order (types with [`reference::has_batch_order`] only) where the level reproduces the batch
/// orders (`KernelSet::batch_orders`): what the matmul driver uses for the activation rows
/// `matmul::batch_order_rows` gives them.
pub fn vec_dot_tile_batch(
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    vec_dot_tile_batch_with(active(), ty, t, out, out_stride)
}

/// [`vec_dot_tile_batch`] with the kernels of the named level (one of [`available_levels`]).
pub fn vec_dot_tile_batch_at(
    level_name: &str,
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    vec_dot_tile_batch_with(level(level_name, ty)?, ty, t, out, out_stride)
}

fn vec_dot_tile_batch_with(
    table: &Active,
    ty: GgmlType,
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) -> Result<(), KernelError> {
    if !reference::has_batch_order(ty) {
        return Err(KernelError::Unsupported {
            op: "the batch summation order",
            ty,
        });
    }
    if !table.batch_orders {
        return vec_dot_tile_with(table, ty, t, out, out_stride);
    }
    run_tile(&table.batch_tile, ty, t, out, out_stride, |w, act| {
        reference::vec_dot_batch_order(ty, t.n, w, act)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_set(name: &'static str) -> KernelSet {
        KernelSet {
            name,
            vec_dot: &[],
            tile: &[],
            batch_orders: true,
            batch_tile: &[],
            quantize_act: &[],
            row_tile: &[],
        }
    }

    #[test]
    fn forced_level_falls_back_to_best_available() {
        let sets = [fake_set("dotprod"), fake_set("neon")];
        assert_eq!(choose(Some("neon"), &sets).map(|s| s.name), Some("neon"));
        assert_eq!(choose(Some("avx2"), &sets).map(|s| s.name), Some("dotprod"));
        assert_eq!(
            choose(Some("bogus"), &sets).map(|s| s.name),
            Some("dotprod")
        );
        assert_eq!(choose(None, &sets).map(|s| s.name), Some("dotprod"));
        assert!(choose(Some("scalar"), &sets).is_none());
        assert!(choose(Some("avx2"), &[]).is_none());
    }

    #[test]
    fn first_entry_of_a_slot_wins() {
        let t = resolve(&[(GgmlType::Q4_0, 1u8), (GgmlType::Q4_0, 2u8)]);
        assert_eq!(t[slot(GgmlType::Q4_0)], Some(1));
        assert_eq!(t[slot(GgmlType::Q8_0)], None);
    }

    #[test]
    fn every_type_has_a_slot() {
        assert!(GgmlType::all().all(|t| slot(t) < SLOTS));
    }
}
