// The three-click start: from the chosen model and data the page proposes the task (labels: a
// classifier, numbers: regression, conversations: chat SFT) and the settings shown beside Start
// (steps, learning rate, batch size, max length, and the warmup under "More settings"), from the
// data report (rows, token lengths) and the memory planner (the largest batch this GPU holds).
// Every proposal is written into its control and said in words; a control the user changed is
// never proposed over.
import { $, post, state } from "./ui.js";
import { buildJob, defaultJob, modelReady, modelSource, taskKind } from "./form.js";
import { planContext, planFiles } from "./plan.js";

/** The controls the page proposes a value for. */
const PROPOSED = ["task", "steps", "lr", "batch-size", "max-length", "warmup"];
/** Controls the user changed: never proposed over. */
const touched = new Set();

export function wireProposals() {
  for (const id of PROPOSED) $(id).addEventListener("input", () => touched.add(id));
}

/** Sets a control the user has not changed; says whether it did. */
function propose(id, value) {
  if (touched.has(id) || $(id).value === String(value)) return false;
  $(id).value = String(value);
  return true;
}

/** What kind of model is chosen: "chat" (a decoder with a chat template, or a GGUF file),
 * "encoder" (a BERT-family classifier base, as the demo model) or null (files still missing). */
function modelKind() {
  if (modelSource() === "demo") return "encoder";
  const files = state.modelFiles;
  const names = Object.keys(files);
  if (names.some((n) => n.endsWith(".gguf")) || names.includes("chat_template.jinja")
    || names.includes("tokenizer_config.json")) return "chat";
  if (!files["config.json"]) return null;
  try {
    const config = JSON.parse(new TextDecoder().decode(files["config.json"]));
    return (config.architectures ?? []).some((a) => a.endsWith("ForCausalLM")) ? "chat" : "encoder";
  } catch {
    return null;
  }
}

/** Whether the data's columns are conversations (a chat file), not texts with labels. */
function conversationColumns(names) {
  const has = (n) => names.some((c) => c.trim().toLowerCase() === n);
  return has("messages") || has("conversations") || has("conversation")
    || (has("prompt") && (has("response") || has("completion") || has("answer")));
}

let reasons = { task: "" };

function setTask(kind, why) {
  reasons.task = why;
  if (touched.has("task") || taskKind() === kind) return;
  $("task").value = kind;
  // The page's own handler: the task's defaults, its report, its buttons and fields.
  $("task").dispatchEvent(new Event("change"));
}

/** The task from the data's columns (conversations) and the model, once the columns are known. */
export function proposeTaskFromColumns(names) {
  delete $("proposal").dataset.ready;
  if (conversationColumns(names)) {
    setTask("sft", "the file holds conversations, so the task is chat fine-tuning (SFT)" +
      (modelKind() === "chat" ? "" : "; it needs a chat model (pick its files under 1. Model)"));
  } else if (modelKind() === "chat") {
    setTask("sft", "the model is a chat model, so the task is chat fine-tuning (SFT)");
  } else {
    setTask("classification", "each row has a text and a label, so the task is classification");
  }
  showProposal();
}

/** Regression when every label is a number and they are many or not whole; else classification. */
function proposeTaskFromLabels(labels) {
  if (taskKind() === "sft" || !labels) return;
  const numbers = labels.names.map(Number);
  const numeric = labels.names.length > 0 && labels.names.every((n) => n.trim() !== "" && Number.isFinite(Number(n)));
  if (numeric && (labels.names.length > 10 || numbers.some((x) => !Number.isInteger(x)))) {
    setTask("regression", `the ${labels.names.length} labels are all numbers, so the task is regression`);
  } else if (taskKind() === "regression" && !touched.has("task")) {
    setTask("classification", `the labels are ${labels.names.length} classes, so the task is classification`);
  }
}

const roundUp = (x, to) => Math.ceil(x / to) * to;

/** The longest sequence the model takes, from its config (the demo model's: 512). */
function modelMaxPositions() {
  const config = state.modelFiles["config.json"];
  if (modelSource() === "demo" || !config) return 512;
  try {
    return JSON.parse(new TextDecoder().decode(config)).max_position_embeddings ?? 512;
  } catch {
    return 512;
  }
}

let batchReply = null;

/** The worker's answer to "propose-batch". */
export function onBatch(msg) {
  batchReply?.(msg);
  batchReply = null;
}

/** The largest batch of `candidates` that the planner says fits this GPU with `job`. */
function plannedBatch(job, candidates) {
  return new Promise((resolve) => {
    batchReply = resolve;
    post({ type: "propose-batch", job, candidates, context: planContext(), files: planFiles() });
  });
}

let proposed = {};

