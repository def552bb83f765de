//! The tokenizer of a causal language model: text to ids and back (also one id at a time, as
//! generation streams them), the special ids generation and padding need, and the model's chat
//! template, so a conversation becomes the ids the model was trained on, with a mask of the
//! tokens that belong to assistant turns (what a supervised fine-tune computes its loss on).
//!
//! It is built from a model directory's `tokenizer.json` (and `tokenizer_config.json`, which
//! holds the chat template and the special tokens' names), or from a GGUF file's
//! `tokenizer.*` metadata. A GGUF has no `tokenizer.json`: the tokenizer is rebuilt from the
//! vocabulary and merges the way transformers' GGUF loader rebuilds it
//! (`transformers/integrations/gguf/gguf_tokenizer_mapping.py`), so the ids are transformers'.
//! Byte-level BPE (`tokenizer.ggml.model = gpt2`: SmolLM2, Llama 3, Qwen 2) and Gemma's
//! SentencePiece vocabulary (`llama` in a Gemma file) are rebuilt; that reconstruction is
//! [`gguf`]'s.
//!
//! Text is encoded without special tokens: the chat template writes them.

use std::ops::Range;

use tokenizers::Tokenizer;

use crate::ModelError;
use crate::chat::{ChatTemplate, Message};

mod gguf;

/// The tokens that end a turn in the chat formats Hearth knows (ChatML's `<|im_end|>`, Llama 3's
/// `<|eot_id|>` and `<|eom_id|>`, Phi-3's `<|end|>`, Gemma's `<end_of_turn>`). One of them is
/// a stop id when the vocabulary has it and the chat template writes it.
const END_OF_TURN: [&str; 5] = [
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
];

fn tok_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

/// Ids with the byte range of the text each came from ([`LmTokenizer::encode_with_offsets`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedText {
    /// The token ids.
    pub ids: Vec<u32>,
    /// For each id, the bytes of the text it came from.
    pub offsets: Vec<Range<usize>>,
}

/// A language model's tokenizer with its special ids and chat template.
#[derive(Clone)]
pub struct LmTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    stop: Vec<u32>,
    template: Option<ChatTemplate>,
}

impl std::fmt::Debug for LmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("stop", &self.stop)
            .field("chat_template", &self.template.is_some())
            .finish()
    }
}

/// A special token in `tokenizer_config.json`: a string, or an object with `content`.
fn config_token(config: &serde_json::Value, key: &str) -> Result<Option<String>, ModelError> {
    match config.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Object(o)) => match o.get("content") {
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(ModelError::Tokenizer(format!(
                "tokenizer_config.json: `{key}` is an object without a string `content`"
            ))),
        },
        Some(other) => Err(ModelError::Tokenizer(format!(
            "tokenizer_config.json: `{key}` should be a string or {{\"content\": ..}}, found {other}"
        ))),
    }
}

/// `chat_template` in `tokenizer_config.json`: a string, or a list of `{name, template}` of
/// which the one named `default` is used (as transformers does without a template name).
fn config_chat_template(config: &serde_json::Value) -> Result<Option<String>, ModelError> {
    match config.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Array(items)) => {
            let mut names = Vec::new();
            for item in items {
                let name = item.get("name").and_then(serde_json::Value::as_str);
                let template = item.get("template").and_then(serde_json::Value::as_str);
                match (name, template) {
                    (Some("default"), Some(t)) => return Ok(Some(t.to_string())),
                    (Some(n), Some(_)) => names.push(n.to_string()),
                    _ => {
                        return Err(ModelError::Tokenizer(
                            "tokenizer_config.json: every entry of the `chat_template` list needs \
                             a string `name` and `template`"
                                .into(),
                        ));
                    }
                }
            }
            Err(ModelError::ChatTemplate(format!(
                "tokenizer_config.json names no `default` chat template (it has: {}); supply one \
                 with `with_chat_template`",
                names.join(", ")
            )))
        }
        Some(other) => Err(ModelError::Tokenizer(format!(
            "tokenizer_config.json: `chat_template` should be a string or a list, found {other}"
        ))),
    }
}

