//! The two sides of the comparison built from the same f32 weights and activations, and the
//! checks that they really compute the same thing (same Q4_0 bytes, outputs that agree).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use tramontane_kernels::{reference, GgmlType};

/// Tiny deterministic generator (xorshift64*), so every run measures the same data.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1): both quantizers see blocks with varied maxima and signs.
    pub fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    }
}

/// One weight matrix, `rows` x `cols`, held by both libraries.
pub struct Weights {
    pub rows: usize,
    pub cols: usize,
    /// Our Q4_0 bytes, row-major (what a mapped GGUF tensor would hold).
    pub ours: Vec<u8>,
    /// Largest |weight| before quantization (bounds what one activation code is worth).
    pub max_abs: f32,
    /// candle's QMatMul over its own quantization of the same f32 values.
    pub candle: QMatMul,
}

/// Send + Sync so a result can come back out of a rayon pool's `install`.
pub type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Weights {
    /// Quantizes the same f32 matrix with both libraries and checks that the bytes are equal
    /// (both follow ggml's reference quantize_row_q4_0).
    pub fn q4_0(rows: usize, cols: usize, rng: &mut Rng) -> BoxResult<Self> {
        let f = rng.values(rows * cols);
        let max_abs = max_abs(&f);
        let row_bytes = reference::row_bytes(GgmlType::Q4_0, cols)?;
        let mut ours = vec![0u8; row_bytes * rows];
        for (src, dst) in f.chunks_exact(cols).zip(ours.chunks_exact_mut(row_bytes)) {
            reference::quantize_row(GgmlType::Q4_0, src, dst)?;
        }
        let t = Tensor::from_vec(f, (rows, cols), &Device::Cpu)?;
        let q = QTensor::quantize(&t, GgmlDType::Q4_0)?;
        drop(t);
        let theirs = q.data()?;
        if theirs.len() != ours.len() {
            return Err(format!(
                "Q4_0 sizes differ: candle {} ours {}",
                theirs.len(),
                ours.len()
            )
            .into());
        }
        if let Some(i) = ours.iter().zip(theirs.iter()).position(|(a, b)| a != b) {
            return Err(format!("Q4_0 bytes differ first at byte {i} of {}", ours.len()).into());
        }
        drop(theirs);
        Ok(Self {
            rows,
            cols,
            ours,
            max_abs,
            candle: QMatMul::from_qtensor(q)?,
        })
    }
}

/// `n_tokens` rows of activations, as a slice for us and as a tensor for candle.
pub struct Activations {
    pub n_tokens: usize,
    pub f32s: Vec<f32>,
    pub tensor: Tensor,
}

impl Activations {
    pub fn new(cols: usize, n_tokens: usize, rng: &mut Rng) -> BoxResult<Self> {
        let f32s = rng.values(cols * n_tokens);
        let tensor = Tensor::from_slice(&f32s, (n_tokens, cols), &Device::Cpu)?;
        Ok(Self {
            n_tokens,
            f32s,
            tensor,
        })
    }
}

/// candle's output as a flat token-major vector (the same layout as ours: `y[t*rows + r]`).
pub fn candle_forward(w: &Weights, x: &Activations) -> BoxResult<Vec<f32>> {
    Ok(w.candle
        .forward(&x.tensor)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// How far two outputs are apart: the largest |ours - candle|, the largest |candle|, and how
/// many outputs differ by more than `tight`.
pub struct Differences {
    pub max_diff: f32,
    pub max_abs: f32,
    pub beyond_tight: usize,
}

pub fn differences(ours: &[f32], theirs: &[f32], tight: f32) -> Differences {
    let mut d = Differences {
        max_diff: 0.0,
        max_abs: 0.0,
        beyond_tight: 0,
    };
    for (a, b) in ours.iter().zip(theirs) {
        // A NaN on either side counts as the largest possible difference.
        let diff = (a - b).abs();
        let diff = if diff.is_nan() { f32::INFINITY } else { diff };
        d.max_diff = d.max_diff.max(diff);
        d.max_abs = d.max_abs.max(b.abs());
        d.beyond_tight += usize::from(diff > tight);
    }
    d
}

/// Largest |value| (NaN never wins, which is fine: the data here is finite by construction).
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}
