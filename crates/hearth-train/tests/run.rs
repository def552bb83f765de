//! The one entry point ([`hearth_train::start`]) that the CLI and the page both call: it tells
//! what the data holds before the model is built, and `train.fit` adapts a job that does not fit
//! the limits it is given (the CLI passes the machine's, the page the WebGPU adapter's) the same
//! way wherever it is started.

use std::ops::ControlFlow;
use std::path::PathBuf;

use burn::tensor::Device;
use hearth_train::plan::{FitMode, Limits};
use hearth_train::run::FileSizes;
use hearth_train::{Event, JobSpec, RunHooks, RunInputs, RunOutput, TrainError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn minilm() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("assets/all-MiniLM-L6-v2");
    ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(n)).expect("run scripts/fetch-assets.sh");
            (n.to_string(), bytes)
        })
        .collect()
}

fn data() -> Vec<u8> {
    let mut csv = String::from("text,label\n");
    for i in 0..40 {
        let (text, label) = match i % 2 {
            0 => ("what a lovely sunny day in the park with friends", "pos"),
            _ => ("the service was slow and the food arrived cold", "neg"),
        };
        csv.push_str(&format!("{text} {i},{label}\n"));
    }
    csv.into_bytes()
}

fn job(fit: FitMode) -> JobSpec {
    let mut job = JobSpec::parse(
        r#"{"model": {"path": "assets/all-MiniLM-L6-v2"}, "data": {"path": "d.csv", "eval_rows": 8},
            "train": {"steps": 1, "batch_size": 32, "max_length": 32, "eval_every": 0,
                      "checkpoint_every": 0, "gradient_checkpointing": true}}"#,
    )
    .expect("job");
    job.train.fit = fit;
    job
}

fn start(job: &JobSpec, limits: &Limits, events: &mut Vec<Event>) -> Result<RunOutput, TrainError> {
    let inputs = RunInputs {
        model: minilm(),
        data: data(),
        init_adapter: None,
    };
    pollster::block_on(hearth_train::start(
        job,
        inputs,
        &Device::flex().autodiff(),
        limits,
        None,
        RunHooks {
            on_event: &mut |e| {
                events.push(e.clone());
                ControlFlow::Continue(())
            },
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
            stop: None,
        },
    ))
}

/// Limits a little under what the job needs as given, so that only a smaller micro-batch fits
/// (the job already checkpoints, the first thing the planner would turn on).
fn tight_limits() -> Limits {
    let files = minilm();
    let file = |n: &str| &files.iter().find(|(name, _)| name == n).expect("file").1;
    let sizes = FileSizes {
        model: file("model.safetensors").len() as u64,
        data: data().len() as u64,
    };
    let unlimited = Limits::native_cpu(None, "none");
    let plan = hearth_train::run::plan(
        &job(FitMode::Auto),
        file("config.json"),
        file("tokenizer.json"),
        sizes,
        &data(),
        &unlimited,
        1,
    )
    .expect("plan");
    let needed = plan.checked_bytes;
    Limits::native_cpu(Some(needed - needed / 20), "the test")
}

#[test]
fn data_is_described_before_the_model_and_fit_adapts_the_job() {
    let limits = tight_limits();
    let mut events = Vec::new();
    let out = start(&job(FitMode::Auto), &limits, &mut events).expect("runs");
    let Some(Event::Data(data)) = events.first() else {
        panic!("the first event describes the data: {:?}", events.first())
    };
    assert_eq!(
        (data.rows, data.train_rows, data.eval_rows),
        (40, 32, 8),
        "{data:?}"
    );
    assert_eq!(data.labels, ["neg", "pos"]);
    assert_eq!(data.class_counts, [20, 20]);
    let planned = events.iter().find_map(|e| match e {
        Event::Planned {
            changed,
            batch_size,
            gradient_accumulation,
            ..
        } => Some((*changed, *batch_size, *gradient_accumulation)),
        _ => None,
    });
    let (changed, batch, accumulation) = planned.expect("a planned event");
    assert!(
        changed,
        "the job did not fit and train.fit = auto changed it"
    );
    assert!(batch < 32, "micro-batch {batch}");
    assert_eq!(batch * accumulation, 32, "the effective batch is kept");
    // The run and its record use the adapted job.
    assert_eq!(out.job.train.batch_size, batch);
    assert!(
        out.files
            .record
            .contains(&format!("\"batch_size\": {batch}"))
    );

    // train.fit = check refuses the same job under the same limits, naming the setting.
    let err = start(&job(FitMode::Check), &limits, &mut Vec::new()).expect_err("refused");
    assert!(err.to_string().contains("train.batch_size"), "{err}");
}