impl LmTokenizer {
    /// From a model directory's `tokenizer.json` and, when there is one, its
    /// `tokenizer_config.json` (the chat template, `bos_token`, `eos_token`, `pad_token`). The
    /// file's truncation and padding are dropped: a training job decides those.
    pub fn from_tokenizer_json(
        tokenizer_json: &[u8],
        tokenizer_config: Option<&[u8]>,
    ) -> Result<Self, ModelError> {
        let mut inner = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| ModelError::Tokenizer(format!("tokenizer.json: {e}")))?;
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(format!("tokenizer.json: {e}")))?;
        inner.with_padding(None);
        let config = match tokenizer_config {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| {
                ModelError::Tokenizer(format!("tokenizer_config.json is not JSON: {e}"))
            })?,
            None => serde_json::Value::Null,
        };
        let id_of = |key: &str| -> Result<Option<u32>, ModelError> {
            match config_token(&config, key)? {
                None => Ok(None),
                Some(token) => inner.token_to_id(&token).map(Some).ok_or_else(|| {
                    ModelError::Tokenizer(format!(
                        "tokenizer_config.json: {key} `{token}` is not in tokenizer.json's vocabulary"
                    ))
                }),
            }
        };
        let (bos, eos, pad) = (
            id_of("bos_token")?,
            id_of("eos_token")?,
            id_of("pad_token")?,
        );
        let template = config_chat_template(&config)?;
        Self::assemble(inner, bos, eos, pad, template.as_deref())
    }

    fn assemble(
        inner: Tokenizer,
        bos: Option<u32>,
        eos: Option<u32>,
        pad: Option<u32>,
        template: Option<&str>,
    ) -> Result<Self, ModelError> {
        let mut tokenizer = Self {
            inner,
            bos,
            eos,
            pad,
            stop: Vec::new(),
            template: None,
        };
        if let Some(source) = template {
            tokenizer = tokenizer.with_chat_template(source)?;
        } else {
            tokenizer.stop = tokenizer.find_stop_ids();
        }
        Ok(tokenizer)
    }

    /// The same tokenizer with `source` as its chat template (for a base model that has none,
    /// or to replace the model's). The template sees the BOS and EOS tokens' texts.
    pub fn with_chat_template(mut self, source: &str) -> Result<Self, ModelError> {
        let text = |id: Option<u32>| {
            id.and_then(|id| self.inner.id_to_token(id))
                .unwrap_or_default()
        };
        self.template = Some(ChatTemplate::new(source, &text(self.bos), &text(self.eos))?);
        self.stop = self.find_stop_ids();
        Ok(self)
    }

    /// EOS, then every end-of-turn token of [`END_OF_TURN`] that the vocabulary has and the
    /// chat template writes.
    fn find_stop_ids(&self) -> Vec<u32> {
        let mut stop: Vec<u32> = self.eos.into_iter().collect();
        if let Some(template) = &self.template {
            for token in END_OF_TURN {
                if let Some(id) = self.inner.token_to_id(token)
                    && template.source().contains(token)
                    && !stop.contains(&id)
                {
                    stop.push(id);
                }
            }
        }
        stop
    }

    /// The number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The beginning-of-sequence id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id, if the model names one.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// The ids that end generation: EOS and the chat template's end-of-turn token, once each.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop
    }

    /// The id batches are padded with: the model's pad token, else EOS.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad.or(self.eos)
    }

    /// The chat template, if the model has one or one was set.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// The tokenizer as a `tokenizer.json` (to save a GGUF's tokenizer beside an exported
    /// model; [`from_tokenizer_json`](Self::from_tokenizer_json) reads it back).
    pub fn to_tokenizer_json(&self) -> Result<String, ModelError> {
        self.inner.to_string(false).map_err(tok_error)
    }

    /// The token text of `id`, as the vocabulary spells it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The ids of `text`, without special tokens added (special-token text inside `text`, such
    /// as `<|im_start|>`, is still matched as that token, as transformers does).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self.encode_with_offsets(text)?.ids)
    }

    /// The ids of `text` with the special tokens the tokenizer puts around a text, as
    /// transformers' `encode(text)` (`add_special_tokens=True`): for a Gemma GGUF, BOS first
    /// (`tokenizer.ggml.add_bos_token`); for a byte-level GGUF, none; for a `tokenizer.json`,
    /// what its post-processor adds. Chat templates write their special tokens themselves, so
    /// [`encode`](Self::encode) is what a rendered conversation wants.
    pub fn encode_with_special_tokens(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self.inner.encode(text, true).map_err(tok_error)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The ids of `text` and the byte range of `text` each came from.
    pub fn encode_with_offsets(&self, text: &str) -> Result<EncodedText, ModelError> {
        let encoding = self.inner.encode(text, false).map_err(tok_error)?;
        Ok(EncodedText {
            ids: encoding.get_ids().to_vec(),
            offsets: encoding.get_offsets().iter().map(|&(s, e)| s..e).collect(),
        })
    }

    fn check_ids(&self, ids: &[u32]) -> Result<(), ModelError> {
        let size = self.vocab_size();
        match ids.iter().find(|&&id| id as usize >= size) {
            Some(id) => Err(ModelError::Tokenizer(format!(
                "id {id} is outside the vocabulary of {size} tokens"
            ))),
            None => Ok(()),
        }
    }

    /// The text of `ids`; special tokens are left out when `skip_special`. A sequence that ends
    /// inside a character decodes that character as U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, ModelError> {
        self.check_ids(ids)?;
        self.inner.decode(ids, skip_special).map_err(tok_error)
    }

    /// A decoder fed one id at a time (as generation produces them) that hands out text as
    /// soon as it is whole: never part of a UTF-8 character. The pieces concatenate to
    /// [`decode`](Self::decode) of all the ids.
    pub fn decode_stream(&self, skip_special: bool) -> TextStream<'_> {
        TextStream {
            tokenizer: self,
            skip_special,
            ids: Vec::new(),
            prefix: String::new(),
            prefix_index: 0,
        }
    }

    fn template_or_error(&self) -> Result<&ChatTemplate, ModelError> {
        self.template.as_ref().ok_or_else(|| {
            ModelError::ChatTemplate(
                "the model has no chat template (a base model?); supply one with \
                 `with_chat_template`"
                    .into(),
            )
        })
    }

    /// The ids of a conversation written by the chat template; with `add_generation_prompt`,
    /// ending with the header of the assistant turn to generate.
    pub fn apply_chat(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, ModelError> {
        let text = self
            .template_or_error()?
            .render(messages, add_generation_prompt)?;
        self.encode(&text)
    }

    /// The ids of a conversation (no generation prompt) and, for every id, whether it belongs
    /// to an assistant turn: whether the start of the text it came from lies in one of the
    /// spans of [`ChatTemplate::render_with_spans`] (the turn's content and its end-of-turn
    /// marker, not its role header).
    pub fn chat_with_mask(
        &self,
        messages: &[Message],
    ) -> Result<(Vec<u32>, Vec<bool>), ModelError> {
        let (text, spans) = self.template_or_error()?.render_with_spans(messages)?;
        let encoded = self.encode_with_offsets(&text)?;
        let mask = encoded
            .offsets
            .iter()
            .map(|token| spans.iter().any(|span| span.contains(&token.start)))
            .collect();
        Ok((encoded.ids, mask))
    }

    /// [`chat_with_mask`](Self::chat_with_mask) with, for every message, the ids that hold its
    /// content ([`ChatTemplate::content_ranges`]): what a cut may remove while the template's
    /// headers and end-of-turn markers stay.
    pub fn chat_with_contents(&self, messages: &[Message]) -> Result<ChatEncoding, ModelError> {
        let template = self.template_or_error()?;
        let (text, spans) = template.render_with_spans(messages)?;
        let ranges = template.content_ranges(messages, &text)?;
        let encoded = self.encode_with_offsets(&text)?;
        let scored = encoded
            .offsets
            .iter()
            .map(|token| spans.iter().any(|span| span.contains(&token.start)))
            .collect();
        let contents = ranges
            .iter()
            .map(|range| {
                let range = range.as_ref()?;
                let first = encoded
                    .offsets
                    .iter()
                    .position(|t| range.contains(&t.start))?;
                let count = encoded.offsets[first..]
                    .iter()
                    .take_while(|t| range.contains(&t.start))
                    .count();
                Some(first..first + count)
            })
            .collect();
        Ok(ChatEncoding {
            ids: encoded.ids,
            scored,
            contents,
        })
    }
}

