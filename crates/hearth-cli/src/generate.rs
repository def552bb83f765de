//! `hearth generate`: a chat model (with a trained adapter, or without) answers a prompt,
//! streaming its tokens; a base model without a chat template (Gemma 3 270M's GGUF) continues
//! the prompt as plain text instead.

use std::io::Write;

use anyhow::{Context, Result};
use hearth_models::chat::Message;
use hearth_models::generate::{GenerationSettings, generate};
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lm_tokenizer::LmTokenizer;
use hearth_train::{AdapterFiles, JobSpec, RunRecord, Task};

use crate::args::GenerateArgs;
use crate::{device, files};

/// `hearth generate`: answers a prompt with a chat model, streaming tokens to stdout; with
/// an adapter, optionally the base model's answer first (`--compare`).
pub fn run(args: &GenerateArgs) -> Result<()> {
    let device = device::from_args(&args.run)?;
    let (job, adapter) = match &args.adapter {
        Some(dir) => {
            let record: RunRecord = serde_json::from_slice(
                &std::fs::read(dir.join(AdapterFiles::RECORD)).with_context(|| {
                    format!("reading {}", dir.join(AdapterFiles::RECORD).display())
                })?,
            )?;
            let context = || format!("reading the adapter in {}", dir.display());
            let weights = (
                std::fs::read_to_string(dir.join(AdapterFiles::CONFIG)).with_context(context)?,
                std::fs::read(dir.join(AdapterFiles::WEIGHTS)).with_context(context)?,
            );
            let mut job = record.job;
            if let Some(model) = &args.model {
                job.model.path.clone_from(model);
            }
            (job, Some(weights))
        }
        None => {
            let model = args
                .model
                .as_deref()
                .context("give --model (a .gguf file or a model directory) or --adapter DIR")?;
            let task = Task::Sft {
                packing: false,
                chat_template: None,
                truncation: Default::default(),
            };
            (JobSpec::default_for(task, model, "-")?, None)
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
    let chat = hearth_train::adapter::load_chat(
        &job,
        files::read_model(&job.model.path)?,
        adapter.as_ref().map(|(c, w)| (c.as_str(), w.as_slice())),
        &device,
    )
    .with_context(|| format!("loading the chat model {}", job.model.path))?;
    let prompt = match (chat.tokenizer.chat_template(), &args.system) {
        (Some(_), _) => chat.tokenizer.apply_chat(&messages, true)?,
        // A base model: the prompt is text to continue, encoded as transformers does.
        (None, None) => chat.tokenizer.encode_with_special_tokens(&args.prompt)?,
        (None, Some(_)) => anyhow::bail!(
            "the model has no chat template (a base model?), so it has no system turn: give \
             --chat-template FILE, or leave out --system to continue the prompt as plain text"
        ),
    };
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
