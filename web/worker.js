// Hearth's module worker: everything heavy runs here (WebGPU set-up, model loading,
// tokenization, training, evaluation, adapter export); the page only renders. The worker does
// not choose a pipeline: it gathers the model's files by name and calls the module's one
// `train`, which reads the task from the job (a classifier or a chat model, SFT).
//
// Protocol. Page → worker:
//   {type: "init"}
//   {type: "columns", name, bytes: ArrayBuffer}
//   {type: "job", job}                           validate a job for export
//   {type: "plan", job, files: [[name, ArrayBuffer], …] | null, context: {num_outputs,
//                  model_file_bytes, data_file_bytes}}  the memory plan from the model's
//                                                config.json or a .gguf's first bytes (files null:
//                                                the demo model's config)
//   {type: "propose-batch", job, files, context, candidates: [batch, …]}  the largest batch whose
//                                                plan fits, for the page's proposed settings
//   {type: "train", job, model: {demo: true} | {files: [[name, ArrayBuffer], …]}, data: ArrayBuffer}
//                                                the demo model is fetched here as its three files;
//                                                any other model comes as its files by name (the HF
//                                                files config.json, model.safetensors,
//                                                tokenizer.json, tokenizer_config.json,
//                                                chat_template.jinja, or one .gguf); data holds
//                                                labelled texts or conversations, as the job says
//   (train also carries `replace`: true once the user chose to discard the unfinished run kept in
//                                                OPFS; without it, a stored run that can be resumed
//                                                is never replaced: the worker answers
//                                                "confirm-replace" instead)
//   {type: "resume"}                             continue the unfinished run kept in OPFS
//   {type: "discard"}                            forget it (refused while a run is going, here or
//                                                in another tab)
//   {type: "remove-kept", id}                    delete a kept adapter from OPFS
//   {type: "classify", texts: [string]}          with the classifier the last run trained
//   {type: "generate", prompt, system?, settings} the last SFT run's chat model answers, first
//                                                without the adapter, then with it
//   {type: "merge"}                              merge the last run's adapter into its model
//   {type: "inspect", name, file: Blob, settings, model: {demo: true} | {tokenizer} | {}}
//   {type: "inspect-chat", name, file: Blob, settings, files: [[name, ArrayBuffer], …]}
//                                                the chat report of conversations (SFT), the
//                                                chat model's tokenizer files (or none)
//                                                the data report, read in 8 MiB slices
//   {type: "stop"}
// Worker → page:
//   {type: "ready", gpu, defaults: {classification, multi_label, regression, sft}}
//                                                the module's default job for each task kind,
//                                                which the form starts from
//   {type: "csp", enforced}                      first: whether a Content-Security-Policy restricts
//                                                this worker's fetches (a `data:` fetch, which never
//                                                reaches the network, is refused under connect-src
//                                                'self')
//   {type: "no-webgpu", message}
//   {type: "pending", run: null | {step, steps, status, data_name, started, live}}  after ready,
//                                                discard, a run's end, and when a run going in
//                                                another tab (live: true) ends
//   {type: "confirm-replace", run}               "train" without `replace` found a resumable run
//   {type: "kept", adapters: [{id, meta: {data_name, started, ended, status, task, summary},
//                  files: [[name, File], …]}]}   the adapters kept in OPFS, newest first; after
//                                                ready, a run's end and remove-kept
//   {type: "columns", columns: {names, text, label}}
//   {type: "job", json}
//   {type: "plan", text, fits} | {type: "plan", error}
//   {type: "batch", batch, fits} | {type: "batch", error}
//   {type: "loading", what}
//   {type: "event", event}                       the module's events, in order: data (rows,
//                                                train_rows, eval_rows, test_rows, labels,
//                                                class_counts, report; the same shape for every
//                                                task), planned (what train.fit changed;
//                                                classifiers), started, step, evaluated, tested,
//                                                restored, finished
//   {type: "resuming", step, job}                continuing from that checkpoint
//   {type: "checkpoint", step}                   a checkpoint is safely in OPFS
//   {type: "warning", message}                   e.g. a damaged checkpoint was skipped
//   {type: "done", files: [[name, ArrayBuffer], …], summary}  what the run saves (PEFT's adapter
//                                                            files for LoRA), hearth_run.json last
//   {type: "predictions", results: [{text, label, scores}]}
//   {type: "token", adapter: bool, text}         a piece of an answer, as soon as it decodes
//   {type: "generated", adapter: bool, text, stop_reason, tokens}  a finished answer
//   {type: "merged", config, weights, tokenizer} (ArrayBuffers) a transformers model directory
//   {type: "report-progress", pass, bytes, total} reading the file for the report
//   {type: "report", settings, report, wasm_before, wasm_bytes, file_bytes}  the data-quality
//                                                report (the same as hearth inspect --json) and the
//                                                module's memory before and after
//   {type: "error", message, fatal, during}      fatal: the module must be restarted; during: the
//                                                request that failed
//
// Checkpoints live in the origin-private file system (OPFS), on this device only, under
// hearth-run/: job.json (as checkJob returns it, every default filled in), meta.json ({status:
// running | stopped | finished, demo, ...}), data.bin,
// the model's files by name under model/ (unless it is the demo model, fetched again on resume)
// and checkpoints/step-NNNNNN/ with the files the wasm module hands over. Each file is written
// through createWritable (committed on close), trainer_state.json last; it carries the checksums
// of the others, so a checkpoint torn by a closed tab is recognised and an older one used.
//
// The files of every run that ended (finished, or stopped with its adapter) are kept under
// hearth-adapters/<id>/: files/ as the run saved them (hearth_run.json holds the job) and
// meta.json, written last, so an entry without it is incomplete and not offered. They stay until
// the user removes them; nothing else deletes them.
//
// One run at a time per origin: a run holds the Web Lock "hearth-run" (released by the browser if
// the tab dies), and Start, Resume and Discard take it first, so another tab cannot replace or
// delete the run that is going.
import init, {
  initGpu, planJob, detectColumns, defaultJob, checkJob, checkCheckpoint, train, classify, InspectStream, inspectChat,
  mergeTrained, generateChat,
} from "./pkg/hearth_web.js";

