//! The module's set-up and the functions around a run: the panic hook, WebGPU, a dataset's
//! columns, the default job, checking and planning a job. Arguments and results are bytes and
//! JSON strings; the worker turns them into the page's messages.

use std::cell::RefCell;

use burn::tensor::Device;
use hearth_data::DataFormat;
use hearth_train::plan::Limits;
use hearth_train::{JobSpec, Task};
use serde::Serialize;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The WebGPU device and the adapter's limits (for the memory planner), set once by
    /// [`init_gpu`].
    static DEVICE: RefCell<Option<(Device, Limits)>> = const { RefCell::new(None) };
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
    let planner_limits = Limits::browser(
        Some(limits.max_buffer_size),
        Some(limits.max_storage_buffer_binding_size),
    );
    DEVICE.with(|d| *d.borrow_mut() = Some((device, planner_limits)));
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

pub(crate) fn format_of(file_name: &str) -> Result<DataFormat, JsError> {
    DataFormat::resolve(None, std::path::Path::new(file_name)).map_err(js_error)
}

/// The columns of a dataset file and guesses for the text and label columns, as JSON
/// `{names, text, label}`.
#[wasm_bindgen(js_name = detectColumns)]
pub fn detect_columns(bytes: &[u8], file_name: &str) -> Result<String, JsError> {
    let columns = hearth_data::detect_columns(bytes, format_of(file_name)?).map_err(js_error)?;
    to_json(&columns)
}

/// The WebGPU device [`init_gpu`] set up, and its limits for the planner.
pub(crate) fn current_device() -> Result<(Device, Limits), JsError> {
    DEVICE
        .with(|d| d.borrow().clone())
        .ok_or_else(|| js_error("WebGPU is not initialized yet"))
}

/// A job with every setting at its default for the task `task_kind` (`classification` when
/// absent, `multi_label`, `regression` or `sft`), as JSON, for the form to start from.
#[wasm_bindgen(js_name = defaultJob)]
pub fn default_job(task_kind: Option<String>) -> Result<String, JsError> {
    let kind = task_kind.unwrap_or_else(|| "classification".into());
    let task: Task = serde_json::from_value(serde_json::json!({ "kind": kind }))
        .map_err(|e| js_error(format!("task {kind:?}: {e}")))?;
    to_json(&JobSpec::default_for(task, "model", "data.csv").map_err(js_error)?)
}

/// Parses and validates a job built by the page; returns it as the pretty JSON that
/// `hearth train --job` reads, or the message naming the setting to change.
#[wasm_bindgen(js_name = checkJob)]
pub fn check_job(json: &str) -> Result<String, JsError> {
    Ok(JobSpec::parse(json).map_err(js_error)?.to_json())
}

/// The memory plan of a job before Start: `job_json` (the form's job), the model's small files
/// by name (`names[i]` is the file name of `contents[i]`: `config.json`, or a chat model's
/// `.gguf` file, of which its first bytes, holding its header, are enough), the limits as JSON
/// `{max_buffer_size, max_storage_binding}` (the WebGPU adapter's; the 4 GiB wasm heap is added
/// here) and the context as JSON `{num_outputs, model_file_bytes, data_file_bytes, data_rows,
/// longest_row}`. Returns `{plan, text}`: the plan and the table `hearth plan` prints.
#[wasm_bindgen(js_name = planJob)]
pub fn plan_job(
    job_json: &str,
    names: Vec<String>,
    contents: js_sys::Array,
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
    let files = crate::run::named_files(names, &contents)?;
    let gpu: GpuLimits =
        serde_json::from_str(limits_json).map_err(|e| js_error(format!("plan limits: {e}")))?;
    let ctx: hearth_train::plan::Context =
        serde_json::from_str(context_json).map_err(|e| js_error(format!("plan context: {e}")))?;
    let limits = Limits::browser(gpu.max_buffer_size, gpu.max_storage_binding);
    let plan = hearth_train::plan::plan_named(&job, &files, &limits, &ctx).map_err(js_error)?;
    let text = hearth_train::plan::render(&plan);
    to_json(&Planned { plan, text })
}
