//! The tokenizer of a GGUF file, rebuilt from its `tokenizer.*` metadata the way transformers'
//! GGUF loader rebuilds it (`transformers/integrations/gguf/gguf_tokenizer_mapping.py`): the
//! vocabulary respelled in GPT-2's byte alphabet, the merges, the pre-tokenizer split that
//! `tokenizer.ggml.pre` names, and the control and user-defined tokens. A GGUF has no
//! `tokenizer.json`, so this is the only way its ids can be transformers'.

use ahash::AHashMap;
use hearth_gguf::Gguf;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::{LmTokenizer, tok_error};
use crate::ModelError;

/// `tokenizer.ggml.token_type` of a control token (`<|im_start|>`): added as a special token.
const CONTROL: i64 = 3;
/// `tokenizer.ggml.token_type` of a user-defined token (`<think>`): added, not special.
const USER_DEFINED: i64 = 4;

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split a `tokenizer.ggml.pre` names, where it is not GPT-2's own (transformers'
/// `GGUF_PRE_TOKENIZER_SPLITS`). Every other value, SmolLM2's `smollm` included, keeps the
/// byte-level pre-tokenizer's GPT-2 split.
fn pre_tokenizer_split(pre: &str) -> Option<&'static str> {
    Some(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => LLAMA3_SPLIT,
        "tekken" => TEKKEN_SPLIT,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => QWEN2_SPLIT,
        "qwen35" => QWEN35_SPLIT,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => GPT4O_SPLIT,
        _ => return None,
    })
}

/// GPT-2's byte alphabet: every byte spelled as one printable character (the printable
/// Latin-1 bytes as themselves, the others as U+0100 onwards).
fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (byte, slot) in table.iter_mut().enumerate() {
        let b = byte as u32;
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        let code = if printable {
            b
        } else {
            next += 1;
            next - 1
        };
        // Every code here is below 0x200, a valid scalar value.
        *slot = char::from_u32(code).unwrap_or('\0');
    }
    table
}

fn gguf_error(e: hearth_gguf::GgufError) -> ModelError {
    ModelError::Tokenizer(format!("GGUF metadata: {e}"))
}

/// An optional id key of a GGUF file, checked against the vocabulary's size.
fn gguf_id(gguf: &Gguf<'_>, key: &str, vocab: usize) -> Result<Option<u32>, ModelError> {
    if gguf.get(key).is_none() {
        return Ok(None);
    }
    let id = gguf.get_u32(key).map_err(gguf_error)?;
    if id as usize >= vocab {
        return Err(ModelError::Tokenizer(format!(
            "GGUF metadata: `{key}` is {id}, outside the vocabulary of {vocab} tokens"
        )));
    }
    Ok(Some(id))
}

