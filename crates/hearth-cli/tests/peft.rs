//! Adapters PEFT wrote (no run record): `predict` and `merge` with `--model` and `--labels`.

use crate::util::{MODEL, PEFT_ADAPTER, assert_user_error, hearth, root, stderr, temp_dir};

/// An adapter PEFT wrote (no run record): `predict` with `--model` and `--labels` gives the
/// probabilities of PEFT's logits; `merge` writes a transformers directory.
#[test]
fn peft_adapters_predict_and_merge_with_model_and_labels() {
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/peft_adapter_logits.json")).expect("fixture"),
    )
    .expect("json");
    let sentence = fixture["sentences"][0].as_str().expect("sentence");
    let logits: Vec<f64> = fixture["logits"][0]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("float"))
        .collect();
    let max = logits.iter().copied().fold(f64::MIN, f64::max);
    let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
    let expected: Vec<f64> = logits.iter().map(|l| (l - max).exp() / sum).collect();

    let out = hearth(&["predict", "--adapter", PEFT_ADAPTER, sentence]);
    assert_user_error(&out, "give its base model with --model");
    let labels = "negative,neutral,positive";
    let out = hearth(&[
        "predict",
        "--adapter",
        PEFT_ADAPTER,
        "--model",
        MODEL,
        "--labels",
        labels,
        sentence,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    for (i, label) in labels.split(',').enumerate() {
        let p = line["scores"][label].as_f64().expect("score");
        assert!(
            (p - expected[i]).abs() < 1e-4,
            "{label}: {p} vs PEFT's {}",
            expected[i]
        );
    }
    let out = hearth(&[
        "predict",
        "--adapter",
        PEFT_ADAPTER,
        "--model",
        MODEL,
        "--labels",
        "a,b",
        sentence,
    ]);
    assert_user_error(&out, "the adapter's head has 3");

    let dir = temp_dir("merge");
    let merged = dir.join("merged");
    let out = hearth(&[
        "merge",
        "--adapter",
        PEFT_ADAPTER,
        "--model",
        MODEL,
        "--labels",
        labels,
        "--out",
        &merged.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"]["2"], "positive");
    assert_eq!(config["label2id"]["neutral"], 1);
    assert_eq!(config["num_hidden_layers"], 6, "the base config is kept");
    assert!(merged.join("tokenizer.json").exists());
    let weights = std::fs::read(merged.join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&weights).expect("safetensors");
    assert_eq!(
        st.tensor("classifier.weight").expect("head").shape(),
        [3, 384]
    );
    assert_eq!(
        st.tensor("bert.encoder.layer.0.attention.self.query.weight")
            .expect("query")
            .shape(),
        [384, 384]
    );
    assert!(
        st.tensor("bert.encoder.layer.5.output.LayerNorm.weight")
            .is_ok()
    );
    assert!(!st.names().iter().any(|n| n.contains("lora")));
}