/** Proposes the settings from a data report (`report.js` calls it with each new report). The
 * report's max length is the form's: when the proposal changes it, the report is asked again,
 * so that its truncation figures are those of the run. */
export async function proposeSettings(r, requestReport) {
  const chat = r.conversations !== undefined;
  if (!chat) proposeTaskFromLabels(r.labels);
  if (chat !== (taskKind() === "sft")) return; // the report of the task before: another comes
  const rows = chat ? r.conversations : r.rows;
  const job = defaultJob();
  if (!job || rows === 0) return;
  const evalFraction = Number($("eval-fraction").value) || job.data.eval_fraction;
  const testFraction = $("split-method").value === "stratified" ? Number($("test-fraction").value) || 0 : 0;
  const trainRows = Math.max(1, Math.round(rows * (1 - evalFraction - testFraction)));
  const why = {};

  // Max length: the 99th percentile of the token lengths, so that 99 in 100 texts fit whole.
  const lengths = r.tokens?.lengths;
  const cap = Math.min(chat ? 512 : 256, modelMaxPositions());
  let maxLength = Number($("max-length").value) || job.train.max_length;
  if (lengths && !touched.has("max-length")) {
    maxLength = Math.min(cap, Math.max(16, roundUp(lengths.p99, 16)));
    why["max length"] = `${maxLength} tokens: 99% of the ${chat ? "conversations" : "texts"} are ` +
      `${lengths.p99} tokens or shorter (longest ${lengths.max})`;
  }
  const lengthChanged = propose("max-length", maxLength);

  // Batch: the largest the memory planner says this GPU holds (at most 4 for a chat model, whose
  // rows are long), never more than the training rows.
  let batch = Number($("batch-size").value) || job.train.batch_size;
  if (!touched.has("batch-size")) {
    const candidates = [16, 8, 4, 2, 1].filter((b) => b <= Math.max(1, trainRows) && (!chat || b <= 4));
    if (!modelReady()) {
      batch = candidates.find((b) => b <= job.train.batch_size);
      why.batch = `${batch} (planned once the model's files are all chosen)`;
    } else {
      const planJob = buildJob();
      planJob.train.max_length = maxLength;
      const reply = await plannedBatch(planJob, candidates);
      batch = reply.batch ?? batch;
      why.batch = reply.error ? `${batch} (the memory plan failed: ${reply.error})`
        : reply.fits ? `${batch}: the largest of ${candidates.join(", ")} the memory plan fits on this GPU`
          : `${batch}: even this is over this GPU's limits in the memory plan`;
    }
    propose("batch-size", batch);
  }

  // Steps: three passes over a small dataset, one over a larger one, at most 2,000 steps.
  const epochs = trainRows <= 2000 ? 3 : 1;
  const steps = Math.max(1, Math.min(2000, Math.ceil(epochs * trainRows / batch)));
  if (!touched.has("steps")) {
    why.steps = `${steps}: ${epochs === 3 ? "three passes" : "one pass"} over ${trainRows} training ` +
      `${chat ? "conversations" : "rows"} in batches of ${batch}${steps === 2000 ? ", at most 2,000" : ""}`;
    propose("steps", steps);
  }
  // Warmup: a tenth of a short run, the job's default for a long one.
  if (!touched.has("warmup")) propose("warmup", Math.min(job.train.warmup_steps, Math.floor(steps / 10)));

  // Learning rate: the job's default for its batch, scaled by √(batch / default batch).
  if (!touched.has("lr")) {
    const lr = Number((job.train.learning_rate * Math.sqrt(batch / job.train.batch_size)).toPrecision(2));
    why["learning rate"] = `${lr}: Hearth's default ${job.train.learning_rate} for a batch of ` +
      `${job.train.batch_size}, times √(${batch}/${job.train.batch_size})`;
    propose("lr", lr);
  }
  proposed = why;
  showProposal(true);
  if (lengthChanged) requestReport();
}

function showProposal(ready = false) {
  const lines = [reasons.task && `task: ${reasons.task}`,
    ...Object.entries(proposed).map(([what, text]) => `${what}: ${text}`)].filter(Boolean);
  const intro = document.createElement("p");
  intro.textContent = "Proposed from your model and data (change any of them):";
  const list = document.createElement("ul");
  list.append(...lines.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
  $("proposal").replaceChildren(...(lines.length ? [intro, list] : []));
  if (ready) {
    $("proposal").dataset.ready = "true";
    $("proposal").dataset.proposal = JSON.stringify({
      task: taskKind(), steps: $("steps").value, lr: $("lr").value, batch: $("batch-size").value,
      max_length: $("max-length").value, warmup: $("warmup").value,
    });
  }
}

/** A new model or data file: the settings are proposed again once its report is in. */
export function resetProposal() {
  delete $("proposal").dataset.ready;
  proposed = {};
}
