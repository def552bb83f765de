//! What a run trains, and what it saves: LoRA adapters, the head alone, or every weight.
//!
//! The three strategies share one model type ([`BertForSequenceClassification`]) and differ in
//! which parameters require gradients and in what is worth writing afterwards:
//!
//! - [`Strategy::Lora`]: adapters on `target_modules` plus the head; the base is frozen. Saved
//!   as PEFT's `adapter_config.json` + `adapter_model.safetensors`.
//! - [`Strategy::Head`]: no adapters, the encoder frozen, only the head trains (a linear probe).
//!   PEFT cannot hold this: a LoRA config must target at least one module (PEFT 0.21 raises
//!   `NoMatchingPeftModuleError` for `target_modules=[]` with `modules_to_save=["classifier"]`),
//!   so the head is saved as its own small `head.safetensors` (`classifier.weight [out, hidden]`,
//!   `classifier.bias [out]`, HF's names and layout) to load onto the unchanged base.
//! - [`Strategy::Full`]: no adapters, everything trains. Saved as a complete HF
//!   `BertForSequenceClassification` directory (`config.json` with the labels, `model.safetensors`
//!   under HF's names, `tokenizer.json`), the writer [`crate::merge`] uses for merged models.
//!
//! In every case one byte string ([`Trained::weights`]) is enough, with the base model's files
//! and the job, to rebuild the trained model: it is what a checkpoint stores and what
//! [`crate::ModelFiles::adapter`] takes back ([`build_for_strategy`], [`load_trained`]).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::bert::{
    self, BertConfig, BertForSequenceClassification, BertModel, Pooling, head_weights, import_head,
};
use crate::error::{parse_config, write_config};
use crate::lora::LoraSettings;
use crate::peft::{self, AdapterConfig};
use crate::{ModelError, ModelFiles, merge};

/// What a run trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// LoRA adapters on `lora.target_modules` plus the head; the base stays frozen.
    #[default]
    Lora,
    /// The head only, on a frozen encoder (a linear probe).
    Head,
    /// Every weight of the encoder and the head (full fine-tuning).
    Full,
}

impl Strategy {
    /// Sets which parameters of a freshly built model train: attaches the adapters for
    /// [`Strategy::Lora`], freezes the encoder for [`Strategy::Head`], unfreezes everything for
    /// [`Strategy::Full`].
    pub fn prepare(
        self,
        model: BertForSequenceClassification,
        lora: &LoraSettings,
    ) -> Result<BertForSequenceClassification, ModelError> {
        match self {
            Self::Lora => model.with_lora(lora),
            Self::Head => Ok(model.head_only()),
            Self::Full => Ok(model.full()),
        }
    }
}

impl Strategy {
    /// The file holding a run's trained weights: PEFT's `adapter_model.safetensors`,
    /// `head.safetensors`, or a full model's `model.safetensors`.
    pub fn weights_file(self) -> &'static str {
        match self {
            Self::Lora => "adapter_model.safetensors",
            Self::Head => HEAD_FILE,
            Self::Full => "model.safetensors",
        }
    }
}

/// Only the trained weights of `model` under `strategy` (what a checkpoint stores): the PEFT
/// adapter, the head, or every parameter under HF's names.
pub async fn trained_weights(
    model: &BertForSequenceClassification,
    strategy: Strategy,
) -> Result<Vec<u8>, ModelError> {
    match strategy {
        Strategy::Lora => peft::export_adapter(model).await,
        Strategy::Head => head_weights(model).await,
        Strategy::Full => merge::hf_weights(model).await,
    }
}

/// File name of the head a [`Strategy::Head`] run saves.
pub const HEAD_FILE: &str = "head.safetensors";

/// What a trained model leaves behind, by strategy.
#[derive(Debug, Clone)]
pub enum Trained {
    /// A PEFT adapter: `adapter_config.json` and `adapter_model.safetensors`.
    Adapter {
        /// `adapter_config.json`.
        config: AdapterConfig,
        /// `adapter_model.safetensors`.
        weights: Vec<u8>,
    },
    /// The head of a linear probe: `head.safetensors`.
    Head {
        /// `head.safetensors`.
        weights: Vec<u8>,
    },
    /// A complete HF model directory.
    Model {
        /// `config.json`: the base's, with the labels as `id2label`.
        config: Vec<u8>,
        /// `model.safetensors`: every parameter under its HF name.
        weights: Vec<u8>,
        /// `tokenizer.json`, the base's.
        tokenizer: Vec<u8>,
    },
}

impl Trained {
    /// The strategy that produced these files.
    pub fn strategy(&self) -> Strategy {
        match self {
            Self::Adapter { .. } => Strategy::Lora,
            Self::Head { .. } => Strategy::Head,
            Self::Model { .. } => Strategy::Full,
        }
    }

    /// The trained weights: with the base model's files and the job they rebuild the model
    /// (as [`ModelFiles::adapter`]). What a checkpoint stores.
    pub fn weights(&self) -> &[u8] {
        match self {
            Self::Adapter { weights, .. }
            | Self::Head { weights }
            | Self::Model { weights, .. } => weights,
        }
    }

    /// Every file to write into the output directory, by file name.
    pub fn files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, ModelError> {
        Ok(match self {
            Self::Adapter { config, weights } => {
                let config = serde_json::to_vec_pretty(config)
                    .map_err(|e| ModelError::Lora(format!("adapter_config.json: {e}")))?;
                vec![
                    ("adapter_config.json", config),
                    ("adapter_model.safetensors", weights.clone()),
                ]
            }
            Self::Head { weights } => vec![(HEAD_FILE, weights.clone())],
            Self::Model {
                config,
                weights,
                tokenizer,
            } => vec![
                ("config.json", config.clone()),
                ("model.safetensors", weights.clone()),
                ("tokenizer.json", tokenizer.clone()),
            ],
        })
    }
}

