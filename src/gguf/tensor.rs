//! The tensor index of a GGUF file: name, type, shape and where the bytes are.

use tramontane_kernels::GgmlType;

/// One entry of the tensor index, validated: its bytes lie inside the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. "blk.0.attn_q.weight".
    pub name: String,
    /// The element type.
    pub ty: GgmlType,
    /// The shape, ne0 (the contiguous row length) first, as ggml orders it; 1 to 4 entries.
    pub dims: Vec<u64>,
    /// Offset of the first byte relative to the start of the data section.
    pub offset: u64,
    /// Size in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the dims; checked not to overflow when read).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Length of one row (ne0).
    pub fn ne0(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: the product of every dim after the first.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// The shape written as ggml prints it, e.g. "[576, 49152]".
    pub fn shape_string(&self) -> String {
        format!("{:?}", self.dims)
    }
}

/// A tensor: its index entry and its bytes, borrowed from the file (never copied).
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

impl<'a> Tensor<'a> {
    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        &self.info.name
    }

    /// The element type.
    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }

    /// The shape, ne0 first.
    pub fn dims(&self) -> &'a [u64] {
        &self.info.dims
    }
}
