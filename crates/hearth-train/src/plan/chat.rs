//! The memory estimate of a chat-model (Llama-family) LoRA SFT step: the base at the precision
//! the job keeps it in (`model.quantize`: f32, f16/bf16, q8 or q4 projections, the embedding
//! and an untied head at the mode's format, q8 under q4; the norms always f32), the adapters with their gradients and optimizer
//! state, the activations the decoder's autodiff graph keeps for the backward pass, the
//! logits and their loss, the quantized kernel's transient buffers, and the process around
//! them. Checked against the size ladder's measured peaks (docs/QLORA.md, "Size ladder").

use std::collections::BTreeSet;

use hearth_models::llama::LlamaConfig;
use hearth_models::lora::{self, LinearModule};
use hearth_models::quant::BaseQuant;

use super::{
    Context, F32, Limits, MemoryEstimate, NATIVE_RUNTIME_BYTES, Part, Place, Plan, Suggestion,
};
use crate::job::FitMode;
use crate::{JobSpec, Strategy};

/// Values the quantized linear's Flex kernel dequantizes at once (`hearth-kernels`' `CHUNK`).
const KERNEL_CHUNK: u64 = 1 << 18;

/// Values in a block of the quantized formats (`hearth_kernels::BLOCK`): a projection whose
/// rows do not split into blocks stays f32.
const BLOCK: usize = 32;

/// Per-token activation counts of one decoder layer, in f32 values, as the autodiff graph of
/// `hearth_models::llama` keeps them with a frozen base.
mod kept {
    /// `[tokens, hidden]` tensors: the inputs of the two RMSNorms and the first norm's output
    /// (the adapted projections' input).
    pub const HIDDEN: u64 = 3;
    /// `[tokens, heads · head_dim]` tensors: the rotated queries, and the keys and values
    /// repeated to every query head (the two attention matmuls' operands).
    pub const ATTENTION: u64 = 3;
    /// `[tokens, intermediate]` tensors: the gate, its sigmoid, silu's output and `up`.
    pub const INTERMEDIATE: u64 = 4;
    /// `[batch, heads, len, len]` tensors: softmax's output.
    pub const SCORES: u64 = 1;
    /// `[tokens, vocab]` tensors alive at the loss: the logits, log-softmax's output and the
    /// gradient flowing back through them.
    pub const LOGITS: u64 = 3;
}

/// The layers of a Llama-family decoder LoRA may adapt, from its config (the model's own
/// list, [`hearth_models::llama::LlamaForCausalLM::linear_modules`], without building it).
pub fn decoder_modules(c: &LlamaConfig) -> Vec<LinearModule> {
    let (h, qw, kvw) = (
        c.hidden_size,
        c.num_attention_heads * c.head_dim(),
        c.kv_heads() * c.head_dim(),
    );
    let inter = c.intermediate_size;
    (0..c.num_hidden_layers)
        .flat_map(|i| {
            [
                ("self_attn.q_proj", [h, qw]),
                ("self_attn.k_proj", [h, kvw]),
                ("self_attn.v_proj", [h, kvw]),
                ("self_attn.o_proj", [qw, h]),
                ("mlp.gate_proj", [h, inter]),
                ("mlp.up_proj", [h, inter]),
                ("mlp.down_proj", [inter, h]),
            ]
            .map(|(name, shape)| {
                LinearModule::from_hf(&format!("model.layers.{i}.{name}"), str::to_string, shape)
            })
        })
        .collect()
}

/// Bytes per weight of a frozen projection whose rows are `d_in` long, as `quantize` keeps it:
/// f32 without it (or when the row does not split into blocks of 32, which stays f32); `keep`
/// is counted as q8, the larger of the block formats a GGUF file may hold.
pub fn projection_bytes_per_weight(quantize: Option<BaseQuant>, d_in: usize) -> f64 {
    match quantize {
        Some(mode) if d_in.is_multiple_of(BLOCK) => mode.bytes_per_weight(),
        _ => F32 as f64,
    }
}

