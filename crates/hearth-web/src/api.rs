//! The functions the worker calls. Arguments and results are bytes and JSON strings; the worker
//! turns them into the page's messages.

use std::cell::RefCell;
use std::ops::ControlFlow;

use burn::tensor::Device;
use hearth_data::DataFormat;
use hearth_models::ModelFiles;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::tokenizer::TextTokenizer;
use hearth_train::{AdapterFiles, Checkpoint, JobSpec, TrainError};
use serde::Serialize;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The WebGPU device, set once by [`init_gpu`].
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// Installs a panic hook that sends the panic's message to the page before the module dies.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = format!("Hearth crashed: {info}");
        web_sys::console::error_1(&message.as_str().into());
        let report = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&report, &"type".into(), &"error".into());
        let _ = js_sys::Reflect::set(&report, &"fatal".into(), &true.into());
        let _ = js_sys::Reflect::set(&report, &"message".into(), &message.as_str().into());
        if let Ok(scope) = js_sys::global().dyn_into::<web_sys::DedicatedWorkerGlobalScope>() {
            let _ = scope.post_message(&report);
        }
    }));
}

pub(crate) fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(js_error)
}

/// What the page shows about the GPU the run uses.
#[derive(Serialize)]
struct GpuInfo {
    name: String,
    vendor: u32,
    device: u32,
    device_type: String,
    driver: String,
    driver_info: String,
    backend: String,
    max_buffer_size: u64,
    max_storage_buffer_binding_size: u64,
}

/// Acquires the WebGPU adapter and device through burn and returns the adapter's description
/// as JSON. Must run once before [`train`].
#[wasm_bindgen(js_name = initGpu)]
pub async fn init_gpu() -> Result<String, JsError> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| js_error(format!("WebGPU could not be initialized: {e}")))?;
    let info = setup.adapter.get_info();
    let limits = setup.device.limits();
    DEVICE.with(|d| *d.borrow_mut() = Some(device));
    to_json(&GpuInfo {
        name: info.name,
        vendor: info.vendor,
        device: info.device,
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        backend: format!("{:?}", info.backend),
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
    })
}

fn format_of(file_name: &str) -> Result<DataFormat, JsError> {
    DataFormat::resolve(None, std::path::Path::new(file_name)).map_err(js_error)
}

/// The columns of a dataset file and guesses for the text and label columns, as JSON
/// `{names, text, label}`.
#[wasm_bindgen(js_name = detectColumns)]
pub fn detect_columns(bytes: &[u8], file_name: &str) -> Result<String, JsError> {
    let columns = hearth_data::detect_columns(bytes, format_of(file_name)?).map_err(js_error)?;
    to_json(&columns)
}

/// Settings of the page's data report: the planned run's split (for the leakage check) and
/// max length (for truncation).
#[derive(serde::Deserialize)]
struct InspectSettings {
    text_column: String,
    label_column: Option<String>,
    max_length: usize,
    eval_fraction: f64,
    seed: u64,
}

/// The data-quality report of a dataset file, built from chunks of the file so that a large
/// file never sits in the module's memory: `sniff` every chunk (pass 1, the encoding), `push`
/// every chunk again (pass 2, the rows), then `finish` for the report as JSON (the same report
/// as `hearth inspect --json`).
#[wasm_bindgen]
pub struct InspectStream {
    format: DataFormat,
    settings: InspectSettings,
    sniffer: Option<hearth_data::stream::EncodingSniffer>,
    stream: Option<hearth_data::stream::RowStream>,
    builder: hearth_data::quality::ReportBuilder<'static>,
}

#[wasm_bindgen]
impl InspectStream {
    /// A report of the file `file_name` (its extension gives the format) with the page's
    /// settings; `tokenizer` (bytes of `tokenizer.json`, or `undefined`) adds token figures.
    #[wasm_bindgen(constructor)]
    pub fn new(
        file_name: &str,
        settings_json: &str,
        tokenizer: Option<Vec<u8>>,
    ) -> Result<InspectStream, JsError> {
        let settings: InspectSettings = serde_json::from_str(settings_json).map_err(js_error)?;
        let counter = tokenizer
            .map(|t| hearth_models::tokenizer::TokenCounter::from_bytes(&t))
            .transpose()
            .map_err(js_error)?;
        let tokens = counter.map(|c| {
            Box::new(move |t: &str| c.count(t)) as hearth_data::quality::BoxedTokenCounter<'static>
        });
        let options = hearth_data::quality::InspectOptions {
            max_length: settings.max_length,
            ..Default::default()
        };
        Ok(Self {
            format: format_of(file_name)?,
            settings,
            sniffer: Some(hearth_data::stream::EncodingSniffer::new()),
            stream: None,
            builder: hearth_data::quality::ReportBuilder::new(options, tokens),
        })
    }

