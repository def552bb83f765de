#!/usr/bin/env python3
"""Loss fixtures from PyTorch, for crates/hearth-train/tests/losses.rs.

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_loss_fixtures.py

Writes tests/fixtures/losses.json: seeded logits [6, 3] and targets, and
`torch.nn.functional.cross_entropy` (mean reduction) with and without label smoothing and class
weights, with its gradient with respect to the logits; and, under "multi_label" and "regression",
`binary_cross_entropy_with_logits` on 0/1 targets [5, 4] and `mse_loss`, `l1_loss` and
`huber_loss` (δ = 1 and 0.5) on [7] outputs, each with its gradient. Deterministic. CI never
runs this script.
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

    logits = torch.randn(5, 4) * 2
    hot = (torch.rand(5, 4) < 0.4).float()
    x = logits.clone().requires_grad_(True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(x, hot)
    loss.backward()
    out["multi_label"] = {"logits": logits.flatten().tolist(), "targets": hot.flatten().tolist(),
                          "loss": loss.item(), "grad": x.grad.flatten().tolist()}

    pred = torch.randn(7) * 1.5
    gold = torch.randn(7)
    cases = []
    for name, fn in [("mse", lambda a, b: torch.nn.functional.mse_loss(a, b)),
                     ("mae", lambda a, b: torch.nn.functional.l1_loss(a, b)),
                     ("huber", lambda a, b: torch.nn.functional.huber_loss(a, b, delta=1.0)),
                     ("huber", lambda a, b: torch.nn.functional.huber_loss(a, b, delta=0.5))]:
        x = pred.clone().requires_grad_(True)
        loss = fn(x, gold)
        loss.backward()
        delta = 0.5 if len([c for c in cases if c["loss_name"] == "huber"]) == 1 else 1.0
        cases.append({"loss_name": name, "delta": delta, "loss": loss.item(),
                      "grad": x.grad.tolist()})
    out["regression"] = {"predictions": pred.tolist(), "targets": gold.tolist(), "cases": cases}
    with open(os.path.join(ROOT, "tests/fixtures/losses.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
