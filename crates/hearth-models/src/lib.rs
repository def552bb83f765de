//! The model families Hearth fine-tunes, loaded from HuggingFace model directories.
//!
//! A model directory holds `config.json`, `model.safetensors` and `tokenizer.json`. This crate
//! turns those bytes into a burn module ([`bert::BertModel`] and its classification head, or a
//! [`llama::LlamaForCausalLM`] decoder), a tokenizer that pads and truncates the way a job asks
//! ([`tokenizer::TextTokenizer`]), and LoRA adapters on PEFT-named target modules ([`lora`],
//! [`llama_lora`]) saved and loaded in PEFT's format ([`peft`]). Chat models get their own
//! tokenizer ([`lm_tokenizer::LmTokenizer`], from `tokenizer.json` or a GGUF's metadata), chat
//! templates ([`chat`]), loading from either form ([`chat_model`]) and generation
//! ([`generate`]). It never picks a backend: every constructor takes the
//! [`burn::tensor::Device`] the caller chose, and every loader takes bytes, so the same code
//! runs natively and in the browser.

pub mod activation;
pub mod bert;
pub mod chat;
pub mod chat_model;
pub mod compat;
pub mod dropout;
pub mod generate;
pub mod gguf;
pub mod host;
pub mod llama;
pub mod llama_lora;
pub mod lm_tokenizer;
pub mod lora;
pub mod merge;
pub mod peft;
pub mod quant;
pub mod strategy;
pub mod tokenizer;

mod checkpoint;
mod error;

pub use error::ModelError;
pub use strategy::{Strategy, Trained, build_for_strategy, export_trained, load_trained};

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
    /// The trained weights a run starts from (to continue training, or to predict), of the
    /// strategy being built ([`strategy::Trained::weights`]): a PEFT adapter's
    /// `adapter_model.safetensors` for LoRA, `head.safetensors` for a linear probe, a full
    /// model's `model.safetensors` for full fine-tuning. `None` starts from the seeded init.
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

/// A BERT classifier with LoRA adapters attached, ready to train on `device`: the
/// [`Strategy::Lora`] case of [`build_for_strategy`].
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
    build_for_strategy(
        files,
        num_labels,
        pooling,
        lora,
        Strategy::Lora,
        seed,
        device,
    )
}
