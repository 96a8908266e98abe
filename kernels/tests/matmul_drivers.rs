//! matmul / matmul_quantized / QuantizedActivations against plain computations.
//!
//! The f64 oracle multiplies the *dequantized* weights by the *dequantized* quantized
//! activations (both from the reference), so it computes the same mathematical sum as the
//! kernels; the kernels differ only by f32 rounding of scale products and accumulation, so
//! |y - y64| <= 1e-5 * sum_c |w_rc * x_tc| (+ the smallest normal, for all-zero rows).
//! Q4_1/Q5_1 also take their min term from Q8_1's `s = f16(d * sum q)`, rounded to f16 as
//! llama.cpp does, from the unrounded f32 d while the dequantized activations use f16(d):
//! together up to 2^-10 * |m * s| per block added to the bound.

use tramontane_kernels::matmul::{
    batch_order_rows, matmul, matmul_many, matmul_quantized, matmul_quantized_as, GgmlOp,
    MatmulTask,
    Parallelism::{CurrentPool, Inline},
    QuantizedActivations,
};
use tramontane_kernels::{dispatch, reference, GgmlType};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

fn f16_at(b: &[u8], off: usize) -> f32 {
    half::f16::from_le_bytes([b[off], b[off + 1]]).to_f32()
}

/// The extra bound from Q8_1's f16-rounded `s` (zero for other types).
fn min_term_slack(ty: GgmlType, w: &[u8], a: &[u8]) -> f64 {
    let wb = match ty {
        GgmlType::Q4_1 => 20,
        GgmlType::Q5_1 => 24,
        _ => return 0.0,
    };
    w.chunks_exact(wb)
        .zip(a.chunks_exact(36))
        .map(|(x, y)| f64::from((f16_at(x, 2) * f16_at(y, 2)).abs()) / 1024.0)
        .sum()
}

const TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::MXFP4,
    GgmlType::F16,
];

fn weights(ty: GgmlType, rows: usize, cols: usize, rng: &mut Rng) -> Vec<u8> {
    let x: Vec<f32> = (0..rows * cols).map(|_| rng.unit()).collect();
    let row = reference::row_bytes(ty, cols).unwrap();
    let mut w = vec![0u8; row * rows];
    for (src, dst) in x.chunks_exact(cols).zip(w.chunks_exact_mut(row)) {
        if reference::quantize_row(ty, src, dst).is_err() {
            // No reference quantizer for this type yet: random codes, small finite scales.
            dst.iter_mut().for_each(|b| *b = rng.byte());
            let halves: &[usize] = match ty {
                GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
                GgmlType::Q6_K => &[208],
                _ => &[0],
            };
            for block in dst.chunks_exact_mut(ty.block_bytes()) {
                for &off in halves {
                    let h = half::f16::from_f32(rng.unit() * 0.05);
                    block[off..off + 2].copy_from_slice(&h.to_le_bytes());
                }
            }
        }
    }
    w
}

fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    reference::dequantize_row(ty, bytes, &mut out).unwrap();
    out
}

/// Runs `f` in a pool of `threads` workers.
fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a test pool")
        .install(f)
}

