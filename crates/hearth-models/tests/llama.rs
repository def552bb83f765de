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