/// The memory one LoRA SFT step of `job` needs on a Llama-family model of `config`, with every
/// batch padded to `min(max_length, ctx.longest_row)`.
pub fn estimate_chat(job: &JobSpec, config: &LlamaConfig, ctx: &Context) -> MemoryEstimate {
    let c = config;
    let t = &job.train;
    let quantize = job.model.quantize;
    let (h, inter, vocab) = (
        c.hidden_size as u64,
        c.intermediate_size as u64,
        c.vocab_size as u64,
    );
    let heads = c.num_attention_heads as u64;
    let qw = heads * c.head_dim() as u64;
    let layers = c.num_hidden_layers as u64;
    let seq = ctx
        .longest_row
        .map_or(t.max_length, |l| l.clamp(2, t.max_length.max(2)));
    let seq = c.max_position_embeddings.map_or(seq, |m| seq.min(m));
    let (b, l) = (t.batch_size as u64, seq as u64);
    let tokens = b * l;

    // The base: projections at their precision, everything else f32.
    let modules = decoder_modules(c);
    let mut projection_params = 0u64;
    let mut projection_bytes = 0f64;
    let mut largest_projection = (String::new(), 0u64);
    for m in &modules {
        let n = (m.d_in * m.d_out) as u64;
        let bytes = n as f64 * projection_bytes_per_weight(quantize, m.d_in);
        projection_params += n;
        projection_bytes += bytes;
        if bytes as u64 > largest_projection.1 {
            largest_projection = (m.hf_name.clone(), bytes as u64);
        }
    }
    let biases = layers
        * (u64::from(c.attention_bias) * (qw + 2 * c.kv_heads() as u64 * c.head_dim() as u64 + h)
            + u64::from(c.mlp_bias) * (2 * inter + h));
    let gemma = c.is_gemma3();
    let norms = if gemma {
        layers * (4 * h + 2 * c.head_dim() as u64) + h
    } else {
        layers * 2 * h + h
    };
    let head = if c.tie_word_embeddings { 0 } else { vocab * h };
    // The embedding and an untied head: q8 blocks under q4 and keep, the mode's own format
    // under q8, f16 and bf16, f32 without a quantized base (or rows that do not split into
    // blocks).
    let ends_bytes_per_weight = match quantize {
        Some(_) if (c.hidden_size).is_multiple_of(BLOCK) => {
            BaseQuant::embedding_bytes_per_weight(quantize)
        }
        _ => F32 as f64,
    };
    let ends_bytes = ((vocab * h + head) as f64 * ends_bytes_per_weight).round() as u64;
    let f32_params = norms + biases;
    let weights = projection_bytes.round() as u64 + ends_bytes + f32_params * F32;

    // Adapters: only LoRA trains a chat model.
    let adapted: Vec<&LinearModule> = if t.strategy == Strategy::Lora {
        lora::targeted(&modules, &job.lora)
    } else {
        Vec::new()
    };
    let adapted_layers: BTreeSet<usize> = adapted.iter().filter_map(|m| m.layer()).collect();
    let r = job.lora.r as u64;
    let lora_params: u64 = adapted.iter().map(|m| r * (m.d_in + m.d_out) as u64).sum();
    let slots = super::optimizer_slots(&t.optimizer);
    let grad_copies = if t.gradient_accumulation > 1 { 2 } else { 1 };

    // Activations: layers before the first adapted one are not recorded.
    let tracked_layers = adapted_layers.first().map_or(0, |&f| layers - f as u64);
    let per_layer = tokens * (kept::HIDDEN * h + kept::ATTENTION * qw + kept::INTERMEDIATE * inter)
        + kept::SCORES * b * heads * l * l;
    let lora_kept: u64 = adapted.iter().map(|_| tokens * r).sum();
    // With gradient checkpointing: every layer's input, one layer recorded at a time (its
    // adapters' share of the LoRA activations), and the logits a chunk of positions at a time
    // with the gradient of the last layer's output gathered from the chunks.
    let chunk = (crate::sft::logits_chunk(vocab as usize) as u64).min(tokens.max(1));
    let logits = if t.gradient_checkpointing {
        chunk * vocab
    } else {
        tokens * vocab
    };
    let (activations, kept_detail) = if t.gradient_checkpointing {
        let one_layer_lora = lora_kept / adapted_layers.len().max(1) as u64;
        (
            (layers * tokens * h
                + per_layer
                + one_layer_lora
                + 2 * tokens * h
                + kept::LOGITS * logits)
                * F32,
            format!(
                "gradient checkpointing: the {layers} layers' inputs and one layer recomputed \
                 at a time, batch {b} × {l} tokens, and the logits [{chunk}, {vocab}] of one \
                 chunk of positions with their loss"
            ),
        )
    } else {
        (
            (tracked_layers * per_layer + lora_kept + kept::LOGITS * logits) * F32,
            format!(
                "kept for backward: {tracked_layers} of {layers} layers recorded, batch {b} × \
                 {l} tokens, and the logits [{tokens}, {vocab}] with their loss"
            ),
        )
    };

    // Transients: one layer's backward (the gradients of the feed-forward expansion and of the
    // scores), and with a quantized base the Flex kernel's copy of one projection's blocks and
    // its dequantized row range (buffer and tensor).
    let layer_backward = (2 * tokens * inter + 2 * b * heads * l * l + 4 * tokens * h) * F32;
    let kernel = if quantize.is_some() {
        largest_projection.1 + 2 * KERNEL_CHUNK * F32
    } else {
        0
    };
    let precision = match quantize {
        None => "f32".to_string(),
        Some(mode) => mode.name().to_string(),
    };

    let mut parts = vec![
        Part {
            name: "weights".into(),
            bytes: weights,
            place: Place::Device,
            detail: format!(
                "{projection_params} projection weights as {precision} \
                 ({:.2} bytes each), {} embedding{} weights ({ends_bytes_per_weight:.2} bytes \
                 each), {f32_params} f32 (norms)",
                projection_bytes / projection_params.max(1) as f64,
                vocab * h + head,
                if head > 0 { " and head" } else { "" }
            ),
        },
        Part {
            name: "adapters".into(),
            bytes: lora_params * F32,
            place: Place::Device,
            detail: format!(
                "{lora_params} LoRA (r = {r}, {} modules in {} layers)",
                adapted.len(),
                adapted_layers.len()
            ),
        },
        Part {
            name: "gradients".into(),
            bytes: grad_copies * lora_params * F32,
            place: Place::Device,
            detail: format!("{lora_params} trained parameters"),
        },
        Part {
            name: "optimizer state".into(),
            bytes: slots * lora_params * F32,
            place: Place::Device,
            detail: format!("{slots} slot(s) per trained parameter"),
        },
        Part {
            name: "activations".into(),
            bytes: activations,
            place: Place::Device,
            detail: kept_detail,
        },
        Part {
            name: "workspace".into(),
            bytes: layer_backward + kernel,
            place: Place::Device,
            detail: if kernel > 0 {
                format!(
                    "one layer's backward temporaries; the quantized kernel's copy of \
                     {}'s blocks and one dequantized row range",
                    largest_projection.0
                )
            } else {
                "one layer's backward temporaries".into()
            },
        },
    ];
    let data_bytes = 3 * ctx.data_file_bytes + 3 * 48 * ctx.data_rows;
    parts.push(Part {
        name: "model file + data".into(),
        bytes: ctx.model_file_bytes + data_bytes,
        place: Place::Host,
        detail: "the model's files, held while the base loads; the conversations".into(),
    });
    parts.push(Part {
        name: "runtime".into(),
        bytes: NATIVE_RUNTIME_BYTES,
        place: Place::Host,
        detail: "binary, allocator, threads, tokenizer".into(),
    });
    // A chat run's peak is often the load, when every replica holds its files.
    super::per_replica(&mut parts, ctx, false, true);

    let candidates = [
        (
            format!("embedding [{vocab}, {h}]"),
            ends_bytes * vocab * h / (vocab * h + head).max(1),
        ),
        (
            format!("logits [{}, {vocab}]", logits / vocab.max(1)),
            logits * F32,
        ),
        (
            format!("projection {}", largest_projection.0),
            largest_projection.1,
        ),
        (
            format!("attention scores [{b}, {heads}, {l}, {l}]"),
            b * heads * l * l * F32,
        ),
    ];
    let largest_buffer = candidates
        .into_iter()
        .max_by_key(|(_, bytes)| *bytes)
        .unwrap_or_default();
    MemoryEstimate {
        parts,
        largest_buffer,
        batch_size: t.batch_size,
        seq_len: seq,
        total_params: projection_params + vocab * h + head + f32_params + lora_params,
        trainable_params: lora_params,
    }
}