/** The task kinds the page offers; the form starts from the module's default job of each. */
const TASK_KINDS = ["classification", "multi_label", "regression", "sft"];

let wasmMemory = null;

let stopRequested = false;
let busy = false;

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
const errorText = (e) => (e && e.message) ? e.message : String(e);

async function fetchBytes(path) {
  // Relative to this script: the page starts the worker from a blob: URL (so that it inherits
  // the page's Content-Security-Policy), which is no base for relative URLs.
  const url = new URL(path, import.meta.url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// ---------- OPFS ----------

const RUN_DIR = "hearth-run";
/** The demo model's files, served under models/demo/. */
const DEMO_FILES = ["config.json", "model.safetensors", "tokenizer.json"];
const text = (bytes) => new TextDecoder().decode(bytes);

async function runDir(create) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(RUN_DIR, { create });
}

async function writeFile(dir, name, bytes) {
  const handle = await dir.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  await writable.write(bytes);
  await writable.close();
}

async function readFile(dir, name) {
  const handle = await dir.getFileHandle(name);
  return new Uint8Array(await (await handle.getFile()).arrayBuffer());
}

async function readMeta(run) {
  return JSON.parse(text(await readFile(run, "meta.json")));
}

async function setStatus(statusValue) {
  const run = await runDir(false);
  const meta = await readMeta(run);
  meta.status = statusValue;
  await writeFile(run, "meta.json", JSON.stringify(meta));
}

/** Replaces the stored run with a new one: job, data and the model's files by name (the demo
 * model's are not stored: they are fetched again on resume). */
async function storeRun(job, data, files, demo) {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(RUN_DIR, { recursive: true }).catch(() => {});
  const run = await root.getDirectoryHandle(RUN_DIR, { create: true });
  await writeFile(run, "job.json", JSON.stringify(job));
  await writeFile(run, "data.bin", data);
  if (!demo) {
    const dir = await run.getDirectoryHandle("model", { create: true });
    for (const [name, bytes] of files) await writeFile(dir, name, bytes);
  }
  await writeFile(run, "meta.json", JSON.stringify({
    status: "running", demo, data_name: job.data.path, started: new Date().toISOString(),
  }));
}

/** Every file of a stored folder, `[[name, Uint8Array], …]`. */
async function readFiles(dir) {
  const files = [];
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind === "file") files.push([name, new Uint8Array(await (await handle.getFile()).arrayBuffer())]);
  }
  return files;
}

