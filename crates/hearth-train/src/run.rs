//! One run for every task, from bytes to bytes: the CLI and the page both call [`start`] with
//! the job, the model's and the data's files and the device they chose, and get the trained
//! model and the files to save. It reads and splits the data, tells the front end what it
//! found ([`Event::Data`]), checks the job against the memory planner and applies `train.fit`
//! ([`Event::Planned`]), builds the model the task needs, continues from a checkpoint or an
//! initial adapter, trains through the generic loop and exports the adapter. A front end never
//! chooses a pipeline: the task does, here.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use burn::tensor::Device;
use hearth_models::ModelFiles;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lm_tokenizer::LmTokenizer;
use hearth_models::tokenizer::{TextTokenizer, TokenCounter};

use crate::adapter::{
    AdapterFiles, check_chat_files, check_classifier_model, check_init_adapter, load_chat,
};
use crate::base::{NamedFiles, bert_files};
use crate::batching::Padding;
use crate::classify::{Classify, TrainData};
use crate::event::DataSummary;
use crate::plan::{Limits, Plan};
use crate::sft::SftReport;
use crate::split::{Part, Rows, SplitData};
use crate::task::Targets;
use crate::trainer::{Hooks, Objective, Snapshot, train_with};
use crate::{Checkpoint, Event, JobSpec, Metrics, TrainError, TrainSummary};

/// What a run reads: the base model's files, the dataset file and, when the job names
/// `model.init_adapter`, that adapter directory's files.
#[derive(Debug, Default)]
pub struct RunInputs {
    /// The base model's files by name ([`crate::base`]).
    pub model: NamedFiles,
    /// The dataset file's bytes (its format comes from `data.format` or `data.path`).
    pub data: Vec<u8>,
    /// `adapter_config.json`, `adapter_model.safetensors` and (optionally) `hearth_run.json`
    /// of the adapter the job starts from.
    pub init_adapter: Option<NamedFiles>,
}

/// Where a run reports (every [`Event`], every checkpoint to store) and whom it trains with.
pub struct RunHooks<'a> {
    /// Sees every event; `ControlFlow::Break` stops the run after the current step (it still
    /// ends with a checkpoint and its adapter).
    pub on_event: &'a mut dyn FnMut(&Event) -> ControlFlow<()>,
    /// Stores a checkpoint (called on rank 0 only); an error ends the run.
    pub on_checkpoint: &'a mut dyn FnMut(Checkpoint) -> Result<(), TrainError>,
    /// The processes the run trains in: [`crate::Single`], or the ranks of a data-parallel
    /// job ([`crate::collective`]).
    pub collective: &'a dyn crate::Collective,
    /// A stop request shared with another thread (the CLI's Ctrl-C handler): once it is set,
    /// the run ends after the current step as on `ControlFlow::Break`. The library itself
    /// never listens for signals.
    pub stop: Option<&'a AtomicBool>,
}

impl std::fmt::Debug for RunHooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunHooks")
    }
}

/// The model a run trained, with what using it needs.
// One per run, moved a few times: boxing the classifier would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TrainedModel {
    /// A BERT-family classifier (or regressor) and its tokenizer.
    Classifier {
        /// The model with its trained adapters and head.
        model: BertForSequenceClassification,
        /// Its tokenizer, padding and truncating at the job's max length.
        tokenizer: TextTokenizer,
    },
    /// A chat model with its trained adapters, and its tokenizer with the chat template.
    Chat {
        /// The decoder.
        model: LlamaForCausalLM,
        /// Its tokenizer.
        tokenizer: LmTokenizer,
    },
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutput {
    /// The job as it ran (after `train.fit`); the one the run record holds.
    pub job: JobSpec,
    /// The trained model.
    pub model: TrainedModel,
    /// Label names in head order (empty for regression and SFT).
    pub labels: Vec<String>,
    /// Figures of the run.
    pub summary: TrainSummary,
    /// Validation before the first step, when the task scores the base model (SFT).
    pub before: Option<Metrics>,
    /// Metrics on the test rows, when the split has any.
    pub test: Option<Metrics>,
    /// What tokenizing the training conversations found (SFT).
    pub sft: Option<SftReport>,
    /// The files to save: the adapter (or head, or model) and the run record.
    pub files: AdapterFiles,
}

