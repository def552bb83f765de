//! What a run learns to predict: the targets of each task, the loss a batch of them gives,
//! and the scores and metrics of the head's outputs.

use burn::tensor::Tensor;
use serde::Serialize;

use crate::job::Task;
use crate::metrics::{
    ClassificationMetrics, Metrics, MultiLabelMetrics, RegressionMetrics, argmax,
};

/// The targets of a set of rows, one kind per task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// Single-label classification: each row's class index.
    Classes(Vec<usize>),
    /// Multi-label classification: each row's label indices (sorted, possibly none).
    LabelSets(Vec<Vec<usize>>),
    /// Regression: each row's number.
    Values(Vec<f32>),
}

impl Default for Targets {
    fn default() -> Self {
        Self::Classes(Vec::new())
    }
}

impl Targets {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Classes(v) => v.len(),
            Self::LabelSets(v) => v.len(),
            Self::Values(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of the rows at `indices`, in that order.
    pub fn pick(&self, indices: &[usize]) -> Self {
        match self {
            Self::Classes(v) => Self::Classes(indices.iter().map(|&i| v[i]).collect()),
            Self::LabelSets(v) => Self::LabelSets(indices.iter().map(|&i| v[i].clone()).collect()),
            Self::Values(v) => Self::Values(indices.iter().map(|&i| v[i]).collect()),
        }
    }

    /// Appends `other`'s rows (of the same kind).
    pub fn extend(&mut self, other: Self) {
        match (self, other) {
            (Self::Classes(a), Self::Classes(b)) => a.extend(b),
            (Self::LabelSets(a), Self::LabelSets(b)) => a.extend(b),
            (Self::Values(a), Self::Values(b)) => a.extend(b),
            _ => {}
        }
    }

    /// The class indices, for single-label classification.
    pub fn classes(&self) -> Option<&[usize]> {
        match self {
            Self::Classes(v) => Some(v),
            _ => None,
        }
    }

    /// The smallest and largest target, for regression targets (`None` for labels or no
    /// rows).
    pub fn value_range(&self) -> Option<(f32, f32)> {
        match self {
            Self::Values(v) if !v.is_empty() => Some(
                v.iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    }),
            ),
            _ => None,
        }
    }

    /// A group per row for stratified splitting: the class; for label sets the row's rarest
    /// label (`labels` for a row with none); for numbers the decile of its rank.
    pub fn strata(&self, labels: usize) -> Vec<usize> {
        match self {
            Self::Classes(v) => v.clone(),
            Self::LabelSets(sets) => {
                let mut counts = vec![0usize; labels];
                for set in sets {
                    for &l in set {
                        if let Some(c) = counts.get_mut(l) {
                            *c += 1;
                        }
                    }
                }
                sets.iter()
                    .map(|set| {
                        set.iter()
                            .copied()
                            .min_by_key(|&l| (counts.get(l).copied().unwrap_or(0), l))
                            .unwrap_or(labels)
                    })
                    .collect()
            }
            Self::Values(v) => {
                let mut order: Vec<usize> = (0..v.len()).collect();
                order.sort_by(|&a, &b| v[a].total_cmp(&v[b]).then(a.cmp(&b)));
                let mut bins = vec![0; v.len()];
                for (rank, &i) in order.iter().enumerate() {
                    bins[i] = rank * 10 / v.len().max(1);
                }
                bins
            }
        }
    }

    /// Row `i`'s target as text (label names for classes and sets), for fingerprints.
    pub fn describe(&self, i: usize, names: &[String]) -> String {
        let name = |l: usize| names.get(l).map_or("", String::as_str);
        match self {
            Self::Classes(v) => name(v[i]).to_owned(),
            Self::LabelSets(v) => v[i]
                .iter()
                .map(|&l| name(l))
                .collect::<Vec<_>>()
                .join("\u{1f}"),
            Self::Values(v) => format!("{:08x}", v[i].to_bits()),
        }
    }

    /// Mean loss of the head's `outputs` for the rows `rows` under `task`.
    pub fn loss(
        &self,
        task: &Task,
        outputs: Tensor<2>,
        rows: &[usize],
        class_weights: Option<&[f64]>,
        label_smoothing: f64,
    ) -> Tensor<1> {
        match (self, task) {
            (Self::LabelSets(sets), _) => {
                let [_, k] = outputs.dims();
                let mut hot = vec![0f32; rows.len() * k];
                for (r, &i) in rows.iter().enumerate() {
                    for &l in &sets[i] {
                        if l < k {
                            hot[r * k + l] = 1.0;
                        }
                    }
                }
                crate::loss::bce_with_logits(outputs, &hot)
            }
            (Self::Values(v), Task::Regression { loss, huber_delta }) => {
                let [n, _] = outputs.dims();
                let y: Vec<f32> = rows.iter().map(|&i| v[i]).collect();
                crate::loss::regression_loss(outputs.reshape([n]), &y, *loss, *huber_delta)
            }
            (Self::Values(v), _) => {
                let [n, _] = outputs.dims();
                let y: Vec<f32> = rows.iter().map(|&i| v[i]).collect();
                crate::loss::regression_loss(outputs.reshape([n]), &y, Default::default(), 1.0)
            }
            (Self::Classes(c), _) => {
                let y: Vec<usize> = rows.iter().map(|&i| c[i]).collect();
                crate::loss::cross_entropy(outputs, &y, class_weights, label_smoothing)
            }
        }
    }

    /// The metrics of the head's `scores` (see [`scores`]) against these targets.
    pub fn metrics(&self, task: &Task, scores: &[Vec<f32>], labels: usize) -> Metrics {
        match self {
            Self::Classes(gold) => {
                let predicted: Vec<usize> = scores.iter().map(|row| argmax(row)).collect();
                Metrics::Classification(ClassificationMetrics::compute(gold, &predicted, labels))
            }
            Self::LabelSets(sets) => {
                let threshold = match task {
                    Task::MultiLabel { threshold, .. } => *threshold as f32,
                    _ => 0.5,
                };
                let mut gold = vec![false; sets.len() * labels];
                for (i, set) in sets.iter().enumerate() {
                    for &l in set {
                        if l < labels {
                            gold[i * labels + l] = true;
                        }
                    }
                }
                let predicted: Vec<bool> = scores
                    .iter()
                    .flat_map(|row| row.iter().map(move |&p| p >= threshold))
                    .collect();
                Metrics::MultiLabel(MultiLabelMetrics::compute(&gold, &predicted, labels))
            }
            Self::Values(gold) => {
                let predicted: Vec<f32> = scores
                    .iter()
                    .map(|row| row.first().copied().unwrap_or(0.0))
                    .collect();
                Metrics::Regression(RegressionMetrics::compute(gold, &predicted))
            }
        }
    }
}

