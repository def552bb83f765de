//! The harness shared by the model tests: fixture and asset paths, the tiny test device.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::Tensor;
use hearth_models::ModelFiles;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A committed PyTorch fixture (see tests/fixtures/README.md).
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// Parses a JSON fixture.
pub fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture is committed");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The MiniLM directory `scripts/fetch-assets.sh` fills. Tests need it: CI fetches it first.
pub fn minilm_dir() -> PathBuf {
    let dir = root().join("assets/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch-assets.sh",
        dir.display()
    );
    dir
}

/// The three files of the MiniLM directory.
pub fn minilm_files() -> ModelFiles {
    let dir = minilm_dir();
    let read = |n: &str| std::fs::read(dir.join(n)).expect("asset file");
    ModelFiles {
        config: read("config.json"),
        weights: read("model.safetensors"),
        tokenizer: read("tokenizer.json"),
        adapter: None,
    }
}

/// A JSON array of numbers as f64.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .flat_map(|x| match x.as_array() {
            Some(inner) => inner.iter().map(|y| y.as_f64().expect("number")).collect(),
            None => vec![x.as_f64().expect("number")],
        })
        .collect()
}

/// A JSON array (of arrays) of integers as i64, flattened.
pub fn ints(v: &serde_json::Value) -> Vec<i64> {
    floats(v).into_iter().map(|x| x as i64).collect()
}

/// A JSON array of strings.
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

/// A tensor's values, row-major, read back as the library does (asynchronously).
pub fn read_vec(t: Tensor<2>) -> Vec<f32> {
    let n: usize = t.dims().iter().product();
    pollster::block_on(t.reshape([n]).into_data_async())
        .expect("read")
        .try_into_vec::<f32>()
        .expect("f32")
}

/// Layers of [`tiny_files`]'s model: enough for `layers_to_transform = [1, 3]` to leave
/// layers out.
pub const TINY_LAYERS: usize = 4;
/// Width of [`tiny_files`]'s model.
pub const TINY_HIDDEN: usize = 32;

/// A tiny random BERT (4 layers, hidden 32, 64 ids, with a pooler, no dropout) as HF files,
/// drawn from a fixed seed: the loading path of a real checkpoint at a fraction of the cost.
/// `tokenizer.json` is MiniLM's; tests feed [`tiny_batch`] ids directly.
pub fn tiny_files() -> ModelFiles {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let (h, inner, vocab, positions) = (TINY_HIDDEN, 64, 64, 32);
    let config = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab,
        "hidden_size": h, "num_hidden_layers": TINY_LAYERS, "num_attention_heads": 2,
        "intermediate_size": inner, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "max_position_embeddings": positions,
        "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
        "pad_token_id": 0, "position_embedding_type": "absolute"
    });
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![vocab, h]),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![positions, h],
        ),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
        ("pooler.dense.weight".into(), vec![h, h]),
        ("pooler.dense.bias".into(), vec![h]),
    ];
    for l in 0..TINY_LAYERS {
        let p = format!("encoder.layer.{l}");
        for (m, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", inner, h),
            ("output.dense", h, inner),
        ] {
            shapes.push((format!("{p}.{m}.weight"), vec![out, inp]));
            shapes.push((format!("{p}.{m}.bias"), vec![out]));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            shapes.push((format!("{p}.{norm}.weight"), vec![h]));
            shapes.push((format!("{p}.{norm}.bias"), vec![h]));
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let normal = Normal::new(0.0f32, 0.2).expect("normal");
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let offset = if name.ends_with("LayerNorm.weight") {
                1.0
            } else {
                0.0
            };
            (0..n)
                .flat_map(|_| (offset + normal.sample(&mut rng)).to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = shapes
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("view");
            (name.clone(), view)
        })
        .collect();
    ModelFiles {
        config: serde_json::to_vec(&config).expect("json"),
        weights: safetensors::serialize(views, None).expect("serializes"),
        tokenizer: minilm_files().tokenizer,
        adapter: None,
    }
}

/// Three rows of ids for [`tiny_files`]'s model, the last one padded.
pub fn tiny_batch() -> hearth_models::tokenizer::Encoded {
    hearth_models::tokenizer::Encoded {
        batch_size: 3,
        seq_len: 6,
        input_ids: vec![
            2, 17, 33, 5, 60, 3, //
            2, 9, 9, 41, 12, 3, //
            2, 50, 3, 0, 0, 0,
        ],
        token_type_ids: vec![0; 18],
        attention_mask: vec![
            1, 1, 1, 1, 1, 1, //
            1, 1, 1, 1, 1, 1, //
            1, 1, 1, 0, 0, 0,
        ],
    }
}

/// The committed tiny random Llama (`scripts/make_llama_fixtures.py`) as model files.
pub fn tiny_llama_files() -> ModelFiles {
    let dir = fixture("tiny-llama");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("tiny-llama is committed");
    ModelFiles {
        config: read("config.json"),
        weights: read("model.safetensors"),
        tokenizer: Vec::new(),
        adapter: None,
    }
}

/// The tiny Llama loaded on `device`, without adapters, with adapter-input dropout `p`.
pub fn tiny_llama(device: &burn::tensor::Device, p: f64) -> hearth_models::llama::LlamaForCausalLM {
    let files = tiny_llama_files();
    let config = hearth_models::llama::LlamaConfig::from_json(&files.config).expect("config");
    hearth_models::llama::LlamaForCausalLM::init(&config, p, device)
        .expect("builds")
        .load_safetensors(files.weights)
        .expect("loads")
}

/// Every tensor of a safetensors file (F32) by name: its shape and values.
pub fn safetensors_f32(bytes: &[u8]) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}
