//! Errors of the kernel layer: always about sizes and types, never about models.

use crate::GgmlType;

/// A kernel was called with arguments that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A length is not a whole number of blocks of the type.
    #[error("{what}: {len} values is not a multiple of the {ty} block size {block}")]
    NotBlockMultiple {
        what: &'static str,
        ty: GgmlType,
        len: usize,
        block: usize,
    },
    /// A buffer has the wrong size for the shape it is said to hold.
    #[error("{what}: expected {expected} bytes/values, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The operation is not implemented for this type.
    #[error("{op} is not supported for {ty}")]
    Unsupported { op: &'static str, ty: GgmlType },
}
