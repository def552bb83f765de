//! `hearth plan`, and the plan `hearth train` prints before it starts: the job's memory
//! estimate against this machine's limits (`hearth_train::plan` does the arithmetic; this
//! module only gathers the sizes and the limits the library cannot see).

use std::path::Path;

use anyhow::{Context as _, Result};
use hearth_models::tokenizer::TokenCounter;
use hearth_train::plan::{self, Context, Limits, Plan, Runtime};
use hearth_train::{JobSpec, Task};

use crate::args::{DeviceChoice, PlanArgs};

/// `MemAvailable` of /proc/meminfo in bytes: what a new process can use without swapping.
fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The limits of `device` on this machine; `memory_mib` overrides the memory budget.
pub fn limits(device: DeviceChoice, memory_mib: Option<u64>) -> Limits {
    let given = memory_mib.map(|m| m << 20);
    match device {
        DeviceChoice::Cpu | DeviceChoice::Ndarray => match given {
            Some(bytes) => Limits::native_cpu(Some(bytes), "--memory-limit"),
            None => Limits::native_cpu(mem_available(), "MemAvailable in /proc/meminfo"),
        },
        DeviceChoice::Wgpu => Limits {
            runtime: Runtime::NativeGpu,
            memory_bytes: given,
            memory_source: Some(if given.is_some() {
                "--memory-limit".into()
            } else {
                "wgpu does not report GPU memory; give --memory-limit MiB".into()
            }),
            max_buffer_size: None,
            max_storage_binding: None,
            wasm_heap_bytes: None,
        },
    }
}

/// The sizes the planner needs from the job's files: the head's outputs, the model file, the
/// data and the token length of every training row.
pub fn context(job: &JobSpec) -> Result<(Vec<u8>, Context)> {
    let model = Path::new(&job.model.path);
    let read = |name: &str| {
        let path = model.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let config = read("config.json")?;
    let weights = model.join("model.safetensors");
    let model_file_bytes = std::fs::metadata(&weights)
        .with_context(|| format!("reading {}", weights.display()))?
        .len();
    let data_file_bytes = std::fs::metadata(&job.data.path)
        .with_context(|| format!("cannot read {}", job.data.path))?
        .len();
    let data = crate::commands::load_split(job)?;
    let counter = TokenCounter::from_bytes(&read("tokenizer.json")?)?;
    let row_lengths: Vec<usize> = data
        .train
        .texts
        .iter()
        .map(|t| counter.count(t).0)
        .collect();
    let num_outputs = match job.task {
        Task::Regression { .. } => 1,
        _ => data.dataset.label_names.len(),
    };
    Ok((
        config,
        Context {
            num_outputs,
            model_file_bytes,
            data_file_bytes,
            data_rows: data.dataset.texts.len() as u64,
            longest_row: row_lengths.iter().copied().max(),
            row_lengths,
            has_pooler: None,
        },
    ))
}

/// The plan of `job` on `device`.
pub fn plan_job(job: &JobSpec, device: DeviceChoice, memory_mib: Option<u64>) -> Result<Plan> {
    if job.task.is_sft() {
        anyhow::bail!(
            "the memory planner models BERT-family classifiers; it has no estimate for chat-model \
             (SFT) jobs yet (docs/BENCHMARKS.md lists the peak memory measured for SmolLM2-135M)"
        );
    }
    let (config, ctx) = context(job)?;
    Ok(plan::plan(job, &config, &limits(device, memory_mib), &ctx)?)
}

/// Plans `job` before a run: prints a summary, and returns the job to run (adapted with
/// `train.fit = "auto"`) or the refusal naming the settings to change.
pub fn before_training(
    job: &JobSpec,
    device: DeviceChoice,
    memory_mib: Option<u64>,
) -> Result<JobSpec> {
    let plan = plan_job(job, device, memory_mib)?;
    let e = &plan.estimate;
    eprintln!(
        "memory plan: about {} for micro-batch {} × {} tokens ({} checked{})",
        plan::mib(e.total_bytes()),
        e.batch_size,
        e.seq_len,
        plan::mib(plan.checked_bytes),
        plan.limits
            .memory_bytes
            .map(|m| format!(" against {}", plan::mib(m)))
            .unwrap_or_default()
    );
    if !plan.fits {
        eprint!("{}", plan::render(&plan));
    }
    let settled = plan::settle(job, &plan)?;
    if settled != *job {
        eprintln!(
            "train.fit = \"auto\": batch_size {}, gradient_accumulation {}, max_length {}",
            settled.train.batch_size, settled.train.gradient_accumulation, settled.train.max_length
        );
    } else if !plan.fits {
        eprintln!("warning: train.fit = \"off\": running a job the planner expects not to fit");
    }
    Ok(settled)
}

/// `hearth plan`.
pub fn run(args: &PlanArgs) -> Result<()> {
    let job = args.train.job()?;
    let plan = plan_job(&job, args.train.run.device, args.train.memory_limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan::render(&plan));
    }
    Ok(())
}
