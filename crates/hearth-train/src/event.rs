//! What a run reports while it runs: [`Event`]s, which the CLI draws as a progress bar (or
//! prints as JSON lines) and the page as charts, and the [`TrainSummary`] of a finished run.

use hearth_data::LoadReport;
use serde::Serialize;

use crate::job::Task;
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::split::Assignment;

/// What a run reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The data was read and split, before the model is built.
    Data(DataSummary),
    /// The memory planner checked the job against the machine's limits (not on resume): the
    /// plan, and the settings the run uses after `train.fit`.
    Planned {
        /// The plan of the job as given.
        plan: Box<Plan>,
        /// Whether `train.fit = "auto"` changed the settings below.
        changed: bool,
        /// Rows per micro-batch the run uses.
        batch_size: usize,
        /// Micro-batches per optimizer step the run uses.
        gradient_accumulation: usize,
        /// Tokens per row the run uses.
        max_length: usize,
        /// Whether the run uses gradient checkpointing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gradient_checkpointing: bool,
    },
    /// Training is about to start.
    Started {
        /// Total steps planned.
        steps: usize,
        /// Steps already done by the checkpoint this run resumed from (0 for a fresh run).
        resumed_at: usize,
        /// Training rows.
        train_rows: usize,
        /// Held-out rows.
        eval_rows: usize,
        /// Parameters that receive gradients.
        trainable_params: usize,
        /// All parameters, adapters included.
        total_params: usize,
        /// A chat run's conversations: how many the max length cut, how, and how many it
        /// dropped, with a suggestion (`null` for classifiers).
        conversations: Option<Box<crate::sft::SftCuts>>,
    },
    /// One optimizer step finished.
    Step {
        /// 1-based step.
        step: usize,
        /// Total steps planned.
        steps: usize,
        /// Passes over the training rows so far.
        epoch: f64,
        /// Mean loss of the step's examples (the task's loss, without the L1 penalty).
        loss: f32,
        /// Learning rate used by this step.
        learning_rate: f64,
        /// Training throughput since the start.
        examples_per_s: f64,
    },
    /// An evaluation on the held-out rows finished.
    Evaluated {
        /// Steps done when it ran.
        step: usize,
        /// Its metrics.
        metrics: Metrics,
    },
    /// Early stopping put back the adapter of its best evaluation.
    Restored {
        /// Steps run.
        step: usize,
        /// The step of the restored adapter.
        best_step: usize,
    },
    /// The test rows were scored once, after training.
    Tested {
        /// Steps done.
        step: usize,
        /// Its metrics.
        metrics: Metrics,
    },
    /// Training ended.
    Finished(TrainSummary),
    /// Something the user should know that does not stop the run (tensors of the model's
    /// weights that nothing uses).
    Warning {
        /// What was found, in a sentence.
        message: String,
    },
}

/// Figures of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSummary {
    /// Steps run.
    pub steps: usize,
    /// Whether the caller stopped the run before `steps`.
    pub stopped: bool,
    /// Wall time of the training steps, evaluation excluded.
    pub train_seconds: f64,
    /// Training examples per second.
    pub examples_per_s: f64,
    /// Real (non-padding) tokens per second.
    pub real_tokens_per_s: f64,
    /// Padded tokens per second (what the device computed).
    pub padded_tokens_per_s: f64,
    /// Loss of the first step.
    pub loss_first: f32,
    /// Mean loss of the last 20 steps.
    pub loss_last20: f32,
    /// Metrics on the held-out rows at the end (of the restored adapter after early
    /// stopping), if there were any.
    pub eval: Option<Metrics>,
    /// Whether early stopping ended the run.
    pub early_stopped: bool,
    /// The step whose adapter early stopping restored, if it restored one.
    pub best_step: Option<usize>,
    /// Ranks the run trained in (1 in one process).
    pub ranks: usize,
    /// Milliseconds per step this process spent exchanging gradients, losses and token
    /// counts with the other ranks (reading the gradients back included), over the steps this
    /// session ran (0 in one process).
    pub communication_ms_per_step: f64,
    /// Milliseconds per step this process waited for the slowest rank before the exchange
    /// (0 in one process): unequal work or a busy machine, not the network.
    pub waiting_ms_per_step: f64,
    /// The share of this session's training time that exchange took.
    pub communication_share: f64,
}

/// What the data of a run holds, once read and split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSummary {
    /// The job's task.
    pub task: Task,
    /// Rows (conversations for SFT) of the dataset after cleaning.
    pub rows: usize,
    /// Rows to train on, augmented copies included.
    pub train_rows: usize,
    /// Held-out rows.
    pub eval_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Label names in head order (empty for regression and SFT).
    pub labels: Vec<String>,
    /// Rows carrying each label in the whole dataset, in label order.
    pub class_counts: Vec<usize>,
    /// The smallest and largest target of a regression dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_range: Option<(f32, f32)>,
    /// How the file was read.
    pub report: LoadReport,
    /// Which file rows went where: for the front end to save beside the run (`split.json`),
    /// not printed with the event.
    #[serde(skip)]
    pub assignment: Assignment,
}
