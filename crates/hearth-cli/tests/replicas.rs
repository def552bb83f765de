//! Replicas of the model on threads of one process (`--replicas`): they train as one model
//! with the same global batch, dropout included, and print and write once. The tiny BERT on
//! the browser tests' 96 rows.

use std::path::Path;
use std::process::Output;

use crate::util::{TINY, file_names, hearth, max_adapter_difference, root, stderr, temp_dir};

/// The job, with `dropout` on the adapters' inputs and before the head.
fn job(out: &Path, replicas: &str, threads: &str, dropout: &str) -> Vec<String> {
    let data = root().join("tests/browser/tiny.csv");
    [
        "train",
        "--model",
        TINY,
        "--data",
        &data.to_string_lossy(),
        "--eval-rows",
        "16",
        "--steps",
        "6",
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--lr",
        "1e-2",
        "--warmup",
        "0",
        "--lora-dropout",
        dropout,
        "--head-dropout",
        dropout,
        "--replicas",
        replicas,
        "--threads",
        threads,
        "--jsonl",
        "--out",
        &out.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = hearth(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// The loss of every step, in the order printed.
fn losses(out: &Output) -> Vec<(u64, f64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step")
        .map(|e| {
            (
                e["step"].as_u64().expect("step"),
                e["loss"].as_f64().expect("loss"),
            )
        })
        .collect()
}

#[test]
fn replicas_train_as_one_model_with_dropout_on() {
    let dir = temp_dir("replicas");
    let (one, two, plain) = (dir.join("one"), dir.join("two"), dir.join("plain"));

    // 2 replicas × 4 rows compute what one model computes on 8, dropout included: each row's
    // masks follow its place in the batch, not the replica that computes it.
    let single = losses(&run(&job(&one, "1", "1", "0.3")));
    let parallel = losses(&run(&job(&two, "2", "2", "0.3")));
    assert_eq!(parallel.len(), 6, "one line per step, not one per replica");
    for ((step, a), (_, b)) in single.iter().zip(&parallel) {
        assert!((a - b).abs() <= 1e-5, "step {step}: {a} vs {b}");
    }
    assert_eq!(file_names(&one), file_names(&two), "replica 0 alone writes");
    let drift = max_adapter_difference(
        &one.join("adapter_model.safetensors"),
        &two.join("adapter_model.safetensors"),
    );
    assert!(drift <= 1e-4, "adapters differ by {drift}");

    // The masks are real: without dropout the losses differ.
    let without = losses(&run(&job(&plain, "2", "2", "0")));
    let moved = without
        .iter()
        .zip(&parallel)
        .map(|((_, a), (_, b))| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(moved > 1e-2, "dropout 0.3 changed no loss: {without:?}");
}
