//! Tokenization with HuggingFace `tokenizers`, from a model's own `tokenizer.json`.
//!
//! A `tokenizer.json` carries the padding and truncation its exporter used (MiniLM's pads every
//! text to 128). A job decides those instead: truncate at its max length, pad each batch to its
//! own longest row (dynamic padding, as the reference trainer does).

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::ModelError;

/// A batch of tokenized texts on the host, row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Number of rows.
    pub batch_size: usize,
    /// Length of every row after padding.
    pub seq_len: usize,
    /// Token ids.
    pub input_ids: Vec<i64>,
    /// Segment ids.
    pub token_type_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
}

impl Encoded {
    /// Number of real (non-padding) tokens.
    pub fn real_tokens(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }
}

/// A model's tokenizer, set to truncate at `max_length` and pad batches to their longest row.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("max_length", &self.max_length)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and applies the job's truncation and dynamic padding.
    pub fn from_bytes(bytes: &[u8], max_length: usize) -> Result<Self, ModelError> {
        if max_length < 2 {
            return Err(ModelError::Tokenizer(format!(
                "max_length must leave room for the special tokens, found {max_length}"
            )));
        }
        let mut inner =
            Tokenizer::from_bytes(bytes).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        // Keep the file's own pad token; fall back to BERT's `[PAD]`, then to id 0.
        let (pad_id, pad_token, pad_type_id) = match inner.get_padding() {
            Some(p) => (p.pad_id, p.pad_token.clone(), p.pad_type_id),
            None => match inner.token_to_id("[PAD]") {
                Some(id) => (id, "[PAD]".to_string(), 0),
                None => (0, inner.id_to_token(0).unwrap_or_default(), 0),
            },
        };
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            pad_type_id,
            ..PaddingParams::default()
        }));
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(Self { inner, max_length })
    }

    /// Pads each batch to its longest row rounded up to a multiple of `multiple`, but never
    /// beyond the max length (tokenizers' `pad_to_multiple_of`, capped): a GPU meets a few
    /// lengths instead of one per text length. Padded positions are masked as before.
    pub fn with_pad_to_multiple_of(mut self, multiple: usize) -> Self {
        if let Some(padding) = self.inner.get_padding_mut() {
            padding.pad_to_multiple_of = (multiple > 1).then_some(multiple);
        }
        self
    }

    /// The truncation length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Size of the vocabulary, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenizes a batch with special tokens, truncation and padding to its longest row.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Encoded, ModelError> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        // Rounding up to a multiple may pass the max length; what lies beyond it is padding
        // (truncation kept every row within it), and is cut off again below.
        let seq_len = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .min(self.max_length.max(longest_real(&encodings)));
        let mut out = Encoded {
            batch_size: encodings.len(),
            seq_len,
            input_ids: Vec::with_capacity(encodings.len() * seq_len),
            token_type_ids: Vec::with_capacity(encodings.len() * seq_len),
            attention_mask: Vec::with_capacity(encodings.len() * seq_len),
        };
        for e in &encodings {
            if e.get_ids().len() < seq_len {
                return Err(ModelError::Tokenizer(format!(
                    "padding produced rows of {} and {} tokens",
                    e.get_ids().len(),
                    seq_len
                )));
            }
            out.input_ids
                .extend(e.get_ids()[..seq_len].iter().map(|&x| i64::from(x)));
            out.token_type_ids
                .extend(e.get_type_ids()[..seq_len].iter().map(|&x| i64::from(x)));
            out.attention_mask.extend(
                e.get_attention_mask()[..seq_len]
                    .iter()
                    .map(|&x| i64::from(x)),
            );
        }
        Ok(out)
    }
}

/// The most real (unmasked) tokens of any row.
fn longest_real(encodings: &[tokenizers::Encoding]) -> usize {
    encodings
        .iter()
        .map(|e| e.get_attention_mask().iter().filter(|&&m| m != 0).count())
        .max()
        .unwrap_or(0)
}

/// Counts a text's tokens as the model sees them (special tokens included) before truncation,
/// and how many are the unknown token: the figures of the data report.
#[derive(Clone)]
pub struct TokenCounter {
    inner: Tokenizer,
    unknown: Option<u32>,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("unknown", &self.unknown)
            .finish()
    }
}

impl TokenCounter {
    /// Loads `tokenizer.json` without its truncation and padding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut inner =
            Tokenizer::from_bytes(bytes).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let unknown = ["[UNK]", "<unk>", "<UNK>", "<|unk|>"]
            .iter()
            .find_map(|t| inner.token_to_id(t));
        Ok(Self { inner, unknown })
    }

    /// Tokens of `text` (special tokens included) and how many are unknown; `(0, 0)` for a
    /// text the tokenizer rejects.
    pub fn count(&self, text: &str) -> (usize, usize) {
        match self.inner.encode(text, true) {
            Ok(e) => {
                let ids = e.get_ids();
                let unknown = self
                    .unknown
                    .map_or(0, |u| ids.iter().filter(|&&id| id == u).count());
                (ids.len(), unknown)
            }
            Err(_) => (0, 0),
        }
    }
}
