//! Sequence classification (single-label, multi-label, regression) of texts with a BERT-family
//! encoder: the dataset read for the task and split, the model built for the job's strategy,
//! the [`Objective`] the generic loop ([`crate::trainer::train_with`]) runs, and prediction and
//! evaluation with a trained model.

use burn::module::Module;
use burn::tensor::{Device, Gradients, Tensor};
use hearth_data::LoadReport;
use hearth_models::ModelFiles;
use hearth_models::bert::{BertForSequenceClassification, BertInput};
use hearth_models::tokenizer::TextTokenizer;

use crate::collective::Collective;
use crate::event::TrainSummary;
use crate::job::{EarlyStopping, Task};
use crate::metrics::Metrics;
use crate::split::{Assignment, Rows, SplitData};
use crate::task::Targets;
use crate::trainer::{BatchLoss, Hooks, Objective, Resume, read_f32, train_with};
use crate::{JobSpec, TrainError, TrainSettings};

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

/// Texts with their targets.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    /// The texts.
    pub texts: &'a [String],
    /// The target of each text.
    pub targets: &'a Targets,
}

impl Examples<'_> {
    fn len(&self) -> usize {
        self.texts.len().min(self.targets.len())
    }
}

/// What a run learns from: the task, the training rows and the held-out rows.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// What the head predicts and its loss.
    pub task: &'a Task,
    /// The rows to train on.
    pub train: Examples<'a>,
    /// The rows to evaluate on.
    pub eval: Examples<'a>,
}

/// Reads the job's dataset from the file's bytes for the job's task and applies the job's
/// cleaning.
pub fn load_dataset(job: &JobSpec, bytes: &[u8]) -> Result<TaskData, TrainError> {
    if job.task.is_sft() {
        return Err(TrainError::Job(
            "an SFT job reads conversations, not labelled texts".into(),
        ));
    }
    let format = crate::split::data_format(job)?;
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
pub fn split(job: &JobSpec, dataset: TaskData) -> Result<SplitData<Rows>, TrainError> {
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
        class_counts: dataset.label_counts(),
        rows: dataset.len(),
        assignment: Assignment {
            method: job.data.split,
            seed,
            train,
            validation,
            test,
            augmented,
        },
        labels: dataset.label_names,
        report: dataset.report,
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

/// A classifier's objective: the task's loss on tokenized texts, its metrics on held-out texts.
#[derive(Debug)]
pub struct Classify<'a> {
    tokenizer: &'a TextTokenizer,
    task: &'a Task,
    train: Examples<'a>,
    eval: Examples<'a>,
    class_weights: Option<Vec<f64>>,
    label_smoothing: f64,
    batch_size: usize,
    /// `train.gradient_checkpointing`: each encoder layer recomputed in the backward pass.
    checkpointing: bool,
}

impl<'a> Classify<'a> {
    /// The objective of `data` for a head with `num_labels` outputs, with the class weights,
    /// label smoothing and batch size of `settings`.
    pub fn new(
        tokenizer: &'a TextTokenizer,
        data: TrainData<'a>,
        settings: &TrainSettings,
        num_labels: usize,
    ) -> Result<Self, TrainError> {
        let TrainData { task, train, eval } = data;
        let class_weights = match (&settings.class_weights, train.targets.classes()) {
            (Some(w), Some(classes)) => Some(
                w.resolve(&classes[..train.len()], num_labels)
                    .map_err(TrainError::Job)?,
            ),
            _ => None,
        };
        Ok(Self {
            tokenizer,
            task,
            train,
            eval,
            class_weights,
            label_smoothing: settings.label_smoothing,
            batch_size: settings.batch_size,
            checkpointing: settings.gradient_checkpointing,
        })
    }
}

/// A micro-batch's token counts, for its [`BatchLoss`].
struct Tokens {
    real: usize,
    padded: usize,
}

impl Tokens {
    fn with(self, loss: Tensor<1>) -> BatchLoss {
        BatchLoss {
            loss,
            real_tokens: self.real,
            padded_tokens: self.padded,
        }
    }
}

impl Classify<'_> {
    /// The training rows `rows`, tokenized, on the model's device.
    fn input(
        &self,
        model: &BertForSequenceClassification,
        rows: &[usize],
    ) -> Result<(BertInput, Tokens), TrainError> {
        let texts: Vec<&str> = rows.iter().map(|&i| self.train.texts[i].as_str()).collect();
        let encoded = self.tokenizer.encode_batch(&texts)?;
        let tokens = Tokens {
            real: encoded.real_tokens(),
            padded: encoded.batch_size * encoded.seq_len,
        };
        Ok((
            BertInput::new(&encoded, &model.classifier.weight.device()),
            tokens,
        ))
    }

    /// The task's loss of the training rows `rows` from their logits.
    fn loss(&self, logits: Tensor<2>, rows: &[usize]) -> Tensor<1> {
        self.train.targets.loss(
            self.task,
            logits,
            rows,
            self.class_weights.as_deref(),
            self.label_smoothing,
        )
    }
}

