// The user's model, remembered in this browser's origin-private file system (OPFS) when the user
// asks for it (a check box, off until ticked), so that the next visit does not ask for its files
// again. What is remembered is said on the page with a button that forgets it; nothing is
// remembered without the tick, and nothing leaves the device.
import { $, setStatus, state } from "./ui.js";

const DIR = "hearth-model";

async function modelDir(create) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DIR, { create });
}

/** The remembered model's description ({names, bytes, saved}), or null. */
async function rememberedMeta() {
  try {
    const file = await (await (await modelDir(false)).getFileHandle("meta.json")).getFile();
    return JSON.parse(await file.text());
  } catch {
    return null;
  }
}

const same = (meta) => meta && Object.keys(state.modelFiles).sort().join("\n") === meta.names.join("\n")
  && meta.names.every((n, i) => state.modelFiles[n].byteLength === meta.sizes[i]);

function showRemembered(meta) {
  $("remembered").hidden = !meta;
  if (!meta) return;
  const mb = (meta.sizes.reduce((a, b) => a + b, 0) / 1e6).toFixed(1);
  $("remembered-text").textContent = `Remembered in this browser since ${new Date(meta.saved).toLocaleString()}: ` +
    `${meta.names.join(", ")} (${mb} MB), on this device only.`;
}

/** Offers to remember the chosen model once its files are complete (not when it already is). */
export async function offerRemember(complete) {
  const meta = await rememberedMeta();
  $("remember-box").hidden = !complete || same(meta) || !("storage" in navigator);
  $("remember-model").checked = false;
}

/** Stores the chosen model's files, `meta.json` last (a model without it is not offered). */
async function remember() {
  const box = $("remember-model");
  try {
    await forget();
    const dir = await modelDir(true);
    const names = Object.keys(state.modelFiles).sort();
    for (const name of names) {
      const writable = await (await dir.getFileHandle(name, { create: true })).createWritable();
      await writable.write(state.modelFiles[name]);
      await writable.close();
    }
    const meta = { names, sizes: names.map((n) => state.modelFiles[n].byteLength), saved: new Date().toISOString() };
    const writable = await (await dir.getFileHandle("meta.json", { create: true })).createWritable();
    await writable.write(JSON.stringify(meta));
    await writable.close();
    $("remember-box").hidden = true;
    showRemembered(meta);
  } catch (e) {
    box.checked = false;
    setStatus($("model-status"), `The model could not be remembered in this browser: ${e.message}`, "error");
  }
}

async function forget() {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(DIR, { recursive: true }).catch(() => {});
  showRemembered(null);
}

/** At start: a remembered model is loaded and chosen; `then` runs once it is (or is not). */
export async function restoreRemembered(then) {
  const meta = "storage" in navigator ? await rememberedMeta() : null;
  if (meta) {
    try {
      const dir = await modelDir(false);
      for (const name of meta.names) {
        state.modelFiles[name] = await (await (await dir.getFileHandle(name)).getFile()).arrayBuffer();
      }
      document.querySelector('input[name="model-source"][value="files"]').checked = true;
      $("model-path").value = "my-model";
      setStatus($("model-status"), `Your remembered model is loaded from this browser: ${meta.names.join(", ")}.`, "ok");
      showRemembered(meta);
    } catch (e) {
      state.modelFiles = {};
      setStatus($("model-status"), `The remembered model could not be read (${e.message}); pick its files again.`, "error");
    }
  }
  then();
}

export function wireRemember() {
  $("remember-model").addEventListener("change", (e) => { if (e.target.checked) remember(); });
  $("forget-model").addEventListener("click", async () => {
    await forget();
    setStatus($("model-status"), "The remembered model is forgotten: its files are deleted from this browser.");
    $("remember-box").hidden = Object.keys(state.modelFiles).length === 0;
  });
}
