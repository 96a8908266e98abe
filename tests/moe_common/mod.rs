//! Shared pieces of the MoE tests: a seeded generator of small random expert blocks laid out
//! in one byte buffer, and the naive f64 oracle the dispatcher is checked against.
#![allow(dead_code)]

use tramontane::kernels::matmul::QuantizedActivations;
use tramontane::kernels::reference::{dequantize_row, quantize_row, row_bytes, vec_dot_type};
use tramontane::kernels::GgmlType;
use tramontane::model::weights::Matrix;
use tramontane::moe::{Expert, MoeWeights};

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    pub fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// A random MoE block: an F32 router and `n_expert` experts of type `ty`, all in `bytes`.
pub struct Synthetic {
    pub bytes: Vec<u8>,
    pub weights: MoeWeights,
}

/// Appends `rows` rows of `cols` random values quantized to `ty`; returns the matrix.
fn push_matrix(
    bytes: &mut Vec<u8>,
    rng: &mut Rng,
    name: String,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Matrix {
    let rb = row_bytes(ty, cols).unwrap();
    let start = bytes.len();
    for _ in 0..rows {
        let v = rng.normals(cols, scale);
        let mut q = vec![0u8; rb];
        quantize_row(ty, &v, &mut q).unwrap();
        bytes.extend_from_slice(&q);
    }
    Matrix {
        name,
        ty,
        rows,
        cols,
        start,
        len: rows * rb,
    }
}

/// Scales as the synthetic GGUF generator (scripts/make-moe.py) uses: router 3/sqrt(n_embd) (logits
/// of spread about 3), gate/up 1/sqrt(n_embd), down 1/sqrt(n_ff).
pub fn synthetic(
    seed: u64,
    ty: GgmlType,
    n_embd: usize,
    n_ff: usize,
    n_expert: usize,
    n_used: usize,
) -> Synthetic {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::new();
    let s = 1.0 / (n_embd as f32).sqrt();
    let router = push_matrix(
        &mut bytes,
        &mut rng,
        "router".into(),
        GgmlType::F32,
        n_expert,
        n_embd,
        3.0 * s,
    );
    let experts = (0..n_expert)
        .map(|e| Expert {
            gate: push_matrix(
                &mut bytes,
                &mut rng,
                format!("gate.{e}"),
                ty,
                n_ff,
                n_embd,
                s,
            ),
            up: push_matrix(&mut bytes, &mut rng, format!("up.{e}"), ty, n_ff, n_embd, s),
            down: push_matrix(
                &mut bytes,
                &mut rng,
                format!("down.{e}"),
                ty,
                n_embd,
                n_ff,
                1.0 / (n_ff as f32).sqrt(),
            ),
        })
        .collect();
    let weights = MoeWeights::new(router, experts, n_used).unwrap();
    Synthetic { bytes, weights }
}

fn dequantized(bytes: &[u8], m: &Matrix) -> Vec<f64> {
    let data = &bytes[m.start..m.start + m.len];
    let rb = data.len() / m.rows;
    let mut out = Vec::with_capacity(m.rows * m.cols);
    let mut row = vec![0f32; m.cols];
    for r in 0..m.rows {
        dequantize_row(m.ty, &data[r * rb..(r + 1) * rb], &mut row).unwrap();
        out.extend(row.iter().map(|&v| f64::from(v)));
    }
    out
}

/// `x` as the kernels see it: quantized to `act_ty` the way llama.cpp quantizes activations,
/// then decoded, plus the per-value quantization step (0 for float types).
fn as_quantized(act_ty: GgmlType, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let q = QuantizedActivations::new(act_ty, x, x.len(), 1).unwrap();
    let mut v = vec![0f32; x.len()];
    dequantize_row(act_ty, q.row(0).unwrap(), &mut v).unwrap();
    let block = act_ty.block_size();
    let mut step = vec![0f64; x.len()];
    if act_ty != GgmlType::F32 {
        for (s, b) in step.chunks_mut(block).zip(x.chunks(block)) {
            let amax = b.iter().fold(0f32, |m, &v| m.max(v.abs()));
            s.iter_mut().for_each(|s| *s = f64::from(amax) / 127.0);
        }
    }
    (v.iter().map(|&a| f64::from(a)).collect(), step)
}

fn dot(w: &[f64], x: &[f64]) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

fn f16_at(b: &[u8], i: usize) -> f64 {
    f64::from(half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32())
}

/// Weights with a per-block minimum (Q4_1, Q5_1) are dotted with Q8_1 activations through the
/// activations' stored `s = f16(d * sum(q))`, not the exact sum: `sum_b m_b * s_b`. The
/// dequantized dot product has `m_b * sum(d q)` instead; this returns the difference, so the
/// oracle sees the activations exactly as the kernels do.
fn q8_1_min_correction(w: &Matrix, w_bytes: &[u8], row: usize, x: &[f32]) -> f64 {
    if vec_dot_type(w.ty) != GgmlType::Q8_1 {
        return 0.0;
    }
    let rb = row_bytes(w.ty, w.cols).unwrap();
    let wrow = &w_bytes[w.start + row * rb..w.start + (row + 1) * rb];
    let q = QuantizedActivations::new(GgmlType::Q8_1, x, x.len(), 1).unwrap();
    let xq = q.row(0).unwrap();
    let (wb, xb) = (w.ty.block_bytes(), GgmlType::Q8_1.block_bytes());
    let mut corr = 0.0;
    for (wblk, xblk) in wrow.chunks(wb).zip(xq.chunks(xb)) {
        let m = f16_at(wblk, 2);
        let (d, s) = (f16_at(xblk, 0), f16_at(xblk, 2));
        let sum_q: f64 = xblk[4..].iter().map(|&v| f64::from(v as i8)).sum();
        corr += m * (s - d * sum_q);
    }
    corr
}

/// The oracle's answer for one token: output, a bound on how far a correct f32
/// implementation may be from it, and the chosen experts.
pub struct NaiveToken {
    pub out: Vec<f64>,
    /// Bound from f32 accumulation alone.
    pub tol_arith: Vec<f64>,
    /// Extra allowance for hidden-activation rounding flips.
    pub tol_flip: Vec<f64>,
    pub experts: Vec<u32>,
}

/// Dense per-token MoE in f64 over dequantized weights, with the activations quantized as
/// the kernels quantize them. Routing: softmax in f64, top-k by probability (ties to the
/// lower index), weights renormalised.
///
/// The tolerance per output value is `1e-6 *` (the sum of the absolute values of every term
/// that went into it) for f32 accumulation, plus two quantization steps of the hidden
/// activation times the largest `|down|` weight of the row: our hidden values differ from the
/// oracle's in the last bits, which can move a value across a rounding boundary of the
/// down projection's activation quantizer (rare; two such flips per row are allowed).
pub fn naive_token(s: &Synthetic, x: &[f32]) -> NaiveToken {
    let w = &s.weights;
    let (n_embd, n_ff) = (w.n_embd(), w.n_ff());
    let router = dequantized(&s.bytes, &w.router);
    let xf: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let logits: Vec<f64> = router.chunks(n_embd).map(|r| dot(r, &xf)).collect();
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    let probs: Vec<f64> = exps.iter().map(|e| e / total).collect();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).unwrap().then(a.cmp(&b)));
    let chosen = &order[..w.n_used];
    let wsum: f64 = chosen.iter().map(|&e| probs[e]).sum();

    let mut out = vec![0f64; n_embd];
    let mut tol_arith = vec![0f64; n_embd];
    let mut tol_flip = vec![0f64; n_embd];
    for &e in chosen {
        let ex = &w.experts[e];
        let weight = probs[e] / wsum;
        let (xg, _) = as_quantized(vec_dot_type(ex.gate.ty), x);
        let (xu, _) = as_quantized(vec_dot_type(ex.up.ty), x);
        let gate = dequantized(&s.bytes, &ex.gate);
        let up = dequantized(&s.bytes, &ex.up);
        let down = dequantized(&s.bytes, &ex.down);
        let mut h = vec![0f32; n_ff];
        let mut h_abs = vec![0f64; n_ff];
        for r in 0..n_ff {
            let g = dot(&gate[r * n_embd..(r + 1) * n_embd], &xg)
                + q8_1_min_correction(&ex.gate, &s.bytes, r, x);
            let u = dot(&up[r * n_embd..(r + 1) * n_embd], &xu)
                + q8_1_min_correction(&ex.up, &s.bytes, r, x);
            h[r] = (g / (1.0 + (-g).exp()) * u) as f32;
            let g_abs: f64 = gate[r * n_embd..(r + 1) * n_embd]
                .iter()
                .zip(&xg)
                .map(|(a, b)| (a * b).abs())
                .sum();
            let u_abs: f64 = up[r * n_embd..(r + 1) * n_embd]
                .iter()
                .zip(&xu)
                .map(|(a, b)| (a * b).abs())
                .sum();
            // Error bound of h = silu(g) * u from the errors of g and u (|silu'| <= 1.1).
            h_abs[r] = 1.1 * g_abs * u.abs() + g.abs() * u_abs;
        }
        let (hq, step) = as_quantized(vec_dot_type(ex.down.ty), &h);
        for r in 0..n_embd {
            let row = &down[r * n_ff..(r + 1) * n_ff];
            out[r] += weight * (dot(row, &hq) + q8_1_min_correction(&ex.down, &s.bytes, r, &h));
            let terms: f64 = row.iter().zip(&hq).map(|(a, b)| (a * b).abs()).sum::<f64>()
                + row
                    .iter()
                    .zip(&h_abs)
                    .map(|(a, b)| (a * b).abs())
                    .sum::<f64>();
            let flip = row
                .iter()
                .zip(&step)
                .map(|(a, s)| (a * s).abs())
                .fold(0f64, f64::max);
            tol_arith[r] += weight * 1e-6 * terms;
            tol_flip[r] += weight * 2.0 * flip;
        }
    }
    NaiveToken {
        out,
        tol_arith,
        tol_flip,
        experts: chosen.iter().map(|&e| e as u32).collect(),
    }
}

/// Runs `f` in a pool of `threads` workers (the library's drivers use the pool they run in).
pub fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a test pool")
        .install(f)
}