async function checkpointNames(run) {
  const dir = await run.getDirectoryHandle("checkpoints", { create: true });
  const names = [];
  for await (const [name] of dir.entries()) if (/^step-\d{6}$/.test(name)) names.push(name);
  return { dir, names: names.sort() };
}

/** Writes one checkpoint (manifest last), then keeps only the newest `keep`. */
async function storeCheckpoint(step, files, keep) {
  const run = await runDir(false);
  const { dir } = await checkpointNames(run);
  const name = `step-${String(step).padStart(6, "0")}`;
  await dir.removeEntry(name, { recursive: true }).catch(() => {});
  const target = await dir.getDirectoryHandle(name, { create: true });
  const order = Object.keys(files).sort((a, b) => (a === "trainer_state.json") - (b === "trainer_state.json"));
  for (const file of order) await writeFile(target, file, files[file]);
  const { names } = await checkpointNames(run);
  for (const old of names.slice(0, Math.max(0, names.length - keep))) {
    await dir.removeEntry(old, { recursive: true }).catch(() => {});
  }
}

/** The newest checkpoint the module accepts, skipping (and reporting) damaged ones. */
async function newestCheckpoint(run, report) {
  const { dir, names } = await checkpointNames(run);
  for (const name of names.reverse()) {
    const files = Object.fromEntries(await readFiles(await dir.getDirectoryHandle(name)));
    try {
      return { name, files, info: JSON.parse(checkCheckpoint(files)) };
    } catch (e) {
      report(`Checkpoint ${name} cannot be used (${errorText(e)}); trying an older one.`);
    }
  }
  return null;
}

// ---------- one run at a time, across tabs ----------

const RUN_LOCK = "hearth-run";
const ANOTHER_TAB = "a run is going in another tab of this page: stop it there, or wait for it to end";

/** Runs `fn` holding the run lock; throws `ANOTHER_TAB` if another tab (or this worker) holds
 * it. Without Web Locks (an old browser) a second tab is not detected. */
async function withRunLock(fn) {
  if (!navigator.locks) return fn();
  return navigator.locks.request(RUN_LOCK, { ifAvailable: true }, async (lock) => {
    if (!lock) throw new Error(busy ? "a run is already going" : ANOTHER_TAB);
    return fn();
  });
}

/** Whether a run holds the lock, here or in another tab. */
async function runGoing() {
  if (!navigator.locks) return busy;
  const { held } = await navigator.locks.query();
  return held.some((l) => l.name === RUN_LOCK);
}

let waitingForOtherTab = false;

/** Tells the page again what is stored once the run going in another tab ends. */
function reportWhenOtherRunEnds() {
  if (!navigator.locks || waitingForOtherTab) return;
  waitingForOtherTab = true;
  // Shared: granted as soon as the other tab's exclusive lock is released, held for no time.
  navigator.locks.request(RUN_LOCK, { mode: "shared" }, async () => {})
    .then(async () => {
      waitingForOtherTab = false;
      post({ type: "pending", run: await pendingRun() });
    });
}

/** The stored run the page can offer to continue, if any; `live`: a run is going in another
 * tab (it is offered, with its last checkpoint if it has one, but cannot be resumed or
 * discarded until it ends). Not to be called while this worker holds the lock for anything but
 * a run (`locked`), which would read as another tab's run. */
async function pendingRun({ locked = false } = {}) {
  let run;
  try {
    run = await runDir(false);
  } catch {
    return null;
  }
  try {
    const meta = await readMeta(run);
    // `locked`: this worker holds the lock, about to start a run.
    const live = !busy && !locked && await runGoing();
    if (live) reportWhenOtherRunEnds();
    if (meta.status === "finished" && !live) return null;
    const found = await newestCheckpoint(run, () => {});
    if (!found && !live) return null;
    return { step: found?.info.step ?? 0, steps: found?.info.steps ?? null, status: meta.status,
             data_name: meta.data_name, started: meta.started, live };
  } catch {
    return null;
  }
}

// ---------- adapters kept after their run ----------

const KEPT_DIR = "hearth-adapters";

async function keptDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(KEPT_DIR, { create: true });
}

