// Hearth's page: renders and relays; all heavy work is in worker.js. This entry starts the
// worker, hands each of its messages to the module that renders it, and wires the controls.
// The modules: form.js (the job from the controls), inputs.js (model and data files),
// propose.js (the task and settings proposed from them), remember.js (the user's model kept in
// this browser, when asked), report.js (data report), plan.js (memory plan), run.js (a run and
// its progress), chart.js (loss chart), tryit.js (the trained model), ui.js (what they share);
// sw.js is the service worker that keeps the page working offline.
import { $, download, post, setStatus, state } from "./ui.js";
import { buildJob, fillForm, showTaskFields } from "./form.js";
import { onBatch, proposeTaskFromColumns, resetProposal, wireProposals } from "./propose.js";
import { restoreRemembered, wireRemember } from "./remember.js";
import { addModelFiles, dropFiles, fillColumns, setData, useDemoData } from "./inputs.js";
import { reportFailed, requestReport, showProgress, showReport } from "./report.js";
import { requestPlan, showPlan } from "./plan.js";
import { askReplace, discard, discardFailed, onCheckpoint, onDone, onResuming, onTrainEvent, removeKept,
  removeKeptFailed, resume, runFailed, showKept, showPending, start, stop, updateButtons, wireReplaceDialog }
  from "./run.js";
import { chatTry, generateFailed, merge, mergeFailed, offerTrained, onGenerated, onMerged, onToken,
  showPredictions, tryIt } from "./tryit.js";
import { drawChart } from "./chart.js";

// ---------- the worker ----------

/** The worker's script, as a `blob:` module that imports worker.js: a worker started from a
 * `blob:` URL inherits this page's Content-Security-Policy (the `<meta>` one included), while one
 * started from worker.js's own URL gets only what the server sends with worker.js, which is
 * nothing on a server that sends no CSP header. */
let workerUrl = null;

function startWorker() {
  workerUrl ??= URL.createObjectURL(new Blob([`import ${JSON.stringify(new URL("worker.js", location.href).href)};`],
    { type: "text/javascript" }));
  state.worker = new Worker(workerUrl, { type: "module" });
  state.ready = false;
  state.worker.onmessage = ({ data }) => onWorkerMessage(data);
  state.worker.onerror = (e) => {
    e.preventDefault();
    fail(`The worker failed: ${e.message || "unknown error"}.`, true);
  };
  state.worker.onmessageerror = () => fail("A message from the worker could not be read.", false);
  post({ type: "init" });
}

function restartWorker() {
  state.worker?.terminate();
  // A worker that cannot even start (a missing module, say) would fail again: stop trying.
  if (++state.restarts > 2) {
    setStatus($("gpu"), "The GPU worker keeps failing; reload the page to try again.", "error");
    return;
  }
  startWorker();
}

/** A failed run; `fatal`: the wasm module trapped and the worker must start again. */
function fail(message, fatal) {
  runFailed(message);
  if (fatal) {
    setStatus($("gpu"), "Restarting the GPU worker after the error…");
    restartWorker();
  }
}

function showGpu(g) {
  const b = g.browser;
  const name = g.name || [b.vendor, b.architecture, b.device, b.description].filter(Boolean).join(" ") ||
    "unnamed adapter";
  setStatus($("gpu"),
    `WebGPU adapter: ${name} (${g.backend}, ${g.device_type}${g.driver ? `, ${g.driver}` : ""}` +
    `${g.driver_info ? ` ${g.driver_info}` : ""}); largest buffer ${(g.max_buffer_size / 2 ** 20).toFixed(0)} MiB; ` +
    `ready ${(performance.now() / 1000).toFixed(1)} s after the page opened`,
    "ok");
  $("gpu").dataset.adapter = name;
}

/** Where a failed request's message goes: its own panel, or the run's status. */
const FAILED = { inspect: reportFailed, "inspect-chat": reportFailed, generate: generateFailed, merge: mergeFailed, discard: discardFailed,
  "remove-kept": removeKeptFailed };

/** Whether the worker's fetches are held to this origin by a Content-Security-Policy. */
function showCsp(enforced) {
  $("csp-status").dataset.csp = enforced ? "enforced" : "missing";
  if (enforced) {
    setStatus($("csp-status"), "");
    return;
  }
  setStatus($("csp-status"), "This browser does not hold the page's worker to the page's Content-Security-Policy, " +
    "and the server sends none: nothing but this page's code keeps the worker from contacting other sites. " +
    "Hearth's code sends nothing anywhere; to have the browser enforce it, serve the page with the " +
    "Content-Security-Policy header given in Hearth's README.", "warning");
}