/// Runs `job` on `inputs` on `device` (autodiff), from the start or from `resume` (a
/// checkpoint of this job on this data), checked against `limits` for `train.fit`.
pub async fn start(
    job: &JobSpec,
    inputs: RunInputs,
    device: &Device,
    limits: &Limits,
    resume: Option<&Checkpoint>,
    mut hooks: RunHooks<'_>,
) -> Result<RunOutput, TrainError> {
    job.validate()?;
    let RunInputs {
        model,
        data,
        init_adapter,
    } = inputs;
    if job.model.init_adapter.is_some() && init_adapter.is_none() {
        return Err(TrainError::Job(
            "model.init_adapter names an adapter whose files were not given".into(),
        ));
    }
    if job.task.is_sft() {
        let split = crate::sft::load_conversations(job, &data)?;
        drop(data);
        let _ = (hooks.on_event)(&Event::Data(summarize(job, &split, None)));
        if let Some(message) = check_chat_files(&model)? {
            let _ = (hooks.on_event)(&Event::Warning { message });
        }
        let on = On {
            device,
            padding: job.train.padding(limits.runtime),
            limits,
        };
        return run_chat(job, model, split, init_adapter, on, resume, hooks).await;
    }
    let data_bytes = data.len() as u64;
    let split = crate::classify::split(job, crate::classify::load_dataset(job, &data)?)?;
    drop(data);
    let range = [&split.train, &split.eval, &split.test]
        .iter()
        .filter_map(|part| part.targets.value_range())
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
    let _ = (hooks.on_event)(&Event::Data(summarize(job, &split, range)));
    let files = bert_files(model)?;
    // The job against the model, before the planner: rows that fit its positions, weights
    // that fit its config.
    if let Some(message) = check_classifier_model(job, &files, "train.max_length (--max-length)")? {
        let _ = (hooks.on_event)(&Event::Warning { message });
    }
    // A resumed run keeps its job: adapting it would make it another job.
    let job = match resume {
        Some(_) => job.clone(),
        None => {
            let sizes = FileSizes {
                model: files.weights.len() as u64,
                data: data_bytes,
            };
            let replicas = hooks.collective.models_in_memory();
            let plan = plan_split(
                job,
                &files.config,
                &files.tokenizer,
                sizes,
                &split,
                limits,
                replicas,
            )?;
            settle(job, plan, &mut hooks)?
        }
    };
    let on = On {
        device,
        padding: job.train.padding(limits.runtime),
        limits,
    };
    run_classifier(&job, files, split, init_adapter, on, resume, hooks).await
}

/// The job `train.fit` makes of `job` under `plan` (refused with `"check"` when it does not
/// fit), reported as the `planned` event.
fn settle(job: &JobSpec, plan: Plan, hooks: &mut RunHooks<'_>) -> Result<JobSpec, TrainError> {
    let settled = crate::plan::settle(job, &plan)?;
    let t = &settled.train;
    let _ = (hooks.on_event)(&Event::Planned {
        changed: settled != *job,
        batch_size: t.batch_size,
        gradient_accumulation: t.gradient_accumulation,
        max_length: t.max_length,
        gradient_checkpointing: t.gradient_checkpointing,
        plan: Box::new(plan),
    });
    Ok(settled)
}

/// Where a run computes: its device, and how far its batches are padded there
/// (`train.pad_to_multiple_of`, whose default depends on the device).
#[derive(Debug, Clone, Copy)]
struct On<'a> {
    device: &'a Device,
    padding: Padding,
    /// The machine's limits, for a chat run's plan (a classifier's is made before).
    limits: &'a Limits,
}

