//! The Llama decoder against transformers: a seeded tiny random `LlamaForCausalLM` (grouped-query
//! attention, tied embeddings, non-trivial RMSNorm weights; `scripts/fixtures/tiny_llama.py`)
//! gives transformers' logits at every real position of a padded batch, and so does a tiny
//! random `Gemma3ForCausalLM` (`scripts/fixtures/tiny_gemma.py`: sliding-window and global
//! layers, q/k norms, GeGLU, soft-capped logits), from its HF directory and from a gemma3 GGUF
//! file of the same weights.

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use hearth_models::llama::{LlamaConfig, LlamaForCausalLM};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn ints(v: &serde_json::Value) -> Vec<Vec<i64>> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_i64().expect("int"))
                .collect()
        })
        .collect()
}

/// A committed tiny model directory (`tiny-llama`, `tiny-gemma`) loaded on `device`.
fn load(name: &str, device: &Device) -> LlamaForCausalLM {
    let dir = fixtures().join(name);
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("parses");
    LlamaForCausalLM::init(&config, 0.0, device)
        .expect("builds")
        .load_safetensors(std::fs::read(dir.join("model.safetensors")).expect("weights"))
        .expect("loads")
}

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).expect("fixture")).expect("json")
}

#[test]
fn tiny_llama_logits_match_transformers() {
    let dir = fixtures().join("tiny-llama");
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("parses");
    assert_eq!((config.kv_heads(), config.head_dim()), (2, 16));
    let device = Device::flex();
    let model = load("tiny-llama", &device);
    let fx = fixture_json("tiny_llama.json");
    let worst = worst_logit_difference(&model, &fx, "logits", &device);
    assert!(worst < 1e-4, "logits differ from transformers' by {worst}");
    eprintln!("tiny Llama vs transformers: largest logit difference {worst:e}");
}

#[test]
fn tiny_gemma_logits_match_transformers() {
    let dir = fixtures().join("tiny-gemma");
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("parses");
    assert!(config.is_gemma3());
    let sliding: Vec<bool> = (0..6).map(|i| config.is_sliding(i)).collect();
    assert_eq!(sliding, [true, true, true, true, true, false]);
    assert_eq!(
        (config.layer_rope_theta(0), config.layer_rope_theta(5)),
        (10_000.0, 1_000_000.0)
    );
    let device = Device::flex();
    let model = load("tiny-gemma", &device);
    let fx = fixture_json("tiny_gemma.json");
    let worst = worst_logit_difference(&model, &fx, "logits", &device);
    assert!(worst < 1e-4, "logits differ from transformers' by {worst}");
    eprintln!("tiny Gemma 3 vs transformers: largest logit difference {worst:e}");
}

/// The gemma3 GGUF file of the tiny Gemma's weights (llama.cpp's names, norms stored as
/// 1 + w, no layer pattern stated) loads to the model transformers gives for it.
#[test]
fn tiny_gemma_gguf_logits_match_transformers() {
    let device = Device::flex();
    let bytes = std::fs::read(fixtures().join("tiny-gemma.gguf")).expect("gguf");
    let (model, config) =
        hearth_models::gguf::load_llama_gguf(&bytes, 0.0, &device).expect("loads");
    assert!(config.is_gemma3());
    assert_eq!((config.head_dim(), config.sliding_window), (16, Some(4)));
    let fx = fixture_json("tiny_gemma.json");
    let worst = worst_logit_difference(&model, &fx, "gguf_logits", &device);
    assert!(worst < 1e-4, "logits differ from transformers' by {worst}");
}

/// A quantized base of the tiny Gemma's GGUF gives nearly the f32 logits: llama.cpp stores
/// a gemma3 file's query and key rows in their own order (only the llama architecture's are
/// permuted), so the quantized path must leave them as they are, as the f32 path does.
#[test]
fn a_quantized_gemma_gguf_keeps_its_query_and_key_rows() {
    use hearth_models::quant::BaseQuant;
    let device = Device::flex();
    let bytes = std::fs::read(fixtures().join("tiny-gemma.gguf")).expect("gguf");
    let fx = fixture_json("tiny_gemma.json");
    let (model, _) =
        hearth_models::gguf::load_llama_gguf_as(&bytes, 0.0, Some(BaseQuant::Q8), &device)
            .expect("loads");
    assert!(model.is_quantized());
    let worst = worst_logit_difference(&model, &fx, "gguf_logits", &device);
    eprintln!("tiny Gemma 3 GGUF, q8 base: largest logit difference {worst:e}");
    // Logits reach ±8.6 here; 8-bit blocks on every matrix (the tied embedding twice) leave
    // 0.16, rows in llama's order would leave 3.1.
    assert!(
        worst < 0.3,
        "q8 logits differ from transformers' by {worst}"
    );
}

/// A `chat_template.jinja` picked beside a `.gguf` (the page's file picker, for a GGUF that
/// has no template, as Gemma 3's) becomes the model's chat template.
#[test]
fn a_chat_template_beside_a_gguf_file_is_the_model_s() {
    use hearth_models::chat::Message;
    use hearth_models::chat_model::{ChatModel, LmFiles};
    let device = Device::flex();
    let bytes = std::fs::read(fixtures().join("tiny-gemma.gguf")).expect("gguf");
    let template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}";
    let alone = LmFiles::from_named(vec![("tiny.gguf".into(), bytes.clone())]).expect("files");
    let alone = ChatModel::load(&alone, 0.0, &device).expect("loads");
    assert!(alone.tokenizer.chat_template().is_none());
    let files = LmFiles::from_named(vec![
        ("chat_template.jinja".into(), template.as_bytes().to_vec()),
        ("tiny.gguf".into(), bytes),
    ])
    .expect("files");
    let chat = ChatModel::load(&files, 0.0, &device).expect("loads");
    let messages = [Message {
        role: "user".into(),
        content: "hi".into(),
    }];
    let rendered = chat
        .tokenizer
        .chat_template()
        .expect("the picked template")
        .render(&messages, false)
        .expect("renders");
    assert_eq!(rendered, "[user]hi");
}