/// The plan of a chat-model SFT job on a model of `config` against `limits`: the estimate,
/// what it exceeds, and when it does not fit, up to two settings that do, least costly first:
/// gradient checkpointing at the same micro-batch, then smaller micro-batches (with more
/// accumulation, the same effective batch), without and then with checkpointing. `train.fit =
/// "auto"` takes the first.
pub fn plan_chat(job: &JobSpec, config: &LlamaConfig, limits: &Limits, ctx: &Context) -> Plan {
    let estimate = estimate_chat(job, config, ctx);
    let (checked_bytes, violations) = super::fit::violations(&estimate, limits);
    let mut notes = Vec::new();
    if limits.memory_bytes.is_none() {
        notes.push("the memory budget is unknown; only buffer limits were checked".into());
    }
    let t = &job.train;
    let mut suggestions = Vec::new();
    if !violations.is_empty() {
        let mut micro = Vec::new();
        let mut b = t.batch_size;
        while b >= 1 {
            if t.batch_size.is_multiple_of(b) {
                micro.push(b);
            }
            if b == 1 {
                break;
            }
            b /= 2;
        }
        let mut candidates = Vec::new();
        if !t.gradient_checkpointing {
            candidates.push((t.batch_size, true));
        }
        candidates.extend(micro.iter().skip(1).map(|&b| (b, t.gradient_checkpointing)));
        if !t.gradient_checkpointing {
            candidates.extend(micro.iter().skip(1).map(|&b| (b, true)));
        }
        for (batch_size, checkpointing) in candidates {
            let accumulation = t.gradient_accumulation * (t.batch_size / batch_size);
            let mut tried = job.clone();
            tried.train.batch_size = batch_size;
            tried.train.gradient_accumulation = accumulation;
            tried.train.gradient_checkpointing = checkpointing;
            let e = estimate_chat(&tried, config, ctx);
            let (bytes, v) = super::fit::violations(&e, limits);
            if !v.is_empty() {
                continue;
            }
            let mut cost = Vec::new();
            if checkpointing && !t.gradient_checkpointing {
                cost.push(
                    "gradient checkpointing recomputes each layer in the backward pass: about 1.5× \
                     the step time (measured on SmolLM2)"
                        .to_string(),
                );
            }
            if batch_size != t.batch_size {
                cost.push(format!(
                    "micro-batches of {batch_size} with {accumulation} accumulation steps keep \
                     the effective batch of {}; each step runs {accumulation} smaller passes",
                    batch_size * accumulation
                ));
            }
            suggestions.push(Suggestion {
                batch_size,
                gradient_accumulation: accumulation,
                max_length: t.max_length,
                gradient_checkpointing: checkpointing,
                estimate_bytes: bytes,
                cost: cost.join("; "),
            });
            if suggestions.len() == 2 {
                break;
            }
        }
    }
    let chosen = (t.fit == FitMode::Auto)
        .then(|| suggestions.first().cloned())
        .flatten();
    Plan {
        fits: violations.is_empty(),
        checked_bytes,
        violations,
        suggestions,
        chosen,
        job_max_length: t.max_length,
        checkpointing: if t.gradient_checkpointing {
            "on: each decoder layer is recomputed in the backward pass and the logits are \
             computed a chunk of positions at a time; the estimate counts that"
                .into()
        } else {
            "off: train.gradient_checkpointing keeps only each decoder layer's input and \
             recomputes the layer in the backward pass (about 1.5× the step time on SmolLM2)"
                .into()
        },
        notes,
        estimate,
        limits: limits.clone(),
    }
}