/// What the head's raw outputs become for the user: class probabilities (softmax), label
/// probabilities (sigmoid each) or the predicted number itself.
pub fn scores(task: &Task, outputs: Tensor<2>) -> Tensor<2> {
    match task {
        Task::Classification => burn::tensor::activation::softmax(outputs, 1),
        Task::MultiLabel { .. } => burn::tensor::activation::sigmoid(outputs),
        // A language model has no head; its outputs pass through.
        Task::Regression { .. } | Task::Sft { .. } => outputs,
    }
}

/// Number of head outputs a task needs over `labels` label names.
pub fn num_outputs(task: &Task, labels: usize) -> usize {
    match task {
        Task::Regression { .. } => 1,
        _ => labels,
    }
}

/// One prediction as the CLI prints it and the page shows it: the text with its `label` and
/// class `scores` (classification), its predicted `labels` and `scores` (multi-label), or its
/// `value` (regression).
pub fn prediction_json(
    task: &Task,
    labels: &[String],
    text: &str,
    scores: &[f32],
) -> serde_json::Value {
    let by_label = || -> serde_json::Map<String, serde_json::Value> {
        labels
            .iter()
            .zip(scores)
            .map(|(l, &v)| (l.clone(), serde_json::json!(v)))
            .collect()
    };
    match task {
        Task::Classification => {
            let best = labels.get(argmax(scores)).map_or("", String::as_str);
            serde_json::json!({"text": text, "label": best, "scores": by_label()})
        }
        Task::MultiLabel { threshold, .. } => {
            let chosen: Vec<&String> = labels
                .iter()
                .zip(scores)
                .filter(|&(_, &v)| f64::from(v) >= *threshold)
                .map(|(l, _)| l)
                .collect();
            serde_json::json!({"text": text, "labels": chosen, "scores": by_label()})
        }
        Task::Regression { .. } => {
            serde_json::json!({"text": text, "value": scores.first().copied().unwrap_or(f32::NAN)})
        }
        // A language model answers with text, not scores (`hearth generate`).
        Task::Sft { .. } => serde_json::json!({"text": text}),
    }
}
