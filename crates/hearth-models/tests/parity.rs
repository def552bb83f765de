//! Numeric parity with PyTorch + transformers + PEFT, from the committed fixtures that
//! `scripts/fixtures/minilm.py` writes: token ids, mean-pooled embeddings, LoRA classification
//! logits and the gradients of every LoRA factor after one backward pass.

mod common;

use std::collections::HashMap;

use burn::module::{Module, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{floats, ints, json, minilm_files, read_vec, strings};
use hearth_models::bert::{BertConfig, BertInput, BertModel, Pooling};
use hearth_models::host::named_params;
use hearth_models::lora::{LoraSettings, trainable_params};
use hearth_models::peft::{import_adapter, peft_names};
use hearth_models::tokenizer::{Encoded, TextTokenizer};
use safetensors::tensor::{Dtype, TensorView};

fn tokenizer(max_length: usize) -> TextTokenizer {
    TextTokenizer::from_bytes(&minilm_files().tokenizer, max_length).expect("tokenizer loads")
}

#[test]
fn token_ids_equal_hf() {
    let fx = json("tokens.json");
    let tok = tokenizer(fx["max_length"].as_u64().expect("max_length") as usize);
    for s in fx["sentences"].as_array().expect("sentences") {
        let text = s["text"].as_str().expect("text");
        let enc = tok.encode_batch(&[text]).expect("encodes");
        assert_eq!(
            enc.input_ids,
            ints(&s["input_ids"]),
            "input_ids of {text:?}"
        );
        assert_eq!(enc.token_type_ids, ints(&s["token_type_ids"]), "{text:?}");
        assert_eq!(enc.attention_mask, ints(&s["attention_mask"]), "{text:?}");
    }
    let batch = &fx["batch"];
    let texts = strings(&batch["texts"]);
    let enc = tok.encode_batch(&texts).expect("encodes");
    assert_eq!(enc.input_ids, ints(&batch["input_ids"]), "dynamic padding");
    assert_eq!(enc.attention_mask, ints(&batch["attention_mask"]));
    assert_eq!(enc.token_type_ids, ints(&batch["token_type_ids"]));
}

#[test]
fn mean_pooled_embeddings_match_transformers() {
    let fx = json("embeddings.json");
    let files = minilm_files();
    let device = Device::flex();
    let config = BertConfig::from_json(&files.config).expect("config");
    let model = BertModel::init(&config, 0.0, &device)
        .expect("init")
        .load_safetensors(files.weights.clone())
        .expect("weights load")
        .valid();
    let texts = strings(&fx["sentences"]);
    let enc = tokenizer(128).encode_batch(&texts).expect("encodes");
    assert_eq!(enc.input_ids, ints(&fx["input_ids"]));
    let ours = read_vec(model.mean_pooled(&BertInput::new(&enc, &device)));
    let expected = floats(&fx["embeddings"]);
    assert_eq!(ours.len(), expected.len());
    // The check values, from transformers.
    for (i, v) in [0.349345, 0.327860, 0.251530, 0.409490, 0.193362]
        .iter()
        .enumerate()
    {
        assert!(
            (f64::from(ours[i]) - v).abs() < 1e-4,
            "component {i}: {}",
            ours[i]
        );
    }
    let worst = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "max abs difference {worst}");
}

/// The fixed factor values both sides use (see tests/fixtures/lora_logits.json "formula").
fn formula_adapter(layers: usize, hidden: usize, r: usize, labels: usize) -> Vec<u8> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for l in 0..layers {
        for (mi, module) in ["query", "value"].iter().enumerate() {
            let (lf, mf) = (l as f64, mi as f64);
            let base = format!("base_model.model.bert.encoder.layer.{l}.attention.self.{module}");
            let mut a = Vec::with_capacity(r * hidden);
            for k in 0..r {
                for i in 0..hidden {
                    let x = 0.1 * (i + 1) as f64 + 0.7 * (k + 1) as f64 + 1.3 * lf + 2.1 * mf;
                    a.push((0.05 * x.sin()) as f32);
                }
            }
            let mut b = Vec::with_capacity(hidden * r);
            for o in 0..hidden {
                for k in 0..r {
                    let x = 0.13 * (o + 1) as f64 + 0.5 * (k + 1) as f64 + 0.9 * lf + 1.7 * mf;
                    b.push((0.05 * x.cos()) as f32);
                }
            }
            tensors.push((format!("{base}.lora_A.weight"), vec![r, hidden], a));
            tensors.push((format!("{base}.lora_B.weight"), vec![hidden, r], b));
        }
    }
    let mut c = Vec::with_capacity(labels * hidden);
    for ci in 0..labels {
        for h in 0..hidden {
            c.push((0.1 * (0.05 * (h + 1) as f64 + 1.1 * (ci + 1) as f64).sin()) as f32);
        }
    }
    tensors.push((
        "base_model.model.classifier.weight".into(),
        vec![labels, hidden],
        c,
    ));
    tensors.push((
        "base_model.model.classifier.bias".into(),
        vec![labels],
        vec![-0.1, 0.0, 0.1],
    ));
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("view"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("serialize")
}

