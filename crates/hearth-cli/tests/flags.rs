//! The flags: every command's help, and training settings given as flags reaching the job and the run.

use crate::util::{assert_user_error, crash_job, hearth, stderr, temp_dir};

#[test]
fn help_describes_every_command() {
    for cmd in ["train", "eval", "predict", "merge", "bench"] {
        let out = hearth(&[cmd, "--help"]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: hearth"), "{text}");
    }
    let text = String::from_utf8_lossy(&hearth(&["train", "--help"]).stdout).into_owned();
    for flag in [
        "--job",
        "--model",
        "--data",
        "--targets",
        "--lr",
        "--device",
        "--out",
    ] {
        assert!(text.contains(flag), "train --help lacks {flag}");
    }
}

/// Optimizer, schedule, clipping and weight decay from flags: the job records them, the run's
/// learning rates follow the cosine schedule, and impossible combinations are named.
#[test]
fn training_controls_come_from_flags() {
    let dir = temp_dir("controls");
    let mut args = crash_job(&dir);
    let at = args.iter().position(|a| a == "--steps").expect("--steps");
    args[at + 1] = "6".into();
    let at = args.iter().position(|a| a == "--warmup").expect("--warmup");
    args[at + 1] = "2".into();
    let out_dir = dir.join("out").to_string_lossy().into_owned();
    let mut run: Vec<&str> = args.iter().map(String::as_str).collect();
    run.extend([
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--nesterov",
        "--weight-decay",
        "0.01",
        "--schedule",
        "cosine",
        "--clip-norm",
        "1.0",
        "--label-smoothing",
        "0.1",
        "--balanced",
        "--jsonl",
        "--out",
        &out_dir,
    ]);
    let mut print = run.clone();
    print.push("--print-job");
    let job: serde_json::Value =
        serde_json::from_slice(&hearth(&print).stdout).expect("the job as JSON");
    assert_eq!(
        job["train"]["optimizer"],
        serde_json::json!({"name": "sgd", "momentum": 0.9, "nesterov": true})
    );
    assert_eq!(job["train"]["schedule"], "cosine");
    assert_eq!(job["train"]["clip"]["max_norm"], 1.0);
    assert_eq!(job["train"]["label_smoothing"], 0.1);
    assert_eq!(job["train"]["class_weights"], "balanced");
    let out = hearth(&run);
    assert!(out.status.success(), "{}", stderr(&out));
    let lrs: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step")
        .map(|e| e["learning_rate"].as_f64().expect("lr"))
        .collect();
    let expected: Vec<f64> = (0..6)
        .map(|i: usize| {
            if i < 2 {
                1e-3 * (i + 1) as f64 / 2.0
            } else {
                1e-3 * 0.5 * (1.0 + (std::f64::consts::PI * (i - 2) as f64 / 4.0).cos())
            }
        })
        .collect();
    assert_eq!(lrs.len(), 6);
    for (a, b) in lrs.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-12, "{lrs:?} vs {expected:?}");
    }
    let mut bad: Vec<&str> = args.iter().map(String::as_str).collect();
    bad.extend(["--optimizer", "sgd", "--nesterov"]);
    assert_user_error(&hearth(&bad), "nesterov needs a momentum");
    let mut bad: Vec<&str> = args.iter().map(String::as_str).collect();
    bad.extend(["--clip-norm=-1"]);
    assert_user_error(
        &hearth(&bad),
        "train.clip.max_norm must be a positive number",
    );
}
