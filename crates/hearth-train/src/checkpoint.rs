//! Checkpoints: a run's state at a step, as a set of files any storage can keep (a directory
//! natively, the origin-private file system in the page).
//!
//! A checkpoint is the trained weights of that step (for LoRA runs PEFT's `adapter_config.json`
//! and `adapter_model.safetensors`; `head.safetensors` or `model.safetensors` for head-only and
//! full runs) with `hearth_run.json`, the optimizer state
//! (`optimizer.safetensors`) and `trainer_state.json`: step, epoch and row position, losses,
//! the data's fingerprint, and the SHA-256 of every other file. The manifest is written last;
//! reading checks every checksum, so a truncated or damaged checkpoint is refused with a clear
//! error and the caller falls back to an older one. Storage makes the writes atomic (temporary
//! name, flush, rename).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::adapter::AdapterFiles;
use crate::trainer::{Progress, Resume, Snapshot};
use crate::{JobSpec, RunRecord, TrainError};

/// Version of the checkpoint layout.
const FORMAT: u32 = 1;

/// `trainer_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Layout version.
    pub format: u32,
    /// Where the run stands.
    pub progress: Progress,
    /// SHA-256 of the training and held-out rows ([`crate::split::SplitData::fingerprint`]): a resumed run
    /// must see the same data.
    pub data_fingerprint: String,
    /// SHA-256 (hex) of every other file of the checkpoint.
    pub files: BTreeMap<String, String>,
}

/// A run's state at one step, with the job that defines the run.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The adapter at this step, with the job and label names.
    pub adapter: AdapterFiles,
    /// The optimizer state.
    pub optimizer: Vec<u8>,
    /// Where the run stands.
    pub progress: Progress,
    /// Fingerprint of the data the run trains on.
    pub data_fingerprint: String,
}

