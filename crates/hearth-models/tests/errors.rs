//! A model directory a user got wrong gets an error that says what is wrong, never a panic.

mod common;

use burn::tensor::Device;
use common::minilm_files;
use hearth_models::bert::Pooling;
use hearth_models::lora::LoraSettings;
use hearth_models::tokenizer::TextTokenizer;
use hearth_models::{ModelFiles, build_classifier};

fn build(files: &ModelFiles, lora: &LoraSettings) -> String {
    match build_classifier(files, 3, Pooling::Cls, lora, 0, &Device::flex()) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_safetensors_is_reported() {
    let mut files = minilm_files();
    files.weights.truncate(files.weights.len() / 2);
    let err = build(&files, &LoraSettings::default());
    assert!(err.contains("model.safetensors cannot be read"), "{err}");
}

#[test]
fn garbage_instead_of_safetensors_is_reported() {
    let mut files = minilm_files();
    files.weights = b"this is not a safetensors file".to_vec();
    let err = build(&files, &LoraSettings::default());
    assert!(err.contains("model.safetensors cannot be read"), "{err}");
}

fn with_config(edit: impl FnOnce(&mut serde_json::Value)) -> ModelFiles {
    let mut files = minilm_files();
    let mut config: serde_json::Value = serde_json::from_slice(&files.config).expect("json");
    edit(&mut config);
    files.config = serde_json::to_vec(&config).expect("json");
    files
}

#[test]
fn config_that_does_not_match_the_weights_is_reported() {
    // 12 heads of 32 become 12 heads of 64: every projection has the wrong shape.
    let files = with_config(|c| c["hidden_size"] = 768.into());
    let err = build(&files, &LoraSettings::default());
    assert!(err.contains("does not match config.json"), "{err}");
    assert!(
        err.contains("384"),
        "the message shows the shapes found: {err}"
    );

    // More layers than the file has.
    let files = with_config(|c| c["num_hidden_layers"] = 8.into());
    let err = build(&files, &LoraSettings::default());
    assert!(err.contains("not in the file"), "{err}");
    assert!(err.contains("encoder.layer.6"), "{err}");
}

#[test]
fn malformed_or_unsupported_config_is_reported() {
    let mut files = minilm_files();
    files.config = b"{\"hidden_size\": 384".to_vec();
    assert!(
        build(&files, &LoraSettings::default()).contains("config.json is not a valid BERT config")
    );

    let files = with_config(|c| c["num_attention_heads"] = 5.into());
    assert!(
        build(&files, &LoraSettings::default()).contains("not a multiple of num_attention_heads")
    );

    let files = with_config(|c| c["hidden_act"] = "swish".into());
    assert!(build(&files, &LoraSettings::default()).contains("hidden_act `swish`"));
}

#[test]
fn unknown_target_module_is_reported() {
    let lora = LoraSettings {
        target_modules: vec!["q_proj".into()],
        ..LoraSettings::default()
    };
    let err = build(&minilm_files(), &lora);
    assert!(err.contains("`q_proj` matches no linear layer"), "{err}");
    assert!(err.contains("query"), "it lists what the model has: {err}");
}

#[test]
fn broken_tokenizer_is_reported() {
    let err =
        TextTokenizer::from_bytes(b"{\"not\": \"a tokenizer\"}", 128).expect_err("not a tokenizer");
    assert!(err.to_string().starts_with("tokenizer.json"), "{err}");
    let err = TextTokenizer::from_bytes(&minilm_files().tokenizer, 1).expect_err("too short");
    assert!(err.to_string().contains("max_length"), "{err}");
}

#[test]
fn selected_targets_adapt_exactly_those_layers() {
    // key + attention.output.dense + FFN: 6 layers × (key 384·8·2 + attn-out 384·8·2
    // + intermediate (384+1536)·8 + output (1536+384)·8) + head 384·3+3.
    let lora = LoraSettings {
        target_modules: vec![
            "key".into(),
            "attention.output.dense".into(),
            "intermediate.dense".into(),
            "output.dense".into(),
        ],
        ..LoraSettings::default()
    };
    let device = Device::flex().autodiff();
    let model =
        build_classifier(&minilm_files(), 3, Pooling::Cls, &lora, 0, &device).expect("builds");
    let per_layer = 2 * 384 * 8 + 2 * 384 * 8 + (384 + 1536) * 8 + (1536 + 384) * 8;
    assert_eq!(
        hearth_models::lora::trainable_params(&model),
        6 * per_layer + 384 * 3 + 3
    );
}