fn summarize<P: Part>(
    job: &JobSpec,
    split: &SplitData<P>,
    target_range: Option<(f32, f32)>,
) -> DataSummary {
    DataSummary {
        task: job.task.clone(),
        rows: split.rows,
        train_rows: split.train.len(),
        eval_rows: split.eval.len(),
        test_rows: split.test.len(),
        labels: split.labels.clone(),
        class_counts: split.class_counts.clone(),
        target_range,
        report: split.report.clone(),
        assignment: split.assignment.clone(),
    }
}

/// Bytes of the files the planner counts as held in memory.
#[derive(Debug, Clone, Copy)]
pub struct FileSizes {
    /// `model.safetensors`.
    pub model: u64,
    /// The dataset file.
    pub data: u64,
}

/// The memory plan of a classifier job on its model (`config.json`, `tokenizer.json` and the
/// sizes of the weights and data files) and data (the dataset file's bytes), against `limits`,
/// trained by `replicas` models in one process: `hearth plan`, and what [`start`] checks
/// before a run.
pub fn plan(
    job: &JobSpec,
    config: &[u8],
    tokenizer: &[u8],
    sizes: FileSizes,
    data: &[u8],
    limits: &Limits,
    replicas: usize,
) -> Result<Plan, TrainError> {
    if job.task.is_sft() {
        return Err(TrainError::Job(
            "a chat-model (SFT) job is planned from its model's files: plan_chat_files".into(),
        ));
    }
    let split = crate::classify::split(job, crate::classify::load_dataset(job, data)?)?;
    plan_split(job, config, tokenizer, sizes, &split, limits, replicas)
}

/// The plan of a chat-model (SFT) job for `hearth plan`: the model's config from its `files` by
/// name (a `.gguf` file's metadata or `config.json`; no weights are read), the conversations of
/// `data` tokenized with its chat template, as the run plans itself once the model is loaded,
/// trained by `replicas` models in one process.
pub fn plan_chat_files(
    job: &JobSpec,
    files: &[(String, Vec<u8>)],
    data: &[u8],
    limits: &Limits,
    replicas: usize,
) -> Result<Plan, TrainError> {
    let crate::Task::Sft { chat_template, .. } = &job.task else {
        return Err(TrainError::Job("the job's task is not sft".into()));
    };
    let config = hearth_models::chat_model::config_from_named(files)?;
    let tokenizer = crate::adapter::with_job_template(
        hearth_models::chat_model::tokenizer_from_named(files)?,
        chat_template.as_deref(),
    )?;
    let split = crate::sft::load_conversations(job, data)?;
    let (objective, _) = crate::sft::objective(job, &tokenizer, &split)?;
    Ok(crate::plan::plan_chat(
        job,
        &config,
        limits,
        &chat_context(file_bytes(files), &objective, replicas),
    ))
}

/// The bytes of a model's files by name.
fn file_bytes(files: &[(String, Vec<u8>)]) -> u64 {
    files.iter().map(|(_, b)| b.len() as u64).sum()
}

/// What the chat planner is told besides the job: the model's files' bytes (held while the base
/// loads), the training rows and the longest of them, and the models trained in the process.
fn chat_context(
    model_file_bytes: u64,
    objective: &crate::sft::Sft,
    replicas: usize,
) -> crate::plan::Context {
    crate::plan::Context {
        num_outputs: 1,
        model_file_bytes,
        data_rows: objective.train_rows.len() as u64,
        longest_row: objective.row_lengths().and_then(|l| l.into_iter().max()),
        replicas,
        ..Default::default()
    }
}

