//! What Hearth promises about the user's files: an output directory belongs to one run, no
//! command writes over its own input or the base model, a failed write leaves nothing behind,
//! Ctrl-C keeps the work done, and the run record finds its files from anywhere.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    TINY, assert_user_error, copy_dir, hearth, max_adapter_difference, root, stderr, temp_dir,
    write,
};

/// A short run of the tiny BERT on the browser tests' 97 rows, into `out`.
fn tiny_job(out: &Path, steps: usize, extra: &[&str]) -> Vec<String> {
    let data = root().join("tests/browser/tiny.csv");
    let mut args: Vec<String> = [
        "train",
        "--model",
        TINY,
        "--data",
        &data.to_string_lossy(),
        "--steps",
        &steps.to_string(),
        "--batch-size",
        "4",
        "--max-length",
        "16",
        "--eval-rows",
        "8",
        "--warmup",
        "0",
        "--out",
        &out.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !extra.contains(&"--lr") {
        args.extend(["--lr".into(), "1e-3".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hearth(&args)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn record(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("hearth_run.json")).expect("record"))
        .expect("json")
}

/// A new job in a directory that holds another run is refused, and `--overwrite` replaces only
/// that run's files: the user's own file beside them stays.
#[test]
fn a_new_job_does_not_take_over_another_runs_directory() {
    let dir = temp_dir("owned");
    let out = dir.join("run");
    let first = run(&tiny_job(&out, 2, &["--checkpoint-every", "1"]));
    assert!(first.status.success(), "{}", stderr(&first));
    let adapter = std::fs::read(out.join("adapter_model.safetensors")).expect("adapter");
    write(&out, "notes.txt", b"mine");

    // Another job (another learning rate) into the same directory.
    let other = tiny_job(&out, 3, &["--lr", "5e-4"]);
    let refused = run(&other);
    assert_user_error(&refused, "holds another run's files");
    assert_user_error(&refused, "--resume");
    assert_user_error(&refused, "--overwrite");
    assert_eq!(
        std::fs::read(out.join("adapter_model.safetensors")).expect("adapter"),
        adapter,
        "a refused run changes nothing"
    );

    let mut overwrite = other.clone();
    overwrite.push("--overwrite".into());
    let replaced = run(&overwrite);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert!(
        stderr(&replaced).contains("removed the previous run's files"),
        "{}",
        stderr(&replaced)
    );
    assert_eq!(
        std::fs::read(out.join("notes.txt")).expect("notes"),
        b"mine"
    );
    assert_eq!(record(&out)["job"]["train"]["learning_rate"], 5e-4);
    assert_eq!(
        names(&out.join("checkpoints")),
        ["step-000003"],
        "only the new run's checkpoints"
    );
    assert!(
        !out.join("hearth.lock").exists(),
        "the lock goes with the run"
    );

    // A file a run would write that is not from a Hearth run is never replaced.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).expect("dir");
    write(&foreign, "adapter_model.safetensors", b"someone else's");
    let args = tiny_job(&foreign, 1, &["--overwrite"]);
    assert_user_error(&run(&args), "not from a Hearth run");
    assert_eq!(
        std::fs::read(foreign.join("adapter_model.safetensors")).expect("kept"),
        b"someone else's"
    );
}

/// This host's name, as `hostname` says it.
#[cfg(target_os = "linux")]
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

/// A lock held by a live process (or one of another host) refuses with its PID and host; one
/// left by a process that is gone is taken over with a note.
#[cfg(target_os = "linux")]
#[test]
fn a_live_lock_refuses_and_a_dead_ones_is_taken_over() {
    let dir = temp_dir("lock");
    let out = dir.join("run");
    std::fs::create_dir_all(&out).expect("dir");
    let lock = |pid: u32, host: &str| {
        let text = serde_json::json!({ "pid": pid, "host": host }).to_string();
        write(&out, "hearth.lock", text.as_bytes());
    };
    let job = tiny_job(&out, 1, &[]);

    lock(std::process::id(), &host());
    let live = run(&job);
    assert_user_error(&live, "in use by another hearth run");
    assert_user_error(
        &live,
        &format!("PID {} on host {}", std::process::id(), host()),
    );
    assert!(!out.join("split.json").exists(), "nothing written");

    lock(1, "another-machine");
    assert_user_error(&run(&job), "PID 1 on host another-machine");

    // A process that has exited: its PID names no process now.
    let mut gone = Command::new("true").spawn().expect("true runs");
    let pid = gone.id();
    gone.wait().expect("exits");
    lock(pid, &host());
    let taken = run(&job);
    let err = stderr(&taken);
    assert!(taken.status.success(), "{err}");
    assert!(
        err.contains(&format!("PID {pid}")) && err.contains("no longer running"),
        "{err}"
    );
    assert!(out.join("adapter_model.safetensors").exists());
    assert!(!out.join("hearth.lock").exists());
}

/// Pruning keeps this run's newest checkpoints and touches neither another run's checkpoint
/// nor the temporary directory of a process that is still running.
#[test]
fn pruning_touches_only_the_runs_own_checkpoints() {
    let dir = temp_dir("prune");
    let other = dir.join("other");
    let done = run(&tiny_job(&other, 1, &["--lr", "5e-4"]));
    assert!(done.status.success(), "{}", stderr(&done));
    let out = dir.join("run");
    let done = run(&tiny_job(
        &out,
        3,
        &["--checkpoint-every", "1", "--keep-checkpoints", "1"],
    ));
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(names(&out.join("checkpoints")), ["step-000003"]);

    // Another run's (older) checkpoint, and a live process's checkpoint being written.
    copy_dir(
        &other.join("checkpoints/step-000001"),
        &out.join("checkpoints/step-000001"),
    );
    let live = format!(".step-000002.tmp-{}", std::process::id());
    std::fs::create_dir_all(out.join("checkpoints").join(&live)).expect("temp dir");
    // Resuming the finished run writes its last checkpoint again, and prunes.
    let resumed = hearth(&["train", "--resume", &out.to_string_lossy()]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        names(&out.join("checkpoints")),
        [live.as_str(), "step-000001", "step-000003"]
    );
}

/// A write that fails at its rename leaves no temporary file beside its target.
#[test]
fn a_failed_write_leaves_no_temporary_file() {
    let dir = temp_dir("failed-write");
    let data = write(&dir, "d.csv", b"text,label\ngood,pos\nbad,neg\n");
    // The target is a directory with something in it: the rename onto it fails.
    let target = dir.join("clean.csv");
    std::fs::create_dir_all(target.join("inside")).expect("dir");
    let out = hearth(&["inspect", &data, "--out", &target.to_string_lossy()]);
    assert_user_error(&out, "clean.csv");
    let left: Vec<String> = names(&dir)
        .into_iter()
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// No command writes over its own input: inspect onto its input file, train into the model's
/// folder or onto the data file, merge into the base model's folder, a folder inside it, or a
/// folder whose files are the base's through links. Each refuses with a message and writes nothing.
#[test]
fn no_command_writes_over_its_input_or_the_base_model() {
    let dir = temp_dir("inputs");
    let csv = b"id,text,label\n1,good,pos\n2,bad,neg\n";
    let data = write(&dir, "d.csv", csv);
    let out = hearth(&["inspect", &data, "--clean", "whitespace", "--out", &data]);
    assert_user_error(&out, "an input of this command");
    assert_eq!(std::fs::read(&data).expect("data"), csv);
    // The same file through `..`, and under a second name (a hard link).
    let dotted = format!(
        "{}/../{}/d.csv",
        dir.display(),
        dir.file_name().expect("name").to_string_lossy()
    );
    let out = hearth(&["inspect", &data, "--clean", "whitespace", "--out", &dotted]);
    assert_user_error(&out, "an input of this command");
    let linked = dir.join("also-d.csv");
    std::fs::hard_link(&data, &linked).expect("hard link");
    let out = hearth(&[
        "inspect",
        &data,
        "--clean",
        "whitespace",
        "--out",
        &linked.to_string_lossy(),
    ]);
    assert_user_error(&out, "an input of this command");
    assert_eq!(std::fs::read(&data).expect("data"), csv);
    let split = hearth(&[
        "inspect",
        &data,
        "--split",
        "0.3",
        "0.3",
        "--split-out",
        &data,
    ]);
    assert_user_error(&split, "--split-out");
    assert_eq!(std::fs::read(&data).expect("data"), csv);

    // A copy of the tiny BERT: the real assets are never written to, even by a failing test.
    let base = dir.join("base");
    copy_dir(&root().join(TINY), &base);
    let before: Vec<Vec<u8>> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| std::fs::read(base.join(f)).expect("base file"))
        .collect();
    let unchanged = || {
        for (f, bytes) in ["config.json", "model.safetensors", "tokenizer.json"]
            .iter()
            .zip(&before)
        {
            assert_eq!(
                &std::fs::read(base.join(f)).expect("base file"),
                bytes,
                "{f}"
            );
        }
    };
    let tiny = root().join("tests/browser/tiny.csv");
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "train".to_string(),
            "--model".into(),
            base.to_string_lossy().into_owned(),
            "--data".into(),
            tiny.to_string_lossy().into_owned(),
            "--steps".into(),
            "1".into(),
            "--max-length".into(),
            "16".into(),
            "--out".into(),
            out.to_string_lossy().into_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        run(&args)
    };
    for strategy in ["lora", "full"] {
        assert_user_error(
            &train(&base, &["--strategy", strategy]),
            "input of this command",
        );
    }
    assert_user_error(&train(&tiny, &[]), "an input of this command");
    assert!(!base.join("adapter_model.safetensors").exists());
    unchanged();

    let adapter = dir.join("adapter");
    let trained = train(&adapter, &[]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let merge = |out: &Path| {
        hearth(&[
            "merge",
            "--adapter",
            &adapter.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ])
    };
    assert_user_error(&merge(&base), "input of this command");
    assert_user_error(&merge(&adapter), "input of this command");
    assert_user_error(&merge(&base.join("merged")), "input of this command");
    assert!(!base.join("merged").exists());
    #[cfg(unix)]
    {
        // A folder holding the base's files through links.
        let linked = dir.join("linked");
        std::fs::create_dir_all(&linked).expect("dir");
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            std::os::unix::fs::symlink(base.join(f), linked.join(f)).expect("link");
        }
        assert_user_error(&merge(&linked), "an input of this command");
    }
    unchanged();
    let merged = merge(&dir.join("merged"));
    assert!(merged.status.success(), "{}", stderr(&merged));
}

/// `hearth inspect --clean … --out` keeps every column of the input, in place, for CSV, TSV
/// and JSONL.
#[test]
fn cleaned_output_keeps_every_column() {
    let dir = temp_dir("clean-columns");
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "d.csv",
            b"id,text,label,source\n7,\"  so   good \",pos,web\n8,   ,neg,app\n9,bad,neg,\"a, b\"\n",
            "id,text,label,source\n7,so good,pos,web\n9,bad,neg,\"a, b\"\n",
        ),
        (
            "d.tsv",
            b"text\tid\tlabel\n  so   good \t7\tpos\n \t8\tneg\nbad\t9\tneg\n",
            "text\tid\tlabel\nso good\t7\tpos\nbad\t9\tneg\n",
        ),
        (
            "d.jsonl",
            b"{\"id\": 7, \"text\": \"  so   good \", \"label\": \"pos\", \"meta\": {\"b\": 1, \"a\": [true]}}\n{\"id\": 8, \"text\": \" \", \"label\": \"neg\"}\n{\"id\": 9, \"text\": \"bad\", \"label\": \"neg\"}\n",
            "{\"id\":7,\"text\":\"so good\",\"label\":\"pos\",\"meta\":{\"a\":[true],\"b\":1}}\n{\"id\": 9, \"text\": \"bad\", \"label\": \"neg\"}\n",
        ),
    ];
    for (name, input, expected) in cases {
        let data = write(&dir, name, input);
        let out = dir.join(format!("clean-{name}"));
        let done = hearth(&[
            "inspect",
            &data,
            "--text-column",
            "text",
            "--label-column",
            "label",
            "--clean",
            "whitespace,drop-empty",
            "--out",
            &out.to_string_lossy(),
        ]);
        assert!(done.status.success(), "{name}: {}", stderr(&done));
        assert_eq!(
            std::fs::read_to_string(&out).expect("cleaned"),
            expected,
            "{name}"
        );
    }
}

