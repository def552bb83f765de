//! The job spec: one serde type that the CLI reads from TOML/JSON and flags, and that the web
//! page builds, exports and imports. Raw input is parsed into it once and validated once.

use hearth_models::bert::Pooling;
use hearth_models::lora::LoraSettings;
use serde::{Deserialize, Serialize};

use crate::TrainError;

mod raw;
pub use raw::RawJob;

/// Everything that defines a fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The base model.
    pub model: ModelSpec,
    /// The dataset and its split.
    pub data: DataSpec,
    /// The adapters.
    #[serde(default)]
    pub lora: LoraSettings,
    /// What the head predicts and the loss it learns with.
    #[serde(default, skip_serializing_if = "is_default")]
    pub task: Task,
    /// The optimization.
    #[serde(default)]
    pub train: TrainSettings,
}

/// What the head predicts: one class, any set of labels, or a number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// One label per text; cross-entropy (with `train.label_smoothing`, `train.class_weights`).
    #[default]
    Classification,
    /// Any number of labels per text, listed in the label column separated by `separator`;
    /// binary cross-entropy with logits per label (HF's
    /// `multi_label_classification`).
    MultiLabel {
        /// Separator between the labels of a row in its label cell (every format).
        #[serde(default = "default_separator")]
        separator: String,
        /// A label is predicted when its probability reaches this.
        #[serde(default = "default_threshold")]
        threshold: f64,
    },
    /// A number per text; a one-output head (HF's `regression`).
    Regression {
        /// `mse` (HF's), `mae` or `huber`.
        #[serde(default)]
        loss: RegressionLoss,
        /// Huber's δ: quadratic below it, linear above.
        #[serde(default = "default_huber_delta")]
        huber_delta: f64,
    },
    /// Supervised fine-tuning of a chat model (a Llama-family decoder): conversations
    /// (`messages`, or `prompt` + `response`) through the model's chat template, next-token
    /// cross-entropy on the assistant's tokens only.
    Sft {
        /// Pack several conversations into each row of up to `train.max_length` tokens (less
        /// padding computed); each still attends only to itself, with its own positions.
        #[serde(default)]
        packing: bool,
        /// A Jinja chat template to use instead of the model's own (for a base model that has
        /// none, or to change the format).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_template: Option<String>,
        /// What a conversation longer than `train.max_length` loses: `keep_answer` (cut the
        /// earlier turns, then the start of the prompt, keeping the system prompt, the
        /// template's role headers and end-of-turn markers and the answer whole when it fits on
        /// its own), `keep_start` (keep the first tokens, cutting the answer) or `drop`.
        #[serde(default)]
        truncation: hearth_data::chat::Truncation,
    },
}

impl Task {
    /// transformers' `problem_type` for this task's classification head; `None` for a
    /// language model, which has none.
    pub fn problem_type(&self) -> Option<hearth_models::merge::ProblemType> {
        use hearth_models::merge::ProblemType;
        match self {
            Self::Classification => Some(ProblemType::SingleLabel),
            Self::MultiLabel { .. } => Some(ProblemType::MultiLabel),
            Self::Regression { .. } => Some(ProblemType::Regression),
            Self::Sft { .. } => None,
        }
    }

    /// Whether this is supervised fine-tuning of a language model.
    pub fn is_sft(&self) -> bool {
        matches!(self, Self::Sft { .. })
    }
}

/// The loss of a regression task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Mean squared error (`torch.nn.MSELoss`).
    #[default]
    Mse,
    /// Mean absolute error (`torch.nn.L1Loss`).
    Mae,
    /// Huber (`torch.nn.HuberLoss`, δ = `huber_delta`).
    Huber,
}

fn default_separator() -> String {
    "|".into()
}
fn default_threshold() -> f64 {
    0.5
}
fn default_huber_delta() -> f64 {
    1.0
}

/// What a run trains: `lora` (default), `head` or `full`; defined beside the model it shapes.
pub use hearth_models::Strategy;

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

