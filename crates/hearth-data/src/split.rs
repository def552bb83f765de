//! Holding out an evaluation set the way the Python reference does.
//!
//! The reference shuffles the rows with `random.Random(seed).shuffle(rows)` and takes the first
//! `n_eval` as evaluation rows and the rest for training. Working on indices instead of rows
//! gives the same assignment, because a shuffle's permutation does not depend on the contents.

use serde::{Deserialize, Serialize};

use crate::{DataError, PythonRandom, python_shuffle_indices};

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

/// A stratified three-way split, saved beside a run so it can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StratifiedSplit {
    /// Training rows (0-based), in shuffled order.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// The seed it was drawn with.
    pub seed: u64,
    /// The requested validation and test shares.
    pub fractions: [f64; 2],
}

/// Splits rows into train, validation and test with each label's share kept in every part, as
/// closely as whole groups allow, and every group of duplicates (`group[i]`: any id shared by
/// rows that must stay together, e.g. [`duplicate_groups`]) in one part only.
///
/// Per label (a group counts for its most frequent label), groups are shuffled with Python's
/// `random.Random(seed)` and dealt out in that order: to test until it holds `test` of the
/// label's rows, then to validation until it holds `validation`, the rest to training.
pub fn stratified_split(
    labels: &[usize],
    group: &[usize],
    validation: f64,
    test: f64,
    seed: u64,
) -> Result<StratifiedSplit, DataError> {
    let n = labels.len().min(group.len());
    let valid = |f: f64| (0.0..1.0).contains(&f);
    if !valid(validation) || !valid(test) || validation + test >= 1.0 {
        return Err(DataError::BadFractions { validation, test });
    }
    // Rows of each group, groups in order of first row.
    let mut members: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &g) in group.iter().enumerate().take(n) {
        members.entry(g).or_default().push(i);
    }
    let mut by_label: std::collections::BTreeMap<usize, Vec<Vec<usize>>> = Default::default();
    let mut ordered: Vec<Vec<usize>> = members.into_values().collect();
    ordered.sort_by_key(|rows| rows[0]);
    for rows in ordered {
        let mut votes: std::collections::BTreeMap<usize, usize> = Default::default();
        for &i in &rows {
            *votes.entry(labels[i]).or_default() += 1;
        }
        let label = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or(0, |(l, _)| *l);
        by_label.entry(label).or_default().push(rows);
    }
    let mut rng = PythonRandom::new(seed);
    let mut split = StratifiedSplit {
        train: Vec::new(),
        validation: Vec::new(),
        test: Vec::new(),
        seed,
        fractions: [validation, test],
    };
    for (_, mut groups) in by_label {
        rng.shuffle(&mut groups);
        let total: usize = groups.iter().map(Vec::len).sum();
        let test_target = (total as f64 * test).round() as usize;
        let val_target = (total as f64 * validation).round() as usize;
        let (mut in_test, mut in_val) = (0, 0);
        for rows in groups {
            if in_test < test_target {
                in_test += rows.len();
                split.test.extend(rows);
            } else if in_val < val_target {
                in_val += rows.len();
                split.validation.extend(rows);
            } else {
                split.train.extend(rows);
            }
        }
    }
    if split.train.is_empty() {
        return Err(DataError::NothingToTrain {
            n_eval: split.validation.len() + split.test.len(),
            n_rows: n,
        });
    }
    Ok(split)
}

/// A group id per row such that duplicates share one: rows equal after folding case, spaces and
/// punctuation, and, with `near`, near-duplicates. The id is the group's first row.
pub fn duplicate_groups(
    texts: &[&str],
    near: Option<&crate::neardup::NearDupSettings>,
) -> Vec<usize> {
    let mut groups = crate::neardup::folded_duplicate_groups(texts);
    if let Some(settings) = near {
        groups.extend(crate::neardup::near_duplicate_groups(texts, settings));
    }
    components(texts.len(), &groups)
}

/// For each row, the smallest row of its connected component when `groups` link rows.
pub(crate) fn components(n: usize, groups: &[Vec<usize>]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for g in groups {
        for pair in g.windows(2) {
            let (a, b) = (find(&mut parent, pair[0]), find(&mut parent, pair[1]));
            // The smaller index becomes the root, so a root is its component's first row.
            if a < b {
                parent[b] = a;
            } else if b < a {
                parent[a] = b;
            }
        }
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
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
