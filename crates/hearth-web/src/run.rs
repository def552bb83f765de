//! A run in the page: the one `train` export for every task (the same [`hearth_train::start`]
//! as `hearth train`), its events and checkpoints handed to the worker, and the model it
//! trained, kept for the page's "try it" box.

use std::cell::RefCell;
use std::ops::ControlFlow;

use hearth_models::bert::BertForSequenceClassification;
use hearth_models::tokenizer::TextTokenizer;
use hearth_train::{
    AdapterFiles, Checkpoint, JobSpec, NamedFiles, RunHooks, RunInputs, TrainError, TrainedModel,
};
use wasm_bindgen::prelude::*;

use crate::api::{current_device, js_error, to_json};

/// A trained run's files and its summary.
#[wasm_bindgen]
pub struct TrainedAdapter {
    files: AdapterFiles,
    summary: String,
}

#[wasm_bindgen]
impl TrainedAdapter {
    /// Every file to download, `[[name, Uint8Array], …]`: PEFT's adapter files for LoRA,
    /// `head.safetensors` for a head-only run, a model directory for a full one; and
    /// `hearth_run.json`.
    #[wasm_bindgen(getter)]
    pub fn files(&self) -> js_sys::Array {
        self.files
            .files()
            .into_iter()
            .map(|(name, bytes)| {
                js_sys::Array::of2(
                    &JsValue::from_str(name),
                    &js_sys::Uint8Array::from(bytes.as_slice()),
                )
            })
            .collect()
    }

    /// The run's summary as JSON.
    #[wasm_bindgen(getter)]
    pub fn summary(&self) -> String {
        self.summary.clone()
    }
}

/// The model the last run trained and what using it needs.
pub(crate) struct Trained {
    pub(crate) model: TrainedModel,
    pub(crate) labels: Vec<String>,
    pub(crate) task: hearth_train::Task,
    pub(crate) batch_size: usize,
    /// The base model's `config.json` and `tokenizer.json`, for a merged download.
    pub(crate) base_config: Vec<u8>,
    pub(crate) base_tokenizer: Vec<u8>,
}

thread_local! {
    /// The model the last run trained, for the page's "try it" box and merge.
    pub(crate) static TRAINED: RefCell<Option<Trained>> = const { RefCell::new(None) };
}

/// Runs `f` on what the last run trained.
pub(crate) fn with_trained<R>(
    f: impl FnOnce(&Trained) -> Result<R, JsError>,
) -> Result<R, JsError> {
    TRAINED.with(|t| match t.borrow().as_ref() {
        Some(trained) => f(trained),
        None => Err(js_error("train a model first")),
    })
}

impl Trained {
    /// The classifier and its tokenizer, if the last run trained one.
    pub(crate) fn classifier(
        &self,
    ) -> Result<(&BertForSequenceClassification, &TextTokenizer), JsError> {
        match &self.model {
            TrainedModel::Classifier { model, tokenizer } => Ok((model, tokenizer)),
            TrainedModel::Chat { .. } => Err(js_error(
                "the last run fine-tuned a chat model: try it in the chat box",
            )),
        }
    }
}

/// A checkpoint as a JS object `{file name: Uint8Array}`.
pub(crate) fn checkpoint_to_js(checkpoint: &Checkpoint) -> Result<js_sys::Object, TrainError> {
    let object = js_sys::Object::new();
    for (name, bytes) in checkpoint.to_files()? {
        let array = js_sys::Uint8Array::from(bytes.as_slice());
        js_sys::Reflect::set(&object, &name.into(), &array)
            .map_err(|e| TrainError::Checkpoint(format!("{e:?}")))?;
    }
    Ok(object)
}

/// Reads a checkpoint from a JS object `{file name: Uint8Array}`, checking every file.
pub(crate) fn checkpoint_from_js(files: &js_sys::Object) -> Result<Checkpoint, TrainError> {
    Checkpoint::from_files(|name| {
        let value = js_sys::Reflect::get(files, &name.into()).ok()?;
        value
            .dyn_into::<js_sys::Uint8Array>()
            .ok()
            .map(|a| a.to_vec())
    })
}

/// The worker's `on_event(json) -> keep going?` and `on_checkpoint(step, files)` callbacks as
/// the training loop's hooks. A throwing event handler stops the run; [`JsHooks::check`]
/// reports it afterwards.
pub(crate) struct JsHooks {
    on_event: js_sys::Function,
    on_checkpoint: js_sys::Function,
    error: RefCell<Option<JsValue>>,
}

impl JsHooks {
    pub(crate) fn new(on_event: js_sys::Function, on_checkpoint: js_sys::Function) -> Self {
        Self {
            on_event,
            on_checkpoint,
            error: RefCell::new(None),
        }
    }

