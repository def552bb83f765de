//! The tokenizer of a GGUF file, rebuilt from its `tokenizer.*` metadata the way transformers'
//! GGUF loader rebuilds it (`transformers/integrations/gguf/gguf_tokenizer_mapping.py`). A GGUF
//! has no `tokenizer.json`, so this is the only way its ids can be transformers'. The builder is
//! picked by `tokenizer.ggml.model`:
//!
//! - `gpt2` (SmolLM2, Llama 3, Qwen 2): byte-level BPE, the vocabulary respelled in GPT-2's byte
//!   alphabet, the merges, the pre-tokenizer split that `tokenizer.ggml.pre` names.
//! - `llama` (a SentencePiece vocabulary) for the Gemma architectures (`gemma`, `gemma2`,
//!   `gemma3`): transformers' `GemmaTokenizer`, BPE with byte fallback (`<0xXX>` tokens) over the
//!   vocabulary, with merges rebuilt from it in the order of its ids (the file lists none, and
//!   Gemma's scores do not follow its merge order), spaces written as `▁` by the normalizer,
//!   BOS put first by the post-processor when `tokenizer.ggml.add_bos_token` says so. Other
//!   SentencePiece architectures are refused (their normalizer and pre-tokenizer differ).
//!
//! Both add the control tokens (`tokenizer.ggml.token_type` 3) as special tokens and the
//! user-defined ones (4) as plain added tokens.

use ahash::AHashMap;
use hearth_gguf::Gguf;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
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

    /// From a GGUF file's `tokenizer.*` metadata, as transformers' GGUF loader builds it, by
    /// `tokenizer.ggml.model` (see the module's documentation): byte-level BPE for `gpt2`,
    /// Gemma's SentencePiece-as-BPE for `llama` in a `gemma`, `gemma2` or `gemma3` file. Any
    /// other tokenizer is a clear error.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<Self, ModelError> {
        let model = match gguf.get("tokenizer.ggml.model") {
            None => {
                return Err(ModelError::Tokenizer(
                    "the GGUF file has no tokenizer (no `tokenizer.ggml.model` key)".into(),
                ));
            }
            Some(_) => gguf.get_str("tokenizer.ggml.model").map_err(gguf_error)?,
        };
        let tokens = gguf
            .get_array_str("tokenizer.ggml.tokens")
            .map_err(gguf_error)?;
        if tokens.is_empty() {
            return Err(ModelError::Tokenizer(
                "GGUF metadata: `tokenizer.ggml.tokens` is empty".into(),
            ));
        }
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
        let bos = gguf_id(gguf, "tokenizer.ggml.bos_token_id", tokens.len())?;
        let eos = gguf_id(gguf, "tokenizer.ggml.eos_token_id", tokens.len())?;
        let pad = gguf_id(gguf, "tokenizer.ggml.padding_token_id", tokens.len())?;
        let inner = match model {
            "gpt2" => byte_level(gguf, &tokens, &token_types)?,
            "llama" => {
                let architecture = gguf
                    .get("general.architecture")
                    .and_then(|v| v.as_str())
                    .unwrap_or("(none)");
                if !matches!(architecture, "gemma" | "gemma2" | "gemma3") {
                    return Err(ModelError::Tokenizer(format!(
                        "the GGUF file's tokenizer is a SentencePiece vocabulary (`llama`) for \
                         architecture `{architecture}`; Hearth builds `gpt2` (byte-level BPE) \
                         tokenizers and Gemma's SentencePiece (`gemma`, `gemma2`, `gemma3`) \
                         from GGUF metadata; use the model's tokenizer.json instead"
                    )));
                }
                gemma_sentencepiece(gguf, &tokens, &token_types, bos, eos)?
            }
            other => {
                return Err(ModelError::Tokenizer(format!(
                    "the GGUF file's tokenizer is `{other}`; Hearth builds `gpt2` (byte-level \
                     BPE) and Gemma's `llama` (SentencePiece) tokenizers from GGUF metadata; use \
                     the model's tokenizer.json instead"
                )));
            }
        };
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

/// An optional bool key of a GGUF file.
fn gguf_flag(gguf: &Gguf<'_>, key: &str) -> Result<Option<bool>, ModelError> {
    match gguf.get(key) {
        None => Ok(None),
        Some(_) => gguf.get_bool(key).map(Some).map_err(gguf_error),
    }
}

/// Byte-level BPE (`tokenizer.ggml.model = gpt2`), as transformers' `byte_level_tokenizer`:
/// the vocabulary (a token not spelled in GPT-2's byte alphabet is respelled from its UTF-8
/// bytes) and `tokenizer.ggml.merges`, no normalizer, the byte-level pre-tokenizer (behind the
/// split `tokenizer.ggml.pre` names, if any) and decoder; control tokens spelled in the byte
/// alphabet become special tokens, user-defined ones plain added tokens.
fn byte_level(
    gguf: &Gguf<'_>,
    tokens: &[&str],
    token_types: &[i64],
) -> Result<Tokenizer, ModelError> {
    let merges = gguf
        .get_array_str("tokenizer.ggml.merges")
        .map_err(gguf_error)?;
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
        .zip(token_types)
        .filter(|&(t, &ty)| ty == CONTROL && in_alphabet(t))
        .map(|(t, _)| AddedToken::from(*t, true).normalized(false))
        .collect();
    inner.add_special_tokens(control).map_err(tok_error)?;
    add_user_defined(&mut inner, tokens, token_types, &in_vocab)?;
    Ok(inner)
}

