//! SmolLM2-135M-Instruct's tokenizer, rebuilt from its GGUF's metadata, gives transformers' ids,
//! decodes, chat renderings and assistant masks (`scripts/fixtures/smollm2_tokenizer.py`);
//! Gemma 3's SentencePiece tokenizer, rebuilt from its GGUF's metadata, gives transformers'
//! merges, ids and decodes (`scripts/fixtures/gemma3_tokenizer.py`); and bad metadata or
//! templates are errors, not panics.

mod common;

use std::sync::OnceLock;

use hearth_models::chat::Message;
use hearth_models::lm_tokenizer::LmTokenizer;

/// The tokenizer of the SmolLM2 GGUF, parsed once for the whole test binary (the file is 98 MB).
fn smollm2() -> &'static LmTokenizer {
    static TOKENIZER: OnceLock<LmTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let bytes =
            std::fs::read(common::root().join("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
                .expect("run scripts/fetch-assets.sh");
        LmTokenizer::from_gguf_bytes(&bytes).expect("builds")
    })
}

/// The tokenizer of the Gemma 3 270M GGUF, built once for the whole test binary (the file is
/// 253 MB, its vocabulary 262,144 tokens).
fn gemma3() -> &'static LmTokenizer {
    static TOKENIZER: OnceLock<LmTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let bytes = std::fs::read(common::root().join("assets/gemma3/gemma-3-270m-q4_k_m.gguf"))
            .expect("run scripts/fetch-assets.sh");
        LmTokenizer::from_gguf_bytes(&bytes).expect("builds")
    })
}

fn ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| u32::try_from(v.as_u64().expect("id")).expect("u32"))
        .collect()
}

fn messages(value: &serde_json::Value) -> Vec<Message> {
    serde_json::from_value(value.clone()).expect("messages")
}

#[test]
fn special_ids_and_vocabulary_are_transformers() {
    let tok = smollm2();
    let fx = common::json("smollm2_tokenizer.json");
    assert_eq!(
        tok.vocab_size() as u64,
        fx["vocab_size"].as_u64().expect("size")
    );
    assert_eq!(tok.bos_id().map(u64::from), fx["bos_token_id"].as_u64());
    assert_eq!(tok.eos_id().map(u64::from), fx["eos_token_id"].as_u64());
    assert_eq!(tok.pad_id().map(u64::from), fx["pad_token_id"].as_u64());
    // SmolLM2's EOS is `<|im_end|>`, the token its template ends every turn with.
    assert_eq!(tok.id_to_token(2).as_deref(), Some("<|im_end|>"));
    assert_eq!(tok.stop_ids(), [2]);
    assert_eq!(
        tok.chat_template().expect("template").source(),
        fx["chat_template"].as_str().expect("template")
    );
}

#[test]
fn texts_encode_and_decode_as_transformers() {
    let tok = smollm2();
    let fx = common::json("smollm2_tokenizer.json");
    let texts = fx["texts"].as_array().expect("texts");
    assert!(texts.len() >= 15);
    for case in texts {
        let text = case["text"].as_str().expect("text");
        let want = ids(&case["ids"]);
        let got = tok.encode(text).expect("encodes");
        assert_eq!(got, want, "{text:?}");
        assert_eq!(
            tok.decode(&got, false).expect("decodes"),
            case["decoded"].as_str().expect("decoded"),
            "{text:?}"
        );
        assert_eq!(
            tok.decode(&got, true).expect("decodes"),
            case["decoded_skip_special"].as_str().expect("decoded"),
            "{text:?}"
        );
    }
}

#[test]
fn streaming_decode_equals_full_decode() {
    let tok = smollm2();
    let fx = common::json("smollm2_tokenizer.json");
    let mut held_back = 0;
    for case in fx["texts"].as_array().expect("texts") {
        let ids = ids(&case["ids"]);
        for skip_special in [false, true] {
            let mut stream = tok.decode_stream(skip_special);
            let mut text = String::new();
            for &id in &ids {
                match stream.step(id).expect("steps") {
                    // `String` can hold only whole characters; a piece never starts with a
                    // continuation of the previous one.
                    Some(piece) => text.push_str(&piece),
                    None => held_back += 1,
                }
                assert!(!text.contains('\u{fffd}'), "{:?}", case["text"]);
            }
            if let Some(rest) = stream.finish().expect("finishes") {
                text.push_str(&rest);
            }
            assert_eq!(
                text,
                tok.decode(&ids, skip_special).expect("decodes"),
                "{:?}",
                case["text"]
            );
        }
    }
    // The emoji and CJK texts split characters across byte tokens, so some steps waited.
    assert!(held_back > 0);
}

