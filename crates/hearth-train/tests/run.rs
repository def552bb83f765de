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
                      "checkpoint_every": 0}}"#,
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

/// Limits a little under what the job needs as given, so that only a smaller micro-batch fits.
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
