//! The MoE dispatcher against a naive dense per-token f64 oracle, across thread counts,
//! batch shapes and fusion settings; and proof that a token reads only its chosen experts.

mod moe_common;

use std::sync::Mutex;

use moe_common::{in_pool, naive_token, synthetic, Rng, Synthetic};
use tramontane::kernels::GgmlType;
use tramontane::model::weights::Matrix;
use tramontane::moe::{DispatchOptions, MoeFfn, Routing, WeightSource};

fn run(
    s: &Synthetic,
    x: &[f32],
    n_tokens: usize,
    threads: usize,
    fuse: bool,
) -> (Vec<f32>, Routing) {
    let ffn = MoeFfn {
        weights: &s.weights,
        source: s.bytes.as_slice(),
        options: DispatchOptions {
            fuse_gate_up: fuse,
            ..DispatchOptions::default()
        },
    };
    let mut out = vec![f32::NAN; n_tokens * s.weights.n_embd()];
    let routing = in_pool(threads, || ffn.forward(x, n_tokens, &mut out)).unwrap();
    (out, routing)
}

fn check_against_oracle(s: &Synthetic, x: &[f32], out: &[f32], routing: &Routing) {
    let ty = s.weights.experts[0].gate.ty;
    let n_embd = s.weights.n_embd();
    let n_used = s.weights.n_used;
    let (mut worst, mut beyond_arith, mut total) = (0f64, 0usize, 0usize);
    for (t, (xr, yr)) in x.chunks(n_embd).zip(out.chunks(n_embd)).enumerate() {
        let want = naive_token(s, xr);
        assert_eq!(
            &routing.experts[t * n_used..(t + 1) * n_used],
            want.experts.as_slice(),
            "token {t}: experts"
        );
        for (r, &got) in yr.iter().enumerate() {
            let (w, arith) = (want.out[r], want.tol_arith[r]);
            let tol = arith + want.tol_flip[r];
            let err = (f64::from(got) - w).abs();
            assert!(
                err <= tol,
                "{ty}: token {t} row {r}: got {got}, oracle {w}, tol {tol}"
            );
            worst = worst.max(err / arith);
            beyond_arith += usize::from(err > arith);
            total += 1;
        }
    }
    eprintln!("{ty}: worst error / f32 bound = {worst:.3e}, {beyond_arith} of {total} beyond it");
    // Rounding flips of the hidden activations are rare: almost every value must be within
    // the f32-accumulation bound alone.
    assert!(
        beyond_arith * 50 <= total,
        "{ty}: {beyond_arith} of {total} values off"
    );
}

/// Shapes that exercise chunk tails (96 = 64 + 32 output rows, 160 = 2.5 chunks of n_ff) and
/// top-3 (where the order of the sum matters).
const CASES: &[(GgmlType, usize, usize, usize, usize)] = &[
    (GgmlType::Q8_0, 96, 160, 6, 3),
    (GgmlType::Q4_0, 128, 256, 8, 2),
    (GgmlType::Q4_1, 64, 96, 4, 1),
    (GgmlType::Q4_K, 256, 512, 8, 2),
    (GgmlType::F16, 64, 128, 5, 2),
];

#[test]
fn single_token_matches_oracle() {
    for (i, &(ty, n_embd, n_ff, n_expert, n_used)) in CASES.iter().enumerate() {
        let s = synthetic(100 + i as u64, ty, n_embd, n_ff, n_expert, n_used);
        let mut rng = Rng::new(7 + i as u64);
        for _ in 0..4 {
            let x = rng.normals(n_embd, 1.0);
            let (out, routing) = run(&s, &x, 1, 1, true);
            check_against_oracle(&s, &x, &out, &routing);
        }
    }
}

