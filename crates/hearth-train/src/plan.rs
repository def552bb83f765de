//! The hardware planner: how much memory a job needs, whether it fits the device, and what to
//! change when it does not.
//!
//! [`estimate`] is an analytic model of a training step on burn's autodiff: the weights, the
//! trained parameters, their gradients and optimizer state, the activations the backward pass
//! keeps (counted per encoder layer from the ops `hearth_models::bert` runs, with every batch
//! padded to the job's `max_length`, the worst case), the transient buffers of one layer's
//! backward, and the process around them (a measured runtime baseline, the model file and the
//! dataset held in memory). [`fit`] checks it against [`Limits`] (memory budget, the WebGPU
//! adapter's largest buffer and storage binding) and proposes smaller micro-batches with more
//! accumulation, and shorter `max_length` only when that is not enough. [`plan`] is what both
//! front ends call. docs/PLANNER.md has the derivation and the measurements that calibrate it.
//!
//! Nothing here touches a backend: the inputs are the job, the model's `config.json` and a few
//! sizes the caller knows.

use hearth_models::bert::BertConfig;
use serde::{Deserialize, Serialize};

use crate::optim::OptimizerSettings;
use crate::{JobSpec, Strategy, TrainError, TrainSettings};

/// What the planner does before a run (`train.fit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitMode {
    /// Estimate, and refuse a job whose estimate exceeds a limit (naming the setting to
    /// change).
    #[default]
    Check,
    /// Estimate, and when the job does not fit, take the planner's largest micro-batch (with
    /// more gradient accumulation, keeping the effective batch) and, only if that is not
    /// enough, a shorter `max_length`.
    Auto,
    /// Estimate and warn only; run whatever the job says.
    Off,
}

/// Bytes of an `f32`.
const F32: u64 = 4;

/// Resident memory of the native `hearth` process besides the tensors, the model file and
/// the data: the binary, the allocator's arenas, the thread pools and the tokenizer. A round
/// figure, not fitted: the totals it enters are checked against measured peaks in
/// docs/PLANNER.md (within 5% for four configurations).
pub const NATIVE_RUNTIME_BYTES: u64 = 40 << 20;

/// Where the job runs, which decides what is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// The native CLI on the CPU: everything lives in system RAM.
    NativeCpu,
    /// The native CLI on a GPU through wgpu: tensors in GPU memory, files in RAM.
    NativeGpu,
    /// The page's worker: tensors in WebGPU buffers, files and data in the wasm heap.
    Browser,
}

/// The limits a plan is checked against. A limit that is `None` is unknown and not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Where the job runs.
    pub runtime: Runtime,
    /// Memory the tensors may use in all: system RAM natively on the CPU, GPU memory when
    /// known.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Where `memory_bytes` comes from, in words ("MemAvailable in /proc/meminfo").
    #[serde(default)]
    pub memory_source: Option<String>,
    /// The largest single buffer (WebGPU `maxBufferSize`).
    #[serde(default)]
    pub max_buffer_size: Option<u64>,
    /// The largest buffer bound as storage (WebGPU `maxStorageBufferBindingSize`).
    #[serde(default)]
    pub max_storage_binding: Option<u64>,
    /// The wasm heap (4 GiB for wasm32) that holds the model file and the data in the page.
    #[serde(default)]
    pub wasm_heap_bytes: Option<u64>,
}

impl Limits {
    /// The wasm32 address space: the most a page's module can ever allocate.
    pub const WASM_HEAP: u64 = 4 << 30;

    /// Native CPU limits: `memory_bytes` of RAM, described by `source`.
    pub fn native_cpu(memory_bytes: Option<u64>, source: &str) -> Self {
        Self {
            runtime: Runtime::NativeCpu,
            memory_bytes,
            memory_source: Some(source.to_string()),
            max_buffer_size: None,
            max_storage_binding: None,
            wasm_heap_bytes: None,
        }
    }

