//! `hearth`: the native front end. Glue only: it parses flags into a job, picks the backend,
//! reads files, and draws the events the training crate emits. Everything else lives in the
//! library crates, which the browser build shares.

mod args;
mod bench;
mod commands;
mod device;
mod files;
mod generate;
mod inspect;
mod plan;
mod ranks;
mod run_dir;
mod stop;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = args::Cli::parse();
    let ranks = match ranks::Ranks::from_env() {
        Ok(ranks) => ranks,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        args::Command::Train(a) => commands::train(&a, &ranks),
        _ if ranks.is_parallel() => {
            if ranks.is_leader() {
                eprintln!(
                    "error: only `hearth train` runs data-parallel; run this command in one \
                     process"
                );
            }
            return ExitCode::FAILURE;
        }
        args::Command::Eval(a) => commands::eval(&a),
        args::Command::Predict(a) => commands::predict(&a),
        args::Command::Merge(a) => commands::merge(&a),
        args::Command::Inspect(a) => inspect::run(&a),
        args::Command::Bench(a) => bench::run(&a),
        args::Command::Plan(a) => plan::run(&a),
        args::Command::Generate(a) => generate::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<stop::Interrupted>().is_some() => {
            eprintln!("{err}");
            ExitCode::from(stop::EXIT_CODE)
        }
        Err(err) if ranks.is_parallel() => {
            // The other ranks may be waiting for this one in a collective: end them all.
            eprintln!("error ({}): {err:#}", ranks.describe());
            ranks.abort(1)
        }
        Err(err) => {
            // The whole chain: "in job file x: job spec: train.batch_size must be ...".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Has glibc's allocator keep memory it frees for reuse instead of returning it to the kernel
/// at once. A training step allocates and frees the same large activation buffers every step;
/// by default each is a fresh `mmap` (or a trimmed heap) whose pages the kernel must fault in
/// and zero again, which `perf` showed as about a tenth of a CPU step (page faults,
/// `clear_page`, `munmap`). Measured on the slice job of docs/BENCHMARKS.md: system CPU time
/// halved, peak RSS 3% higher.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const LIMIT: libc::c_int = 1 << 30;
        // SAFETY: `mallopt` only sets allocator parameters; it is called before any other
        // thread exists. A refusal (return value 0) leaves the defaults, which are correct.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
            libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
        }
    }
}
