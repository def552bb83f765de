// What the user hands the page: the model's files and the dataset, picked, dropped or the demo
// ones, and the dataset's columns as the worker guesses them. Files are read on this device only.
import { $, post, setStatus, state } from "./ui.js";
import { HF_FILES, MODEL_NAMES } from "./form.js";
import { requestReport } from "./report.js";
import { updateButtons } from "./run.js";
import { proposeTaskFromColumns, resetProposal } from "./propose.js";
import { offerRemember } from "./remember.js";

/** The demo model's folder in the repository, written into the exported job while it is chosen. */
const DEMO_MODEL_PATH = "assets/all-MiniLM-L6-v2";

export async function addModelFiles(files) {
  for (const f of files) {
    const name = f.name.split("/").pop();
    if (MODEL_NAMES.includes(name) || name.endsWith(".gguf")) {
      state.modelFiles[name] = await f.arrayBuffer();
    }
  }
  const have = Object.keys(state.modelFiles);
  const gguf = have.some((n) => n.endsWith(".gguf"));
  const missing = gguf ? [] : HF_FILES.filter((n) => !have.includes(n));
  document.querySelector('input[name="model-source"][value="files"]').checked = true;
  if ($("model-path").value === DEMO_MODEL_PATH) $("model-path").value = "my-model";
  resetProposal();
  if (state.columns) proposeTaskFromColumns(state.columns);
  requestReport();
  offerRemember(missing.length === 0);
  setStatus($("model-status"), missing.length
    ? `Have ${have.join(", ") || "nothing yet"}; still need ${missing.join(", ")}.`
    : gguf ? "The GGUF model file is loaded." : "All three model files are loaded.", missing.length ? "error" : "ok");
  updateButtons();
}

export async function setData(name, file, demo = false) {
  state.data = { name, file, demo };
  state.columns = null;
  resetProposal();
  setStatus($("data-status"), `${name}: ${(file.size / 1024).toFixed(1)} KiB, read locally.`);
  // The columns show in the first MiB (a JSON array must be read whole).
  const head = /\.json$/i.test(name) ? file : file.slice(0, 1 << 20);
  post({ type: "columns", name, bytes: await head.arrayBuffer() });
  updateButtons();
}

export function fillColumns({ names, text, label }) {
  for (const [id, guess] of [["text-column", text], ["label-column", label]]) {
    $(id).replaceChildren(...names.map((n) => new Option(n, n, n === guess, n === guess)));
  }
  setStatus($("data-status"), `${state.data.name}: columns ${names.join(", ")}. ` +
    `Guessed text “${text ?? "?"}” and label “${label ?? "?"}”; change them if wrong.`, "ok");
  state.columns = names;
  proposeTaskFromColumns(names);
  requestReport();
}

export async function useDemoData() {
  try {
    const response = await fetch("data/demo.csv");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await setData("demo.csv", await response.blob(), true);
  } catch (e) {
    setStatus($("data-status"), `The demo data is not available: ${e.message}`, "error");
  }
}

/** Files dropped anywhere on the page: a dataset, model files, or both. */
export async function dropFiles(list) {
  const files = [...list];
  const data = files.find((f) => /\.(csv|tsv|tab|jsonl|ndjson|txt)$/i.test(f.name));
  if (data) await setData(data.name, data);
  const model = files.filter((f) => /\.(json|safetensors|jinja|gguf)$/i.test(f.name));
  if (model.length) await addModelFiles(model);
}