    /// The page's limits from the WebGPU adapter's.
    pub fn browser(max_buffer_size: Option<u64>, max_storage_binding: Option<u64>) -> Self {
        Self {
            runtime: Runtime::Browser,
            memory_bytes: None,
            memory_source: Some("WebGPU does not tell a page its GPU memory".into()),
            max_buffer_size,
            max_storage_binding,
            wasm_heap_bytes: Some(Self::WASM_HEAP),
        }
    }

    /// The largest buffer a tensor may occupy: the smaller of the two WebGPU limits.
    pub fn largest_buffer(&self) -> Option<u64> {
        match (self.max_buffer_size, self.max_storage_binding) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What the caller knows besides the job and the model's config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Outputs of the head: labels for classification, 1 for regression.
    pub num_outputs: usize,
    /// Bytes of `model.safetensors`, held in memory for the whole run.
    #[serde(default)]
    pub model_file_bytes: u64,
    /// Bytes of the dataset file.
    #[serde(default)]
    pub data_file_bytes: u64,
    /// Rows of the dataset.
    #[serde(default)]
    pub data_rows: u64,
    /// Tokens of the longest training row, when the data has been tokenized: no batch is
    /// padded beyond it, so the estimate uses `min(max_length, longest_row)`.
    #[serde(default)]
    pub longest_row: Option<usize>,
    /// The shape of the whole token-length distribution, for the cost of a shorter
    /// `max_length`: the share of rows longer than a length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_lengths: Vec<usize>,
    /// Whether the checkpoint carries pooler weights (CLS pooling needs them); assumed when
    /// unknown.
    #[serde(default)]
    pub has_pooler: Option<bool>,
}

impl Context {
    /// The share of rows longer than `len` tokens, when the lengths are known.
    pub fn share_longer_than(&self, len: usize) -> Option<f64> {
        (!self.row_lengths.is_empty()).then(|| {
            self.row_lengths.iter().filter(|&&l| l > len).count() as f64
                / self.row_lengths.len() as f64
        })
    }
}

/// One part of the estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Short name (`weights`, `activations`, …).
    pub name: String,
    /// Bytes.
    pub bytes: u64,
    /// Where it lives: `device` (tensors) or `host` (files, data, the runtime).
    pub place: Place,
    /// How it was counted.
    pub detail: String,
}

/// Where a part of the estimate lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Tensor memory: RAM on the CPU, GPU memory on a GPU.
    Device,
    /// Process memory outside the tensors: RAM natively, the wasm heap in the page.
    Host,
}

/// The memory a job needs, by part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// The parts, in the order they are printed.
    pub parts: Vec<Part>,
    /// The largest single tensor and what it is.
    pub largest_buffer: (String, u64),
    /// Micro-batch the estimate is for.
    pub batch_size: usize,
    /// Padded length the estimate is for (`max_length`, or the longest row when shorter).
    pub seq_len: usize,
    /// Parameters in the model, head and adapters included.
    pub total_params: u64,
    /// Parameters that receive gradients.
    pub trainable_params: u64,
}

impl MemoryEstimate {
    /// Bytes of the tensors.
    pub fn device_bytes(&self) -> u64 {
        self.sum(Place::Device)
    }

    /// Bytes outside the tensors.
    pub fn host_bytes(&self) -> u64 {
        self.sum(Place::Host)
    }

    /// Everything: the peak resident memory of a native CPU run.
    pub fn total_bytes(&self) -> u64 {
        self.device_bytes() + self.host_bytes()
    }

    fn sum(&self, place: Place) -> u64 {
        self.parts
            .iter()
            .filter(|p| p.place == place)
            .map(|p| p.bytes)
            .sum()
    }

    /// The bytes of the part called `name` (0 when absent).
    pub fn part(&self, name: &str) -> u64 {
        self.parts
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.bytes)
            .sum()
    }
}