/// `--threads` past the machine's cores is capped to them, with a warning.
#[test]
fn too_many_threads_are_capped_to_the_machine() {
    let dir = temp_dir("threads");
    let mut args = tiny_job(&dir.join("run"), 1, &["--threads", "100000"]);
    args.push("--jsonl".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(&args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hearth starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hearth --threads 100000 did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("--threads 100000 is more than the"), "{err}");
}

/// The run record holds absolute paths: `--resume` from another working directory finds the
/// model and data that were given relative to the first one.
#[test]
fn a_run_resumes_from_another_working_directory() {
    let dir = temp_dir("cwd");
    let out = dir.join("run");
    // Relative to the repository root, where `hearth` runs.
    let data = "tests/browser/tiny.csv";
    let args = [
        "train",
        "--model",
        TINY,
        "--data",
        data,
        "--steps",
        "2",
        "--max-length",
        "16",
        "--checkpoint-every",
        "1",
        "--out",
        &out.to_string_lossy(),
    ];
    let done = hearth(&args);
    assert!(done.status.success(), "{}", stderr(&done));
    let job = &record(&out)["job"];
    for (path, given) in [(&job["data"]["path"], data), (&job["model"]["path"], TINY)] {
        let path = PathBuf::from(path.as_str().expect("a path"));
        assert!(path.is_absolute(), "{path:?}");
        assert_eq!(path, root().join(given).canonicalize().expect("exists"));
    }
    // Continue from the first checkpoint, from another directory.
    std::fs::remove_dir_all(out.join("checkpoints/step-000002")).expect("remove");
    let resumed = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["train", "--resume", &out.to_string_lossy()])
        .current_dir(&dir)
        .output()
        .expect("hearth runs");
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("step 1"), "{}", stderr(&resumed));
}

