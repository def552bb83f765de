//! Using the model the last run trained: a classifier's predictions (`classify`), its adapter
//! merged into the base model (`mergeTrained`), and a chat model's streamed answers with its
//! adapter or without it (`generateChat`, the same code as `hearth generate`).

use hearth_models::chat::Message;
use hearth_models::generate::{GenerationSettings, generate};
use hearth_train::TrainedModel;
use wasm_bindgen::prelude::*;

use crate::api::{js_error, to_json};
use crate::run::with_trained;

/// Predicts for texts (a JSON array of strings) with the model the last run trained: base
/// model plus adapter. Returns JSON `[{text, label, scores: {label: probability}}]` for
/// classification, `[{text, labels, scores}]` for multi-label, `[{text, value}]` for
/// regression.
#[wasm_bindgen]
pub async fn classify(texts_json: String) -> Result<String, JsError> {
    let texts: Vec<String> = serde_json::from_str(&texts_json).map_err(js_error)?;
    let (model, tokenizer, labels, task, batch_size) = with_trained(|t| {
        let (model, tokenizer) = t.classifier()?;
        Ok((
            model.clone(),
            tokenizer.clone(),
            t.labels.clone(),
            t.task.clone(),
            t.batch_size,
        ))
    })?;
    let all = hearth_train::predict_scores(&model, &tokenizer, &task, &texts, batch_size)
        .await
        .map_err(js_error)?;
    let out: Vec<serde_json::Value> = texts
        .iter()
        .zip(all)
        .map(|(text, scores)| hearth_train::task::prediction_json(&task, &labels, text, &scores))
        .collect();
    to_json(&out)
}

/// A merged model's files: a complete HF `BertForSequenceClassification` directory.
#[wasm_bindgen]
pub struct MergedModelFiles {
    config: Vec<u8>,
    weights: Vec<u8>,
    tokenizer: Vec<u8>,
}

#[wasm_bindgen]
impl MergedModelFiles {
    /// `config.json`.
    #[wasm_bindgen(getter)]
    pub fn config(&self) -> Vec<u8> {
        self.config.clone()
    }

    /// `model.safetensors`.
    #[wasm_bindgen(getter)]
    pub fn weights(&self) -> Vec<u8> {
        self.weights.clone()
    }

    /// `tokenizer.json`.
    #[wasm_bindgen(getter)]
    pub fn tokenizer(&self) -> Vec<u8> {
        self.tokenizer.clone()
    }
}

/// The last run's adapter merged into its base model (`hearth merge` in the page).
#[wasm_bindgen(js_name = mergeTrained)]
pub async fn merge_trained() -> Result<MergedModelFiles, JsError> {
    let (model, labels, task, config, tokenizer) = with_trained(|t| {
        Ok((
            t.classifier()?.0.clone(),
            t.labels.clone(),
            t.task.clone(),
            t.base_config.clone(),
            t.base_tokenizer.clone(),
        ))
    })?;
    let problem = task
        .problem_type()
        .ok_or_else(|| js_error("a chat model's adapter has no classifier to merge"))?;
    let merged = hearth_models::merge::merge_classifier(model, &config, &labels, problem)
        .await
        .map_err(js_error)?;
    Ok(MergedModelFiles {
        config: merged.config,
        weights: merged.weights,
        tokenizer,
    })
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
    let (model, tokenizer) = with_trained(|t| match &t.model {
        TrainedModel::Chat { model, tokenizer } => Ok((model.clone(), tokenizer.clone())),
        TrainedModel::Classifier { .. } => Err(js_error("fine-tune a chat model first")),
    })?;
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
