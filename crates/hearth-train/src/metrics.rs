//! Evaluation metrics of each task, as scikit-learn computes them.
//!
//! Classification: accuracy; precision, recall and F1 per class and averaged (macro, micro,
//! weighted), as `precision_recall_fscore_support` with `zero_division=0`; the confusion
//! matrix. Multi-label: the same per label and averaged (plus `samples`), subset accuracy and
//! Hamming loss. Regression: MAE, MSE, RMSE, R² and Pearson's r.

use serde::{Deserialize, Serialize};

/// Metrics of one evaluation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Number of examples evaluated.
    pub n: usize,
    /// Share of exact predictions.
    pub accuracy: f64,
    /// Unweighted mean of per-class F1 over the classes present in gold or predictions
    /// (scikit-learn's `f1_score(average="macro")`; a present class never predicted scores 0).
    pub macro_f1: f64,
    /// `confusion[gold][predicted]` counts, for at most [`CONFUSION_MAX_CLASSES`] classes;
    /// empty (and left out of the JSON) above, where the matrix would be too large to keep,
    /// send or show: [`ClassificationMetrics::confused`] lists the confusions that matter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confusion: Vec<Vec<usize>>,
    /// The most frequent confusions, most frequent first (ties by gold, then predicted
    /// class), at most [`CONFUSED_PAIRS`].
    #[serde(default)]
    pub confused: Vec<Confusion>,
    /// Precision, recall, F1 and support of every class, in label order.
    #[serde(default)]
    pub per_class: Vec<ClassScores>,
    /// Unweighted means over the classes present in gold or predictions.
    #[serde(default)]
    pub macro_avg: Averages,
    /// From the pooled counts (for single-label data all three equal the accuracy).
    #[serde(default)]
    pub micro_avg: Averages,
    /// Means weighted by each class's support.
    #[serde(default)]
    pub weighted_avg: Averages,
}

/// The most classes whose confusion matrix the metrics keep (and events carry).
pub const CONFUSION_MAX_CLASSES: usize = 100;
/// The most confusions [`ClassificationMetrics::confused`] lists.
pub const CONFUSED_PAIRS: usize = 20;

/// Rows of one class predicted as another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// The true class.
    pub gold: usize,
    /// The class predicted instead.
    pub predicted: usize,
    /// How many rows.
    pub count: usize,
}

/// One class's scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Correct among predicted as this class.
    pub precision: f64,
    /// Found among truly this class.
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Rows truly of this class.
    pub support: usize,
}

/// Precision, recall and F1 averaged one way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// One class's (or label's) counts.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Rows of the class predicted as it.
    tp: usize,
    /// Rows truly of the class.
    support: usize,
    /// Rows predicted as the class.
    predicted: usize,
}

/// Per-class scores and their macro, micro and weighted averages, with `zero_division=0`.
/// The macro average runs over every class when `macro_over_all`, else over the classes that
/// occur in gold or predictions.
fn averaged(
    counts: &[Counts],
    macro_over_all: bool,
) -> (Vec<ClassScores>, Averages, Averages, Averages) {
    let mut per_class = Vec::with_capacity(counts.len());
    let (mut tp_all, mut pred_all, mut gold_all, mut present) = (0usize, 0usize, 0usize, 0usize);
    let (mut macro_sum, mut weighted_sum) = (Averages::default(), Averages::default());
    for c in counts {
        let precision = ratio(c.tp as f64, c.predicted as f64);
        let recall = ratio(c.tp as f64, c.support as f64);
        let f1 = ratio(2.0 * c.tp as f64, (c.support + c.predicted) as f64);
        tp_all += c.tp;
        pred_all += c.predicted;
        gold_all += c.support;
        if macro_over_all || c.support + c.predicted > 0 {
            present += 1;
            macro_sum.precision += precision;
            macro_sum.recall += recall;
            macro_sum.f1 += f1;
        }
        let w = c.support as f64;
        weighted_sum.precision += w * precision;
        weighted_sum.recall += w * recall;
        weighted_sum.f1 += w * f1;
        per_class.push(ClassScores {
            precision,
            recall,
            f1,
            support: c.support,
        });
    }
    let mean = |sum: &Averages, den: f64| Averages {
        precision: ratio(sum.precision, den),
        recall: ratio(sum.recall, den),
        f1: ratio(sum.f1, den),
    };
    let micro_p = ratio(tp_all as f64, pred_all as f64);
    let micro_r = ratio(tp_all as f64, gold_all as f64);
    let micro = Averages {
        precision: micro_p,
        recall: micro_r,
        f1: ratio(2.0 * micro_p * micro_r, micro_p + micro_r),
    };
    (
        per_class,
        mean(&macro_sum, present as f64),
        micro,
        mean(&weighted_sum, gold_all as f64),
    )
}

