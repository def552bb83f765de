//! A whole run from bytes: dataset and model files in, trained adapter files out. The CLI and
//! the page both go through here, so a job gives the same run wherever it is started.

use std::ops::ControlFlow;
use std::path::Path;

use burn::tensor::Device;
use hearth_data::{DataFormat, Dataset};
use hearth_models::ModelFiles;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::peft::{self, AdapterConfig};
use hearth_models::tokenizer::TextTokenizer;
use serde::Serialize;

use crate::optim::Optimizer;
use crate::trainer::{Hooks, Resume, Snapshot};
use crate::{Checkpoint, Event, Examples, JobSpec, RunRecord, TrainError, TrainSummary};

/// Texts with their label indices, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rows {
    /// The texts.
    pub texts: Vec<String>,
    /// Label index of each text.
    pub labels: Vec<usize>,
}

impl Rows {
    /// A borrowed view for the training loop.
    pub fn examples(&self) -> Examples<'_> {
        Examples {
            texts: &self.texts,
            labels: &self.labels,
        }
    }

    fn pick(dataset: &Dataset, indices: &[usize]) -> Self {
        Self {
            texts: indices.iter().map(|&i| dataset.texts[i].clone()).collect(),
            labels: indices.iter().map(|&i| dataset.labels[i]).collect(),
        }
    }
}

/// A job's dataset split into training and held-out rows.
#[derive(Debug, Clone)]
pub struct SplitData {
    /// The whole dataset (after cleaning), with its label names and load report.
    pub dataset: Dataset,
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
            for (text, label) in rows.texts.iter().zip(&rows.labels) {
                hash.update((text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
                let name = self
                    .dataset
                    .label_names
                    .get(*label)
                    .map_or("", String::as_str);
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

/// Reads the job's dataset from the file's bytes and applies the job's cleaning.
pub fn load_dataset(job: &JobSpec, bytes: &[u8]) -> Result<Dataset, TrainError> {
    let format = data_format(job)?;
    if !format.has_columns() {
        return Err(hearth_data::DataError::NoLabels.into());
    }
    let rows = hearth_data::load_rows(
        bytes,
        format,
        &job.data.text_column,
        Some(&job.data.label_column),
    )?;
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
    Ok(hearth_data::into_classification(
        rows,
        &job.data.label_column,
    )?)
}

/// Splits a dataset into training, held-out and test rows as the job says, and augments the
/// training rows if asked.
pub fn split(job: &JobSpec, dataset: Dataset) -> Result<SplitData, TrainError> {
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
            let s = hearth_data::stratified_split(
                &dataset.labels,
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
        let (texts, labels) =
            hearth_data::augment::augment(&train_rows.texts, &train_rows.labels, settings);
        augmented = texts.len();
        train_rows.texts.extend(texts);
        train_rows.labels.extend(labels);
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

/// Builds the job's classifier for `num_labels` labels on `device` (autodiff when training),
/// with its tokenizer. Seeds the device (dropout) and the host draw of the initial adapters.
pub fn build_model(
    job: &JobSpec,
    files: &ModelFiles,
    num_labels: usize,
    device: &Device,
) -> Result<(BertForSequenceClassification, TextTokenizer), TrainError> {
    let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, job.train.max_length)?;
    device.seed(job.train.seed);
    let model = hearth_models::build_classifier(
        files,
        num_labels,
        job.model.pooling,
        &job.lora,
        job.train.seed,
        device,
    )?;
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
    pub test: Option<crate::ClassificationMetrics>,
    /// Label names; index `i` is the head's output `i`.
    pub labels: Vec<String>,
}

/// The settings that decide a run's computation: the job without its file locations
/// (a resumed run may find the same files elsewhere).
fn without_paths(job: &JobSpec) -> JobSpec {
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
    let labels = data.dataset.label_names.clone();
    let (model, tokenizer) = build_model(job, files, labels.len(), device)?;
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
            let model = peft::import_adapter(model, &checkpoint.adapter.weights)?;
            let mut optimizer =
                Optimizer::with(job.train.optimizer, job.train.weight_decay, job.train.clip);
            optimizer.load_safetensors(&checkpoint.optimizer, &device.clone().inner())?;
            let progress = checkpoint.progress.clone();
            (
                model,
                Some(Resume {
                    progress,
                    optimizer,
                }),
            )
        }
    };
    let mut wrap =
        |snapshot: Snapshot| on_checkpoint(Checkpoint::new(job, &labels, &fingerprint, snapshot)?);
    let (model, summary) = crate::train(
        model,
        &tokenizer,
        data.train.examples(),
        data.eval.examples(),
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
            data.test.examples(),
            job.train.batch_size,
            labels.len(),
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

/// The files of an adapter directory, as bytes.
#[derive(Debug, Clone)]
pub struct AdapterFiles {
    /// `adapter_config.json`.
    pub config: String,
    /// `adapter_model.safetensors`.
    pub weights: Vec<u8>,
    /// `hearth_run.json`: the job and the label names.
    pub record: String,
}

impl AdapterFiles {
    /// PEFT's config file name.
    pub const CONFIG: &str = "adapter_config.json";
    /// PEFT's weights file name.
    pub const WEIGHTS: &str = "adapter_model.safetensors";
    /// Hearth's run record file name.
    pub const RECORD: &str = "hearth_run.json";

    /// The adapter of a trained model in PEFT's format, plus the run record.
    pub async fn export(
        job: &JobSpec,
        model: &BertForSequenceClassification,
        labels: &[String],
    ) -> Result<Self, TrainError> {
        Self::with_weights(job, labels, peft::export_adapter(model).await?)
    }

    /// The adapter files around already exported `adapter_model.safetensors` bytes.
    pub fn with_weights(
        job: &JobSpec,
        labels: &[String],
        weights: Vec<u8>,
    ) -> Result<Self, TrainError> {
        let config = AdapterConfig::for_classification(&job.lora, &job.model.path);
        let record = RunRecord {
            job: job.clone(),
            labels: labels.to_vec(),
        };
        Ok(Self {
            config: pretty(&config)?,
            weights,
            record: pretty(&record)?,
        })
    }
}

fn pretty<T: Serialize>(value: &T) -> Result<String, TrainError> {
    serde_json::to_string_pretty(value).map_err(|e| TrainError::Job(e.to_string()))
}
