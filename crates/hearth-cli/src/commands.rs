//! `hearth train`, `eval`, `predict` and `merge`: flags and files in, the library's run and
//! adapters, events and figures out. Glue only: the run itself is [`hearth_train::start`].

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::tokenizer::TextTokenizer;
use hearth_train::plan::Limits;
use hearth_train::{
    AdapterFiles, Assignment, Checkpoint, Collective, DataSummary, Event, Examples, JobSpec,
    Metrics, RunHooks, RunInputs, RunOutput, RunRecord, Targets, ThreadGroup,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{AdapterArgs, EvalArgs, MergeArgs, PredictArgs, TrainArgs};
use crate::ranks::Ranks;
use crate::run_dir::{self, Claim, RunDir};
use crate::stop::{Interrupted, StopRequest};
use crate::{device, files};

/// Loads the job's data from disk and splits it.
pub fn load_split(job: &JobSpec) -> Result<hearth_train::SplitData<hearth_train::Rows>> {
    let dataset = files::read_dataset(job, &job.data.path)?;
    Ok(hearth_train::classify::split(job, dataset)?)
}

fn describe_data(data: &DataSummary) {
    if data.task.is_sft() {
        eprintln!(
            "{} conversations: {} to train on, {} held out",
            data.rows, data.train_rows, data.eval_rows
        );
        return;
    }
    describe_rows(&data.task, &data.labels, data.target_range, &data.report);
}

/// The data line: rows, labels or the targets' range, and how the file was decoded.
fn describe_rows(
    task: &hearth_train::Task,
    labels: &[String],
    target_range: Option<(f32, f32)>,
    r: &hearth_data::LoadReport,
) {
    let targets = match (task, target_range) {
        (_, Some((lo, hi))) => format!("regression targets in [{lo}, {hi}]"),
        (hearth_train::Task::MultiLabel { .. }, _) => {
            format!("multi-label, labels {}", label_list(labels))
        }
        _ => format!("labels {}", label_list(labels)),
    };
    eprintln!(
        "data: {} rows, {targets}, encoding {:?}{}",
        r.rows,
        r.encoding,
        if r.fallback_rows > 0 {
            format!(
                " ({} rows hold bytes that are not UTF-8, read as latin-1)",
                r.fallback_rows
            )
        } else {
            String::new()
        }
    );
    if r.skipped_unlabeled > 0 {
        eprintln!(
            "data: left out {} rows with a blank label (data.skip_unlabeled)",
            r.skipped_unlabeled
        );
    }
}

/// The most classes whose scores and confusion matrix are printed in full.
const FULL_TABLE_CLASSES: usize = 20;
/// The most characters of one label name printed.
const LABEL_CHARS: usize = 40;

/// Label names for a message: quoted, escaped and cut ([`hearth_data::shown`]), at most
/// [`FULL_TABLE_CLASSES`] of them and how many more.
fn label_list(labels: &[String]) -> String {
    let mut shown: Vec<String> = labels
        .iter()
        .take(FULL_TABLE_CLASSES)
        .map(|l| format!("\"{}\"", label(l)))
        .collect();
    if labels.len() > FULL_TABLE_CLASSES {
        shown.push(format!("… ({} labels in all)", labels.len()));
    }
    format!("[{}]", shown.join(", "))
}

/// One label name for a table or message, escaped and cut.
fn label(name: &str) -> String {
    hearth_data::shown(name, LABEL_CHARS)
}

fn describe_plan(
    plan: &hearth_train::plan::Plan,
    changed: bool,
    settled: [usize; 3],
    checkpointing: bool,
) {
    use hearth_train::plan;
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
        eprint!("{}", plan::render(plan));
    }
    if changed {
        let [batch, accumulation, max_length] = settled;
        eprintln!(
            "train.fit = \"auto\": batch_size {batch}, gradient_accumulation {accumulation}, \
             max_length {max_length}{}",
            if checkpointing {
                ", gradient_checkpointing"
            } else {
                ""
            }
        );
    } else if !plan.fits {
        crate::ranks::warn("train.fit = \"off\": running a job the planner expects not to fit");
    }
}

/// Draws events as a progress bar, or prints them as JSON lines.
pub struct EventPrinter {
    bar: Option<ProgressBar>,
}

