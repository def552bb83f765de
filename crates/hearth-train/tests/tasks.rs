//! The other tasks and the step-shaping controls on real MiniLM computation: multi-label and
//! regression heads learn; gradient accumulation equals one step on the union of the
//! micro-batches; the L1 penalty moves each weight by `lr · l1 · sign(w)`.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use hearth_models::ModelFiles;
use hearth_models::bert::{BertForSequenceClassification, Pooling};
use hearth_models::lora::LoraSettings;
use hearth_models::tokenizer::TextTokenizer;
use hearth_train::optim::OptimizerSettings;
use hearth_train::{Examples, Hooks, Metrics, Targets, Task, TrainData, TrainSettings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// MiniLM with every dropout of the config at `dropout` (0 makes steps deterministic).
fn minilm(dropout: f64) -> ModelFiles {
    let dir = root().join("assets/all-MiniLM-L6-v2");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("run scripts/fetch-assets.sh");
    let mut config: serde_json::Value =
        serde_json::from_slice(&read("config.json")).expect("config");
    config["hidden_dropout_prob"] = dropout.into();
    config["attention_probs_dropout_prob"] = dropout.into();
    ModelFiles {
        config: serde_json::to_vec(&config).expect("json"),
        weights: read("model.safetensors"),
        tokenizer: read("tokenizer.json"),
        adapter: None,
    }
}

fn build(files: &ModelFiles, outputs: usize, device: &Device) -> BertForSequenceClassification {
    device.seed(0);
    hearth_models::build_classifier(
        files,
        outputs,
        Pooling::Mean,
        &LoraSettings {
            lora_dropout: 0.0,
            ..LoraSettings::default()
        },
        0,
        device,
    )
    .expect("model builds")
    .with_head_dropout(0.0)
}

/// Trains a fresh model with `outputs` outputs on `texts`, evaluating on the same rows.
fn train(
    (files, device): (&ModelFiles, &Device),
    outputs: usize,
    task: &Task,
    (texts, targets): (&[String], &Targets),
    settings: &TrainSettings,
) -> (BertForSequenceClassification, hearth_train::TrainSummary) {
    let model = build(files, outputs, device);
    let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, 32).expect("tokenizer");
    let examples = Examples { texts, targets };
    pollster::block_on(hearth_train::train(
        model,
        &tokenizer,
        TrainData {
            task,
            train: examples,
            eval: examples,
        },
        settings,
        None,
        Hooks {
            on_event: &mut |_| ControlFlow::Continue(()),
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
        },
    ))
    .expect("trains")
}

/// Every trained matrix (LoRA factors, head) by burn path, on the host.
fn trained_matrices(model: &BertForSequenceClassification) -> BTreeMap<String, Vec<f32>> {
    hearth_models::host::named_params(model)
        .matrices
        .into_iter()
        .filter(|(path, _)| path.contains(".lora.") || path.starts_with("classifier"))
        .map(|(path, t): (String, Tensor<2>)| {
            let v = t
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32");
            (path, v)
        })
        .collect()
}

/// Texts about up to three topics; the label set names the topics a text mentions.
fn topic_rows() -> (Vec<String>, Vec<Vec<usize>>) {
    let topics = [
        [
            "the match ended in a late goal",
            "our team won the league",
            "the striker scored twice",
        ],
        [
            "it rained all afternoon",
            "a cold wind and heavy snow",
            "sunny skies and warm air",
        ],
        [
            "the soup was delicious",
            "we baked fresh bread",
            "this pasta tastes great",
        ],
    ];
    let mut texts = Vec::new();
    let mut sets = Vec::new();
    for mask in 1..8usize {
        for variant in 0..3 {
            let set: Vec<usize> = (0..3).filter(|t| mask & (1 << t) != 0).collect();
            let text: Vec<&str> = set.iter().map(|&t| topics[t][(variant + t) % 3]).collect();
            texts.push(text.join(", and "));
            sets.push(set);
        }
    }
    (texts, sets)
}