/// A conversation as ids ([`LmTokenizer::chat_with_contents`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatEncoding {
    /// The ids of the rendered conversation.
    pub ids: Vec<u32>,
    /// For every id, whether it belongs to an assistant turn.
    pub scored: Vec<bool>,
    /// For every message, the ids (as a range of positions) of its content, when located.
    pub contents: Vec<Option<Range<usize>>>,
}

/// Incremental decoding ([`LmTokenizer::decode_stream`]): `step` each id as it comes, then
/// `finish` for whatever was held back.
pub struct TextStream<'a> {
    tokenizer: &'a LmTokenizer,
    skip_special: bool,
    // The state of `tokenizers::step_decode_stream` (its `DecodeStream` keeps it private, and
    // `finish` needs it): the ids not yet settled, the text they decode to that was already
    // handed out, and where that text's ids end.
    ids: Vec<u32>,
    prefix: String,
    prefix_index: usize,
}

impl TextStream<'_> {
    /// Adds `id`; returns the new text, or `None` while the ids so far end inside a character
    /// (or added no text).
    pub fn step(&mut self, id: u32) -> Result<Option<String>, ModelError> {
        self.tokenizer.check_ids(&[id])?;
        tokenizers::tokenizer::step_decode_stream(
            &self.tokenizer.inner,
            vec![id],
            self.skip_special,
            &mut self.ids,
            &mut self.prefix,
            &mut self.prefix_index,
        )
        .map_err(tok_error)
    }

    /// The text still held back when the stream ends: a character the ids never completed,
    /// decoded as U+FFFD, as [`LmTokenizer::decode`] would give it.
    pub fn finish(self) -> Result<Option<String>, ModelError> {
        if self.ids.is_empty() {
            return Ok(None);
        }
        let text = self
            .tokenizer
            .inner
            .decode(&self.ids, self.skip_special)
            .map_err(tok_error)?;
        Ok(text
            .strip_prefix(self.prefix.as_str())
            .filter(|rest| !rest.is_empty())
            .map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_tokens_and_templates() {
        let config = serde_json::json!({
            "bos_token": {"content": "<s>", "lstrip": false},
            "eos_token": "</s>",
            "pad_token": null,
            "chat_template": [{"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}],
        });
        assert_eq!(
            config_token(&config, "bos_token").expect("ok").as_deref(),
            Some("<s>")
        );
        assert_eq!(
            config_token(&config, "eos_token").expect("ok").as_deref(),
            Some("</s>")
        );
        assert_eq!(config_token(&config, "pad_token").expect("ok"), None);
        assert_eq!(
            config_chat_template(&config).expect("ok").as_deref(),
            Some("d")
        );
        let no_default =
            serde_json::json!({"chat_template": [{"name": "tool_use", "template": "t"}]});
        let err = config_chat_template(&no_default).expect_err("no default");
        assert!(err.to_string().contains("tool_use"), "{err}");
        assert!(config_token(&serde_json::json!({"eos_token": 3}), "eos_token").is_err());
    }
}
