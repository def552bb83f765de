// The memory plan panel: the form's job estimated against this GPU's limits before Start
// (`hearth_train::plan`, the table `hearth plan` prints). The run itself applies `train.fit`
// inside the module; this panel only shows what the planner expects.
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
    if (isSft()) {
      showPlan({ error: "the memory planner models BERT-family classifiers; chat models are not planned yet" });
      return;
    }
    const demo = modelSource() === "demo";
    const config = demo ? null : new TextDecoder().decode(state.modelFiles["config.json"]);
    const outputs = reportedOutputs();
    outputsNote = {
      assumed: !outputs,
      text: outputs ? `Head outputs: ${outputs.count} (${outputs.from}).`
        : `Head outputs: ${ASSUMED_OUTPUTS}, assumed until the data report has read the label column.`,
    };
    post({ type: "plan", job: buildJob(), config, context: planContext() });
  }, 200);
}

/** What the planner is told besides the job: the head's outputs and the files' sizes. */
export function planContext() {
  return {
    num_outputs: reportedOutputs()?.count ?? ASSUMED_OUTPUTS,
    model_file_bytes: modelSource() === "demo" ? 0 : state.modelFiles["model.safetensors"]?.byteLength ?? 0,
    data_file_bytes: state.data?.file?.size ?? 0,
  };
}

export function showPlan(msg) {
  $("plan-panel").hidden = false;
  $("plan-text").textContent = msg.error ? `The plan could not be made: ${msg.error}` : msg.text;
  $("plan-panel").dataset.fits = msg.error ? "unknown" : String(msg.fits);
  $("plan-outputs").textContent = msg.error ? "" : outputsNote.text;
  $("plan-outputs").dataset.assumed = String(outputsNote.assumed);
}
