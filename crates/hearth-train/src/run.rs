//! A whole run from bytes: dataset and model files in, trained adapter files out. The CLI and
//! the page both go through here, so a job gives the same run wherever it is started.

use std::ops::ControlFlow;
use std::path::Path;

use burn::tensor::Device;
use hearth_data::{DataFormat, LoadReport};
use hearth_models::ModelFiles;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::peft::AdapterConfig;
use hearth_models::tokenizer::TextTokenizer;
use serde::Serialize;

use crate::task::Targets;
use crate::trainer::{Hooks, Resume, Snapshot};
use crate::{
    Checkpoint, Event, Examples, JobSpec, Metrics, RunRecord, Task, TrainError, TrainSummary,
};

/// A job's dataset, read for its task: texts, their targets, the label names (none for
/// regression) and what loading found out.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    /// The texts.
    pub texts: Vec<String>,
    /// The target of each text.
    pub targets: Targets,
    /// Label names, sorted; output `i` of the head predicts label `i`. Empty for regression.
    pub label_names: Vec<String>,
    /// What loading found out.
    pub report: LoadReport,
}

impl TaskData {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Rows carrying each label, in label order (empty for regression).
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.label_names.len()];
        let mut count = |l: usize| {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        };
        match &self.targets {
            Targets::Classes(v) => v.iter().for_each(|&l| count(l)),
            Targets::LabelSets(v) => v.iter().flatten().for_each(|&l| count(l)),
            Targets::Values(_) => {}
        }
        counts
    }
}

/// Texts with their targets, owned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rows {
    /// The texts.
    pub texts: Vec<String>,
    /// The target of each text.
    pub targets: Targets,
}

impl Rows {
    /// A borrowed view for the training loop.
    pub fn examples(&self) -> Examples<'_> {
        Examples {
            texts: &self.texts,
            targets: &self.targets,
        }
    }

    fn pick(dataset: &TaskData, indices: &[usize]) -> Self {
        Self {
            texts: indices.iter().map(|&i| dataset.texts[i].clone()).collect(),
            targets: dataset.targets.pick(indices),
        }
    }
}

/// A job's dataset split into training and held-out rows.
#[derive(Debug, Clone)]
pub struct SplitData {
    /// The whole dataset (after cleaning), with its label names and load report.
    pub dataset: TaskData,
    /// Training rows, in the order of the seeded split, augmented copies after them.
    pub train: Rows,
    /// Held-out (validation) rows.
    pub eval: Rows,
    /// Test rows, scored once at the end (empty unless the job asks for a test share).
    pub test: Rows,
    /// Which dataset rows went where, to save beside the run.
    pub assignment: Assignment,
}

/// The row indices (into the cleaned dataset) of each part of a split, and how it was drawn.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Assignment {
    /// `holdout` or `stratified`.
    pub method: crate::SplitMethod,
    /// The seed.
    pub seed: u64,
    /// Training rows, before augmentation.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// Augmented training rows added.
    pub augmented: usize,
}

