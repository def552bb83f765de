//! The training loop, evaluation and prediction.
//!
//! One page long on purpose: forward, loss, `backward`, `GradientsParams::from_grads`,
//! `optim.step`, with the learning rate a pure function of the step. Every read back to the host
//! is `into_data_async`, so the same loop runs in a browser tab.

use std::ops::ControlFlow;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Tensor;
use hearth_data::python_shuffle_indices;
use hearth_models::bert::{BertForSequenceClassification, BertInput};
use hearth_models::tokenizer::TextTokenizer;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::job::EarlyStopping;
use crate::job::Task;
use crate::metrics::Metrics;
use crate::optim::Optimizer;
use crate::schedule::learning_rate;
use crate::task::Targets;
use crate::{TrainError, TrainSettings};

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

/// What the loop reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
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
}

/// The order in which training rows are visited: the split's order first, then a fresh
/// seeded shuffle for every further epoch.
fn epoch_order(n: usize, epoch: usize, seed: u64) -> Vec<usize> {
    if epoch == 0 {
        (0..n).collect()
    } else {
        python_shuffle_indices(n, seed.wrapping_add(epoch as u64))
    }
}

async fn read_f32(tensor: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

/// Where a run stands after some steps: everything besides the model and the optimizer that
/// the next step depends on, and the figures the final summary needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Optimizer steps done.
    pub step: usize,
    /// Passes over the training rows started so far (0-based).
    pub epoch: usize,
    /// Position in this epoch's order of the next training row.
    pub cursor: usize,
    /// Loss of every step so far.
    pub losses: Vec<f32>,
    /// Real (non-padding) tokens trained on.
    pub real_tokens: usize,
    /// Padded tokens computed.
    pub padded_tokens: usize,
    /// Wall time of the training steps so far.
    pub train_seconds: f64,
    /// The latest evaluation and the step it ran at.
    pub last_eval: Option<(usize, Metrics)>,
    /// Early stopping: the best value so far and its step.
    #[serde(default)]
    pub best: Option<(usize, f64)>,
    /// Early stopping: evaluations since the best.
    #[serde(default)]
    pub stale_evals: usize,
}

/// A model-level checkpoint, taken by the loop: the adapter (PEFT's safetensors), the
/// optimizer state and the progress. [`crate::Checkpoint`] adds the job around it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where the run stands.
    pub progress: Progress,
    /// The trained weights at this step (the file [`hearth_models::Strategy::weights_file`]
    /// names).
    pub adapter: Vec<u8>,
    /// The optimizer state ([`Optimizer::to_safetensors`]).
    pub optimizer: Vec<u8>,
}

/// The state a resumed run continues from; its model already carries the checkpoint's adapter.
#[derive(Debug, Clone)]
pub struct Resume {
    /// Where the run stood.
    pub progress: Progress,
    /// The optimizer, state restored.
    pub optimizer: Optimizer,
}

impl Resume {
    /// The state `checkpoint` holds for `job`: its progress, and the job's optimizer with the
    /// checkpoint's state loaded on `device` (without autodiff).
    pub fn from_checkpoint(
        job: &crate::JobSpec,
        checkpoint: &crate::Checkpoint,
        device: &burn::tensor::Device,
    ) -> Result<Self, TrainError> {
        let t = &job.train;
        let mut optimizer = Optimizer::with(t.optimizer, t.weight_decay, t.clip);
        optimizer.load_safetensors(&checkpoint.optimizer, device)?;
        Ok(Self {
            progress: checkpoint.progress.clone(),
            optimizer,
        })
    }
}

/// Where the loop reports: progress events, and checkpoints to keep.
pub struct Hooks<'a> {
    /// Sees every [`Event`]; `ControlFlow::Break` stops after the current step.
    pub on_event: &'a mut dyn FnMut(&Event) -> ControlFlow<()>,
    /// Stores a checkpoint, every `checkpoint_every` steps and at the end. An error ends the
    /// run: training on without the checkpoints the user asked for would risk their work.
    pub on_checkpoint: &'a mut dyn FnMut(Snapshot) -> Result<(), TrainError>,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// The seed of the device RNG (dropout) for a step: a pure function of the job's seed and the
