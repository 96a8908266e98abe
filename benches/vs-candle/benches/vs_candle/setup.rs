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
            return Err(format!("Q4_0 sizes differ: candle {} ours {}", theirs.len(), ours.len()).into());
        }
        if let Some(i) = ours.iter().zip(theirs.iter()).position(|(a, b)| a != b) {
            return Err(format!("Q4_0 bytes differ first at byte {i} of {}", ours.len()).into());
        }
        drop(theirs);
        Ok(Self {
            rows,
            cols,
            ours,
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
    Ok(w.candle.forward(&x.tensor)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Largest |ours - candle| and largest |candle|. Both quantize activations to Q8_0 the same way
/// (d = amax/127, round to nearest) and multiply the same integers, so they differ only by
/// f32 summation order (and a rounding tie in the activation quantizer, which random inputs
/// practically never hit).
pub fn max_differences(ours: &[f32], theirs: &[f32]) -> (f32, f32) {
    ours.iter()
        .zip(theirs)
        .fold((0f32, 0f32), |(d, m), (a, b)| ((a - b).abs().max(d), b.abs().max(m)))
}
