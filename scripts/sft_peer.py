#!/usr/bin/env python3
"""Peer for Hearth's SFT benchmark: LoRA supervised fine-tuning of a chat model in PyTorch +
transformers + PEFT, the same job `hearth train --task sft` runs.

  ~/.cache/hearth-peer-venv/bin/python scripts/sft_peer.py --model FILE.gguf|DIR --data FILE.jsonl \
      [--steps 20] [--batch 8] [--max-len 128] [--threads 2] [--lr 1e-3] [--eval-rows 16] [--seed 0]

Model:    a GGUF file (transformers dequantizes it to f32, as Hearth does) or an HF directory.
Data:     JSONL, each line `{"messages": [...]}` or `{"prompt", "response"}`; rows shuffled with
          Python's random.Random(seed) (Hearth's holdout split), the first --eval-rows held out.
Tokens:   the model's chat template; loss only on the assistant's content and the `<|im_end|>`
          after it (offsets of the rendered text), truncation at --max-len, dynamic padding.
Training: LoRA r=8, alpha=16, dropout 0.1 on q_proj, v_proj (PEFT's CAUSAL_LM defaults for
          Llama), AdamW (weight decay 0), linear warmup 2 steps then linear decay, fp32 on CPU.
Prints:   one JSON object: real and padded tokens/s, train wall time, validation loss before and
          after, peak RSS (MiB).
"""
import argparse
import json
import os
import random
import resource
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup  # noqa: E402

# The conversations and the assistant mask are the fixtures' (scripts/fixtures/chat.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.fixtures import chat  # noqa: E402


def encode(tok, messages, max_len):
    """Ids and the assistant mask (the rule of scripts/fixtures/chat.py), truncated to max_len."""
    _, ids, mask, _ = chat.encode(tok, messages)
    return ids[:max_len], mask[:max_len]


def evaluate(model, rows, pad, bs):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), bs):
            ids, att, labels = chat.padded_batch(rows[i:i + bs], pad)
            n = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=ids, attention_mask=att, labels=labels).loss.item() * n
            count += n
    model.train()
    return total / max(count, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-rows", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.model.endswith(".gguf"):
        d, f = os.path.split(a.model)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    else:
        tok = AutoTokenizer.from_pretrained(a.model)
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    convs = chat.conversations(a.data)
    random.Random(a.seed).shuffle(convs)
    rows = [encode(tok, c, a.max_len) for c in convs]
    held, train = rows[:a.eval_rows], rows[a.eval_rows:]
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16,
                                             lora_dropout=0.1, target_modules=["q_proj", "v_proj"]))
    before = evaluate(model, held, pad, a.batch)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=a.lr,
                            weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, 2, a.steps)
    model.train()
    real = padded = cursor = 0
    losses = []
    start = time.perf_counter()
    for _ in range(a.steps):
        chunk = []
        while len(chunk) < a.batch:
            if cursor == len(train):
                cursor = 0
            chunk.append(train[cursor])
            cursor += 1
        ids, att, labels = chat.padded_batch(chunk, pad)
        real += int(att.sum())
        padded += ids.numel()
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    wall = time.perf_counter() - start
    after = evaluate(model, held, pad, a.batch)
    print(json.dumps({
        "steps": a.steps, "batch": a.batch, "train_wall_s": wall,
        "real_tokens_per_s": real / wall, "padded_tokens_per_s": padded / wall,
        "loss_first": losses[0], "loss_last": losses[-1],
        "val_loss_before": before, "val_loss_after": after,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
