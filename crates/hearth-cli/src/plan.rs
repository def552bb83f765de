//! `hearth plan`: the job's memory estimate against this machine's limits, and those limits
//! for `hearth train` (`hearth_train::plan` does the arithmetic; this module only gathers the
//! files and the limits the library cannot see).

use std::path::Path;

use anyhow::{Context as _, Result};
use hearth_train::JobSpec;
use hearth_train::plan::{self, Limits, Plan, Runtime};
use hearth_train::run::FileSizes;

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

/// The plan of `job` on `device`, trained by `replicas` models in this process: the model's
/// config and tokenizer, the sizes of its weights and data files, and the data itself (for a
/// chat model, its conversations tokenized).
pub fn plan_job(
    job: &JobSpec,
    device: DeviceChoice,
    memory_mib: Option<u64>,
    replicas: usize,
) -> Result<Plan> {
    if job.task.is_sft() {
        // A chat model: one .gguf file or a model directory; its config and tokenizer only.
        let files = crate::files::read_model(&job.model.path)?;
        let data = std::fs::read(&job.data.path)
            .with_context(|| format!("cannot read {}", job.data.path))?;
        return Ok(hearth_train::run::plan_chat_files(
            job,
            &files,
            &data,
            &limits(device, memory_mib),
            replicas,
        )?);
    }
    let model = Path::new(&job.model.path);
    let read = |name: &str| {
        let path = model.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let size = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let data =
        std::fs::read(&job.data.path).with_context(|| format!("cannot read {}", job.data.path))?;
    let sizes = FileSizes {
        model: size(&model.join("model.safetensors"))?,
        data: data.len() as u64,
    };
    Ok(hearth_train::run::plan(
        job,
        &read("config.json")?,
        &read("tokenizer.json")?,
        sizes,
        &data,
        &limits(device, memory_mib),
        replicas,
    )?)
}

/// `hearth plan`.
pub fn run(args: &PlanArgs) -> Result<()> {
    let job = args.train.job()?;
    // The replicas `hearth train` would start with the same flags (one process).
    let replicas = crate::device::replicas(
        &args.train.run,
        args.train.replicas,
        job.train.batch_size,
        false,
    );
    let plan = plan_job(
        &job,
        args.train.run.device,
        args.train.memory_limit,
        replicas.count,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan::render(&plan));
    }
    Ok(())
}