/// The largest difference between the model's logits and the fixture's `key` at every
/// unmasked position of the fixture's batch.
fn worst_logit_difference(
    model: &LlamaForCausalLM,
    fx: &serde_json::Value,
    key: &str,
    device: &Device,
) -> f32 {
    let ids = ints(&fx["input_ids"]);
    let mask = ints(&fx["attention_mask"]);
    let (batch, seq) = (ids.len(), ids[0].len());
    let tensor = |rows: &[Vec<i64>]| {
        Tensor::<2, Int>::from_data(TensorData::new(rows.concat(), [batch, seq]), device)
    };
    let logits = model.forward(tensor(&ids), tensor(&mask));
    let [_, _, vocab] = logits.dims();
    assert_eq!(vocab, 128);
    let ours = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let want = &fx[key];
    let mut worst = 0.0f32;
    let mut compared = 0;
    for b in 0..batch {
        for t in 0..seq {
            if mask[b][t] == 0 {
                continue;
            }
            for v in 0..vocab {
                let w = want[b][t][v].as_f64().expect("logit") as f32;
                worst = worst.max((ours[(b * seq + t) * vocab + v] - w).abs());
                compared += 1;
            }
        }
    }
    let real: usize = mask.iter().flatten().filter(|&&m| m == 1).count();
    assert_eq!(compared, real * 128);
    worst
}

/// Feeding a sequence through the KV cache in pieces (a prompt, then one token at a time, as
/// generation does) gives the logits of one pass over the whole sequence.
/// For Gemma the sequence is longer than its sliding window, so the cached keys past the
/// window must be masked too.
#[test]
fn kv_cache_pieces_equal_one_full_pass() {
    for name in ["tiny-llama", "tiny-gemma"] {
        kv_cache_pieces(name);
    }
}

fn kv_cache_pieces(name: &str) {
    let device = Device::flex();
    let model = load(name, &device);
    let ids: Vec<i64> = vec![1, 17, 33, 5, 99, 64, 23, 2, 40, 41];
    let n = ids.len();
    let row = |v: Vec<i64>| {
        let len = v.len();
        Tensor::<2, Int>::from_data(TensorData::new(v, [1, len]), &device)
    };
    let full = model
        .forward(row(ids.clone()), Tensor::ones([1, n], &device))
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let mut cache = hearth_models::llama::KvCache::new();
    let mut pieces = Vec::new();
    for chunk in [&ids[..4], &ids[4..5], &ids[5..7], &ids[7..8], &ids[8..]] {
        let logits = model.forward_cached(row(chunk.to_vec()), &mut cache);
        pieces.extend(
            logits
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32"),
        );
    }
    assert_eq!(cache.len(), n);
    assert_eq!(pieces.len(), full.len());
    let worst = full
        .iter()
        .zip(&pieces)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{name}: cached logits differ by {worst}");
}

/// Two sequences packed into one row (plus padding) get exactly the logits each gets alone:
/// attention stops at the sequence boundary and rotary positions restart (and Gemma's sliding
/// window, shorter than the first sequence, counts from each query).
#[test]
fn packed_sequences_equal_separate_ones() {
    for name in ["tiny-llama", "tiny-gemma"] {
        packed_sequences(name);
    }
}

fn packed_sequences(name: &str) {
    let device = Device::flex();
    let model = load(name, &device);
    let alone = |ids: &[i64]| {
        let n = ids.len();
        model
            .forward(
                Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, n]), &device),
                Tensor::ones([1, n], &device),
            )
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let (a, b) = ([1i64, 17, 33, 5, 99, 64, 23], [1i64, 45, 12, 120]);
    let packed: Vec<i64> = a.iter().chain(&b).copied().chain([0, 0]).collect();
    let segments = [1u32, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0];
    let logits = model
        .forward_packed(
            Tensor::<2, Int>::from_data(TensorData::new(packed, [1, 13]), &device),
            &segments,
        )
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let want: Vec<f32> = alone(&a).into_iter().chain(alone(&b)).collect();
    let worst = want
        .iter()
        .zip(&logits[..want.len()])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{name}: packed logits differ by {worst}");
    assert!(logits.iter().all(|x| x.is_finite()));
}

/// `keep` takes a `Q4_K` tensor's blocks as q4 blocks whose values are gguf-py's bit for bit
/// (`tests/fixtures/kquants.gguf`: random Q4_K blocks with subnormal and large scales, and
/// gguf-py's dequantization of them).
#[test]
fn q4_k_blocks_are_kept_value_for_value() {
    use hearth_gguf::{GgmlType, Gguf};
    let bytes = std::fs::read(fixtures().join("kquants.gguf")).expect("kquants.gguf");
    let gguf = Gguf::parse(&bytes).expect("parses");
    let info = gguf.tensor(GgmlType::Q4_K.name()).expect("the Q4_K tensor");
    let want = gguf.dequantize("Q4_K.expected").expect("gguf-py's values");
    let rows = want.len() / 256;
    let blocks = hearth_kernels::QuantBlocks::from_q4_k(gguf.tensor_data(info), rows, 256)
        .expect("whole super-blocks");
    let got = blocks.dequantize();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "[{i}]: {g} vs gguf-py's {w}");
    }
    // A row that is not whole super-blocks is an error, not a panic.
    assert!(hearth_kernels::QuantBlocks::from_q4_k(gguf.tensor_data(info), rows * 2, 128).is_err());
}
