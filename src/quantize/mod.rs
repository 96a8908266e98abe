//! Requantizing a GGUF model, byte for byte as llama.cpp's `llama-quantize` does without an
//! importance matrix.
//!
//! Every weight llama.cpp would quantize is dequantized to f32 and quantized again to the type
//! the file type's mix (or, with `pure`, the file type's own type) gives it; other tensors are
//! copied. Tensors are written in llama.cpp's order, one at a time through the streaming GGUF
//! writer, so only one output tensor is ever held in memory.
//!
//! ```no_run
//! use tramontane::quantize::{quantize_model, FileType, QuantizeOptions};
//! # fn main() -> tramontane::Result<()> {
//! let input = tramontane::GgufFile::open("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let ftype = FileType::parse("Q4_K").expect("a known type"); // Q4_K_M, as llama-quantize
//! let summary = quantize_model(&input, "target/smollm2.Q4_K_M.gguf", ftype, &QuantizeOptions::default())?;
//! eprintln!("{} tensors requantized", summary.n_converted);
//! # Ok(()) }
//! ```

mod convert;
mod ftype;
mod plan;
mod rules;

use std::io::BufWriter;
use std::path::Path;

pub use crate::output::StaleTemporaries;
pub use convert::{check_rows, convert_rows, Rows};
pub use ftype::FileType;
pub use plan::{
    mix_params, output_metadata, plan, plan_tensors, PlannedTensor, TensorDesc,
    QUANTIZATION_VERSION,
};
pub use rules::{allows_quantization, output_order, Category, MixParams};

use crate::gguf::{GgufFile, GgufWriter};
use crate::output::Output;
use crate::{Error, Result};

/// One tensor done, as reported to [`QuantizeOptions::progress`].
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// 1-based position in the output.
    pub index: usize,
    /// Number of tensors in the output.
    pub count: usize,
    /// The tensor written.
    pub tensor: &'a PlannedTensor,
    /// Its size in the input and in the output.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// How to quantize.
#[derive(Clone, Copy, Default)]
pub struct QuantizeOptions<'a> {
    /// Give every quantizable tensor the file type's own type (llama-quantize `--pure`),
    /// instead of the mix that raises the output, embedding and some attention/FFN weights.
    pub pure: bool,
    /// Worker threads (None: all cores).
    pub threads: Option<usize>,
    /// Called after each tensor is written, on the calling thread.
    pub progress: Option<&'a dyn Fn(&Progress<'_>)>,
}

impl std::fmt::Debug for QuantizeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizeOptions")
            .field("pure", &self.pure)
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What [`quantize_model`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantizeSummary {
    /// The file type written to `general.file_type`.
    pub file_type: FileType,
    /// Tensors in the output.
    pub n_tensors: usize,
    /// Tensors whose type changed.
    pub n_converted: usize,
    /// Tensors that took a fallback type because their rows do not fit the mix's blocks.
    pub n_fallback: usize,
    /// Total tensor bytes in and out.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Temporary files that earlier runs writing the same output left behind.
    pub stale: StaleTemporaries,
}

/// Requantizes `input` to `ftype` and writes the result to `out_path`.
///
/// Nothing is written over data that must survive: `out_path` may not be the input's file
/// ([`Error::OutputIsInput`], links followed), nor a directory, device, FIFO or socket
/// ([`Error::NotAFile`]); both, and a directory that cannot take the file, are found before
/// any tensor is converted. The model is written beside `out_path` under a temporary name,
/// fsynced and renamed into place, so a failed or killed run leaves `out_path` as it was. A
/// symbolic link at `out_path` is written through: its target is replaced, the link stays.
/// Temporary files of killed runs are removed or listed in [`QuantizeSummary::stale`].
pub fn quantize_model(
    input: &GgufFile,
    out_path: impl AsRef<Path>,
    ftype: FileType,
    options: &QuantizeOptions<'_>,
) -> Result<QuantizeSummary> {
    let out_path = out_path.as_ref();
    let pool = thread_pool(options.threads)?;
    let planned = plan(input, ftype, options)?;

    let mut writer = GgufWriter::new();
    for (key, value) in output_metadata(input.metadata(), ftype) {
        writer.add(key, value)?;
    }
    for t in &planned {
        writer.add_tensor(t.name.clone(), t.to, &t.dims)?;
    }

    let (output, stale) = Output::create(out_path, input)?;
    let mut summary = write_tensors(
        input,
        writer,
        &output,
        &planned,
        ftype,
        options,
        pool.as_ref(),
    )
    .map_err(|e| match e {
        // The input is mapped, so every I/O error here is the output's: name the user's
        // path, not the temporary file's (the writer knows neither).
        Error::Io { action, source, .. } => Error::io(action, output.user_path(), source),
        other => other,
    })?;
    output.commit()?;
    summary.stale = stale;
    Ok(summary)
}

fn write_tensors(
    input: &GgufFile,
    writer: GgufWriter,
    output: &Output,
    planned: &[PlannedTensor],
    ftype: FileType,
    options: &QuantizeOptions<'_>,
    pool: Option<&rayon::ThreadPool>,
) -> Result<QuantizeSummary> {
    let mut data = writer.write_header(BufWriter::with_capacity(1 << 20, output.file()))?;
    let mut summary = QuantizeSummary {
        file_type: ftype,
        n_tensors: planned.len(),
        n_converted: 0,
        n_fallback: 0,
        bytes_in: 0,
        bytes_out: 0,
        stale: StaleTemporaries::default(),
    };
    for (i, t) in planned.iter().enumerate() {
        let src = input.tensor(&t.name)?;
        let too_big = |what: &str| Error::Overflow {
            what: format!("{what} of tensor '{}'", t.name),
        };
        let rows = Rows {
            name: &t.name,
            ty: t.from,
            data: src.data,
            row_len: usize::try_from(t.row_len()).map_err(|_| too_big("row length"))?,
            n_rows: usize::try_from(t.n_rows()).map_err(|_| too_big("row count"))?,
        };
        let in_pool = |f: &(dyn Fn() -> Result<Vec<u8>> + Sync)| match pool {
            Some(pool) => pool.install(f),
            None => f(),
        };
        let bytes_in = src.data.len() as u64;
        let bytes_out = if t.from == t.to {
            in_pool(&|| check_rows(&rows).map(|()| Vec::new()))?;
            data.write_tensor(src.data)?;
            bytes_in
        } else {
            let converted = in_pool(&|| convert_rows(&rows, t.to))?;
            data.write_tensor(&converted)?;
            summary.n_converted += 1;
            converted.len() as u64
        };
        summary.n_fallback += usize::from(t.fell_back);
        summary.bytes_in += bytes_in;
        summary.bytes_out += bytes_out;
        if let Some(report) = options.progress {
            report(&Progress {
                index: i + 1,
                count: planned.len(),
                tensor: t,
                bytes_in,
                bytes_out,
            });
        }
    }
    data.finish()?;
    Ok(summary)
}

/// A pool of `threads` workers, or None for rayon's global pool (all cores).
fn thread_pool(threads: Option<usize>) -> Result<Option<rayon::ThreadPool>> {
    match threads {
        None => Ok(None),
        Some(0) => Err(Error::InvalidArgument {
            what: "threads must be at least 1".into(),
        }),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map(Some)
            .map_err(|e| Error::Unsupported {
                what: format!("a pool of {n} threads: {e}"),
            }),
    }
}
