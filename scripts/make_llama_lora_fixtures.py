#!/usr/bin/env python3
"""LoRA fixtures on the tiny random Llama: a PEFT CAUSAL_LM adapter and what PyTorch computes with
it (logits, masked loss, the gradient of every factor, the factors after one AdamW step), and
PEFT's logits for an adapter Hearth exported, so Rust tests can check Hearth's decoder LoRA, its
gradients and its PEFT files against PEFT itself.

Usage (from the repository root, with the peer venv built by shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_llama_lora_fixtures.py

Hearth's adapter is written by `cargo run -p hearth-models --example llama_adapter` (the script
runs it; set HEARTH_LLAMA_ADAPTER_BIN to a built example binary to skip cargo).

Writes into tests/fixtures/:

  peft-llama-adapter/              tiny-llama/ wrapped by `get_peft_model` with
                                   `LoraConfig(task_type=CAUSAL_LM, r=4, lora_alpha=8,
                                   lora_dropout=0, target_modules=[q,k,v,o,gate,up,down]_proj)`,
                                   every lora_B drawn from torch.manual_seed(0) (0.05·N(0, 1)) so
                                   both factors get gradients; saved by PEFT's `save_pretrained`.
  tiny_llama_lora.json             for tiny_llama.json's sequences, masks and prompt lengths, with
                                   that adapter loaded by `PeftModel.from_pretrained`: the logits,
                                   the loss (labels -100 on the prompt and on padding), the
                                   modules PEFT adapted and its scaling.
  tiny_llama_lora.safetensors      `grad.<PEFT name>`: the gradient of that loss with respect to
                                   every lora_A / lora_B (PEFT's layout, [r, in] and [out, r]);
                                   `step.<PEFT name>`: every factor after one
                                   `torch.optim.AdamW(lr=1e-2, weight_decay=0.01)` step.
  hearth-llama-adapter/            the adapter Hearth's example writes (same settings, lora_A from
                                   seed 1, lora_B fixed non-zero values).
  hearth_llama_adapter_logits.json PEFT's logits for the same sequences with Hearth's adapter
                                   loaded by `PeftModel.from_pretrained`, modules and scaling.

Float32 on CPU, eval mode (no dropout anywhere); nothing is downloaded. CI never runs this
script. Deterministic: two runs give the same bytes.
"""
import json
import os
import shutil
import subprocess

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Relative, so the committed adapter_config.json names no machine's directory.
MODEL = "tests/fixtures/tiny-llama"
FIXTURES = os.path.join(ROOT, "tests/fixtures")
R, ALPHA = 4, 8
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LR, WEIGHT_DECAY = 1e-2, 0.01


def batch():
    """tiny_llama.json's ids and mask, and labels -100 on each row's prompt and on padding."""
    with open(os.path.join(FIXTURES, "tiny_llama.json")) as f:
        fx = json.load(f)
    ids = torch.tensor(fx["input_ids"])
    mask = torch.tensor(fx["attention_mask"])
    labels = ids.clone()
    for i, n in enumerate(fx["prompt_len"]):
        labels[i, :n] = -100
    labels[mask == 0] = -100
    return fx, ids, mask, labels


def base():
    return LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32).eval()


def adapted_modules(model):
    """Names of the modules carrying a LoRA adapter, and their (one) scaling."""
    names, scalings = [], set()
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            names.append(name.removeprefix("base_model.model."))
            scalings.add(module.scaling["default"])
    assert len(scalings) == 1, scalings
    assert len(names) == 2 * len(TARGETS), names
    return sorted(names), scalings.pop()


def peft_name(name):
    """A parameter's name as PEFT saves it (without the adapter's name)."""
    return name.replace(".default.", ".")


def write_json(name, value):
    with open(os.path.join(FIXTURES, name), "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def save_adapter(model, out):
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    readme = os.path.join(out, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    # PEFT keeps target_modules as a set, whose order varies from run to run; sorted, the file
    # is the same every time (as PEFT writes it: indent 2, sorted keys).
    path = os.path.join(out, "adapter_config.json")
    with open(path) as f:
        saved = json.load(f)
    saved["target_modules"] = sorted(saved["target_modules"])
    with open(path, "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)


def peft_fixture():
    torch.manual_seed(0)
    config = LoraConfig(task_type="CAUSAL_LM", r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                        target_modules=TARGETS)
    model = get_peft_model(base(), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.05)
    out = os.path.join(FIXTURES, "peft-llama-adapter")
    save_adapter(model, out)

    # Everything below goes through PEFT's own loading path, from the saved files.
    model = PeftModel.from_pretrained(base(), out, is_trainable=True).eval()
    modules, scaling = adapted_modules(model)
    fx, ids, mask, labels = batch()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    factors = {peft_name(n): p for n, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_A." in n or ".lora_B." in n for n in factors), list(factors)
    tensors = {f"grad.{n}": p.grad.detach().clone() for n, p in factors.items()}
    optimizer = torch.optim.AdamW(list(factors.values()), lr=LR, weight_decay=WEIGHT_DECAY)
    optimizer.step()
    tensors.update({f"step.{n}": p.detach().clone() for n, p in factors.items()})
    path = os.path.join(FIXTURES, "tiny_llama_lora.safetensors")
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, path,
              metadata={"format": "pt"})
    os.chmod(path, 0o644)  # save_file creates it private; the other fixtures are world-readable.
    write_json("tiny_llama_lora.json", {
        "input_ids": fx["input_ids"], "attention_mask": fx["attention_mask"],
        "prompt_len": fx["prompt_len"], "logits": out.logits.detach().tolist(),
        "loss": out.loss.item(), "adapted_modules": modules, "scaling": scaling,
        "optimizer": {"name": "AdamW", "lr": LR, "weight_decay": WEIGHT_DECAY},
        "adapter": "tests/fixtures/peft-llama-adapter",
    })


def hearth_fixture():
    out = os.path.join(FIXTURES, "hearth-llama-adapter")
    shutil.rmtree(out, ignore_errors=True)
    binary = os.environ.get("HEARTH_LLAMA_ADAPTER_BIN")
    cmd = [binary] if binary else ["cargo", "run", "-q", "-p", "hearth-models", "--example",
                                   "llama_adapter", "--"]
    subprocess.run(cmd + [MODEL, out], check=True, cwd=ROOT)
    model = PeftModel.from_pretrained(base(), out).eval()
    modules, scaling = adapted_modules(model)
    fx, ids, mask, _ = batch()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    write_json("hearth_llama_adapter_logits.json", {
        "input_ids": fx["input_ids"], "attention_mask": fx["attention_mask"],
        "logits": logits.tolist(), "adapted_modules": modules, "scaling": scaling,
        "adapter": "tests/fixtures/hearth-llama-adapter",
    })


def main():
    os.chdir(ROOT)
    torch.set_num_threads(2)
    peft_fixture()
    hearth_fixture()


if __name__ == "__main__":
    main()
