// The data report panel: what `hearth inspect` says about the chosen file, computed by the
// worker in slices before any training, and the label count it tells the memory plan.
import { $, headedRow, post, setStatus, state } from "./ui.js";
import { isSft, modelSource, setting, taskKind } from "./form.js";
import { proposeSettings } from "./propose.js";

let timer = null;

/** Asks the worker for the report of the chosen file with the form's settings (debounced). */
export function requestReport() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!state.data || !state.ready) return;
    if (isSft()) {
      requestChatReport();
      return;
    }
    if (!$("text-column").value) return;
    const tokenizer = state.modelFiles["tokenizer.json"];
    const model = modelSource() === "demo" ? { demo: true } : tokenizer ? { tokenizer: tokenizer.slice(0) } : {};
    const settings = {
      text_column: $("text-column").value,
      label_column: $("label-column").value || null,
      max_length: setting("max-length"),
      eval_fraction: setting("eval-fraction"),
      seed: setting("seed"),
    };
    setStatus($("report-status"), "Checking the data…");
    post({ type: "inspect", name: state.data.name, file: state.data.file, settings, model });
  }, 200);
}

// The chat model's files the chat report reads: its tokenizer and template, or its GGUF file
// (the weights of an HF directory stay in the page).
const CHAT_TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"];

/** The report of a file of conversations, `hearth inspect`'s chat report. */
function requestChatReport() {
  const files = modelSource() === "demo" ? [] : Object.entries(state.modelFiles)
    .filter(([name]) => CHAT_TOKENIZER_FILES.includes(name) || name.endsWith(".gguf"))
    .map(([name, bytes]) => [name, bytes.slice(0)]);
  const settings = {
    max_length: setting("max-length"),
    eval_fraction: setting("eval-fraction"),
    seed: setting("seed"),
  };
  setStatus($("report-status"), "Checking the conversations…");
  post({ type: "inspect-chat", name: state.data.name, file: state.data.file, settings, files });
}

export function showProgress({ pass, bytes, total }) {
  setStatus($("report-status"), `Checking the data: ${pass === "encoding" ? "encoding" : "rows"} ` +
    `${(100 * bytes / Math.max(1, total)).toFixed(0)}%…`);
}

export function reportFailed(message) {
  setStatus($("report-status"), `The data report failed: ${message}`, "error");
}

/** Renders the worker's "report" message; the test reads the figures from the data- attributes. */
export function showReport({ settings, report: r, wasm_before, wasm_bytes, file_bytes }) {
  state.report = { settings, report: r, name: state.data?.name };
  const box = $("report");
  box.dataset.wasmBefore = String(wasm_before);
  box.dataset.wasmBytes = String(wasm_bytes);
  box.dataset.fileBytes = String(file_bytes);
  box.dataset.json = JSON.stringify(r);
  box.dataset.settings = JSON.stringify(settings);
  const rows = r.conversations === undefined ? textRows(r) : chatRows(r);
  const table = $("report-table").tBodies[0];
  table.replaceChildren();
  for (const [label, value] of rows) headedRow(table, label, [value]);
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
    ? `The data report has ${r.findings.length} finding${r.findings.length === 1 ? "" : "s"} (open “Data report” below; the cleaning ` +
      "steps are under “More settings”)."
    : "The data report has no findings.", r.findings.some((f) => f.severity === "error") ? "warning" : "ok");
  proposeSettings(r, requestReport);
}

// The chat report's figures (the lines `hearth inspect` prints for conversations).
function chatRows(r) {
  const t = r.tokens;
  return [
    ["Conversations", `${r.conversations} in ${r.rows} rows (${r.encoding})`],
    ["Turns per conversation", `median ${r.turns.p50}, max ${r.turns.max}`],
    ["Tokens after the chat template", t ? `median ${t.lengths.p50}, max ${t.lengths.max}; ` +
      `${t.longer.count} over ${t.max_length}` : "— (choose the chat model for token figures)"],
    ...(t ? t.policies.map((p) => [`Truncation ${p.truncation}`, `${p.whole} whole, ${p.prompt_cut} prompt cut, ` +
      `${p.answer_cut} answer cut, ${p.dropped} dropped`]) : []),
    ["Unreadable rows", r.unreadable.count],
    ["Unknown roles", r.role_errors.count],
    ["Turns out of order", r.role_order.count],
    ["Empty turns", r.empty_turns.count],
    ["Missing answers", r.missing_answers.count],
    ["Empty answers", r.empty_answers.count],
    ["Duplicate prompts", `${r.exact_duplicates.groups} groups, ${r.exact_duplicates.redundant} repeats`],
    [`Near-duplicate prompts (≥ ${r.near_settings.threshold})`, `${r.near_duplicates.groups} clusters`],
    ["Same prompt, other answers", `${r.conflicting_answers.texts} prompts`],
    ["Personal data", `${r.pii.rows.count} conversations`],
    ["Held-out conversations also in training", r.leakage ? `${r.leakage.exact.count} exact, ${r.leakage.near.count} incl. near` : "—"],
  ];
}

function textRows(r) {
  return [
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
}

/**
 * The head's outputs as the data report knows them: `{count, from}`, or `null` when the page
 * cannot know yet (no report of the chosen file and label column). Regression has one output
 * whatever the data; a multi-label cell lists several labels, split at the separator.
 */
export function reportedOutputs() {
  if (taskKind() === "regression") return { count: 1, from: "regression: one output" };
  const known = state.report;
  if (!known?.report.labels || known.name !== state.data?.name
    || known.settings.label_column !== $("label-column").value) return null;
  const names = known.report.labels.names;
  if (taskKind() === "multi_label") {
    const separator = setting("separator");
    const labels = new Set(names.flatMap((n) => n.split(separator).map((s) => s.trim()).filter(Boolean)));
    return { count: labels.size, from: `the data report: ${labels.size} labels in “${known.settings.label_column}”` };
  }
  return { count: names.length, from: `the data report: ${names.length} labels in “${known.settings.label_column}”` };
}