/// step, so a run resumed from a checkpoint draws the same masks as one never interrupted.
fn step_seed(seed: u64, step: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(step as u64)
}

/// A micro-batch's loss and its token counts.
#[derive(Debug)]
pub struct BatchLoss {
    /// The mean loss of the micro-batch (with its autodiff graph).
    pub loss: Tensor<1>,
    /// Real (non-padding) tokens in it.
    pub real_tokens: usize,
    /// Tokens computed, padding included.
    pub padded_tokens: usize,
}

/// What the loop optimizes: a model's loss on micro-batches of training rows, its evaluation
/// on held-out rows, and what of it a checkpoint keeps. [`train`] is the loop over a
/// classifier's objective; [`crate::sft`] has the language model's.
pub trait Objective {
    /// The model trained.
    type Model: Module + Clone;
    /// Training rows (texts, conversations or packed sequences).
    fn train_rows(&self) -> usize;
    /// Held-out rows.
    fn eval_rows(&self) -> usize;
    /// The loss of the training rows `rows`, with dropout on.
    fn batch_loss(&self, model: &Self::Model, rows: &[usize]) -> Result<BatchLoss, TrainError>;
    /// Metrics on the held-out rows.
    fn evaluate(&self, model: &Self::Model) -> impl Future<Output = Result<Metrics, TrainError>>;
    /// The value early stopping maximizes, read from an evaluation's metrics.
    fn stop_value(&self, rule: &EarlyStopping, metrics: &Metrics) -> Option<f64>;
    /// The trained weights (what a checkpoint stores and [`Snapshot::adapter`] holds).
    fn trained_weights(
        &self,
        model: &Self::Model,
        strategy: hearth_models::Strategy,
    ) -> impl Future<Output = Result<Vec<u8>, TrainError>>;
}

/// A classifier's objective: the task's loss on tokenized texts, its metrics on held-out texts.
struct Classify<'a> {
    tokenizer: &'a TextTokenizer,
    task: &'a Task,
    train: Examples<'a>,
    eval: Examples<'a>,
    class_weights: Option<Vec<f64>>,
    label_smoothing: f64,
    batch_size: usize,
}

