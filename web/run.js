// A run: Start and Resume (asking before a new run replaces one that can be resumed), the run's
// events as status lines, progress figures, the step log, evaluations and the confusion matrix,
// the files it leaves to download, and the files of past runs kept in OPFS. The worker decides
// nothing about the task either: it hands the model's named files to the module's one `train`.
import { $, clearDownloads, download, headedRow, post, setStatus, state } from "./ui.js";
import { buildJob, modelReady, modelSource } from "./form.js";
import { requestPlan } from "./plan.js";
import { drawChart, scheduleChart } from "./chart.js";

export function updateButtons() {
  $("start").disabled = !(state.ready && !state.running && state.data && modelReady());
  $("stop").disabled = !state.running;
  // A stored run is never resumed or discarded while a run is going, here or in another tab.
  const going = state.running || !!state.pending?.live;
  $("resume").disabled = !(state.ready && !going);
  $("discard").disabled = going;
  $("try-button").disabled = !(state.trained && !state.trainedChat && !state.running);
  $("chat-button").disabled = !(state.trainedChat && !state.running && !state.generating);
  $("merge").disabled = !(state.trained && !state.trainedChat && !state.running);
  $("merge").hidden = !(state.trained && !state.trainedChat);
  requestPlan();
}

/** A run that could not start or ended in an error: the message, and Start offered again. */
export function runFailed(message) {
  state.running = false;
  setStatus($("run-status"), `Error: ${message}`, "error");
  updateButtons();
}

function resetRunView() {
  state.running = true;
  state.steps = [];
  state.firstStep = null;
  state.startedAt = performance.now();
  state.fitNote = "";
  $("run-cuts").textContent = "";
  $("step-log").tBodies[0].replaceChildren();
  $("eval-table").tBodies[0].replaceChildren();
  $("confusion").replaceChildren();
  $("run-warnings").replaceChildren();
  $("fig-eta").textContent = "–";
  clearDownloads();
  setStatus($("merge-status"), "");
  delete $("checkpoint-status").dataset.step;
  delete $("run-status").dataset.planned;
  setStatus($("checkpoint-status"), "");
  setStatus($("result-status"), "Training…");
  drawChart();
}

/** Starts a run of the form's job. A stored run that can still be resumed is replaced only once
 * the user chose so in the dialog (`replace`); the worker checks the same before it stores
 * anything, in case this page does not know of the stored run yet. */
export async function start({ replace = false } = {}) {
  if (state.pending?.live) {
    runFailed(ANOTHER_TAB);
    return;
  }
  if (state.pending && !replace) {
    askReplace(state.pending);
    return;
  }
  state.job = buildJob();
  $("resume-banner").hidden = true;
  resetRunView();
  // Copies, so the page keeps its own files for the next run. The worker fetches the demo
  // model itself; any other model travels as its files by name, whatever the task.
  const model = modelSource() === "demo" ? { demo: true }
    : { files: Object.entries(state.modelFiles).map(([name, bytes]) => [name, bytes.slice(0)]) };
  setStatus($("run-status"), "Starting…");
  updateButtons();
  let data;
  try {
    data = await state.data.file.arrayBuffer();
  } catch (e) {
    runFailed(`The dataset could not be read: ${e.message}`);
    return;
  }
  post({ type: "train", job: state.job, model, data, replace });
}

export function stop() {
  post({ type: "stop" });
  setStatus($("run-status"), "Stopping after this step…");
}

// ---------- an unfinished run, kept in OPFS ----------

const ANOTHER_TAB = "A run is going in another tab of this page: stop it there, or wait for it to end.";

/** "A run on tiny.csv started … was stopped; its last checkpoint is at step 8 of 24." */
function describePending(run) {
  const started = `A run on ${run.data_name} started ${new Date(run.started).toLocaleString()}`;
  const of = run.steps ? ` of ${run.steps}` : "";
  const checkpoint = `its last checkpoint is at step ${run.step}${of}`;
  if (run.live) {
    return `${started} is going in another tab of this page${run.step ? ` (${checkpoint})` : ""}. ` +
      "It can be resumed or discarded here once it ends.";
  }
  return `${started} ${run.status === "stopped" ? "was stopped" : "did not finish"}; ${checkpoint}.`;
}

export function showPending(run) {
  state.pending = run;
  $("resume-banner").hidden = !run;
  updateButtons();
  if (!run) return;
  $("resume-text").textContent = describePending(run);
  $("resume-banner").dataset.step = String(run.step);
  $("resume-banner").dataset.live = String(!!run.live);
}