/// Where the base model is and how its head reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A directory with `config.json`, `model.safetensors` and `tokenizer.json`.
    pub path: String,
    /// How a sequence becomes one vector for the classification head.
    #[serde(default)]
    pub pooling: Pooling,
    /// A PEFT adapter directory whose LoRA factors and head the run starts from, to train an
    /// existing adapter further; fresh adapters when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_adapter: Option<String>,
    /// Keep the chat model's projection weights quantized under f32 adapters (QLoRA,
    /// docs/QLORA.md): `q8`, `q4`, `f16`, `bf16` (16-bit values, no scale), or `keep` (a GGUF
    /// file's own `Q8_0`/`Q4_0`/`Q4_1` blocks);
    /// an f32 base when absent. SFT only, on the CPU (Flex) backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantize: Option<hearth_models::quant::BaseQuant>,
}

/// The dataset file, its columns and the held-out split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// A CSV or JSONL file.
    pub path: String,
    /// `csv` or `jsonl`; from the file extension when absent.
    #[serde(default)]
    pub format: Option<String>,
    /// Column (CSV) or key (JSONL) holding the text.
    #[serde(default = "default_text_column")]
    pub text_column: String,
    /// Column or key holding the label.
    #[serde(default = "default_label_column")]
    pub label_column: String,
    /// Rows held out for evaluation: the first `eval_rows` after a seeded shuffle.
    /// When absent, `eval_fraction` of the rows.
    #[serde(default)]
    pub eval_rows: Option<usize>,
    /// Share of rows held out when `eval_rows` is absent.
    #[serde(default = "default_eval_fraction")]
    pub eval_fraction: f64,
    /// How rows are split: `holdout` (the reference's seeded shuffle, the first rows held
    /// out) or `stratified` (each label's share kept in every part, duplicates never straddling
    /// parts).
    #[serde(default)]
    pub split: SplitMethod,
    /// Share of rows kept aside as a test set, scored once at the end (stratified split only).
    #[serde(default)]
    pub test_fraction: f64,
    /// Leave out rows whose label cell is blank (counted in the load report) instead of
    /// refusing the file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_unlabeled: bool,
    /// Cleaning applied after loading, before the split.
    #[serde(default, skip_serializing_if = "is_default")]
    pub clean: hearth_data::clean::CleanOptions,
    /// Augmented copies of the training rows (never of held-out rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<hearth_data::augment::AugmentSettings>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// How a dataset is split into training and held-out rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    /// The reference's: a seeded Python shuffle, the first rows held out.
    #[default]
    Holdout,
    /// Stratified by label, duplicate-aware, with an optional test part.
    Stratified,
}

fn default_text_column() -> String {
    "text".into()
}
fn default_label_column() -> String {
    "label".into()
}
fn default_eval_fraction() -> f64 {
    0.1
}

