#!/usr/bin/env python3
"""Classification metric fixtures from scikit-learn, for crates/hearth-train/tests/metrics.rs.

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_metric_fixtures.py

Writes tests/fixtures/metrics.json: seeded (gold, predicted) label vectors, including one where
a class is never predicted and one where a class never occurs in gold, with scikit-learn's
accuracy, per-class precision/recall/F1/support and their macro, micro and weighted averages
(zero_division=0). Under "multi_label": 0/1 indicator matrices with per-label and averaged
precision/recall/F1 (macro, micro, weighted, samples), subset accuracy and Hamming loss. Under
"regression": MAE, MSE, RMSE, R² and Pearson's r. Deterministic. CI never runs this script.
"""
import json
import os

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import (accuracy_score, hamming_loss, mean_absolute_error, mean_squared_error,
                             precision_recall_fscore_support, r2_score)

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
    multi = []
    for rows, k in [(60, 4), (25, 3)]:
        gold = (rng.random((rows, k)) < 0.35).astype(int)
        pred = np.where(rng.random((rows, k)) < 0.7, gold, 1 - gold)
        if k == 3:
            pred[:, 2] = 0  # a label never predicted
        out = {"num_labels": k, "gold": gold.tolist(), "pred": pred.tolist(),
               "subset_accuracy": accuracy_score(gold, pred), "hamming_loss": hamming_loss(gold, pred)}
        p, r, f, s_ = precision_recall_fscore_support(gold, pred, average=None, zero_division=0)
        out["per_label"] = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                            "support": s_.tolist()}
        for avg in ["macro", "micro", "weighted", "samples"]:
            p, r, f, _ = precision_recall_fscore_support(gold, pred, average=avg, zero_division=0)
            out[avg] = {"precision": float(p), "recall": float(r), "f1": float(f)}
        multi.append(out)
    regression = []
    for n in [50, 9]:
        gold = rng.normal(2.0, 1.5, n)
        pred = gold * 0.7 + rng.normal(0.3, 0.8, n)
        # Hearth's predictions and targets are f32: score the f32 values exactly.
        gold = gold.astype(np.float32).astype(np.float64)
        pred = pred.astype(np.float32).astype(np.float64)
        regression.append({"gold": gold.tolist(), "pred": pred.tolist(),
                           "mae": mean_absolute_error(gold, pred), "mse": mean_squared_error(gold, pred),
                           "rmse": float(np.sqrt(mean_squared_error(gold, pred))),
                           "r2": r2_score(gold, pred), "pearson": float(pearsonr(gold, pred)[0])})
    with open(os.path.join(ROOT, "tests/fixtures/metrics.json"), "w") as fh:
        json.dump({"cases": cases, "multi_label": multi, "regression": regression}, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