/// Optimizer state slots per trained parameter: none for plain SGD, one for SGD with momentum
/// and RMSprop (two with RMSprop's momentum), two for Adam and AdamW.
pub fn optimizer_slots(optimizer: &OptimizerSettings) -> u64 {
    match *optimizer {
        OptimizerSettings::Sgd { momentum, .. } => u64::from(momentum != 0.0),
        OptimizerSettings::RmsProp { momentum, .. } => 1 + u64::from(momentum != 0.0),
        OptimizerSettings::Adam { .. } | OptimizerSettings::AdamW { .. } => 2,
    }
}

/// A linear layer of one encoder layer: its PEFT name and `[in, out]`.
fn layer_linears(c: &BertConfig) -> [(&'static str, usize, usize); 6] {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    [
        ("attention.self.query", h, h),
        ("attention.self.key", h, h),
        ("attention.self.value", h, h),
        ("attention.output.dense", h, h),
        ("intermediate.dense", h, i),
        ("output.dense", i, h),
    ]
}

/// PEFT's matching rule (as `hearth_models::lora`): the name equals the target or ends with
/// `.target`.
fn targeted(name: &str, targets: &[String]) -> bool {
    targets
        .iter()
        .any(|t| name == t || name.ends_with(&format!(".{t}")))
}

/// `[in, out]` of a linear layer.
type Shape = (usize, usize);

/// The adapted linear layers of each encoder layer (and whether the pooler is adapted).
fn adapted(job: &JobSpec, c: &BertConfig) -> (Vec<Vec<Shape>>, Option<Shape>) {
    let lora = &job.lora;
    let in_layers = |i: usize| {
        lora.layers_to_transform
            .as_ref()
            .is_none_or(|layers| layers.contains(&i))
    };
    let per_layer = (0..c.num_hidden_layers)
        .map(|i| {
            if job.train.strategy != Strategy::Lora || !in_layers(i) {
                return Vec::new();
            }
            layer_linears(c)
                .iter()
                .filter(|(name, ..)| {
                    targeted(&format!("encoder.layer.{i}.{name}"), &lora.target_modules)
                })
                .map(|&(_, d_in, d_out)| (d_in, d_out))
                .collect()
        })
        .collect();
    let pooler = (job.train.strategy == Strategy::Lora
        && lora.layers_to_transform.is_none()
        && targeted("pooler.dense", &lora.target_modules))
    .then_some((c.hidden_size, c.hidden_size));
    (per_layer, pooler)
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

    // Parameters.
    let embeddings =
        (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) as u64 * h + 2 * h;
    let per_layer: u64 = layer_linears(c)
        .iter()
        .map(|&(_, i, o)| (i * o + o) as u64)
        .sum::<u64>()
        + 4 * h;
    let pooler = if ctx.has_pooler.unwrap_or(true) {
        h * h + h
    } else {
        0
    };
    let base = embeddings + layers * per_layer + pooler;
    let head = h * outputs + outputs;
    let (adapted_layers, adapted_pooler) = adapted(job, c);
    let r = job.lora.r as u64;
    let lora_params: u64 = adapted_layers
        .iter()
        .flatten()
        .chain(adapted_pooler.iter())
        .map(|&(i, o)| r * (i + o) as u64)
        .sum();
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
        Strategy::Lora => adapted_layers.iter().position(|a| !a.is_empty()),
    };
    let tracked_layers = first_tracked.map_or(0, |f| layers - f as u64);
    let full = t.strategy == Strategy::Full;
    let mut per_layer_kept =
        tokens * (kept::HIDDEN * h + kept::INTERMEDIATE * inter) + kept::SCORES * scores;
    if full {
        per_layer_kept += tokens * (kept::FULL_HIDDEN * h + kept::FULL_INTERMEDIATE * inter);
    }
    let lora_kept: u64 = adapted_layers
        .iter()
        .flatten()
        .map(|&(i, _)| tokens * (kept::LORA_INPUT * i as u64 + r))
        .sum();
    // The embeddings' output and LayerNorm when the embeddings train; the pooled vector and
    // the head's input always.
    let embed_kept = if full { 3 * tokens * h } else { 0 };
    let activations = (tracked_layers * per_layer_kept + lora_kept + embed_kept + 2 * b * h) * F32;
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
                    adapted_layers.iter().filter(|a| !a.is_empty()).count()
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
            detail: format!(
                "kept for backward: {tracked_layers} of {layers} layers recorded, \
                 batch {b} × {l} tokens"
            ),
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