/// The optimization: AdamW with linear warmup then linear decay, dynamic padding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    /// Optimizer steps; when absent, `epochs` passes over the training rows decide.
    #[serde(default)]
    pub steps: Option<usize>,
    /// Passes over the training rows, used when `steps` is absent.
    #[serde(default = "default_epochs")]
    pub epochs: f64,
    /// Examples per forward/backward pass (the micro-batch).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Micro-batches whose gradients are averaged before each optimizer step: the effective
    /// batch is `batch_size × gradient_accumulation`.
    #[serde(default = "default_accumulation")]
    pub gradient_accumulation: usize,
    /// What is trained: `lora` (adapters + head), `head` (linear probe) or `full`.
    #[serde(default)]
    pub strategy: Strategy,
    /// What the hardware planner does before the run: `check` (refuse a job whose memory
    /// estimate exceeds the device's limits, naming the setting to change), `auto` (take the
    /// planner's micro-batch, accumulation and, if needed, max_length) or `off` (warn only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub fit: FitMode,
    /// Gradient checkpointing, trading time for memory, as transformers'
    /// `gradient_checkpointing` does: only each layer's input is kept (a chat model's decoder
    /// layers, a classifier's encoder layers) and the layer is recomputed in the backward pass;
    /// a chat model also computes its logits a few positions at a time. One more forward pass
    /// of the layers: 1.5× the step time measured on SmolLM2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gradient_checkpointing: bool,
    /// Truncation length in tokens; each batch is padded to its longest row (rounded up by
    /// `pad_to_multiple_of`).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Pad each batch to its longest row rounded up to a multiple of this, at most
    /// `max_length` (transformers' `pad_to_multiple_of`): a GPU then compiles and tunes its
    /// kernels for a few lengths instead of one per text length. Padding never changes the
    /// loss. Absent: 16 on a GPU (native wgpu, the page's WebGPU) and none on the CPU; 1 pads
    /// to the longest row only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to_multiple_of: Option<usize>,
    /// Put rows of similar length in the same batches (transformers' `group_by_length`): each
    /// epoch's seeded order is cut into mega-batches of up to 50 batches, each sorted by length,
    /// so batches carry less padding. Still seeded and deterministic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group_by_length: bool,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// Steps of linear warmup.
    #[serde(default = "default_warmup")]
    pub warmup_steps: usize,
    /// Weight decay: decoupled for AdamW, an L2 term in the gradient for the others (as in
    /// PyTorch).
    #[serde(default)]
    pub weight_decay: f64,
    /// The optimizer and its own settings (default AdamW, β = (0.9, 0.999), ε = 1e-8).
    #[serde(default)]
    pub optimizer: crate::optim::OptimizerSettings,
    /// Gradient clipping by global norm and/or by value.
    #[serde(default, skip_serializing_if = "is_default")]
    pub clip: crate::optim::Clipping,
    /// Learning-rate schedule after the warmup: `linear` decay to zero, `cosine`, `constant`.
    #[serde(default)]
    pub schedule: crate::schedule::Schedule,
    /// Label smoothing ε of the cross-entropy (PyTorch's `label_smoothing`).
    #[serde(default)]
    pub label_smoothing: f64,
    /// L1 penalty added to the loss: `l1 · Σ|w|` over the trained weight matrices (LoRA
    /// factors and the head's weight; biases and norms excluded).
    #[serde(default)]
    pub l1: f64,
    /// Dropout on the pooled vector before the head; the model config's `classifier_dropout`
    /// (or `hidden_dropout_prob`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dropout: Option<f64>,
    /// Class weights of the cross-entropy: `"balanced"` or one weight per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<crate::loss::ClassWeights>,
    /// Stop when the held-out metric stops improving (needs `eval_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Seeds the split, the data order, the head's init and dropout.
    #[serde(default)]
    pub seed: u64,
    /// Evaluate every this many steps (and always at the end); 0 = only at the end.
    #[serde(default)]
    pub eval_every: usize,
    /// Save a checkpoint every this many steps (and always at the end); 0 = only at the end.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Checkpoints kept; older ones are deleted once a newer one is safely written.
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
}

/// Early stopping on a held-out metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// The metric watched; the task's usual one when absent (macro-F1 for classification and
    /// multi-label, R² for regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<StopMetric>,
    /// Evaluations without an improvement before the run stops.
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// The least gain that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
    /// End with the adapter of the best evaluation rather than the last step's.
    #[serde(default = "default_true")]
    pub restore_best: bool,
}

impl EarlyStopping {
    /// The metric watched for `task`.
    pub fn metric_for(&self, task: &Task) -> StopMetric {
        self.metric.unwrap_or(match task {
            Task::Regression { .. } => StopMetric::R2,
            Task::Sft { .. } => StopMetric::Loss,
            _ => StopMetric::MacroF1,
        })
    }
}

/// The metric early stopping watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    /// Macro-averaged F1 (classification, multi-label).
    MacroF1,
    /// Micro-averaged F1 (classification, multi-label).
    MicroF1,
    /// Support-weighted F1 (classification, multi-label).
    WeightedF1,
    /// Accuracy (classification).
    Accuracy,
    /// Exact label-set matches (multi-label).
    SubsetAccuracy,
    /// Mean absolute error, lower is better (regression).
    Mae,
    /// Validation loss, lower is better (supervised fine-tuning).
    Loss,
    /// Validation perplexity, lower is better (supervised fine-tuning).
    Perplexity,
    /// Mean squared error, lower is better (regression).
    Mse,
    /// Root mean squared error, lower is better (regression).
    Rmse,
    /// Coefficient of determination (regression).
    R2,
    /// Pearson's correlation (regression).
    Pearson,
}