/** The dialog Start opens while a stored run can be resumed: resume it, discard it and start
 * the new run, or neither. */
export function askReplace(run) {
  if (state.running) {
    // The worker refused a run this page had already begun to show.
    state.running = false;
    setStatus($("result-status"), "");
  }
  showPending(run);
  setStatus($("run-status"), "Not started yet: an unfinished run is stored.");
  $("replace-text").textContent = `${describePending(run)} Starting the new run discards it and its checkpoints; ` +
    "the files of runs that ended stay under “Kept in this browser”.";
  const dialog = $("replace-dialog");
  if (!dialog.open) dialog.showModal();
}

export function wireReplaceDialog() {
  const dialog = $("replace-dialog");
  for (const [id, choice] of [["replace-resume", "resume"], ["replace-discard", "discard"], ["replace-cancel", "cancel"]]) {
    $(id).addEventListener("click", () => dialog.close(choice));
  }
  // Escape closes it too, with no choice: nothing happens.
  dialog.addEventListener("close", () => {
    const choice = dialog.returnValue;
    dialog.returnValue = "";
    if (choice === "resume") resume();
    else if (choice === "discard") start({ replace: true });
    else setStatus($("run-status"), "Not started: the unfinished run is kept (resume it or discard it above).");
  });
}

export function discard() {
  if (state.running || state.pending?.live) return;
  post({ type: "discard" });
}

export function discardFailed(message) {
  setStatus($("resume-text"), `The run could not be discarded: ${message}`, "error");
}

export function resume() {
  if (state.pending?.live) {
    runFailed(ANOTHER_TAB);
    return;
  }
  resetRunView();
  post({ type: "resume" });
  setStatus($("run-status"), "Reading the unfinished run…");
  updateButtons();
}

export function onResuming({ step, job }) {
  state.job = job;
  $("resume-banner").hidden = true;
  setStatus($("run-status"), `Resuming the run from its checkpoint at step ${step}…`);
}

export function onCheckpoint({ step }) {
  $("checkpoint-status").dataset.step = String(step);
  setStatus($("checkpoint-status"), `Checkpoint at step ${step} saved in this browser's private storage.`, "ok");
}

// ---------- the run's events ----------

/** A training setting of the run's job: as the job has it, or the module's default for its task. */
function jobSetting(key) {
  const job = state.job ?? {};
  return job.train?.[key] ?? state.defaults?.[job.task?.kind ?? "classification"]?.train[key];
}

/** "train.fit: batch 16 → 8, accumulation 1 → 2" for what the planner changed, or why not. */
function fitNote(e) {
  const changes = [["batch_size", "batch"], ["gradient_accumulation", "accumulation"], ["max_length", "max length"]]
    .filter(([key]) => e[key] !== undefined && e[key] !== jobSetting(key))
    .map(([key, name]) => `${name} ${jobSetting(key) ?? "?"} → ${e[key]}`);
  if (e.gradient_checkpointing && !jobSetting("gradient_checkpointing")) changes.push("gradient checkpointing on");
  // The event carries the plan of the job as given (`plan.fits`, `plan.checked_bytes`).
  const bytes = e.plan?.checked_bytes;
  const estimate = bytes ? ` (estimate ${(bytes / 2 ** 20).toFixed(0)} MiB)` : "";
  if (changes.length) return ` train.fit: ${changes.join(", ")}${estimate}.`;
  return e.plan?.fits === false ? ` train.fit: over this GPU's limits, run as written${estimate}.` : "";
}

/** The "data" event, one shape for every task: rows (conversations for SFT) and their split; the
 * label counts where the task has labels; how the file was decoded. */
function showData(e) {
  state.labels = e.labels ?? [];
  const r = e.report ?? {};
  const counts = state.labels.map((l, i) => `${l}: ${e.class_counts[i]}`).join(", ");
  const unit = (e.task?.kind ?? e.task) === "sft" ? "conversations" : "rows";
  const test = e.test_rows ? `, ${e.test_rows} for the test` : "";
  const encoding = r.encoding ? `; encoding ${r.encoding}` : "";
  const latin1 = r.fallback_rows ? ` ${r.fallback_rows} rows are not valid UTF-8 and were read as latin-1.` : "";
  setStatus($("data-status"), `${e.rows} ${unit}${counts ? ` (${counts})` : ""}: ${e.train_rows} to train on, ` +
    `${e.eval_rows} held out${test}${encoding}.${latin1}`, "ok");
}

