//! The model families Hearth fine-tunes, loaded from HuggingFace model directories.
//!
//! A model directory holds `config.json`, `model.safetensors` and `tokenizer.json`. This crate
//! turns those bytes into a burn module ([`bert::BertModel`] and its classification head), a
//! tokenizer that pads and truncates the way a job asks ([`tokenizer::TextTokenizer`]), and
//! LoRA adapters on PEFT-named target modules ([`lora`]). It never picks a backend: every
//! constructor takes the [`burn::tensor::Device`] the caller chose, and every loader takes bytes,
//! so the same code runs natively and in the browser.

pub mod activation;
pub mod bert;
pub mod lora;
pub mod merge;
pub mod peft;
pub mod tokenizer;

mod error;

pub use error::ModelError;

use burn::tensor::Device;

/// The three files of a model directory, as bytes (read from disk natively, from `fetch` or the
/// File API in the browser), and optionally an adapter to start from.
#[derive(Clone, Default)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `model.safetensors`.
    pub weights: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `adapter_model.safetensors` of a PEFT adapter whose factors and head replace the fresh
    /// ones (to continue training it); `None` starts from PEFT's initialization.
    pub adapter: Option<Vec<u8>>,
}

impl std::fmt::Debug for ModelFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFiles")
            .field("config", &self.config.len())
            .field("weights", &self.weights.len())
            .field("tokenizer", &self.tokenizer.len())
            .field("adapter", &self.adapter.as_ref().map(Vec::len))
            .finish()
    }
}

/// A BERT classifier with LoRA adapters attached, ready to train on `device`.
///
/// The head and the adapters start from values drawn on the host from `seed`
/// ([`peft::seeded_init`]), so every backend starts a run from the same numbers, or from
/// `files.adapter` when given; dropout draws from the device's RNG, which the caller seeds.
pub fn build_classifier(
    files: &ModelFiles,
    num_labels: usize,
    pooling: bert::Pooling,
    lora: &lora::LoraSettings,
    seed: u64,
    device: &Device,
) -> Result<bert::BertForSequenceClassification, ModelError> {
    lora.validate()?;
    let config = bert::BertConfig::from_json(&files.config)?;
    let encoder = bert::BertModel::init(&config, lora.lora_dropout, device)?
        .load_safetensors(files.weights.clone())?;
    let model =
        bert::BertForSequenceClassification::new(encoder, &config, num_labels, pooling, device)?
            .with_lora(lora)?;
    let model = peft::seeded_init(model, seed, config.initializer_range)?;
    match &files.adapter {
        None => Ok(model),
        Some(adapter) => peft::import_adapter(model, adapter),
    }
}
