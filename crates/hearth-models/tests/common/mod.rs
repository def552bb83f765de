//! The harness shared by the model tests: fixture and asset paths, the tiny test models.

// Each test binary uses a part of this harness.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use burn::tensor::Tensor;
use hearth_fixtures::TinyBert;
pub use hearth_fixtures::{fixture, json, root};
use hearth_models::ModelFiles;

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
pub const TINY_LAYERS: usize = TinyBert::MODEL_TESTS.layers;
/// Width of [`tiny_files`]'s model.
pub const TINY_HIDDEN: usize = TinyBert::MODEL_TESTS.hidden;

/// A tiny random BERT ([`TinyBert::MODEL_TESTS`]: 4 layers, hidden 32, 64 ids, with a pooler,
/// no dropout, every tensor drawn from a fixed seed) as HF files: the loading path of a real
/// checkpoint at a fraction of the cost. `tokenizer.json` is MiniLM's; tests feed
/// [`tiny_batch`] ids directly.
pub fn tiny_files() -> ModelFiles {
    let model = TinyBert::MODEL_TESTS;
    ModelFiles {
        config: serde_json::to_vec(&model.config()).expect("json"),
        weights: model.safetensors().expect("serializes"),
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

/// The committed tiny random Llama (`scripts/fixtures/tiny_llama.py`) as model files.
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