#[test]
fn matmul_matches_f64_on_dequantized_data() {
    let mut rng = Rng(0xDEAD_BEEF);
    for &ty in TYPES {
        let cols = if ty.block_size() == 256 { 512 } else { 96 };
        for (rows, n_tokens) in [(1usize, 1usize), (67, 1), (13, 3), (130, 70)] {
            let w = weights(ty, rows, cols, &mut rng);
            let x: Vec<f32> = (0..cols * n_tokens).map(|_| rng.unit() * 2.0).collect();
            let mut y = vec![f32::NAN; rows * n_tokens];
            in_pool(2, || {
                matmul(&w, ty, rows, cols, &x, n_tokens, &mut y, CurrentPool)
            })
            .unwrap();

            let acts =
                QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, n_tokens).unwrap();
            let wrow = reference::row_bytes(ty, cols).unwrap();
            for t in 0..n_tokens {
                let xa = dequantize(acts.ty(), acts.row(t).unwrap(), cols);
                for r in 0..rows {
                    let wr = dequantize(ty, &w[r * wrow..(r + 1) * wrow], cols);
                    let exact: f64 = wr
                        .iter()
                        .zip(&xa)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    let mag: f64 = wr
                        .iter()
                        .zip(&xa)
                        .map(|(a, b)| f64::from((a * b).abs()))
                        .sum();
                    let got = y[t * rows + r];
                    let slack =
                        min_term_slack(ty, &w[r * wrow..(r + 1) * wrow], acts.row(t).unwrap());
                    assert!(
                        (f64::from(got) - exact).abs()
                            <= 1e-5 * mag + slack + f64::from(f32::MIN_POSITIVE),
                        "{ty} {rows}x{cols} t={t} r={r}: {got} vs {exact} (|terms| {mag})"
                    );
                }
            }
        }
    }
}

#[test]
fn gemm_equals_stacked_matvecs_and_threads_do_not_matter() {
    let mut rng = Rng(31337);
    for &ty in TYPES {
        let cols = if ty.block_size() == 256 { 256 } else { 64 };
        // More rows and tokens than one GEMM work item, with remainders; Q4_K also with a
        // multiple of 8 rows (llama.cpp repacks those and sums batches in another order), and
        // MXFP4 too (repacked: the ordinary order; 133 rows: ggml's vec_dot order, one token
        // included).
        let row_counts: &[usize] = if matches!(ty, GgmlType::Q4_K | GgmlType::MXFP4) {
            &[133, 136]
        } else {
            &[133]
        };
        for &rows in row_counts {
            let n_tokens = 71usize;
            let w = weights(ty, rows, cols, &mut rng);
            let x: Vec<f32> = (0..cols * n_tokens).map(|_| rng.unit()).collect();
            let acts =
                QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, n_tokens).unwrap();
            let mut y1 = vec![0f32; rows * n_tokens];
            matmul_quantized(&w, ty, rows, cols, &acts, &mut y1, Inline).unwrap();
            for threads in [1usize, 2, 3] {
                let mut yt = vec![0f32; rows * n_tokens];
                in_pool(threads, || {
                    matmul_quantized(&w, ty, rows, cols, &acts, &mut yt, CurrentPool)
                })
                .unwrap();
                assert!(
                    y1.iter().zip(&yt).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{ty}: {threads} threads differ from 1"
                );
            }
            // Each token alone (a matvec) gives the same bits as inside the GEMM, and as the
            // dispatched vec_dot, except the k-quant rows that the GEMM sums in llama.cpp's batch
            // order: those give reference::vec_dot_batch_order's bits.
            let wrow = reference::row_bytes(ty, cols).unwrap();
            let batch_rows = batch_order_rows(ty, GgmlOp::MulMat { matrix_rows: rows }, n_tokens);
            for t in 0..batch_rows {
                for r in 0..rows {
                    let want = reference::vec_dot_batch_order(
                        ty,
                        cols,
                        &w[r * wrow..(r + 1) * wrow],
                        acts.row(t).unwrap(),
                    )
                    .unwrap();
                    let got = y1[t * rows + r];
                    if cfg!(target_arch = "aarch64") && dispatch::active_kernels() != "scalar" {
                        continue; // ARM's batch tiles are its ordinary ones (see simd_kernels).
                    }
                    assert_eq!(got.to_bits(), want.to_bits(), "{ty} batch t={t} r={r}");
                }
            }
            for t in [0usize, 1, 64, 70].into_iter().filter(|&t| t >= batch_rows) {
                let one = acts.gather(&[t]).unwrap();
                let mut yv = vec![0f32; rows];
                in_pool(2, || {
                    matmul_quantized(&w, ty, rows, cols, &one, &mut yv, CurrentPool)
                })
                .unwrap();
                for r in 0..rows {
                    assert_eq!(
                        yv[r].to_bits(),
                        y1[t * rows + r].to_bits(),
                        "{ty} t={t} r={r}"
                    );
                    let d = dispatch::vec_dot(
                        ty,
                        cols,
                        &w[r * wrow..(r + 1) * wrow],
                        one.row(0).unwrap(),
                    )
                    .unwrap();
                    assert_eq!(d.to_bits(), yv[r].to_bits(), "{ty} vec_dot t={t} r={r}");
                }
            }
        }
    }
}

