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
    /// A chat template that does not compile, raised an exception, or cannot be used as asked
    /// (no template at all, assistant turns it cannot locate).
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// Generation cannot run as asked (a bad setting, an empty prompt, NaN logits).
    #[error("generation: {0}")]
    Generation(String),
    /// The job asks for more than the model gives, or the weights do not fit the config.
    #[error(transparent)]
    Compat(#[from] crate::compat::CompatError),
    /// A tensor of a weights file holds NaN or an infinity.
    #[error(
        "{file}: tensor {tensor} holds {value} at index {index}; the file is damaged or was \
         written by a run whose loss diverged, so nothing computed from it would be a number"
    )]
    NonFinite {
        /// The file, as the caller names it (`adapter_model.safetensors`).
        file: String,
        /// The tensor's name in the file, quoted and cut to a bounded length.
        tensor: String,
        /// `NaN`, `inf` or `-inf`.
        value: String,
        /// The first such element, row-major.
        index: usize,
    },
}

/// A name read from a file (a tensor's), for a message: quoted with Rust's escapes, so control
/// and invisible characters show as `\u{1b}`, and cut after 200 characters. (User text that
/// `hearth-data` reads goes through `hearth_data::shown`; this crate does not depend on it.)
pub(crate) fn quoted(name: &str) -> String {
    let mut quoted = format!("{name:?}");
    if quoted.chars().count() > 200 {
        quoted = quoted.chars().take(200).collect::<String>() + "…";
    }
    quoted
}

/// Refuses a weight load whose tensors did not fit, or that left required tensors out: the
/// paths in `result.missing` for which `optional` is false. `hint` ends the "missing" message
/// (which config setting or family to check).
pub(crate) fn check_loaded(
    result: &burn::store::ApplyResult,
    optional: impl Fn(&str) -> bool,
    hint: &str,
) -> Result<(), ModelError> {
    if !result.errors.is_empty() {
        return Err(ModelError::WeightsMismatch(format!(
            "{} tensor(s) do not fit: {}",
            result.errors.len(),
            first_errors(result, 5)
        )));
    }
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(path, _)| path.as_str())
        .filter(|p| !optional(p))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(8).copied().collect();
        return Err(ModelError::WeightsMismatch(format!(
            "{} tensor(s) the config needs are not in the file, e.g. {} ({hint})",
            missing.len(),
            shown.join(", ")
        )));
    }
    Ok(())
}

/// The first `n` errors of a weight load, joined for a message.
pub(crate) fn first_errors(result: &burn::store::ApplyResult, n: usize) -> String {
    let shown: Vec<String> = result
        .errors
        .iter()
        .take(n)
        .map(|e| e.to_string())
        .collect();
    shown.join("; ")
}

/// Parses JSON of a model family's config (`config.json`, or the JSON value a writer edits):
/// a parse error names the family.
pub(crate) fn parse_config<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    family: &'static str,
) -> Result<T, ModelError> {
    serde_json::from_slice(bytes).map_err(|source| ModelError::Config { family, source })
}

/// Writes a family's config as transformers does (pretty-printed JSON).
pub(crate) fn write_config(
    value: &serde_json::Value,
    family: &'static str,
) -> Result<Vec<u8>, ModelError> {
    serde_json::to_vec_pretty(value).map_err(|source| ModelError::Config { family, source })
}
