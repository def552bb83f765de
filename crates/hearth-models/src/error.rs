//! Errors a user can cause by handing Hearth a model directory it cannot use.

/// What went wrong while reading a model's files or building it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `config.json` is not JSON or lacks a field the model needs.
    #[error("config.json is not a valid {family} config: {source}")]
    Config {
        /// The model family whose config was expected.
        family: &'static str,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// `config.json` parsed but describes something Hearth cannot build.
    #[error("config.json: {0}")]
    UnsupportedConfig(String),
    /// `model.safetensors` is not a readable safetensors file (truncated, corrupted, not one at all).
    #[error("model.safetensors cannot be read: {0}")]
    Weights(String),
    /// The weights do not fit the architecture `config.json` describes.
    #[error("model.safetensors does not match config.json: {0}")]
    WeightsMismatch(String),
    /// `tokenizer.json` cannot be loaded or used.
    #[error("tokenizer.json: {0}")]
    Tokenizer(String),
    /// A LoRA setting that cannot be applied to this model.
    #[error("LoRA: {0}")]
    Lora(String),
}
