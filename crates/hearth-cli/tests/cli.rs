//! The `hearth` binary end to end: what a user types, what they see, and that bad input ends
//! with a message and exit code 1 rather than a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("hearth runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const MODEL: &str = "assets/all-MiniLM-L6-v2";

/// A user error: exit code 1, an `error:` line, no panic.
fn assert_user_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("error:"), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn help_describes_every_command() {
    for cmd in ["train", "eval", "predict", "bench"] {
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

#[test]
fn wrong_column_names_what_the_file_has() {
    let dir = temp_dir("column");
    let csv = write(
        &dir,
        "d.csv",
        b"sentiment,text\npositive,nice\nnegative,bad\n",
    );
    let out = hearth(&[
        "train",
        "--model",
        MODEL,
        "--data",
        &csv,
        "--label-column",
        "label",
    ]);
    assert_user_error(&out, "no column named `label`");
    assert_user_error(&out, "sentiment, text");
}

#[test]
fn empty_single_class_and_missing_label_files_are_refused() {
    let dir = temp_dir("bad-data");
    let empty = write(&dir, "empty.csv", b"");
    assert_user_error(
        &hearth(&["train", "--model", MODEL, "--data", &empty]),
        "no data rows",
    );
    let one = write(&dir, "one.csv", b"text,label\na,x\nb,x\nc,x\n");
    assert_user_error(
        &hearth(&["train", "--model", MODEL, "--data", &one]),
        "only one class",
    );
    let hole = write(
        &dir,
        "hole.jsonl",
        b"{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"}\n",
    );
    assert_user_error(
        &hearth(&["train", "--model", MODEL, "--data", &hole]),
        "line 2",
    );
}

#[test]
fn bad_job_settings_name_the_setting() {
    let dir = temp_dir("job");
    let job = write(
        &dir,
        "job.toml",
        b"[model]\npath='m'\n[data]\npath='d'\n[train]\nlearning_rate=-1\n",
    );
    assert_user_error(&hearth(&["train", "--job", &job]), "train.learning_rate");
    let job = write(
        &dir,
        "typo.toml",
        b"[model]\npath='m'\n[data]\npath='d'\n[lora]\nrank=4\n",
    );
    assert_user_error(&hearth(&["train", "--job", &job]), "rank");
    let csv = write(&dir, "d.csv", b"text,label\ngood,1\nbad,0\n");
    assert_user_error(
        &hearth(&[
            "train",
            "--model",
            MODEL,
            "--data",
            &csv,
            "--targets",
            "qkv",
        ]),
        "target module `qkv` matches no linear layer",
    );
    assert_user_error(
        &hearth(&["train", "--model", MODEL, "--data", "nowhere.csv"]),
        "cannot read nowhere.csv",
    );
}

#[test]
fn missing_model_files_are_named() {
    let dir = temp_dir("nomodel");
    let csv = write(&dir, "d.csv", b"text,label\ngood,1\nbad,0\n");
    let out = hearth(&["train", "--model", &dir.to_string_lossy(), "--data", &csv]);
    assert_user_error(&out, "config.json");
}

#[test]
fn train_predict_eval_round_trip_with_latin1_data() {
    let dir = temp_dir("roundtrip");
    // 0xE9 is 'é' in latin-1 and invalid UTF-8: two of these rows need the fallback.
    let mut csv = b"text,label\n".to_vec();
    for i in 0..12 {
        let row: &[u8] = match i % 3 {
            0 => b"caf\xe9 was lovely,pos\n",
            1 => b"terrible service,neg\n",
            _ => b"really great day,pos\n",
        };
        csv.extend_from_slice(row);
    }
    let data = write(&dir, "d.csv", &csv);
    let out_dir = dir.join("adapter");
    let out = hearth(&[
        "train",
        "--model",
        MODEL,
        "--data",
        &data,
        "--eval-rows",
        "4",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--max-length",
        "16",
        "--warmup",
        "1",
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("4 rows hold bytes that are not UTF-8, read as latin-1"),
        "{err}"
    );
    assert!(err.contains("accuracy"), "{err}");
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "hearth_run.json",
    ] {
        assert!(out_dir.join(f).exists(), "{f} written");
    }
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.join("adapter_config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "SEQ_CLS");
    assert_eq!(config["r"], 8);

    let out = hearth(&[
        "predict",
        "--adapter",
        &out_dir.to_string_lossy(),
        "what a lovely café",
        "awful",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let label = line["label"].as_str().expect("label");
        assert!(label == "pos" || label == "neg");
        let total: f64 = ["pos", "neg"]
            .iter()
            .map(|l| line["scores"][l].as_f64().expect("score"))
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "probabilities sum to 1: {line}");
    }

    let out = hearth(&["eval", "--adapter", &out_dir.to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("eval prints metrics as JSON");
    assert_eq!(metrics["n"], 4, "the held-out split of the training job");

    // Labels the adapter never saw are refused by name.
    let other = write(&dir, "other.csv", b"text,label\nhm,maybe\nok,pos\n");
    let out = hearth(&[
        "eval",
        "--adapter",
        &out_dir.to_string_lossy(),
        "--data",
        &other,
    ]);
    assert_user_error(&out, "label `maybe`");
}
