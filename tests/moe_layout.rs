//! Both GGUF expert layouts (merged 3-D `ffn_*_exps` and per-expert `ffn_*.E`) load into the
//! same byte-range form and give bit-identical outputs; broken files are refused by name.

mod moe_common;

use moe_common::{in_pool, synthetic, Rng, Synthetic};
use tramontane::gguf::{GgufWriter, Value};
use tramontane::kernels::GgmlType;
use tramontane::moe::{
    detect_layout, load_moe_block, DispatchOptions, ExpertLayout, MoeFfn, MoeShape, MoeWeights,
};
use tramontane::{Error, GgufFile};

const N_EMBD: usize = 64;
const N_FF: usize = 96;
const N_EXPERT: usize = 4;

fn shape(n_expert: usize, n_used: usize) -> MoeShape {
    MoeShape {
        n_embd: N_EMBD,
        n_ff: N_FF,
        n_expert,
        n_used,
    }
}

/// What to write: the layout, tensors to leave out, and the synthetic experts to include.
struct Plan<'a> {
    layout: ExpertLayout,
    omit: &'a [&'a str],
    experts: usize,
    also_split_expert0: bool,
}

/// Writes block 0 of `s` (router plus its first `plan.experts` experts) as a GGUF file in
/// memory, copying every tensor's bytes from the synthetic buffer.
fn write(s: &Synthetic, plan: &Plan<'_>) -> GgufFile {
    let w = &s.weights;
    let ty = w.experts[0].gate.ty;
    let mut tensors: Vec<(String, GgmlType, Vec<u64>, Vec<u8>)> = Vec::new();
    let bytes_of =
        |m: &tramontane::model::weights::Matrix| s.bytes[m.start..m.start + m.len].to_vec();
    tensors.push((
        "blk.0.ffn_gate_inp.weight".into(),
        w.router.ty,
        vec![N_EMBD as u64, N_EXPERT as u64],
        bytes_of(&w.router),
    ));
    let experts = &w.experts[..plan.experts];
    let split = |tensors: &mut Vec<_>, e: usize| {
        let ex = &w.experts[e];
        for (p, m, dims) in [
            ("gate", &ex.gate, [N_EMBD, N_FF]),
            ("up", &ex.up, [N_EMBD, N_FF]),
            ("down", &ex.down, [N_FF, N_EMBD]),
        ] {
            tensors.push((
                format!("blk.0.ffn_{p}.{e}.weight"),
                ty,
                dims.iter().map(|&d| d as u64).collect(),
                bytes_of(m),
            ));
        }
    };
    match plan.layout {
        ExpertLayout::Merged => {
            for (p, cols, rows) in [
                ("gate", N_EMBD, N_FF),
                ("up", N_EMBD, N_FF),
                ("down", N_FF, N_EMBD),
            ] {
                let data: Vec<u8> = experts
                    .iter()
                    .flat_map(|ex| match p {
                        "gate" => bytes_of(&ex.gate),
                        "up" => bytes_of(&ex.up),
                        _ => bytes_of(&ex.down),
                    })
                    .collect();
                tensors.push((
                    format!("blk.0.ffn_{p}_exps.weight"),
                    ty,
                    vec![cols as u64, rows as u64, experts.len() as u64],
                    data,
                ));
            }
            if plan.also_split_expert0 {
                split(&mut tensors, 0);
            }
        }
        ExpertLayout::Split => (0..experts.len()).for_each(|e| split(&mut tensors, e)),
    }
    let mut gw = GgufWriter::new();
    gw.add("general.architecture", Value::String("llama".into()))
        .unwrap();
    let kept: Vec<_> = tensors
        .into_iter()
        .filter(|(n, ..)| !plan.omit.contains(&n.as_str()))
        .collect();
    for (name, ty, dims, _) in &kept {
        gw.add_tensor(name.clone(), *ty, dims).unwrap();
    }
    let mut data = gw.write_header(Vec::new()).unwrap();
    for (_, _, _, bytes) in &kept {
        data.write_tensor(bytes).unwrap();
    }
    GgufFile::from_bytes(data.finish().unwrap()).unwrap()
}

