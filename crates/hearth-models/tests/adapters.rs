//! PEFT's adapter format, both ways, against PEFT itself (fixtures from
//! `scripts/make_adapter_fixtures.py`): an adapter trained and saved by PyTorch + PEFT is imported
//! and gives PEFT's logits; an adapter exported by Hearth, loaded by PEFT, gave logits that
//! Hearth reproduces.

mod common;

use burn::tensor::Device;
use common::{fixture, floats, json, minilm_files, read_vec, strings};
use hearth_models::bert::{BertInput, Pooling};
use hearth_models::peft::{AdapterConfig, import_adapter};
use hearth_models::tokenizer::TextTokenizer;

/// Hearth's logits for the fixture's sentences with the adapter directory `dir` on MiniLM,
/// checked against the logits PEFT computed.
fn logits_match_peft(dir: &str, logits_fixture: &str) {
    let fx = json(logits_fixture);
    let dir = fixture(dir);
    let read = |name: &str| std::fs::read(dir.join(name)).expect("adapter file is committed");
    let config = AdapterConfig::from_json(&read("adapter_config.json")).expect("PEFT config");
    let files = minilm_files();
    let device = Device::flex();
    let model =
        hearth_models::build_classifier(&files, 3, Pooling::Cls, &config.settings(), 0, &device)
            .expect("builds");
    let model = import_adapter(model, &read("adapter_model.safetensors")).expect("imports");

    let sentences = strings(&fx["sentences"]);
    let tok = TextTokenizer::from_bytes(&files.tokenizer, 128).expect("tokenizer");
    let enc = tok.encode_batch(&sentences).expect("encodes");
    let ours = read_vec(model.forward(&BertInput::new(&enc, &device)));
    let theirs = floats(&fx["logits"]);
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-4,
        "largest logit difference {worst:e}\nhearth {ours:?}\npeft   {theirs:?}"
    );
    // A trained adapter moves the logits away from the base model with a fresh head: the
    // comparison above is about the adapter, not about two untrained heads agreeing.
    assert!(theirs.iter().any(|v| v.abs() > 0.05), "{theirs:?}");
}

#[test]
fn an_adapter_trained_by_peft_gives_peft_s_logits() {
    logits_match_peft("peft-adapter", "peft_adapter_logits.json");
}

#[test]
fn an_adapter_exported_by_hearth_gives_in_peft_the_logits_hearth_computes() {
    logits_match_peft("hearth-adapter", "hearth_adapter_logits.json");
}
