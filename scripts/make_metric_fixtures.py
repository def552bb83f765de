#!/usr/bin/env python3
"""Classification metric fixtures from scikit-learn, for crates/hearth-train/tests/metrics.rs.

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_metric_fixtures.py

Writes tests/fixtures/metrics.json: seeded (gold, predicted) label vectors, including one where
a class is never predicted and one where a class never occurs in gold, with scikit-learn's
accuracy, per-class precision/recall/F1/support and their macro, micro and weighted averages
(zero_division=0). Deterministic. CI never runs this script.
"""
import json
import os

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def case(gold, pred, k):
    labels = list(range(k))
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, average=None, zero_division=0)
    out = {"num_labels": k, "gold": list(map(int, gold)), "pred": list(map(int, pred)),
           "accuracy": accuracy_score(gold, pred),
           "per_class": {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                         "support": s.tolist()}}
    for avg in ["macro", "micro", "weighted"]:
        p, r, f, _ = precision_recall_fscore_support(gold, pred, average=avg, zero_division=0)
        out[avg] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    return out


def main():
    rng = np.random.default_rng(0)
    cases = []
    gold = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.6, gold, rng.integers(0, 3, 200))
    cases.append(case(gold, pred, 3))
    gold = rng.integers(0, 4, 50)
    pred = np.minimum(gold, 2)  # class 3 is never predicted
    pred[::7] = 0
    cases.append(case(gold, pred, 4))
    gold = rng.integers(0, 3, 40)  # class 3 never in gold, but predicted sometimes
    pred = gold.copy()
    pred[::5] = 3
    cases.append(case(gold, pred, 4))
    with open(os.path.join(ROOT, "tests/fixtures/metrics.json"), "w") as fh:
        json.dump({"cases": cases}, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
