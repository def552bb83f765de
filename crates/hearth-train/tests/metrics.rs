//! Classification metrics equal scikit-learn's (fixture from `scripts/fixtures/metrics.py`):
//! accuracy, per-class precision/recall/F1/support, and macro, micro and weighted averages,
//! including a class never predicted and a class absent from the gold labels.

mod common;

use common::fixture;
use hearth_train::{ClassificationMetrics, MultiLabelMetrics, RegressionMetrics};

fn close(a: f64, b: &serde_json::Value, what: &str) {
    let b = b.as_f64().expect("number");
    assert!((a - b).abs() < 1e-12, "{what}: {a} vs scikit-learn's {b}");
}

#[test]
fn metrics_match_scikit_learn() {
    let fx = fixture("metrics.json");
    for (i, case) in fx["cases"].as_array().expect("cases").iter().enumerate() {
        let ints = |k: &str| -> Vec<usize> {
            case[k]
                .as_array()
                .expect(k)
                .iter()
                .map(|v| v.as_u64().expect("int") as usize)
                .collect()
        };
        let k = case["num_labels"].as_u64().expect("k") as usize;
        let m = ClassificationMetrics::compute(&ints("gold"), &ints("pred"), k);
        close(m.accuracy, &case["accuracy"], &format!("case {i} accuracy"));
        close(
            m.macro_f1,
            &case["macro"]["f1"],
            &format!("case {i} macro_f1"),
        );
        for (avg, ours) in [
            ("macro", &m.macro_avg),
            ("micro", &m.micro_avg),
            ("weighted", &m.weighted_avg),
        ] {
            close(
                ours.precision,
                &case[avg]["precision"],
                &format!("case {i} {avg} precision"),
            );
            close(
                ours.recall,
                &case[avg]["recall"],
                &format!("case {i} {avg} recall"),
            );
            close(ours.f1, &case[avg]["f1"], &format!("case {i} {avg} f1"));
        }
        assert_eq!(m.per_class.len(), k);
        for (c, s) in m.per_class.iter().enumerate() {
            let pc = &case["per_class"];
            close(
                s.precision,
                &pc["precision"][c],
                &format!("case {i} class {c} precision"),
            );
            close(
                s.recall,
                &pc["recall"][c],
                &format!("case {i} class {c} recall"),
            );
            close(s.f1, &pc["f1"][c], &format!("case {i} class {c} f1"));
            assert_eq!(
                s.support as u64,
                pc["support"][c].as_u64().expect("support")
            );
        }
    }
}

fn close_to(a: f64, b: &serde_json::Value, what: &str) {
    close(a, b, what);
}

#[test]
fn multi_label_metrics_match_scikit_learn() {
    let fx = fixture("metrics.json");
    for (i, case) in fx["multi_label"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let k = case["num_labels"].as_u64().expect("k") as usize;
        let cells = |key: &str| -> Vec<bool> {
            case[key]
                .as_array()
                .expect(key)
                .iter()
                .flat_map(|row| row.as_array().expect("row").iter())
                .map(|v| v.as_u64().expect("0/1") == 1)
                .collect()
        };
        let m = MultiLabelMetrics::compute(&cells("gold"), &cells("pred"), k);
        close_to(
            m.subset_accuracy,
            &case["subset_accuracy"],
            &format!("case {i} subset accuracy"),
        );
        close_to(
            m.hamming_loss,
            &case["hamming_loss"],
            &format!("case {i} Hamming loss"),
        );
        for (avg, ours) in [
            ("macro", &m.macro_avg),
            ("micro", &m.micro_avg),
            ("weighted", &m.weighted_avg),
            ("samples", &m.samples_avg),
        ] {
            close_to(
                ours.precision,
                &case[avg]["precision"],
                &format!("case {i} {avg} precision"),
            );
            close_to(
                ours.recall,
                &case[avg]["recall"],
                &format!("case {i} {avg} recall"),
            );
            close_to(ours.f1, &case[avg]["f1"], &format!("case {i} {avg} f1"));
        }
        assert_eq!(m.per_label.len(), k);
        for (c, s) in m.per_label.iter().enumerate() {
            let pl = &case["per_label"];
            close_to(
                s.precision,
                &pl["precision"][c],
                &format!("case {i} label {c} precision"),
            );
            close_to(
                s.recall,
                &pl["recall"][c],
                &format!("case {i} label {c} recall"),
            );
            close_to(s.f1, &pl["f1"][c], &format!("case {i} label {c} f1"));
            assert_eq!(
                s.support as u64,
                pl["support"][c].as_u64().expect("support")
            );
        }
    }
}

#[test]
fn regression_metrics_match_scikit_learn() {
    let fx = fixture("metrics.json");
    for (i, case) in fx["regression"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let m = RegressionMetrics::compute(
            &common::floats(&case["gold"]),
            &common::floats(&case["pred"]),
        );
        for (name, ours) in [
            ("mae", m.mae),
            ("mse", m.mse),
            ("rmse", m.rmse),
            ("r2", m.r2),
            ("pearson", m.pearson),
        ] {
            close_to(ours, &case[name], &format!("case {i} {name}"));
        }
    }
    // Constant targets: scikit-learn's r2_score is 1 for an exact fit and 0 otherwise.
    assert_eq!(RegressionMetrics::compute(&[2.0, 2.0], &[2.0, 2.0]).r2, 1.0);
    assert_eq!(RegressionMetrics::compute(&[2.0, 2.0], &[1.0, 2.0]).r2, 0.0);
}
