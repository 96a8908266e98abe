//! Routing on hand-checkable examples, and refusal of invalid MoE configurations.

mod moe_common;

use moe_common::synthetic;
use tramontane::kernels::GgmlType;
use tramontane::moe::{route_token, softmax, DispatchOptions, MoeFfn, MoeWeights, Routing};
use tramontane::Error;

fn route(logits: &[f32], k: usize, normalize: bool) -> (Vec<u32>, Vec<f32>) {
    let (mut e, mut w) = (vec![0u32; k], vec![0f32; k]);
    route_token(logits, normalize, &mut e, &mut w);
    (e, w)
}

fn close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn top2_of_four_renormalised() {
    // softmax then top-2 of logits [1, 3, 2, 0]: experts 1 (logit 3) and 2 (logit 2); after
    // renormalising, w1 = e^3 / (e^3 + e^2) = 1 / (1 + e^-1) and w2 = 1 / (1 + e).
    let (e, w) = route(&[1.0, 3.0, 2.0, 0.0], 2, true);
    assert_eq!(e, [1, 2]);
    let e1 = std::f64::consts::E;
    close(&w, &[1.0 / (1.0 + 1.0 / e1), 1.0 / (1.0 + e1)]);
    // Without renormalising they are the softmax probabilities themselves.
    let z: f64 = [1.0f64, 3.0, 2.0, 0.0].iter().map(|l| l.exp()).sum();
    let (_, w) = route(&[1.0, 3.0, 2.0, 0.0], 2, false);
    close(&w, &[3f64.exp() / z, 2f64.exp() / z]);
}

#[test]
fn top1_weight_is_exactly_one_and_order_is_by_probability() {
    let (e, w) = route(&[0.5, -1.0, 4.0, 4.5, 0.0], 1, true);
    assert_eq!((e, w), (vec![3], vec![1.0]));
    let (e, _) = route(&[0.5, -1.0, 4.0, 4.5, 0.0], 4, true);
    assert_eq!(e, [3, 2, 0, 4]);
}

#[test]
fn ties_go_to_the_lower_expert_index() {
    // llama.cpp's argsort is libstdc++ std::sort, an insertion sort (stable) for <= 16 values.
    let (e, w) = route(&[2.0, 5.0, 5.0, 1.0], 2, true);
    assert_eq!((e, w), (vec![1, 2], vec![0.5, 0.5]));
    let (e, _) = route(&[5.0, 2.0, 5.0, 5.0], 1, true);
    assert_eq!(e, [0]);
    let (e, _) = route(&[0.0; 8], 3, true);
    assert_eq!(e, [0, 1, 2]);
}

#[test]
fn softmax_on_blocks_of_eight_and_tails() {
    // Equal logits: every probability is exactly 1/n (exp(0) = 1, sum n, times f32(1/n)).
    for n in [4usize, 8, 10, 16] {
        let mut p = vec![0f32; n];
        softmax(&vec![1.25f32; n], &mut p);
        assert!(
            p.iter().all(|&v| v == (1.0 / n as f64) as f32),
            "{n}: {p:?}"
        );
    }
    // Eight experts (one full AVX2 block) and ten (a tail of two): top-2 of 0..n.
    for n in [8u32, 10] {
        let logits: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let (e, w) = route(&logits, 2, true);
        assert_eq!(e, [n - 1, n - 2]);
        let e1 = std::f64::consts::E;
        close(&w, &[1.0 / (1.0 + 1.0 / e1), 1.0 / (1.0 + e1)]);
    }
}

/// A 4-expert F32 block of width 4 whose router rows are `[logit_e, 0, 0, 0]`, so the input
/// `[1, 0, 0, 0]` yields exactly those logits.
fn tiny_block(logits: &[f32], n_used: usize) -> (Vec<u8>, MoeWeights) {
    let s = synthetic(9, GgmlType::F32, 4, 8, logits.len(), n_used);
    let mut bytes = s.bytes;
    let r = &s.weights.router;
    for (e, &l) in logits.iter().enumerate() {
        let row = r.start + e * 16;
        bytes[row..row + 16].fill(0);
        bytes[row..row + 4].copy_from_slice(&l.to_le_bytes());
    }
    (bytes, s.weights)
}

