//! PEFT's adapter format, both ways, against PEFT itself (fixtures from
//! `scripts/fixtures/adapters.py`): an adapter trained and saved by PyTorch + PEFT is imported
//! and gives PEFT's logits; an adapter exported by Hearth, loaded by PEFT, gave logits that
//! Hearth reproduces.

mod common;

use burn::tensor::Device;
use common::{fixture, floats, json, minilm_files, read_vec, strings};
use hearth_models::bert::{BertInput, Pooling};
use hearth_models::lora::LoraSettings;
use hearth_models::peft::{AdapterConfig, export_adapter, import_adapter, peft_names};
use hearth_models::tokenizer::TextTokenizer;

/// MiniLM with the committed adapter directory `dir` (fixtures) imported, on the CPU, with the
/// model files and the adapter's weights file.
fn adapted(
    dir: &str,
) -> (
    hearth_models::bert::BertForSequenceClassification,
    hearth_models::ModelFiles,
    AdapterConfig,
    Vec<u8>,
) {
    let dir = fixture(dir);
    let read = |name: &str| std::fs::read(dir.join(name)).expect("adapter file is committed");
    let config = AdapterConfig::from_json(&read("adapter_config.json")).expect("PEFT config");
    let files = minilm_files();
    let model = hearth_models::build_classifier(
        &files,
        3,
        Pooling::Cls,
        &config.settings(),
        0,
        &Device::flex(),
    )
    .expect("builds");
    let weights = read("adapter_model.safetensors");
    let model = import_adapter(model, &weights).expect("imports");
    (model, files, config, weights)
}