impl Objective for Classify<'_> {
    type Model = BertForSequenceClassification;

    fn train_rows(&self) -> usize {
        self.train.len()
    }

    fn eval_rows(&self) -> usize {
        self.eval.len()
    }

    fn batch_loss(&self, model: &Self::Model, rows: &[usize]) -> Result<BatchLoss, TrainError> {
        let texts: Vec<&str> = rows.iter().map(|&i| self.train.texts[i].as_str()).collect();
        let encoded = self.tokenizer.encode_batch(&texts)?;
        let input = BertInput::new(&encoded, &model.classifier.weight.device());
        let loss = self.train.targets.loss(
            self.task,
            model.forward(&input),
            rows,
            self.class_weights.as_deref(),
            self.label_smoothing,
        );
        Ok(BatchLoss {
            loss,
            real_tokens: encoded.real_tokens(),
            padded_tokens: encoded.batch_size * encoded.seq_len,
        })
    }

    async fn evaluate(&self, model: &Self::Model) -> Result<Metrics, TrainError> {
        evaluate(model, self.tokenizer, self.task, self.eval, self.batch_size).await
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

async fn snapshot<O: Objective>(
    objective: &O,
    model: &O::Model,
    strategy: hearth_models::Strategy,
    optim: &Optimizer,
    progress: &Progress,
) -> Result<Snapshot, TrainError> {
    Ok(Snapshot {
        progress: progress.clone(),
        adapter: objective.trained_weights(model, strategy).await?,
        optimizer: optim.to_safetensors().await?,
    })
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
    let TrainData { task, train, eval } = data;
    let class_weights = match (&settings.class_weights, train.targets.classes()) {
        (Some(w), Some(classes)) => Some(
            w.resolve(&classes[..train.len()], model.num_labels())
                .map_err(TrainError::Job)?,
        ),
        _ => None,
    };
    let objective = Classify {
        tokenizer,
        task,
        train,
        eval,
        class_weights,
        label_smoothing: settings.label_smoothing,
        batch_size: settings.batch_size,
    };
    train_with(model, &objective, settings, resume, hooks).await
}

/// The loop of [`train`] over any [`Objective`]: fine-tunes `model` (built on an autodiff
/// device) from the start or from `resume`, evaluating every `eval_every` steps and at the end,
/// with early stopping, checkpoints and gradient accumulation as `settings` asks.
pub async fn train_with<O: Objective>(
    mut model: O::Model,
    objective: &O,
    settings: &TrainSettings,
    resume: Option<Resume>,
    hooks: Hooks<'_>,
) -> Result<(O::Model, TrainSummary), TrainError> {
    let Hooks {
        on_event,
        on_checkpoint,
    } = hooks;
    let n_train = objective.train_rows();
    if n_train == 0 {
        return Err(TrainError::Job("there are no training rows".into()));
    }
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Job("the model has no parameters".into()))?;
    let steps = settings.total_steps(n_train);
    let (mut optim, mut progress) = match resume {
        Some(Resume {
            progress,
            optimizer,
        }) => {
            optimizer.check_matches(&model)?;
            if progress.step > steps || progress.cursor > n_train {
                return Err(TrainError::Checkpoint(format!(
                    "the checkpoint is at step {} (row {} of {}), beyond this job's {steps} steps \
                     over {n_train} rows",
                    progress.step, progress.cursor, n_train
                )));
            }
            (optimizer, progress)
        }
        None => (
            Optimizer::with(settings.optimizer, settings.weight_decay, settings.clip),
            Progress::default(),
        ),
    };
    let micro_batches = settings.gradient_accumulation.max(1);

    let mut stop = on_event(&Event::Started {
        steps,
        resumed_at: progress.step,
        train_rows: n_train,
        eval_rows: objective.eval_rows(),
        trainable_params: hearth_models::lora::trainable_params(&model),
        total_params: model.num_params(),
    })
    .is_break();

    let mut order = epoch_order(n_train, progress.epoch, settings.seed);
    let mut early_stopped = false;
    // Held in memory only: a run resumed from a checkpoint restores the best adapter seen since.
    let mut best_model: Option<O::Model> = None;
    // Examples per second count only the steps this session ran.
    let (first_step, seconds_before) = (progress.step, progress.train_seconds);
    while progress.step < steps && !stop {
        let started = Instant::now();
        device.seed(step_seed(settings.seed, progress.step));
        let mut accumulated = GradientsAccumulator::new();
        let mut loss_sum = 0.0f32;
        for _ in 0..micro_batches {
            // Fill the micro-batch, wrapping into a new epoch when the rows run out.
            let mut rows = Vec::with_capacity(settings.batch_size);
            while rows.len() < settings.batch_size {
                if progress.cursor == n_train {
                    progress.epoch += 1;
                    progress.cursor = 0;
                    order = epoch_order(n_train, progress.epoch, settings.seed);
                }
                rows.push(order[progress.cursor]);
                progress.cursor += 1;
            }
            let BatchLoss {
                loss,
                real_tokens,
                padded_tokens,
            } = objective.batch_loss(&model, &rows)?;
            progress.real_tokens += real_tokens;
            progress.padded_tokens += padded_tokens;
            let mut total = loss.clone().div_scalar(micro_batches as f64);
            if settings.l1 > 0.0
                && let Some(penalty) =
                    crate::loss::l1_penalty(&crate::loss::trained_matrices(&model), settings.l1)
            {
                total = total + penalty.div_scalar(micro_batches as f64);
            }
            accumulated.accumulate(
                &model,
                GradientsParams::from_grads(total.backward(), &model),
            );
            loss_sum += read_f32(loss).await?.first().copied().unwrap_or(f32::NAN);
        }
        let grads = accumulated.grads();
        let learning_rate = learning_rate(
            settings.schedule,
            settings.learning_rate,
            progress.step,
            settings.warmup_steps,
            steps,
        );
        let loss_value = loss_sum / micro_batches as f32;
        let step = progress.step + 1;
        if !loss_value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step,
                loss: loss_value,
                learning_rate,
            });
        }
        model = optim.step(learning_rate, model, grads);
        progress.step = step;
        progress.train_seconds += started.elapsed().as_secs_f64();
        progress.losses.push(loss_value);

        let session_seconds = (progress.train_seconds - seconds_before).max(1e-9);
        stop = on_event(&Event::Step {
            step,
            steps,
            epoch: (progress.epoch * n_train + progress.cursor) as f64 / n_train as f64,
            loss: loss_value,
            learning_rate,
            examples_per_s: ((step - first_step) * settings.effective_batch()) as f64
                / session_seconds,
        })
        .is_break();

        let due =
            settings.eval_every > 0 && step.is_multiple_of(settings.eval_every) && step < steps;
        if due && objective.eval_rows() > 0 {
            let metrics = objective.evaluate(&model).await?;
            stop |= on_event(&Event::Evaluated {
                step,
                metrics: metrics.clone(),
            })
            .is_break();
            if let Some(rule) = &settings.early_stopping {
                let value = objective.stop_value(rule, &metrics).ok_or_else(|| {
                    TrainError::Job("the early-stopping metric does not fit the task".into())
                })?;
                match progress.best {
                    Some((_, best)) if value <= best + rule.min_delta => {
                        progress.stale_evals += 1;
                        if progress.stale_evals >= rule.patience {
                            early_stopped = true;
                            stop = true;
                        }
                    }
                    _ => {
                        progress.best = Some((step, value));
                        progress.stale_evals = 0;
                        best_model = Some(model.clone());
                    }
                }
            }
            progress.last_eval = Some((step, metrics));
        }
        let checkpoint_due = settings.checkpoint_every > 0
            && step.is_multiple_of(settings.checkpoint_every)
            && step < steps;
        if checkpoint_due && !stop {
            on_checkpoint(
                snapshot(objective, &model, settings.strategy, &optim, &progress).await?,
            )?;
        }
    }

    let step = progress.step;
    // The final state, also when stopped early, so the run can be continued later.
    on_checkpoint(snapshot(objective, &model, settings.strategy, &optim, &progress).await?)?;
    let mut best_step = None;
    if let (Some(rule), Some((at, _)), Some(best)) =
        (&settings.early_stopping, progress.best, best_model)
        && rule.restore_best
        && at != step
    {
        let _ = on_event(&Event::Restored {
            step,
            best_step: at,
        });
        model = best;
        // Evaluate the restored adapter below, not the last step's.
        progress.last_eval = None;
        best_step = Some(at);
    }
    let eval_metrics = match &progress.last_eval {
        Some((at, metrics)) if *at == step => Some(metrics.clone()),
        _ if objective.eval_rows() > 0 => {
            let metrics = objective.evaluate(&model).await?;
            // The run is over either way; a stop request here changes nothing.
            let _ = on_event(&Event::Evaluated {
                step,
                metrics: metrics.clone(),
            });
            progress.last_eval = Some((step, metrics.clone()));
            Some(metrics)
        }
        _ => None,
    };
    let seconds = progress.train_seconds.max(1e-9);
    let losses = &progress.losses;
    let tail = &losses[losses.len().saturating_sub(20)..];
    let summary = TrainSummary {
        steps: step,
        stopped: step < steps,
        train_seconds: progress.train_seconds,
        examples_per_s: (step * settings.effective_batch()) as f64 / seconds,
        real_tokens_per_s: progress.real_tokens as f64 / seconds,
        padded_tokens_per_s: progress.padded_tokens as f64 / seconds,
        loss_first: losses.first().copied().unwrap_or(f32::NAN),
        loss_last20: if tail.is_empty() {
            f32::NAN
        } else {
            tail.iter().sum::<f32>() / tail.len() as f32
        },
        eval: eval_metrics,
        early_stopped,
        best_step,
    };
    let _ = on_event(&Event::Finished(summary.clone()));
    Ok((model, summary))
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