fn fixture_batch(fx: &serde_json::Value) -> Encoded {
    let ids = ints(&fx["input_ids"]);
    let rows = fx["input_ids"].as_array().expect("rows").len();
    Encoded {
        batch_size: rows,
        seq_len: ids.len() / rows,
        input_ids: ids,
        token_type_ids: ints(&fx["token_type_ids"]),
        attention_mask: ints(&fx["attention_mask"]),
    }
}

fn lora_settings() -> LoraSettings {
    LoraSettings {
        lora_dropout: 0.0,
        ..LoraSettings::default()
    }
}

#[test]
fn trainable_count_is_peft_s() {
    let device = Device::flex().autodiff();
    let model = hearth_models::build_classifier(
        &minilm_files(),
        3,
        Pooling::Cls,
        &lora_settings(),
        0,
        &device,
    )
    .expect("builds");
    // PEFT prints 74,883 for this model (also recorded in lora_logits.json).
    assert_eq!(trainable_params(&model), 74_883);
    assert_eq!(
        json("lora_logits.json")["trainable_params"].as_u64(),
        Some(74_883)
    );
}

/// MiniLM's files with every dropout probability set to zero, so a training-mode forward
/// computes what PyTorch's eval mode does.
fn minilm_without_dropout() -> hearth_models::ModelFiles {
    let mut files = minilm_files();
    let mut config: serde_json::Value = serde_json::from_slice(&files.config).expect("config");
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    files.config = serde_json::to_vec(&config).expect("json");
    files
}

#[test]
fn lora_logits_and_gradients_match_peft() {
    let fx = json("lora_logits.json");
    let device = Device::flex().autodiff();
    let model = hearth_models::build_classifier(
        &minilm_without_dropout(),
        3,
        Pooling::Cls,
        &lora_settings(),
        0,
        &device,
    )
    .expect("builds");
    let model = import_adapter(model, &formula_adapter(6, 384, 8, 3)).expect("adapter imports");
    let batch = fixture_batch(&fx);
    let enc = tokenizer(128)
        .encode_batch(&strings(&fx["sentences"]))
        .expect("encodes");
    assert_eq!(enc, batch, "the tokenizer gives the fixture's batch");

    // Logits without dropout (PyTorch ran in eval mode).
    let eval_model = model.valid();
    let logits = read_vec(eval_model.forward(&BertInput::new(
        &batch,
        &eval_model.classifier.weight.device(),
    )));
    let expected = floats(&fx["logits"]);
    for (i, (a, b)) in logits.iter().zip(&expected).enumerate() {
        assert!(
            (f64::from(*a) - b).abs() < 1e-4,
            "logit {i}: ours {a}, PyTorch {b}"
        );
    }

    // Gradients of one backward pass, without dropout anywhere (PyTorch ran in eval mode).
    let labels: Vec<i64> = ints(&fx["labels"]);
    let targets =
        Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [labels.len()]), &device);
    let logits = model.forward(&BertInput::new(&batch, &device));
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits, targets);
    let loss_value = read_vec(loss.clone().reshape([1, 1]))[0];
    assert!((f64::from(loss_value) - fx["loss"].as_f64().expect("loss")).abs() < 1e-5);
    let grads = GradientsParams::from_grads(loss.backward(), &model);

    let reference =
        std::fs::read(common::fixture("lora_grads.safetensors")).expect("grads fixture");
    let reference = safetensors::SafeTensors::deserialize(&reference).expect("safetensors");
    let named = named_params(&model);
    let by_peft_name: HashMap<String, ParamId> = peft_names(&model)
        .into_iter()
        .filter_map(|(path, peft)| Some((peft, *named.ids.get(&path)?)))
        .collect();
    let mut checked = 0;
    for (name, view) in reference.tensors() {
        let want: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let ours = if name == "base_model.model.classifier.bias" {
            let t = grads
                .get::<1>(named.ids["classifier.bias"])
                .expect("bias grad");
            let n = t.dims()[0];
            read_vec(t.reshape([1, n]))
        } else {
            let id = by_peft_name
                .get(&name)
                .unwrap_or_else(|| panic!("no parameter for {name}"));
            // burn keeps factors transposed relative to PEFT.
            read_vec(grads.get::<2>(*id).expect("grad").transpose())
        };
        assert_eq!(ours.len(), want.len(), "{name}");
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = ours
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.0, "{name}: the reference gradient is zero");
        assert!(
            worst <= 1e-4 * scale,
            "{name}: max abs diff {worst} vs scale {scale}"
        );
        checked += 1;
    }
    assert_eq!(checked, 26, "24 LoRA factors + classifier weight and bias");
}
