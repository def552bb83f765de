//! Chat models: `hearth train --task sft` and `hearth generate`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use hearth_models::chat::Message;
use hearth_models::chat_model::{ChatModel, LmFiles};
use hearth_models::generate::{GenerationSettings, generate};
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lm_tokenizer::LmTokenizer;
use hearth_train::sft::{SftOutput, load_sft_data, run_sft};
use hearth_train::{AdapterFiles, Checkpoint, JobSpec, RunRecord, Task};

use crate::args::GenerateArgs;
use crate::commands::EventPrinter;
use crate::{device, files};

/// The files of a chat model: a `.gguf` file, or a directory with `config.json`,
/// `model.safetensors`, `tokenizer.json` and optionally `tokenizer_config.json` and
/// `chat_template.jinja` (its chat template).
pub fn read_lm(path: &str) -> Result<LmFiles> {
    let p = Path::new(path);
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    if p.is_file() {
        return Ok(LmFiles::Gguf(read(p)?));
    }
    let optional = |name: &str| {
        let path = p.join(name);
        path.exists().then(|| read(&path)).transpose()
    };
    Ok(LmFiles::Hf {
        config: read(&p.join("config.json"))?,
        weights: read(&p.join("model.safetensors"))?,
        tokenizer: read(&p.join("tokenizer.json"))?,
        tokenizer_config: optional("tokenizer_config.json")?,
        chat_template: optional("chat_template.jinja")?,
    })
}

/// The job's chat model on `device`, its tokenizer with the job's template, adapters attached
/// (from `adapter` when given, else fresh from the job's seed).
fn build(job: &JobSpec, device: &Device, adapter: Option<(&[u8], &[u8])>) -> Result<ChatModel> {
    let Task::Sft { chat_template, .. } = &job.task else {
        bail!("the job's task is not sft");
    };
    let files = read_lm(&job.model.path)?;
    device.seed(job.train.seed);
    let mut chat = ChatModel::load(&files, job.lora.lora_dropout, device)
        .with_context(|| format!("loading the chat model {}", job.model.path))?;
    if let Some(template) = chat_template {
        chat.tokenizer = chat.tokenizer.with_chat_template(template)?;
    }
    chat.model = match adapter {
        Some((config, weights)) => hearth_models::peft::load_adapter(chat.model, config, weights)?,
        None => chat
            .model
            .with_lora(&job.lora)?
            .seeded_lora(job.train.seed)?,
    };
    Ok(chat)
}

/// `hearth train` for a job whose task is `sft`.
pub fn train(
    job: &JobSpec,
    run: &crate::args::RunArgs,
    jsonl: bool,
    out: &Path,
    resume: Option<&Checkpoint>,
) -> Result<()> {
    let bytes =
        std::fs::read(&job.data.path).with_context(|| format!("cannot read {}", job.data.path))?;
    let data = load_sft_data(job, &bytes).with_context(|| format!("loading {}", job.data.path))?;
    eprintln!(
        "{} conversations: {} to train on, {} held out",
        data.report.rows,
        data.train.len(),
        data.eval.len()
    );
    let device = device::from_args(run)?.autodiff();
    let chat = build(
        job,
        &device,
        resume.map(|c| (c.adapter.config.as_bytes(), c.adapter.weights.as_slice())),
    )?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut printer = EventPrinter::new(jsonl);
    let keep = job.train.keep_checkpoints;
    let mut on_checkpoint = |checkpoint: Checkpoint| {
        files::write_checkpoint(out, &checkpoint, keep)
            .map_err(|e| hearth_train::TrainError::Checkpoint(format!("{e:#}")))
    };
    let SftOutput {
        model,
        summary,
        before,
        report,
    } = pollster::block_on(run_sft(
        job,
        chat.model,
        &chat.tokenizer,
        &data,
        resume,
        &mut |e| printer.on_event(e),
        &mut on_checkpoint,
    ))
    .with_context(|| format!("fine-tuning {}", job.model.path))?;
    if !jsonl {
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
        if let (Some(b), Some(hearth_train::Metrics::LanguageModel(a))) = (&before, &summary.eval) {
            eprintln!(
                "validation loss {:.4} -> {:.4}, perplexity {:.2} -> {:.2} ({} tokens)",
                b.loss, a.loss, b.perplexity, a.perplexity, a.tokens
            );
        }
    }
    save(out, &model, job)?;
    eprintln!(
        "adapter written to {} (PEFT format, CAUSAL_LM)",
        out.display()
    );
    Ok(())
}

