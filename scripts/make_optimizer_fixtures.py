#!/usr/bin/env python3
"""Optimizer, clipping and schedule fixtures from PyTorch, for crates/hearth-train/tests/optimizers.rs.

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_optimizer_fixtures.py

Writes tests/fixtures/optimizers.json: for each case, two parameters (a [3, 4] matrix and a [4]
vector) with fixed initial values, five steps of fixed gradients, and the parameters PyTorch's
optimizer (after `clip_grad_norm_` / `clip_grad_value_` when the case asks) leaves after each
step. Deterministic (seeded, float32, CPU). CI never runs this script.
"""
import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 5
LR = 0.05

CASES = [
    ("sgd", {"name": "sgd"}, lambda p: torch.optim.SGD(p, lr=LR), 0.0, None, None),
    ("sgd_momentum_wd", {"name": "sgd", "momentum": 0.9},
     lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9, weight_decay=0.01), 0.01, None, None),
    ("sgd_nesterov", {"name": "sgd", "momentum": 0.8, "nesterov": True},
     lambda p: torch.optim.SGD(p, lr=LR, momentum=0.8, nesterov=True), 0.0, None, None),
    ("adam_wd", {"name": "adam"}, lambda p: torch.optim.Adam(p, lr=LR, weight_decay=0.01), 0.01, None, None),
    ("adamw_wd", {"name": "adamw"}, lambda p: torch.optim.AdamW(p, lr=LR, weight_decay=0.1), 0.1, None, None),
    ("adamw_betas", {"name": "adamw", "beta1": 0.8, "beta2": 0.95, "eps": 1e-6},
     lambda p: torch.optim.AdamW(p, lr=LR, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.0), 0.0, None, None),
    ("rmsprop", {"name": "rmsprop"}, lambda p: torch.optim.RMSprop(p, lr=LR * 0.1), 0.0, None, None),
    ("rmsprop_momentum_wd", {"name": "rmsprop", "alpha": 0.9, "momentum": 0.5},
     lambda p: torch.optim.RMSprop(p, lr=LR * 0.1, alpha=0.9, momentum=0.5, weight_decay=0.01), 0.01, None, None),
    # SGD, not Adam: Adam is nearly blind to a gradient scale, so it could not tell a wrong norm.
    ("sgd_clip_norm", {"name": "sgd", "momentum": 0.5}, lambda p: torch.optim.SGD(p, lr=LR, momentum=0.5), 0.0, 0.5, None),
    ("sgd_clip_value", {"name": "sgd"}, lambda p: torch.optim.SGD(p, lr=LR), 0.0, None, 0.3),
]


def main():
    torch.manual_seed(0)
    a0 = torch.randn(3, 4)
    b0 = torch.randn(4)
    grads = [(torch.randn(3, 4), torch.randn(4)) for _ in range(STEPS)]
    out = {"lr_note": "each case's learning rate is in `lr`", "a0": a0.flatten().tolist(),
           "b0": b0.tolist(), "grads": [[ga.flatten().tolist(), gb.tolist()] for ga, gb in grads],
           "cases": []}
    for name, settings, make, wd, max_norm, max_value in CASES:
        a = a0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        opt = make([a, b])
        lr = opt.param_groups[0]["lr"]
        after = []
        for ga, gb in grads:
            a.grad = ga.clone()
            b.grad = gb.clone()
            if max_norm is not None:
                torch.nn.utils.clip_grad_norm_([a, b], max_norm)
            if max_value is not None:
                torch.nn.utils.clip_grad_value_([a, b], max_value)
            opt.step()
            after.append([a.detach().flatten().tolist(), b.detach().tolist()])
        out["cases"].append({"name": name, "optimizer": settings, "lr": lr, "weight_decay": wd,
                             "max_norm": max_norm, "max_value": max_value, "after": after})
    path = os.path.join(ROOT, "tests/fixtures/optimizers.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