/// Ctrl-C during training: the step finishes, a checkpoint is written, the message says how to
/// resume and the exit code is 130; meanwhile the directory is refused to a second run by the
/// first run's PID; `--resume` then ends where an uninterrupted run ends.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_after_the_step_with_a_checkpoint_to_resume_from() {
    let dir = temp_dir("sigint");
    // More steps than the step events a pipe holds (about 155 bytes each, 64 KiB): the run
    // cannot finish before the signal, since nothing reads its output until then.
    let steps = 1000;
    let whole = dir.join("whole");
    let done = run(&tiny_job(&whole, steps, &["--lora-dropout", "0"]));
    assert!(done.status.success(), "{}", stderr(&done));

    let out = dir.join("stopped");
    let mut args = tiny_job(&out, steps, &["--lora-dropout", "0", "--jsonl"]);
    args.push("--checkpoint-every".into());
    args.push("1000".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(&args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hearth starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The first step events: the run is training, and holds its directory. Its output is not
    // read again until the signal is sent.
    let mut seen = 0;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.contains("\"event\":\"step\"") {
            seen += 1;
            if seen == 3 {
                break;
            }
        }
    }
    assert_eq!(seen, 3, "the run printed its steps");
    let second = run(&tiny_job(&out, 5, &["--overwrite"]));
    assert_user_error(
        &second,
        &format!("in use by another hearth run (PID {}", child.id()),
    );

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    // Now drain stdout, so the run can finish its step.
    for line in lines {
        let _ = line;
    }
    let output = child.wait_with_output().expect("exits");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(&format!("hearth train --resume {}", out.display())),
        "{err}"
    );
    let at: usize = err
        .split("stopped at step ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the step in: {err}"));
    assert!((3..steps).contains(&at), "stopped at {at}");
    let checkpoint = out.join(format!("checkpoints/step-{at:06}"));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(checkpoint.join("trainer_state.json")).expect("a checkpoint at that step"),
    )
    .expect("json");
    assert_eq!(state["progress"]["step"], at);
    assert!(
        !out.join("adapter_model.safetensors").exists(),
        "an unfinished run writes no adapter"
    );
    assert!(!out.join("hearth.lock").exists());

    let resumed = hearth(&["train", "--resume", &out.to_string_lossy()]);
    let err = stderr(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains(&format!("step {at}")), "{err}");
    let diff = max_adapter_difference(
        &whole.join("adapter_model.safetensors"),
        &out.join("adapter_model.safetensors"),
    );
    assert!(diff <= 1e-6, "the resumed run differs by {diff}");
}
