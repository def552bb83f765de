//! The three strategies (LoRA, head only, full fine-tuning) on a tiny random BERT: each trains
//! exactly the parameters it names, and what each saves loads back to the same model.

mod common;

use std::collections::BTreeMap;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{TINY_HIDDEN, TINY_LAYERS, read_vec, tiny_batch, tiny_files};
use hearth_models::bert::{BertForSequenceClassification, BertInput, Pooling};
use hearth_models::host::named_params;
use hearth_models::lora::{LoraSettings, trainable_params};
use hearth_models::{Strategy, Trained, build_for_strategy, export_trained, load_trained};

const OUTPUTS: usize = 3;
const STRATEGIES: [Strategy; 3] = [Strategy::Lora, Strategy::Head, Strategy::Full];

fn lora() -> LoraSettings {
    LoraSettings {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        use_rslora: true,
        layers_to_transform: Some(vec![1, 3]),
        ..LoraSettings::default()
    }
}

fn labels() -> Vec<String> {
    ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
}

fn build(strategy: Strategy, pooling: Pooling, device: &Device) -> BertForSequenceClassification {
    build_for_strategy(
        &tiny_files(),
        OUTPUTS,
        pooling,
        &lora(),
        strategy,
        3,
        device,
    )
    .expect("builds")
}

/// Two SGD steps on the tiny batch, so that every trainable tensor (LoRA's A too, whose
/// gradient is zero while B is) has moved.
fn train(
    mut model: BertForSequenceClassification,
    device: &Device,
) -> BertForSequenceClassification {
    let batch = BertInput::new(&tiny_batch(), device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), device);
    let mut optim = SgdConfig::new().init();
    for _ in 0..2 {
        let loss = CrossEntropyLossConfig::new()
            .init(device)
            .forward(model.forward(&batch), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.5, model, grads);
    }
    model
}

/// Every float parameter's values by burn path.
fn values(model: &BertForSequenceClassification) -> BTreeMap<String, Vec<f32>> {
    let named = named_params(model);
    let mut out = BTreeMap::new();
    for (path, t) in named.matrices {
        out.insert(path, read_vec(t));
    }
    for (path, t) in named.vectors {
        let n = t.dims()[0];
        out.insert(path, read_vec(t.reshape([1, n])));
    }
    out
}

