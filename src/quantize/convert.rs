//! Converting one tensor's rows from one type to another: dequantize to f32, quantize again,
//! rows in parallel. Every row is independent, so the bytes do not depend on how rows are
//! split between threads.
//!
//! Like llama-quantize, data that is not finite is refused rather than written: an input row
//! holding NaN or infinity (ggml's `ggml_validate_row_data` on load: "tensor has invalid data"),
//! and an output row whose scales overflow (the same check after quantizing: "quantized data
//! validation failed"). ggml checks the f16 scale fields of each block; a non-finite scale
//! multiplies every value of its block, so checking the dequantized values is the same test.

use rayon::prelude::*;

use crate::kernels::reference::{dequantize_row, quantize_row};
use crate::kernels::GgmlType;
use crate::{Error, Result};

/// Values handled per parallel task: llama.cpp's chunk size (32 * 512), enough to amortise
/// the task overhead and small enough to balance the work across threads.
const VALUES_PER_TASK: usize = 32 * 512;

/// A tensor's rows: the bytes and how to read them.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// The tensor's name, for errors.
    pub name: &'a str,
    pub ty: GgmlType,
    pub data: &'a [u8],
    pub row_len: usize,
    pub n_rows: usize,
}

impl Rows<'_> {
    fn error(&self, ty: GgmlType, reason: String) -> Error {
        Error::TensorType {
            name: self.name.to_string(),
            ty,
            reason,
        }
    }

    fn row_bytes(&self, ty: GgmlType) -> Result<usize> {
        ty.row_bytes(self.row_len as u64)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b > 0)
            .ok_or_else(|| self.error(ty, format!("rows of {} are not whole blocks", self.row_len)))
    }

    /// Bytes per row, after checking that `data` holds exactly `n_rows` of them.
    fn checked_row_bytes(&self) -> Result<usize> {
        let row = self.row_bytes(self.ty)?;
        let expected = row.checked_mul(self.n_rows);
        if expected != Some(self.data.len()) {
            return Err(self.error(
                self.ty,
                format!(
                    "holds {} bytes, {} rows of {} need {expected:?}",
                    self.data.len(),
                    self.n_rows,
                    self.row_len
                ),
            ));
        }
        Ok(row)
    }

    fn rows_per_task(&self) -> usize {
        (VALUES_PER_TASK / self.row_len.max(1)).max(1)
    }

    /// Decodes row `index` (bytes `src`) into `values` and checks it is finite.
    fn decode(&self, index: usize, src: &[u8], values: &mut [f32]) -> Result<()> {
        dequantize_row(self.ty, src, values)
            .map_err(|e| self.error(self.ty, format!("cannot dequantize: {e}")))?;
        if values.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(self.error(
                self.ty,
                format!("invalid data: row {index} holds a NaN or infinite value"),
            ))
        }
    }
}

/// Whether ggml checks the values of this type (integer tensors are taken as they are).
fn is_checked(ty: GgmlType) -> bool {
    !matches!(
        ty,
        GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64 | GgmlType::F64
    )
}

/// Checks that a tensor that is copied unchanged holds only finite values, as llama-quantize
/// checks every tensor it loads.
pub fn check_rows(rows: &Rows<'_>) -> Result<()> {
    if !is_checked(rows.ty) || rows.n_rows == 0 {
        return Ok(());
    }
    let in_row = rows.checked_row_bytes()?;
    let per_task = rows.rows_per_task();
    rows.data
        .par_chunks(in_row * per_task)
        .enumerate()
        .try_for_each_init(
            || vec![0f32; rows.row_len],
            |values, (task, src)| -> Result<()> {
                for (i, s) in src.chunks_exact(in_row).enumerate() {
                    rows.decode(task * per_task + i, s, values)?;
                }
                Ok(())
            },
        )
}

/// Converts `rows` to `to`, returning the new bytes.
pub fn convert_rows(rows: &Rows<'_>, to: GgmlType) -> Result<Vec<u8>> {
    let in_row = rows.checked_row_bytes()?;
    let out_row = rows.row_bytes(to)?;
    let out_len = out_row
        .checked_mul(rows.n_rows)
        .ok_or_else(|| rows.error(to, "output size overflows".into()))?;
    let mut out = vec![0u8; out_len];
    if out_len == 0 {
        return Ok(out);
    }
    let per_task = rows.rows_per_task();
    out.par_chunks_mut(out_row * per_task)
        .zip(rows.data.par_chunks(in_row * per_task))
        .enumerate()
        .try_for_each_init(
            || (vec![0f32; rows.row_len], vec![0f32; rows.row_len]),
            |(values, check), (task, (dst, src))| -> Result<()> {
                let pairs = dst.chunks_exact_mut(out_row).zip(src.chunks_exact(in_row));
                for (i, (d, s)) in pairs.enumerate() {
                    let index = task * per_task + i;
                    rows.decode(index, s, values)?;
                    quantize_row(to, values, d)
                        .map_err(|e| rows.error(to, format!("cannot quantize to {to}: {e}")))?;
                    dequantize_row(to, d, check)
                        .map_err(|e| rows.error(to, format!("cannot dequantize: {e}")))?;
                    if !check.iter().all(|v| v.is_finite()) {
                        return Err(rows.error(
                            to,
                            format!(
                                "quantized data validation failed: row {index} does not fit {to} \
                                 (a scale overflows; the weights are too large)"
                            ),
                        ));
                    }
                }
                Ok(())
            },
        )?;
    Ok(out)
}
