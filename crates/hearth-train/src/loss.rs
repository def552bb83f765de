//! Cross-entropy exactly as `torch.nn.functional.cross_entropy` (mean reduction) computes it,
//! with optional class weights and label smoothing.
//!
//! With log-probabilities `lp = log_softmax(logits)`, targets `y`, class weights `w` (all 1 when
//! absent) and smoothing `ε` over `K` classes:
//! `nll = −Σᵢ w[yᵢ]·lp[i, yᵢ] / Σᵢ w[yᵢ]`, `smooth = −Σᵢ Σₖ w[k]·lp[i, k] / Σᵢ w[yᵢ]`,
//! `loss = (1 − ε)·nll + ε/K · smooth`. Targets and weights come from the host, so the one-hot
//! rows are built there and the same code runs on every backend.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Class weights for the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassWeights {
    /// `"balanced"`: `rows / (classes · rows of the class)` over the training rows, as
    /// scikit-learn's `compute_class_weight("balanced")`.
    Named(BalancedName),
    /// One weight per class, in label order.
    Explicit(Vec<f64>),
}

/// The one named weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancedName {
    /// Inverse class frequency.
    Balanced,
}

impl ClassWeights {
    /// The weight of each of `num_labels` classes given the training labels.
    pub fn resolve(&self, labels: &[usize], num_labels: usize) -> Result<Vec<f64>, String> {
        match self {
            Self::Explicit(w) if w.len() == num_labels => {
                if w.iter().all(|x| x.is_finite() && *x > 0.0) {
                    Ok(w.clone())
                } else {
                    Err("train.class_weights must all be positive numbers".into())
                }
            }
            Self::Explicit(w) => Err(format!(
                "train.class_weights has {} weights for {num_labels} classes",
                w.len()
            )),
            Self::Named(BalancedName::Balanced) => {
                let mut counts = vec![0usize; num_labels];
                for &l in labels {
                    if let Some(c) = counts.get_mut(l) {
                        *c += 1;
                    }
                }
                Ok(counts
                    .iter()
                    .map(|&c| {
                        if c == 0 {
                            0.0
                        } else {
                            labels.len() as f64 / (num_labels * c) as f64
                        }
                    })
                    .collect())
            }
        }
    }
}

/// Mean cross-entropy of `logits` `[rows, classes]` against `targets`.
pub fn cross_entropy(
    logits: Tensor<2>,
    targets: &[usize],
    weights: Option<&[f64]>,
    smoothing: f64,
) -> Tensor<1> {
    let [rows, classes] = logits.dims();
    let device = logits.device();
    let weight = |k: usize| weights.and_then(|w| w.get(k)).copied().unwrap_or(1.0);
    let mut one_hot = vec![0f32; rows * classes];
    let mut total = 0.0f64;
    for (i, &y) in targets.iter().enumerate().take(rows) {
        if y < classes {
            one_hot[i * classes + y] = weight(y) as f32;
            total += weight(y);
        }
    }
    let total = if total > 0.0 { total } else { 1.0 };
    let lp = log_softmax(logits, 1);
    let picked = Tensor::<2>::from_data(TensorData::new(one_hot, [rows, classes]), &device);
    let nll = (lp.clone() * picked).sum().neg().div_scalar(total);
    if smoothing == 0.0 {
        return nll;
    }
    let row: Vec<f32> = (0..classes).map(|k| weight(k) as f32).collect();
    let w = Tensor::<2>::from_data(TensorData::new(row, [1, classes]), &device);
    let smooth = (lp * w).sum().neg().div_scalar(total);
    nll.mul_scalar(1.0 - smoothing) + smooth.mul_scalar(smoothing / classes as f64)
}

/// Mean binary cross-entropy with logits over every (row, label) cell, as
/// `torch.nn.functional.binary_cross_entropy_with_logits`: `max(x, 0) − x·y + log(1 + e^−|x|)`,
/// stable for any logit. `targets` is row-major 0/1 `[rows, labels]`.
pub fn bce_with_logits(logits: Tensor<2>, targets: &[f32]) -> Tensor<1> {
    let [rows, labels] = logits.dims();
    let device = logits.device();
    let y = Tensor::<2>::from_data(
        TensorData::new(targets[..rows * labels].to_vec(), [rows, labels]),
        &device,
    );
    let softplus = logits.clone().abs().neg().exp().log1p();
    (logits.clone().clamp_min(0.0) - logits * y + softplus).mean()
}

