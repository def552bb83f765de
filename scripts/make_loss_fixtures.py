#!/usr/bin/env python3
"""Cross-entropy fixtures from PyTorch, for crates/hearth-train/tests/losses.rs.

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_loss_fixtures.py

Writes tests/fixtures/losses.json: seeded logits [6, 3] and targets, and
`torch.nn.functional.cross_entropy` (mean reduction) with and without label smoothing and class
weights, with its gradient with respect to the logits. Deterministic. CI never runs this script.
"""
import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    torch.manual_seed(0)
    logits = torch.randn(6, 3) * 2
    targets = torch.tensor([0, 2, 1, 1, 0, 2])
    cases = []
    for smoothing in [0.0, 0.1]:
        for weights in [None, [0.5, 2.0, 1.0]]:
            x = logits.clone().requires_grad_(True)
            w = None if weights is None else torch.tensor(weights)
            loss = torch.nn.functional.cross_entropy(x, targets, weight=w, label_smoothing=smoothing)
            loss.backward()
            cases.append({"smoothing": smoothing, "weights": weights, "loss": loss.item(),
                          "grad": x.grad.flatten().tolist()})
    out = {"logits": logits.flatten().tolist(), "targets": targets.tolist(), "cases": cases}
    with open(os.path.join(ROOT, "tests/fixtures/losses.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