impl EventPrinter {
    pub fn new(jsonl: bool) -> Self {
        Self {
            bar: (!jsonl).then(ProgressBar::hidden),
        }
    }

    pub fn on_event(&mut self, event: &Event) -> ControlFlow<()> {
        // What the data holds, warnings and the memory plan go to stderr in both modes.
        match event {
            Event::Data(data) => describe_data(data),
            Event::Warning { message } => match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("warning: {message}")),
                None => eprintln!("warning: {message}"),
            },
            Event::Started {
                conversations: Some(cuts),
                ..
            } => {
                for line in cuts.describe() {
                    eprintln!("{line}");
                }
            }
            Event::Planned {
                plan,
                changed,
                batch_size,
                gradient_accumulation,
                max_length,
                gradient_checkpointing,
            } => describe_plan(
                plan,
                *changed,
                [*batch_size, *gradient_accumulation, *max_length],
                *gradient_checkpointing,
            ),
            _ => {}
        }
        let Some(bar) = &self.bar else {
            if let Ok(line) = serde_json::to_string(event) {
                println!("{line}");
            }
            return ControlFlow::Continue(());
        };
        match event {
            Event::Data(_) | Event::Planned { .. } | Event::Warning { .. } => {}
            Event::Started {
                steps,
                resumed_at,
                train_rows,
                eval_rows,
                trainable_params,
                total_params,
                ..
            } => {
                eprintln!(
                    "training {trainable_params} of {total_params} parameters \
                     ({:.2}%) on {train_rows} rows, evaluating on {eval_rows}",
                    100.0 * *trainable_params as f64 / *total_params as f64
                );
                if *resumed_at > 0 {
                    eprintln!("resuming at step {resumed_at} of {steps}");
                }
                bar.set_length(*steps as u64);
                bar.set_position(*resumed_at as u64);
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            Event::Step {
                step,
                loss,
                learning_rate,
                examples_per_s,
                ..
            } => {
                bar.set_position(*step as u64);
                bar.set_message(format!(
                    "loss {loss:.4}  lr {learning_rate:.2e}  {examples_per_s:.1} ex/s"
                ));
            }
            Event::Restored { step, best_step } => {
                bar.println(format!(
                    "early stopping at step {step}: restored the adapter of step {best_step}"
                ));
            }
            Event::Tested { step, metrics } => {
                bar.println(format!("test at step {step}: {}", headline(metrics)));
            }
            Event::Evaluated { step, metrics } => {
                bar.println(format!("eval at step {step}: {}", headline(metrics)));
            }
            Event::Finished(_) => bar.finish_and_clear(),
        }
        ControlFlow::Continue(())
    }
}

fn print_summary(output: &RunOutput) {
    let summary = &output.summary;
    if let Some(report) = &output.sft {
        eprintln!(
            "trained {} steps in {:.1} s: {:.0} tokens/s ({:.0} with padding); loss {:.4} -> {:.4} \
             (mean of last 20); {} of {} conversations cut at max_length, {} dropped",
            summary.steps,
            summary.train_seconds,
            summary.real_tokens_per_s,
            summary.padded_tokens_per_s,
            summary.loss_first,
            summary.loss_last20,
            report.truncated,
            report.conversations,
            report.dropped
        );
        if let (Some(Metrics::LanguageModel(b)), Some(Metrics::LanguageModel(a))) =
            (&output.before, &summary.eval)
        {
            eprintln!(
                "validation loss {:.4} -> {:.4}, perplexity {:.2} -> {:.2} ({} tokens)",
                b.loss, a.loss, b.perplexity, a.perplexity, a.tokens
            );
        }
        return;
    }
    eprintln!(
        "trained {} steps in {:.1} s: {:.1} examples/s, {:.0} padded tokens/s; loss {:.4} -> {:.4} (mean of last 20)",
        summary.steps,
        summary.train_seconds,
        summary.examples_per_s,
        summary.padded_tokens_per_s,
        summary.loss_first,
        summary.loss_last20
    );
    if let Some(m) = &summary.eval {
        print_metrics(m, &output.labels);
    }
}

/// `name value  name value  (n = N)` of a task's main figures.
fn headline(m: &Metrics) -> String {
    let figures: Vec<String> = m
        .headline()
        .iter()
        .map(|(name, v)| format!("{name} {v:.4}"))
        .collect();
    format!("{}  (n = {})", figures.join("  "), m.n())
}

