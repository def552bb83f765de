//! The memory estimate: an analytic model of one training step on burn's autodiff, by part
//! (weights, adapters and head, gradients, optimizer state, the activations kept for the
//! backward pass, one layer's backward workspace, and the process around them). The adapted
//! layers and their shapes come from the model's own list of linear layers and LoRA's own
//! target selection, so the estimate counts what a run attaches. docs/PLANNER.md has the
//! derivation and the measurements that calibrate it.

use std::collections::BTreeSet;

use hearth_models::bert::BertConfig;
use hearth_models::lora::{self, LinearModule};

use super::{Context, F32, MemoryEstimate, NATIVE_RUNTIME_BYTES, Part, Place};
use crate::optim::OptimizerSettings;
use crate::{JobSpec, Strategy};

/// Optimizer state slots per trained parameter: none for plain SGD, one for SGD with momentum
/// and RMSprop (two with RMSprop's momentum), two for Adam and AdamW.
pub fn optimizer_slots(optimizer: &OptimizerSettings) -> u64 {
    match *optimizer {
        OptimizerSettings::Sgd { momentum, .. } => u64::from(momentum != 0.0),
        OptimizerSettings::RmsProp { momentum, .. } => 1 + u64::from(momentum != 0.0),
        OptimizerSettings::Adam(_) | OptimizerSettings::AdamW(_) => 2,
    }
}

/// The linear layers `job` adapts: the model's own list ([`BertConfig::linear_modules`], the
/// one LoRA attaches to) filtered by LoRA's own selection ([`lora::targeted`]); none unless
/// the strategy is LoRA.
fn adapted<'a>(job: &JobSpec, modules: &'a [LinearModule]) -> Vec<&'a LinearModule> {
    if job.train.strategy != Strategy::Lora {
        return Vec::new();
    }
    lora::targeted(modules, &job.lora)
}

/// Per-token activation counts of one encoder layer, in `f32` values, as the autodiff graph of
/// `hearth_models::bert` keeps them for the backward pass (docs/PLANNER.md walks through them).
mod kept {
    /// `[tokens, hidden]` tensors per layer with a frozen base: q, k, v (for the two attention
    /// matmuls), the two dropout masks after the output projections, and the centred input and
    /// its square kept by each of the two LayerNorms.
    pub const HIDDEN: u64 = 9;
    /// `[tokens, intermediate]` tensors: GELU's `x`, `erf` input and `1 + erf` factor.
    pub const INTERMEDIATE: u64 = 3;
    /// `[batch, heads, len, len]` tensors: softmax's output, the dropout mask and the dropped
    /// probabilities (the second attention matmul's input).
    pub const SCORES: u64 = 3;
    /// Extra `[tokens, hidden]` tensors when the base trains too (full fine-tuning): the inputs
    /// of the attention output and the two LayerNorm outputs feeding the next projection.
    pub const FULL_HIDDEN: u64 = 3;
    /// Extra `[tokens, intermediate]` tensor when the base trains: the GELU output, input of
    /// `output.dense`.
    pub const FULL_INTERMEDIATE: u64 = 1;
    /// Per adapted linear: LoRA dropout's mask and the dropped input, both `[tokens, in]`.
    pub const LORA_INPUT: u64 = 2;
}