/// The files a model trained with `strategy` saves. Reads tensors back asynchronously, so it
/// runs in a browser too.
///
/// `base` is the base model's files (its `config.json` and `tokenizer.json` go into a full
/// model's directory), `base_name` the base's path or name for `adapter_config.json`, `labels`
/// the head's output names (a full model's `id2label`), `problem` what the head predicts (a
/// full model's `problem_type`). A model whose parameters do not fit
/// `strategy` (adapters present for Head/Full, absent for LoRA) is refused.
pub async fn export_trained(
    model: &BertForSequenceClassification,
    strategy: Strategy,
    lora: &LoraSettings,
    base: &ModelFiles,
    base_name: &str,
    labels: &[String],
    problem: merge::ProblemType,
) -> Result<Trained, ModelError> {
    let labels = &problem.head_labels(labels);
    if labels.len() != model.num_labels() {
        return Err(ModelError::UnsupportedConfig(format!(
            "{} label names for a head with {} outputs",
            labels.len(),
            model.num_labels()
        )));
    }
    let has_adapters = peft::peft_names(model)
        .iter()
        .any(|(path, _)| path.contains(".lora."));
    if has_adapters != (strategy == Strategy::Lora) {
        return Err(ModelError::Lora(format!(
            "a {strategy:?} run's model {} LoRA adapters",
            if has_adapters { "carries" } else { "lacks" }
        )));
    }
    Ok(match strategy {
        Strategy::Lora => Trained::Adapter {
            config: AdapterConfig::for_classification(lora, base_name),
            weights: peft::export_adapter(model).await?,
        },
        Strategy::Head => Trained::Head {
            weights: head_weights(model).await?,
        },
        Strategy::Full => {
            let mut config = merge::classifier_config(&base.config, labels, problem)?;
            if model.pooling() == Pooling::Mean {
                config = with_mean_pooling_note(&config)?;
            }
            Trained::Model {
                config,
                weights: merge::hf_weights(model).await?,
                tokenizer: base.tokenizer.clone(),
            }
        }
    })
}

/// Marks a full model's `config.json` as mean-pooled. transformers ignores the key (its
/// `BertForSequenceClassification` always pools [CLS] through the pooler), Hearth's run record
/// carries the pooling anyway; the key tells a reader of the directory why its logits differ.
fn with_mean_pooling_note(config: &[u8]) -> Result<Vec<u8>, ModelError> {
    let mut value: serde_json::Value = parse_config(config, bert::FAMILY)?;
    value["hearth_pooling"] = "mean".into();
    write_config(&value, bert::FAMILY)
}

/// A BERT classifier prepared for `strategy` on `device`, ready to train.
///
/// The head (and the LoRA factors) start from values drawn on the host from `seed`
/// ([`peft::seeded_init`]), so every backend starts a run from the same numbers. When
/// `files.adapter` holds the weights a run of the same strategy saved ([`Trained::weights`]: a
/// PEFT adapter, `head.safetensors`, or a full model's `model.safetensors`), the model starts
/// from them instead; for [`Strategy::Full`] they replace the base weights too. `lora` is only
/// read for [`Strategy::Lora`].
pub fn build_for_strategy(
    files: &ModelFiles,
    num_outputs: usize,
    pooling: Pooling,
    lora: &LoraSettings,
    strategy: Strategy,
    seed: u64,
    device: &Device,
) -> Result<BertForSequenceClassification, ModelError> {
    let lora_dropout = match strategy {
        Strategy::Lora => {
            lora.validate()?;
            lora.lora_dropout
        }
        Strategy::Head | Strategy::Full => 0.0,
    };
    let config = BertConfig::from_json(&files.config)?;
    // A LoRA adapter is checked as it is imported; a head or a full model here.
    if let (Some(trained), Strategy::Head | Strategy::Full) = (&files.adapter, strategy) {
        crate::host::check_finite(trained, strategy.weights_file())?;
    }
    let weights = match (strategy, &files.adapter) {
        (Strategy::Full, Some(trained)) => trained.clone(),
        _ => files.weights.clone(),
    };
    let encoder = BertModel::init(&config, lora_dropout, device)?.load_safetensors(weights)?;
    let model = BertForSequenceClassification::new(encoder, &config, num_outputs, pooling, device)?;
    let model = strategy.prepare(model, lora)?;
    let model = peft::seeded_init(model, seed, config.initializer_range)?;
    match (&files.adapter, strategy) {
        (None, _) => Ok(model),
        (Some(adapter), Strategy::Lora) => peft::import_adapter(model, adapter),
        (Some(trained), Strategy::Head | Strategy::Full) => import_head(model, trained),
    }
}

/// The model a run with `strategy` saved, for prediction and evaluation: the base's `files`
/// with `trained` ([`Trained::weights`]) on top. Equal to what [`build_for_strategy`] gives with
/// `files.adapter = Some(trained)`.
pub fn load_trained(
    files: &ModelFiles,
    trained: &[u8],
    num_outputs: usize,
    pooling: Pooling,
    lora: &LoraSettings,
    strategy: Strategy,
    device: &Device,
) -> Result<BertForSequenceClassification, ModelError> {
    let files = ModelFiles {
        adapter: Some(trained.to_vec()),
        ..files.clone()
    };
    build_for_strategy(&files, num_outputs, pooling, lora, strategy, 0, device)
}