fn print_metrics(m: &Metrics, labels: &[String]) {
    eprintln!("eval: {}", headline(m));
    match m {
        Metrics::Classification(c) => print_classification(c, labels),
        Metrics::MultiLabel(ml) => {
            eprintln!(
                "  Hamming loss {:.4}  subset accuracy {:.4}",
                ml.hamming_loss, ml.subset_accuracy
            );
            print_scores(labels, &ml.per_label);
            for (name, a) in [
                ("macro", &ml.macro_avg),
                ("micro", &ml.micro_avg),
                ("weighted", &ml.weighted_avg),
                ("samples", &ml.samples_avg),
            ] {
                eprintln!(
                    "  {name:>12} {:>9.4} {:>9.4} {:>9.4}",
                    a.precision, a.recall, a.f1
                );
            }
        }
        Metrics::Regression(r) => eprintln!(
            "  MAE {:.4}  MSE {:.4}  RMSE {:.4}  R² {:.4}  Pearson {:.4}",
            r.mae, r.mse, r.rmse, r.r2, r.pearson
        ),
        Metrics::LanguageModel(m) => eprintln!("  {} tokens scored", m.tokens),
    }
}

/// Per-class scores: every class up to [`FULL_TABLE_CLASSES`], else the classes with the
/// lowest recall among those with rows (the ones to look at).
fn print_scores(labels: &[String], scores: &[hearth_train::metrics::ClassScores]) {
    let mut shown: Vec<usize> = (0..scores.len()).collect();
    if scores.len() > FULL_TABLE_CLASSES {
        shown.retain(|&c| scores[c].support > 0);
        shown.sort_by(|&a, &b| {
            scores[a]
                .recall
                .total_cmp(&scores[b].recall)
                .then(a.cmp(&b))
        });
        shown.truncate(FULL_TABLE_CLASSES);
        eprintln!(
            "  {} classes: the {} with the lowest recall",
            scores.len(),
            shown.len()
        );
    }
    eprintln!(
        "  {:>12} {:>9} {:>9} {:>9} {:>8}",
        "", "precision", "recall", "F1", "support"
    );
    for c in shown {
        let s = &scores[c];
        let name = labels
            .get(c)
            .map_or_else(|| format!("class {c}"), |l| label(l));
        eprintln!(
            "  {name:>12} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            s.precision, s.recall, s.f1, s.support
        );
    }
}

fn print_classification(m: &hearth_train::ClassificationMetrics, labels: &[String]) {
    print_scores(labels, &m.per_class);
    for (name, a) in [
        ("macro", &m.macro_avg),
        ("micro", &m.micro_avg),
        ("weighted", &m.weighted_avg),
    ] {
        eprintln!(
            "  {name:>12} {:>9.4} {:>9.4} {:>9.4}",
            a.precision, a.recall, a.f1
        );
    }
    if !m.confusion.is_empty() && m.confusion.len() <= FULL_TABLE_CLASSES {
        eprintln!("confusion (rows: gold, columns: predicted):");
        for (name, row) in labels.iter().zip(&m.confusion) {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:>7}")).collect();
            eprintln!("  {:>12} {}", label(name), cells.join(""));
        }
        return;
    }
    let name = |c: usize| {
        labels
            .get(c)
            .map_or_else(|| format!("class {c}"), |l| label(l))
    };
    if m.confused.is_empty() {
        eprintln!("no confusions: every row was predicted right");
        return;
    }
    eprintln!(
        "most confused ({} classes, too many for the matrix; gold -> predicted: rows):",
        m.per_class.len()
    );
    for pair in m.confused.iter().take(10) {
        eprintln!(
            "  {} -> {}: {}",
            name(pair.gold),
            name(pair.predicted),
            pair.count
        );
    }
}

/// Writes the run's files (the adapter, head or model, and the run record) into `out`, each
/// atomically.
pub fn save(out: &Path, saved: &AdapterFiles) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, bytes) in saved.files() {
        files::write_atomic(&out.join(name), &bytes)?;
    }
    Ok(())
}

