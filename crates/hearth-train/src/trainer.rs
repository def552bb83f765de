//! The generic training loop: any [`Objective`] (a classifier's, a language model's) over
//! micro-batches, with gradient accumulation, evaluation, early stopping and checkpoints.
//!
//! One page long on purpose: forward, loss, `backward`, `GradientsParams::from_grads`,
//! `optim.step`, with the learning rate a pure function of the step. Every read back to the host
//! is `into_data_async`, so the same loop runs in a browser tab.

use std::ops::ControlFlow;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Tensor;
use hearth_data::python_shuffle_indices;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::collective::{self, Collective};
use crate::event::{Event, TrainSummary};
use crate::job::EarlyStopping;
use crate::metrics::Metrics;
use crate::optim::Optimizer;
use crate::schedule::learning_rate;
use crate::{TrainError, TrainSettings};

/// The order in which training rows are visited: the split's order first, then a fresh
/// seeded shuffle for every further epoch; with the rows' `lengths` (`train.group_by_length`),
/// regrouped into batches of similar length ([`crate::batching::group_by_length`]).
fn epoch_order(
    n: usize,
    epoch: usize,
    seed: u64,
    lengths: Option<(&[usize], usize)>,
) -> Vec<usize> {
    let order = if epoch == 0 {
        (0..n).collect()
    } else {
        python_shuffle_indices(n, seed.wrapping_add(epoch as u64))
    };
    match lengths {
        Some((lengths, batch)) => crate::batching::group_by_length(&order, lengths, batch),
        None => order,
    }
}

