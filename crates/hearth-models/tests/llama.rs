//! The Llama decoder against transformers: a seeded tiny random `LlamaForCausalLM` (grouped-query
//! attention, tied embeddings, non-trivial RMSNorm weights; `scripts/fixtures/tiny_llama.py`)
//! gives transformers' logits at every real position of a padded batch.

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

#[test]
fn tiny_llama_logits_match_transformers() {
    let dir = fixtures().join("tiny-llama");
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("parses");
    assert_eq!((config.kv_heads(), config.head_dim()), (2, 16));
    let device = Device::flex();
    let model = LlamaForCausalLM::init(&config, 0.0, &device)
        .expect("builds")
        .load_safetensors(std::fs::read(dir.join("model.safetensors")).expect("weights"))
        .expect("loads");
    let fx: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("tiny_llama.json")).expect("fixture"),
    )
    .expect("json");
    let ids = ints(&fx["input_ids"]);
    let mask = ints(&fx["attention_mask"]);
    let (batch, seq) = (ids.len(), ids[0].len());
    let tensor = |rows: &[Vec<i64>]| {
        Tensor::<2, Int>::from_data(TensorData::new(rows.concat(), [batch, seq]), &device)
    };
    let logits = model.forward(tensor(&ids), tensor(&mask));
    let [_, _, vocab] = logits.dims();
    assert_eq!(vocab, 128);
    let ours = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let want = &fx["logits"];
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
    assert_eq!(compared, 14 * 128);
    assert!(worst < 1e-4, "logits differ from transformers' by {worst}");
    eprintln!("tiny Llama vs transformers: largest logit difference {worst:e}");
}

/// Feeding a sequence through the KV cache in pieces (a prompt, then one token at a time, as
/// generation does) gives the logits of one pass over the whole sequence.
#[test]
fn kv_cache_pieces_equal_one_full_pass() {
    let dir = fixtures().join("tiny-llama");
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("parses");
    let device = Device::flex();
    let model = LlamaForCausalLM::init(&config, 0.0, &device)
        .expect("builds")
        .load_safetensors(std::fs::read(dir.join("model.safetensors")).expect("weights"))
        .expect("loads");
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
    assert!(worst < 1e-5, "cached logits differ by {worst}");
}

/// Two sequences packed into one row (plus padding) get exactly the logits each gets alone:
/// attention stops at the sequence boundary and rotary positions restart.
#[test]
fn packed_sequences_equal_separate_ones() {
    let dir = fixtures().join("tiny-llama");
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("parses");
    let device = Device::flex();
    let model = LlamaForCausalLM::init(&config, 0.0, &device)
        .expect("builds")
        .load_safetensors(std::fs::read(dir.join("model.safetensors")).expect("weights"))
        .expect("loads");
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
    let (a, b) = ([1i64, 17, 33, 5, 99], [1i64, 45, 12, 120]);
    let packed: Vec<i64> = a.iter().chain(&b).copied().chain([0, 0]).collect();
    let segments = [1u32, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0];
    let logits = model
        .forward_packed(
            Tensor::<2, Int>::from_data(TensorData::new(packed, [1, 11]), &device),
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
    assert!(worst < 1e-5, "packed logits differ by {worst}");
    assert!(logits.iter().all(|x| x.is_finite()));
}