fn plan(layout: ExpertLayout) -> Plan<'static> {
    Plan {
        layout,
        omit: &[],
        experts: N_EXPERT,
        also_split_expert0: false,
    }
}

fn forward(w: &MoeWeights, bytes: &[u8], x: &[f32], n_tokens: usize) -> Vec<u32> {
    let ffn = MoeFfn {
        weights: w,
        source: bytes,
        options: DispatchOptions {
            fuse_gate_up: true,
            ..DispatchOptions::default()
        },
    };
    let mut out = vec![0f32; n_tokens * N_EMBD];
    in_pool(2, || ffn.forward(x, n_tokens, &mut out)).unwrap();
    out.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn merged_and_split_files_are_the_same_experts() {
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F16] {
        let s = synthetic(600, ty, N_EMBD, N_FF, N_EXPERT, 2);
        let merged = write(&s, &plan(ExpertLayout::Merged));
        let split = write(&s, &plan(ExpertLayout::Split));
        assert_eq!(detect_layout(&merged, 0).unwrap(), ExpertLayout::Merged);
        assert_eq!(detect_layout(&split, 0).unwrap(), ExpertLayout::Split);
        let wm = load_moe_block(&merged, 0, &shape(N_EXPERT, 2)).unwrap();
        let ws = load_moe_block(&split, 0, &shape(N_EXPERT, 2)).unwrap();
        for e in 0..N_EXPERT {
            let (a, b, c) = (&wm.experts[e], &ws.experts[e], &s.weights.experts[e]);
            for (ma, mb, mc) in [
                (&a.gate, &b.gate, &c.gate),
                (&a.up, &b.up, &c.up),
                (&a.down, &b.down, &c.down),
            ] {
                let ba = ma.bytes(merged.bytes()).unwrap();
                assert_eq!(ba, mb.bytes(split.bytes()).unwrap(), "{}", ma.name);
                assert_eq!(ba, mc.bytes(&s.bytes).unwrap(), "{}", ma.name);
                assert_eq!((ma.ty, ma.rows, ma.cols), (mb.ty, mb.rows, mb.cols));
            }
        }
        assert_eq!(
            wm.experts[2].gate.name,
            "blk.0.ffn_gate_exps.weight[expert 2]"
        );
        assert_eq!(ws.experts[2].gate.name, "blk.0.ffn_gate.2.weight");
        let n_tokens = 9;
        let x = Rng::new(601).normals(n_tokens * N_EMBD, 1.0);
        let want = forward(&s.weights, &s.bytes, &x, n_tokens);
        assert_eq!(
            forward(&wm, merged.bytes(), &x, n_tokens),
            want,
            "{ty} merged"
        );
        assert_eq!(
            forward(&ws, split.bytes(), &x, n_tokens),
            want,
            "{ty} split"
        );
    }
}

