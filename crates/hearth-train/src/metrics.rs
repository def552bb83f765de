//! Classification metrics: accuracy; precision, recall and F1 per class and averaged (macro,
//! micro, weighted), as scikit-learn's `precision_recall_fscore_support` with
//! `zero_division=0`; and the confusion matrix.

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
    /// `confusion[gold][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
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

impl ClassificationMetrics {
    /// Computes the metrics of `predicted` against `gold` over `num_labels` classes.
    pub fn compute(gold: &[usize], predicted: &[usize], num_labels: usize) -> Self {
        let mut confusion = vec![vec![0usize; num_labels]; num_labels];
        for (&g, &p) in gold.iter().zip(predicted) {
            if g < num_labels && p < num_labels {
                confusion[g][p] += 1;
            }
        }
        let n = gold.len().min(predicted.len());
        let correct: usize = (0..num_labels).map(|c| confusion[c][c]).sum();
        // scikit-learn averages over the labels present in gold or predictions.
        let mut f1s = Vec::new();
        for c in 0..num_labels {
            let tp = confusion[c][c] as f64;
            let gold_c: usize = confusion[c].iter().sum();
            let pred_c: usize = confusion.iter().map(|row| row[c]).sum();
            if gold_c == 0 && pred_c == 0 {
                continue;
            }
            let denom = (gold_c + pred_c) as f64;
            f1s.push(if denom == 0.0 { 0.0 } else { 2.0 * tp / denom });
        }
        let mut per_class = Vec::with_capacity(num_labels);
        let (mut tp_all, mut pred_all, mut gold_all) = (0usize, 0usize, 0usize);
        let mut present = 0usize;
        let (mut macro_avg, mut weighted_avg) = (Averages::default(), Averages::default());
        for c in 0..num_labels {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[c]).sum();
            let precision = ratio(tp as f64, predicted as f64);
            let recall = ratio(tp as f64, support as f64);
            let f1 = ratio(2.0 * tp as f64, (support + predicted) as f64);
            tp_all += tp;
            pred_all += predicted;
            gold_all += support;
            if support + predicted > 0 {
                present += 1;
                macro_avg.precision += precision;
                macro_avg.recall += recall;
                macro_avg.f1 += f1;
            }
            let w = support as f64;
            weighted_avg.precision += w * precision;
            weighted_avg.recall += w * recall;
            weighted_avg.f1 += w * f1;
            per_class.push(ClassScores {
                precision,
                recall,
                f1,
                support,
            });
        }
        let k = present as f64;
        let macro_avg = Averages {
            precision: ratio(macro_avg.precision, k),
            recall: ratio(macro_avg.recall, k),
            f1: ratio(macro_avg.f1, k),
        };
        let total = gold_all as f64;
        let weighted_avg = Averages {
            precision: ratio(weighted_avg.precision, total),
            recall: ratio(weighted_avg.recall, total),
            f1: ratio(weighted_avg.f1, total),
        };
        let micro_p = ratio(tp_all as f64, pred_all as f64);
        let micro_r = ratio(tp_all as f64, gold_all as f64);
        let micro_avg = Averages {
            precision: micro_p,
            recall: micro_r,
            f1: ratio(2.0 * micro_p * micro_r, micro_p + micro_r),
        };
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
    }
}