/// The tiny random BERT (`cargo xtask tiny-bert`), without dropout anywhere.
fn tiny_bert() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("assets/tiny-bert");
    ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(n)).expect("run cargo xtask tiny-bert");
            (n.to_string(), bytes)
        })
        .collect()
}

/// 48 texts of 1 to 47 words: nearly every batch has another longest row.
fn lengths_data() -> Vec<u8> {
    let words = [
        "the", "food", "was", "nice", "and", "awful", "train", "today",
    ];
    let mut csv = String::from("text,label\n");
    for i in 0..48usize {
        let n = 1 + (i * 29) % 47;
        let text: Vec<&str> = (0..n).map(|k| words[(i + k * 3) % words.len()]).collect();
        csv.push_str(&format!("{},{}\n", text.join(" "), ["pos", "neg"][i % 2]));
    }
    csv.into_bytes()
}

/// What a tiny-BERT run showed: every step's loss, the share of computed tokens that were
/// padding, and its plan (the bytes checked, whether `train.fit` changed the job, whether the
/// run checkpoints).
struct TinyRun {
    losses: Vec<f32>,
    padding: f64,
    planned: Option<(u64, bool, bool)>,
}

/// A tiny-BERT run over texts of many lengths under `limits`, with `train` settings added.
/// Dropout is on (0.2 on the adapters' inputs and before the head): its masks follow rows and
/// positions, not the padded shape.
fn tiny_start(train: serde_json::Value, limits: &Limits) -> Result<TinyRun, TrainError> {
    let mut job = serde_json::json!({
        "model": {"path": "assets/tiny-bert"}, "data": {"path": "d.csv", "eval_rows": 8},
        "lora": {"lora_dropout": 0.2},
        "train": {"steps": 6, "batch_size": 8, "max_length": 64, "learning_rate": 0.02,
                  "warmup_steps": 0, "checkpoint_every": 0, "head_dropout": 0.2}
    });
    for (k, v) in train.as_object().expect("settings") {
        job["train"][k] = v.clone();
    }
    let job = JobSpec::parse(&job.to_string()).expect("job");
    let mut losses = Vec::new();
    let mut planned = None;
    let out = pollster::block_on(hearth_train::start(
        &job,
        RunInputs {
            model: tiny_bert(),
            data: lengths_data(),
            init_adapter: None,
        },
        &Device::flex().autodiff(),
        limits,
        None,
        RunHooks {
            on_event: &mut |e| {
                match e {
                    Event::Step { loss, .. } => losses.push(*loss),
                    Event::Planned {
                        plan,
                        changed,
                        gradient_checkpointing,
                        ..
                    } => planned = Some((plan.checked_bytes, *changed, *gradient_checkpointing)),
                    _ => {}
                }
                ControlFlow::Continue(())
            },
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
            stop: None,
        },
    ))?;
    let s = &out.summary;
    Ok(TinyRun {
        losses,
        padding: 1.0 - s.real_tokens_per_s / s.padded_tokens_per_s,
        planned,
    })
}

/// [`tiny_start`]'s losses and padding share, the run required to succeed.
fn tiny_run(train: serde_json::Value, limits: &Limits) -> (Vec<f32>, f64) {
    let run = tiny_start(train, limits).expect("runs");
    (run.losses, run.padding)
}

/// `train.gradient_checkpointing` on a classifier recomputes each encoder layer in the backward
/// pass: the same losses as a run without it (dropout on, gradient accumulation, LoRA and full
/// fine-tuning), a smaller plan; and a budget between the two plans makes `train.fit = "check"`
/// refuse the job naming the setting, and `"auto"` turn it on and train as the job that asked.
#[test]
fn gradient_checkpointing_trains_a_classifier_as_a_run_without_it() {
    let cpu = Limits::native_cpu(None, "not checked");
    let mut plans = Vec::new();
    for strategy in ["lora", "full"] {
        let settings = |checkpointing: bool| {
            serde_json::json!({"strategy": strategy, "gradient_accumulation": 2,
                               "gradient_checkpointing": checkpointing, "fit": "off"})
        };
        let plain = tiny_start(settings(false), &cpu).expect("runs");
        let checkpointed = tiny_start(settings(true), &cpu).expect("runs");
        assert_eq!(plain.losses.len(), 6);
        for (step, (a, b)) in plain.losses.iter().zip(&checkpointed.losses).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{strategy}, step {}: {a} without checkpointing, {b} with it",
                step + 1
            );
        }
        let (plain_bytes, _, false) = plain.planned.expect("planned") else {
            panic!("{strategy}: checkpointing on without being asked");
        };
        let (checkpointed_bytes, _, true) = checkpointed.planned.expect("planned") else {
            panic!("{strategy}: checkpointing off");
        };
        assert!(
            checkpointed_bytes < plain_bytes,
            "{strategy}: {checkpointed_bytes} vs {plain_bytes} bytes"
        );
        plans.push((plain_bytes, checkpointed_bytes, checkpointed.losses));
    }

    let (plain, checkpointed, losses) = plans.swap_remove(0);
    let budget = Limits::native_cpu(Some((plain + checkpointed) / 2), "the test's budget");
    let fit = |mode: &str| serde_json::json!({"gradient_accumulation": 2, "fit": mode});
    let refused = tiny_start(fit("check"), &budget)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        refused.contains("does not fit") && refused.contains("train.gradient_checkpointing = true"),
        "{refused}"
    );
    let auto = tiny_start(fit("auto"), &budget).expect("runs");
    assert_eq!(auto.planned.map(|p| (p.1, p.2)), Some((true, true)));
    assert_eq!(auto.losses, losses);
}

