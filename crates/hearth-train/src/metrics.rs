//! Classification metrics: accuracy, macro-F1 and the confusion matrix.

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
        Self {
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