/// Where a run writes: its directory, and how it means to use it.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The run directory (`--out`).
    pub dir: &'a Path,
    /// A new run (perhaps replacing another) or one resumed in its own directory.
    pub claim: Claim,
}

/// Reads the job's model, data and initial adapter and runs it on `device` (with autodiff)
/// under `limits`, from the start or from `resume`. With `out`, the run takes that directory
/// once training starts (its lock, `--overwrite`'s removal, the split in `split.json`) and
/// writes its checkpoints there; the directory stays held until the returned [`RunDir`] is
/// dropped. Events go to the progress bar or stdout; once `stop` is requested, the run ends
/// after the current step with a checkpoint.
///
/// With several ranks ([`Collective`]), only rank 0 takes the directory, prints and writes.
#[allow(clippy::too_many_arguments)]
pub fn run_job(
    job: &JobSpec,
    device: &Device,
    limits: &Limits,
    jsonl: bool,
    out: Option<Destination<'_>>,
    resume: Option<&Checkpoint>,
    stop: Option<&StopRequest>,
    collective: &dyn Collective,
) -> Result<(RunOutput, Option<RunDir>)> {
    let leader = collective.is_leader();
    let out = out.filter(|_| leader);
    let data =
        std::fs::read(&job.data.path).with_context(|| format!("cannot read {}", job.data.path))?;
    let inputs = RunInputs {
        model: files::read_model(&job.model.path)?,
        data,
        init_adapter: job
            .model
            .init_adapter
            .as_ref()
            .map(|dir| files::read_adapter(Path::new(dir)))
            .transpose()?,
    };
    let mut printer = EventPrinter::new(jsonl);
    let mut split: Option<Assignment> = None;
    let held: RefCell<Option<RunDir>> = RefCell::new(None);
    let mut out_error = None;
    let mut on_event = |event: &Event| {
        match (event, out) {
            (Event::Data(data), _) => split = Some(data.assignment.clone()),
            // The directory is taken once the run really starts, so a refused run writes nothing.
            (Event::Started { .. }, Some(out)) => {
                let taken = RunDir::claim(out.dir, out.claim, job.train.strategy)
                    .and_then(|dir| save_split(out.dir, split.as_ref()).map(|()| dir));
                match taken {
                    Ok(dir) => *held.borrow_mut() = Some(dir),
                    Err(e) => {
                        out_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            _ => {}
        }
        if leader {
            printer.on_event(event)
        } else {
            ControlFlow::Continue(())
        }
    };
    let keep = job.train.keep_checkpoints;
    let mut on_checkpoint = |checkpoint: Checkpoint| {
        let Some(out) = out else { return Ok(()) };
        if held.borrow().is_none() {
            // The directory was refused: end the run without writing there.
            return Err(hearth_train::TrainError::Checkpoint(format!(
                "{} was not taken",
                out.dir.display()
            )));
        }
        files::write_checkpoint(out.dir, &checkpoint, keep)
            .map_err(|e| hearth_train::TrainError::Checkpoint(format!("{e:#}")))
    };
    let output = pollster::block_on(hearth_train::start(
        job,
        inputs,
        device,
        limits,
        resume,
        RunHooks {
            on_event: &mut on_event,
            on_checkpoint: &mut on_checkpoint,
            stop: stop.map(StopRequest::flag),
            collective,
        },
    ));
    if let Some(e) = out_error {
        return Err(e);
    }
    let output =
        output.with_context(|| format!("training with the model in {}", job.model.path))?;
    Ok((output, held.into_inner()))
}

/// [`run_job`] in this process as `replicas` of the model ([`run_replicas`]), or as one
/// model, this process being one rank of `collective`.
#[allow(clippy::too_many_arguments)]
pub fn run_local(
    job: &JobSpec,
    device: &Device,
    limits: &Limits,
    jsonl: bool,
    out: Option<Destination<'_>>,
    resume: Option<&Checkpoint>,
    stop: Option<&StopRequest>,
    replicas: device::Replicas,
    collective: &dyn Collective,
) -> Result<(RunOutput, Option<RunDir>)> {
    if replicas.count > 1 {
        run_replicas(job, device, limits, jsonl, out, resume, stop, replicas)
    } else {
        run_job(job, device, limits, jsonl, out, resume, stop, collective)
    }
}

/// [`run_job`] as `replicas` of the model on threads of this process
/// ([`device::Replicas`]): replica 0 runs here, in the global thread pool, and is the one
/// that prints and writes; each other replica runs on a thread of its own with a pool of its
/// own. A replica that fails ends the others' run; the error reported is the first one that
/// is not merely another replica having stopped.
#[allow(clippy::too_many_arguments)]
fn run_replicas(
    job: &JobSpec,
    device: &Device,
    limits: &Limits,
    jsonl: bool,
    out: Option<Destination<'_>>,
    resume: Option<&Checkpoint>,
    stop: Option<&StopRequest>,
    replicas: device::Replicas,
) -> Result<(RunOutput, Option<RunDir>)> {
    // Every pool exists before any replica starts: none may wait for one that never comes.
    let pools = (1..replicas.count)
        .map(|_| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(replicas.threads_each)
                .build()
                .map_err(|e| anyhow::anyhow!("starting a replica's threads: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let group = ThreadGroup::new(replicas.count);
    std::thread::scope(|scope| {
        let others: Vec<_> = pools
            .into_iter()
            .enumerate()
            .map(|(i, pool)| {
                let group = &group;
                scope.spawn(move || {
                    pool.install(|| {
                        let rank = group.rank(i + 1);
                        let run = run_job(job, device, limits, jsonl, None, resume, stop, &rank);
                        if run.is_ok() {
                            rank.finish();
                        }
                        run.map(drop)
                    })
                })
            })
            .collect();
        let rank = group.rank(0);
        let first = run_job(job, device, limits, jsonl, out, resume, stop, &rank);
        if first.is_ok() {
            rank.finish();
        } else {
            drop(rank);
        }
        let (done, mut errors) = match first {
            Ok(done) => (Some(done), Vec::new()),
            Err(e) => (None, vec![e]),
        };
        for other in others {
            match other.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push(anyhow::anyhow!("a training replica panicked")),
            }
        }
        match done {
            Some(done) if errors.is_empty() => Ok(done),
            _ => {
                // A replica that saw another stop fails with the group's collective error.
                let stopped = |e: &anyhow::Error| {
                    e.chain().any(|c| {
                        matches!(
                            c.downcast_ref::<hearth_train::TrainError>(),
                            Some(hearth_train::TrainError::Collective(_))
                        )
                    })
                };
                let cause = errors.iter().position(|e| !stopped(e)).unwrap_or(0);
                Err(errors.swap_remove(cause))
            }
        }
    })
}

/// The split, saved so the run can be reproduced or audited.
fn save_split(out: &Path, split: Option<&Assignment>) -> Result<()> {
    let split = serde_json::to_string_pretty(&split)?;
    files::write_atomic(&out.join(run_dir::SPLIT), split.as_bytes())
}

/// `hearth train`, in this process or as one rank of a data-parallel job.
pub fn train(args: &TrainArgs, ranks: &Ranks) -> Result<()> {
    let leader = ranks.is_leader();
    let (mut job, resume, out, claim) = match &args.resume {
        None => (
            args.job()?,
            None,
            args.out.clone().unwrap_or_else(|| "hearth-adapter".into()),
            Claim::New {
                overwrite: args.overwrite,
            },
        ),
        Some(dir) => {
            let given = args.job_flags();
            if !given.is_empty() {
                bail!(
                    "--resume continues the run with its own job; drop {}",
                    given.join(", ")
                );
            }
            let (path, checkpoint) = files::latest_checkpoint(dir)?;
            if leader {
                eprintln!(
                    "resuming from {} (step {})",
                    path.display(),
                    checkpoint.step()
                );
            }
            let mut job = checkpoint.record()?.job;
            if let Some(v) = args.checkpoint_every {
                job.train.checkpoint_every = v;
            }
            if let Some(v) = args.keep_checkpoints {
                job.train.keep_checkpoints = v;
            }
            // The run directory is the one holding `checkpoints/step-N`.
            let run_dir = path
                .parent()
                .and_then(Path::parent)
                .map_or_else(|| dir.clone(), Path::to_path_buf);
            let out = args.out.clone().unwrap_or_else(|| run_dir.clone());
            let same = |a: &Path, b: &Path| {
                std::fs::canonicalize(a)
                    .ok()
                    .is_some_and(|a| std::fs::canonicalize(b).ok() == Some(a))
            };
            let claim = if same(&out, &run_dir) {
                Claim::Resume
            } else {
                Claim::New {
                    overwrite: args.overwrite,
                }
            };
            (job, Some(checkpoint), out, claim)
        }
    };
    if args.print_job {
        if leader {
            println!("{}", job.to_json());
        }
        return Ok(());
    }
    if resume.is_none() {
        run_dir::absolute_paths(&mut job)?;
    }
    if leader {
        // Only rank 0 writes: the other ranks' nodes need not even see the directory.
        run_dir::check_not_an_input(&job, &out)?;
        run_dir::check(&out, claim, job.train.strategy)?;
    }
    let replicas = device::replicas(
        &args.run,
        args.replicas,
        job.train.batch_size,
        ranks.is_parallel(),
    );
    let device = device::for_replicas(&args.run, replicas, ranks.local_gpu())?.autodiff();
    let limits = crate::plan::limits(args.run.device, args.memory_limit);
    let stop = StopRequest::listen();
    let destination = Some(Destination { dir: &out, claim });
    let (output, _held) = run_local(
        &job,
        &device,
        &limits,
        args.jsonl,
        destination,
        resume.as_ref(),
        Some(&stop),
        replicas,
        ranks.collective(),
    )?;
    if !leader {
        return Ok(());
    }
    if stop.requested() && output.summary.stopped {
        let step = output.summary.steps;
        return Err(Interrupted(format!(
            "stopped at step {step}: checkpoint {} written; continue with `hearth train --resume {}`",
            files::checkpoints_dir(&out)
                .join(Checkpoint::dir_name(step))
                .display(),
            out.display()
        ))
        .into());
    }
    if !args.jsonl {
        print_summary(&output);
        let s = &output.summary;
        if s.ranks > 1 {
            eprintln!(
                "data-parallel over {} ranks: {:.1} ms of each step exchanging gradients ({:.1}% of \
                 training), {:.1} ms waiting for the slowest rank",
                s.ranks,
                s.communication_ms_per_step,
                100.0 * s.communication_share,
                s.waiting_ms_per_step
            );
        }
    }
    save(&out, &output.files)?;
    eprintln!(
        "adapter written to {} (PEFT format{})",
        out.display(),
        if output.job.task.is_sft() {
            ", CAUSAL_LM"
        } else {
            ""
        }
    );
    Ok(())
}

/// Loads an adapter directory onto its base model: the run record (Hearth's, or one made from
/// `--model` and `--labels` for an adapter PEFT wrote), the model and its tokenizer.
fn load_adapter(
    args: &AdapterArgs,
    device: &Device,
) -> Result<(RunRecord, BertForSequenceClassification, TextTokenizer)> {
    let dir = &args.adapter;
    let adapter = files::read_adapter(dir)?;
    let record: RunRecord = match hearth_train::base::file(&adapter, AdapterFiles::RECORD) {
        Ok(bytes) => serde_json::from_slice(bytes)
            .with_context(|| format!("{} in {}", AdapterFiles::RECORD, dir.display()))?,
        Err(_) => {
            let Some(model) = &args.model else {
                bail!(
                    "{} has no {} (it was not written by Hearth): give its base model with --model",
                    dir.display(),
                    AdapterFiles::RECORD
                );
            };
            let weights = hearth_train::base::file(&adapter, AdapterFiles::WEIGHTS)
                .with_context(|| format!("in {}", dir.display()))?;
            hearth_train::adapter::peft_record(model, args.labels.as_deref(), weights)?
        }
    };
    let base = files::read_model(&record.job.model.path)?;
    let (_, model, tokenizer) =
        hearth_train::adapter::load_classifier(&record, &adapter, base, device)
            .with_context(|| format!("loading the trained weights in {}", dir.display()))?;
    Ok((record, model, tokenizer))
}

/// `hearth eval`.
pub fn eval(args: &EvalArgs) -> Result<()> {
    let device = device::from_args(&args.run)?;
    let (record, model, tokenizer) = load_adapter(&args.adapter, &device)?;
    let batch = args.batch_size.unwrap_or(record.job.train.batch_size);
    let (texts, targets) = match &args.data {
        None if record.job.data.path == "-" => {
            bail!("this adapter carries no job to take held-out rows from: give --data FILE")
        }
        None => {
            let eval = load_split(&record.job)?.eval;
            (eval.texts, eval.targets)
        }
        Some(path) => {
            let data = files::read_dataset(&record.job, path)?;
            let range = data.targets.value_range();
            describe_rows(&record.job.task, &data.label_names, range, &data.report);
            let targets = onto_adapter_labels(data.targets, &data.label_names, &record.labels)
                .with_context(|| format!("in {path}"))?;
            (data.texts, targets)
        }
    };
    let metrics = pollster::block_on(hearth_train::evaluate(
        &model,
        &tokenizer,
        &record.job.task,
        Examples {
            texts: &texts,
            targets: &targets,
        },
        batch,
    ))?;
    print_metrics(&metrics, &record.labels);
    println!("{}", serde_json::to_string(&metrics)?);
    Ok(())
}

/// A file's targets re-indexed from its own label names onto the adapter's.
fn onto_adapter_labels(targets: Targets, names: &[String], adapter: &[String]) -> Result<Targets> {
    let index = |l: usize| -> Result<usize> {
        let name = &names[l];
        adapter.iter().position(|n| n == name).with_context(|| {
            format!(
                "label `{}` was not a label when the adapter was trained ({})",
                label(name),
                label_list(adapter)
            )
        })
    };
    Ok(match targets {
        Targets::Classes(v) => Targets::Classes(v.into_iter().map(index).collect::<Result<_>>()?),
        Targets::LabelSets(v) => Targets::LabelSets(
            v.into_iter()
                .map(|set| set.into_iter().map(index).collect::<Result<Vec<_>>>())
                .collect::<Result<_>>()?,
        ),
        values @ Targets::Values(_) => values,
    })
}

/// `hearth predict`.
pub fn predict(args: &PredictArgs) -> Result<()> {
    let mut texts = args.texts.clone();
    if let Some(path) = &args.file {
        let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        texts.extend(
            String::from_utf8_lossy(&content)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        bail!("give texts to classify as arguments or with --file");
    }
    let device = device::from_args(&args.run)?;
    let (record, model, tokenizer) = load_adapter(&args.adapter, &device)?;
    let task = &record.job.task;
    let all = pollster::block_on(hearth_train::predict_scores(
        &model,
        &tokenizer,
        task,
        &texts,
        record.job.train.batch_size,
    ))?;
    for (text, scores) in texts.iter().zip(all) {
        let line = hearth_train::task::prediction_json(task, &record.labels, text, &scores);
        println!("{line}");
    }
    Ok(())
}

/// `hearth merge`.
pub fn merge(args: &MergeArgs) -> Result<()> {
    let device = device::from_args(&args.run)?;
    let (record, model, _) = load_adapter(&args.adapter, &device)?;
    let base = files::read_model(&record.job.model.path)?;
    let file = |name| hearth_train::base::file(&base, name);
    let outputs: Vec<PathBuf> = ["model.safetensors", "config.json", "tokenizer.json"]
        .iter()
        .map(|name| args.out.join(name))
        .chain([args.out.clone()])
        .collect();
    let base_path = Path::new(&record.job.model.path);
    let mut inputs = files::model_inputs(base_path);
    inputs.extend(files::adapter_inputs(&args.adapter.adapter));
    let mut dirs = vec![args.adapter.adapter.clone()];
    if base_path.is_dir() {
        dirs.push(base_path.to_path_buf());
    }
    files::refuse_overwriting("--out", &outputs, &inputs, &dirs)?;
    let merged = pollster::block_on(hearth_models::merge::merge_classifier(
        model,
        file("config.json")?,
        &record.labels,
        record
            .job
            .task
            .problem_type()
            .context("an SFT adapter has no classifier to merge")?,
    ))
    .with_context(|| format!("merging {}", args.adapter.adapter.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    files::write_atomic(&args.out.join("model.safetensors"), &merged.weights)?;
    files::write_atomic(&args.out.join("config.json"), &merged.config)?;
    files::write_atomic(&args.out.join("tokenizer.json"), file("tokenizer.json")?)?;
    eprintln!(
        "merged model written to {} (transformers' BertForSequenceClassification, labels {})",
        args.out.display(),
        label_list(&record.labels)
    );
    Ok(())
}