/// The memory `job` needs on a model of `config`, with every batch padded to
/// `min(max_length, ctx.longest_row)`.
pub fn estimate(job: &JobSpec, config: &BertConfig, ctx: &Context) -> MemoryEstimate {
    let c = config;
    let t = &job.train;
    let (h, inter, heads) = (
        c.hidden_size as u64,
        c.intermediate_size as u64,
        c.num_attention_heads as u64,
    );
    let layers = c.num_hidden_layers as u64;
    let seq = ctx
        .longest_row
        .map_or(t.max_length, |l| l.clamp(2, t.max_length.max(2)))
        .min(c.max_position_embeddings);
    let (b, l) = (t.batch_size as u64, seq as u64);
    let tokens = b * l;
    let scores = b * heads * l * l;
    let outputs = ctx.num_outputs.max(1) as u64;

    // Parameters: the embeddings, every linear layer of the model's list (the pooler's when
    // the checkpoint has one), and the two LayerNorms of each layer.
    let modules = c.linear_modules(ctx.has_pooler.unwrap_or(true));
    let embeddings =
        (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) as u64 * h + 2 * h;
    let linears: u64 = modules
        .iter()
        .map(|m| (m.d_in * m.d_out + m.d_out) as u64)
        .sum();
    let base = embeddings + linears + layers * 4 * h;
    let head = h * outputs + outputs;
    let adapted = adapted(job, &modules);
    // The encoder layers that carry an adapter (the pooler is in none).
    let adapted_layers: BTreeSet<usize> = adapted.iter().filter_map(|m| m.layer()).collect();
    let r = job.lora.r as u64;
    let lora_params: u64 = adapted.iter().map(|m| r * (m.d_in + m.d_out) as u64).sum();
    let trainable = match t.strategy {
        Strategy::Lora => lora_params + head,
        Strategy::Head => head,
        Strategy::Full => base + head,
    };
    let slots = optimizer_slots(&t.optimizer);
    // Accumulated gradients are a second copy while the next micro-batch's are computed.
    let grad_copies = if t.gradient_accumulation > 1 { 2 } else { 1 };

    // Activations kept for backward. Layers before the first one with a trained parameter
    // are not recorded by autodiff (their inputs are constants).
    let first_tracked = match t.strategy {
        Strategy::Full => Some(0),
        Strategy::Head => None,
        Strategy::Lora => adapted_layers.first().copied(),
    };
    let tracked_layers = first_tracked.map_or(0, |f| layers - f as u64);
    let full = t.strategy == Strategy::Full;
    let mut per_layer_kept =
        tokens * (kept::HIDDEN * h + kept::INTERMEDIATE * inter) + kept::SCORES * scores;
    if full {
        per_layer_kept += tokens * (kept::FULL_HIDDEN * h + kept::FULL_INTERMEDIATE * inter);
    }
    let lora_kept: u64 = adapted
        .iter()
        .filter(|m| m.layer().is_some())
        .map(|m| tokens * (kept::LORA_INPUT * m.d_in as u64 + r))
        .sum();
    // The embeddings' output and LayerNorm when the embeddings train; the pooled vector and
    // the head's input always.
    let embed_kept = if full { 3 * tokens * h } else { 0 };
    let checkpointed = t.gradient_checkpointing && tracked_layers > 0;
    let recorded = if checkpointed {
        // Every recomputed layer's input and the last hidden state; one layer recorded at a
        // time, with its adapters' inputs.
        let adapted_per_layer = lora_kept / (adapted_layers.len() as u64).max(1);
        (tracked_layers + 1) * tokens * h + per_layer_kept + adapted_per_layer
    } else {
        tracked_layers * per_layer_kept + lora_kept
    };
    let activations = (recorded + embed_kept + 2 * b * h) * F32;
    // The backward of one layer: the gradient of the scores and of softmax's input, and of
    // the feed-forward expansion, alive at once; or, without any tracked layer, the forward of
    // one layer (the same tensors, freed as soon as they are used).
    let workspace = (2 * scores + 2 * tokens * inter + 4 * tokens * h) * F32;

    let mut parts = vec![
        Part {
            name: "weights".into(),
            bytes: base * F32,
            place: Place::Device,
            detail: format!("{base} f32 parameters of the encoder"),
        },
        Part {
            name: "adapters + head".into(),
            bytes: (lora_params + head) * F32,
            place: Place::Device,
            detail: match t.strategy {
                Strategy::Lora => format!(
                    "{lora_params} LoRA (r = {r}, {} layers) + {head} head",
                    adapted_layers.len()
                ),
                _ => format!("{head} head parameters"),
            },
        },
        Part {
            name: "gradients".into(),
            bytes: grad_copies * trainable * F32,
            place: Place::Device,
            detail: format!(
                "{trainable} trained parameters{}",
                if grad_copies > 1 {
                    ", twice (accumulated and current)"
                } else {
                    ""
                }
            ),
        },
        Part {
            name: "optimizer state".into(),
            bytes: slots * trainable * F32,
            place: Place::Device,
            detail: format!("{slots} slot(s) per trained parameter"),
        },
        Part {
            name: "activations".into(),
            bytes: activations,
            place: Place::Device,
            detail: if checkpointed {
                format!(
                    "kept for backward: the inputs of {tracked_layers} of {layers} layers, \
                     one recorded at a time (checkpointing), batch {b} × {l} tokens"
                )
            } else {
                format!(
                    "kept for backward: {tracked_layers} of {layers} layers recorded, \
                     batch {b} × {l} tokens"
                )
            },
        },
        Part {
            name: "workspace".into(),
            bytes: workspace,
            place: Place::Device,
            detail: "one layer's backward temporaries".into(),
        },
    ];
    let data_bytes = 3 * ctx.data_file_bytes + 3 * 48 * ctx.data_rows;
    parts.push(Part {
        name: "model file + data".into(),
        bytes: ctx.model_file_bytes + data_bytes,
        place: Place::Host,
        detail: "model.safetensors kept for the run; the texts (file, rows, split copies)".into(),
    });
    parts.push(Part {
        name: "runtime".into(),
        bytes: NATIVE_RUNTIME_BYTES,
        place: Place::Host,
        detail: "binary, allocator, threads, tokenizer".into(),
    });
    // Each replica's weights file is freed once the model is built, before the training peak.
    super::per_replica(&mut parts, ctx, full, false);

    let candidates = [
        (
            format!("attention scores [{b}, {heads}, {l}, {l}]"),
            scores * F32,
        ),
        (
            format!("feed-forward activation [{b}·{l}, {inter}]"),
            tokens * inter * F32,
        ),
        (
            format!("word embeddings [{}, {h}]", c.vocab_size),
            c.vocab_size as u64 * h * F32,
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
        total_params: base + lora_params + head,
        trainable_params: trainable,
    }
}