fn expect_err(r: tramontane::Result<MoeWeights>, check: impl Fn(&Error) -> bool, what: &str) {
    match r {
        Err(e) => assert!(check(&e), "{what}: unexpected error '{e}'"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

#[test]
fn broken_files_are_refused_by_name() {
    let s = synthetic(700, GgmlType::Q8_0, N_EMBD, N_FF, N_EXPERT, 2);
    let sh = shape(N_EXPERT, 2);

    let f = write(
        &s,
        &Plan {
            omit: &["blk.0.ffn_up.2.weight"],
            ..plan(ExpertLayout::Split)
        },
    );
    expect_err(
        load_moe_block(&f, 0, &sh),
        |e| matches!(e, Error::MissingTensor { name } if name == "blk.0.ffn_up.2.weight"),
        "split file missing expert 2's up",
    );

    let f = write(
        &s,
        &Plan {
            experts: 3,
            ..plan(ExpertLayout::Split)
        },
    );
    expect_err(
        load_moe_block(&f, 0, &sh),
        |e| matches!(e, Error::MissingTensor { name } if name == "blk.0.ffn_gate.3.weight"),
        "split file with 3 experts, expert_count 4",
    );
    // A file with 4 experts read with expert_count 3: the router has 4 rows, refused first.
    let f = write(&s, &plan(ExpertLayout::Split));
    expect_err(
        load_moe_block(&f, 0, &shape(3, 2)),
        |e| e.to_string().contains("blk.0.ffn_gate_inp.weight"),
        "expert_count smaller than the file's",
    );

    let f = write(
        &s,
        &Plan {
            experts: 3,
            ..plan(ExpertLayout::Merged)
        },
    );
    expect_err(
        load_moe_block(&f, 0, &sh),
        |e| matches!(e, Error::TensorShape { name, .. } if name == "blk.0.ffn_gate_exps.weight"),
        "merged tensors with 3 experts, expert_count 4",
    );

    let f = write(
        &s,
        &Plan {
            omit: &["blk.0.ffn_down_exps.weight"],
            ..plan(ExpertLayout::Merged)
        },
    );
    expect_err(
        load_moe_block(&f, 0, &sh),
        |e| matches!(e, Error::MissingTensor { name } if name == "blk.0.ffn_down_exps.weight"),
        "merged file without down",
    );

    let f = write(
        &s,
        &Plan {
            also_split_expert0: true,
            ..plan(ExpertLayout::Merged)
        },
    );
    expect_err(
        load_moe_block(&f, 0, &sh),
        |e| matches!(e, Error::InvalidConfig { .. }),
        "both layouts",
    );

    let f = write(
        &s,
        &Plan {
            experts: 0,
            ..plan(ExpertLayout::Split)
        },
    );
    expect_err(
        load_moe_block(&f, 0, &sh),
        |e| matches!(e, Error::MissingTensor { name } if name == "blk.0.ffn_gate_exps.weight"),
        "no experts at all",
    );

    let f = write(&s, &plan(ExpertLayout::Merged));
    expect_err(
        load_moe_block(&f, 0, &shape(N_EXPERT, 5)),
        |e| e.to_string().contains("expert_used_count is 5"),
        "used > count",
    );
    expect_err(
        load_moe_block(&f, 1, &sh),
        |e| matches!(e, Error::MissingTensor { name } if name == "blk.1.ffn_gate_inp.weight"),
        "no block 1",
    );
}

fn model_path(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models moe",
        p.display()
    );
    p
}

#[test]
fn the_synthetic_mixtral_files_load_in_every_block() {
    for (name, ty) in [
        ("moe-s202-q8_0.gguf", GgmlType::Q8_0),
        ("moe-s101-q4_0.gguf", GgmlType::Q4_0),
    ] {
        let f = GgufFile::open(model_path(name)).unwrap();
        let key = |k: &str| f.get_u32(&format!("llama.{k}")).unwrap() as usize;
        let sh = MoeShape {
            n_embd: key("embedding_length"),
            n_ff: key("feed_forward_length"),
            n_expert: key("expert_count"),
            n_used: key("expert_used_count"),
        };
        assert_eq!((sh.n_expert, sh.n_used), (8, 2), "{name}");
        for layer in 0..key("block_count") {
            let w = load_moe_block(&f, layer, &sh).unwrap();
            assert_eq!(w.router.ty, GgmlType::F32);
            assert!(w.experts.iter().all(|e| e.gate.ty == ty && e.down.ty == ty));
            // Slices of one merged tensor follow each other without gaps.
            let g = &w.experts;
            assert_eq!(g[1].gate.start, g[0].gate.start + g[0].gate.len);
        }
    }
}