/// Hearth's logits for the fixture's sentences with the adapter directory `dir` on MiniLM,
/// checked against the logits PEFT computed.
fn logits_match_peft(dir: &str, logits_fixture: &str) {
    let fx = json(logits_fixture);
    let device = Device::flex();
    let (model, files, _, _) = adapted(dir);

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
    eprintln!("{dir}: largest logit difference to PEFT {worst:e}");
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

/// The modules of `model` carrying adapters, by the names PEFT gives them under
/// `BertForSequenceClassification`.
fn adapted_modules(model: &hearth_models::bert::BertForSequenceClassification) -> Vec<String> {
    let mut names: Vec<String> = peft_names(model)
        .into_iter()
        .filter_map(|(_, peft)| {
            Some(
                peft.strip_suffix(".lora_A.weight")?
                    .strip_prefix("base_model.model.")?
                    .to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

/// Hearth's logits for `sentences` with `model` on MiniLM's tokenizer.
fn logits_of(
    model: &hearth_models::bert::BertForSequenceClassification,
    files: &hearth_models::ModelFiles,
    sentences: &[&str],
) -> Vec<f64> {
    let tok = TextTokenizer::from_bytes(&files.tokenizer, 128).expect("tokenizer");
    let enc = tok.encode_batch(sentences).expect("encodes");
    read_vec(model.forward(&BertInput::new(&enc, &Device::flex())))
        .into_iter()
        .map(f64::from)
        .collect()
}

/// rsLoRA (`alpha / √r`) on layers 1 and 3 only, built by PEFT itself: Hearth reads the
/// settings, adapts the modules PEFT adapted, and computes PEFT's logits.
#[test]
fn an_rslora_adapter_on_chosen_layers_made_by_peft_gives_peft_s_logits() {
    logits_match_peft("peft-rslora-adapter", "peft_rslora_logits.json");
    let fx = json("peft_rslora_logits.json");
    let (model, files, config, weights) = adapted("peft-rslora-adapter");
    let settings = config.settings();
    assert!(settings.use_rslora);
    assert_eq!(settings.layers_to_transform, Some(vec![1, 3]));
    assert_eq!(config.layers_pattern, None, "PEFT wrote no layers_pattern");
    assert_eq!(
        adapted_modules(&model),
        strings(&fx["adapted_modules"]),
        "the modules PEFT adapted"
    );
    let scaling = fx["scaling"].as_f64().expect("scaling");
    assert!((settings.scale() - scaling).abs() < 1e-12, "{scaling}");

    // The flag matters: the same factors scaled by alpha / r give other logits.
    let plain = LoraSettings {
        use_rslora: false,
        ..settings.clone()
    };
    let model =
        hearth_models::build_classifier(&files, 3, Pooling::Cls, &plain, 0, &Device::flex())
            .expect("builds");
    let model = import_adapter(model, &weights).expect("imports");
    let other = logits_of(&model, &files, &strings(&fx["sentences"]));
    let moved = other
        .iter()
        .zip(floats(&fx["logits"]))
        .fold(0.0, |m, (a, b)| f64::max(m, (a - b).abs()));
    assert!(moved > 1e-3, "rsLoRA changed nothing: {moved:e}");

    // Adapters on every layer do not fit a file with factors for layers 1 and 3.
    let every_layer = LoraSettings {
        layers_to_transform: None,
        ..settings
    };
    let model =
        hearth_models::build_classifier(&files, 3, Pooling::Cls, &every_layer, 0, &Device::flex())
            .expect("builds");
    let err = import_adapter(model, &weights).unwrap_err().to_string();
    // Layers 0, 2, 4 and 5 lack both factors of query and value.
    assert!(err.contains("lacks 16 tensor(s)"), "{err}");
}

/// An rsLoRA adapter on layers 1 and 3 that Hearth exported (by
/// `examples/rslora_adapter.rs`), loaded by PEFT, gave logits Hearth reproduces; and Hearth
/// still writes exactly the files PEFT loaded.
#[test]
fn an_rslora_adapter_exported_by_hearth_loads_in_peft() {
    logits_match_peft("hearth-rslora-adapter", "hearth_rslora_logits.json");
    let fx = json("hearth_rslora_logits.json");
    let (model, files, config, weights) = adapted("hearth-rslora-adapter");
    assert_eq!(adapted_modules(&model), strings(&fx["adapted_modules"]));
    // The adapter matters, not only the head: scaled by alpha / r the logits differ.
    let plain = LoraSettings {
        use_rslora: false,
        ..config.settings()
    };
    let other =
        hearth_models::build_classifier(&files, 3, Pooling::Cls, &plain, 0, &Device::flex())
            .and_then(|m| import_adapter(m, &weights))
            .expect("imports");
    let moved = logits_of(&other, &files, &strings(&fx["sentences"]))
        .iter()
        .zip(floats(&fx["logits"]))
        .fold(0.0, |m, (a, b)| f64::max(m, (a - b).abs()));
    assert!(moved > 1e-3, "the adapter changed nothing: {moved:e}");
    let again = pollster::block_on(export_adapter(&model)).expect("exports");
    assert!(again == weights, "the exported tensors changed");
    let written = AdapterConfig::for_classification(&config.settings(), "all-MiniLM-L6-v2");
    let committed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("hearth-rslora-adapter/adapter_config.json")).expect("committed"),
    )
    .expect("json");
    assert_eq!(serde_json::to_value(&written).expect("json"), committed);
    assert_eq!(committed["use_rslora"], true);
    assert_eq!(committed["layers_to_transform"], serde_json::json!([1, 3]));
    assert_eq!(committed["layers_pattern"], "layer");
}

/// The PEFT fixture adapter merged into MiniLM: the merged model, loaded as a plain
/// `BertForSequenceClassification`, gives the logits of base + adapter, and the logits
/// transformers computed with the merged directory (`merged_logits.json`).
#[test]
fn a_merged_model_gives_the_logits_of_base_plus_adapter() {
    let device = Device::flex();
    let (model, files, config, weights) = adapted("peft-adapter");
    let fx = json("merged_logits.json");
    let sentences = strings(&fx["sentences"]);
    let tok = TextTokenizer::from_bytes(&files.tokenizer, 128).expect("tokenizer");
    let enc = tok.encode_batch(&sentences).expect("encodes");
    let adapted = read_vec(model.forward(&BertInput::new(&enc, &device)));

    let labels: Vec<String> = strings(&fx["labels"])
        .into_iter()
        .map(String::from)
        .collect();
    let merged = pollster::block_on(hearth_models::merge::merge_classifier(
        model,
        &files.config,
        &labels,
        hearth_models::merge::ProblemType::SingleLabel,
    ))
    .expect("merges");
    let merged_files = hearth_models::ModelFiles {
        config: merged.config,
        weights: merged.weights,
        tokenizer: files.tokenizer.clone(),
        adapter: None,
    };
    let (plain, names) =
        hearth_models::merge::load_classifier(&merged_files, &device).expect("loads merged");
    assert_eq!(names, labels);
    let ours = read_vec(plain.forward(&BertInput::new(&enc, &device)));
    let transformers = floats(&fx["logits"]);
    let worst = |a: &[f32], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - y).abs())
            .fold(0.0, f64::max)
    };
    let adapted64: Vec<f64> = adapted.iter().map(|&v| v as f64).collect();
    assert_eq!(ours.len(), adapted.len());
    let vs_adapter = worst(&ours, &adapted64);
    assert!(
        vs_adapter < 1e-4,
        "merged vs base + adapter: {vs_adapter:e}"
    );
    let vs_transformers = worst(&ours, &transformers);
    assert!(
        vs_transformers < 1e-4,
        "merged in Hearth vs merged in transformers: {vs_transformers:e}"
    );
    // Merging changed the base weights: the base model alone gives other logits.
    let base =
        hearth_models::build_classifier(&files, 3, Pooling::Cls, &config.settings(), 0, &device)
            .expect("builds");
    let base = import_adapter(base, &zeroed_lora_b(&weights)).expect("imports");
    let without = read_vec(base.forward(&BertInput::new(&enc, &device)));
    let moved: Vec<f64> = without.iter().map(|&v| v as f64).collect();
    assert!(worst(&ours, &moved) > 1e-3, "the adapter changed nothing");
}

/// The adapter with every `lora_B` zeroed: the base model with the same head.
fn zeroed_lora_b(bytes: &[u8]) -> Vec<u8> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("parses");
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in file.tensors() {
        let data = if name.contains("lora_B") {
            vec![0u8; view.data().len()]
        } else {
            view.data().to_vec()
        };
        owned.push((name, view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .expect("view"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("serializes")
}
