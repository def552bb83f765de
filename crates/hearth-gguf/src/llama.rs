//! The hyper-parameters of a Llama-family model (Llama, SmolLM2, Mistral-style files that use
//! the `llama` architecture) as a GGUF file states them, under keys prefixed with the file's
//! `general.architecture`.

use crate::error::Result;
use crate::file::Gguf;

/// What a GGUF file says about a Llama-family model. Names follow HuggingFace's `LlamaConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// `general.architecture` (the prefix of the keys below), e.g. `llama`.
    pub architecture: String,
    /// `{arch}.block_count`.
    pub num_hidden_layers: u32,
    /// `{arch}.embedding_length`.
    pub hidden_size: u32,
    /// `{arch}.feed_forward_length`.
    pub intermediate_size: u32,
    /// `{arch}.attention.head_count`.
    pub num_attention_heads: u32,
    /// `{arch}.attention.head_count_kv`; llama.cpp takes `head_count` when it is absent, and so
    /// does this (multi-head rather than grouped-query attention).
    pub num_key_value_heads: u32,
    /// `{arch}.rope.freq_base`; llama.cpp's default 10000 when absent.
    pub rope_theta: f32,
    /// `{arch}.attention.layer_norm_rms_epsilon`.
    pub rms_norm_eps: f32,
    /// `{arch}.context_length`.
    pub max_position_embeddings: u32,
    /// The number of entries of `tokenizer.ggml.tokens`.
    pub vocab_size: u32,
}

/// llama.cpp's RoPE base when a file does not state one.
pub const DEFAULT_ROPE_FREQ_BASE: f32 = 10_000.0;

impl LlamaConfig {
    /// Reads the configuration; a missing or mistyped required key is an error naming the key.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<Self> {
        let arch = gguf.get_str("general.architecture")?.to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let num_attention_heads = gguf.get_u32(&key("attention.head_count"))?;
        let num_key_value_heads =
            optional(gguf, &key("attention.head_count_kv"), |k| gguf.get_u32(k))?
                .unwrap_or(num_attention_heads);
        let rope_theta = optional(gguf, &key("rope.freq_base"), |k| gguf.get_f32(k))?
            .unwrap_or(DEFAULT_ROPE_FREQ_BASE);
        let tokens = gguf.get_array("tokenizer.ggml.tokens")?;
        let vocab_size = u32::try_from(tokens.len()).map_err(|_| crate::GgufError::Overflow {
            what: "the length of tokenizer.ggml.tokens".into(),
        })?;
        Ok(LlamaConfig {
            num_hidden_layers: gguf.get_u32(&key("block_count"))?,
            hidden_size: gguf.get_u32(&key("embedding_length"))?,
            intermediate_size: gguf.get_u32(&key("feed_forward_length"))?,
            num_attention_heads,
            num_key_value_heads,
            rope_theta,
            rms_norm_eps: gguf.get_f32(&key("attention.layer_norm_rms_epsilon"))?,
            max_position_embeddings: gguf.get_u32(&key("context_length"))?,
            vocab_size,
            architecture: arch,
        })
    }

    /// The width of one attention head (`hidden_size / num_attention_heads`).
    pub fn head_dim(&self) -> u32 {
        self.hidden_size / self.num_attention_heads.max(1)
    }
}

/// `Ok(None)` when `key` is absent, the getter's result (an error if mistyped) otherwise.
fn optional<T>(gguf: &Gguf<'_>, key: &str, get: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
    if gguf.get(key).is_none() {
        Ok(None)
    } else {
        get(key).map(Some)
    }
}