impl ClassificationMetrics {
    /// Computes the metrics of `predicted` against `gold` over `num_labels` classes.
    ///
    /// Counts are kept per class and per confused pair, never as a dense matrix, so memory
    /// grows with the rows, not with the square of the classes.
    pub fn compute(gold: &[usize], predicted: &[usize], num_labels: usize) -> Self {
        let mut counts = vec![Counts::default(); num_labels];
        let mut pairs: std::collections::HashMap<(usize, usize), usize> =
            std::collections::HashMap::new();
        for (&g, &p) in gold.iter().zip(predicted) {
            if g < num_labels && p < num_labels {
                counts[g].support += 1;
                counts[p].predicted += 1;
                if g == p {
                    counts[g].tp += 1;
                } else {
                    *pairs.entry((g, p)).or_default() += 1;
                }
            }
        }
        let n = gold.len().min(predicted.len());
        let correct: usize = counts.iter().map(|c| c.tp).sum();
        // scikit-learn averages over the labels present in gold or predictions.
        let f1s: Vec<f64> = counts
            .iter()
            .filter(|c| c.support + c.predicted > 0)
            .map(|c| 2.0 * c.tp as f64 / (c.support + c.predicted) as f64)
            .collect();
        let confusion = if num_labels <= CONFUSION_MAX_CLASSES {
            let mut matrix = vec![vec![0usize; num_labels]; num_labels];
            for (c, counts) in counts.iter().enumerate() {
                matrix[c][c] = counts.tp;
            }
            for (&(g, p), &count) in &pairs {
                matrix[g][p] = count;
            }
            matrix
        } else {
            Vec::new()
        };
        let mut confused: Vec<Confusion> = pairs
            .into_iter()
            .map(|((gold, predicted), count)| Confusion {
                gold,
                predicted,
                count,
            })
            .collect();
        confused
            .sort_by(|a, b| (b.count, a.gold, a.predicted).cmp(&(a.count, b.gold, b.predicted)));
        confused.truncate(CONFUSED_PAIRS);
        // scikit-learn's macro average skips classes absent from gold and predictions.
        let (per_class, macro_avg, micro_avg, weighted_avg) = averaged(&counts, false);
        Self {
            per_class,
            macro_avg,
            micro_avg,
            weighted_avg,
            n,
            accuracy: if n == 0 {
                0.0
            } else {
                correct as f64 / n as f64
            },
            macro_f1: if f1s.is_empty() {
                0.0
            } else {
                f1s.iter().sum::<f64>() / f1s.len() as f64
            },
            confusion,
            confused,
        }
    }
}

/// The metrics of one evaluation, whichever the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Metrics {
    /// Single-label classification.
    Classification(ClassificationMetrics),
    /// Multi-label classification.
    MultiLabel(MultiLabelMetrics),
    /// Regression.
    Regression(RegressionMetrics),
    /// A language model's loss on held-out conversations (supervised fine-tuning).
    LanguageModel(LanguageModelMetrics),
}

/// How well a language model predicts held-out text: the mean next-token cross-entropy over
/// the scored (assistant) tokens, and its exponential, the perplexity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageModelMetrics {
    /// Sequences evaluated.
    pub n: usize,
    /// Tokens scored.
    pub tokens: usize,
    /// Mean cross-entropy per scored token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
}

impl Metrics {
    /// Rows evaluated.
    pub fn n(&self) -> usize {
        match self {
            Self::Classification(m) => m.n,
            Self::MultiLabel(m) => m.n,
            Self::Regression(m) => m.n,
            Self::LanguageModel(m) => m.n,
        }
    }