fn logits(model: &BertForSequenceClassification, device: &Device) -> Vec<f32> {
    read_vec(model.forward(&BertInput::new(&tiny_batch(), device)))
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn each_strategy_trains_exactly_its_parameters() {
    let device = Device::flex().autodiff();
    let head = TINY_HIDDEN * OUTPUTS + OUTPUTS;
    for strategy in STRATEGIES {
        let model = build(strategy, Pooling::Cls, &device);
        let expected = match strategy {
            Strategy::Head => head,
            Strategy::Full => model.num_params(),
            // r·(in + out) for query and value in layers 1 and 3 only.
            Strategy::Lora => 2 * 2 * 4 * (TINY_HIDDEN + TINY_HIDDEN) + head,
        };
        assert_eq!(trainable_params(&model), expected, "{strategy:?}");

        let before = values(&model);
        let after = values(&train(model, &device));
        let changed: Vec<&str> = before
            .iter()
            .filter(|(path, v)| after.get(*path).is_some_and(|w| worst(v, w) > 0.0))
            .map(|(path, _)| path.as_str())
            .collect();
        let is_head = |p: &str| p.starts_with("classifier.");
        match strategy {
            Strategy::Head => assert_eq!(changed, ["classifier.bias", "classifier.weight"]),
            Strategy::Full => {
                // Every parameter moves, but for the attention key biases: adding the same
                // q·b to every score of a row leaves the softmax unchanged, so their gradient
                // is zero (up to rounding), in PyTorch as here.
                let unchanged: Vec<&String> = before
                    .keys()
                    .filter(|k| !changed.contains(&k.as_str()) && !k.ends_with(".key.bias"))
                    .collect();
                assert!(unchanged.is_empty(), "not trained: {unchanged:?}");
                assert!(changed.len() > before.len() - TINY_LAYERS);
            }
            Strategy::Lora => {
                let factors: Vec<&str> = changed.iter().copied().filter(|p| !is_head(p)).collect();
                let mut want = Vec::new();
                for layer in [1, 3] {
                    for m in ["query", "value"] {
                        for f in ["a", "b"] {
                            want.push(format!(
                                "bert.encoder.layer.{layer}.attention.self_attention.{m}.weight.lora.{f}"
                            ));
                        }
                    }
                }
                want.sort();
                assert_eq!(factors, want);
                assert_eq!(changed.iter().filter(|p| is_head(p)).count(), 2);
            }
        }
    }
}

#[test]
fn what_each_strategy_saves_loads_back_to_the_same_logits() {
    let device = Device::flex().autodiff();
    let inner = Device::flex();
    let files = tiny_files();
    for pooling in [Pooling::Cls, Pooling::Mean] {
        for strategy in STRATEGIES {
            let fresh = logits(&build(strategy, pooling, &inner), &inner);
            let trained = train(build(strategy, pooling, &device), &device);
            let saved = pollster::block_on(export_trained(
                &trained,
                strategy,
                &lora(),
                &files,
                "tiny",
                &labels(),
                hearth_models::merge::ProblemType::SingleLabel,
            ))
            .expect("exports");
            assert_eq!(saved.strategy(), strategy);
            let ours = logits(&trained.valid(), &inner);
            // The comparison below is about the saved training, not two fresh models agreeing.
            assert!(
                worst(&ours, &fresh) > 1e-3,
                "{strategy:?}: training moved nothing"
            );

            let loaded = load_trained(
                &files,
                saved.weights(),
                OUTPUTS,
                pooling,
                &lora(),
                strategy,
                &inner,
            )
            .expect("loads");
            let back = logits(&loaded, &inner);
            let diff = worst(&ours, &back);
            assert!(diff <= 1e-6, "{strategy:?} {pooling:?}: {diff:e}");
            eprintln!(
                "{strategy:?} {pooling:?}: saved and loaded, largest logit difference {diff:e}"
            );

            let names: Vec<&str> = saved
                .files()
                .expect("files")
                .iter()
                .map(|(n, _)| *n)
                .collect();
            match &saved {
                Trained::Adapter { config, .. } => {
                    assert_eq!(names, ["adapter_config.json", "adapter_model.safetensors"]);
                    assert!(config.use_rslora);
                    assert_eq!(config.settings(), lora());
                }
                Trained::Head { weights } => {
                    assert_eq!(names, ["head.safetensors"]);
                    let file = safetensors::SafeTensors::deserialize(weights).expect("parses");
                    let mut tensors: Vec<(String, Vec<usize>)> = file
                        .tensors()
                        .into_iter()
                        .map(|(n, v)| (n, v.shape().to_vec()))
                        .collect();
                    tensors.sort();
                    assert_eq!(
                        tensors,
                        [
                            ("classifier.bias".to_string(), vec![OUTPUTS]),
                            ("classifier.weight".to_string(), vec![OUTPUTS, TINY_HIDDEN]),
                        ]
                    );
                }
                Trained::Model {
                    config, weights, ..
                } => {
                    assert_eq!(
                        names,
                        ["config.json", "model.safetensors", "tokenizer.json"]
                    );
                    let config: serde_json::Value =
                        serde_json::from_slice(config).expect("config.json");
                    assert_eq!(config["id2label"]["2"], "c");
                    assert_eq!(
                        config.get("hearth_pooling").and_then(|v| v.as_str()),
                        (pooling == Pooling::Mean).then_some("mean")
                    );
                    let file = safetensors::SafeTensors::deserialize(weights).expect("parses");
                    assert!(
                        file.tensor("bert.encoder.layer.3.attention.self.query.weight")
                            .is_ok()
                    );
                    if pooling == Pooling::Cls {
                        // The same directory through the loader of merged models (plain
                        // transformers' BertForSequenceClassification layout).
                        let dir = hearth_models::ModelFiles {
                            config: serde_json::to_vec(&config).expect("json"),
                            weights: weights.clone(),
                            tokenizer: files.tokenizer.clone(),
                            adapter: None,
                        };
                        let (plain, names) =
                            hearth_models::merge::load_classifier(&dir, &inner).expect("loads");
                        assert_eq!(names, labels());
                        let diff = worst(&ours, &logits(&plain, &inner));
                        assert!(diff <= 1e-6, "as a merged directory: {diff:e}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_trained_run_resumes_with_what_it_trains() {
    // Loading the saved weights on an autodiff device gives back a model that trains the same
    // parameters as a fresh one (a resumed run).
    let device = Device::flex().autodiff();
    let files = tiny_files();
    for strategy in STRATEGIES {
        let trained = train(build(strategy, Pooling::Cls, &device), &device);
        let saved = pollster::block_on(export_trained(
            &trained,
            strategy,
            &lora(),
            &files,
            "tiny",
            &labels(),
            hearth_models::merge::ProblemType::SingleLabel,
        ))
        .expect("exports");
        let resumed = load_trained(
            &files,
            saved.weights(),
            OUTPUTS,
            Pooling::Cls,
            &lora(),
            strategy,
            &device,
        )
        .expect("loads");
        assert_eq!(
            trainable_params(&resumed),
            trainable_params(&trained),
            "{strategy:?}"
        );
    }
}

#[test]
fn mismatched_strategies_and_files_are_errors() {
    let device = Device::flex();
    let files = tiny_files();
    let lora_model = build(Strategy::Lora, Pooling::Cls, &device);
    let err = pollster::block_on(export_trained(
        &lora_model,
        Strategy::Full,
        &lora(),
        &files,
        "tiny",
        &labels(),
        hearth_models::merge::ProblemType::SingleLabel,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Full run's model carries LoRA adapters"),
        "{err}"
    );
    let head_model = build(Strategy::Head, Pooling::Cls, &device);
    let err = pollster::block_on(export_trained(
        &head_model,
        Strategy::Head,
        &lora(),
        &files,
        "tiny",
        &labels()[..2],
        hearth_models::merge::ProblemType::SingleLabel,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("2 label names for a head with 3 outputs"),
        "{err}"
    );

    // A head saved for 3 outputs does not load onto a head of 2.
    let saved = pollster::block_on(export_trained(
        &head_model,
        Strategy::Head,
        &lora(),
        &files,
        "tiny",
        &labels(),
        hearth_models::merge::ProblemType::SingleLabel,
    ))
    .expect("exports");
    let err = load_trained(
        &files,
        saved.weights(),
        2,
        Pooling::Cls,
        &lora(),
        Strategy::Head,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`classifier.weight` is F32 [3, 32], expected F32 [2, 32]"),
        "{err}"
    );
    // Garbage instead of the head's file.
    let err = load_trained(
        &files,
        b"not safetensors",
        OUTPUTS,
        Pooling::Cls,
        &lora(),
        Strategy::Head,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("the head's weights cannot be read"), "{err}");

    // A layer the model does not have.
    let bad = LoraSettings {
        layers_to_transform: Some(vec![1, TINY_LAYERS]),
        ..lora()
    };
    let err = build_for_strategy(
        &files,
        OUTPUTS,
        Pooling::Cls,
        &bad,
        Strategy::Lora,
        0,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("layers_to_transform names layer 4, but this model has 4 layers"),
        "{err}"
    );
    // The LoRA settings do not matter to the other strategies.
    build_for_strategy(
        &files,
        OUTPUTS,
        Pooling::Cls,
        &bad,
        Strategy::Head,
        0,
        &device,
    )
    .expect("a linear probe ignores the LoRA settings");
}

/// Gradient checkpointing (`backward_checkpointed`: each encoder layer run frozen, then
/// recomputed from its input in the backward pass) gives the gradients of one backward pass:
/// LoRA on layers 1 and 3 (layer 0 is neither kept nor recomputed) and full fine-tuning (the
/// embeddings train too), CLS and mean pooling, with BERT's own dropout, LoRA dropout and the
/// head's dropout all on (the recomputed layers must draw the same masks); the loss is the
/// same, and the dropout stream ends where the plain pass leaves it.
#[test]
fn checkpointed_gradients_equal_one_backward_pass() {
    use burn::optim::GradientsAccumulator;
    use hearth_models::dropout;

    let device = Device::flex().autodiff();
    let mut files = tiny_files();
    let mut config: serde_json::Value = serde_json::from_slice(&files.config).expect("json");
    config["hidden_dropout_prob"] = 0.1.into();
    config["attention_probs_dropout_prob"] = 0.1.into();
    files.config = serde_json::to_vec(&config).expect("json");
    let settings = LoraSettings {
        lora_dropout: 0.1,
        ..lora()
    };
    let input = BertInput::new(&tiny_batch(), &device);
    for (strategy, pooling) in [
        (Strategy::Lora, Pooling::Cls),
        (Strategy::Lora, Pooling::Mean),
        (Strategy::Full, Pooling::Cls),
    ] {
        let name = format!("{strategy:?} {pooling:?}");
        let model = build_for_strategy(&files, OUTPUTS, pooling, &settings, strategy, 3, &device)
            .expect("builds")
            .with_head_dropout(0.1);
        // A loss whose gradient differs for every logit.
        let weights = Tensor::<1, Int>::arange(0..(3 * OUTPUTS) as i64, &device)
            .float()
            .mul_scalar(0.7)
            .cos()
            .reshape([3, OUTPUTS]);
        let loss = |logits: Tensor<2>| (logits * weights.clone()).sum();

        dropout::reseed(42);
        let plain_loss = loss(model.forward(&input));
        let plain = GradientsParams::from_grads(plain_loss.backward(), &model);
        let plain_end = dropout::position();

        dropout::reseed(42);
        let mut accumulated = GradientsAccumulator::new();
        let checkpointed_loss = model.backward_checkpointed(&input, &loss, &mut |g| {
            accumulated.accumulate(&model, GradientsParams::from_grads(g, &model));
        });
        let checkpointed = accumulated.grads();
        assert_eq!(dropout::position(), plain_end, "{name}: the dropout stream");
        let (a, b) = (
            read_vec(checkpointed_loss.reshape([1, 1])),
            read_vec(plain_loss.reshape([1, 1])),
        );
        assert!(
            (a[0] - b[0]).abs() <= 1e-5 * b[0].abs().max(1.0),
            "{name}: {a:?} vs {b:?}"
        );

        let named = named_params(&model);
        let vectors = named.vectors.iter().map(|(p, t)| {
            let n = t.dims()[0];
            (p, named.ids[p], t.clone().reshape([1, n]), true)
        });
        let matrices = named
            .matrices
            .iter()
            .map(|(p, t)| (p, named.ids[p], t.clone(), false));
        let mut compared = 0;
        for (path, id, _, vector) in matrices.chain(vectors) {
            let (c, p) = if vector {
                let (c, p) = (checkpointed.get::<1>(id), plain.get::<1>(id));
                (c.map(|t| t.unsqueeze::<2>()), p.map(|t| t.unsqueeze::<2>()))
            } else {
                (checkpointed.get::<2>(id), plain.get::<2>(id))
            };
            assert_eq!(c.is_some(), p.is_some(), "{name} {path}");
            let (Some(c), Some(p)) = (c, p) else { continue };
            let (c, p) = (read_vec(c), read_vec(p));
            let scale = p.iter().fold(0f32, |m, x| m.max(x.abs()));
            let worst = c
                .iter()
                .zip(&p)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= 1e-5 * scale.max(1e-6),
                "{name} {path}: {worst:e} vs scale {scale:e}"
            );
            compared += 1;
        }
        // LoRA: A and B of query and value in two layers, and the head; full: every tensor
        // (5 of the embeddings, 16 in each of 4 layers, the pooler's 2 and the head's 2).
        let expected = if strategy == Strategy::Full { 73 } else { 10 };
        assert_eq!(compared, expected, "{name}: gradients compared");
    }
}
