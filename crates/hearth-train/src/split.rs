//! A job's data after loading, for every task: training, held-out and test parts, the label
//! names, what loading found out, which file rows went where, and a fingerprint that a
//! checkpoint keeps so a resumed run can prove it sees the same data.
//!
//! The parts are [`Rows`] (texts with their targets) for classifiers and [`Conversations`] for
//! supervised fine-tuning; [`Part`] is what the fingerprint needs of either.

use std::path::Path;

use hearth_data::chat::Turn;
use hearth_data::{DataFormat, LoadReport};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::task::Targets;
use crate::{JobSpec, TrainError};

/// Texts with their targets, owned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rows {
    /// The texts.
    pub texts: Vec<String>,
    /// The target of each text.
    pub targets: Targets,
}

/// Conversations, each a list of turns.
pub type Conversations = Vec<Vec<Turn>>;

/// One part of a split, as the fingerprint reads it.
pub trait Part {
    /// Whether an empty test part is hashed too. Classifier splits always hashed it and SFT
    /// splits never did; both stay so, so that checkpoints written before keep resuming.
    const HASHES_EMPTY_TEST: bool;
    /// Rows (texts or conversations) in the part.
    fn len(&self) -> usize;
    /// Whether the part is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Feeds every row, length-prefixed, to `hash`; `labels` names the targets.
    fn hash_into(&self, labels: &[String], hash: &mut Sha256);
}

fn hash_field(hash: &mut Sha256, field: &str) {
    hash.update((field.len() as u64).to_le_bytes());
    hash.update(field.as_bytes());
}

impl Part for Rows {
    const HASHES_EMPTY_TEST: bool = true;

    fn len(&self) -> usize {
        self.texts.len()
    }

    fn hash_into(&self, labels: &[String], hash: &mut Sha256) {
        for (i, text) in self.texts.iter().enumerate() {
            hash_field(hash, text);
            hash_field(hash, &self.targets.describe(i, labels));
        }
    }
}

impl Part for Conversations {
    const HASHES_EMPTY_TEST: bool = false;

    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn hash_into(&self, _labels: &[String], hash: &mut Sha256) {
        for turns in self {
            hash.update((turns.len() as u64).to_le_bytes());
            for t in turns {
                hash_field(hash, &t.role);
                hash_field(hash, &t.content);
            }
        }
    }
}

/// A job's data split into training, held-out and test parts.
#[derive(Debug, Clone)]
pub struct SplitData<P> {
    /// Training rows, in the order of the seeded split (augmented copies after them).
    pub train: P,
    /// Held-out (validation) rows.
    pub eval: P,
    /// Test rows, scored once at the end (empty unless the job asks for a test share).
    pub test: P,
    /// Label names, sorted; output `i` of a classifier's head predicts label `i`. Empty for
    /// regression and SFT.
    pub labels: Vec<String>,
    /// Rows (or conversations) carrying each label in the whole dataset, in label order.
    pub class_counts: Vec<usize>,
    /// Rows (or conversations) of the dataset after cleaning, before the split.
    pub rows: usize,
    /// What loading found out.
    pub report: LoadReport,
    /// Which dataset rows went where, to save beside the run.
    pub assignment: Assignment,
}

/// The row indices (into the cleaned dataset) of each part of a split, and how it was drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// `holdout` or `stratified`.
    pub method: crate::SplitMethod,
    /// The seed.
    pub seed: u64,
    /// Training rows, before augmentation.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// Augmented training rows added.
    pub augmented: usize,
}

impl<P: Part> SplitData<P> {
    /// SHA-256 (hex) of the training, held-out and test rows with their targets, in order:
    /// equal exactly when a run would see the same data.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for (name, part) in [
            ("train", &self.train),
            ("eval", &self.eval),
            ("test", &self.test),
        ] {
            if name == "test" && part.is_empty() && !P::HASHES_EMPTY_TEST {
                continue;
            }
            hash.update(name.as_bytes());
            hash.update((part.len() as u64).to_le_bytes());
            part.hash_into(&self.labels, &mut hash);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The format of the job's data: `data.format` if set, else the extension of `data.path`.
pub fn data_format(job: &JobSpec) -> Result<DataFormat, TrainError> {
    let explicit = job
        .data
        .format
        .as_deref()
        .map(str::parse::<DataFormat>)
        .transpose()?;
    Ok(DataFormat::resolve(explicit, Path::new(&job.data.path))?)
}
