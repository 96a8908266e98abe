//! The kernel tables: the signatures of one level's kernels ([`VecDotFn`], [`TileFn`],
//! [`QuantizeActFn`]), a tile's operands ([`TileArgs`]) and one level's set ([`KernelSet`]).
//! A leaf: the architecture modules fill these tables and [`crate::dispatch`] picks one, so
//! neither imports the other.

use crate::GgmlType;

/// Dot product of one weight row with one activation row.
///
/// `n` values of the weight type (the slot's key) in `w`, and `n` values of
/// `reference::vec_dot_type(ty)` in `act`.
///
/// # Safety
/// The CPU supports the features of the set holding the pointer; `n` is a multiple of the
/// weight type's block size; `w.len() >= row_bytes(ty, n)` and
/// `act.len() >= row_bytes(vec_dot_type(ty), n)`.
pub type VecDotFn = unsafe fn(n: usize, w: &[u8], act: &[u8]) -> f32;

/// Quantizes one f32 row into activation blocks (the slot's key is the activation type).
///
/// Must produce exactly the bytes of `reference::quantize_activations` on every machine.
///
/// # Safety
/// The CPU supports the features of the set holding the pointer; `x.len()` is a multiple of
/// the activation type's block size and `out.len() == row_bytes(act_ty, x.len())`.
pub type QuantizeActFn = unsafe fn(x: &[f32], out: &mut [u8]);

/// Several weight rows against several activation rows: the GEMM microkernel.
///
/// Writes `out[a * out_stride + r] = dot(weight row r, activation row a)` for every
/// `r < t.rows`, `a < t.acts`, and nothing else. The kernel chooses its own register tiling
/// internally and handles any `rows`/`acts` (remainders included).
///
/// Determinism: the value written for (r, a) must not depend on `rows`, `acts` or on the
/// position of (r, a) inside the tile (the GEMM driver's results must not depend on the
/// thread count); ideally it is bit-identical to the set's `vec_dot` for that pair.
///
/// # Safety
/// The CPU supports the features of the set holding the pointer; the sizes satisfy
/// [`TileArgs`]' documented invariants; `out_stride >= t.rows` and
/// `out.len() >= (t.acts - 1) * out_stride + t.rows` when `t.acts > 0`.
pub type TileFn = unsafe fn(t: &TileArgs<'_>, out: &mut [f32], out_stride: usize);

/// The operands of a [`TileFn`]: `rows` weight rows and `acts` activation rows, each of `n`
/// values, laid out at fixed byte strides.
#[derive(Clone, Copy, Debug)]
pub struct TileArgs<'a> {
    /// Values per row; a multiple of the weight type's block size.
    pub n: usize,
    /// Weight row `r` starts at `w[r * w_stride]` (`w_stride >= row_bytes(ty, n)`).
    pub w: &'a [u8],
    /// Bytes between consecutive weight rows.
    pub w_stride: usize,
    /// Number of weight rows.
    pub rows: usize,
    /// Activation row `a` starts at `act[a * act_stride]`.
    pub act: &'a [u8],
    /// Bytes between consecutive activation rows (`>= row_bytes(vec_dot_type(ty), n)`).
    pub act_stride: usize,
    /// Number of activation rows.
    pub acts: usize,
}

/// The kernels of one instruction-set level. Slots are keyed by weight type (`vec_dot`,
/// `tile`) or by activation type (`quantize_act`); a type may appear at most once per slot
/// list (the first entry wins).
#[derive(Clone, Copy)]
pub struct KernelSet {
    /// The level's name, as `TRAMONTANE_KERNELS` spells it: "avx2", "neon", "i8mm".
    pub name: &'static str,
    /// Weight type -> one-row dot product against its `vec_dot_type` activations.
    pub vec_dot: &'static [(GgmlType, VecDotFn)],
    /// Weight type -> multi-row tile kernel.
    pub tile: &'static [(GgmlType, TileFn)],
    /// Whether this level reproduces llama.cpp's x86 batch orders
    /// ([`crate::reference::vec_dot_batch_order`]) for the activation rows
    /// `matmul::batch_order_rows` gives them: through `batch_tile`, or the reference where a
    /// type has no entry there.
    /// Without it (aarch64: llama.cpp has no such kernels there to match) those rows take the
    /// ordinary `tile` path.
    pub batch_orders: bool,
    /// Weight type -> tile kernel bit-identical to [`crate::reference::vec_dot_batch_order`].
    pub batch_tile: &'static [(GgmlType, TileFn)],
    /// Activation type (Q8_0, Q8_1, Q8_K, F16, ...) -> f32 row quantizer.
    pub quantize_act: &'static [(GgmlType, QuantizeActFn)],
    /// Weight type -> tile kernel in an order of this level's choosing, where every output
    /// depends only on its own (weight row, activation row) pair, the same for a single row
    /// as inside any tile ([`crate::reference::vec_dot_row_order`]): for batches whose rows
    /// must not depend on each other. Types without an entry use `tile`, which has that
    /// property too.
    pub row_tile: &'static [(GgmlType, TileFn)],
}

impl std::fmt::Debug for KernelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn types<F>(slots: &[(GgmlType, F)]) -> Vec<GgmlType> {
            slots.iter().map(|s| s.0).collect()
        }
        f.debug_struct("KernelSet")
            .field("name", &self.name)
            .field("vec_dot", &types(self.vec_dot))
            .field("tile", &types(self.tile))
            .field("batch_orders", &self.batch_orders)
            .field("batch_tile", &types(self.batch_tile))
            .field("quantize_act", &types(self.quantize_act))
            .field("row_tile", &types(self.row_tile))
            .finish()
    }
}