    /// Pass 1: the next chunk, for the encoding.
    pub fn sniff(&mut self, chunk: &[u8]) {
        if let Some(sniffer) = &mut self.sniffer {
            sniffer.push(chunk);
        }
    }

    /// Pass 2: the next chunk, for the rows.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        if let Some(sniffer) = self.sniffer.take() {
            self.stream = Some(hearth_data::stream::RowStream::new(
                self.format,
                sniffer.finish(),
                &self.settings.text_column,
                self.settings.label_column.as_deref(),
            ));
        }
        let (Some(stream), builder) = (&mut self.stream, &mut self.builder) else {
            return Err(js_error("push after finish"));
        };
        stream
            .push(chunk, &mut |t, l| builder.push(t, l))
            .map_err(js_error)
    }

    /// Rows read so far.
    pub fn rows(&self) -> usize {
        self.builder.rows()
    }

    /// The report, as JSON.
    pub fn finish(mut self) -> Result<String, JsError> {
        if self.stream.is_none() {
            self.push(&[])?;
        }
        let Some(stream) = self.stream.take() else {
            return Err(js_error("nothing was read"));
        };
        let mut builder = self.builder;
        let load = stream
            .finish(&mut |t, l| builder.push(t, l))
            .map_err(js_error)?;
        let holdout = hearth_data::quality::planned_holdout(
            builder.rows(),
            None,
            self.settings.eval_fraction,
            self.settings.seed,
        );
        let report = builder.finish(
            &load,
            holdout
                .as_ref()
                .map(|s| (s.train.as_slice(), s.eval.as_slice())),
        );
        to_json(&report)
    }
}