/** Keeps a run's files under a new entry, meta.json last. */
async function keepAdapter(files, meta) {
  const dir = await keptDir();
  const stamp = new Date().toISOString().replace(/[-:.]/g, "");
  let id = `run-${stamp}`;
  for (let n = 2; await dir.getDirectoryHandle(id).then(() => true, () => false); n++) id = `run-${stamp}-${n}`;
  const entry = await dir.getDirectoryHandle(id, { create: true });
  const target = await entry.getDirectoryHandle("files", { create: true });
  for (const [name, bytes] of files) await writeFile(target, name, bytes);
  await writeFile(entry, "meta.json", JSON.stringify(meta));
}

/** Every complete kept entry, newest first, its files as `File`s (read from disk when the page
 * downloads them, never held in memory here). */
async function keptAdapters() {
  const dir = await keptDir();
  const adapters = [];
  for await (const [id, entry] of dir.entries()) {
    if (entry.kind !== "directory") continue;
    try {
      const meta = JSON.parse(text(await readFile(entry, "meta.json")));
      const files = [];
      for await (const [name, handle] of (await entry.getDirectoryHandle("files")).entries()) {
        if (handle.kind === "file") files.push([name, await handle.getFile()]);
      }
      adapters.push({ id, meta, files });
    } catch {
      // Being written, or torn by a closed tab: not offered, and not deleted either.
    }
  }
  return adapters.sort((a, b) => (a.id < b.id ? 1 : -1));
}

async function postKept() {
  post({ type: "kept", adapters: await keptAdapters() });
}

/** Whether a Content-Security-Policy limits this worker's fetches: `connect-src 'self'` refuses a
 * `data:` URL, which otherwise resolves without touching the network. */
async function cspEnforced() {
  return fetch("data:,").then(() => false, () => true);
}

async function boot() {
  post({ type: "csp", enforced: await cspEnforced() });
  if (!self.navigator.gpu) {
    post({ type: "no-webgpu", message: "This browser exposes no WebGPU to workers." });
    return;
  }
  const adapter = await self.navigator.gpu.requestAdapter();
  if (!adapter) {
    post({ type: "no-webgpu", message: "WebGPU is present but no GPU adapter is available." });
    return;
  }
  wasmMemory = (await init()).memory;
  const gpu = JSON.parse(await initGpu());
  gpuLimits = { max_buffer_size: gpu.max_buffer_size, max_storage_binding: gpu.max_storage_buffer_binding_size };
  // The browser's own description of the adapter (wgpu often gets no name from it).
  const info = adapter.info ?? {};
  gpu.browser = { vendor: info.vendor ?? "", architecture: info.architecture ?? "",
                  device: info.device ?? "", description: info.description ?? "" };
  const defaults = Object.fromEntries(TASK_KINDS.map((kind) => [kind, JSON.parse(defaultJob(kind))]));
  post({ type: "ready", gpu, defaults });
  post({ type: "pending", run: await pendingRun() });
  await postKept();
}

let gpuLimits = {};

/** `planJob` of `job` on the model's small files (`files`, or the demo model's config). */
async function plan(job, files, context) {
  files ??= [["config.json", await fetchBytes("models/demo/config.json")]];
  return JSON.parse(planJob(JSON.stringify(job), files.map(([name]) => name),
    files.map(([, bytes]) => new Uint8Array(bytes)), JSON.stringify(gpuLimits), JSON.stringify(context)));
}

/** The memory plan of the form's job on this adapter (hearth_train::plan, as `hearth plan`);
 * the page says how many outputs the head has (it knows the labels from the data report). */
async function planFor(msg) {
  try {
    const { plan: planned, text: table } = await plan(msg.job, msg.files, msg.context);
    return { text: table, fits: planned.fits };
  } catch (e) {
    return { error: errorText(e) };
  }
}

/** The largest of `msg.candidates` (batch sizes, largest first) whose memory plan fits this
 * adapter, for the page's proposed settings: `{batch, fits}`, the smallest with `fits: false`
 * when none does, or `{error}`. */
async function proposeBatch(msg) {
  try {
    for (const batch of msg.candidates) {
      const job = { ...msg.job, train: { ...msg.job.train, batch_size: batch, gradient_accumulation: 1 } };
      if ((await plan(job, msg.files, msg.context)).plan.fits) return { batch, fits: true };
    }
    return { batch: msg.candidates.at(-1), fits: false };
  } catch (e) {
    return { error: errorText(e) };
  }
}

