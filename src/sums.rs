//! How a batch sums: in llama.cpp's orders, which depend on the batch (its x86 backend picks
//! other kernels for several rows than for one), or every row as if it were alone, so that a
//! row's results never depend on what else is in the batch (several sequences evaluated
//! together by the batch engine).

use tramontane_kernels::matmul::GgmlOp;

/// How the rows of a batch are summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchSums {
    /// As llama.cpp's x86 backend: bit-identical to it, but a row's bits depend on how many
    /// rows the batch has.
    #[default]
    LlamaCpp,
    /// Every row (token) as if it were alone: matmuls in `vec_dot`'s order, attention with
    /// `ggml_vec_dot_f16`'s.
    PerRow,
}

impl BatchSums {
    /// The matmul operation to use for `op` under these sums.
    pub fn matmul_op(self, op: GgmlOp) -> GgmlOp {
        match self {
            BatchSums::LlamaCpp => op,
            BatchSums::PerRow => GgmlOp::RowIndependent,
        }
    }
}
