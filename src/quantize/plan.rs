//! What llama-quantize would write for a file: every tensor in output order with the type it
//! gets, and the metadata with llama.cpp's changes.

use super::rules::{self, MixParams, MixState};
use super::{FileType, QuantizeOptions};
use crate::gguf::{GgufFile, Metadata, Value};
use crate::kernels::GgmlType;
use crate::{Error, Result};

/// `general.quantization_version`: the version of the k-quant/legacy block layouts
/// (ggml's `GGML_QNT_VERSION`).
pub const QUANTIZATION_VERSION: u32 = 2;

/// Keys of split files, which a single output file must not carry.
const SPLIT_KEYS: &[&str] = &["split.no", "split.count", "split.tensors.count"];

/// One tensor of the output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTensor {
    /// Its name.
    pub name: String,
    /// Its type in the input.
    pub from: GgmlType,
    /// Its type in the output (equal to `from` when copied unchanged).
    pub to: GgmlType,
    /// Its shape, ne0 first, with trailing dimensions of 1 dropped as ggml writes them.
    pub dims: Vec<u64>,
    /// Whether the mix's type did not tile the rows and a fallback type was taken.
    pub fell_back: bool,
}

impl PlannedTensor {
    /// Length of one row.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

/// The hyperparameters a mix looks at, from the file's metadata.
pub fn mix_params(meta: &Metadata) -> Result<MixParams> {
    let arch = meta.get_str("general.architecture")?.to_string();
    let n_layer = meta.get_u32(&format!("{arch}.block_count"))?;
    // Head counts may be per-layer arrays; the mixes use layer 0's.
    let first = |key: &str| -> Result<Option<u32>> {
        match meta.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(a
                .get(0)
                .and_then(|v| v.as_u64())
                .and_then(|x| u32::try_from(x).ok())),
            Some(_) => meta.opt_u32(key),
        }
    };
    let n_head = first(&format!("{arch}.attention.head_count"))?.unwrap_or(0);
    let n_head_kv = first(&format!("{arch}.attention.head_count_kv"))?.unwrap_or(n_head);
    let n_expert = meta.opt_u32(&format!("{arch}.expert_count"))?.unwrap_or(0);
    Ok(MixParams {
        arch,
        n_layer,
        n_head,
        n_head_kv,
        n_expert,
    })
}

/// A tensor as the planner sees it: name, type, shape (ne0 first).
#[derive(Clone, Copy, Debug)]
pub struct TensorDesc<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    pub dims: &'a [u64],
}

/// Decides every tensor's output type, in llama-quantize's output order. `params` is needed
/// only for mixes (`pure == false`).
pub fn plan_tensors(
    tensors: &[TensorDesc<'_>],
    ftype: FileType,
    pure: bool,
    params: Option<&MixParams>,
) -> Result<Vec<PlannedTensor>> {
    let mut order: Vec<&TensorDesc<'_>> = tensors.iter().collect();
    order.sort_by(|a, b| rules::output_order(a.name, b.name));

    let default = ftype.default_type();
    let mut mix = match (pure, params) {
        (false, Some(p)) if rules::is_quantized(default) => {
            Some((p, MixState::new(p, order.iter().map(|t| t.name))))
        }
        (false, None) if rules::is_quantized(default) => {
            return Err(Error::InvalidArgument {
                what: "a non-pure mix needs the model's hyperparameters".into(),
            })
        }
        _ => None,
    };

    let mut planned = Vec::with_capacity(order.len());
    for t in order {
        let dims = trimmed_dims(t.dims);
        let row_len = dims.first().copied().unwrap_or(1);
        let (to, fell_back) = if !rules::allows_quantization(t.name, t.dims) {
            (t.ty, false)
        } else if !rules::is_quantized(default) {
            (default, false)
        } else {
            let chosen = match &mut mix {
                Some((p, state)) => {
                    let ne2 = t.dims.get(2).copied().unwrap_or(1);
                    rules::mix_type(state, p, ftype, t.name, row_len, ne2)?
                }
                None => default,
            };
            let to = rules::fallback(chosen, row_len, t.name)?;
            (to, to != chosen)
        };
        planned.push(PlannedTensor {
            name: t.name.to_string(),
            from: t.ty,
            to,
            dims,
            fell_back,
        });
    }
    Ok(planned)
}

/// Plans a whole file: see [`plan_tensors`]; the hyperparameters are read only for mixes
/// (`options.pure` off). The other options do not change the plan.
pub fn plan(
    input: &GgufFile,
    ftype: FileType,
    options: &QuantizeOptions<'_>,
) -> Result<Vec<PlannedTensor>> {
    let pure = options.pure;
    let params = if pure || !rules::is_quantized(ftype.default_type()) {
        None
    } else {
        Some(mix_params(input.metadata())?)
    };
    let descs: Vec<TensorDesc<'_>> = input
        .tensors()
        .map(|t| TensorDesc {
            name: &t.name,
            ty: t.ty,
            dims: &t.dims,
        })
        .collect();
    plan_tensors(&descs, ftype, pure, params.as_ref())
}

/// The output metadata: the input's keys in order, without split keys, with
/// `general.quantization_version` and then `general.file_type` moved to the end (llama.cpp's
/// `gguf_set_val_u32` removes a key and appends it).
pub fn output_metadata(input: &Metadata, ftype: FileType) -> Vec<(String, Value)> {
    const QV: &str = "general.quantization_version";
    const FT: &str = "general.file_type";
    let mut out: Vec<(String, Value)> = input
        .iter()
        .filter(|(k, _)| *k != QV && *k != FT && !SPLIT_KEYS.contains(k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    out.push((QV.to_string(), Value::U32(QUANTIZATION_VERSION)));
    out.push((FT.to_string(), Value::U32(ftype.id())));
    out
}

/// ggml writes `ggml_n_dims` dimensions: trailing 1s are dropped.
fn trimmed_dims(dims: &[u64]) -> Vec<u64> {
    let n = rules::n_dims(dims).min(dims.len().max(1));
    let mut out: Vec<u64> = dims.iter().copied().take(n).collect();
    if out.is_empty() {
        out.push(1);
    }
    out
}