#[test]
fn a_multi_label_head_learns_label_sets() {
    let files = minilm(0.1);
    let device = Device::flex().autodiff();
    let (texts, sets) = topic_rows();
    let task: Task = serde_json::from_str(r#"{"kind": "multi_label"}"#).expect("task");
    let targets = Targets::LabelSets(sets);
    let settings = TrainSettings {
        steps: Some(40),
        batch_size: 7,
        learning_rate: 2e-3,
        warmup_steps: 2,
        ..TrainSettings::default()
    };
    let (_, summary) = train((&files, &device), 3, &task, (&texts, &targets), &settings);
    let Some(Metrics::MultiLabel(m)) = summary.eval else {
        panic!("multi-label metrics, got {:?}", summary.eval);
    };
    assert!(
        summary.loss_last20 < summary.loss_first * 0.6,
        "BCE {} -> {}",
        summary.loss_first,
        summary.loss_last20
    );
    assert!(m.micro_avg.f1 > 0.9, "micro-F1 {} ({m:?})", m.micro_avg.f1);
    assert_eq!(m.per_label.len(), 3);
}

#[test]
fn a_regression_head_learns_a_number() {
    let files = minilm(0.1);
    let device = Device::flex().autodiff();
    // How many topics a text mentions (1 to 3) is the number to predict.
    let (texts, sets) = topic_rows();
    let values: Vec<f32> = sets.iter().map(|s| s.len() as f32).collect();
    let targets = Targets::Values(values);
    for loss in ["mse", "huber"] {
        let task: Task =
            serde_json::from_str(&format!(r#"{{"kind": "regression", "loss": "{loss}"}}"#))
                .expect("task");
        let settings = TrainSettings {
            steps: Some(40),
            batch_size: 7,
            learning_rate: 2e-3,
            warmup_steps: 2,
            ..TrainSettings::default()
        };
        let (_, summary) = train((&files, &device), 1, &task, (&texts, &targets), &settings);
        let Some(Metrics::Regression(m)) = summary.eval else {
            panic!("regression metrics, got {:?}", summary.eval);
        };
        assert!(m.r2 > 0.5, "{loss}: R² {} ({m:?})", m.r2);
        assert!(m.mae < 0.5, "{loss}: MAE {}", m.mae);
    }
}

#[test]
fn accumulating_two_micro_batches_equals_one_step_on_both() {
    let files = minilm(0.0);
    let device = Device::flex().autodiff();
    let (texts, sets) = topic_rows();
    let targets = Targets::Classes(sets.iter().map(|s| s[0]).collect());
    let base = TrainSettings {
        steps: Some(2),
        learning_rate: 1e-2,
        warmup_steps: 0,
        optimizer: OptimizerSettings::Sgd {
            momentum: 0.0,
            nesterov: false,
        },
        ..TrainSettings::default()
    };
    let whole = TrainSettings {
        batch_size: 8,
        gradient_accumulation: 1,
        ..base.clone()
    };
    let split = TrainSettings {
        batch_size: 4,
        gradient_accumulation: 2,
        ..base.clone()
    };
    let halves = TrainSettings {
        batch_size: 4,
        gradient_accumulation: 1,
        ..base
    };
    let task = Task::Classification;
    let run = |s: &TrainSettings| {
        let (model, _) = train((&files, &device), 3, &task, (&texts, &targets), s);
        trained_matrices(&model)
    };
    let (a, b, c) = (run(&whole), run(&split), run(&halves));
    let diff = |x: &BTreeMap<String, Vec<f32>>, y: &BTreeMap<String, Vec<f32>>| {
        x.iter()
            .flat_map(|(k, v)| v.iter().zip(&y[k]).map(|(p, q)| (p - q).abs()))
            .fold(0.0f32, f32::max)
    };
    assert!(a.len() > 2, "{:?}", a.keys());
    let same = diff(&a, &b);
    assert!(same < 2e-6, "accumulated vs whole batch differ by {same}");
    // Without accumulation, batches of 4 take different steps: the check can fail.
    let other = diff(&a, &c);
    assert!(other > 1e-4, "batches of 4 should differ, by {other}");
}

#[test]
fn the_l1_penalty_moves_each_weight_by_lr_l1_sign() {
    let files = minilm(0.0);
    let device = Device::flex().autodiff();
    let (texts, sets) = topic_rows();
    let targets = Targets::Classes(sets.iter().map(|s| s[0]).collect());
    let (lr, l1) = (0.1, 0.01);
    let settings = TrainSettings {
        steps: Some(1),
        batch_size: 8,
        learning_rate: lr,
        warmup_steps: 0,
        optimizer: OptimizerSettings::Sgd {
            momentum: 0.0,
            nesterov: false,
        },
        ..TrainSettings::default()
    };
    let start = trained_matrices(&build(&files, 3, &device));
    let task = Task::Classification;
    let (plain, _) = train((&files, &device), 3, &task, (&texts, &targets), &settings);
    let with_l1 = TrainSettings { l1, ..settings };
    let (penalized, _) = train((&files, &device), 3, &task, (&texts, &targets), &with_l1);
    let (plain, penalized) = (trained_matrices(&plain), trained_matrices(&penalized));
    let mut moved = 0;
    for (path, w0) in &start {
        for ((w, p), q) in w0.iter().zip(&plain[path]).zip(&penalized[path]) {
            // SGD: q = w − lr·(g + l1·sign(w)) = p − lr·l1·sign(w).
            let want = p - (lr * l1) as f32 * w.signum() * f32::from(*w != 0.0);
            assert!((q - want).abs() < 1e-6, "{path}: {q} vs {want}");
            moved += usize::from(*w != 0.0);
        }
    }
    assert!(moved > 1000, "only {moved} weights were nonzero");
}
