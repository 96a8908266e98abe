//! The type and order of every output tensor, from names and shapes alone, against
//! llama-quantize --pure's outputs in the fixtures (no model file or kernel needed).

mod quantize_support;

use quantize_support::{load_fixture, FixtureTensor};
use tramontane::kernels::GgmlType;
use tramontane::quantize::{plan_tensors, FileType, TensorDesc};

fn descs(tensors: &[FixtureTensor]) -> Vec<TensorDesc<'_>> {
    tensors
        .iter()
        .map(|t| TensorDesc {
            name: &t.name,
            ty: GgmlType::from_name(&t.ty).expect("known type"),
            dims: &t.dims,
        })
        .collect()
}

#[test]
fn pure_plans_match_llama_quantize_tensor_by_tensor() {
    let fixture = load_fixture();
    let mut checked = 0;
    for input in &fixture {
        let descs = descs(&input.tensors);
        for out in &input.outputs {
            let ftype = FileType::parse(&out.ty).expect("fixture type is supported");
            assert_eq!(
                ftype.id(),
                out.general_file_type,
                "{} {}",
                input.file,
                out.ty
            );
            let plan = plan_tensors(&descs, ftype, true, None).expect("plan");
            assert_eq!(plan.len(), out.tensors.len());
            for (p, want) in plan.iter().zip(&out.tensors) {
                let ctx = format!("{} -> {}: {}", input.file, out.ty, want.name);
                assert_eq!(p.name, want.name, "order, {ctx}");
                assert_eq!(p.to.name(), want.ty, "type, {ctx}");
                assert_eq!(p.dims, want.dims, "shape, {ctx}");
                let n_bytes = p.to.row_bytes(p.row_len()).map(|r| r * p.n_rows());
                assert_eq!(n_bytes, Some(want.n_bytes), "size, {ctx}");
                checked += 1;
            }
        }
    }
    // 9 SmolLM2 outputs of 272 tensors, 8 MoE outputs of 23; to Q4_K phi3 (17), qwen3moe (27),
    // qwen2 (28), qwen3 (25), qwen2moe (37), olmoe (27); gpt-oss (60) to MXFP4_MOE and Q4_K.
    assert_eq!(
        checked,
        9 * 272 + 8 * 23 + 17 + 27 + 28 + 25 + 37 + 27 + 2 * 60
    );
}

#[test]
fn fallbacks_are_flagged() {
    let fixture = load_fixture();
    let smol = fixture
        .iter()
        .find(|i| i.file.starts_with("SmolLM2"))
        .expect("SmolLM2 in fixture");
    let descs = descs(&smol.tensors);
    let plan = plan_tensors(&descs, FileType::Q4_K_M, true, None).expect("plan");
    // Every quantizable tensor but ffn_down (rows of 1536) has rows of 576.
    let fell: Vec<_> = plan.iter().filter(|p| p.fell_back).collect();
    assert_eq!(fell.len(), 181);
    assert!(fell
        .iter()
        .all(|p| p.to == GgmlType::Q5_0 && p.row_len() == 576));
}