/// The user-defined tokens (`tokenizer.ggml.token_type` 4) that the vocabulary has as spelled,
/// added as plain (not special, not normalized) tokens: llama.cpp matches them whole.
fn add_user_defined(
    inner: &mut Tokenizer,
    tokens: &[&str],
    token_types: &[i64],
    in_vocab: &[bool],
) -> Result<(), ModelError> {
    let user_defined: Vec<AddedToken> = tokens
        .iter()
        .zip(token_types)
        .zip(in_vocab)
        .filter(|&((_, &ty), &known)| ty == USER_DEFINED && known)
        .map(|((t, _), _)| AddedToken::from(*t, false).normalized(false))
        .collect();
    inner.add_tokens(user_defined).map_err(tok_error)?;
    Ok(())
}

/// Python's `str.isspace` for one character: Unicode's White_Space and the four ASCII
/// separators U+001C..U+001F (which Python counts and Rust does not).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Gemma's SentencePiece vocabulary (`tokenizer.ggml.model = llama`), as transformers'
/// `gemma_tokenizer` builds it into a `GemmaTokenizer`:
///
/// 1. tokens made only of whitespace that contain a space (`"  "`, stored with real spaces) are
///    respelled as that many `▁`, the spelling the normalizer produces;
/// 2. the merges, which the file does not list, are rebuilt from the vocabulary (transformers'
///    `generate_merges` with each token's score the negated position of its last occurrence):
///    for each token in the order of its id, every split into two tokens of the vocabulary,
///    the longest left part first;
/// 3. BPE with byte fallback and fused unknowns over that vocabulary and those merges; the
///    normalizer writes spaces as `▁`; the pre-tokenizer splits on spaces (there are none left
///    after the normalizer, as in transformers); the decoder turns `▁` back into spaces and
///    `<0xXX>` tokens into bytes; the post-processor puts BOS first (and EOS last) as
///    `tokenizer.ggml.add_bos_token` (default true, as llama.cpp does for SentencePiece) and
///    `add_eos_token` say.
fn gemma_sentencepiece(
    gguf: &Gguf<'_>,
    tokens: &[&str],
    token_types: &[i64],
    bos: Option<u32>,
    eos: Option<u32>,
) -> Result<Tokenizer, ModelError> {
    let respelled: Vec<String> = tokens
        .iter()
        .map(|&t| {
            if t.contains(' ') && t.chars().all(py_isspace) {
                "\u{2581}".repeat(t.chars().count())
            } else {
                t.to_string()
            }
        })
        .collect();
    // Later duplicates win, as in transformers' dict.
    let vocab: AHashMap<String, u32> = respelled
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    let mut merges = Vec::new();
    for (id, token) in respelled.iter().enumerate() {
        if vocab.get(token) != Some(&(id as u32)) {
            continue; // a later duplicate holds this spelling, and its position
        }
        for (at, _) in token
            .char_indices()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let (left, right) = token.split_at(at);
            if vocab.contains_key(left) && vocab.contains_key(right) {
                merges.push((left.to_string(), right.to_string()));
            }
        }
    }
    let unk = match gguf_id(gguf, "tokenizer.ggml.unknown_token_id", tokens.len())? {
        Some(id) => respelled[id as usize].clone(),
        None => "<unk>".to_string(),
    };
    let in_vocab: Vec<bool> = tokens.iter().map(|t| vocab.contains_key(*t)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk)
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(|e| ModelError::Tokenizer(format!("GGUF metadata: the BPE model: {e}")))?;

    let mut inner = Tokenizer::new(bpe);
    inner
        .with_normalizer(Some(Replace::new(" ", "\u{2581}").map_err(tok_error)?))
        .map_err(tok_error)?;
    inner.with_pre_tokenizer(Some(
        Split::new(
            SplitPattern::String(" ".into()),
            SplitDelimiterBehavior::MergedWithPrevious,
            false,
        )
        .map_err(tok_error)?,
    ));
    inner.with_decoder(Some(DecoderSequence::new(vec![
        Replace::new("\u{2581}", " ").map_err(tok_error)?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ])));

    let add_bos = gguf_flag(gguf, "tokenizer.ggml.add_bos_token")?.unwrap_or(true);
    let add_eos = gguf_flag(gguf, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    let mut specials = Vec::new();
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut ends = Vec::new();
    if let (true, Some(id)) = (add_bos, bos) {
        let text = respelled[id as usize].clone();
        single.push(format!("{text}:0"));
        ends.push(format!("{text}:1"));
        specials.push((text, id));
    }
    single.push("$A:0".to_string());
    let mut second = ends;
    second.push("$B:1".to_string());
    if let (true, Some(id)) = (add_eos, eos) {
        let text = respelled[id as usize].clone();
        single.push(format!("{text}:0"));
        second.push(format!("{text}:1"));
        if !specials.iter().any(|(_, s)| *s == id) {
            specials.push((text, id));
        }
    }
    if !specials.is_empty() {
        pair.extend(single.iter().cloned());
        pair.extend(second);
        let processor = TemplateProcessing::builder()
            .try_single(single.join(" "))
            .map_err(tok_error)?
            .try_pair(pair.join(" "))
            .map_err(tok_error)?
            .special_tokens(specials)
            .build()
            .map_err(tok_error)?;
        inner.with_post_processor(Some(processor));
    }

    let control: Vec<AddedToken> = tokens
        .iter()
        .zip(token_types)
        .filter(|&(_, &ty)| ty == CONTROL)
        .map(|(t, _)| AddedToken::from(*t, true).normalized(false))
        .collect();
    inner.add_special_tokens(control).map_err(tok_error)?;
    add_user_defined(&mut inner, tokens, token_types, &in_vocab)?;
    Ok(inner)
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