/// Writes the PEFT adapter and the run record, each file atomically.
fn save(out: &Path, model: &LlamaForCausalLM, job: &JobSpec) -> Result<()> {
    let weights = pollster::block_on(hearth_models::peft::export_adapter(model))?;
    let saved = AdapterFiles::with_weights(job, &[], weights)?;
    for (name, bytes) in saved.files() {
        files::write_atomic(&out.join(name), &bytes)?;
    }
    Ok(())
}

/// `hearth generate`: answers a prompt with a chat model, streaming tokens to stdout; with
/// an adapter, optionally the base model's answer first (`--compare`).
pub fn generate_cmd(args: &GenerateArgs) -> Result<()> {
    let device = device::from_args(&args.run)?;
    let (job, adapter) = match &args.adapter {
        Some(dir) => {
            let record: RunRecord = serde_json::from_slice(
                &std::fs::read(dir.join(AdapterFiles::RECORD)).with_context(|| {
                    format!("reading {}", dir.join(AdapterFiles::RECORD).display())
                })?,
            )?;
            let read = |name: &str| {
                std::fs::read(dir.join(name))
                    .with_context(|| format!("reading the adapter in {}", dir.display()))
            };
            let weights = (read(AdapterFiles::CONFIG)?, read(AdapterFiles::WEIGHTS)?);
            let mut job = record.job;
            if let Some(model) = &args.model {
                job.model.path.clone_from(model);
            }
            (job, Some(weights))
        }
        None => {
            let model = args
                .model
                .clone()
                .context("give --model (a .gguf file or a model directory) or --adapter DIR")?;
            let job = serde_json::json!({"model": {"path": model}, "data": {"path": "-"},
                                         "task": {"kind": "sft"},
                                         "lora": {"target_modules": ["q_proj", "v_proj"]}});
            (JobSpec::parse(&job.to_string())?, None)
        }
    };
    let mut job = job;
    if let (Some(path), Task::Sft { chat_template, .. }) = (&args.chat_template, &mut job.task) {
        *chat_template = Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        );
    }
    let settings = GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };
    settings.validate()?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message {
            role: "system".into(),
            content: system.clone(),
        });
    }
    messages.push(Message {
        role: "user".into(),
        content: args.prompt.clone(),
    });
    let chat = build(
        &job,
        &device,
        adapter.as_ref().map(|(c, w)| (c.as_slice(), w.as_slice())),
    )?;
    let prompt = chat.tokenizer.apply_chat(&messages, true)?;
    let mut variants: Vec<(&str, LlamaForCausalLM)> = Vec::new();
    if adapter.is_some() && args.compare {
        variants.push((
            "base",
            hearth_models::lora::without_adapters(chat.model.clone()),
        ));
    }
    variants.push((
        if adapter.is_some() { "adapter" } else { "base" },
        chat.model.clone(),
    ));
    let show_names = variants.len() > 1;
    for (name, model) in &variants {
        if show_names {
            println!("--- {name}");
        }
        answer(model, &chat.tokenizer, &prompt, &settings)?;
    }
    Ok(())
}

fn answer(
    model: &LlamaForCausalLM,
    tokenizer: &LmTokenizer,
    prompt: &[u32],
    settings: &GenerationSettings,
) -> Result<()> {
    let mut stream = tokenizer.decode_stream(true);
    let mut stdout = std::io::stdout().lock();
    let mut failed = None;
    let (_, reason) = pollster::block_on(generate(
        model,
        prompt,
        tokenizer.stop_ids(),
        settings,
        |id| match stream.step(id) {
            Ok(Some(text)) => stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .is_ok(),
            Ok(None) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    ))?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(rest) = stream.finish()? {
        let _ = stdout.write_all(rest.as_bytes());
    }
    let _ = writeln!(stdout);
    eprintln!("({})", serde_json::to_string(&reason)?.trim_matches('"'));
    Ok(())
}
