//! Holding out an evaluation set the way the Python reference does.
//!
//! The reference shuffles the rows with `random.Random(seed).shuffle(rows)` and takes the first
//! `n_eval` as evaluation rows and the rest for training. Working on indices instead of rows
//! gives the same assignment, because a shuffle's permutation does not depend on the contents.

use serde::Serialize;

use crate::{DataError, python_shuffle_indices};

/// Row indices of a dataset, partitioned into training and evaluation sets, each in shuffled
/// order (the order the reference iterates them in before any per-epoch shuffling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub eval: Vec<usize>,
}

/// Shuffles `0..n_rows` as `random.Random(seed).shuffle` would and holds out the first
/// `n_eval` indices for evaluation.
///
/// `n_eval` may be 0 (no evaluation set), but it must leave at least one row to train on.
pub fn holdout_split(n_rows: usize, n_eval: usize, seed: u64) -> Result<Split, DataError> {
    if n_eval >= n_rows {
        return Err(DataError::NothingToTrain { n_eval, n_rows });
    }
    let mut order = python_shuffle_indices(n_rows, seed);
    let train = order.split_off(n_eval);
    Ok(Split { train, eval: order })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.
mod tests {
    use super::*;

    #[test]
    fn eval_is_the_head_of_the_python_shuffle() {
        // python3 -c "import random; x=list(range(10)); random.Random(0).shuffle(x); print(x)"
        let split = holdout_split(10, 3, 0).unwrap();
        assert_eq!(split.eval, [7, 8, 1]);
        assert_eq!(split.train, [5, 3, 4, 2, 0, 9, 6]);
    }

    #[test]
    fn no_eval_rows_is_allowed() {
        let split = holdout_split(4, 0, 1).unwrap();
        assert!(split.eval.is_empty());
        assert_eq!(split.train.len(), 4);
    }

    #[test]
    fn an_eval_set_that_takes_everything_is_an_error() {
        let err = holdout_split(5, 5, 0).unwrap_err().to_string();
        assert!(err.contains("5 rows leaves nothing to train on"), "{err}");
        assert!(holdout_split(0, 0, 0).is_err());
    }
}