/// A limit the estimate exceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// What exceeds it.
    pub what: String,
    /// Bytes needed.
    pub needed: u64,
    /// The limit, by name.
    pub limit: String,
    /// Its value.
    pub allowed: u64,
}

/// Settings the planner proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// `train.batch_size`.
    pub batch_size: usize,
    /// `train.gradient_accumulation`.
    pub gradient_accumulation: usize,
    /// `train.max_length`.
    pub max_length: usize,
    /// The estimate with them, in bytes (what is checked against the budget).
    pub estimate_bytes: u64,
    /// What the change costs, in words.
    pub cost: String,
}

impl Suggestion {
    /// The job with these settings.
    pub fn apply(&self, job: &JobSpec) -> JobSpec {
        let mut job = job.clone();
        job.train.batch_size = self.batch_size;
        job.train.gradient_accumulation = self.gradient_accumulation;
        job.train.max_length = self.max_length;
        job
    }
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The estimate for the job as given.
    pub estimate: MemoryEstimate,
    /// What it was checked against.
    pub limits: Limits,
    /// The bytes checked against `limits.memory_bytes` (all of it natively on the CPU, the
    /// tensors on a GPU).
    pub checked_bytes: u64,
    /// Whether nothing exceeds a known limit.
    pub fits: bool,
    /// What exceeds which limit.
    pub violations: Vec<Violation>,
    /// Settings that fit, best first (empty when the job fits).
    pub suggestions: Vec<Suggestion>,
    /// With `train.fit = "auto"` and a job that does not fit: the settings taken.
    pub chosen: Option<Suggestion>,
    /// The job's `train.max_length`.
    pub job_max_length: usize,
    /// Activation checkpointing: what burn offers and whether the plan uses it.
    pub checkpointing: String,
    /// Warnings and remarks.
    pub notes: Vec<String>,
}

impl Plan {
    /// The one-paragraph refusal, naming the settings to change.
    pub fn refusal(&self) -> String {
        let mut msg = String::from("the job does not fit: ");
        let parts: Vec<String> = self
            .violations
            .iter()
            .map(|v| {
                format!(
                    "{} needs {} but {} is {}",
                    v.what,
                    mib(v.needed),
                    v.limit,
                    mib(v.allowed)
                )
            })
            .collect();
        msg.push_str(&parts.join("; "));
        match self.suggestions.first() {
            Some(s) => msg.push_str(&format!(
                ". Set train.batch_size = {}, train.gradient_accumulation = {}{} (about {}), \
                 or train.fit = \"auto\" to let the planner choose",
                s.batch_size,
                s.gradient_accumulation,
                if s.max_length != self.job_max_length {
                    format!(", train.max_length = {}", s.max_length)
                } else {
                    String::new()
                },
                mib(s.estimate_bytes),
            )),
            None => msg.push_str(
                ". No micro-batch or max_length fits: use a smaller model, the `head` \
                 strategy, or a machine with more memory",
            ),
        }
        msg
    }
}

