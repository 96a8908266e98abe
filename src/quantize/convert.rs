//! Converting one tensor's rows from one type to another: dequantize to f32, quantize again,
//! rows in parallel. Every row is independent, so the bytes do not depend on how rows are
//! split between threads.

use rayon::prelude::*;

use crate::kernels::reference::{dequantize_row, quantize_row};
use crate::kernels::GgmlType;
use crate::{Error, Result};

/// Values handled per parallel task: llama.cpp's chunk size (32 * 512), enough to amortise
/// the task overhead and small enough to balance the work across threads.
const VALUES_PER_TASK: usize = 32 * 512;

/// Converts `n_rows` rows of `row_len` values from `from` (bytes in `src`) to `to`, returning the
/// new bytes. `name` is for error messages.
pub fn convert_rows(
    name: &str,
    src: &[u8],
    from: GgmlType,
    to: GgmlType,
    row_len: usize,
    n_rows: usize,
) -> Result<Vec<u8>> {
    let bad = |ty: GgmlType, reason: String| Error::TensorType {
        name: name.to_string(),
        ty,
        reason,
    };
    let row_bytes = |ty: GgmlType| {
        ty.row_bytes(row_len as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| bad(ty, format!("rows of {row_len} are not whole blocks")))
    };
    let (in_row, out_row) = (row_bytes(from)?, row_bytes(to)?);
    let expected_in = in_row.checked_mul(n_rows);
    if expected_in != Some(src.len()) {
        return Err(bad(
            from,
            format!(
                "holds {} bytes, {n_rows} rows of {row_len} need {expected_in:?}",
                src.len()
            ),
        ));
    }
    let out_len = out_row
        .checked_mul(n_rows)
        .ok_or_else(|| bad(to, "output size overflows".into()))?;
    let mut out = vec![0u8; out_len];
    if n_rows == 0 || row_len == 0 {
        return Ok(out);
    }

    let rows_per_task = (VALUES_PER_TASK / row_len).max(1);
    out.par_chunks_mut(out_row * rows_per_task)
        .zip(src.par_chunks(in_row * rows_per_task))
        .try_for_each_init(
            || vec![0f32; row_len],
            |values, (dst, src)| -> Result<()> {
                for (d, s) in dst.chunks_exact_mut(out_row).zip(src.chunks_exact(in_row)) {
                    dequantize_row(from, s, values)
                        .map_err(|e| bad(from, format!("cannot dequantize: {e}")))?;
                    quantize_row(to, values, d)
                        .map_err(|e| bad(to, format!("cannot quantize to {to}: {e}")))?;
                }
                Ok(())
            },
        )?;
    Ok(out)
}