    /// The figures a one-line summary shows, `(name, value)`.
    pub fn headline(&self) -> Vec<(&'static str, f64)> {
        match self {
            Self::Classification(m) => vec![("accuracy", m.accuracy), ("macro-F1", m.macro_f1)],
            Self::MultiLabel(m) => vec![
                ("micro-F1", m.micro_avg.f1),
                ("macro-F1", m.macro_avg.f1),
                ("subset accuracy", m.subset_accuracy),
            ],
            Self::Regression(m) => vec![("MAE", m.mae), ("RMSE", m.rmse), ("R²", m.r2)],
            Self::LanguageModel(m) => vec![("loss", m.loss), ("perplexity", m.perplexity)],
        }
    }

    /// The classification metrics, if this is a classification evaluation.
    pub fn classification(&self) -> Option<&ClassificationMetrics> {
        match self {
            Self::Classification(m) => Some(m),
            _ => None,
        }
    }
}

/// Metrics of a multi-label evaluation (scikit-learn on 0/1 indicator matrices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelMetrics {
    /// Rows evaluated.
    pub n: usize,
    /// Share of rows whose predicted label set is exactly right.
    pub subset_accuracy: f64,
    /// Share of (row, label) cells predicted wrongly.
    pub hamming_loss: f64,
    /// Precision, recall, F1 and support of every label, in label order.
    pub per_label: Vec<ClassScores>,
    /// Unweighted means over all labels.
    pub macro_avg: Averages,
    /// From the pooled counts of all labels.
    pub micro_avg: Averages,
    /// Means weighted by each label's support.
    pub weighted_avg: Averages,
    /// Per-row precision, recall and F1, averaged over rows.
    pub samples_avg: Averages,
}

impl MultiLabelMetrics {
    /// Computes the metrics of predicted label sets against gold ones, row-major 0/1
    /// `[rows, num_labels]`.
    pub fn compute(gold: &[bool], predicted: &[bool], num_labels: usize) -> Self {
        let k = num_labels.max(1);
        let n = gold.len().min(predicted.len()) / k;
        let cell = |v: &[bool], i: usize, c: usize| v[i * k + c];
        let counts: Vec<Counts> = (0..k)
            .map(|c| {
                let mut counts = Counts::default();
                for i in 0..n {
                    let (g, p) = (cell(gold, i, c), cell(predicted, i, c));
                    counts.tp += usize::from(g && p);
                    counts.support += usize::from(g);
                    counts.predicted += usize::from(p);
                }
                counts
            })
            .collect();
        // For indicator matrices scikit-learn averages over every label.
        let (per_label, macro_avg, micro_avg, weighted_avg) = averaged(&counts, true);
        let mut samples_avg = Averages::default();
        let (mut exact, mut wrong_cells) = (0usize, 0usize);
        for i in 0..n {
            let (mut tp, mut g, mut p, mut wrong) = (0usize, 0usize, 0usize, 0usize);
            for c in 0..k {
                let (gc, pc) = (cell(gold, i, c), cell(predicted, i, c));
                tp += usize::from(gc && pc);
                g += usize::from(gc);
                p += usize::from(pc);
                wrong += usize::from(gc != pc);
            }
            exact += usize::from(wrong == 0);
            wrong_cells += wrong;
            samples_avg.precision += ratio(tp as f64, p as f64);
            samples_avg.recall += ratio(tp as f64, g as f64);
            samples_avg.f1 += ratio(2.0 * tp as f64, (g + p) as f64);
        }
        let rows = n as f64;
        Self {
            n,
            subset_accuracy: ratio(exact as f64, rows),
            hamming_loss: ratio(wrong_cells as f64, rows * k as f64),
            per_label,
            macro_avg,
            micro_avg,
            weighted_avg,
            samples_avg: Averages {
                precision: ratio(samples_avg.precision, rows),
                recall: ratio(samples_avg.recall, rows),
                f1: ratio(samples_avg.f1, rows),
            },
        }
    }
}

/// Metrics of a regression evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Rows evaluated.
    pub n: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Mean squared error.
    pub mse: f64,
    /// Root of the mean squared error.
    pub rmse: f64,
    /// Coefficient of determination (scikit-learn's `r2_score`: 1 for a perfect fit, 0 for
    /// predicting the mean; for constant targets 1 if predicted exactly, else 0).
    pub r2: f64,
    /// Pearson's correlation of predictions and targets (0 when either is constant).
    pub pearson: f64,
}