/** The demo model, as the files it is served as: `[[name, Uint8Array], …]`. */
async function demoModel() {
  post({ type: "loading", what: "the demo model" });
  return Promise.all(DEMO_FILES.map(async (name) => [name, await fetchBytes(`models/demo/${name}`)]));
}

/** Trains `job` (complete, as checkJob returns it) on the model's named `files` and `data`, from
 * scratch or from `resume`, checkpointing to OPFS. */
async function trainStored(job, files, data, resume, meta) {
  post({ type: "loading", what: "the model onto the GPU" });
  const onEvent = (json) => {
    post({ type: "event", event: JSON.parse(json) });
    return !stopRequested;
  };
  // Writes are queued so the training loop never waits on the disk; the run ends only after the
  // last one landed. A failed write is reported and stops the run.
  let writes = Promise.resolve();
  let writeError = null;
  const keep = job.train.keep_checkpoints;
  const onCheckpoint = (step, ckpt) => {
    writes = writes.then(() => storeCheckpoint(step, ckpt, keep))
      .then(() => post({ type: "checkpoint", step }))
      .catch((e) => { writeError = e; stopRequested = true; });
  };
  let trained;
  try {
    trained = await train(JSON.stringify(job), files.map(([name]) => name), files.map(([, bytes]) => bytes),
      data, onEvent, onCheckpoint, resume ?? undefined);
  } finally {
    await writes;
  }
  if (writeError) throw new Error(`a checkpoint could not be saved in this browser's storage: ${errorText(writeError)}`);
  const summary = JSON.parse(trained.summary);
  const status = summary.stopped ? "stopped" : "finished";
  await setStatus(status);
  // [[name, bytes], …]: what the job's strategy saves, and hearth_run.json.
  const saved = trained.files.map(([name, bytes]) => [name, bytes.buffer]);
  trained.free();
  // Kept before the page gets them (the buffers move to the page): a failure to keep them is a
  // warning, the download links are still offered.
  try {
    await keepAdapter(saved.map(([name, buffer]) => [name, new Uint8Array(buffer)]), {
      data_name: meta.data_name, started: meta.started, ended: new Date().toISOString(), status,
      task: job.task?.kind ?? "classification", summary,
    });
  } catch (e) {
    post({ type: "warning", message: `The run's files could not be kept in this browser's storage ` +
      `(${errorText(e)}): download them now.` });
  }
  post({ type: "done", files: saved, summary }, saved.map(([, buffer]) => buffer));
}

/** What the page is told after a run (or a refusal to start one), whatever its end, once the lock
 * is released: the stored run (a stopped one can be resumed) and the kept adapters. */
async function afterRun() {
  post({ type: "pending", run: await pendingRun() });
  await postKept();
}

async function runTraining(msg) {
  // The job with every default filled in, as `hearth train --job` reads it: what is stored
  // is then complete, whatever the page left blank.
  const job = JSON.parse(checkJob(JSON.stringify(msg.job)));
  await withRunLock(async () => {
    // A run that can still be resumed is replaced only when the user said so.
    const pending = msg.replace ? null : await pendingRun({ locked: true });
    if (pending) {
      post({ type: "confirm-replace", run: pending });
      return;
    }
    busy = true;
    stopRequested = false;
    try {
      const demo = !!msg.model.demo;
      const files = demo ? await demoModel() : msg.model.files.map(([name, buffer]) => [name, new Uint8Array(buffer)]);
      const data = new Uint8Array(msg.data);
      await storeRun(job, data, files, demo);
      await trainStored(job, files, data, null, await readMeta(await runDir(false)));
    } finally {
      busy = false;
    }
  }).finally(afterRun);
}

async function resumeTraining() {
  await withRunLock(async () => {
    busy = true;
    stopRequested = false;
    try {
      const run = await runDir(false);
      const meta = await readMeta(run);
      const job = JSON.parse(text(await readFile(run, "job.json")));
      const found = await newestCheckpoint(run, (message) => post({ type: "warning", message }));
      if (!found) throw new Error("no intact checkpoint of the unfinished run is left");
      const files = meta.demo ? await demoModel() : await readFiles(await run.getDirectoryHandle("model"));
      await setStatus("running");
      post({ type: "resuming", step: found.info.step, job });
      await trainStored(job, files, await readFile(run, "data.bin"), found.files, meta);
    } finally {
      busy = false;
    }
  }).finally(afterRun);
}