#[test]
fn a_character_left_incomplete_is_flushed_by_finish() {
    let tok = smollm2();
    // "😀" is four bytes; drop the last token so the character never completes.
    let ids = tok.encode("a😀").expect("encodes");
    assert!(ids.len() >= 3, "{ids:?}");
    let cut = &ids[..ids.len() - 1];
    let mut stream = tok.decode_stream(false);
    let mut text = String::new();
    for &id in cut {
        if let Some(piece) = stream.step(id).expect("steps") {
            text.push_str(&piece);
        }
    }
    assert_eq!(text, "a");
    text.push_str(&stream.finish().expect("finishes").expect("held-back bytes"));
    assert_eq!(text, tok.decode(cut, false).expect("decodes"));
    assert!(text.ends_with('\u{fffd}'));
}

#[test]
fn chats_render_and_encode_as_transformers() {
    let tok = smollm2();
    let template = tok.chat_template().expect("template");
    let fx = common::json("smollm2_tokenizer.json");
    for (name, chat) in fx["chats"].as_object().expect("chats") {
        let msgs = messages(&chat["messages"]);
        let gen_prompt = chat["add_generation_prompt"].as_bool().expect("bool");
        let rendered = template.render(&msgs, gen_prompt).expect("renders");
        assert_eq!(rendered, chat["rendered"].as_str().expect("text"), "{name}");
        assert_eq!(
            tok.apply_chat(&msgs, gen_prompt).expect("encodes"),
            ids(&chat["ids"]),
            "{name}"
        );
    }
    // Without a system message the template writes SmolLM2's default one.
    let no_system = fx["chats"]["no_system"]["rendered"].as_str().expect("text");
    assert!(
        no_system.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    );
}

#[test]
fn assistant_masks_are_the_fixtures() {
    let tok = smollm2();
    let template = tok.chat_template().expect("template");
    let fx = common::json("smollm2_tokenizer.json");
    for (name, chat) in fx["chats"].as_object().expect("chats") {
        if chat["add_generation_prompt"].as_bool() == Some(true) {
            continue;
        }
        let msgs = messages(&chat["messages"]);
        let (text, spans) = template.render_with_spans(&msgs).expect("spans");
        let want_spans: Vec<std::ops::Range<usize>> = chat["assistant_spans"]
            .as_array()
            .expect("spans")
            .iter()
            .map(|s| s[0].as_u64().expect("start") as usize..s[1].as_u64().expect("end") as usize)
            .collect();
        assert_eq!(spans, want_spans, "{name}");
        // Each span is the assistant's content and `<|im_end|>`.
        let assistants: Vec<&Message> = msgs.iter().filter(|m| m.role == "assistant").collect();
        for (span, m) in spans.iter().zip(&assistants) {
            assert_eq!(
                &text[span.clone()],
                format!("{}<|im_end|>", m.content),
                "{name}"
            );
        }
        let (ids_got, mask) = tok.chat_with_mask(&msgs).expect("mask");
        assert_eq!(ids_got, ids(&chat["ids"]), "{name}");
        let want_mask: Vec<bool> = chat["assistant_mask"]
            .as_array()
            .expect("mask")
            .iter()
            .map(|b| b.as_bool().expect("bool"))
            .collect();
        assert_eq!(mask, want_mask, "{name}");
        // The masked ids decode to exactly the assistant turns, each ending with `<|im_end|>` (id 2).
        let picked: Vec<u32> = ids_got
            .iter()
            .zip(&mask)
            .filter(|&(_, &m)| m)
            .map(|(&id, _)| id)
            .collect();
        let want_text: String = assistants
            .iter()
            .map(|m| format!("{}<|im_end|>", m.content))
            .collect();
        assert_eq!(
            tok.decode(&picked, false).expect("decodes"),
            want_text,
            "{name}"
        );
        assert_eq!(
            picked.iter().filter(|&&id| id == 2).count(),
            assistants.len()
        );
    }
}

