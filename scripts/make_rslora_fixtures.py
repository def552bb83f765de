#!/usr/bin/env python3
"""rsLoRA + layers_to_transform fixtures: an adapter PEFT itself builds with use_rslora=True and
layers_to_transform=[1, 3], PEFT's logits for it, and PEFT's logits for such an adapter exported
by Hearth, so Rust tests can check that Hearth reads and writes these settings as PEFT does.

Usage (from the repository root, with the peer venv built by shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_rslora_fixtures.py

Hearth's adapter is written by `cargo run -p hearth-models --example rslora_adapter` (the
script runs it; set HEARTH_RSLORA_BIN to a built example binary to skip cargo).

Writes into tests/fixtures/:

  peft-rslora-adapter/        MiniLM `BertForSequenceClassification(num_labels=3)` wrapped by
                              `get_peft_model` with `LoraConfig(task_type=SEQ_CLS, r=4,
                              lora_alpha=8, lora_dropout=0, target_modules=[query, value],
                              use_rslora=True, layers_to_transform=[1, 3])` (layers_pattern left
                              unset, as most users do), every lora_B and the head drawn from
                              torch.manual_seed(0) so the adapter is not the identity; saved by
                              PEFT's `save_pretrained`.
  peft_rslora_logits.json     PEFT's logits (eval mode) for SENTENCES with that adapter, the
                              modules PEFT adapted and its `scaling`.
  hearth-rslora-adapter/      the adapter Hearth's example writes (same settings, seeded factors).
  hearth_rslora_logits.json   PEFT's logits for SENTENCES with Hearth's adapter loaded by
                              `PeftModel.from_pretrained`, the modules it adapted and its scaling.

Everything is float32 on CPU; nothing is downloaded. CI never runs this script. Deterministic.
"""
import json
import math
import os
import shutil
import subprocess
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Relative, so the committed adapter_config.json names no machine's directory.
MODEL = "assets/all-MiniLM-L6-v2"
FIXTURES = os.path.join(ROOT, "tests/fixtures")
R, ALPHA, LAYERS = 4, 8, [1, 3]
SENTENCES = [
    "I love driverless cars!",
    "Never getting in one of those.",
    "The car drove itself to the store today",
    "Caf\u00e9 na\u00efve \U0001F697 #driverless",
    "autonomous vehicles will kill jobs and people",
    "meh",
]


def adapted_modules(model):
    """Names of the modules carrying a LoRA adapter, and their scalings."""
    names, scalings = [], set()
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            names.append(name.removeprefix("base_model.model."))
            scalings.add(module.scaling["default"])
    assert len(scalings) == 1, scalings
    return sorted(names), scalings.pop()


def logits_of(model):
    tok = AutoTokenizer.from_pretrained(MODEL)
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**enc).logits.tolist()


def record(model, adapter_dir):
    modules, scaling = adapted_modules(model)
    expected = sorted(f"bert.encoder.layer.{l}.attention.self.{m}" for l in LAYERS for m in ["query", "value"])
    assert modules == expected, modules
    assert abs(scaling - ALPHA / math.sqrt(R)) < 1e-12, scaling
    return {"sentences": SENTENCES, "logits": logits_of(model), "adapted_modules": modules,
            "scaling": scaling, "adapter": os.path.relpath(adapter_dir, ROOT)}


def write_json(name, value):
    with open(os.path.join(FIXTURES, name), "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def peft_fixture():
    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=3)
    config = LoraConfig(task_type="SEQ_CLS", r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                        target_modules=["query", "value"], use_rslora=True, layers_to_transform=LAYERS)
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.05)
            elif "classifier" in name and "modules_to_save" in name:
                p.copy_(torch.randn_like(p) * 0.1)
    out = os.path.join(FIXTURES, "peft-rslora-adapter")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    readme = os.path.join(out, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    # PEFT keeps target_modules as a set, whose order varies from run to run; sorted, the file
    # is the same every time (as PEFT writes it: indent 2, sorted keys).
    config_path = os.path.join(out, "adapter_config.json")
    with open(config_path) as f:
        saved = json.load(f)
    saved["target_modules"] = sorted(saved["target_modules"])
    with open(config_path, "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)
    # Logits of the adapter as saved, through PEFT's own loading path.
    base = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=3)
    loaded = PeftModel.from_pretrained(base, out)
    write_json("peft_rslora_logits.json", record(loaded, out))


def hearth_fixture():
    out = os.path.join(FIXTURES, "hearth-rslora-adapter")
    shutil.rmtree(out, ignore_errors=True)
    binary = os.environ.get("HEARTH_RSLORA_BIN")
    cmd = [binary] if binary else ["cargo", "run", "-q", "-p", "hearth-models", "--example", "rslora_adapter", "--"]
    subprocess.run(cmd + [MODEL, out], check=True, cwd=ROOT)
    base = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=3)
    loaded = PeftModel.from_pretrained(base, out)
    write_json("hearth_rslora_logits.json", record(loaded, out))


def main():
    os.chdir(ROOT)
    torch.set_num_threads(2)
    peft_fixture()
    if "--peft-only" not in sys.argv:
        hearth_fixture()


if __name__ == "__main__":
    main()