#[test]
fn gather_copies_rows_without_requantizing() {
    let mut rng = Rng(5);
    let cols = 64;
    let x: Vec<f32> = (0..cols * 5).map(|_| rng.unit()).collect();
    let all = QuantizedActivations::new(GgmlType::Q8_0, &x, cols, 5).unwrap();
    let picked = all.gather(&[4, 1, 1]).unwrap();
    assert_eq!(picked.n_tokens(), 3);
    let direct =
        QuantizedActivations::new(GgmlType::Q8_0, &x[4 * cols..5 * cols], cols, 1).unwrap();
    assert_eq!(picked.row(0), direct.row(0));
    assert_eq!(picked.row(1), all.row(1));
    assert_eq!(picked.row(2), all.row(1));
    assert!(picked.row(3).is_none());
    assert!(all.gather(&[5]).is_err());
}

#[test]
fn bad_shapes_are_errors() {
    let w = vec![0u8; 18 * 2];
    let x = vec![0f32; 32];
    let mut y = vec![0f32; 2];
    assert!(matmul(&w, GgmlType::Q4_0, 2, 32, &x, 1, &mut y, Inline).is_ok());
    assert!(matmul(&w, GgmlType::Q4_0, 3, 32, &x, 1, &mut y, Inline).is_err());
    assert!(matmul(&w, GgmlType::Q4_0, 2, 31, &x, 1, &mut y, Inline).is_err());
    assert!(matmul(&w, GgmlType::Q4_0, 2, 32, &x, 2, &mut y, Inline).is_err());
    assert!(matmul(&w, GgmlType::Q4_0, 2, 32, &x, 1, &mut y[..1], Inline).is_err());
    assert!(matmul(&w, GgmlType::Q4_0, usize::MAX, 32, &x, 1, &mut y, Inline).is_err());
    let acts = QuantizedActivations::new(GgmlType::Q8_1, &x, 32, 1).unwrap();
    assert!(matmul_quantized(&w, GgmlType::Q4_0, 2, 32, &acts, &mut y, Inline).is_err());
    assert!(QuantizedActivations::new(GgmlType::Q8_0, &x, 32, 2).is_err());
    // Empty shapes are fine and write nothing.
    assert!(matmul(&[], GgmlType::Q4_0, 0, 32, &x, 1, &mut [], Inline).is_ok());
}

/// With `GgmlOp::RowIndependent` every row of a GEMM has the bits of that row alone (a
/// one-row matmul in the same mode), whatever the batch size and the type (k-quants and
/// F32/F16 included, which llama.cpp sums in other orders in batches): what a batch of
/// several sequences needs so that no sequence's results depend on the others.
#[test]
fn row_independent_gemm_rows_equal_their_matvecs() {
    let mut rng = Rng(4242);
    for &ty in TYPES {
        let cols = if ty.block_size() == 256 { 256 } else { 64 };
        let rows = 136; // a multiple of 8: llama.cpp would repack Q4_K
        let w = weights(ty, rows, cols, &mut rng);
        for n_tokens in [2usize, 5, 9, 70] {
            let x: Vec<f32> = (0..cols * n_tokens).map(|_| rng.unit()).collect();
            let acts =
                QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, n_tokens).unwrap();
            let mut y = vec![0f32; rows * n_tokens];
            in_pool(2, || {
                matmul_quantized_as(
                    GgmlOp::RowIndependent,
                    &w,
                    ty,
                    rows,
                    cols,
                    &acts,
                    &mut y,
                    CurrentPool,
                )
            })
            .unwrap();
            for t in [0, n_tokens / 2, n_tokens - 1] {
                let one = acts.gather(&[t]).unwrap();
                let mut yv = vec![0f32; rows];
                let op = GgmlOp::RowIndependent;
                matmul_quantized_as(op, &w, ty, rows, cols, &one, &mut yv, Inline).unwrap();
                let got: Vec<u32> = y[t * rows..(t + 1) * rows]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                let want: Vec<u32> = yv.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{ty} n_tokens={n_tokens} t={t}");
            }
        }
    }
}

