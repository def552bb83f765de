// The trained model, once a run has finished: "try it" (a classifier labels texts; a chat model
// answers with and without its adapter, token by token) and merging a classifier's adapter into
// its model for download.
import { $, download, post, setStatus, state } from "./ui.js";
import { updateButtons } from "./run.js";

/** Shows the "try it" box that suits what the last run trained. */
export function offerTrained() {
  $("try-section").hidden = false;
  $("chat-try").hidden = !state.trainedChat;
  setStatus($("try-status"), state.trainedChat ? "Type a message; the base model and your adapter answer side by side."
    : "Type texts above and classify them with your adapter.");
}

export function tryIt() {
  const texts = $("try-text").value.split("\n").map((t) => t.trim()).filter(Boolean);
  if (texts.length === 0) {
    setStatus($("try-status"), "Type a text to classify (one per line).", "error");
    return;
  }
  setStatus($("try-status"), "Classifying on the GPU…");
  post({ type: "classify", texts });
}

export function showPredictions(results) {
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

/** The generation settings the form gives; a blank field is left to the module's default. */
function generationSettings() {
  const settings = {};
  for (const [id, key] of [["gen-max-tokens", "max_new_tokens"], ["gen-temperature", "temperature"],
    ["gen-top-k", "top_k"], ["gen-top-p", "top_p"], ["gen-seed", "seed"]]) {
    const text = $(id).value.trim();
    if (text !== "") settings[key] = Number(text);
  }
  return settings;
}

export function chatTry() {
  const prompt = $("chat-prompt").value.trim();
  if (!prompt) {
    setStatus($("try-status"), "Type a message for the chat model.", "error");
    return;
  }
  for (const id of ["try-base", "try-adapter"]) {
    $(id).textContent = "";
    delete $(id).dataset.done;
  }
  state.generating = true;
  updateButtons();
  setStatus($("try-status"), "Answering on the GPU, token by token…");
  post({ type: "generate", prompt, settings: generationSettings() });
}

export function onToken({ adapter, text }) {
  $(adapter ? "try-adapter" : "try-base").textContent += text;
}

export function onGenerated({ adapter, text, stop_reason }) {
  const out = $(adapter ? "try-adapter" : "try-base");
  out.textContent = text;
  out.dataset.done = stop_reason;
  if (!adapter) return;
  setStatus($("try-status"), "Both answers computed in this tab: the base model, then base + your adapter.", "ok");
  state.generating = false;
  updateButtons();
}

export function generateFailed(message) {
  state.generating = false;
  setStatus($("try-status"), `Generation failed: ${message}`, "error");
  updateButtons();
}

export function merge() {
  $("merged-downloads").replaceChildren();
  setStatus($("merge-status"), "Merging the adapter into the model…");
  post({ type: "merge" });
}

export function onMerged({ config, weights, tokenizer }) {
  setStatus($("merge-status"), "The merged model, for transformers' AutoModelForSequenceClassification (no PEFT needed):", "ok");
  download("model.safetensors", new Blob([weights], { type: "application/octet-stream" }), "merged");
  download("config.json", new Blob([config], { type: "application/json" }), "merged");
  download("tokenizer.json", new Blob([tokenizer], { type: "application/json" }), "merged");
}

export function mergeFailed(message) {
  setStatus($("merge-status"), `Merging failed: ${message}`, "error");
}