/// Mebibytes, for messages.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Checks an estimate against `limits`.
fn violations(e: &MemoryEstimate, limits: &Limits) -> (u64, Vec<Violation>) {
    let mut out = Vec::new();
    let checked = match limits.runtime {
        Runtime::NativeCpu => e.total_bytes(),
        Runtime::NativeGpu | Runtime::Browser => e.device_bytes(),
    };
    if let Some(budget) = limits.memory_bytes
        && checked > budget
    {
        out.push(Violation {
            what: "the estimate".into(),
            needed: checked,
            limit: limits
                .memory_source
                .clone()
                .unwrap_or_else(|| "the memory budget".into()),
            allowed: budget,
        });
    }
    if let Some(heap) = limits.wasm_heap_bytes
        && e.host_bytes() > heap
    {
        out.push(Violation {
            what: "the model file and data".into(),
            needed: e.host_bytes(),
            limit: "the wasm heap".into(),
            allowed: heap,
        });
    }
    if let Some(largest) = limits.largest_buffer()
        && e.largest_buffer.1 > largest
    {
        out.push(Violation {
            what: e.largest_buffer.0.clone(),
            needed: e.largest_buffer.1,
            limit: "the adapter's largest storage buffer".into(),
            allowed: largest,
        });
    }
    (checked, out)
}

/// Micro-batches to try below `batch`: halving, then every size down to 1.
fn smaller_batches(batch: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut b = batch / 2;
    while b >= 1 {
        out.push(b);
        b /= 2;
    }
    out
}

/// Checks `job` against `limits` and, when it does not fit, proposes settings that do: the
/// largest micro-batch (keeping the effective batch through accumulation), then shorter
/// `max_length`s only if no micro-batch is enough. With `train.fit = "auto"`, picks the first.
pub fn fit(job: &JobSpec, config: &BertConfig, limits: &Limits, ctx: &Context) -> Plan {
    let estimate = estimate(job, config, ctx);
    let (checked_bytes, violations) = violations(&estimate, limits);
    let mut notes = Vec::new();
    if limits.memory_bytes.is_none() {
        notes.push(format!(
            "the memory budget is unknown ({}); only buffer limits were checked",
            limits
                .memory_source
                .as_deref()
                .unwrap_or("no limit was given")
        ));
    }
    if let Some(longest) = ctx.longest_row
        && longest < job.train.max_length
    {
        notes.push(format!(
            "the longest training row is {longest} tokens, so no batch is padded beyond it \
             (max_length is {})",
            job.train.max_length
        ));
    }
    let mut suggestions = Vec::new();
    if !violations.is_empty() {
        let effective = job.train.effective_batch();
        let mut lengths = vec![job.train.max_length];
        let mut len = job.train.max_length / 2;
        while len >= 16 {
            lengths.push(len);
            len /= 2;
        }
        'search: for &max_length in &lengths {
            let mut batches = Vec::new();
            if max_length != job.train.max_length {
                batches.push(job.train.batch_size);
            }
            batches.extend(smaller_batches(job.train.batch_size));
            for batch_size in batches {
                let accumulation = effective.div_ceil(batch_size);
                let trial = JobSpec {
                    train: TrainSettings {
                        batch_size,
                        gradient_accumulation: accumulation,
                        max_length,
                        ..job.train.clone()
                    },
                    ..job.clone()
                };
                let e = self::estimate(&trial, config, ctx);
                let (bytes, v) = self::violations(&e, limits);
                if v.is_empty() {
                    let mut cost = Vec::new();
                    if batch_size != job.train.batch_size {
                        cost.push(format!(
                            "micro-batches of {batch_size} with {accumulation} accumulation \
                             steps keep the effective batch of {}; each step runs \
                             {accumulation} smaller passes, which use the device less fully",
                            batch_size * accumulation
                        ));
                    }
                    if max_length != job.train.max_length {
                        cost.push(match ctx.share_longer_than(max_length) {
                            Some(share) => format!(
                                "texts are cut at {max_length} tokens: {:.1}% of rows are longer",
                                100.0 * share
                            ),
                            None => format!(
                                "texts longer than {max_length} tokens are cut, which can \
                                 lose what decides their label"
                            ),
                        });
                    }
                    suggestions.push(Suggestion {
                        batch_size,
                        gradient_accumulation: accumulation,
                        max_length,
                        estimate_bytes: bytes,
                        cost: cost.join("; "),
                    });
                    if suggestions.len() == 2 {
                        break 'search;
                    }
                    // The largest micro-batch of each length is the one worth showing.
                    continue 'search;
                }
            }
        }
    }
    let chosen = (job.train.fit == FitMode::Auto)
        .then(|| suggestions.first().cloned())
        .flatten();
    Plan {
        fits: violations.is_empty(),
        estimate,
        limits: limits.clone(),
        checked_bytes,
        violations,
        suggestions,
        chosen,
        job_max_length: job.train.max_length,
        checkpointing: CHECKPOINTING.into(),
        notes,
    }
}

