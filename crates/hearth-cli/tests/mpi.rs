//! Data-parallel training under `mpirun` (the `mpi` feature): two ranks train as one process
//! with their global batch, only rank 0 writes, checkpoints move between rank counts, and a
//! rank that dies ends the job with its last checkpoint intact. MiniLM on the browser tests'
//! 96 rows, one thread per rank, dropout off.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{MODEL, copy_dir, file_names, max_adapter_difference, root, stderr, temp_dir};

/// `mpirun -np 2 hearth …` on this machine (as root in CI containers, more ranks than cores).
fn mpirun(args: &[String]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .current_dir(root());
    cmd
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn run(mut cmd: Command) -> Output {
    cmd.output()
        .expect("mpirun runs (Debian: openmpi-bin; .ci/run installs it)")
}

fn hearth(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("hearth runs")
}

/// MiniLM with its own dropout off (the config's hidden and attention dropout), so that ranks
/// drawing different masks cannot hide a difference: a copy of its directory with the config
/// changed, beside the test's files.
fn model_without_dropout() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-cli-mpi-model-{}", std::process::id()));
    if dir.join("config.json").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("dir");
    let source = root().join(MODEL);
    for name in ["model.safetensors", "tokenizer.json"] {
        std::os::unix::fs::symlink(source.join(name), dir.join(name)).expect("link");
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source.join("config.json")).expect("config"))
            .expect("json");
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
    dir
}

/// The job: global batch 8 (4 rows per rank), evaluated on 16 held-out rows.
fn job(out: &Path, steps: usize, checkpoint_every: usize) -> Vec<String> {
    let data = root().join("tests/browser/tiny.csv");
    strings(&[
        "train",
        "--model",
        &model_without_dropout().to_string_lossy(),
        "--data",
        &data.to_string_lossy(),
        "--eval-rows",
        "16",
        "--steps",
        &steps.to_string(),
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--lr",
        "1e-3",
        "--warmup",
        "0",
        "--eval-every",
        "3",
        "--lora-dropout",
        "0",
        "--head-dropout",
        "0",
        "--checkpoint-every",
        &checkpoint_every.to_string(),
        "--keep-checkpoints",
        "10",
        "--threads",
        "1",
        "--jsonl",
        "--out",
        &out.to_string_lossy(),
    ])
}

/// The events a run printed on stdout.
fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn losses(events: &[serde_json::Value]) -> Vec<(u64, f64)> {
    events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| {
            (
                e["step"].as_u64().expect("step"),
                e["loss"].as_f64().expect("loss"),
            )
        })
        .collect()
}

fn assert_same_losses(a: &[(u64, f64)], b: &[(u64, f64)], what: &str) {
    assert_eq!(
        a.iter().map(|s| s.0).collect::<Vec<_>>(),
        b.iter().map(|s| s.0).collect::<Vec<_>>(),
        "{what}: the same steps"
    );
    for ((step, x), (_, y)) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5, "{what}: step {step}: {x} vs {y}");
    }
}

fn adapter(dir: &Path) -> PathBuf {
    dir.join("adapter_model.safetensors")
}

/// Two ranks with a global batch of 8 give one process's losses with batch 8, print once,
/// write one set of files, and their checkpoints resume in one process (and one process's in
/// two ranks) to the uninterrupted run's adapter.
#[test]
fn two_ranks_train_as_one_process_and_checkpoints_move_between_rank_counts() {
    let dir = temp_dir("mpi");
    let (single, parallel) = (dir.join("single"), dir.join("parallel"));

    let one = hearth(&job(&single, 6, 3));
    assert!(one.status.success(), "{}", stderr(&one));
    let two = run(mpirun(&job(&parallel, 6, 3)));
    assert!(two.status.success(), "{}", stderr(&two));

    // Only rank 0 prints: one line per step, not one per rank.
    let (one_events, two_events) = (events(&one), events(&two));
    let (one_losses, two_losses) = (losses(&one_events), losses(&two_events));
    assert_eq!(
        two_losses.len(),
        6,
        "{}",
        String::from_utf8_lossy(&two.stdout)
    );
    assert_same_losses(&one_losses, &two_losses, "2 ranks × 4 rows against 1 × 8");
    let accuracy = |events: &[serde_json::Value]| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e["event"] == "evaluated")
            .map(|e| e["metrics"]["accuracy"].as_f64().expect("accuracy"))
            .collect()
    };
    assert_eq!(accuracy(&one_events), accuracy(&two_events));
    let started = two_events
        .iter()
        .find(|e| e["event"] == "started")
        .expect("started");
    assert_eq!(started["train_rows"], 80);

    // Only rank 0 writes: the same files as one process, and one set of checkpoints.
    assert_eq!(file_names(&single), file_names(&parallel));
    assert_eq!(
        file_names(&parallel.join("checkpoints")),
        ["step-000003", "step-000006"]
    );
    let drift = max_adapter_difference(&adapter(&single), &adapter(&parallel));
    assert!(drift <= 1e-4, "adapters differ by {drift}");

    // The 2-rank checkpoint at step 3 resumes in one process, and one process's in 2 ranks.
    for (from, resumed, launch) in [
        (&parallel, dir.join("to-one"), false),
        (&single, dir.join("to-two"), true),
    ] {
        let at = resumed.join("checkpoints/step-000003");
        std::fs::create_dir_all(&at).expect("dir");
        copy_dir(&from.join("checkpoints/step-000003"), &at);
        let args: Vec<String> =
            strings(&["train", "--resume", &resumed.to_string_lossy(), "--jsonl"]);
        let out = if launch {
            run(mpirun(&args))
        } else {
            hearth(&args)
        };
        assert!(out.status.success(), "{}", stderr(&out));
        let tail: Vec<(u64, f64)> = two_losses[3..].to_vec();
        assert_same_losses(&losses(&events(&out)), &tail, "resumed across rank counts");
        let drift = max_adapter_difference(&adapter(from), &adapter(&resumed));
        assert!(drift <= 1e-4, "resumed adapter differs by {drift}");
    }

    // Each rank reads the checkpoint: a damaged newer one is passed over with a warning that
    // every rank tags with its rank, and the run goes on from the older one.
    let damaged = dir.join("damaged");
    for step in ["step-000003", "step-000004"] {
        std::fs::create_dir_all(damaged.join("checkpoints").join(step)).expect("dir");
    }
    copy_dir(
        &parallel.join("checkpoints/step-000003"),
        &damaged.join("checkpoints/step-000003"),
    );
    let out = run(mpirun(&strings(&[
        "train",
        "--resume",
        &damaged.to_string_lossy(),
        "--jsonl",
    ])));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for rank in 0..2 {
        assert!(
            err.contains(&format!(
                "warning (rank {rank} of 2): checkpoint {}",
                damaged.join("checkpoints/step-000004").display()
            )),
            "{err}"
        );
    }
    assert_same_losses(
        &losses(&events(&out)),
        &two_losses[3..],
        "resumed past a damaged checkpoint",
    );
}