impl StopMetric {
    /// The metric's value in `m`, signed so that higher is better (errors are negated); `None`
    /// when the metric does not exist for `m`'s task.
    pub fn of(self, m: &crate::metrics::Metrics) -> Option<f64> {
        use crate::metrics::Metrics as M;
        Some(match (self, m) {
            (Self::MacroF1, M::Classification(c)) => c.macro_f1,
            (Self::MicroF1, M::Classification(c)) => c.micro_avg.f1,
            (Self::WeightedF1, M::Classification(c)) => c.weighted_avg.f1,
            (Self::Accuracy, M::Classification(c)) => c.accuracy,
            (Self::MacroF1, M::MultiLabel(c)) => c.macro_avg.f1,
            (Self::MicroF1, M::MultiLabel(c)) => c.micro_avg.f1,
            (Self::WeightedF1, M::MultiLabel(c)) => c.weighted_avg.f1,
            (Self::SubsetAccuracy, M::MultiLabel(c)) => c.subset_accuracy,
            (Self::Mae, M::Regression(r)) => -r.mae,
            (Self::Mse, M::Regression(r)) => -r.mse,
            (Self::Rmse, M::Regression(r)) => -r.rmse,
            (Self::R2, M::Regression(r)) => r.r2,
            (Self::Pearson, M::Regression(r)) => r.pearson,
            (Self::Loss, M::LanguageModel(m)) => -m.loss,
            (Self::Perplexity, M::LanguageModel(m)) => -m.perplexity,
            _ => return None,
        })
    }

    /// Whether the metric exists for `task`.
    pub fn suits(self, task: &Task) -> bool {
        match task {
            Task::Classification => matches!(
                self,
                Self::MacroF1 | Self::MicroF1 | Self::WeightedF1 | Self::Accuracy
            ),
            Task::MultiLabel { .. } => matches!(
                self,
                Self::MacroF1 | Self::MicroF1 | Self::WeightedF1 | Self::SubsetAccuracy
            ),
            Task::Regression { .. } => matches!(
                self,
                Self::Mae | Self::Mse | Self::Rmse | Self::R2 | Self::Pearson
            ),
            Task::Sft { .. } => matches!(self, Self::Loss | Self::Perplexity),
        }
    }
}

fn default_patience() -> usize {
    3
}
fn default_true() -> bool {
    true
}

fn default_accumulation() -> usize {
    1
}
fn default_epochs() -> f64 {
    1.0
}
fn default_batch_size() -> usize {
    16
}
fn default_max_length() -> usize {
    128
}
fn default_lr() -> f64 {
    5e-4
}
fn default_warmup() -> usize {
    20
}
fn default_checkpoint_every() -> usize {
    50
}
fn default_keep_checkpoints() -> usize {
    3
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            steps: None,
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            gradient_accumulation: default_accumulation(),
            gradient_checkpointing: false,
            strategy: Strategy::default(),
            fit: Default::default(),
            max_length: default_max_length(),
            pad_to_multiple_of: None,
            group_by_length: false,
            learning_rate: default_lr(),
            warmup_steps: default_warmup(),
            weight_decay: 0.0,
            optimizer: Default::default(),
            clip: Default::default(),
            schedule: Default::default(),
            early_stopping: None,
            label_smoothing: 0.0,
            l1: 0.0,
            head_dropout: None,
            class_weights: None,
            seed: 0,
            eval_every: 0,
            checkpoint_every: default_checkpoint_every(),
            keep_checkpoints: default_keep_checkpoints(),
        }
    }
}

impl TrainSettings {
    /// Total optimizer steps for `train_rows` training examples.
    pub fn total_steps(&self, train_rows: usize) -> usize {
        match self.steps {
            Some(steps) => steps,
            None => {
                ((self.epochs * train_rows as f64) / self.effective_batch() as f64).ceil() as usize
            }
        }
    }

    /// Examples per optimizer step: `batch_size × gradient_accumulation`.
    pub fn effective_batch(&self) -> usize {
        self.batch_size * self.gradient_accumulation.max(1)
    }
}