function onWorkerMessage(msg) {
  switch (msg.type) {
    case "ready":
      state.ready = true;
      state.restarts = 0;
      state.defaults = msg.defaults;
      fillForm();
      showTaskFields();
      showGpu(msg.gpu);
      updateButtons();
      requestReport();
      break;
    case "no-webgpu":
      setStatus($("gpu"),
        `${msg.message} Hearth trains on your GPU through WebGPU: use a current Chrome, Edge or ` +
        `another browser with WebGPU enabled (on Linux, Chrome may need ` +
        `chrome://flags/#enable-unsafe-webgpu), then reload this page.`, "error");
      break;
    case "csp": showCsp(msg.enforced); break;
    case "pending": showPending(msg.run); break;
    case "confirm-replace": askReplace(msg.run); break;
    case "kept": showKept(msg.adapters); break;
    case "resuming": onResuming(msg); break;
    case "checkpoint": onCheckpoint(msg); break;
    case "warning": setStatus($("checkpoint-status"), msg.message, "warning"); break;
    case "columns": fillColumns(msg.columns); break;
    case "report-progress": showProgress(msg); break;
    case "report":
      showReport(msg);
      requestPlan(); // the report knows the labels, so the head's size
      break;
    case "plan": showPlan(msg); break;
    case "batch": onBatch(msg); break;
    case "job": download("hearth-job.json", new Blob([msg.json], { type: "application/json" }), "job"); break;
    case "loading": setStatus($("run-status"), `Loading ${msg.what}…`); break;
    case "event": onTrainEvent(msg.event); break;
    case "done":
      onDone(msg);
      offerTrained();
      break;
    case "predictions": showPredictions(msg.results); break;
    case "token": onToken(msg); break;
    case "generated": onGenerated(msg); break;
    case "merged": onMerged(msg); break;
    case "error": {
      const own = FAILED[msg.during];
      if (own) own(msg.message);
      else fail(msg.during === "init" ? `WebGPU could not start: ${msg.message}` : msg.message, msg.fatal);
      break;
    }
    default: break;
  }
}

/** The service worker (sw.js) that keeps the page, its module and the demo files for offline
 * use. A page opened from a file or a browser without service workers works as before. An
 * install that fails (a file that could not be fetched: the worker is then discarded) is tried
 * again, twice, a few seconds apart; `data-offline` on the page says "ready" once the offline
 * copy is kept, or why it is not. */
async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const root = document.documentElement;
  let reason = "";
  navigator.serviceWorker.addEventListener("message", (e) => {
    if (e.data?.installFailed) reason = e.data.installFailed;
  });
  try {
    for (let attempt = 1; ; attempt++) {
      root.dataset.offline = attempt === 1 ? "installing" : `installing (try ${attempt})`;
      const registration = await navigator.serviceWorker.register("sw.js");
      const worker = registration.active ?? registration.waiting ?? registration.installing;
      if (worker && await activated(worker)) break;
      if (attempt === 3) throw new Error(`the offline copy failed 3 times${reason ? `: ${reason}` : ""}`);
      await new Promise((r) => setTimeout(r, 2000 * attempt));
    }
    await navigator.serviceWorker.ready;
    root.dataset.offline = "ready";
  } catch (e) {
    root.dataset.offline = `unavailable: ${e.message}`;
  }
}

/** Resolves to true once `worker` is activated, false if it is discarded (a failed install). */
function activated(worker) {
  return new Promise((resolve) => {
    const settle = () => {
      if (worker.state === "activated") resolve(true);
      else if (worker.state === "redundant") resolve(false);
    };
    worker.addEventListener("statechange", settle);
    settle();
  });
}

// ---------- the controls ----------

function wire() {
  $("model-files").addEventListener("change", (e) => addModelFiles(e.target.files));
  $("data-file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    if (f) setData(f.name, f);
  });
  $("demo-data").addEventListener("click", useDemoData);
  for (const r of document.querySelectorAll('input[name="model-source"]')) {
    r.addEventListener("change", () => {
      resetProposal();
      if (state.columns) proposeTaskFromColumns(state.columns);
      updateButtons();
      requestReport();
    });
  }
  for (const id of ["text-column", "label-column", "max-length", "eval-fraction", "seed"]) {
    $(id).addEventListener("input", requestReport);
    $(id).addEventListener("change", requestReport);
  }
  for (const el of document.querySelectorAll("input, select")) el.addEventListener("change", requestPlan);
  $("task").addEventListener("change", () => {
    // The new task's defaults (PEFT's targets differ by family), keeping what the user changed.
    fillForm();
    showTaskFields();
    resetProposal();
    requestReport();
    updateButtons();
  });
  $("optimizer").addEventListener("change", showTaskFields);
  wireProposals();
  wireRemember();
  $("start").addEventListener("click", () => start());
  $("stop").addEventListener("click", stop);
  $("resume").addEventListener("click", resume);
  $("discard").addEventListener("click", discard);
  $("kept").addEventListener("click", (e) => {
    const id = e.target.closest("button[data-remove]")?.dataset.remove;
    if (id) removeKept(id);
  });
  wireReplaceDialog();
  $("try-button").addEventListener("click", tryIt);
  $("chat-button").addEventListener("click", chatTry);
  $("merge").addEventListener("click", merge);
  $("export-job").addEventListener("click", () => post({ type: "job", job: buildJob() }));
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    dropFiles(e.dataTransfer.files);
  });
  window.addEventListener("error", (e) => fail(`Unexpected error on the page: ${e.message}`, false));
  window.addEventListener("unhandledrejection", (e) => fail(`Unexpected error on the page: ${e.reason}`, false));
}

wire();
showTaskFields();
restoreRemembered(() => { updateButtons(); requestReport(); });
registerServiceWorker();
if (!("Worker" in window)) {
  setStatus($("gpu"), "This browser cannot run Web Workers, which Hearth needs.", "error");
} else {
  startWorker();
}
drawChart();