/// The pid of rank `rank` of the job writing to `out` (Open MPI tells each process its rank
/// in its environment).
fn rank_pid(out: &Path, rank: usize) -> Option<u32> {
    let needle = out.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let ours = String::from_utf8_lossy(&cmdline).contains(&needle)
            && String::from_utf8_lossy(&cmdline).starts_with(env!("CARGO_BIN_EXE_hearth"));
        let is_rank = environ
            .split(|&b| b == 0)
            .any(|v| v == format!("OMPI_COMM_WORLD_RANK={rank}").as_bytes());
        (ours && is_rank).then_some(pid)
    })
}

/// Killing one rank ends the whole job with a non-zero exit; the last checkpoint rank 0 wrote
/// is intact and the run resumes from it in one process.
#[test]
fn a_killed_rank_ends_the_job_and_its_checkpoints_stay_intact() {
    let dir = temp_dir("mpi-kill");
    let out = dir.join("run");
    let mut cmd = mpirun(&job(&out, 30, 1));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs");
    let deadline = Instant::now() + Duration::from_secs(300);
    // Wait for rank 0's second checkpoint, then kill rank 1.
    while !out.join("checkpoints/step-000002").exists() {
        assert!(Instant::now() < deadline, "no checkpoint within 300 s");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the job ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let leader = rank_pid(&out, 0).expect("rank 0 is running");
    let pid = rank_pid(&out, 1).expect("rank 1 is running");
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the job went on without rank 1");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "a job with a dead rank exits non-zero");
    // Rank 0 holds the run directory's lock until it is gone: the launcher ends it, but may
    // return before the process is reaped.
    while Path::new(&format!("/proc/{leader}")).exists() {
        assert!(Instant::now() < deadline, "rank 0 outlived the job");
        std::thread::sleep(Duration::from_millis(100));
    }

    let resumed = hearth(&strings(&[
        "train",
        "--resume",
        &out.to_string_lossy(),
        "--jsonl",
    ]));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let steps = losses(&events(&resumed));
    assert_eq!(steps.last().map(|s| s.0), Some(30));
    assert!(
        steps.first().map(|s| s.0) > Some(2),
        "resumed from a later checkpoint"
    );
}

/// A chat model's loss is a mean over the answers' tokens, not over rows: two ranks weigh
/// their shares by their token counts, so they give one process's losses and validation loss
/// with the same global batch (SmolLM2, LoRA dropout off; Llama has no other dropout).
#[test]
fn two_ranks_fine_tune_a_chat_model_as_one_process() {
    let dir = temp_dir("mpi-sft");
    let args = |out: &Path| -> Vec<String> {
        strings(&[
            "train",
            "--task",
            "sft",
            "--model",
            "assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "--data",
            "tests/fixtures/capitals_sft.jsonl",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--max-length",
            "64",
            "--lora-dropout",
            "0",
            "--threads",
            "1",
            "--jsonl",
            "--out",
            &out.to_string_lossy(),
        ])
    };
    let one = hearth(&args(&dir.join("single")));
    assert!(one.status.success(), "{}", stderr(&one));
    let two = run(mpirun(&args(&dir.join("parallel"))));
    assert!(two.status.success(), "{}", stderr(&two));
    let (one, two) = (events(&one), events(&two));
    assert_same_losses(
        &losses(&one),
        &losses(&two),
        "SFT: 2 ranks × 2 rows against 1 × 4",
    );
    let validation = |events: &[serde_json::Value]| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e["event"] == "evaluated")
            .map(|e| e["metrics"]["loss"].as_f64().expect("loss"))
            .collect()
    };
    let (a, b) = (validation(&one), validation(&two));
    assert_eq!(a.len(), 2, "before the first step and at the end");
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5, "validation loss {x} vs {y}");
    }
}