pub(crate) async fn read_f32(tensor: Tensor<1>) -> Result<Vec<f32>, TrainError> {
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

/// Where the loop reports (progress events, checkpoints to keep) and whom it trains with.
pub struct Hooks<'a> {
    /// Sees every [`Event`]; `ControlFlow::Break` stops after the current step (on every
    /// rank, when any rank asks).
    pub on_event: &'a mut dyn FnMut(&Event) -> ControlFlow<()>,
    /// Stores a checkpoint, every `checkpoint_every` steps and at the end; called on rank 0
    /// only. An error ends the run: training on without the checkpoints the user asked for
    /// would risk their work.
    pub on_checkpoint: &'a mut dyn FnMut(Snapshot) -> Result<(), TrainError>,
    /// The processes the run trains in ([`collective::Single`] for one).
    pub collective: &'a dyn Collective,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// The seed of a step's dropout masks ([`hearth_models::dropout`]) and device RNG: a pure
/// function of the job's seed and the step, so a run resumed from a checkpoint draws the same
/// masks as one never interrupted. Every rank uses the same seed: a mask follows its row's
/// place in the global batch, so ranks draw what one process draws for their rows.
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

/// [`Objective::batch_gradients`] in one backward pass: [`Objective::batch_loss`], then the
/// gradients of `scale(loss)` to `sink` whole.
pub(crate) fn whole_batch_gradients<O: Objective + ?Sized>(
    objective: &O,
    model: &O::Model,
    rows: &[usize],
    scale: &dyn Fn(Tensor<1>) -> Tensor<1>,
    sink: &mut dyn FnMut(burn::tensor::Gradients),
) -> Result<BatchLoss, TrainError> {
    let out = objective.batch_loss(model, rows)?;
    sink(scale(out.loss.clone()).backward());
    Ok(out)
}

/// What the loop optimizes: a model's loss on micro-batches of training rows, its evaluation
/// on held-out rows, and what of it a checkpoint keeps. [`crate::classify`] has a classifier's
/// objective and [`crate::sft`] a language model's.
pub trait Objective {
    /// The model trained.
    type Model: Module + Clone;
    /// Training rows (texts, conversations or packed sequences).
    fn train_rows(&self) -> usize;
    /// What the max length did to a chat run's conversations, for the `started` event.
    fn conversations(&self) -> Option<crate::sft::SftCuts> {
        None
    }
    /// The length in tokens of every training row, for `train.group_by_length`; `None` when
    /// the objective cannot tell (the rows are then not grouped).
    fn row_lengths(&self) -> Option<Vec<usize>> {
        None
    }
    /// Held-out rows.
    fn eval_rows(&self) -> usize;
    /// The loss of the training rows `rows`, with dropout on.
    fn batch_loss(&self, model: &Self::Model, rows: &[usize]) -> Result<BatchLoss, TrainError>;
    /// The loss of `rows` ([`Self::batch_loss`], its `loss` untracked or not) with the
    /// gradients of `scale(loss)` handed to `sink`, whole or in parts that add up to them
    /// (gradient checkpointing backpropagates one layer at a time).
    fn batch_gradients(
        &self,
        model: &Self::Model,
        rows: &[usize],
        scale: &dyn Fn(Tensor<1>) -> Tensor<1>,
        sink: &mut dyn FnMut(burn::tensor::Gradients),
    ) -> Result<BatchLoss, TrainError> {
        whole_batch_gradients(self, model, rows, scale, sink)
    }
    /// What [`Self::batch_loss`] of `rows` is a mean over, from the data alone: rows for a
    /// classifier, scored tokens for a language model. Every rank counts it for each rank's
    /// share of a micro-batch, so ranks weigh their losses to the mean of the whole
    /// micro-batch, as one process computes it, without exchanging a word.
    fn mean_over(&self, rows: &[usize]) -> usize {
        rows.len()
    }
    /// Metrics on the held-out rows; with several ranks, each scores its share
    /// ([`collective::shard`]) and every rank gets the metrics of all of them.
    fn evaluate(
        &self,
        model: &Self::Model,
        collective: &dyn Collective,
    ) -> impl Future<Output = Result<Metrics, TrainError>>;
    /// Whether a fresh run scores the held-out rows before its first step (the base model's
    /// figures to compare against); off unless the objective says so.
    fn evaluate_first(&self) -> bool {
        false
    }
    /// The value early stopping maximizes, read from an evaluation's metrics.
    fn stop_value(&self, rule: &EarlyStopping, metrics: &Metrics) -> Option<f64>;
    /// The trained weights (what a checkpoint stores and [`Snapshot::adapter`] holds).
    fn trained_weights(
        &self,
        model: &Self::Model,
        strategy: hearth_models::Strategy,
    ) -> impl Future<Output = Result<Vec<u8>, TrainError>>;
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

/// The training loop over any [`Objective`]: fine-tunes `model` (built on an autodiff
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
        collective,
    } = hooks;
    let ranks = collective.size();
    if settings.batch_size < ranks {
        return Err(TrainError::Job(format!(
            "train.batch_size ({}) is the global batch, shared out over {ranks} ranks: it must \
             be at least the number of ranks",
            settings.batch_size
        )));
    }
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
    if ranks > 1 {
        // Every rank continues from rank 0's state: its weights, optimizer and progress.
        model = collective::broadcast_trainable(model, collective).await?;
        let mut state = optim.to_safetensors().await?;
        collective.broadcast(&mut state)?;
        optim.load_safetensors(&state, &device.clone().inner())?;
        let mut at =
            serde_json::to_vec(&progress).map_err(|e| TrainError::Collective(e.to_string()))?;
        collective.broadcast(&mut at)?;
        progress = serde_json::from_slice(&at)
            .map_err(|e| TrainError::Collective(format!("rank 0's progress: {e}")))?;
    }
    let micro_batches = settings.gradient_accumulation.max(1);

    let mut stop = on_event(&Event::Started {
        steps,
        resumed_at: progress.step,
        train_rows: n_train,
        eval_rows: objective.eval_rows(),
        trainable_params: hearth_models::lora::trainable_params(&model),
        total_params: model.num_params(),
        conversations: objective.conversations().map(Box::new),
    })
    .is_break();
    stop = collective.any(stop)?;

    let lengths = match settings.group_by_length {
        true => objective.row_lengths(),
        false => None,
    };
    let grouping = lengths.as_deref().map(|l| (l, settings.batch_size));
    let mut order = epoch_order(n_train, progress.epoch, settings.seed, grouping);
    let mut early_stopped = false;
    // Held in memory only: a run resumed from a checkpoint restores the best adapter seen since.
    let mut best_model: Option<O::Model> = None;
    // Examples per second count only the steps this session ran.
    let (first_step, seconds_before) = (progress.step, progress.train_seconds);
    let (mut communication_seconds, mut waiting_seconds) = (0.0, 0.0);
    while progress.step < steps && !stop {
        let started = Instant::now();
        let seed = step_seed(settings.seed, progress.step);
        device.seed(seed);
        hearth_models::dropout::reseed(seed);
        let mut accumulated = GradientsAccumulator::new();
        let mut loss_sum = 0.0f32;
        // With several ranks: this rank's losses weighted by its share of each micro-batch,
        // and its token counts, summed over the ranks after the step.
        let mut shared = [0.0f64; 3];
        for micro in 0..micro_batches {
            // Fill the micro-batch, wrapping into a new epoch when the rows run out.
            let mut rows = Vec::with_capacity(settings.batch_size);
            while rows.len() < settings.batch_size {
                if progress.cursor == n_train {
                    progress.epoch += 1;
                    progress.cursor = 0;
                    order = epoch_order(n_train, progress.epoch, settings.seed, grouping);
                }
                rows.push(order[progress.cursor]);
                progress.cursor += 1;
            }
            // This rank's rows of the global micro-batch, and its share of the mean: the
            // gradients summed over the ranks and divided by their number are then the mean
            // over the whole micro-batch, as in one process.
            let mut share = 1.0;
            // Dropout masks follow each row's place in the step's global batch, so one
            // process and any number of ranks drop the same elements.
            let first = (micro * settings.batch_size) as u64;
            hearth_models::dropout::set_rows(
                collective::shard(rows.len(), collective).map(|i| first + i as u64),
            );
            if ranks > 1 {
                let whole = objective.mean_over(&rows) as f64;
                let mine: Vec<usize> = collective::shard(rows.len(), collective)
                    .map(|i| rows[i])
                    .collect();
                share = if whole > 0.0 {
                    objective.mean_over(&mine) as f64 * ranks as f64 / whole
                } else {
                    0.0
                };
                rows = mine;
            }
            // The micro-batch's share of the step's mean (and of the ranks' mean).
            let scale = |loss: Tensor<1>| {
                let total = loss.div_scalar(micro_batches as f64);
                match ranks > 1 {
                    true => total.mul_scalar(share),
                    false => total,
                }
            };
            let BatchLoss {
                loss,
                real_tokens,
                padded_tokens,
            } = objective.batch_gradients(&model, &rows, &scale, &mut |grads| {
                accumulated.accumulate(&model, GradientsParams::from_grads(grads, &model));
            })?;
            if settings.l1 > 0.0
                && let Some(penalty) =
                    crate::loss::l1_penalty(&crate::loss::trained_matrices(&model), settings.l1)
            {
                let penalty = penalty.div_scalar(micro_batches as f64);
                accumulated.accumulate(
                    &model,
                    GradientsParams::from_grads(penalty.backward(), &model),
                );
            }
            let value = read_f32(loss).await?.first().copied().unwrap_or(f32::NAN);
            loss_sum += value;
            shared[0] += f64::from(value) * share;
            shared[1] += real_tokens as f64;
            shared[2] += padded_tokens as f64;
        }
        if ranks > 1 {
            // Waiting for the slowest rank, timed apart from the exchange itself.
            let waiting = Instant::now();
            collective.any(false)?;
            waiting_seconds += waiting.elapsed().as_secs_f64();
        }
        let exchange = Instant::now();
        let grads = collective::mean_gradients(&model, accumulated.grads(), collective).await?;
        if ranks > 1 {
            // The counts of every rank, and the loss of the global batch.
            collective.sum_f64(&mut shared)?;
            loss_sum = (shared[0] / ranks as f64) as f32;
            communication_seconds += exchange.elapsed().as_secs_f64();
        }
        progress.real_tokens += shared[1] as usize;
        progress.padded_tokens += shared[2] as usize;
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
            let metrics = objective.evaluate(&model, collective).await?;
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
        // A stop asked on any rank (or early stopping, the same on every rank) stops all.
        stop = collective.any(stop)?;
        let checkpoint_due = settings.checkpoint_every > 0
            && step.is_multiple_of(settings.checkpoint_every)
            && step < steps;
        if checkpoint_due && !stop && collective.is_leader() {
            on_checkpoint(
                snapshot(objective, &model, settings.strategy, &optim, &progress).await?,
            )?;
        }
    }

    let step = progress.step;
    // The final state, also when stopped early, so the run can be continued later.
    let last = snapshot(objective, &model, settings.strategy, &optim, &progress).await?;
    if ranks > 1 {
        agree(&last.adapter, collective)?;
    }
    if collective.is_leader() {
        on_checkpoint(last)?;
    }
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
            let metrics = objective.evaluate(&model, collective).await?;
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
        ranks,
        communication_ms_per_step: 1e3 * communication_seconds / (step - first_step).max(1) as f64,
        waiting_ms_per_step: 1e3 * waiting_seconds / (step - first_step).max(1) as f64,
        communication_share: communication_seconds
            / (progress.train_seconds - seconds_before).max(1e-9),
    };
    let _ = on_event(&Event::Finished(summary.clone()));
    Ok((model, summary))
}

/// Checks that every rank ends with rank 0's trained weights, byte for byte: ranks that
/// drifted apart (a different build, a non-deterministic kernel) would otherwise go unnoticed.
fn agree(weights: &[u8], collective: &dyn Collective) -> Result<(), TrainError> {
    use sha2::{Digest, Sha256};
    let ours = Sha256::digest(weights).to_vec();
    let mut leader = ours.clone();
    collective.broadcast(&mut leader)?;
    let differs = collective.any(leader != ours)?;
    if differs {
        return Err(TrainError::Collective(
            "the ranks ended with different weights; the adapter is rank 0's, but the run \
             was not data-parallel as it should be (same hearth build and device on every \
             rank?)"
                .into(),
        ));
    }
    Ok(())
}