let demoTokenizer = null;

const REPORT_CHUNK = 8 << 20;

async function inspect(msg) {
  let tokenizer;
  if (msg.model.demo) {
    demoTokenizer ??= await fetchBytes("models/demo/tokenizer.json");
    tokenizer = demoTokenizer;
  } else if (msg.model.tokenizer) {
    tokenizer = new Uint8Array(msg.model.tokenizer);
  }
  // Two passes over slices of the file (the encoding, then the rows): the module never holds
  // the file, only a few bytes per row.
  const file = msg.file;
  const before = wasmMemory.buffer.byteLength;
  const stream = new InspectStream(msg.name, JSON.stringify(msg.settings), tokenizer);
  try {
    for (const pass of ["encoding", "rows"]) {
      for (let at = 0; at < file.size; at += REPORT_CHUNK) {
        const bytes = new Uint8Array(await file.slice(at, at + REPORT_CHUNK).arrayBuffer());
        if (pass === "encoding") stream.sniff(bytes); else stream.push(bytes);
        post({ type: "report-progress", pass, bytes: Math.min(at + REPORT_CHUNK, file.size), total: file.size });
      }
    }
  } catch (e) {
    stream.free();
    throw e;
  }
  const report = JSON.parse(stream.finish());
  post({ type: "report", settings: msg.settings, report, wasm_bytes: wasmMemory.buffer.byteLength,
         wasm_before: before, file_bytes: file.size });
}

// The chat report: conversations files are read whole (they are small beside the model).
async function inspectChatFile(msg) {
  const bytes = new Uint8Array(await msg.file.arrayBuffer());
  const before = wasmMemory.buffer.byteLength;
  const report = JSON.parse(inspectChat(msg.name, bytes, JSON.stringify(msg.settings),
    msg.files.map(([name]) => name), msg.files.map(([, b]) => new Uint8Array(b))));
  post({ type: "report", settings: msg.settings, report, wasm_bytes: wasmMemory.buffer.byteLength,
         wasm_before: before, file_bytes: bytes.length });
}

/** Deletes the stored run; never while a run is going, in this tab or another. */
async function discardRun() {
  if (busy) throw new Error("a run is going: stop it first");
  await withRunLock(async () => {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(RUN_DIR, { recursive: true }).catch(() => {});
  });
  post({ type: "pending", run: null });
}

async function removeKept(id) {
  if (!/^run-[0-9TZ-]+$/.test(id)) throw new Error(`no kept adapter ${id}`);
  await (await keptDir()).removeEntry(id, { recursive: true });
  await postKept();
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
      case "plan": post({ type: "plan", ...await planFor(msg) }); break;
      case "propose-batch": post({ type: "batch", ...await proposeBatch(msg) }); break;
      case "train":
        if (busy) throw new Error("a run is already going");
        await runTraining(msg);
        break;
      case "resume":
        if (busy) throw new Error("a run is already going");
        await resumeTraining();
        break;
      case "discard": await discardRun(); break;
      case "remove-kept": await removeKept(msg.id); break;
      case "inspect": await inspect(msg); break;
      case "inspect-chat": await inspectChatFile(msg); break;
      case "merge": {
        const merged = await mergeTrained();
        const files = { config: merged.config.buffer, weights: merged.weights.buffer, tokenizer: merged.tokenizer.buffer };
        merged.free();
        post({ type: "merged", ...files }, [files.config, files.weights, files.tokenizer]);
        break;
      }
      case "generate": {
        const settings = JSON.stringify(msg.settings);
        for (const adapter of [false, true]) {
          const result = JSON.parse(await generateChat(msg.prompt, msg.system ?? undefined, settings, adapter,
            (text) => post({ type: "token", adapter, text })));
          post({ type: "generated", adapter, ...result });
        }
        break;
      }
      case "classify":
        post({ type: "predictions", results: JSON.parse(await classify(JSON.stringify(msg.texts))) });
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