/** "about 2 min 10 s" */
function duration(seconds) {
  const s = Math.max(1, Math.round(seconds));
  return s < 60 ? `about ${s} s` : `about ${Math.floor(s / 60)} min ${s % 60} s`;
}

/** The time to finish, from the steps after the first (the first one also compiles the GPU's
 * kernels and loads the model, so it says little about the others). */
function showEta(e) {
  const done = e.step - state.firstStepNo;
  if (done < 2) {
    $("fig-eta").textContent = "after the first steps";
    return;
  }
  const perStep = (performance.now() - state.firstStep) / 1000 / done;
  $("fig-eta").textContent = e.step >= e.steps ? "finishing" : duration(perStep * (e.steps - e.step));
}

function showStep(e) {
  if (state.firstStep === null) {
    state.firstStep = performance.now();
    state.firstStepNo = e.step;
    $("fig-first").textContent =
      `${(state.firstStep / 1000).toFixed(1)} s (page open), ${((state.firstStep - state.startedAt) / 1000).toFixed(1)} s (Start)`;
  }
  showEta(e);
  state.steps.push(e);
  $("progress").value = e.step;
  $("fig-step").textContent = `${e.step} / ${e.steps}`;
  $("fig-loss").textContent = e.loss.toFixed(4);
  $("fig-lr").textContent = e.learning_rate.toExponential(2);
  $("fig-speed").textContent = e.examples_per_s.toFixed(1);
  const row = $("step-log").tBodies[0].insertRow();
  for (const v of [e.step, e.loss.toFixed(6), e.learning_rate.toExponential(3), e.examples_per_s.toFixed(2)]) {
    row.insertCell().textContent = v;
  }
  row.dataset.loss = String(e.loss);
  scheduleChart();
}

// What the max length did to a chat run's conversations (the `started` event's
// `conversations`, the lines `hearth train` prints before the first step); "" otherwise.
function cutsNote(c) {
  if (!c) return "";
  const parts = [["training", c.train], ["held-out", c.eval]].filter(([, r]) => r.conversations > 0);
  const lines = parts.map(([part, r]) => {
    const kept = r.conversations - r.dropped;
    return `${part}: ${kept} of ${r.conversations} conversations used at max length ${c.max_length} ` +
      `(truncation ${c.truncation}): ${kept - r.truncated} whole, ${r.prompt_cut} with the prompt cut and ` +
      `the answer kept, ${r.answer_cut} with the answer cut, ${r.dropped} dropped`;
  });
  if (c.suggestion) lines.push(c.suggestion);
  return lines.join("\n");
}

export function onTrainEvent(e) {
  switch (e.event) {
    case "data": showData(e); break;
    case "planned":
      $("run-status").dataset.planned = JSON.stringify(e);
      state.fitNote = fitNote(e);
      if (state.fitNote) setStatus($("run-status"), state.fitNote.trim());
      break;
    case "started":
      state.totalSteps = e.steps;
      $("progress").max = e.steps;
      setStatus($("run-status"), `${e.resumed_at ? `Resumed at step ${e.resumed_at}. ` : ""}` +
        `Training ${e.trainable_params.toLocaleString()} of ${e.total_params.toLocaleString()} parameters on ` +
        `${e.train_rows} rows; ${e.eval_rows} held out.${state.fitNote}`);
      $("run-cuts").textContent = cutsNote(e.conversations);
      break;
    case "step": showStep(e); break;
    case "evaluated": showMetrics(e.step, e.metrics, "validation"); break;
    case "tested": showMetrics(e.step, e.metrics, "test"); break;
    // What the run found and went on with (for example tensors of the model nothing uses).
    case "warning": {
      const item = document.createElement("li");
      item.textContent = `Warning: ${e.message}`;
      $("run-warnings").append(item);
      break;
    }
    default: break;
  }
}

// The figures of one evaluation, by task (the same ones `hearth` prints).
function metricFigures(m) {
  const f = (name, v) => `${name} ${v.toFixed(4)}`;
  if (m.task === "regression") {
    return [f("MAE", m.mae), f("RMSE", m.rmse), f("R²", m.r2), f("Pearson", m.pearson)];
  }
  if (m.task === "language_model") {
    return [f("loss", m.loss), `perplexity ${m.perplexity.toFixed(3)}`, `${m.tokens} tokens`];
  }
  if (m.task === "multi_label") {
    return [f("micro-F1", m.micro_avg.f1), f("macro-F1", m.macro_avg.f1),
      f("subset accuracy", m.subset_accuracy), f("Hamming loss", m.hamming_loss)];
  }
  return [f("accuracy", m.accuracy), f("macro-F1", m.macro_f1)];
}