/// `train.pad_to_multiple_of` pads batches further and changes no loss, dropout included:
/// padded positions are masked out of attention, pooling and the loss. Its default is the device's: buckets of 16
/// on a GPU (the limits' runtime says where the run is), none on the CPU.
#[test]
fn padding_to_buckets_changes_no_loss_and_is_on_by_default_on_a_gpu() {
    let cpu = Limits::native_cpu(None, "not checked");
    let gpu = Limits {
        runtime: hearth_train::plan::Runtime::NativeGpu,
        ..Limits::native_cpu(None, "not checked")
    };
    let (longest, longest_padding) = tiny_run(serde_json::json!({}), &cpu);
    assert_eq!(longest.len(), 6);
    let mut bucketed = Vec::new();
    for multiple in [16, 32] {
        let (losses, padding) = tiny_run(serde_json::json!({"pad_to_multiple_of": multiple}), &cpu);
        assert!(
            padding > longest_padding + 0.01 * (multiple / 8) as f64,
            "buckets of {multiple} pad more: {padding} vs {longest_padding}"
        );
        for (step, (a, b)) in longest.iter().zip(&losses).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "step {}: {a} padded to the longest row, {b} padded to a multiple of {multiple}",
                step + 1
            );
        }
        bucketed.push((losses, padding));
    }
    let (bucketed, bucket_padding) = bucketed.swap_remove(0);
    // On a GPU the default is the bucket of 16; 1 turns it off there.
    let (on_gpu, gpu_padding) = tiny_run(serde_json::json!({}), &gpu);
    // (The share is computed from rates: equal up to rounding.)
    assert!((gpu_padding - bucket_padding).abs() < 1e-9, "{gpu_padding}");
    assert_eq!(on_gpu, bucketed);
    let (_, off_padding) = tiny_run(serde_json::json!({"pad_to_multiple_of": 1}), &gpu);
    assert!(
        (off_padding - longest_padding).abs() < 1e-9,
        "{off_padding}"
    );
}

/// `train.group_by_length` puts rows of similar length together: less padding, the same run
/// every time.
#[test]
fn grouping_by_length_pads_less_and_stays_deterministic() {
    let cpu = Limits::native_cpu(None, "not checked");
    // 40 training rows in batches of 2: mega-batches of 5 batches (transformers' rule).
    let (_, seeded) = tiny_run(serde_json::json!({"batch_size": 2, "steps": 20}), &cpu);
    let group = serde_json::json!({"group_by_length": true, "batch_size": 2, "steps": 20});
    let (losses, grouped) = tiny_run(group.clone(), &cpu);
    assert!(grouped < seeded / 2.0, "padding {grouped} vs {seeded}");
    assert_eq!(tiny_run(group, &cpu).0, losses);
}

/// A bucket never pads beyond the max length: what lies past it would be positions the job
/// did not ask for (and the model may not have).
#[test]
fn a_bucket_stops_at_the_max_length() {
    let files = tiny_bert();
    let tokenizer = &files
        .iter()
        .find(|(n, _)| n == "tokenizer.json")
        .expect("tokenizer")
        .1;
    let tok = hearth_models::tokenizer::TextTokenizer::from_bytes(tokenizer, 20)
        .expect("tokenizer")
        .with_pad_to_multiple_of(16);
    let short = tok.encode_batch(&["the food"]).expect("encodes");
    assert_eq!((short.seq_len, short.real_tokens()), (16, 4));
    let long = "the food was nice ".repeat(10);
    let both = tok.encode_batch(&["the food", &long]).expect("encodes");
    assert_eq!(both.seq_len, 20, "not 32");
    assert_eq!(both.real_tokens(), 4 + 20);
    assert_eq!(both.input_ids.len(), 2 * 20);
}