/// `matmul_many` computes each of its products exactly as a call of its own would: same
/// bits, for a matvec and for GEMMs, in every op mode, whatever the rows of each product
/// (including fewer than one work item and none at all), inline or over a pool.
#[test]
fn matmul_many_equals_one_call_per_product() {
    let mut rng = Rng(777);
    for &ty in TYPES {
        let cols = if ty.block_size() == 256 { 256 } else { 64 };
        let row_counts = [136usize, 24, 0, 200];
        let ws: Vec<Vec<u8>> = row_counts
            .iter()
            .map(|&r| weights(ty, r, cols, &mut rng))
            .collect();
        for n_tokens in [1usize, 3, 70] {
            let x: Vec<f32> = (0..cols * n_tokens).map(|_| rng.unit()).collect();
            let acts =
                QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, n_tokens).unwrap();
            for (mode, op_of) in [
                (
                    "mul_mat",
                    (|rows| GgmlOp::MulMat { matrix_rows: rows }) as fn(usize) -> GgmlOp,
                ),
                ("row_independent", |_| GgmlOp::RowIndependent),
            ] {
                let mut want: Vec<Vec<f32>> = row_counts
                    .iter()
                    .map(|&r| vec![0f32; r * n_tokens])
                    .collect();
                for ((w, &rows), y) in ws.iter().zip(&row_counts).zip(want.iter_mut()) {
                    let op = op_of(rows);
                    matmul_quantized_as(op, w, ty, rows, cols, &acts, y, Inline).unwrap();
                }
                for par in [Inline, CurrentPool] {
                    let mut got: Vec<Vec<f32>> = row_counts
                        .iter()
                        .map(|&r| vec![0f32; r * n_tokens])
                        .collect();
                    let mut tasks: Vec<MatmulTask<'_>> = ws
                        .iter()
                        .zip(&row_counts)
                        .zip(got.iter_mut())
                        .map(|((w, &rows), y)| MatmulTask {
                            op: op_of(rows),
                            w,
                            ty,
                            rows,
                            y,
                        })
                        .collect();
                    in_pool(2, || matmul_many(&mut tasks, &acts, par)).unwrap();
                    drop(tasks);
                    for (g, w) in got.iter().zip(&want) {
                        let g: Vec<u32> = g.iter().map(|v| v.to_bits()).collect();
                        let w: Vec<u32> = w.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(g, w, "{ty} {mode} n_tokens={n_tokens} {par:?}");
                    }
                }
            }
        }
        // A task whose output or weights do not fit is an error, not a panic.
        let acts =
            QuantizedActivations::new(reference::vec_dot_type(ty), &[0.5; 256][..cols], cols, 1)
                .unwrap();
        let mut y = vec![0f32; 3];
        let mut bad = [MatmulTask {
            op: GgmlOp::RowIndependent,
            w: &ws[1],
            ty,
            rows: 24,
            y: &mut y,
        }];
        assert!(matmul_many(&mut bad, &acts, Inline).is_err(), "{ty}");
    }
}