    /// Hands an event to the page; `Break` when it returns `false` or throws.
    pub(crate) fn event(&self, event: &hearth_train::Event) -> ControlFlow<()> {
        let Ok(json) = serde_json::to_string(event) else {
            return ControlFlow::Continue(());
        };
        match self.on_event.call1(&JsValue::NULL, &json.into()) {
            Ok(keep_going) if keep_going == JsValue::FALSE => ControlFlow::Break(()),
            Ok(_) => ControlFlow::Continue(()),
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    /// Hands a checkpoint to the page to store.
    pub(crate) fn checkpoint(&self, checkpoint: Checkpoint) -> Result<(), TrainError> {
        let files = checkpoint_to_js(&checkpoint)?;
        self.on_checkpoint
            .call2(&JsValue::NULL, &(checkpoint.step() as u32).into(), &files)
            .map_err(|e| TrainError::Checkpoint(format!("the page could not store it: {e:?}")))?;
        Ok(())
    }

    /// The error of a throwing event handler, if one threw.
    pub(crate) fn check(&self) -> Result<(), JsError> {
        match self.error.borrow_mut().take() {
            Some(e) => Err(js_error(format!("the page's event handler failed: {e:?}"))),
            None => Ok(()),
        }
    }
}

/// Checks a stored checkpoint without training: its step as JSON `{step}`, or the reason it
/// cannot be used (the page then tries an older one).
#[wasm_bindgen(js_name = checkCheckpoint)]
pub fn check_checkpoint(files: js_sys::Object) -> Result<String, JsError> {
    let checkpoint = checkpoint_from_js(&files).map_err(js_error)?;
    let record = checkpoint.record().map_err(js_error)?;
    to_json(&serde_json::json!({
        "step": checkpoint.step(),
        "steps": record.job.train.steps,
        "job": record.job,
    }))
}

/// The model's files from the worker: `names[i]` is the file name of `contents[i]`.
pub(crate) fn named_files(
    names: Vec<String>,
    contents: &js_sys::Array,
) -> Result<NamedFiles, JsError> {
    names
        .into_iter()
        .zip(contents.iter())
        .map(|(name, value)| {
            let bytes = value
                .dyn_into::<js_sys::Uint8Array>()
                .map_err(|_| js_error(format!("{name}: expected bytes")))?;
            Ok((name, bytes.to_vec()))
        })
        .collect()
}

/// Trains the job on WebGPU, whatever its task: the model's files by name (`names[i]` is the
/// file name of `contents[i]`: a BERT directory's or a chat model's `config.json`,
/// `model.safetensors`, `tokenizer.json` and optional `tokenizer_config.json` and
/// `chat_template.jinja`, or one `.gguf` file) and the dataset file's bytes. `on_event`
/// receives every event as a JSON string (the first is `data`); when it returns `false` the run
/// stops after the current step and still returns its adapter. `on_checkpoint(step, files)`
/// receives every checkpoint as `{file name: Uint8Array}` to store; `resume`, such an object
/// read back, continues the run from that checkpoint. `train.fit` is applied against this
/// GPU's limits, as the CLI applies it against its machine's.
#[wasm_bindgen]
pub async fn train(
    job_json: String,
    names: Vec<String>,
    contents: js_sys::Array,
    data: Vec<u8>,
    on_event: js_sys::Function,
    on_checkpoint: js_sys::Function,
    resume: Option<js_sys::Object>,
) -> Result<TrainedAdapter, JsError> {
    let (device, limits) = current_device()?;
    let device = device.autodiff();
    let job = JobSpec::parse(&job_json).map_err(js_error)?;
    let resume = resume
        .map(|files| checkpoint_from_js(&files))
        .transpose()
        .map_err(js_error)?;
    let model = named_files(names, &contents)?;
    drop(contents);
    // What a merged download needs besides the trained weights (classifiers only).
    let kept = |name: &str| {
        hearth_train::base::file(&model, name)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let (base_config, base_tokenizer) = if job.task.is_sft() {
        (Vec::new(), Vec::new())
    } else {
        (kept("config.json"), kept("tokenizer.json"))
    };
    let hooks = JsHooks::new(on_event, on_checkpoint);
    let output = hearth_train::start(
        &job,
        RunInputs {
            model,
            data,
            init_adapter: None,
        },
        &device,
        &limits,
        resume.as_ref(),
        RunHooks {
            on_event: &mut |e| hooks.event(e),
            on_checkpoint: &mut |c| hooks.checkpoint(c),
            collective: &hearth_train::Single,
            stop: None,
        },
    )
    .await
    .map_err(js_error)?;
    hooks.check()?;
    let summary = to_json(&output.summary)?;
    TRAINED.with(|t| {
        *t.borrow_mut() = Some(Trained {
            model: output.model,
            labels: output.labels,
            task: output.job.task.clone(),
            batch_size: output.job.train.batch_size,
            base_config,
            base_tokenizer,
        })
    });
    Ok(TrainedAdapter {
        files: output.files,
        summary,
    })
}
