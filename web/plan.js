// The memory plan panel: the form's job, a classifier's or a chat model's, estimated against
// this GPU's limits before Start (`hearth_train::plan`, the table `hearth plan` prints). The
// run itself applies `train.fit` inside the module; this panel only shows what the planner
// expects.
import { $, post, state } from "./ui.js";
import { buildJob, isSft, modelReady, modelSource } from "./form.js";
import { reportedOutputs } from "./report.js";

/** Without a data report the head's size is a guess; it barely changes the estimate. */
const ASSUMED_OUTPUTS = 2;

let timer = null;
/** What the last request assumed about the head, shown with its answer. */
let outputsNote = { text: "", assumed: false };

/** Asks the worker for the job's memory plan against this GPU's limits (debounced). */
export function requestPlan() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!state.ready || state.running || !modelReady()) return;
    // A chat model's head is its vocabulary, read from its files.
    const outputs = reportedOutputs();
    outputsNote = isSft() ? { assumed: false, text: "" } : {
      assumed: !outputs,
      text: outputs ? `Head outputs: ${outputs.count} (${outputs.from}).`
        : `Head outputs: ${ASSUMED_OUTPUTS}, assumed until the data report has read the label column.`,
    };
    post({ type: "plan", job: buildJob(), files: planFiles(), context: planContext() });
  }, 200);
}

/** A GGUF file's bytes sent to be planned from: its header (metadata, vocabulary, tensor list)
 * is a few MiB in the files people use, not the GB of weights after it. Grown when a plan
 * finds the header cut. */
let ggufHead = 16 << 20;

/** The model's files the planner reads (null: the demo model's): its `config.json`, or a chat
 * model's `.gguf` file's first bytes. Copies: the page keeps its own. */
export function planFiles() {
  if (modelSource() === "demo") return null;
  const gguf = ggufFile();
  if (gguf) return [[gguf[0], gguf[1].slice(0, Math.min(gguf[1].byteLength, ggufHead))]];
  const config = state.modelFiles["config.json"];
  return config ? [["config.json", config.slice(0)]] : [];
}

/** The chosen model's `.gguf` file as `[name, bytes]`, if it is one. */
const ggufFile = () => Object.entries(state.modelFiles).find(([name]) => name.endsWith(".gguf"));

/** Whether a plan's `error` says the GGUF header was cut; then the next plan sends more of it. */
function grewHead(error) {
  const gguf = ggufFile();
  if (!gguf || !/truncated GGUF/.test(error) || ggufHead >= gguf[1].byteLength) return false;
  ggufHead *= 4;
  return true;
}

/** The bytes of the model's files held while its base loads: a classifier's weights file, all
 * of a chat model's files (as `hearth plan` counts them). */
function modelFileBytes() {
  if (modelSource() === "demo") return 0;
  if (!isSft()) return state.modelFiles["model.safetensors"]?.byteLength ?? 0;
  return Object.values(state.modelFiles).reduce((sum, bytes) => sum + bytes.byteLength, 0);
}

/** What the planner is told besides the job: the head's outputs and the files' sizes. A chat
 * job is estimated with every row at the max length (as packing fills them). */
export function planContext() {
  return {
    num_outputs: isSft() ? 1 : reportedOutputs()?.count ?? ASSUMED_OUTPUTS,
    model_file_bytes: modelFileBytes(),
    data_file_bytes: state.data?.file?.size ?? 0,
  };
}

export function showPlan(msg) {
  if (msg.error && grewHead(msg.error)) {
    requestPlan();
    return;
  }
  $("plan-panel").hidden = false;
  $("plan-text").textContent = msg.error ? `The plan could not be made: ${msg.error}` : msg.text;
  $("plan-panel").dataset.fits = msg.error ? "unknown" : String(msg.fits);
  $("plan-outputs").textContent = msg.error ? "" : outputsNote.text;
  $("plan-outputs").dataset.assumed = String(outputsNote.assumed);
}
