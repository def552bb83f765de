//! `hearth train`, `eval` and `predict`.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::peft::AdapterConfig;
use hearth_models::tokenizer::TextTokenizer;
use hearth_train::{
    AdapterFiles, Checkpoint, Event, Examples, JobSpec, Metrics, RunOutput, RunRecord, SplitData,
    Targets, TaskData, TrainSummary,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{AdapterArgs, EvalArgs, MergeArgs, PredictArgs, TrainArgs};
use crate::{device, files};

/// Loads the job's data from disk and splits it.
pub fn load_split(job: &JobSpec) -> Result<SplitData> {
    let dataset = files::read_dataset(job, &job.data.path)?;
    Ok(hearth_train::run::split(job, dataset)?)
}

fn describe_data(data: &TaskData) {
    let r = &data.report;
    let targets = match &data.targets {
        Targets::Classes(_) => format!("labels {:?}", data.label_names),
        Targets::LabelSets(_) => format!("multi-label, labels {:?}", data.label_names),
        Targets::Values(v) => {
            let (lo, hi) = v
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            format!("regression targets in [{lo}, {hi}]")
        }
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
        let Some(bar) = &self.bar else {
            if let Ok(line) = serde_json::to_string(event) {
                println!("{line}");
            }
            return ControlFlow::Continue(());
        };
        match event {
            Event::Started {
                steps,
                resumed_at,
                train_rows,
                eval_rows,
                trainable_params,
                total_params,
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

fn print_summary(summary: &TrainSummary, labels: &[String]) {
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
        print_metrics(m, labels);
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

fn print_scores(labels: &[String], scores: &[hearth_train::metrics::ClassScores]) {
    eprintln!(
        "  {:>12} {:>9} {:>9} {:>9} {:>8}",
        "", "precision", "recall", "F1", "support"
    );
    for (label, c) in labels.iter().zip(scores) {
        eprintln!(
            "  {label:>12} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            c.precision, c.recall, c.f1, c.support
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
    eprintln!("confusion (rows: gold, columns: predicted):");
    for (label, row) in labels.iter().zip(&m.confusion) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>7}")).collect();
        eprintln!("  {label:>12} {}", cells.join(""));
    }
}

/// Writes what the run trained (PEFT's adapter for LoRA, the head, or a complete model
/// directory) plus Hearth's run record, each file atomically.
pub fn save_adapter(
    out: &Path,
    model: &BertForSequenceClassification,
    job: &JobSpec,
    labels: &[String],
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let base = files::read_model(&job.model.path)?;
    let saved = pollster::block_on(AdapterFiles::export(job, model, labels, &base))?;
    for (name, bytes) in saved.files() {
        files::write_atomic(&out.join(name), &bytes)?;
    }
    Ok(())
}

/// Loads the job's data and model on `device` (with autodiff) and trains, from the start or
/// from `resume`. Checkpoints go to `out`/checkpoints when `out` is given; events to the
/// progress bar or stdout. Returns the trained model, the run's summary and the label names.
pub fn run_job(
    job: &JobSpec,
    device: &Device,
    jsonl: bool,
    out: Option<&Path>,
    resume: Option<&Checkpoint>,
) -> Result<RunOutput> {
    let data = load_split(job)?;
    describe_data(&data.dataset);
    let mut files = files::read_model(&job.model.path)?;
    if let Some(dir) = &job.model.init_adapter {
        files.adapter = Some(initial_adapter(
            Path::new(dir),
            job,
            &data.dataset.label_names,
        )?);
    }
    if let Some(out) = out {
        // The split, saved so the run can be reproduced or audited.
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let split = serde_json::to_string_pretty(&data.assignment)?;
        files::write_atomic(&out.join("split.json"), split.as_bytes())?;
    }
    let mut printer = EventPrinter::new(jsonl);
    let keep = job.train.keep_checkpoints;
    let mut on_checkpoint = |checkpoint: Checkpoint| {
        let Some(out) = out else { return Ok(()) };
        files::write_checkpoint(out, &checkpoint, keep)
            .map_err(|e| hearth_train::TrainError::Checkpoint(format!("{e:#}")))
    };
    let output = pollster::block_on(hearth_train::run::run(
        job,
        &files,
        &data,
        device,
        resume,
        &mut |e| printer.on_event(e),
        &mut on_checkpoint,
    ))
    .with_context(|| format!("training with the model in {}", job.model.path))?;
    Ok(output)
}

/// The weights of the adapter a job starts from, after checking that it fits the job: the same
/// LoRA rank and targets, and (for Hearth's adapters) the same labels in the same order.
fn initial_adapter(dir: &Path, job: &JobSpec, labels: &[String]) -> Result<Vec<u8>> {
    if job.train.strategy != hearth_models::Strategy::Lora {
        bail!(
            "--init-adapter continues LoRA adapters; this job trains with strategy {:?}",
            job.train.strategy
        );
    }
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let config = AdapterConfig::from_json(&read(AdapterFiles::CONFIG)?)?;
    let theirs = config.settings();
    // PEFT stores target_modules as a set: compare them as one.
    let set = |t: &[String]| t.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    if (theirs.r, theirs.lora_alpha, set(&theirs.target_modules))
        != (
            job.lora.r,
            job.lora.lora_alpha,
            set(&job.lora.target_modules),
        )
    {
        bail!(
            "the adapter in {} has r = {}, alpha = {} on {:?}; set lora.r, lora.lora_alpha and \
             lora.target_modules (--r, --alpha, --targets) to match it",
            dir.display(),
            theirs.r,
            theirs.lora_alpha,
            theirs.target_modules
        );
    }
    if let Ok(bytes) = std::fs::read(dir.join(AdapterFiles::RECORD)) {
        let record: RunRecord = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} in {}", AdapterFiles::RECORD, dir.display()))?;
        if record.labels != labels {
            bail!(
                "the adapter in {} was trained on labels {:?}; this data has {:?}",
                dir.display(),
                record.labels,
                labels
            );
        }
    }
    read(AdapterFiles::WEIGHTS)
}

/// `hearth train`.
pub fn train(args: &TrainArgs) -> Result<()> {
    let (job, resume, out) = match &args.resume {
        None => (
            args.job()?,
            None,
            args.out.clone().unwrap_or_else(|| "hearth-adapter".into()),
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
            eprintln!(
                "resuming from {} (step {})",
                path.display(),
                checkpoint.step()
            );
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
            let out = args.out.clone().unwrap_or(run_dir);
            (job, Some(checkpoint), out)
        }
    };
    if args.print_job {
        println!("{}", job.to_json());
        return Ok(());
    }
    if job.task.is_sft() {
        return crate::lm::train(&job, &args.run, args.jsonl, &out, resume.as_ref());
    }
    // A resumed run keeps its job: adapting it would make it another job.
    let job = if resume.is_some() {
        job
    } else {
        crate::plan::before_training(&job, args.run.device, args.memory_limit)?
    };
    let device = device::from_args(&args.run)?.autodiff();
    let RunOutput {
        model,
        summary,
        labels,
        ..
    } = run_job(&job, &device, args.jsonl, Some(&out), resume.as_ref())?;
    if !args.jsonl {
        print_summary(&summary, &labels);
    }
    save_adapter(&out, &model, &job, &labels)?;
    eprintln!("adapter written to {} (PEFT format)", out.display());
    Ok(())
}

/// Loads an adapter directory onto its base model: the run record (Hearth's, or one made from
/// `--model` and `--labels` for an adapter PEFT wrote), the model and its tokenizer.
fn load_adapter(
    args: &AdapterArgs,
    device: &Device,
) -> Result<(RunRecord, BertForSequenceClassification, TextTokenizer)> {
    let dir = &args.adapter;
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let record: RunRecord = if dir.join(AdapterFiles::RECORD).exists() {
        serde_json::from_slice(&read(AdapterFiles::RECORD)?)
            .with_context(|| format!("{} in {}", AdapterFiles::RECORD, dir.display()))?
    } else {
        peft_record(args, &read(AdapterFiles::WEIGHTS)?)?
    };
    if record.job.task.is_sft() {
        bail!(
            "{} holds a chat model's (SFT) adapter: try it with `hearth generate --adapter {}`",
            dir.display(),
            dir.display()
        );
    }
    let mut job = record.job.clone();
    let strategy = job.train.strategy;
    if strategy == hearth_models::Strategy::Lora {
        job.lora = AdapterConfig::from_json(&read(AdapterFiles::CONFIG)?)?.settings();
    }
    let weights = read(strategy.weights_file())?;
    let base = files::read_model(&job.model.path)?;
    let tokenizer = TextTokenizer::from_bytes(&base.tokenizer, job.train.max_length)?;
    let outputs = hearth_train::task::num_outputs(&job.task, record.labels.len());
    let model = hearth_models::load_trained(
        &base,
        &weights,
        outputs,
        job.model.pooling,
        &job.lora,
        strategy,
        device,
    )
    .with_context(|| format!("loading the trained weights in {}", dir.display()))?;
    Ok((record, model, tokenizer))
}

/// The run record of an adapter PEFT wrote: the base model `--model`, the labels `--labels` or
/// transformers' default names, as many as the adapter's head has outputs.
fn peft_record(args: &AdapterArgs, weights: &[u8]) -> Result<RunRecord> {
    let Some(model_path) = &args.model else {
        bail!(
            "{} has no {} (it was not written by Hearth): give its base model with --model",
            args.adapter.display(),
            AdapterFiles::RECORD
        );
    };
    let file = safetensors::SafeTensors::deserialize(weights)
        .with_context(|| format!("reading {}", AdapterFiles::WEIGHTS))?;
    let head = file
        .tensor("base_model.model.classifier.bias")
        .context("the adapter has no classifier head (base_model.model.classifier.bias)")?;
    let num_labels = head.shape().first().copied().unwrap_or(0);
    if num_labels == 1 && args.labels.is_none() {
        // One output: transformers' regression head.
        let job = serde_json::json!({"model": {"path": model_path}, "data": {"path": "-"},
                                     "task": {"kind": "regression"}});
        return Ok(RunRecord {
            job: JobSpec::parse(&job.to_string())?,
            labels: Vec::new(),
        });
    }
    let labels = match &args.labels {
        Some(labels) if labels.len() == num_labels => labels.clone(),
        Some(labels) => bail!(
            "--labels names {} labels; the adapter's head has {num_labels}",
            labels.len()
        ),
        None => (0..num_labels).map(|i| format!("LABEL_{i}")).collect(),
    };
    let job = serde_json::json!({"model": {"path": model_path}, "data": {"path": "-"}});
    let job = JobSpec::parse(&job.to_string())?;
    Ok(RunRecord { job, labels })
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
            describe_data(&data);
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
            format!("label `{name}` was not a label when the adapter was trained ({adapter:?})")
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
    let merged = pollster::block_on(hearth_models::merge::merge_classifier(
        model,
        &base.config,
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
    files::write_atomic(&args.out.join("tokenizer.json"), &base.tokenizer)?;
    eprintln!(
        "merged model written to {} (transformers' BertForSequenceClassification, labels {:?})",
        args.out.display(),
        record.labels
    );
    Ok(())
}