/// What a finished run leaves beside its adapter: the job and the label names in head order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The job that trained the adapter.
    pub job: JobSpec,
    /// Label names; index `i` is the head's output `i`.
    pub labels: Vec<String>,
}

impl JobSpec {
    /// Rows held out for evaluation out of `rows`.
    pub fn eval_rows(&self, rows: usize) -> usize {
        self.data
            .eval_rows
            .unwrap_or_else(|| (rows as f64 * self.data.eval_fraction).round() as usize)
    }

    /// Parses a job file: JSON when it starts with `{`, TOML otherwise (see [`RawJob`], which
    /// also takes the CLI's flags before the one parse).
    pub fn parse(text: &str) -> Result<Self, TrainError> {
        RawJob::from_text(text)?.parse()
    }

    /// The job as pretty JSON (what the page exports).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every setting once, with a message that names the setting to change.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |msg: &str| Err(TrainError::Job(msg.to_string()));
        let t = &self.train;
        if t.batch_size == 0 {
            return bad("train.batch_size must be at least 1");
        }
        if t.gradient_accumulation == 0 {
            return bad("train.gradient_accumulation must be at least 1");
        }
        if !(t.l1.is_finite() && t.l1 >= 0.0) {
            return bad("train.l1 must be zero or positive");
        }
        if let Some(p) = t.head_dropout
            && !(0.0..1.0).contains(&p)
        {
            return bad("train.head_dropout must be in [0, 1)");
        }
        match &self.task {
            Task::Classification => {}
            Task::MultiLabel {
                separator,
                threshold,
            } => {
                if separator.is_empty() {
                    return bad("task.separator must not be empty");
                }
                if !(threshold.is_finite() && *threshold > 0.0 && *threshold < 1.0) {
                    return bad("task.threshold must be between 0 and 1 (exclusive)");
                }
            }
            Task::Regression { huber_delta, .. } => {
                if !(huber_delta.is_finite() && *huber_delta > 0.0) {
                    return bad("task.huber_delta must be a positive number");
                }
            }
            Task::Sft { .. } => {
                if t.strategy != Strategy::Lora {
                    return bad(
                        "supervised fine-tuning trains LoRA adapters: train.strategy must be \
                         lora (a language model has no head to train alone)",
                    );
                }
                if t.head_dropout.is_some() {
                    return bad(
                        "train.head_dropout applies to classifiers; an SFT run has no head",
                    );
                }
            }
        }
        if self.model.quantize.is_some() && !matches!(self.task, Task::Sft { .. }) {
            return bad(
                "model.quantize applies to chat models (task sft); a classifier's base is f32",
            );
        }
        if !matches!(self.task, Task::Classification) {
            if t.label_smoothing != 0.0 {
                return bad("train.label_smoothing applies to single-label classification only");
            }
            if t.class_weights.is_some() {
                return bad("train.class_weights applies to single-label classification only");
            }
        }
        if t.pad_to_multiple_of == Some(0) {
            return bad("train.pad_to_multiple_of must be at least 1 (1 pads to the longest row)");
        }
        if t.max_length < 2 {
            return bad("train.max_length must be at least 2 (room for [CLS] and [SEP])");
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return bad("train.learning_rate must be a positive number");
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return bad("train.weight_decay must be zero or positive");
        }
        t.optimizer.validate().map_err(TrainError::Job)?;
        for (name, v) in [
            ("max_norm", t.clip.max_norm),
            ("max_value", t.clip.max_value),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(TrainError::Job(format!(
                    "train.clip.{name} must be a positive number, found {v}"
                )));
            }
        }
        if !(0.0..1.0).contains(&t.label_smoothing) {
            return bad("train.label_smoothing must be in [0, 1)");
        }
        if let Some(e) = &t.early_stopping {
            if t.eval_every == 0 {
                return bad("train.early_stopping needs train.eval_every above 0");
            }
            if let Some(metric) = e.metric
                && !metric.suits(&self.task)
            {
                return Err(TrainError::Job(format!(
                    "train.early_stopping.metric `{}` does not exist for this task; choose one \
                     of {}",
                    serde_json::to_string(&metric)
                        .unwrap_or_default()
                        .trim_matches('"'),
                    match self.task {
                        Task::Classification => "macro_f1, micro_f1, weighted_f1, accuracy",
                        Task::MultiLabel { .. } =>
                            "macro_f1, micro_f1, weighted_f1, subset_accuracy",
                        Task::Regression { .. } => "mae, mse, rmse, r2, pearson",
                        Task::Sft { .. } => "loss, perplexity",
                    }
                )));
            }
            if e.patience == 0 {
                return bad("train.early_stopping.patience must be at least 1");
            }
            if !(e.min_delta.is_finite() && e.min_delta >= 0.0) {
                return bad("train.early_stopping.min_delta must be zero or positive");
            }
        }
        if t.keep_checkpoints == 0 {
            return bad("train.keep_checkpoints must be at least 1");
        }
        if t.steps == Some(0) {
            return bad("train.steps must be at least 1");
        }
        if t.steps.is_none() && !(t.epochs.is_finite() && t.epochs > 0.0) {
            return bad("train.epochs must be positive when train.steps is not set");
        }
        if self.data.eval_rows.is_none()
            && !(self.data.eval_fraction > 0.0 && self.data.eval_fraction < 1.0)
        {
            return bad("data.eval_fraction must be between 0 and 1 (exclusive)");
        }
        let d = &self.data;
        if !(0.0..1.0).contains(&d.test_fraction) {
            return bad("data.test_fraction must be in [0, 1)");
        }
        if d.test_fraction > 0.0 && d.split != SplitMethod::Stratified {
            return bad("data.test_fraction needs data.split = \"stratified\"");
        }
        if d.split == SplitMethod::Stratified && d.eval_rows.is_some() {
            return bad("a stratified split takes data.eval_fraction, not data.eval_rows");
        }
        if d.split == SplitMethod::Stratified && d.eval_fraction + d.test_fraction >= 1.0 {
            return bad("data.eval_fraction + data.test_fraction must leave rows to train on");
        }
        if let Some(a) = &d.augment
            && !(a.p.is_finite() && (0.0..=1.0).contains(&a.p))
        {
            return bad("data.augment.p must be between 0 and 1");
        }
        self.lora
            .validate()
            .map_err(|e| TrainError::Job(e.to_string()))
    }
}