/// A regression loss of `predictions` `[rows]` against `targets`: mean squared error
/// (`mse_loss`), mean absolute error (`l1_loss`) or Huber with threshold `delta` (`huber_loss`:
/// `½d²` below `delta`, `delta·(|d| − ½delta)` above).
pub fn regression_loss(
    predictions: Tensor<1>,
    targets: &[f32],
    loss: crate::RegressionLoss,
    delta: f64,
) -> Tensor<1> {
    let [rows] = predictions.dims();
    let y = Tensor::<1>::from_data(
        TensorData::new(targets[..rows].to_vec(), [rows]),
        &predictions.device(),
    );
    let diff = predictions - y;
    match loss {
        crate::RegressionLoss::Mse => diff.powi_scalar(2).mean(),
        crate::RegressionLoss::Mae => diff.abs().mean(),
        crate::RegressionLoss::Huber => {
            // With q = min(|d|, δ): ½q² + δ(|d| − q) is ½d² inside and δ(|d| − ½δ) outside,
            // with PyTorch's gradient on both sides.
            let abs = diff.abs();
            let q = abs.clone().clamp_max(delta);
            (q.clone().powi_scalar(2).mul_scalar(0.5) + (abs - q).mul_scalar(delta)).mean()
        }
    }
}

/// The trained weight matrices of `module` (LoRA factors, the head's weight; every matrix of a
/// fully trained model), as live tensors the loss can depend on.
pub fn trained_matrices<M: burn::module::Module>(module: &M) -> Vec<Tensor<2>> {
    struct Collect(Vec<Tensor<2>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let value = param.base();
            // Checked on the parameter itself: a reshaped view is no longer a leaf.
            if D == 2 && value.is_require_grad() {
                let dims = value.dims();
                self.0.push(value.reshape([dims[0], dims[D - 1]]));
            }
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// `l1 · Σ|w|` over the given weights: the L1 penalty added to the loss.
pub fn l1_penalty(weights: &[Tensor<2>], l1: f64) -> Option<Tensor<1>> {
    weights
        .iter()
        .map(|w| w.clone().abs().sum())
        .reduce(|a, b| a + b)
        .map(|sum| sum.mul_scalar(l1))
}

/// Mean next-token cross-entropy of a causal language model, as transformers computes it:
/// position `t` of `logits` `[batch, seq, vocab]` predicts `labels[t + 1]` of its row, and
/// positions whose label is `None` (the prompt, padding) are not scored. Targets are picked with
/// `gather`, so memory stays `batch · seq`, not `batch · seq · vocab`.
pub fn causal_lm_loss(logits: Tensor<3>, labels: &[Option<usize>]) -> Tensor<1> {
    let [batch, seq, vocab] = logits.dims();
    let targets = next_token_targets(labels, batch, seq);
    // The last position of each row predicts nothing: left out of the log-softmax.
    let targets: Vec<Option<usize>> = targets
        .chunks(seq.max(1))
        .flat_map(|row| row[..row.len().saturating_sub(1)].iter().copied())
        .collect();
    let scored = targets.iter().flatten().filter(|&&y| y < vocab).count();
    let shifted = logits
        .slice([0..batch, 0..seq.saturating_sub(1), 0..vocab])
        .reshape([batch * seq.saturating_sub(1), vocab]);
    token_loss(shifted, &targets, scored)
}

/// What each position of `[batch, seq]` rows is trained to predict: the next position's label
/// in its row (`None` for the last position of a row and for unscored labels).
pub fn next_token_targets(
    labels: &[Option<usize>],
    batch: usize,
    seq: usize,
) -> Vec<Option<usize>> {
    (0..batch * seq)
        .map(|i| match i % seq + 1 < seq {
            true => labels.get(i + 1).copied().flatten(),
            false => None,
        })
        .collect()
}

/// `−Σ log_softmax(logits)[i, targets[i]] / scored` over the rows of `logits` `[rows, vocab]`
/// whose target is a token of the vocabulary: one share of a mean cross-entropy over `scored`
/// tokens (the whole loss when every scored row is here).
pub fn token_loss(logits: Tensor<2>, targets: &[Option<usize>], scored: usize) -> Tensor<1> {
    let [rows, vocab] = logits.dims();
    let device = logits.device();
    let (index, weight): (Vec<i64>, Vec<f32>) = (0..rows)
        .map(|i| match targets.get(i).copied().flatten() {
            Some(y) if y < vocab => (y as i64, 1.0),
            _ => (0, 0.0),
        })
        .unzip();
    let lp = log_softmax(logits, 1);
    let index =
        Tensor::<2, burn::tensor::Int>::from_data(TensorData::new(index, [rows, 1]), &device);
    let weight = Tensor::<2>::from_data(TensorData::new(weight, [rows, 1]), &device);
    (lp.gather(1, index) * weight)
        .sum()
        .neg()
        .div_scalar(scored.max(1) as f64)
}
