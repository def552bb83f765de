//! Chat models in the page: supervised fine-tuning on WebGPU (`trainChat`) and the "try it"
//! box (`generateChat`), the same code as `hearth train --task sft` and `hearth generate`.

use std::cell::RefCell;

use hearth_models::chat::Message;
use hearth_models::chat_model::{ChatModel, LmFiles};
use hearth_models::generate::{GenerationSettings, generate};
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lm_tokenizer::LmTokenizer;
use hearth_train::{AdapterFiles, JobSpec, Task};
use wasm_bindgen::prelude::*;

use crate::api::{JsHooks, TrainedAdapter, checkpoint_from_js, current_device, js_error, to_json};

/// The chat model the last SFT run trained, for the "try it" box.
struct TrainedChat {
    model: LlamaForCausalLM,
    tokenizer: LmTokenizer,
}

thread_local! {
    static TRAINED_CHAT: RefCell<Option<TrainedChat>> = const { RefCell::new(None) };
}

/// The model's files from the worker: `names[i]` is the file name of `contents[i]`.
fn lm_files(names: Vec<String>, contents: &js_sys::Array) -> Result<LmFiles, JsError> {
    let files = names
        .into_iter()
        .zip(contents.iter())
        .map(|(name, value)| {
            let bytes = value
                .dyn_into::<js_sys::Uint8Array>()
                .map_err(|_| js_error(format!("{name}: expected bytes")))?;
            Ok((name, bytes.to_vec()))
        })
        .collect::<Result<Vec<_>, JsError>>()?;
    LmFiles::from_named(files).map_err(js_error)
}

/// Fine-tunes the job's chat model (a `.gguf` file, or `config.json`, `model.safetensors`,
/// `tokenizer.json` and optionally `tokenizer_config.json`/`chat_template.jinja`, given as
/// `names` and `contents`) on the conversations in `data`, on WebGPU. Events, checkpoints,
/// stopping and `resume` work as in [`crate::api::train`]; the first event is
/// `{event: "data", conversations, train, held_out}`.
#[wasm_bindgen(js_name = trainChat)]
#[allow(clippy::too_many_arguments)]
pub async fn train_chat(
    job_json: String,
    names: Vec<String>,
    contents: js_sys::Array,
    data: Vec<u8>,
    on_event: js_sys::Function,
    on_checkpoint: js_sys::Function,
    resume: Option<js_sys::Object>,
) -> Result<TrainedAdapter, JsError> {
    let device = current_device()?.autodiff();
    let job = JobSpec::parse(&job_json).map_err(js_error)?;
    let Task::Sft { chat_template, .. } = &job.task else {
        return Err(js_error("trainChat runs SFT jobs (task.kind = \"sft\")"));
    };
    let resume = resume
        .map(|files| checkpoint_from_js(&files))
        .transpose()
        .map_err(js_error)?;
    let sft_data = hearth_train::sft::load_sft_data(&job, &data).map_err(js_error)?;
    drop(data);
    let data_event = serde_json::json!({
        "event": "data",
        "task": job.task,
        "conversations": sft_data.report.rows,
        "train": sft_data.train.len(),
        "held_out": sft_data.eval.len(),
        "report": sft_data.report,
    });
    on_event
        .call1(&JsValue::NULL, &data_event.to_string().into())
        .map_err(|e| js_error(format!("the page's event handler failed: {e:?}")))?;
    let files = lm_files(names, &contents)?;
    drop(contents);
    device.seed(job.train.seed);
    let mut chat = ChatModel::load(&files, job.lora.lora_dropout, &device).map_err(js_error)?;
    drop(files);
    if let Some(template) = chat_template {
        chat.tokenizer = chat
            .tokenizer
            .with_chat_template(template)
            .map_err(js_error)?;
    }
    let model = match &resume {
        None => chat
            .model
            .with_lora(&job.lora)
            .and_then(|m| m.seeded_lora(job.train.seed)),
        Some(checkpoint) => hearth_models::peft::load_adapter(
            chat.model,
            checkpoint.adapter.config.as_bytes(),
            &checkpoint.adapter.weights,
        ),
    }
    .map_err(js_error)?;
    let hooks = JsHooks::new(on_event, on_checkpoint);
    let output = hearth_train::sft::run_sft(
        &job,
        model,
        &chat.tokenizer,
        &sft_data,
        resume.as_ref(),
        &mut |e| hooks.event(e),
        &mut |c| hooks.checkpoint(c),
    )
    .await
    .map_err(js_error)?;
    hooks.check()?;
    let weights = hearth_models::peft::export_adapter(&output.model)
        .await
        .map_err(js_error)?;
    let files = AdapterFiles::with_weights(&job, &[], weights).map_err(js_error)?;
    TRAINED_CHAT.with(|t| {
        *t.borrow_mut() = Some(TrainedChat {
            model: output.model,
            tokenizer: chat.tokenizer,
        })
    });
    Ok(TrainedAdapter::new(files, to_json(&output.summary)?))
}

/// Answers `prompt` (a user message; `system` optional) with the chat model the last SFT run
/// trained, with its adapter or without it (the base model), under `settings_json`
/// ([`GenerationSettings`]). Each piece of text is handed to `on_token` as soon as it decodes;
/// returns `{text, stop_reason, tokens}` as JSON.
#[wasm_bindgen(js_name = generateChat)]
pub async fn generate_chat(
    prompt: String,
    system: Option<String>,
    settings_json: String,
    with_adapter: bool,
    on_token: js_sys::Function,
) -> Result<String, JsError> {
    let settings: GenerationSettings = serde_json::from_str(&settings_json).map_err(js_error)?;
    settings.validate().map_err(js_error)?;
    let (model, tokenizer) = TRAINED_CHAT
        .with(|t| {
            t.borrow()
                .as_ref()
                .map(|t| (t.model.clone(), t.tokenizer.clone()))
        })
        .ok_or_else(|| js_error("fine-tune a chat model first"))?;
    // Generation needs no gradients: the model's inner (non-autodiff) form, as in evaluation.
    let model = burn::module::Module::valid(&model);
    let model = if with_adapter {
        model
    } else {
        hearth_models::lora::without_adapters(model)
    };
    let mut messages = Vec::new();
    if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
        messages.push(Message::new("system", system));
    }
    messages.push(Message::new("user", prompt));
    let ids = tokenizer.apply_chat(&messages, true).map_err(js_error)?;
    let mut stream = tokenizer.decode_stream(true);
    let mut text = String::new();
    let mut failure = None;
    let (tokens, reason) = generate(
        &model,
        &ids,
        tokenizer.stop_ids(),
        &settings,
        |id| match stream.step(id) {
            Ok(Some(piece)) => {
                text.push_str(&piece);
                on_token.call1(&JsValue::NULL, &piece.into()).is_ok()
            }
            Ok(None) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        },
    )
    .await
    .map_err(js_error)?;
    if let Some(e) = failure {
        return Err(js_error(e));
    }
    if let Some(rest) = stream.finish().map_err(js_error)? {
        text.push_str(&rest);
        let _ = on_token.call1(&JsValue::NULL, &rest.into());
    }
    to_json(&serde_json::json!({
        "text": text,
        "stop_reason": reason,
        "tokens": tokens.len(),
    }))
}