impl JobSpec {
    /// A job with every setting at its default for `task`, on the model at `model_path` and
    /// the data at `data_path`: what the page's form starts from and what an adapter without
    /// a run record is read with.
    pub fn default_for(task: Task, model_path: &str, data_path: &str) -> Result<Self, TrainError> {
        let task = serde_json::to_value(&task).map_err(|e| TrainError::Job(e.to_string()))?;
        let mut raw = RawJob::empty();
        raw.set("model.path", model_path.into())
            .set("data.path", data_path.into())
            .set("task", task);
        raw.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_give_the_same_job() {
        let toml = r#"
            [model]
            path = "assets/all-MiniLM-L6-v2"
            [data]
            path = "data.csv"
            label_column = "sentiment"
            eval_rows = 2000
            [train]
            steps = 200
        "#;
        let job = JobSpec::parse(toml).unwrap();
        assert_eq!(job.lora.r, 8);
        assert_eq!(job.lora.target_modules, vec!["query", "value"]);
        assert_eq!(job.train.batch_size, 16);
        let again = JobSpec::parse(&job.to_json()).unwrap();
        assert_eq!(job, again);
    }

    #[test]
    fn unknown_and_bad_settings_are_named() {
        let err = JobSpec::parse("[model]\npath='m'\n[data]\npath='d'\n[train]\nbatchsize=3")
            .unwrap_err();
        assert!(err.to_string().contains("batchsize"), "{err}");
        let err = JobSpec::parse("[model]\npath='m'\n[data]\npath='d'\n[train]\nbatch_size=0")
            .unwrap_err();
        assert!(err.to_string().contains("train.batch_size"), "{err}");
        let err = JobSpec::parse("[model]\npath='m'\n[data]\npath='d'\n[lora]\nr=0").unwrap_err();
        assert!(err.to_string().contains("r must be"), "{err}");
    }
}