impl LmTokenizer {
    /// From a whole GGUF file's bytes (only its metadata is read).
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let gguf = Gguf::parse(bytes).map_err(gguf_error)?;
        Self::from_gguf(&gguf)
    }

    /// From a GGUF file's `tokenizer.*` metadata, as transformers' GGUF loader builds it:
    /// byte-level BPE over `tokenizer.ggml.tokens` (a token not spelled in GPT-2's byte
    /// alphabet is respelled from its UTF-8 bytes) and `tokenizer.ggml.merges`, no
    /// normalizer, the byte-level pre-tokenizer (behind the split `tokenizer.ggml.pre` names,
    /// if any) and decoder; control tokens (`tokenizer.ggml.token_type` 3) spelled in the byte
    /// alphabet become special tokens, user-defined ones (4) plain added tokens.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<Self, ModelError> {
        let model = match gguf.get("tokenizer.ggml.model") {
            None => {
                return Err(ModelError::Tokenizer(
                    "the GGUF file has no tokenizer (no `tokenizer.ggml.model` key)".into(),
                ));
            }
            Some(_) => gguf.get_str("tokenizer.ggml.model").map_err(gguf_error)?,
        };
        if model != "gpt2" {
            return Err(ModelError::Tokenizer(format!(
                "the GGUF file's tokenizer is `{model}`; Hearth builds only `gpt2` (byte-level \
                 BPE) tokenizers from GGUF metadata; use the model's tokenizer.json instead"
            )));
        }
        let tokens = gguf
            .get_array_str("tokenizer.ggml.tokens")
            .map_err(gguf_error)?;
        if tokens.is_empty() {
            return Err(ModelError::Tokenizer(
                "GGUF metadata: `tokenizer.ggml.tokens` is empty".into(),
            ));
        }
        let merges = gguf
            .get_array_str("tokenizer.ggml.merges")
            .map_err(gguf_error)?;
        let token_types = match gguf.get("tokenizer.ggml.token_type") {
            None => Vec::new(),
            Some(_) => {
                let types = gguf
                    .get_array_i64("tokenizer.ggml.token_type")
                    .map_err(gguf_error)?;
                if types.len() != tokens.len() {
                    return Err(ModelError::Tokenizer(format!(
                        "GGUF metadata: `tokenizer.ggml.token_type` has {} entries for {} tokens",
                        types.len(),
                        tokens.len()
                    )));
                }
                types
            }
        };

        let alphabet = byte_alphabet();
        let in_alphabet = |token: &str| token.chars().all(|c| alphabet.contains(&c));
        // Later duplicates win, as in transformers' dict.
        let vocab: AHashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(id, &token)| {
                let spelled = if in_alphabet(token) {
                    token.to_string()
                } else {
                    token.bytes().map(|b| alphabet[b as usize]).collect()
                };
                (spelled, id as u32)
            })
            .collect();
        let merges = merges
            .iter()
            .enumerate()
            .map(|(i, merge)| {
                let mut parts = merge.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                        Ok((a.to_string(), b.to_string()))
                    }
                    _ => Err(ModelError::Tokenizer(format!(
                        "GGUF metadata: merge {i} `{merge}` is not two tokens separated by one space"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let in_vocab: Vec<bool> = tokens.iter().map(|t| vocab.contains_key(*t)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| ModelError::Tokenizer(format!("GGUF metadata: the BPE model: {e}")))?;

        let mut inner = Tokenizer::new(bpe);
        let pre = match gguf.get("tokenizer.ggml.pre") {
            None => None,
            Some(_) => Some(gguf.get_str("tokenizer.ggml.pre").map_err(gguf_error)?),
        };
        match pre.and_then(pre_tokenizer_split) {
            Some(split) => {
                let split = Split::new(
                    SplitPattern::Regex(split.to_string()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(tok_error)?;
                inner.with_pre_tokenizer(Some(Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, true, false).into(),
                ])));
            }
            None => {
                inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            }
        }
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        let control: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .filter(|&(t, &ty)| ty == CONTROL && in_alphabet(t))
            .map(|(t, _)| AddedToken::from(*t, true).normalized(false))
            .collect();
        inner.add_special_tokens(control).map_err(tok_error)?;
        let user_defined: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .zip(&in_vocab)
            .filter(|&((_, &ty), &known)| ty == USER_DEFINED && known)
            .map(|((t, _), _)| AddedToken::from(*t, false).normalized(false))
            .collect();
        inner.add_tokens(user_defined).map_err(tok_error)?;

        let bos = gguf_id(gguf, "tokenizer.ggml.bos_token_id", tokens.len())?;
        let eos = gguf_id(gguf, "tokenizer.ggml.eos_token_id", tokens.len())?;
        let pad = gguf_id(gguf, "tokenizer.ggml.padding_token_id", tokens.len())?;
        let template = match gguf.get("tokenizer.chat_template") {
            None => None,
            Some(_) => Some(
                gguf.get_str("tokenizer.chat_template")
                    .map_err(gguf_error)?,
            ),
        };
        Self::assemble(inner, bos, eos, pad, template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let a = byte_alphabet();
        assert_eq!(a[b'!' as usize], '!');
        assert_eq!(a[b' ' as usize], 'Ġ');
        assert_eq!(a[b'\n' as usize], 'Ċ');
        assert_eq!(a[0], 'Ā');
        assert_eq!(a[0xad], 'Ń');
        let mut sorted = a.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    #[test]
    fn pre_tokenizer_splits_compile() {
        for pre in ["llama3", "qwen2", "qwen35", "tekken", "gpt-4o"] {
            let split = pre_tokenizer_split(pre).expect("known");
            Split::new(
                SplitPattern::Regex(split.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .expect("compiles");
        }
        assert!(pre_tokenizer_split("smollm").is_none());
    }
}