#[test]
fn the_dispatcher_routes_by_the_router_matrix() {
    let (bytes, weights) = tiny_block(&[1.0, 3.0, 2.0, 0.0], 2);
    let ffn = MoeFfn {
        weights: &weights,
        source: bytes.as_slice(),
        options: DispatchOptions::default(),
    };
    let x = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let routing = ffn.route(&x, 2).unwrap();
    // The second token's logits are all 0 (it hits the zeroed columns): a four-way tie.
    assert_eq!(routing.experts, [1, 2, 0, 1]);
    assert_eq!(&routing.weights[2..], [0.5, 0.5]);
    assert_eq!(routing.n_tokens(), 2);
    let mut out = vec![0f32; 8];
    let r2: Routing = ffn.forward(&x, 2, &mut out).unwrap();
    assert_eq!(r2, routing);
}

fn expect_config_error(r: tramontane::Result<MoeWeights>, needle: &str) {
    match r {
        Err(
            e
            @ (Error::InvalidConfig { .. } | Error::TensorShape { .. } | Error::TensorType { .. }),
        ) => {
            assert!(
                e.to_string().contains(needle),
                "'{e}' does not mention '{needle}'"
            )
        }
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("accepted an invalid configuration ({needle})"),
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let s = synthetic(10, GgmlType::Q8_0, 64, 96, 4, 2);
    let w = &s.weights;
    let ok = |n_used| MoeWeights::new(w.router.clone(), w.experts.clone(), n_used);
    assert!(ok(4).is_ok());
    expect_config_error(ok(0), "expert_used_count is 0");
    expect_config_error(ok(5), "expert_used_count is 5");
    expect_config_error(
        MoeWeights::new(w.router.clone(), vec![], 1),
        "expert_count is 0",
    );
    // Router rows must equal the expert count.
    expect_config_error(
        MoeWeights::new(w.router.clone(), w.experts[..3].to_vec(), 2),
        "router",
    );
    // An expert whose down projection has the wrong shape.
    let mut bad = w.experts.clone();
    bad[2].down.rows = 32;
    expect_config_error(MoeWeights::new(w.router.clone(), bad, 2), "down.2");
    // A byte range of the wrong size.
    let mut bad = w.experts.clone();
    bad[1].up.len -= 1;
    expect_config_error(MoeWeights::new(w.router.clone(), bad, 2), "up.1");
    // A type without a matmul kernel.
    let mut bad = w.experts.clone();
    bad[0].gate.ty = GgmlType::Q8_1;
    expect_config_error(MoeWeights::new(w.router.clone(), bad, 2), "gate.0");
}

#[test]
fn bad_inputs_and_ranges_are_errors_not_panics() {
    let s = synthetic(11, GgmlType::Q8_0, 64, 96, 4, 2);
    let ffn = MoeFfn {
        weights: &s.weights,
        source: s.bytes.as_slice(),
        options: DispatchOptions::default(),
    };
    let mut out = vec![0f32; 128];
    assert!(matches!(
        ffn.forward(&[0.0; 100], 2, &mut out),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        ffn.forward(&[0.0; 128], 2, &mut out[..64]),
        Err(Error::InvalidArgument { .. })
    ));
    // Zero tokens is a valid, empty call.
    assert_eq!(ffn.forward(&[], 0, &mut []).unwrap().n_tokens(), 0);
    // Weights whose byte ranges lie past the end of the bytes given: only the router (the
    // first matrix of the buffer) is there, so routing works and the experts are refused.
    let router = &s.weights.router;
    let short = &s.bytes[..router.start + router.len];
    let ffn = MoeFfn {
        weights: &s.weights,
        source: short,
        options: DispatchOptions::default(),
    };
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    assert!(ffn.route(&x, 1).is_ok());
    let err = ffn.forward(&x, 1, &mut out[..64]).unwrap_err();
    assert!(err.to_string().contains("past the end"), "{err}");
}