/// The settings that decide a run's computation: the job without its file locations
/// (a resumed run may find the same files elsewhere) and without how often its checkpoints
/// are written and how many are kept (`hearth train --resume` may change those).
fn without_paths(job: &JobSpec) -> JobSpec {
    let mut job = job.clone();
    job.model.path.clear();
    job.data.path.clear();
    job.train.checkpoint_every = 0;
    job.train.keep_checkpoints = 0;
    job
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Checkpoint {
    /// The optimizer state's file name.
    pub const OPTIMIZER: &str = "optimizer.safetensors";
    /// The manifest's file name; written last, read first.
    pub const STATE: &str = "trainer_state.json";

    /// Wraps a loop snapshot with the job, label names and the data's fingerprint
    /// ([`crate::split::SplitData::fingerprint`]).
    pub fn new(
        job: &JobSpec,
        labels: &[String],
        data_fingerprint: &str,
        snapshot: Snapshot,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            adapter: AdapterFiles::with_weights(job, labels, snapshot.adapter)?,
            optimizer: snapshot.optimizer,
            progress: snapshot.progress,
            data_fingerprint: data_fingerprint.to_string(),
        })
    }

    /// The state `job` continues from on data with label names `labels` and fingerprint
    /// `data_fingerprint` ([`crate::split::SplitData::fingerprint`]): refused when the
    /// checkpoint belongs to another job or other data. The optimizer state is loaded on
    /// `device` (without autodiff).
    pub fn resume(
        &self,
        job: &JobSpec,
        labels: &[String],
        data_fingerprint: &str,
        device: &burn::tensor::Device,
    ) -> Result<Resume, TrainError> {
        let record = self.record()?;
        if without_paths(&record.job) != without_paths(job) {
            return Err(TrainError::Checkpoint(
                "the checkpoint was written by a different job (settings differ)".into(),
            ));
        }
        if record.labels != labels || self.data_fingerprint != data_fingerprint {
            return Err(TrainError::Checkpoint(
                "the data differs from the data the checkpoint was trained on".into(),
            ));
        }
        Resume::from_checkpoint(job, self, device)
    }

    /// Whether the checkpoint whose files `read` gives (file name → bytes) was written by the
    /// same run as this one: the same job (paths aside), label names and data. Only its run
    /// record and manifest are read; one that cannot be read is not this run's. Pruning old
    /// checkpoints asks this, so it never deletes another run's.
    pub fn same_run_as(&self, mut read: impl FnMut(&str) -> Option<Vec<u8>>) -> bool {
        let (Some(record), Some(state)) = (read(AdapterFiles::RECORD), read(Self::STATE)) else {
            return false;
        };
        let (Ok(theirs), Ok(state), Ok(mine)) = (
            serde_json::from_slice::<RunRecord>(&record),
            serde_json::from_slice::<TrainerState>(&state),
            self.record(),
        ) else {
            return false;
        };
        without_paths(&theirs.job) == without_paths(&mine.job)
            && theirs.labels == mine.labels
            && state.data_fingerprint == self.data_fingerprint
    }

    /// Step the checkpoint was taken at.
    pub fn step(&self) -> usize {
        self.progress.step
    }

    /// The job this checkpoint's run was started with.
    pub fn record(&self) -> Result<RunRecord, TrainError> {
        serde_json::from_str(&self.adapter.record)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", AdapterFiles::RECORD)))
    }

    /// The directory name of a checkpoint at `step`: `step-000040` (sorts by step).
    pub fn dir_name(step: usize) -> String {
        format!("step-{step:06}")
    }

    /// The step of a checkpoint directory name, if it is one.
    pub fn step_of_dir(name: &str) -> Option<usize> {
        name.strip_prefix("step-")?.parse().ok()
    }

    /// The files to store, by name, in the order to write them: the manifest last.
    pub fn to_files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, TrainError> {
        let mut files = self.adapter.files();
        files.push((Self::OPTIMIZER, self.optimizer.clone()));
        let state = TrainerState {
            format: FORMAT,
            progress: self.progress.clone(),
            data_fingerprint: self.data_fingerprint.clone(),
            files: files
                .iter()
                .map(|(name, bytes)| (name.to_string(), sha256_hex(bytes)))
                .collect(),
        };
        let json =
            serde_json::to_vec_pretty(&state).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        files.push((Self::STATE, json));
        Ok(files)
    }

    /// Reads a checkpoint back through `read` (file name → bytes, `None` when absent),
    /// checking the manifest and every checksum.
    pub fn from_files(mut read: impl FnMut(&str) -> Option<Vec<u8>>) -> Result<Self, TrainError> {
        let bad = |msg: String| Err(TrainError::Checkpoint(msg));
        let Some(state) = read(Self::STATE) else {
            return bad(format!(
                "{} is missing (the checkpoint was not finished)",
                Self::STATE
            ));
        };
        let state: TrainerState = match serde_json::from_slice(&state) {
            Ok(state) => state,
            Err(e) => return bad(format!("{} is damaged: {e}", Self::STATE)),
        };
        if state.format != FORMAT {
            return bad(format!(
                "layout version {} is not the supported {FORMAT}",
                state.format
            ));
        }
        let mut get = |name: &str| -> Result<Vec<u8>, TrainError> {
            let Some(bytes) = read(name) else {
                return Err(TrainError::Checkpoint(format!("{name} is missing")));
            };
            match state.files.get(name) {
                Some(sum) if *sum == sha256_hex(&bytes) => Ok(bytes),
                Some(_) => Err(TrainError::Checkpoint(format!(
                    "{name} does not match its checksum ({} bytes; truncated or damaged)",
                    bytes.len()
                ))),
                None => Err(TrainError::Checkpoint(format!(
                    "{} lists no checksum for {name}",
                    Self::STATE
                ))),
            }
        };
        let text = |bytes: Vec<u8>, name: &str| {
            String::from_utf8(bytes)
                .map_err(|_| TrainError::Checkpoint(format!("{name} is not UTF-8")))
        };
        // The record names the strategy, which names the other files.
        let record = text(get(AdapterFiles::RECORD)?, AdapterFiles::RECORD)?;
        let run: RunRecord = serde_json::from_str(&record)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", AdapterFiles::RECORD)))?;
        let strategy = run.job.train.strategy;
        let config = if strategy == hearth_models::Strategy::Lora {
            text(get(AdapterFiles::CONFIG)?, AdapterFiles::CONFIG)?
        } else {
            String::new()
        };
        let weights = get(strategy.weights_file())?;
        let optimizer = get(Self::OPTIMIZER)?;
        crate::adapter::check_checkpoint_finite(
            strategy.weights_file(),
            &weights,
            Self::OPTIMIZER,
            &optimizer,
        )?;
        let checkpoint = Self {
            adapter: AdapterFiles {
                strategy,
                config,
                weights,
                record,
                extra: Vec::new(),
            },
            optimizer,
            progress: state.progress,
            data_fingerprint: state.data_fingerprint,
        };
        checkpoint.record()?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let job = JobSpec::parse("[model]\npath='m'\n[data]\npath='d.csv'").expect("job");
        Checkpoint {
            adapter: AdapterFiles {
                strategy: hearth_models::Strategy::Lora,
                config: "{}".into(),
                extra: Vec::new(),
                weights: vec![1, 2, 3, 4],
                record: serde_json::to_string(&RunRecord {
                    job,
                    labels: vec!["a".into(), "b".into()],
                })
                .expect("json"),
            },
            optimizer: vec![9; 16],
            progress: Progress {
                step: 40,
                epoch: 1,
                cursor: 7,
                losses: vec![1.0, 0.5],
                ..Progress::default()
            },
            data_fingerprint: "f".into(),
        }
    }

    fn round_trip(
        files: &[(&'static str, Vec<u8>)],
        damage: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
    ) -> Result<Checkpoint, TrainError> {
        Checkpoint::from_files(|name| {
            let bytes = files.iter().find(|(n, _)| *n == name)?.1.clone();
            damage(name, bytes)
        })
    }

    #[test]
    fn files_round_trip_with_manifest_last() {
        let files = sample().to_files().expect("files");
        assert_eq!(files.last().map(|f| f.0), Some(Checkpoint::STATE));
        let back = round_trip(&files, |_, b| Some(b)).expect("reads back");
        assert_eq!(back.progress, sample().progress);
        assert_eq!(back.optimizer, sample().optimizer);
        assert_eq!(back.adapter.weights, sample().adapter.weights);
        assert_eq!(back.record().expect("record").labels, vec!["a", "b"]);
    }

    #[test]
    fn damage_is_named() {
        let files = sample().to_files().expect("files");
        let err = round_trip(&files, |n, mut b| {
            if n == Checkpoint::OPTIMIZER {
                b[3] ^= 1;
            }
            Some(b)
        })
        .expect_err("flipped bit");
        assert!(
            err.to_string()
                .contains("optimizer.safetensors does not match its checksum"),
            "{err}"
        );
        let err = round_trip(&files, |n, b| {
            Some(if n == AdapterFiles::WEIGHTS {
                b[..2].to_vec()
            } else {
                b
            })
        })
        .expect_err("truncated");
        assert!(err.to_string().contains("truncated or damaged"), "{err}");
        let err =
            round_trip(&files, |n, b| (n != Checkpoint::STATE).then_some(b)).expect_err("no state");
        assert!(err.to_string().contains("was not finished"), "{err}");
        let err = round_trip(&files, |n, b| {
            Some(if n == Checkpoint::STATE {
                b[..b.len() / 2].to_vec()
            } else {
                b
            })
        })
        .expect_err("half manifest");
        assert!(err.to_string().contains("is damaged"), "{err}");
    }

    #[test]
    fn a_run_knows_its_own_checkpoints() {
        let mine = sample();
        let read = |c: &Checkpoint| {
            let files = c.to_files().expect("files");
            move |name: &str| {
                files
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, b)| b.clone())
            }
        };
        // The same run at another step, its files found elsewhere, storing more checkpoints.
        let mut later = sample();
        later.progress.step = 80;
        let mut record = later.record().expect("record");
        record.job.data.path = "/elsewhere/d.csv".into();
        record.job.train.keep_checkpoints = 9;
        later.adapter.record = serde_json::to_string(&record).expect("json");
        assert!(mine.same_run_as(read(&later)));
        // Another job, other data, other labels, or a checkpoint that cannot be read.
        let mut other_job = sample();
        let mut record = other_job.record().expect("record");
        record.job.train.learning_rate *= 2.0;
        other_job.adapter.record = serde_json::to_string(&record).expect("json");
        assert!(!mine.same_run_as(read(&other_job)));
        let mut other_data = sample();
        other_data.data_fingerprint = "g".into();
        assert!(!mine.same_run_as(read(&other_data)));
        let mut other_labels = sample();
        let mut record = other_labels.record().expect("record");
        record.labels.push("c".into());
        other_labels.adapter.record = serde_json::to_string(&record).expect("json");
        assert!(!mine.same_run_as(read(&other_labels)));
        assert!(!mine.same_run_as(|_| None));
        assert!(!mine.same_run_as(|_| Some(b"{".to_vec())));
    }

    #[test]
    fn non_finite_weights_or_optimizer_state_are_refused_by_tensor() {
        use hearth_models::host::{HostTensor, serialize};
        let file = |name: &str, data: Vec<f32>| {
            let tensors = [(
                name.to_string(),
                HostTensor {
                    shape: vec![data.len()],
                    data,
                },
            )]
            .into_iter()
            .collect();
            serialize(&tensors, None).expect("serializes")
        };
        let mut checkpoint = sample();
        checkpoint.adapter.weights = file("x.lora_B.weight", vec![0.5, 1.0]);
        checkpoint.optimizer = file("moment_2.x.lora_B.weight", vec![0.0, 1e-8]);
        round_trip(&checkpoint.to_files().expect("files"), |_, b| Some(b)).expect("finite");

        let mut nan = checkpoint.clone();
        nan.adapter.weights = file("x.lora_B.weight", vec![0.5, f32::NAN]);
        let err =
            round_trip(&nan.to_files().expect("files"), |_, b| Some(b)).expect_err("NaN weights");
        let message = err.to_string();
        assert!(
            message.contains("adapter_model.safetensors: tensor \"x.lora_B.weight\" holds NaN"),
            "{message}"
        );
        let mut inf = checkpoint;
        inf.optimizer = file("moment_2.x.lora_B.weight", vec![f32::INFINITY, 0.0]);
        let err = round_trip(&inf.to_files().expect("files"), |_, b| Some(b))
            .expect_err("infinite moment");
        let message = err.to_string();
        assert!(
            message
                .contains("optimizer.safetensors: tensor \"moment_2.x.lora_B.weight\" holds inf"),
            "{message}"
        );
    }

    #[test]
    fn dir_names_sort_by_step() {
        assert_eq!(Checkpoint::dir_name(40), "step-000040");
        assert_eq!(Checkpoint::step_of_dir("step-000040"), Some(40));
        assert_eq!(Checkpoint::step_of_dir("step-000040.tmp"), None);
        assert!(Checkpoint::dir_name(9) < Checkpoint::dir_name(10));
    }
}
