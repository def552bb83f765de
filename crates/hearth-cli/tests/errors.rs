//! Bad input ends with a message that names what to change and exit code 1, never a panic.

use crate::util::{MODEL, assert_user_error, hearth, temp_dir, write};

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
    let stray = hearth(&with(&["--loss", "mae"]));
    assert_user_error(&stray, "--loss sets task.loss");
    assert_user_error(&stray, "task.loss applies to task.kind = regression only");
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
    let alone = hearth(&with(&["--stop-metric", "r2"]));
    assert_user_error(&alone, "--stop-metric sets train.early_stopping.metric");
    assert_user_error(&alone, "train.early_stopping needs train.eval_every");
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