fn plan_split(
    job: &JobSpec,
    config: &[u8],
    tokenizer: &[u8],
    sizes: FileSizes,
    split: &SplitData<Rows>,
    limits: &Limits,
    replicas: usize,
) -> Result<Plan, TrainError> {
    let counter = TokenCounter::from_bytes(tokenizer)?;
    let row_lengths: Vec<usize> = split
        .train
        .texts
        .iter()
        .map(|t| counter.count(t).0)
        .collect();
    let ctx = crate::plan::Context {
        num_outputs: crate::task::num_outputs(&job.task, split.labels.len()),
        model_file_bytes: sizes.model,
        data_file_bytes: sizes.data,
        data_rows: split.rows as u64,
        longest_row: row_lengths.iter().copied().max(),
        row_lengths,
        has_pooler: None,
        replicas,
    };
    crate::plan::plan(job, config, limits, &ctx)
}

/// Trains `model` on `objective` through the generic loop, from the start or from `resume`,
/// wrapping every snapshot into a [`Checkpoint`] of `job` on data with `labels` and
/// `fingerprint`. When the objective asks for it ([`Objective::evaluate_first`]), a fresh run
/// scores the held-out rows before the first step and reports it as an evaluation at step 0.
async fn fit<O: Objective>(
    job: &JobSpec,
    objective: &O,
    model: O::Model,
    labels: &[String],
    fingerprint: &str,
    resume: Option<&Checkpoint>,
    hooks: &mut RunHooks<'_>,
) -> Result<(O::Model, TrainSummary, Option<Metrics>), TrainError> {
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Job("the model has no parameters".into()))?;
    let resume = resume
        .map(|c| c.resume(job, labels, fingerprint, &device.inner()))
        .transpose()?;
    let before = if objective.evaluate_first() && resume.is_none() && objective.eval_rows() > 0 {
        let metrics = objective.evaluate(&model, hooks.collective).await?;
        let _ = (hooks.on_event)(&Event::Evaluated {
            step: 0,
            metrics: metrics.clone(),
        });
        Some(metrics)
    } else {
        None
    };
    let on_checkpoint = &mut *hooks.on_checkpoint;
    let mut wrap =
        |snapshot: Snapshot| on_checkpoint(Checkpoint::new(job, labels, fingerprint, snapshot)?);
    let (on_event, stop) = (&mut *hooks.on_event, hooks.stop);
    // The shared stop request, seen after every event as the sink's own `Break`.
    let mut watch = |event: &Event| match on_event(event) {
        ControlFlow::Continue(()) if stop.is_some_and(|s| s.load(Ordering::SeqCst)) => {
            ControlFlow::Break(())
        }
        flow => flow,
    };
    let (model, summary) = train_with(
        model,
        objective,
        &job.train,
        resume,
        Hooks {
            on_event: &mut watch,
            on_checkpoint: &mut wrap,
            collective: hooks.collective,
        },
    )
    .await?;
    Ok((model, summary, before))
}