/// A job with every setting at its default, as JSON, for the form to start from.
#[wasm_bindgen(js_name = defaultJob)]
pub fn default_job() -> Result<String, JsError> {
    let job =
        JobSpec::parse(r#"{"model": {"path": "all-MiniLM-L6-v2"}, "data": {"path": "data.csv"}}"#)
            .map_err(js_error)?;
    to_json(&job)
}

/// Parses and validates a job built by the page; returns it as the pretty JSON that
/// `hearth train --job` reads, or the message naming the setting to change.
#[wasm_bindgen(js_name = checkJob)]
pub fn check_job(json: &str) -> Result<String, JsError> {
    Ok(JobSpec::parse(json).map_err(js_error)?.to_json())
}

/// The memory plan of a job before Start: `job_json` (the form's job), the model's
/// `config.json` text, the limits as JSON `{max_buffer_size, max_storage_binding}` (the WebGPU
/// adapter's; the 4 GiB wasm heap is added here) and the context as JSON `{num_outputs,
/// model_file_bytes, data_file_bytes, data_rows}`. Returns `{plan, text}`: the plan and the
/// table `hearth plan` prints.
#[wasm_bindgen(js_name = planJob)]
pub fn plan_job(
    job_json: &str,
    config_json: &str,
    limits_json: &str,
    context_json: &str,
) -> Result<String, JsError> {
    #[derive(serde::Deserialize)]
    struct GpuLimits {
        max_buffer_size: Option<u64>,
        max_storage_binding: Option<u64>,
    }
    #[derive(Serialize)]
    struct Planned {
        plan: hearth_train::plan::Plan,
        text: String,
    }
    let job = JobSpec::parse(job_json).map_err(js_error)?;
    let gpu: GpuLimits =
        serde_json::from_str(limits_json).map_err(|e| js_error(format!("plan limits: {e}")))?;
    let ctx: hearth_train::plan::Context =
        serde_json::from_str(context_json).map_err(|e| js_error(format!("plan context: {e}")))?;
    let limits = hearth_train::plan::Limits::browser(gpu.max_buffer_size, gpu.max_storage_binding);
    let plan =
        hearth_train::plan::plan(&job, config_json.as_bytes(), &limits, &ctx).map_err(js_error)?;
    let text = hearth_train::plan::render(&plan);
    to_json(&Planned { plan, text })
}

/// A trained run's files and its summary.
#[wasm_bindgen]
pub struct TrainedAdapter {
    files: AdapterFiles,
    summary: String,
}

impl TrainedAdapter {
    pub(crate) fn new(files: AdapterFiles, summary: String) -> Self {
        Self { files, summary }
    }
}

/// The WebGPU device [`init_gpu`] set up.
pub(crate) fn current_device() -> Result<Device, JsError> {
    DEVICE
        .with(|d| d.borrow().clone())
        .ok_or_else(|| js_error("WebGPU is not initialized yet"))
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

/// The trained model of the last run and what `classify` needs with it.
struct Trained {
    model: BertForSequenceClassification,
    tokenizer: TextTokenizer,
    labels: Vec<String>,
    task: hearth_train::Task,
    batch_size: usize,
    /// The base model's `config.json` and `tokenizer.json`, for a merged download.
    base_config: Vec<u8>,
    base_tokenizer: Vec<u8>,
}

thread_local! {
    /// The model the last run trained, for the page's "try it" box.
    static TRAINED: RefCell<Option<Trained>> = const { RefCell::new(None) };
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

/// Trains the job on WebGPU. `on_event` receives every training event as a JSON string; when it
/// returns `false` the run stops after the current step and still returns its adapter.
/// `on_checkpoint(step, files)` receives every checkpoint as `{file name: Uint8Array}` to store;
/// `resume`, such an object read back, continues the run from that checkpoint.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub async fn train(
    job_json: String,
    config: Vec<u8>,
    weights: Vec<u8>,
    tokenizer: Vec<u8>,
    data: Vec<u8>,
    on_event: js_sys::Function,
    on_checkpoint: js_sys::Function,
    resume: Option<js_sys::Object>,
) -> Result<TrainedAdapter, JsError> {
    let device = current_device()?.autodiff();
    let job = JobSpec::parse(&job_json).map_err(js_error)?;
    let resume = resume
        .map(|files| checkpoint_from_js(&files))
        .transpose()
        .map_err(js_error)?;
    let dataset = hearth_train::run::load_dataset(&job, &data).map_err(js_error)?;
    drop(data);
    let split = hearth_train::run::split(&job, dataset).map_err(js_error)?;
    // The page learns the label names and how the file was decoded before the first step.
    let data_event = serde_json::json!({
        "event": "data",
        "labels": split.dataset.label_names,
        "class_counts": split.dataset.label_counts(),
        "task": job.task,
        "report": split.dataset.report,
    });
    on_event
        .call1(&JsValue::NULL, &data_event.to_string().into())
        .map_err(|e| js_error(format!("the page's event handler failed: {e:?}")))?;
    let files = ModelFiles {
        config,
        weights,
        tokenizer,
        adapter: None,
    };
    let hooks = JsHooks::new(on_event, on_checkpoint);
    let output = hearth_train::run::run(
        &job,
        &files,
        &split,
        &device,
        resume.as_ref(),
        &mut |e| hooks.event(e),
        &mut |c| hooks.checkpoint(c),
    )
    .await
    .map_err(js_error)?;
    hooks.check()?;
    let adapter = AdapterFiles::export(&job, &output.model, &output.labels, &files)
        .await
        .map_err(js_error)?;
    let tokenizer =
        TextTokenizer::from_bytes(&files.tokenizer, job.train.max_length).map_err(js_error)?;
    TRAINED.with(|t| {
        *t.borrow_mut() = Some(Trained {
            model: output.model,
            tokenizer,
            labels: output.labels.clone(),
            task: job.task.clone(),
            batch_size: job.train.batch_size,
            base_config: files.config.clone(),
            base_tokenizer: files.tokenizer.clone(),
        })
    });
    Ok(TrainedAdapter {
        files: adapter,
        summary: to_json(&output.summary)?,
    })
}

/// Predicts for texts (a JSON array of strings) with the model the last run trained: base
/// model plus adapter. Returns JSON `[{text, label, scores: {label: probability}}]` for
/// classification, `[{text, labels, scores}]` for multi-label, `[{text, value}]` for
/// regression.
#[wasm_bindgen]
pub async fn classify(texts_json: String) -> Result<String, JsError> {
    let texts: Vec<String> = serde_json::from_str(&texts_json).map_err(js_error)?;
    let (model, tokenizer, labels, task, batch_size) = TRAINED
        .with(|t| {
            t.borrow().as_ref().map(|t| {
                (
                    t.model.clone(),
                    t.tokenizer.clone(),
                    t.labels.clone(),
                    t.task.clone(),
                    t.batch_size,
                )
            })
        })
        .ok_or_else(|| js_error("train a model first"))?;
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
    let (model, labels, task, config, tokenizer) = TRAINED
        .with(|t| {
            t.borrow().as_ref().map(|t| {
                (
                    t.model.clone(),
                    t.labels.clone(),
                    t.task.clone(),
                    t.base_config.clone(),
                    t.base_tokenizer.clone(),
                )
            })
        })
        .ok_or_else(|| js_error("train a model first"))?;
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
