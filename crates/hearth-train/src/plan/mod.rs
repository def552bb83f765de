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
//! [`estimate_chat`] does the same for a chat model's (Llama-family) LoRA SFT step, counting
//! the base at the precision `model.quantize` keeps it in; [`plan_chat`] checks it against the
//! limits.
//!
//! Nothing here touches a backend: the inputs are the job, the model's `config.json` and a few
//! sizes the caller knows.

use hearth_models::bert::BertConfig;
use serde::{Deserialize, Serialize};

use crate::{JobSpec, TrainError};

mod chat;
mod estimate;
mod fit;
mod render;
#[cfg(test)]
mod tests;

pub use chat::{decoder_modules, estimate_chat, plan_chat, projection_bytes_per_weight};
pub use estimate::{estimate, optimizer_slots};
pub use fit::{fit, settle};
pub use render::{mib, render};

pub use crate::job::FitMode;

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
    /// Models the process trains, each on a share of every batch (`hearth train --replicas`,
    /// automatic on the CPU); 0 counts as 1. They share the frozen base; each has its own
    /// adapters, gradients, optimizer state and copy of the files (its own weights too when
    /// the base trains); the activations of their shares add up to one batch's.
    #[serde(default)]
    pub replicas: usize,
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

/// The parts of an estimate that every replica holds its own copy of ([`Context::replicas`]),
/// multiplied by their number: what it trains (the weights too when `base_trained`: a clone
/// shares the frozen base, `hearth_train::collective::ModelSlot`) and the state of its
/// training, and, when `files_held` (they are held through the peak), the files each reads;
/// the activations and the workspace are per row and stay.
fn per_replica(parts: &mut [Part], ctx: &Context, base_trained: bool, files_held: bool) {
    const OWN: [&str; 4] = [
        "adapters",
        "adapters + head",
        "gradients",
        "optimizer state",
    ];
    let n = ctx.replicas.max(1);
    if n == 1 {
        return;
    }
    let own = |name: &str| {
        OWN.contains(&name)
            || (base_trained && name == "weights")
            || (files_held && name == "model file + data")
    };
    for part in parts.iter_mut().filter(|p| own(&p.name)) {
        part.bytes *= n as u64;
        part.detail.push_str(&format!("; × {n} replicas"));
    }
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
    /// `train.gradient_checkpointing` (a chat model's suggestions may turn it on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gradient_checkpointing: bool,
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
        job.train.gradient_checkpointing |= self.gradient_checkpointing;
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

/// The plan for `job` from its model's small files by name, as the page plans before Start:
/// `config.json` (a BERT-family classifier, or a chat model in safetensors) or, for a chat
/// model, a `.gguf` file of which the first bytes are enough (its header). Neither the weights
/// nor the data are read: `ctx` gives their sizes.
pub fn plan_named(
    job: &JobSpec,
    files: &[(String, Vec<u8>)],
    limits: &Limits,
    ctx: &Context,
) -> Result<Plan, TrainError> {
    if job.task.is_sft() {
        job.validate()?;
        let config = hearth_models::chat_model::config_from_named(files)?;
        return Ok(plan_chat(job, &config, limits, ctx));
    }
    let (_, config) = files
        .iter()
        .find(|(name, _)| name == "config.json")
        .ok_or_else(|| TrainError::Job("the model's config.json is missing".into()))?;
    plan(job, config, limits, ctx)
}

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