#[test]
fn batch_matches_oracle_and_is_bit_identical_across_threads_fusion_and_token_by_token() {
    for (i, &(ty, n_embd, n_ff, n_expert, n_used)) in CASES.iter().enumerate() {
        let s = synthetic(200 + i as u64, ty, n_embd, n_ff, n_expert, n_used);
        let n_tokens = 37;
        let x = Rng::new(300 + i as u64).normals(n_tokens * n_embd, 1.0);
        let (out1, routing1) = run(&s, &x, n_tokens, 1, true);
        check_against_oracle(&s, &x, &out1, &routing1);

        let (out2, routing2) = run(&s, &x, n_tokens, 2, true);
        assert_eq!(routing1, routing2);
        assert_eq!(bits(&out1), bits(&out2), "{ty}: 1 vs 2 threads");
        let (out3, _) = run(&s, &x, n_tokens, 3, false);
        assert_eq!(bits(&out1), bits(&out3), "{ty}: fused vs separate gate/up");

        // Token by token: the same experts, and the oracle's bounds. Not the same bits: like
        // llama.cpp, a batch sums the F32 router (tinyBLAS) and experts with 8 or more routed
        // rows of a k-quant (tiled GEMM) in other orders than one token does.
        let mut one_by_one = Vec::new();
        let mut experts = Vec::new();
        for xr in x.chunks(n_embd) {
            let (out, routing) = run(&s, xr, 1, 2, true);
            one_by_one.extend(out);
            experts.extend(routing.experts);
        }
        assert_eq!(
            routing1.experts, experts,
            "{ty}: batch vs token by token experts"
        );
        let routing = Routing {
            experts,
            weights: routing1.weights.clone(),
            n_used,
        };
        check_against_oracle(&s, &x, &one_by_one, &routing);

        // Every expert saw tokens in a batch this size, so grouping was exercised.
        let used: std::collections::BTreeSet<u32> = routing1.experts.iter().copied().collect();
        assert!(used.len() > n_used, "{ty}: only experts {used:?} used");
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Records the name of every matrix whose bytes were asked for.
struct Recorder<'a> {
    bytes: &'a [u8],
    seen: Mutex<Vec<String>>,
}

impl WeightSource for Recorder<'_> {
    fn matrix_bytes(&self, m: &Matrix) -> tramontane::Result<&[u8]> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(m.name.clone());
        self.bytes.matrix_bytes(m)
    }
}

#[test]
fn a_token_reads_only_its_chosen_experts() {
    let s = synthetic(400, GgmlType::Q8_0, 64, 128, 8, 2);
    let mut rng = Rng::new(401);
    for threads in [1, 2] {
        for n_tokens in [1usize, 3] {
            let x = rng.normals(n_tokens * 64, 1.0);
            let rec = Recorder {
                bytes: &s.bytes,
                seen: Mutex::new(Vec::new()),
            };
            let ffn = MoeFfn {
                weights: &s.weights,
                source: &rec,
                options: DispatchOptions {
                    fuse_gate_up: true,
                    ..DispatchOptions::default()
                },
            };
            let mut out = vec![0f32; n_tokens * 64];
            let routing = in_pool(threads, || ffn.forward(&x, n_tokens, &mut out)).unwrap();
            let mut chosen: Vec<u32> = routing.experts.clone();
            chosen.sort();
            chosen.dedup();
            let mut want = vec!["router".to_string()];
            for e in &chosen {
                want.extend([format!("gate.{e}"), format!("up.{e}"), format!("down.{e}")]);
            }
            let mut seen = rec.seen.into_inner().unwrap();
            seen.sort();
            want.sort();
            assert_eq!(seen, want, "{n_tokens} tokens, {threads} threads");
            if n_tokens == 1 {
                assert_eq!(chosen.len(), 2);
            }
        }
    }
}

#[test]
fn poisoning_unchosen_experts_changes_nothing() {
    // Q8_0 blocks start with an f16 scale: 0xFFFF is NaN, so any read of a poisoned expert
    // would turn the output into NaN.
    let mut s = synthetic(500, GgmlType::Q8_0, 64, 128, 8, 2);
    let x = Rng::new(501).normals(64, 1.0);
    let (clean, routing) = run(&s, &x, 1, 2, true);
    for (e, ex) in s.weights.experts.clone().iter().enumerate() {
        if routing.experts.contains(&(e as u32)) {
            continue;
        }
        for m in [&ex.gate, &ex.up, &ex.down] {
            s.bytes[m.start..m.start + m.len].fill(0xFF);
        }
    }
    let (poisoned, routing2) = run(&s, &x, 1, 2, true);
    assert_eq!(routing, routing2);
    assert_eq!(bits(&clean), bits(&poisoned));
    assert!(poisoned.iter().all(|v| v.is_finite()));
}