impl Objective for Classify<'_> {
    type Model = BertForSequenceClassification;

    fn train_rows(&self) -> usize {
        self.train.len()
    }

    fn eval_rows(&self) -> usize {
        self.eval.len()
    }

    fn row_lengths(&self) -> Option<Vec<usize>> {
        // Tokenized in chunks; a row's length is its real (unmasked) tokens.
        let mut lengths = Vec::with_capacity(self.train.len());
        for chunk in self.train.texts[..self.train.len()].chunks(256) {
            let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let encoded = self.tokenizer.encode_batch(&texts).ok()?;
            lengths.extend(
                encoded
                    .attention_mask
                    .chunks(encoded.seq_len.max(1))
                    .map(|row| row.iter().filter(|&&m| m != 0).count()),
            );
        }
        Some(lengths)
    }

    fn batch_loss(&self, model: &Self::Model, rows: &[usize]) -> Result<BatchLoss, TrainError> {
        let (input, tokens) = self.input(model, rows)?;
        Ok(tokens.with(self.loss(model.forward(&input), rows)))
    }

    fn batch_gradients(
        &self,
        model: &Self::Model,
        rows: &[usize],
        scale: &dyn Fn(Tensor<1>) -> Tensor<1>,
        sink: &mut dyn FnMut(Gradients),
    ) -> Result<BatchLoss, TrainError> {
        if !self.checkpointing {
            return crate::trainer::whole_batch_gradients(self, model, rows, scale, sink);
        }
        let (input, tokens) = self.input(model, rows)?;
        // The loss itself, for the step's report; its scaled value is backpropagated.
        let loss = std::cell::RefCell::new(Tensor::<1>::zeros([1], &input.input_ids.device()));
        model.backward_checkpointed(
            &input,
            &|logits| {
                let value = self.loss(logits, rows);
                loss.replace(value.clone().detach());
                scale(value)
            },
            sink,
        );
        Ok(tokens.with(loss.into_inner()))
    }

    async fn evaluate(
        &self,
        model: &Self::Model,
        collective: &dyn Collective,
    ) -> Result<Metrics, TrainError> {
        if collective.size() == 1 {
            return evaluate(model, self.tokenizer, self.task, self.eval, self.batch_size).await;
        }
        // Each rank scores its share of the rows into a zeroed table of every row's scores;
        // the sum over the ranks is then the whole table on every rank.
        let n = self.eval.texts.len();
        let outputs = model.num_labels();
        let mine: Vec<usize> = crate::collective::shard(n, collective).collect();
        let texts: Vec<String> = mine.iter().map(|&i| self.eval.texts[i].clone()).collect();
        let scores =
            predict_scores(model, self.tokenizer, self.task, &texts, self.batch_size).await?;
        let mut table = vec![0.0f32; n * outputs];
        for (&i, row) in mine.iter().zip(&scores) {
            table[i * outputs..(i + 1) * outputs].copy_from_slice(row);
        }
        collective.sum_f32(&mut table)?;
        let scores: Vec<Vec<f32>> = table.chunks(outputs.max(1)).map(<[f32]>::to_vec).collect();
        Ok(self.eval.targets.metrics(self.task, &scores, outputs))
    }

    fn stop_value(&self, rule: &EarlyStopping, metrics: &Metrics) -> Option<f64> {
        rule.metric_for(self.task).of(metrics)
    }

    async fn trained_weights(
        &self,
        model: &Self::Model,
        strategy: hearth_models::Strategy,
    ) -> Result<Vec<u8>, TrainError> {
        Ok(hearth_models::strategy::trained_weights(model, strategy).await?)
    }
}

/// Fine-tunes `model` (built on an autodiff device) for `task` on `train` and evaluates on
/// `eval`, from the start or from `resume`.
///
/// Each optimizer step averages the gradients of `gradient_accumulation` micro-batches of
/// `batch_size` rows, so it equals one step on their union.
///
/// A non-finite loss ends the run with [`TrainError::NonFiniteLoss`]; the last checkpoint
/// stays the last good state.
pub async fn train(
    model: BertForSequenceClassification,
    tokenizer: &TextTokenizer,
    data: TrainData<'_>,
    settings: &TrainSettings,
    resume: Option<Resume>,
    hooks: Hooks<'_>,
) -> Result<(BertForSequenceClassification, TrainSummary), TrainError> {
    let objective = Classify::new(tokenizer, data, settings, model.num_labels())?;
    train_with(model, &objective, settings, resume, hooks).await
}

/// The head's scores `[rows][outputs]` for `texts`, in batches, without dropout: class
/// probabilities, label probabilities or predicted numbers, as `task` reads them
/// ([`crate::task::scores`]).
pub async fn predict_scores(
    model: &BertForSequenceClassification,
    tokenizer: &TextTokenizer,
    task: &Task,
    texts: &[String],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let model = model.valid();
    let outputs = model.num_labels();
    let device = model.classifier.weight.device();
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch_size.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let encoded = tokenizer.encode_batch(&refs)?;
        let input = BertInput::new(&encoded, &device);
        let scores = crate::task::scores(task, model.forward(&input));
        let flat = read_f32(scores.reshape([chunk.len() * outputs])).await?;
        out.extend(flat.chunks(outputs).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// The task's metrics of `model` on `examples`.
pub async fn evaluate(
    model: &BertForSequenceClassification,
    tokenizer: &TextTokenizer,
    task: &Task,
    examples: Examples<'_>,
    batch_size: usize,
) -> Result<Metrics, TrainError> {
    let scores = predict_scores(model, tokenizer, task, examples.texts, batch_size).await?;
    Ok(examples.targets.metrics(task, &scores, model.num_labels()))
}