impl RegressionMetrics {
    /// Computes the metrics of `predicted` values against `gold` ones, in f64.
    pub fn compute(gold: &[f32], predicted: &[f32]) -> Self {
        let n = gold.len().min(predicted.len());
        let rows = n as f64;
        let pairs = || {
            gold.iter()
                .zip(predicted)
                .map(|(&g, &p)| (f64::from(g), f64::from(p)))
        };
        let mae = ratio(pairs().map(|(g, p)| (g - p).abs()).sum(), rows);
        let sse: f64 = pairs().map(|(g, p)| (g - p) * (g - p)).sum();
        let mse = ratio(sse, rows);
        let mean_g = ratio(pairs().map(|(g, _)| g).sum(), rows);
        let mean_p = ratio(pairs().map(|(_, p)| p).sum(), rows);
        let sst: f64 = pairs().map(|(g, _)| (g - mean_g) * (g - mean_g)).sum();
        let r2 = if sst > 0.0 {
            1.0 - sse / sst
        } else if sse == 0.0 {
            1.0
        } else {
            0.0
        };
        let cov: f64 = pairs().map(|(g, p)| (g - mean_g) * (p - mean_p)).sum();
        let ssp: f64 = pairs().map(|(_, p)| (p - mean_p) * (p - mean_p)).sum();
        let pearson = if sst > 0.0 && ssp > 0.0 {
            (cov / (sst.sqrt() * ssp.sqrt())).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        Self {
            n,
            mae,
            mse,
            rmse: mse.sqrt(),
            r2,
            pearson,
        }
    }
}

/// Index of the largest score (the first one on ties): the predicted class.
pub fn argmax(scores: &[f32]) -> usize {
    scores
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > scores[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scikit_learn() {
        let gold = [0, 0, 1, 1, 2, 2, 2, 0];
        let pred = [0, 1, 1, 2, 2, 2, 0, 0];
        let m = ClassificationMetrics::compute(&gold, &pred, 3);
        assert_eq!(m.n, 8);
        assert!((m.accuracy - 5.0 / 8.0).abs() < 1e-12);
        // Per class F1: c0 tp2 gold3 pred3 -> 2/3; c1 tp1 gold2 pred2 -> 1/2; c2 tp2 gold3 pred3 -> 2/3.
        assert!((m.macro_f1 - (2.0 / 3.0 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![1, 0, 2]]
        );
        let pair = |gold, predicted, count| Confusion {
            gold,
            predicted,
            count,
        };
        assert_eq!(
            m.confused,
            vec![pair(0, 1, 1), pair(1, 2, 1), pair(2, 0, 1)]
        );
    }

    #[test]
    fn many_classes_keep_no_matrix_but_their_worst_confusions() {
        // 10,000 classes: a dense matrix would be 10^8 counts (800 MB, and 700 MB printed).
        let k = 10_000;
        let gold: Vec<usize> = (0..3 * k).map(|i| i % k).collect();
        // Every class right twice, wrong once, predicted as the next class; class 7 is
        // taken for class 3 three times more.
        let mut pred: Vec<usize> = (0..3 * k)
            .map(|i| if i < k { (i + 1) % k } else { i % k })
            .collect();
        let mut gold = gold;
        gold.extend([3, 3, 3]);
        pred.extend([7, 7, 7]);
        let m = ClassificationMetrics::compute(&gold, &pred, k);
        assert!(m.confusion.is_empty());
        assert_eq!(m.confused.len(), CONFUSED_PAIRS);
        assert_eq!(
            m.confused[0],
            Confusion {
                gold: 3,
                predicted: 7,
                count: 3
            }
        );
        assert_eq!(
            m.confused[1],
            Confusion {
                gold: 0,
                predicted: 1,
                count: 1
            }
        );
        assert_eq!(m.per_class.len(), k);
        assert_eq!(m.per_class[3].support, 6);
        assert!((m.accuracy - (2 * k) as f64 / (3 * k + 3) as f64).abs() < 1e-12);
        let json = serde_json::to_string(&m).expect("json");
        assert!(!json.contains("\"confusion\""), "the matrix is left out");
        assert!(json.len() < 2_000_000, "{} bytes", json.len());
        // Small label sets keep it, and it reads back.
        let small = ClassificationMetrics::compute(&[0, 1], &[1, 1], 2);
        let back: ClassificationMetrics =
            serde_json::from_str(&serde_json::to_string(&small).expect("json")).expect("reads");
        assert_eq!(back, small);
    }
}
