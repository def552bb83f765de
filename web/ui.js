// What every part of the page shares: the element lookup, status lines, the page's state, the
// message to the worker and the download links. It imports nothing, so every module can use it.

export const $ = (id) => document.getElementById(id);

/** The page's state; each field is written by the module named beside it. */
export const state = {
  worker: null,          // app.js: the module worker
  ready: false,          // app.js: the worker's WebGPU and wasm module are up
  defaults: null,        // app.js: the module's default job per task kind, from "ready"
  running: false,        // run.js
  generating: false,     // run.js: the chat model is answering
  modelFiles: {},        // inputs.js: name → ArrayBuffer, for "my model"
  data: null,            // inputs.js: {name, file: Blob, demo}; read whole only when a run starts
  columns: null,         // inputs.js: the data's column names, once the worker has read them
  report: null,          // report.js: the last data report and the settings it was made with
  job: null,             // run.js: the job of the current run (as sent, or as resumed)
  fitNote: "",           // run.js: what train.fit changed in the current run, for its status
  steps: [],             // run.js: {step, loss, learning_rate}, for the chart
  labels: [],            // run.js: the run's label names, from its "data" event
  totalSteps: 0,         // run.js
  startedAt: 0,          // run.js
  firstStep: null,       // run.js: when the run's first step (of this session) ended
  firstStepNo: 0,        // run.js: ... and its number
  downloads: [],         // ui.js: object URLs of the offered files, revoked by the next run
  restarts: 0,           // app.js: worker restarts since the last successful start
  trained: false,        // run.js: the worker holds a trained model for "try it"
  trainedChat: false,    // run.js: ... and it is a chat model (SFT)
  pending: null,         // run.js: the stored run that can be resumed, as the worker last said
  keptUrls: [],          // run.js: object URLs of the kept runs' files, revoked when redrawn
};

export function setStatus(el, text, kind = "note") {
  el.textContent = text;
  el.className = kind;
}

export const post = (msg, transfer = []) => state.worker.postMessage(msg, transfer);

/** Offers `blob` as a link in the list `where` ("downloads", "merged"), or downloads it at
 * once ("job"). */
export function download(name, blob, where = "downloads") {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.textContent = `${name} (${(blob.size / 1024).toFixed(1)} KiB)`;
  if (where === "job") {
    a.click();
    // A one-off download: the browser has the bytes once it starts.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return;
  }
  state.downloads.push(url);
  const li = document.createElement("li");
  li.appendChild(a);
  $(where === "merged" ? "merged-downloads" : "downloads").appendChild(li);
}

/** Drops the offered links of the last run. */
export function clearDownloads() {
  $("downloads").replaceChildren();
  $("merged-downloads").replaceChildren();
  state.downloads.forEach((url) => URL.revokeObjectURL(url));
  state.downloads = [];
}

/** A table row headed by `label` (a `th scope="row"`), its cells after it. */
export function headedRow(section, label, cells = []) {
  const row = section.insertRow();
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = label;
  row.appendChild(th);
  for (const c of cells) row.insertCell().textContent = String(c);
  return row;
}
