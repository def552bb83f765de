//! A Hearth fine-tuning run: the job spec, one entry point for every task ([`run::start`]),
//! the generic training loop and its objectives (a classifier's, a chat model's), schedules,
//! optimizers, metrics, checkpoints, the memory planner and events.
//!
//! The loop is `async` because the browser can only read tensors back asynchronously; natively
//! the CLI blocks on it. Progress leaves the loop as [`Event`]s, which the CLI draws as a
//! progress bar (or JSON lines) and the page as charts. This crate never picks a backend: the
//! caller hands it a model built on the device it chose.

pub mod adapter;
pub mod base;
pub mod batching;
pub mod checkpoint;
pub mod classify;
pub mod collective;
pub mod event;
pub mod job;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod plan;
pub mod run;
pub mod schedule;
pub mod sft;
pub mod split;
pub mod task;
mod trainer;

pub use adapter::AdapterFiles;
pub use base::NamedFiles;
pub use checkpoint::Checkpoint;
pub use classify::{Examples, TaskData, TrainData, evaluate, predict_scores, train};
pub use collective::{Collective, Single, ThreadGroup, ThreadRank};
pub use event::{DataSummary, Event, TrainSummary};
pub use job::{
    DataSpec, EarlyStopping, JobSpec, ModelSpec, RawJob, RegressionLoss, RunRecord, SplitMethod,
    StopMetric, Strategy, Task, TrainSettings,
};
pub use metrics::{
    ClassificationMetrics, LanguageModelMetrics, Metrics, MultiLabelMetrics, RegressionMetrics,
};
pub use run::{RunHooks, RunInputs, RunOutput, TrainedModel, start};
pub use split::{Assignment, Conversations, Rows, SplitData};
pub use task::Targets;
pub use trainer::{BatchLoss, Hooks, Objective, Progress, Resume, Snapshot, train_with};

/// What can end a run early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The job spec is malformed or holds an impossible setting.
    #[error("job spec: {0}")]
    Job(String),
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] hearth_models::ModelError),
    /// The dataset cannot be used as the job asks.
    #[error(transparent)]
    Data(#[from] hearth_data::DataError),
    /// The loss stopped being a number.
    #[error(
        "the loss became {loss} at step {step} (learning rate {learning_rate:.2e}); \
         lower train.learning_rate or check the data"
    )]
    NonFiniteLoss {
        /// 1-based step.
        step: usize,
        /// The value read.
        loss: f32,
        /// The learning rate of that step.
        learning_rate: f64,
    },
    /// A checkpoint cannot be written, read or used.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The device failed to run or read back a computation.
    #[error("device error: {0}")]
    Device(String),
    /// The ranks of a data-parallel run could not work together.
    #[error("data-parallel run: {0}")]
    Collective(String),
}
