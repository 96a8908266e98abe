//! llama-quantize's per-tensor rules, as plain functions of a tensor's name and shape: which
//! tensors may be quantized at all, in which order they are written, what a file type's mix
//! gives each one, and the fallback when a row is not a whole number of blocks.
//!
//! Learned from llama.cpp's `src/llama-quant.cpp` (`tensor_allows_quantization`,
//! `llama_tensor_get_type_impl`, `tensor_type_fallback`) and `weight_name_comparer` in
//! `src/llama-model-loader.h`.

use std::cmp::Ordering;

use super::FileType;
use crate::kernels::GgmlType;
use crate::{Error, Result};

/// The layer number llama.cpp reads from a name with `sscanf(name, "blk.%d.", &layer)`, or -1.
pub fn layer_of(name: &str) -> i64 {
    let Some(rest) = name.strip_prefix("blk.") else {
        return -1;
    };
    // %d skips leading white space and takes an optional sign before the digits.
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return -1;
    }
    let value = rest[..digits].bytes().fold(0i64, |v, d| {
        v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    if negative {
        -value
    } else {
        value
    }
}

/// The order llama.cpp's model loader keeps weights in, and so the order of tensors in
/// llama-quantize's output: tensors outside blocks first, then block by block, each group by
/// name (bytewise).
pub fn output_order(a: &str, b: &str) -> Ordering {
    layer_of(a)
        .cmp(&layer_of(b))
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// ggml's `ggml_n_dims`: the number of dimensions once trailing dimensions of 1 are dropped
/// (at least 1).
pub fn n_dims(shape: &[u64]) -> usize {
    shape.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// Name fragments of weights that llama.cpp never quantizes (small, or precision-critical).
const NEVER_QUANTIZED: &[&str] = &[
    "_norm.weight",
    // expert routers and the token-id -> expert-id table
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    // Gemma 3n: tiny
    "altup",
    "laurel",
    "per_layer_model_proj",
    // Mamba / Kimi / LFM conv1d weights
    "ssm_conv1d",
    "shortconv.conv.weight",
    // MiniMax indexer projections
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    // RWKV's small 2-D weights
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    // T5 relative position bias
    "attn_rel_b.weight",
    // multimodal projector parts
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    // audio codebooks
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// Whether llama-quantize would change this tensor's type at all: weights of 2 or more
/// dimensions, except norms, routers and the other small tensors listed above.
pub fn allows_quantization(name: &str, shape: &[u64]) -> bool {
    if n_dims(shape) < 2 {
        return false;
    }
    // llama.cpp tests `name.rfind("weight") == name.size() - 6` in size_t arithmetic, which also
    // holds for a 5-byte name (both sides are npos); kept so the same tensors are chosen.
    let is_weight = name.ends_with("weight") || name.len() == 5;
    // Absolute position embeddings and BERT token types stay as they are.
    let is_excluded_embedding = name == "position_embd.weight" || name == "token_types.weight";
    is_weight && !is_excluded_embedding && !NEVER_QUANTIZED.iter().any(|f| name.contains(f))
}

/// The broad role of a tensor, as llama-quantize's mixes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    TokenEmbd,
    AttentionQ,
    AttentionV,
    AttentionK,
    AttentionQkv,
    AttentionKvB,
    AttentionOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

impl Category {
    /// Classifies by name, first match wins (so `ffn_up_exps` is FfnUp, `ffn_gate_inp` FfnGate).
    pub fn of(name: &str) -> Category {
        if name == "output.weight" {
            return Category::Output;
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return Category::TokenEmbd;
        }
        const BY_FRAGMENT: &[(&str, Category)] = &[
            ("attn_qkv.weight", Category::AttentionQkv),
            ("attn_kv_b.weight", Category::AttentionKvB),
            ("attn_v.weight", Category::AttentionV),
            ("attn_k.weight", Category::AttentionK),
            ("attn_q.weight", Category::AttentionQ),
            ("attn_output.weight", Category::AttentionOutput),
            ("ffn_up", Category::FfnUp),
            ("ffn_gate", Category::FfnGate),
            ("ffn_down", Category::FfnDown),
        ];
        BY_FRAGMENT
            .iter()
            .find(|(fragment, _)| name.contains(fragment))
            .map_or(Category::Other, |&(_, c)| c)
    }

    /// The value projections (and fused projections holding them), the most sensitive weights.
    fn is_attn_v(self) -> bool {
        matches!(
            self,
            Category::AttentionV | Category::AttentionQkv | Category::AttentionKvB
        )
    }
}

/// The model hyperparameters the mixes look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixParams {
    /// `general.architecture`.
    pub arch: String,
    /// `<arch>.block_count`.
    pub n_layer: u32,
    /// `<arch>.attention.head_count` (of layer 0).
    pub n_head: u32,
    /// `<arch>.attention.head_count_kv` (of layer 0).
    pub n_head_kv: u32,
    /// `<arch>.expert_count` (0 for dense models).
    pub n_expert: u32,
}

impl MixParams {
    fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }

    /// llama.cpp gives 80-layer llama models with grouped-query attention the size class "70B",
    /// whose value projections get more bits.
    fn is_llama_70b(&self) -> bool {
        self.arch == "llama" && self.n_layer == 80 && self.n_head != self.n_head_kv
    }
}

/// The running counters of a mix (llama.cpp's `quantize_state_impl`): some rules depend on how
/// many tensors of a kind came before, in output order.
#[derive(Clone, Debug, Default)]
pub struct MixState {
    n_attention_wv: i64,
    i_attention_wv: i64,
    n_ffn: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
    has_tied_embeddings: bool,
}

impl MixState {
    /// Counts over every tensor name of the model, as llama.cpp does before choosing types.
    pub fn new<'a>(params: &MixParams, names: impl IntoIterator<Item = &'a str>) -> MixState {
        let mut state = MixState {
            n_ffn: i64::from(params.n_layer),
            has_tied_embeddings: true,
            ..MixState::default()
        };
        for name in names {
            let category = Category::of(name);
            if category.is_attn_v() {
                state.n_attention_wv += 1;
            }
            if category == Category::Output {
                state.has_tied_embeddings = false;
            }
        }
        state
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one in
/// between get a bigger type in the _M mixes.
fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// The layer a feed-forward rule applies to: the running count for dense models, the number
/// in the name for MoE models (whose expert tensors need not come in layer order).
fn ffn_layer(params: &MixParams, counter: i64, n_layer: i64, name: &str) -> Result<i64> {
    if params.n_expert <= 1 {
        return Ok(counter);
    }
    // sscanf("blk.%d.") fails where layer_of gives -1; both are refused here.
    let layer = layer_of(name);
    if layer < 0 || layer >= n_layer {
        return Err(Error::InvalidConfig {
            what: format!("tensor '{name}': cannot tell its layer (the model has {n_layer})"),
        });
    }
    Ok(layer)
}

/// The type a file type's mix gives one quantizable tensor (llama.cpp's
/// `llama_tensor_get_type_impl`, for the file types we support), `row_len` being its ne0 and
/// `ne2` its ne2 (1 for matrices). Updates the running counters.
pub fn mix_type(
    state: &mut MixState,
    params: &MixParams,
    ftype: FileType,
    name: &str,
    row_len: u64,
    ne2: u64,
) -> Result<GgmlType> {
    use FileType as F;
    use GgmlType as T;
    let mut ty = ftype.default_type();
    let category = Category::of(name);
    let falcon = params.is_falcon();
    let n_expert = params.n_expert;

    if category == Category::Output
        || (state.has_tied_embeddings && category == Category::TokenEmbd)
    {
        // The output projection (or the embedding it shares) gets 6 bits unless the mix is
        // already 8-bit; rows that do not fit 256-blocks take Q8_0. MXFP4_MOE gives it Q8_0.
        let block = ty.block_size() as u64;
        if ftype == F::MXFP4_MOE || falcon || !row_len.is_multiple_of(block) {
            ty = T::Q8_0;
        } else if ty != T::Q8_0 {
            ty = T::Q6_K;
        }
    } else if ftype == F::MXFP4_MOE {
        // Expert tensors (ne2 > 1; for bailingmoe3 only its up/gate/down experts, as its MLA
        // projections are 3-D too) in MXFP4, everything else in Q8_0. No counter moves.
        let bailing = params.arch == "bailingmoe3";
        let expert_role = matches!(
            category,
            Category::FfnUp | Category::FfnGate | Category::FfnDown
        );
        ty = if ne2 > 1 && (!bailing || expert_role) {
            T::MXFP4
        } else {
            T::Q8_0
        };
    } else if category == Category::TokenEmbd {
        // Untied embeddings keep the mix's type for the file types we support.
    } else if category.is_attn_v() {
        let (i, n) = (state.i_attention_wv, state.n_attention_wv);
        match ftype {
            F::Q2_K => {
                ty = if params.n_gqa() >= 4 {
                    T::Q4_K
                } else {
                    T::Q3_K
                }
            }
            F::Q3_K_M => ty = if i < 2 { T::Q5_K } else { T::Q4_K },
            F::Q3_K_L => ty = T::Q5_K,
            F::IQ4_NL | F::IQ4_XS if params.n_gqa() >= 4 => ty = T::Q5_K,
            F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => ty = T::Q6_K,
            F::Q4_K_S if i < 4 => ty = T::Q5_K,
            _ => {}
        }
        if params.is_llama_70b() && matches!(ty, T::Q3_K | T::Q4_K) {
            // 8 query heads share each value head there: more bits cost little.
            ty = T::Q5_K;
        }
        if n_expert == 8 {
            ty = T::Q8_0;
        }
        state.i_attention_wv += 1;
    } else if category == Category::AttentionK {
        if n_expert == 8 {
            ty = T::Q8_0;
        }
    } else if category == Category::FfnDown {
        let n = state.n_ffn;
        let i = ffn_layer(params, state.i_ffn_down, n, name)?;
        match ftype {
            F::Q2_K => ty = T::Q3_K,
            F::Q3_K_M => {
                ty = if i < n / 16 {
                    T::Q5_K
                } else if !falcon || use_more_bits(i, n) {
                    T::Q4_K
                } else {
                    T::Q3_K
                }
            }
            F::Q3_K_L => ty = if falcon { T::Q4_K } else { T::Q5_K },
            F::Q4_K_M => {
                if falcon {
                    ty = if i < n / 16 {
                        T::Q6_K
                    } else if use_more_bits(i, n) {
                        T::Q5_K
                    } else {
                        T::Q4_K
                    };
                } else if use_more_bits(i, n) {
                    ty = T::Q6_K;
                }
            }
            // (no importance matrix here, which these two rules also require)
            F::IQ4_NL | F::IQ4_XS if i < n / 8 => ty = T::Q5_K,
            F::Q5_K_M if use_more_bits(i, n) => ty = T::Q6_K,
            F::Q4_K_S if !falcon && i < n / 8 => ty = T::Q5_K,
            _ => {}
        }
        state.i_ffn_down += 1;
    } else if category == Category::AttentionOutput {
        if !falcon {
            if n_expert == 8 {
                if matches!(
                    ftype,
                    F::Q2_K | F::Q3_K_S | F::Q3_K_M | F::IQ4_NL | F::Q4_K_S | F::Q4_K_M | F::IQ4_XS
                ) {
                    ty = T::Q5_K;
                }
            } else {
                match ftype {
                    F::Q2_K => ty = T::Q3_K,
                    F::Q3_K_M => ty = T::Q4_K,
                    F::Q3_K_L => ty = T::Q5_K,
                    _ => {}
                }
            }
        } else if ftype == F::Q3_K_L {
            ty = T::Q4_K;
        }
    } else if category == Category::AttentionQkv {
        match ftype {
            F::Q3_K_M | F::Q3_K_L => ty = T::Q4_K,
            F::Q4_K_M => ty = T::Q5_K,
            F::Q5_K_M => ty = T::Q6_K,
            _ => {}
        }
    } else if category == Category::FfnGate {
        // Only the IQ3_XS mix changes these; the layer is still checked as llama.cpp does.
        ffn_layer(params, state.i_ffn_gate, state.n_ffn, name)?;
        state.i_ffn_gate += 1;
    } else if category == Category::FfnUp {
        ffn_layer(params, state.i_ffn_up, state.n_ffn, name)?;
        state.i_ffn_up += 1;
    }
    Ok(ty)
}

/// llama.cpp's `tensor_type_fallback`: a type whose blocks do not tile the rows is replaced by
/// a 32-block type of similar size, or by F16 when even that does not fit.
pub fn fallback(ty: GgmlType, row_len: u64, name: &str) -> Result<GgmlType> {
    use GgmlType as T;
    if row_len.is_multiple_of(ty.block_size() as u64) {
        return Ok(ty);
    }
    let replacement = match ty {
        T::IQ1_S
        | T::IQ1_M
        | T::IQ2_XXS
        | T::IQ2_XS
        | T::IQ2_S
        | T::IQ3_XXS
        | T::IQ3_S
        | T::IQ4_XS => T::IQ4_NL,
        T::Q2_K | T::Q3_K | T::TQ1_0 | T::TQ2_0 => T::Q4_0,
        T::Q4_K => T::Q5_0,
        T::Q5_K => T::Q5_1,
        T::Q6_K => T::Q8_0,
        // A 32-value type has no smaller block to fall back to: llama.cpp keeps it, and the
        // check below turns it into F16.
        T::MXFP4 => T::MXFP4,
        _ => {
            return Err(Error::TensorType {
                name: name.to_string(),
                ty,
                reason: format!(
                    "rows of {row_len} are not whole {ty} blocks and {ty} has no fallback type"
                ),
            })
        }
    };
    if !row_len.is_multiple_of(replacement.block_size() as u64) {
        return Ok(T::F16);
    }
    Ok(replacement)
}

/// Whether a type is a block-quantized one (ggml's `ggml_is_quantized`).
pub fn is_quantized(ty: GgmlType) -> bool {
    !matches!(
        ty,
        GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::F64
            | GgmlType::I8
            | GgmlType::I16
            | GgmlType::I32
            | GgmlType::I64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_numbers_as_sscanf_reads_them() {
        assert_eq!(layer_of("blk.12.attn_q.weight"), 12);
        assert_eq!(layer_of("blk.3x"), 3); // %d stops at the first non-digit
        assert_eq!(layer_of("blk.-2.x"), -2);
        assert_eq!(layer_of("blk. 7.x"), 7);
        assert_eq!(layer_of("blk.x"), -1);
        assert_eq!(layer_of("output.weight"), -1);
        assert_eq!(layer_of("blk.99999999999999999999999.x"), i64::MAX);
    }

    #[test]
    fn order_puts_globals_first_then_layers_numerically() {
        let mut names = vec![
            "blk.10.attn_q.weight",
            "token_embd.weight",
            "blk.2.ffn_up.weight",
            "blk.2.attn_norm.weight",
            "output_norm.weight",
        ];
        names.sort_by(|a, b| output_order(a, b));
        assert_eq!(
            names,
            [
                "output_norm.weight",
                "token_embd.weight",
                "blk.2.attn_norm.weight",
                "blk.2.ffn_up.weight",
                "blk.10.attn_q.weight",
            ]
        );
    }

    #[test]
    fn which_tensors_are_quantizable() {
        assert!(allows_quantization("blk.0.attn_q.weight", &[576, 576]));
        assert!(allows_quantization(
            "blk.0.ffn_up_exps.weight",
            &[256, 512, 8]
        ));
        assert!(!allows_quantization("blk.0.attn_norm.weight", &[576]));
        assert!(!allows_quantization("blk.0.attn_q.weight", &[576, 1])); // 1-D for ggml
        assert!(!allows_quantization("blk.0.ffn_gate_inp.weight", &[256, 8]));
        assert!(!allows_quantization("blk.0.attn_q.bias", &[576, 2]));
        assert!(!allows_quantization("position_embd.weight", &[576, 2]));
    }

    #[test]
    fn fallbacks_of_llama_cpp() {
        assert_eq!(
            fallback(GgmlType::Q4_K, 576, "t").ok(),
            Some(GgmlType::Q5_0)
        );
        assert_eq!(
            fallback(GgmlType::Q6_K, 576, "t").ok(),
            Some(GgmlType::Q8_0)
        );
        assert_eq!(
            fallback(GgmlType::Q5_K, 576, "t").ok(),
            Some(GgmlType::Q5_1)
        );
        assert_eq!(
            fallback(GgmlType::Q3_K, 576, "t").ok(),
            Some(GgmlType::Q4_0)
        );
        assert_eq!(
            fallback(GgmlType::IQ4_XS, 576, "t").ok(),
            Some(GgmlType::IQ4_NL)
        );
        assert_eq!(
            fallback(GgmlType::Q4_K, 1536, "t").ok(),
            Some(GgmlType::Q4_K)
        );
        assert_eq!(fallback(GgmlType::Q4_K, 100, "t").ok(), Some(GgmlType::F16));
        assert!(fallback(GgmlType::Q4_0, 100, "t").is_err());
    }

    fn llama(n_layer: u32, n_head: u32, n_head_kv: u32) -> MixParams {
        MixParams {
            arch: "llama".into(),
            n_layer,
            n_head,
            n_head_kv,
            n_expert: 0,
        }
    }

    #[test]
    fn q4_k_m_gives_value_and_down_projections_more_bits_in_chosen_layers() {
        // 8 layers: use_more_bits is true for layers 0, 3, 6, 7 (first/last eighth, every third).
        let params = llama(8, 32, 8);
        let names: Vec<String> = (0..8)
            .flat_map(|l| {
                [
                    format!("blk.{l}.attn_v.weight"),
                    format!("blk.{l}.ffn_down.weight"),
                ]
            })
            .chain(["output.weight".to_string(), "token_embd.weight".to_string()])
            .collect();
        let mut state = MixState::new(&params, names.iter().map(String::as_str));
        let mut v = Vec::new();
        let mut down = Vec::new();
        for l in 0..8 {
            v.push(
                mix_type(
                    &mut state,
                    &params,
                    FileType::Q4_K_M,
                    &format!("blk.{l}.attn_v.weight"),
                    4096,
                    1,
                )
                .ok(),
            );
            down.push(
                mix_type(
                    &mut state,
                    &params,
                    FileType::Q4_K_M,
                    &format!("blk.{l}.ffn_down.weight"),
                    4096,
                    1,
                )
                .ok(),
            );
        }
        let more = [true, false, false, true, false, false, true, true];
        for l in 0..8 {
            let want = Some(if more[l] {
                GgmlType::Q6_K
            } else {
                GgmlType::Q4_K
            });
            assert_eq!(v[l], want, "attn_v layer {l}");
            assert_eq!(down[l], want, "ffn_down layer {l}");
        }
        let out = mix_type(
            &mut state,
            &params,
            FileType::Q4_K_M,
            "output.weight",
            4096,
            1,
        )
        .ok();
        assert_eq!(out, Some(GgmlType::Q6_K));
        // An untied embedding keeps the mix's type.
        let emb = mix_type(
            &mut state,
            &params,
            FileType::Q4_K_M,
            "token_embd.weight",
            4096,
            1,
        )
        .ok();
        assert_eq!(emb, Some(GgmlType::Q4_K));
    }

    #[test]
    fn tied_embeddings_get_the_output_treatment() {
        let params = llama(30, 9, 3);
        let mut state = MixState::new(&params, ["token_embd.weight", "blk.0.attn_q.weight"]);
        // The check is against the mix's own block: 576 fits Q4_0's 32-blocks, so Q6_K is chosen
        // and only the fallback turns it into Q8_0; it does not fit Q4_K's 256-blocks.
        let emb = mix_type(
            &mut state,
            &params,
            FileType::Q4_0,
            "token_embd.weight",
            576,
            1,
        )
        .ok();
        assert_eq!(emb, Some(GgmlType::Q6_K));
        assert_eq!(
            fallback(GgmlType::Q6_K, 576, "t").ok(),
            Some(GgmlType::Q8_0)
        );
        let emb = mix_type(
            &mut state,
            &params,
            FileType::Q4_K_M,
            "token_embd.weight",
            576,
            1,
        )
        .ok();
        assert_eq!(emb, Some(GgmlType::Q8_0));
        let emb = mix_type(
            &mut state,
            &params,
            FileType::Q8_0,
            "token_embd.weight",
            512,
            1,
        )
        .ok();
        assert_eq!(emb, Some(GgmlType::Q8_0));
    }

    #[test]
    fn eight_experts_keep_attention_k_and_v_at_8_bits() {
        let params = MixParams {
            arch: "llama".into(),
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_expert: 8,
        };
        let mut state = MixState::new(&params, ["blk.0.attn_v.weight", "output.weight"]);
        let f = FileType::Q4_K_M;
        assert_eq!(
            mix_type(&mut state, &params, f, "blk.0.attn_v.weight", 256, 1).ok(),
            Some(GgmlType::Q8_0)
        );
        assert_eq!(
            mix_type(&mut state, &params, f, "blk.0.attn_k.weight", 256, 1).ok(),
            Some(GgmlType::Q8_0)
        );
        assert_eq!(
            mix_type(&mut state, &params, f, "blk.0.attn_output.weight", 256, 1).ok(),
            Some(GgmlType::Q5_K)
        );
        // MoE layers are read from the name, and must exist.
        assert_eq!(
            mix_type(&mut state, &params, f, "blk.1.ffn_down_exps.weight", 512, 1).ok(),
            Some(GgmlType::Q6_K)
        );
        assert!(mix_type(&mut state, &params, f, "blk.2.ffn_down_exps.weight", 512, 1).is_err());
    }

    /// llama-quant.cpp's MXFP4_MOE branch: experts (ne2 > 1) MXFP4, every other quantizable
    /// tensor Q8_0, the output projection (and a tied embedding) included; bailingmoe3 keeps
    /// its 3-D non-expert tensors in Q8_0. Rows that are not whole blocks end in F16.
    #[test]
    fn mxfp4_moe_quantizes_only_experts_to_mxfp4() {
        let f = FileType::MXFP4_MOE;
        let mut params = llama(2, 64, 8);
        params.n_expert = 32;
        let mut state = MixState::new(&params, ["token_embd.weight", "blk.0.attn_v.weight"]);
        let mut ty = |params: &MixParams, name: &str, ne2: u64| {
            mix_type(&mut state, params, f, name, 2880, ne2).ok()
        };
        let (mx, q8) = (Some(GgmlType::MXFP4), Some(GgmlType::Q8_0));
        assert_eq!(ty(&params, "blk.0.ffn_down_exps.weight", 32), mx);
        assert_eq!(ty(&params, "blk.1.ffn_gate_up_exps.weight", 32), mx);
        assert_eq!(ty(&params, "blk.0.ffn_gate_inp.weight", 1), q8);
        assert_eq!(ty(&params, "blk.0.attn_v.weight", 1), q8);
        assert_eq!(ty(&params, "blk.0.attn_q.weight", 1), q8);
        assert_eq!(ty(&params, "token_embd.weight", 1), q8); // tied: as the output
        assert_eq!(ty(&params, "output.weight", 1), q8);
        // A single expert is not an expert tensor.
        assert_eq!(ty(&params, "blk.0.ffn_down_exps.weight", 1), q8);
        params.arch = "bailingmoe3".into();
        assert_eq!(ty(&params, "blk.0.attn_kv_b.weight", 16), q8);
        assert_eq!(ty(&params, "blk.0.ffn_up_exps.weight", 16), mx);
        assert_eq!(fallback(GgmlType::MXFP4, 2880, "x").ok(), mx);
        assert_eq!(
            fallback(GgmlType::MXFP4, 100, "x").ok(),
            Some(GgmlType::F16)
        );
    }
}
