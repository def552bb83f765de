//! Replicas of the model on threads of one process (`--replicas`): they train as one model
//! with the same global batch, print and write once, and draw the same dropout masks run
//! after run. The tiny BERT (no dropout of its own) on the browser tests' 96 rows.

use std::path::Path;
use std::process::Output;

use crate::util::{TINY, hearth, max_adapter_difference, root, stderr, temp_dir};

fn job(out: &Path, replicas: &str, threads: &str, lora_dropout: &str) -> Vec<String> {
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
        lora_dropout,
        "--head-dropout",
        "0",
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
        .map(|e| (e["step"].as_u64().expect("step"), e["loss"].as_f64().expect("loss")))
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn replicas_train_as_one_model_and_draw_the_same_masks_every_run() {
    let dir = temp_dir("replicas");
    let (one, two) = (dir.join("one"), dir.join("two"));

    // Without dropout, 2 replicas × 4 rows compute what one model computes on 8.
    let single = losses(&run(&job(&one, "1", "1", "0")));
    let parallel = losses(&run(&job(&two, "2", "2", "0")));
    assert_eq!(parallel.len(), 6, "one line per step, not one per replica");
    for ((step, a), (_, b)) in single.iter().zip(&parallel) {
        assert!((a - b).abs() <= 1e-5, "step {step}: {a} vs {b}");
    }
    assert!(
        single.first().map(|s| s.1) != single.last().map(|s| s.1),
        "the run trains"
    );
    assert_eq!(names(&one), names(&two), "replica 0 alone writes");
    let drift = max_adapter_difference(
        &one.join("adapter_model.safetensors"),
        &two.join("adapter_model.safetensors"),
    );
    assert!(drift <= 1e-4, "adapters differ by {drift}");

    // With dropout, each replica draws its own masks from its own stream: two runs agree to
    // the bit, however the threads interleave.
    let masked: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| losses(&run(&job(&dir.join(name), "2", "2", "0.3"))))
        .collect();
    assert_eq!(masked[0], masked[1]);
    assert_ne!(masked[0], parallel, "dropout 0.3 changes the losses");
}