impl SplitData {
    /// SHA-256 (hex) of the training and held-out rows with their labels, in order: equal
    /// exactly when a run would see the same data.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for (part, rows) in [
            ("train", &self.train),
            ("eval", &self.eval),
            ("test", &self.test),
        ] {
            hash.update(part.as_bytes());
            hash.update((rows.texts.len() as u64).to_le_bytes());
            for (i, text) in rows.texts.iter().enumerate() {
                hash.update((text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
                let name = rows.targets.describe(i, &self.dataset.label_names);
                hash.update((name.len() as u64).to_le_bytes());
                hash.update(name.as_bytes());
            }
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The format of the job's data: `data.format` if set, else the extension of `data.path`.
pub fn data_format(job: &JobSpec) -> Result<DataFormat, TrainError> {
    let explicit = job
        .data
        .format
        .as_deref()
        .map(str::parse::<DataFormat>)
        .transpose()?;
    Ok(DataFormat::resolve(explicit, Path::new(&job.data.path))?)
}

/// Reads the job's dataset from the file's bytes for the job's task and applies the job's
/// cleaning.
pub fn load_dataset(job: &JobSpec, bytes: &[u8]) -> Result<TaskData, TrainError> {
    if job.task.is_sft() {
        return Err(TrainError::Job(
            "an SFT job reads conversations, not labelled texts (crate::sft)".into(),
        ));
    }
    let format = data_format(job)?;
    if !format.has_columns() {
        return Err(hearth_data::DataError::NoLabels.into());
    }
    let column = &job.data.label_column;
    let rows = hearth_data::load_rows_with(
        bytes,
        format,
        &job.data.text_column,
        Some(column),
        job.data.skip_unlabeled,
    )?;
    // Numbers are checked before cleaning, so an error names the row as it is in the file.
    if matches!(job.task, Task::Regression { .. }) {
        hearth_data::parse_values(rows.labels.as_deref().unwrap_or_default(), column)?;
    }
    let rows = if job.data.clean == hearth_data::clean::CleanOptions::default() {
        rows
    } else {
        let cleaned = hearth_data::clean::clean(
            rows.texts,
            rows.labels,
            &job.data.clean,
            &hearth_data::neardup::NearDupSettings::default(),
        );
        hearth_data::RawRows {
            texts: cleaned.texts,
            labels: cleaned.labels,
            report: rows.report,
        }
    };
    if rows.texts.is_empty() {
        return Err(hearth_data::DataError::NoDataRows {
            reason: "no rows are left",
        }
        .into());
    }
    match &job.task {
        Task::Classification => {
            let d = hearth_data::into_classification(rows, column)?;
            Ok(TaskData {
                texts: d.texts,
                targets: Targets::Classes(d.labels),
                label_names: d.label_names,
                report: d.report,
            })
        }
        Task::MultiLabel { separator, .. } => {
            let labels = rows.labels.unwrap_or_default();
            let (sets, names) = hearth_data::parse_label_sets(&labels, separator, column)?;
            Ok(TaskData {
                texts: rows.texts,
                targets: Targets::LabelSets(sets),
                label_names: names,
                report: rows.report,
            })
        }
        Task::Regression { .. } => {
            let labels = rows.labels.unwrap_or_default();
            Ok(TaskData {
                texts: rows.texts,
                targets: Targets::Values(hearth_data::parse_values(&labels, column)?),
                label_names: Vec::new(),
                report: rows.report,
            })
        }
        Task::Sft { .. } => Err(TrainError::Job(
            "an SFT job reads conversations, not labelled texts".into(),
        )),
    }
}

/// Splits a dataset into training, held-out and test rows as the job says, and augments the
/// training rows if asked.
pub fn split(job: &JobSpec, dataset: TaskData) -> Result<SplitData, TrainError> {
    let n = dataset.texts.len();
    let seed = job.train.seed;
    let (train, validation, test) = match job.data.split {
        crate::SplitMethod::Holdout => {
            let split = hearth_data::holdout_split(n, job.eval_rows(n), seed)?;
            (split.train, split.eval, Vec::new())
        }
        crate::SplitMethod::Stratified => {
            let refs: Vec<&str> = dataset.texts.iter().map(String::as_str).collect();
            let groups = hearth_data::duplicate_groups(
                &refs,
                Some(&hearth_data::neardup::NearDupSettings::default()),
            );
            let strata = dataset.targets.strata(dataset.label_names.len());
            let s = hearth_data::stratified_split(
                &strata,
                &groups,
                job.data.eval_fraction,
                job.data.test_fraction,
                seed,
            )?;
            (s.train, s.validation, s.test)
        }
    };
    let mut train_rows = Rows::pick(&dataset, &train);
    let mut augmented = 0;
    if let Some(settings) = &job.data.augment {
        // Each copy carries the index of the row it came from, which picks its target.
        let sources: Vec<usize> = (0..train_rows.texts.len()).collect();
        let (texts, from) = hearth_data::augment::augment(&train_rows.texts, &sources, settings);
        augmented = texts.len();
        let targets = train_rows.targets.pick(&from);
        train_rows.texts.extend(texts);
        train_rows.targets.extend(targets);
    }
    Ok(SplitData {
        train: train_rows,
        eval: Rows::pick(&dataset, &validation),
        test: Rows::pick(&dataset, &test),
        assignment: Assignment {
            method: job.data.split,
            seed,
            train,
            validation,
            test,
            augmented,
        },
        dataset,
    })
}

/// Builds the job's model for `labels` label names (the head has one output per label, one
/// in all for regression) on `device` (autodiff when training), with its tokenizer. Seeds the
/// device (dropout) and the host draw of the initial adapters.
pub fn build_model(
    job: &JobSpec,
    files: &ModelFiles,
    labels: usize,
    device: &Device,
) -> Result<(BertForSequenceClassification, TextTokenizer), TrainError> {
    let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, job.train.max_length)?;
    device.seed(job.train.seed);
    let model = hearth_models::build_for_strategy(
        files,
        crate::task::num_outputs(&job.task, labels),
        job.model.pooling,
        &job.lora,
        job.train.strategy,
        job.train.seed,
        device,
    )?;
    let model = match job.train.head_dropout {
        Some(p) => model.with_head_dropout(p),
        None => model,
    };
    Ok((model, tokenizer))
}

/// A finished run: the trained model, its figures and the label names in head order.
#[derive(Debug)]
pub struct RunOutput {
    /// The model with its trained adapters and head.
    pub model: BertForSequenceClassification,
    /// Figures of the run.
    pub summary: TrainSummary,
    /// Metrics on the test rows, when the split has any.
    pub test: Option<Metrics>,
    /// Label names; index `i` is the head's output `i`.
    pub labels: Vec<String>,
}

/// The settings that decide a run's computation: the job without its file locations
/// (a resumed run may find the same files elsewhere).
pub(crate) fn without_paths(job: &JobSpec) -> JobSpec {
    let mut job = job.clone();
    job.model.path.clear();
    job.data.path.clear();
    job
}

/// Builds the model, trains it on the split data and evaluates it, reporting every [`Event`]
/// and handing every checkpoint to `on_checkpoint`. With `resume`, the run continues from that
/// checkpoint, which must belong to this job and this data.
pub async fn run(
    job: &JobSpec,
    files: &ModelFiles,
    data: &SplitData,
    device: &Device,
    resume: Option<&Checkpoint>,
    on_event: &mut dyn FnMut(&Event) -> ControlFlow<()>,
    on_checkpoint: &mut dyn FnMut(Checkpoint) -> Result<(), TrainError>,
) -> Result<RunOutput, TrainError> {
    job.validate()?;
    // Gradient checkpointing is a property of the autodiff device the model lives on.
    let device = &if job.train.gradient_checkpointing && device.is_autodiff() {
        device.clone().gradient_checkpointing()
    } else {
        device.clone()
    };
    let labels = data.dataset.label_names.clone();
    let (mut model, tokenizer) = build_model(job, files, labels.len(), device)?;
    // A fresh regression head starts at the mean training target: its first steps then learn
    // from the texts instead of walking the bias from 0 to the targets' scale.
    if let (Targets::Values(values), None, None) = (&data.train.targets, resume, &files.adapter)
        && !values.is_empty()
    {
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        model = model.with_head_bias(&[mean as f32])?;
    }
    // Hashing every row once per run, not once per checkpoint.
    let fingerprint = data.fingerprint();
    let (model, resume) = match resume {
        None => (model, None),
        Some(checkpoint) => {
            let record = checkpoint.record()?;
            if without_paths(&record.job) != without_paths(job) {
                return Err(TrainError::Checkpoint(
                    "the checkpoint was written by a different job (settings differ)".into(),
                ));
            }
            if record.labels != labels || checkpoint.data_fingerprint != fingerprint {
                return Err(TrainError::Checkpoint(
                    "the data differs from the data the checkpoint was trained on".into(),
                ));
            }
            // The checkpoint's trained weights on a freshly built base.
            let files = ModelFiles {
                adapter: Some(checkpoint.adapter.weights.clone()),
                ..files.clone()
            };
            drop(model);
            let (model, _) = build_model(job, &files, labels.len(), device)?;
            let state = Resume::from_checkpoint(job, checkpoint, &device.clone().inner())?;
            (model, Some(state))
        }
    };
    let mut wrap =
        |snapshot: Snapshot| on_checkpoint(Checkpoint::new(job, &labels, &fingerprint, snapshot)?);
    let (model, summary) = crate::train(
        model,
        &tokenizer,
        crate::TrainData {
            task: &job.task,
            train: data.train.examples(),
            eval: data.eval.examples(),
        },
        &job.train,
        resume,
        Hooks {
            on_event,
            on_checkpoint: &mut wrap,
        },
    )
    .await?;
    let test = if data.test.texts.is_empty() {
        None
    } else {
        let metrics = crate::evaluate(
            &model,
            &tokenizer,
            &job.task,
            data.test.examples(),
            job.train.batch_size,
        )
        .await?;
        let _ = on_event(&Event::Tested {
            step: summary.steps,
            metrics: metrics.clone(),
        });
        Some(metrics)
    };
    Ok(RunOutput {
        model,
        summary,
        test,
        labels,
    })
}

/// The files a run leaves, as bytes: by strategy, PEFT's adapter (`adapter_config.json`,
/// `adapter_model.safetensors`), the head (`head.safetensors`) or a complete model directory
/// (`config.json`, `model.safetensors`, `tokenizer.json`); and `hearth_run.json`, the job and
/// the label names.
#[derive(Debug, Clone)]
pub struct AdapterFiles {
    /// What the run trained, which names the files.
    pub strategy: hearth_models::Strategy,
    /// `adapter_config.json` for LoRA runs; empty otherwise.
    pub config: String,
    /// The trained weights, in the file [`hearth_models::Strategy::weights_file`] names.
    pub weights: Vec<u8>,
    /// `hearth_run.json`: the job and the label names.
    pub record: String,
    /// A full model's `config.json` and `tokenizer.json` (final output only, not checkpoints).
    pub extra: Vec<(&'static str, Vec<u8>)>,
}

impl AdapterFiles {
    /// PEFT's config file name.
    pub const CONFIG: &str = "adapter_config.json";
    /// PEFT's weights file name.
    pub const WEIGHTS: &str = "adapter_model.safetensors";
    /// Hearth's run record file name.
    pub const RECORD: &str = "hearth_run.json";

    /// What a model trained by `job` saves (PEFT's format for LoRA), plus the run record.
    /// `base` is the base model's files (a full model's directory takes its config and
    /// tokenizer).
    pub async fn export(
        job: &JobSpec,
        model: &BertForSequenceClassification,
        labels: &[String],
        base: &ModelFiles,
    ) -> Result<Self, TrainError> {
        let trained = hearth_models::export_trained(
            model,
            job.train.strategy,
            &job.lora,
            base,
            &job.model.path,
            labels,
            job.task.problem_type().ok_or_else(|| {
                TrainError::Job("an SFT run exports a causal-LM adapter, not a classifier".into())
            })?,
        )
        .await?;
        let mut files = Self::with_weights(job, labels, trained.weights().to_vec())?;
        if let hearth_models::Trained::Model {
            config, tokenizer, ..
        } = trained
        {
            files.extra = vec![("config.json", config), ("tokenizer.json", tokenizer)];
        }
        Ok(files)
    }

    /// The files around already exported weights of the job's strategy.
    pub fn with_weights(
        job: &JobSpec,
        labels: &[String],
        weights: Vec<u8>,
    ) -> Result<Self, TrainError> {
        let strategy = job.train.strategy;
        let config = if job.task.is_sft() {
            pretty(&AdapterConfig::for_causal_lm(&job.lora, &job.model.path))?
        } else if strategy == hearth_models::Strategy::Lora {
            pretty(&AdapterConfig::for_classification(
                &job.lora,
                &job.model.path,
            ))?
        } else {
            String::new()
        };
        let record = RunRecord {
            job: job.clone(),
            labels: labels.to_vec(),
        };
        Ok(Self {
            strategy,
            config,
            weights,
            record: pretty(&record)?,
            extra: Vec::new(),
        })
    }

    /// Every file by name, the run record last.
    pub fn files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut files = Vec::new();
        if !self.config.is_empty() {
            files.push((Self::CONFIG, self.config.clone().into_bytes()));
        }
        files.push((self.strategy.weights_file(), self.weights.clone()));
        files.extend(self.extra.iter().cloned());
        files.push((Self::RECORD, self.record.clone().into_bytes()));
        files
    }
}

fn pretty<T: Serialize>(value: &T) -> Result<String, TrainError> {
    serde_json::to_string_pretty(value).map_err(|e| TrainError::Job(e.to_string()))
}