function showMetrics(step, m, set) {
  const row = $("eval-table").tBodies[0].insertRow();
  row.dataset.set = set;
  row.dataset.metrics = JSON.stringify(m);
  for (const v of [step, m.n, set, metricFigures(m).join(" · ")]) row.insertCell().textContent = v;
  if (!m.confusion) return;
  const labels = state.labels.length === m.confusion.length ? state.labels : m.confusion.map((_, i) => `class ${i}`);
  const table = document.createElement("table");
  table.id = "confusion-matrix";
  table.createCaption().textContent = `Step ${step} (${set}): rows are the true labels, columns the predicted ones`;
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("td"));
  for (const l of labels) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = l;
    head.appendChild(th);
  }
  const body = table.createTBody();
  m.confusion.forEach((counts, i) => headedRow(body, labels[i], counts));
  $("confusion").replaceChildren(table);
}

/** What the summary's last loss is the mean of: the last 20 steps, or all of a shorter run's. */
const lastSteps = (steps) => (steps === 1 ? "its only step" : steps <= 20 ? `mean of all ${steps} steps`
  : "mean of the last 20 steps");

/** The run's end: its summary and its files (PEFT's adapter files for LoRA, hearth_run.json). */
export function onDone({ files, summary }) {
  state.running = false;
  $("run-status").dataset.summary = JSON.stringify(summary);
  setStatus($("run-status"), `${summary.stopped ? "Stopped" : "Finished"} after ${summary.steps} steps: ` +
    `${summary.examples_per_s.toFixed(1)} examples/s, loss ${summary.loss_first.toFixed(4)} → ` +
    `${summary.loss_last20.toFixed(4)} (${lastSteps(summary.steps)}).${state.fitNote}`, "ok");
  $("fig-eta").textContent = "done";
  const names = files.map(([name]) => name);
  setStatus($("result-status"), names.includes("adapter_config.json") ? "Your adapter, in HuggingFace PEFT's format:"
    : names.includes("config.json") ? "Your fine-tuned model, a HuggingFace model directory:"
      : "Your trained head (load it onto the base model with hearth_run.json):", "ok");
  for (const [name, bytes] of files) {
    const type = name.endsWith(".json") ? "application/json" : "application/octet-stream";
    download(name, new Blob([bytes], { type }));
  }
  state.trained = true;
  state.trainedChat = state.job?.task?.kind === "sft";
  updateButtons();
}

// ---------- the files of past runs, kept in OPFS ----------

/** The kept runs, newest first, each with its files to download and a Remove button. The files
 * are `File`s on this device's disk; the links read them only when clicked. */
export function showKept(adapters) {
  state.keptUrls.forEach((url) => URL.revokeObjectURL(url));
  state.keptUrls = [];
  $("kept-section").hidden = adapters.length === 0;
  $("kept").dataset.count = String(adapters.length);
  setStatus($("kept-status"), "The files of every run that ended stay in this browser's private storage, on this " +
    "device only, until you remove them.");
  $("kept").replaceChildren(...adapters.map(({ id, meta, files }) => {
    const li = document.createElement("li");
    li.dataset.id = id;
    const what = `The run on ${meta.data_name} (${meta.task}), ${meta.status} ${new Date(meta.ended).toLocaleString()}`;
    const p = document.createElement("p");
    const s = meta.summary;
    p.textContent = `${what}: ${s.steps} steps, loss ${s.loss_first.toFixed(4)} → ${s.loss_last20.toFixed(4)}.`;
    const list = document.createElement("ul");
    for (const [name, file] of files) {
      const url = URL.createObjectURL(file);
      state.keptUrls.push(url);
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      a.textContent = `${name} (${(file.size / 1024).toFixed(1)} KiB)`;
      list.appendChild(document.createElement("li")).appendChild(a);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.dataset.remove = id;
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove the files of ${what.replace(/^The/, "the")} from this browser`);
    li.append(p, list, remove);
    return li;
  }));
}

export function removeKept(id) {
  setStatus($("kept-status"), "Removing…");
  post({ type: "remove-kept", id });
}

export function removeKeptFailed(message) {
  setStatus($("kept-status"), `Could not remove them: ${message}`, "error");
}
