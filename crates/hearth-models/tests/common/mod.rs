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
