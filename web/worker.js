// Hearth's module worker: everything heavy runs here (WebGPU set-up, model loading,
// tokenization, training, evaluation, adapter export); the page only renders.
//
// Protocol. Page → worker:
//   {type: "init"}
//   {type: "columns", name, bytes: ArrayBuffer}
//   {type: "job", job}                           validate a job for export
//   {type: "train", job, model: {demo: true} | {config, weights, tokenizer}, data: ArrayBuffer}
//   {type: "stop"}
// Worker → page:
//   {type: "ready", gpu, defaults} | {type: "no-webgpu", message}
//   {type: "columns", columns: {names, text, label}}
//   {type: "job", json}
//   {type: "loading", what}
//   {type: "event", event}                       started / step / evaluated / finished
//   {type: "done", adapter: {config, weights: ArrayBuffer, record}, summary}
//   {type: "error", message, fatal}              fatal: the module must be restarted
import init, { initGpu, detectColumns, defaultJob, checkJob, train } from "./pkg/hearth_web.js";

let stopRequested = false;
let busy = false;

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
const errorText = (e) => (e && e.message) ? e.message : String(e);

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function boot() {
  if (!self.navigator.gpu) {
    post({ type: "no-webgpu", message: "This browser exposes no WebGPU to workers." });
    return;
  }
  const adapter = await self.navigator.gpu.requestAdapter();
  if (!adapter) {
    post({ type: "no-webgpu", message: "WebGPU is present but no GPU adapter is available." });
    return;
  }
  await init();
  const gpu = JSON.parse(await initGpu());
  // The browser's own description of the adapter (wgpu often gets no name from it).
  const info = adapter.info ?? {};
  gpu.browser = { vendor: info.vendor ?? "", architecture: info.architecture ?? "",
                  device: info.device ?? "", description: info.description ?? "" };
  post({ type: "ready", gpu, defaults: JSON.parse(defaultJob()) });
}

async function runTraining(msg) {
  busy = true;
  stopRequested = false;
  try {
    let files;
    if (msg.model.demo) {
      post({ type: "loading", what: "the demo model" });
      const [config, weights, tokenizer] = await Promise.all(
        ["config.json", "model.safetensors", "tokenizer.json"].map((f) => fetchBytes(`models/demo/${f}`)));
      files = { config, weights, tokenizer };
    } else {
      files = {
        config: new Uint8Array(msg.model.config),
        weights: new Uint8Array(msg.model.weights),
        tokenizer: new Uint8Array(msg.model.tokenizer),
      };
    }
    post({ type: "loading", what: "the model onto the GPU" });
    const onEvent = (json) => {
      post({ type: "event", event: JSON.parse(json) });
      return !stopRequested;
    };
    const trained = await train(JSON.stringify(msg.job), files.config, files.weights, files.tokenizer,
      new Uint8Array(msg.data), onEvent);
    const weights = trained.weights;
    const adapter = { config: trained.config, record: trained.record, weights: weights.buffer };
    post({ type: "done", adapter, summary: JSON.parse(trained.summary) }, [weights.buffer]);
    trained.free();
  } finally {
    busy = false;
  }
}

self.onmessage = async ({ data: msg }) => {
  try {
    switch (msg.type) {
      case "init": await boot(); break;
      case "columns":
        post({ type: "columns", name: msg.name,
               columns: JSON.parse(detectColumns(new Uint8Array(msg.bytes), msg.name)) });
        break;
      case "job": post({ type: "job", json: checkJob(JSON.stringify(msg.job)) }); break;
      case "train":
        if (busy) throw new Error("a run is already going");
        await runTraining(msg);
        break;
      case "stop": stopRequested = true; break;
      default: throw new Error(`unknown message ${msg.type}`);
    }
  } catch (e) {
    // A wasm trap (a panic) leaves the module unusable; the page restarts the worker.
    const fatal = e instanceof WebAssembly.RuntimeError;
    post({ type: "error", message: errorText(e), fatal, during: msg.type });
  }
};