async fn run_classifier(
    job: &JobSpec,
    mut files: ModelFiles,
    split: SplitData<Rows>,
    init_adapter: Option<NamedFiles>,
    On {
        device, padding, ..
    }: On<'_>,
    resume: Option<&Checkpoint>,
    mut hooks: RunHooks<'_>,
) -> Result<RunOutput, TrainError> {
    let labels = split.labels.clone();
    // The trained weights the run starts from: the checkpoint's, the initial adapter's, or
    // none (the seeded init).
    files.adapter = match (resume, &init_adapter) {
        (Some(checkpoint), _) => Some(checkpoint.adapter.weights.clone()),
        (None, Some(adapter)) => Some(check_init_adapter(adapter, job, &labels)?.1),
        (None, None) => None,
    };
    // Replicas on threads build the model once and share its tensors.
    let (mut model, tokenizer) = crate::collective::built_once(hooks.collective, || {
        crate::classify::build_model(job, &files, labels.len(), device)
    })?;
    // The weights file is in the model now; only its config and tokenizer are exported later.
    files.weights = Vec::new();
    // Training, evaluation and the trained model's predictions all pad to the run's buckets.
    let tokenizer = tokenizer.with_pad_to_multiple_of(padding.multiple);
    // A fresh regression head starts at the mean training target: its first steps then learn
    // from the texts instead of walking the bias from 0 to the targets' scale.
    if let (Targets::Values(values), None) = (&split.train.targets, &files.adapter)
        && !values.is_empty()
    {
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        model = model.with_head_bias(&[mean as f32])?;
    }
    let objective = Classify::new(
        &tokenizer,
        TrainData {
            task: &job.task,
            train: split.train.examples(),
            eval: split.eval.examples(),
        },
        &job.train,
        model.num_labels(),
    )?;
    let fingerprint = split.fingerprint();
    let (model, summary, _) = fit(
        job,
        &objective,
        model,
        &labels,
        &fingerprint,
        resume,
        &mut hooks,
    )
    .await?;
    let test = if split.test.is_empty() {
        None
    } else {
        let metrics = crate::classify::evaluate(
            &model,
            &tokenizer,
            &job.task,
            split.test.examples(),
            job.train.batch_size,
        )
        .await?;
        let _ = (hooks.on_event)(&Event::Tested {
            step: summary.steps,
            metrics: metrics.clone(),
        });
        Some(metrics)
    };
    files.adapter = None;
    let saved = AdapterFiles::export(job, &model, &labels, &files).await?;
    Ok(RunOutput {
        job: job.clone(),
        model: TrainedModel::Classifier { model, tokenizer },
        labels,
        summary,
        before: None,
        test,
        sft: None,
        files: saved,
    })
}

async fn run_chat(
    job: &JobSpec,
    files: NamedFiles,
    split: SplitData<crate::split::Conversations>,
    init_adapter: Option<NamedFiles>,
    On {
        device,
        padding,
        limits,
    }: On<'_>,
    resume: Option<&Checkpoint>,
    mut hooks: RunHooks<'_>,
) -> Result<RunOutput, TrainError> {
    let init = match (resume, &init_adapter) {
        (None, Some(adapter)) => Some(check_init_adapter(adapter, job, &[])?),
        _ => None,
    };
    let adapter = match (resume, &init) {
        (Some(c), _) => Some((c.adapter.config.as_str(), c.adapter.weights.as_slice())),
        (None, Some((config, weights))) => Some((config.as_str(), weights.as_slice())),
        (None, None) => None,
    };
    let model_file_bytes = file_bytes(&files);
    // Replicas on threads load the model once and share its tensors.
    let chat =
        crate::collective::built_once(hooks.collective, || load_chat(job, files, adapter, device))?;
    let (mut objective, mut cuts) = crate::sft::objective(job, &chat.tokenizer, &split)?;
    cuts.suggestion = crate::sft::suggestion(&cuts, &chat.config, job.train.batch_size);
    let report = cuts.train.clone();
    objective.cuts = Some(cuts);
    objective.padding = padding;
    // The step against the machine's limits, once the model's shape and the rows' lengths
    // are known; a resumed run keeps its job.
    let job = &match resume {
        Some(_) => job.clone(),
        None => {
            let plan = crate::plan::plan_chat(
                job,
                &chat.config,
                limits,
                &chat_context(
                    model_file_bytes,
                    &objective,
                    hooks.collective.models_in_memory(),
                ),
            );
            settle(job, plan, &mut hooks)?
        }
    };
    objective.checkpointing = job.train.gradient_checkpointing;
    let fingerprint = split.fingerprint();
    let (model, summary, before) = fit(
        job,
        &objective,
        chat.model,
        &[],
        &fingerprint,
        resume,
        &mut hooks,
    )
    .await?;
    let weights = hearth_models::peft::export_adapter(&model).await?;
    Ok(RunOutput {
        job: job.clone(),
        files: AdapterFiles::with_weights(job, &[], weights)?,
        model: TrainedModel::Chat {
            model,
            tokenizer: chat.tokenizer,
        },
        labels: Vec::new(),
        summary,
        before,
        test: None,
        sft: Some(report),
    })
}