/// What the plan says about activation checkpointing (docs/PLANNER.md has the details).
pub const CHECKPOINTING: &str = "burn 0.22.1 offers gradient checkpointing on an autodiff \
device ('balanced': memory-bound element-wise ops are recomputed in the backward pass while \
matrix products keep their inputs); train.gradient_checkpointing turns it on. It saved 3.5% of \
the peak on MiniLM (batch 16 x 128), so the estimate does not subtract it; a per-layer \
checkpoint (recomputing whole encoder layers) is not available in burn.";

/// The plan for `job` on a model whose `config.json` is `config_json`: what both front ends
/// call before a run.
pub fn plan(
    job: &JobSpec,
    config_json: &[u8],
    limits: &Limits,
    ctx: &Context,
) -> Result<Plan, TrainError> {
    job.validate()?;
    let config = BertConfig::from_json(config_json)?;
    if ctx.num_outputs == 0 {
        return Err(TrainError::Job("the head needs at least one output".into()));
    }
    Ok(fit(job, &config, limits, ctx))
}

/// The job a run should use: unchanged when it fits or `train.fit = "off"`, adapted with
/// `"auto"`, refused with `"check"` (the error names the settings to change).
pub fn settle(job: &JobSpec, plan: &Plan) -> Result<JobSpec, TrainError> {
    if plan.fits {
        return Ok(job.clone());
    }
    match (job.train.fit, &plan.chosen) {
        (FitMode::Off, _) => Ok(job.clone()),
        (FitMode::Auto, Some(s)) => Ok(s.apply(job)),
        _ => Err(TrainError::Job(plan.refusal())),
    }
}