#[test]
fn prompt_ids_are_the_logit_fixtures_and_the_answer_decodes() {
    let tok = smollm2();
    let fx = common::json("smollm2_logits.json");
    let msgs = [Message::new("user", "What is the capital of France?")];
    assert_eq!(
        tok.apply_chat(&msgs, true).expect("encodes"),
        ids(&fx["input_ids"])
    );
    let greedy = ids(&fx["greedy_ids"]);
    assert_eq!(
        tok.decode(&greedy, true).expect("decodes"),
        "The capital of France is Paris."
    );
    assert_eq!(greedy.last().copied(), tok.stop_ids().first().copied());
}

#[test]
fn base_models_need_a_template_and_can_be_given_one() {
    let tok = smollm2().clone();
    let plain = LmTokenizer::from_tokenizer_json(
        &tokenizer_json_of(&tok),
        Some(br#"{"eos_token": {"content": "<|endoftext|>"}}"#),
    )
    .expect("builds");
    assert!(plain.chat_template().is_none());
    assert_eq!(plain.eos_id(), Some(0));
    assert_eq!(plain.stop_ids(), [0]);
    let msgs = [Message::new("user", "Hi")];
    let err = plain.apply_chat(&msgs, true).expect_err("no template");
    assert!(err.to_string().contains("no chat template"), "{err}");
    assert!(plain.chat_with_mask(&msgs).is_err());
    // The same ids from tokenizer.json as from the GGUF.
    assert_eq!(
        plain.encode("café 😀 <|im_start|>").expect("encodes"),
        tok.encode("café 😀 <|im_start|>").expect("encodes")
    );
    let chatml = plain
        .with_chat_template(
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
             {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        )
        .expect("compiles");
    // `<|im_end|>` ends turns in this template, so it stops generation too.
    assert_eq!(chatml.stop_ids(), [0, 2]);
    assert_eq!(
        chatml.apply_chat(&msgs, true).expect("encodes"),
        [1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198]
    );
}

/// Gemma's merges are not in the file: they are rebuilt from the vocabulary. The same merges in
/// the same order as transformers' (their SHA-256, one `left right` a line), the same special
/// ids, and BOS put first only by `encode_with_special_tokens`.
#[test]
fn gemma3_merges_and_special_ids_are_transformers() {
    use sha2::{Digest, Sha256};
    let tok = gemma3();
    let fx = common::json("gemma3_tokenizer.json");
    assert_eq!(
        tok.vocab_size() as u64,
        fx["vocab_size"].as_u64().expect("size")
    );
    assert_eq!(tok.bos_id().map(u64::from), fx["bos_id"].as_u64());
    assert_eq!(tok.eos_id().map(u64::from), fx["eos_id"].as_u64());
    assert_eq!(tok.pad_id().map(u64::from), fx["pad_id"].as_u64());
    assert_eq!(tok.id_to_token(2).as_deref(), Some("<bos>"));
    assert!(fx["add_bos_token"].as_bool().expect("flag"));
    assert_eq!(tok.encode_with_special_tokens("").expect("encodes"), [2]);
    // The GGUF has no chat template; EOS alone stops generation until one is given.
    assert!(tok.chat_template().is_none());
    assert_eq!(tok.stop_ids(), [1]);

    let json: serde_json::Value =
        serde_json::from_slice(&tokenizer_json_of(tok)).expect("tokenizer.json is JSON");
    let model = &json["model"];
    assert_eq!(model["type"], "BPE");
    assert_eq!(model["byte_fallback"], true);
    let merges = model["merges"].as_array().expect("merges");
    assert_eq!(
        merges.len() as u64,
        fx["merges_count"].as_u64().expect("count")
    );
    let mut hash = Sha256::new();
    for merge in merges {
        let pair = merge.as_array().expect("a pair");
        let (l, r) = (
            pair[0].as_str().expect("left"),
            pair[1].as_str().expect("right"),
        );
        hash.update(format!("{l} {r}\n").as_bytes());
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, fx["merges_sha256"].as_str().expect("sha256"));
}

/// Spaces, runs of spaces and newlines (added tokens), digits (one token each), accents, CJK,
/// emoji (byte fallback), control bytes, special-token text inside a text: transformers' ids,
/// with and without BOS, and its decodes; the streamed decode equals the full one.
#[test]
fn gemma3_texts_encode_and_decode_as_transformers() {
    let tok = gemma3();
    let fx = common::json("gemma3_tokenizer.json");
    let texts = fx["texts"].as_array().expect("texts");
    assert!(texts.len() >= 15);
    for case in texts {
        let text = case["text"].as_str().expect("text");
        let got = tok.encode(text).expect("encodes");
        assert_eq!(got, ids(&case["ids"]), "{text:?}");
        assert_eq!(
            tok.encode_with_special_tokens(text).expect("encodes"),
            ids(&case["ids_with_special"]),
            "{text:?}"
        );
        for (skip_special, key) in [(false, "decoded"), (true, "decoded_skip_special")] {
            let want = case[key].as_str().expect("decoded");
            assert_eq!(
                tok.decode(&got, skip_special).expect("decodes"),
                want,
                "{text:?}"
            );
            let mut stream = tok.decode_stream(skip_special);
            let mut streamed = String::new();
            for &id in &got {
                if let Some(piece) = stream.step(id).expect("steps") {
                    streamed.push_str(&piece);
                }
            }
            if let Some(rest) = stream.finish().expect("finishes") {
                streamed.push_str(&rest);
            }
            assert_eq!(streamed, want, "{text:?} streamed");
        }
    }
}

/// A `tokenizer.json` for a tokenizer built from a GGUF, through the `tokenizers` crate.
fn tokenizer_json_of(tok: &LmTokenizer) -> Vec<u8> {
    tok.to_tokenizer_json().expect("serializes").into_bytes()
}

mod errors {
    use super::*;
    use hearth_models::ModelError;

    /// A minimal GGUF v3 file: a header, metadata, no tensors.
    fn gguf(kvs: &[(&str, Value)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
        for (key, value) in kvs {
            put_str(&mut out, key);
            value.write(&mut out);
        }
        // The (empty) data section starts at the default 32-byte alignment.
        out.resize(out.len().next_multiple_of(32), 0);
        out
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    #[derive(Clone)]
    pub enum Value {
        U32(u32),
        Str(&'static str),
        Strs(Vec<&'static str>),
        I32s(Vec<i32>),
    }

    impl Value {
        fn write(&self, out: &mut Vec<u8>) {
            match self {
                Value::U32(v) => {
                    out.extend_from_slice(&4u32.to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Value::Str(s) => {
                    out.extend_from_slice(&8u32.to_le_bytes());
                    put_str(out, s);
                }
                Value::Strs(items) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&8u32.to_le_bytes());
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for s in items {
                        put_str(out, s);
                    }
                }
                Value::I32s(items) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&5u32.to_le_bytes());
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for v in items {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
    }

    fn tokens() -> Value {
        Value::Strs(vec!["<|endoftext|>", "a", "b", "ab", "Ġ", "Ġab", "é"])
    }

    fn valid() -> Vec<(&'static str, Value)> {
        vec![
            ("tokenizer.ggml.model", Value::Str("gpt2")),
            ("tokenizer.ggml.tokens", tokens()),
            ("tokenizer.ggml.merges", Value::Strs(vec!["a b", "Ġ ab"])),
            (
                "tokenizer.ggml.token_type",
                Value::I32s(vec![3, 1, 1, 1, 1, 1, 1]),
            ),
            ("tokenizer.ggml.eos_token_id", Value::U32(0)),
        ]
    }

    fn build(kvs: &[(&str, Value)]) -> Result<LmTokenizer, ModelError> {
        LmTokenizer::from_gguf_bytes(&gguf(kvs))
    }

    fn error_of(kvs: &[(&str, Value)]) -> String {
        build(kvs).expect_err("refused").to_string()
    }

    fn replaced(key: &str, value: Value) -> Vec<(&'static str, Value)> {
        valid()
            .into_iter()
            .map(|(k, v)| if k == key { (k, value.clone()) } else { (k, v) })
            .collect()
    }

    #[test]
    fn a_tiny_valid_gguf_tokenizer_works() {
        let tok = build(&valid()).expect("builds");
        assert_eq!(tok.vocab_size(), 7);
        assert_eq!(
            tok.encode("ab ab<|endoftext|>").expect("encodes"),
            [3, 5, 0]
        );
        assert_eq!(tok.decode(&[3, 5, 0], true).expect("decodes"), "ab ab");
        assert!(tok.chat_template().is_none());
        assert!(tok.decode(&[7], false).is_err());
        assert!(tok.decode_stream(false).step(99).is_err());
    }

    #[test]
    fn missing_or_garbled_metadata_is_named() {
        let none: Vec<(&str, Value)> = valid()
            .into_iter()
            .filter(|(k, _)| *k != "tokenizer.ggml.model")
            .collect();
        assert!(error_of(&none).contains("no tokenizer"));
        // A SentencePiece vocabulary is built only for Gemma; this file names no architecture.
        let llama = error_of(&replaced("tokenizer.ggml.model", Value::Str("llama")));
        assert!(
            llama.contains("`llama`") && llama.contains("gpt2") && llama.contains("gemma3"),
            "{llama}"
        );
        let mut llama_arch = replaced("tokenizer.ggml.model", Value::Str("llama"));
        llama_arch.push(("general.architecture", Value::Str("llama")));
        let llama = error_of(&llama_arch);
        assert!(llama.contains("architecture `llama`"), "{llama}");
        let t5 = error_of(&replaced("tokenizer.ggml.model", Value::Str("t5")));
        assert!(t5.contains("`t5`") && t5.contains("gpt2"), "{t5}");
        let wrong_type = error_of(&replaced("tokenizer.ggml.tokens", Value::U32(3)));
        assert!(wrong_type.contains("tokenizer.ggml.tokens"), "{wrong_type}");
        let no_merges: Vec<(&str, Value)> = valid()
            .into_iter()
            .filter(|(k, _)| *k != "tokenizer.ggml.merges")
            .collect();
        assert!(error_of(&no_merges).contains("tokenizer.ggml.merges"));
        let bad_merge = error_of(&replaced(
            "tokenizer.ggml.merges",
            Value::Strs(vec!["a b c"]),
        ));
        assert!(bad_merge.contains("merge 0"), "{bad_merge}");
        let unknown = error_of(&replaced("tokenizer.ggml.merges", Value::Strs(vec!["a z"])));
        assert!(unknown.contains('z'), "{unknown}");
        let short_types = error_of(&replaced("tokenizer.ggml.token_type", Value::I32s(vec![3])));
        assert!(
            short_types.contains("1 entries for 7 tokens"),
            "{short_types}"
        );
        let eos = error_of(&replaced("tokenizer.ggml.eos_token_id", Value::U32(70)));
        assert!(eos.contains("outside the vocabulary"), "{eos}");
        let bad_template = error_of(
            &[
                valid(),
                vec![("tokenizer.chat_template", Value::Str("{% if %}"))],
            ]
            .concat(),
        );
        assert!(bad_template.contains("chat template"), "{bad_template}");
        assert!(LmTokenizer::from_gguf_bytes(b"GGUF").is_err());
        assert!(LmTokenizer::from_tokenizer_json(b"{", None).is_err());
    }

    #[test]
    fn template_errors_are_errors() {
        let tok = build(&valid()).expect("builds");
        let err = tok
            .clone()
            .with_chat_template("{% for m in messages %}")
            .expect_err("syntax");
        assert!(matches!(err, ModelError::ChatTemplate(_)), "{err}");
        let raising = tok
            .clone()
            .with_chat_template("{{ raise_exception('Only user and assistant roles!') }}")
            .expect("compiles");
        let err = raising
            .apply_chat(&[Message::new("user", "ab")], true)
            .expect_err("raises");
        assert!(
            err.to_string().contains("Only user and assistant roles!"),
            "{err}"
        );
        // Earlier assistant turns are dropped once a later one follows: no stable spans.
        let unstable = tok
            .with_chat_template(
                "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}{{ m.content }}\
                 {% endif %}{% endfor %}",
            )
            .expect("compiles");
        let convo = [
            Message::new("user", "a"),
            Message::new("assistant", "b"),
            Message::new("user", "a"),
            Message::new("assistant", "ab"),
        ];
        let err = unstable.chat_with_mask(&convo).expect_err("unstable");
        assert!(err.to_string().contains("prefix-stable"), "{err}");
    }
}