/// The plan as a table for a terminal.
pub fn render(plan: &Plan) -> String {
    let e = &plan.estimate;
    let mut out = format!(
        "memory plan: micro-batch {} × {} tokens, {} of {} parameters trained\n",
        e.batch_size, e.seq_len, e.trainable_params, e.total_params
    );
    for p in &e.parts {
        out.push_str(&format!(
            "  {:<18} {:>10}  {:<6}  {}\n",
            p.name,
            mib(p.bytes),
            match p.place {
                Place::Device => "device",
                Place::Host => "host",
            },
            p.detail
        ));
    }
    out.push_str(&format!(
        "  {:<18} {:>10}\n  largest buffer: {} ({})\n",
        "total",
        mib(e.total_bytes()),
        e.largest_buffer.0,
        mib(e.largest_buffer.1)
    ));
    let l = &plan.limits;
    let mut limits = Vec::new();
    if let Some(m) = l.memory_bytes {
        limits.push(format!(
            "memory {} ({})",
            mib(m),
            l.memory_source.as_deref().unwrap_or("given")
        ));
    }
    if let Some(b) = l.max_buffer_size {
        limits.push(format!("maxBufferSize {}", mib(b)));
    }
    if let Some(b) = l.max_storage_binding {
        limits.push(format!("maxStorageBufferBindingSize {}", mib(b)));
    }
    if let Some(b) = l.wasm_heap_bytes {
        limits.push(format!("wasm heap {}", mib(b)));
    }
    out.push_str(&format!(
        "limits: {}\n",
        if limits.is_empty() {
            "none known".into()
        } else {
            limits.join(", ")
        }
    ));
    out.push_str(&format!(
        "verdict: {}\n",
        if plan.fits {
            format!("fits ({} checked)", mib(plan.checked_bytes))
        } else {
            plan.refusal()
        }
    ));
    for s in &plan.suggestions {
        out.push_str(&format!(
            "suggest: batch_size {} × gradient_accumulation {}, max_length {} → {}: {}\n",
            s.batch_size,
            s.gradient_accumulation,
            s.max_length,
            mib(s.estimate_bytes),
            s.cost
        ));
    }
    if let Some(s) = &plan.chosen {
        out.push_str(&format!(
            "auto: running with batch_size {}, gradient_accumulation {}, max_length {}\n",
            s.batch_size, s.gradient_accumulation, s.max_length
        ));
    }
    for n in &plan.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!("checkpointing: {}\n", plan.checkpointing));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// all-MiniLM-L6-v2's shape.
    fn minilm() -> BertConfig {
        BertConfig::from_json(
            br#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                 "num_attention_heads": 12, "intermediate_size": 1536,
                 "max_position_embeddings": 512}"#,
        )
        .unwrap()
    }

    fn job(toml_train: &str) -> JobSpec {
        JobSpec::parse(&format!(
            "[model]\npath = 'm'\n[data]\npath = 'd.csv'\n[train]\n{toml_train}"
        ))
        .unwrap()
    }

    fn ctx() -> Context {
        Context {
            num_outputs: 3,
            model_file_bytes: 90 << 20,
            ..Context::default()
        }
    }

    #[test]
    fn parameters_match_the_models_count() {
        let e = estimate(&job(""), &minilm(), &ctx());
        // 22,713,216 encoder parameters with the pooler; 74,883 trained (README invariant).
        assert_eq!(e.trainable_params, 74_883);
        assert_eq!(e.total_params - e.trainable_params, 22_713_216);
        assert_eq!(e.part("weights"), 22_713_216 * 4);
    }

    #[test]
    fn strategy_and_optimizer_decide_gradients_and_state() {
        let c = minilm();
        let head = estimate(&job("strategy = 'head'"), &c, &ctx());
        assert_eq!(head.trainable_params, 384 * 3 + 3);
        // No encoder layer is recorded: only the head's input is kept.
        assert!(head.part("activations") < 1 << 20);
        let full = estimate(&job("strategy = 'full'"), &c, &ctx());
        assert_eq!(
            full.part("gradients"),
            full.part("weights") + (384 * 3 + 3) * 4
        );
        assert_eq!(full.part("optimizer state"), 2 * full.part("gradients"));
        let sgd = estimate(&job("optimizer = { name = 'sgd' }"), &c, &ctx());
        assert_eq!(sgd.part("optimizer state"), 0);
        let accum = estimate(&job("gradient_accumulation = 4"), &c, &ctx());
        assert_eq!(accum.part("gradients"), 2 * sgd.part("gradients"));
    }

    #[test]
    fn activations_grow_with_batch_and_quadratically_with_length() {
        let c = minilm();
        let a = |t: &str| estimate(&job(t), &c, &ctx()).part("activations") as f64;
        let base = a("batch_size = 8\nmax_length = 64");
        assert!((a("batch_size = 16\nmax_length = 64") / base - 2.0).abs() < 0.05);
        let longer = a("batch_size = 8\nmax_length = 128") / base;
        assert!(longer > 2.2 && longer < 4.0, "{longer}");
        // Adapters on every linear layer keep their dropped inputs too.
        let all = a("batch_size = 8\nmax_length = 64\n[lora]\ntarget_modules = \
                     ['query', 'key', 'value', 'dense']");
        assert!(all > base);
        // The data's longest row caps the padded length.
        let short = Context {
            longest_row: Some(40),
            ..ctx()
        };
        let e = estimate(&job("max_length = 128"), &c, &short);
        assert_eq!(e.seq_len, 40);
    }

    #[test]
    fn a_job_over_budget_is_refused_with_the_settings_to_change() {
        let c = minilm();
        let limits = Limits::native_cpu(Some(1 << 30), "test budget");
        let j = job("batch_size = 64\nmax_length = 256");
        let plan = fit(&j, &c, &limits, &ctx());
        assert!(!plan.fits);
        let first = &plan.suggestions[0];
        assert!(first.batch_size < 64);
        assert_eq!(first.batch_size * first.gradient_accumulation, 64);
        assert_eq!(first.max_length, 256, "a smaller batch is enough here");
        assert!(first.estimate_bytes <= 1 << 30);
        let err = settle(&j, &plan).unwrap_err().to_string();
        assert!(err.contains("train.batch_size"), "{err}");
        assert!(err.contains("train.fit = \"auto\""), "{err}");
        assert!(err.contains("test budget"), "{err}");
    }

    #[test]
    fn auto_adapts_and_off_runs_as_given() {
        let c = minilm();
        let limits = Limits::native_cpu(Some(1 << 30), "test budget");
        let j = job("batch_size = 64\nmax_length = 256\nfit = 'auto'");
        let plan = fit(&j, &c, &limits, &ctx());
        let adapted = settle(&j, &plan).unwrap();
        assert_eq!(adapted.train.effective_batch(), 64);
        assert!(adapted.train.batch_size < 64);
        let fits = fit(&adapted, &c, &limits, &ctx());
        assert!(fits.fits, "{}", render(&fits));
        let off = job("batch_size = 64\nmax_length = 256\nfit = 'off'");
        assert_eq!(settle(&off, &fit(&off, &c, &limits, &ctx())).unwrap(), off);
    }

    #[test]
    fn max_length_shrinks_only_when_no_micro_batch_fits() {
        let c = minilm();
        // Weights and the model file alone take ~200 MiB; batch 1 at 512 tokens does not fit
        // in 330 MiB, a shorter length does.
        let limits = Limits::native_cpu(Some(330 << 20), "small");
        let j = job("batch_size = 4\nmax_length = 512");
        let mut context = ctx();
        context.row_lengths = vec![10, 100, 300, 500];
        let plan = fit(&j, &c, &limits, &context);
        assert!(!plan.fits);
        let s = &plan.suggestions[0];
        assert!(s.max_length < 512, "{s:?}");
        assert!(s.cost.contains("% of rows are longer"), "{}", s.cost);
    }

    #[test]
    fn browser_buffers_are_checked_against_the_adapter() {
        let c = minilm();
        // WebGPU's default maxStorageBufferBindingSize is 128 MiB.
        let limits = Limits::browser(Some(256 << 20), Some(128 << 20));
        let j = job("batch_size = 64\nmax_length = 512");
        let plan = fit(&j, &c, &limits, &ctx());
        assert!(!plan.fits);
        assert!(plan.violations[0].what.contains("attention scores"));
        assert!(plan.violations[0].limit.contains("storage buffer"));
        assert!(plan.suggestions[0].estimate_bytes > 0);
        let ok = fit(
            &job("batch_size = 16\nmax_length = 128"),
            &c,
            &limits,
            &ctx(),
        );
        assert!(ok.fits, "{}", render(&ok));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let limits = Limits::native_cpu(None, "unknown");
        assert!(plan(&job(""), b"{", &limits, &ctx()).is_err());
        let zero = Context {
            num_outputs: 0,
            ..ctx()
        };
        let config = br#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 8}"#;
        assert!(plan(&job(""), config, &limits, &zero).is_err());
        let p = plan(&job(""), config, &limits, &ctx()).unwrap();
        assert!(p.fits && p.notes.iter().any(|n| n.contains("unknown")));
    }
}
