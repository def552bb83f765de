//! The quality report, cleaning and splits on small committed fixtures whose every figure was
//! counted by hand (`tests/fixtures/quality.csv`: 20 rows; the comments name the rows).

use hearth_data::clean::{self, CleanOptions, ConflictPolicy, Dedupe};
use hearth_data::neardup::NearDupSettings;
use hearth_data::pii::PiiKind;
use hearth_data::quality::{InspectOptions, Severity, inspect};
use hearth_data::{DataFormat, TextEncoding, load_rows};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture is committed")
}

fn quality_rows() -> hearth_data::RawRows {
    load_rows(
        &fixture("quality.csv"),
        DataFormat::Csv,
        "text",
        Some("label"),
    )
    .expect("loads")
}

#[test]
fn every_check_finds_the_hand_counted_rows() {
    let rows = quality_rows();
    let labels = rows.labels.clone().expect("labels");
    // Planned split: rows 2, 5 and 14 held out (0-based 1, 4, 13), the rest trained on.
    let eval = [1usize, 4, 13];
    let train: Vec<usize> = (0..20).filter(|i| !eval.contains(i)).collect();
    // A stand-in tokenizer: one token per word plus [CLS] and [SEP]; "Meh" counts as two
    // unknown tokens. 98 words in all, so 138 tokens.
    let count = |t: &str| {
        let words = t.split_whitespace().count();
        (words + 2, if t == "Meh" { 2 } else { 0 })
    };
    let options = InspectOptions {
        max_length: 12,
        ..InspectOptions::default()
    };
    let r = inspect(
        &rows.texts,
        Some(&labels),
        &rows.report,
        Some((&train, &eval)),
        &options,
        Some(&count),
    );
    assert_eq!(r.rows, 20);
    assert_eq!(r.encoding, TextEncoding::Utf8);
    // Rows 6 ("") and 7 ("   ").
    assert_eq!(r.empty_texts.count, 2);
    assert_eq!(r.empty_texts.examples, [6, 7]);
    // {1, 2} "I love this phone", {4, 5} "Terrible battery life".
    assert_eq!(r.exact_duplicates.groups, 2);
    assert_eq!(r.exact_duplicates.rows, 4);
    assert_eq!(r.exact_duplicates.redundant, 2);
    assert_eq!(r.exact_duplicates.examples, [vec![1, 2], vec![4, 5]]);
    // {1, 2, 3}: row 3 "i love this PHONE!!" folds to the same text.
    assert_eq!(r.folded_duplicates.groups, 1);
    assert_eq!(r.folded_duplicates.examples, [vec![1, 2, 3]]);
    // {13, 14}: 15 words, one differs: 12 of 14 word 3-grams shared, Jaccard 0.857 ≥ 0.8.
    assert_eq!(r.near_duplicates.groups, 1);
    assert_eq!(r.near_duplicates.examples, [vec![13, 14]]);
    // "Terrible battery life" is negative in row 4 and positive in row 5.
    let conflicts = r.conflicting_labels.as_ref().expect("labels given");
    assert_eq!((conflicts.texts, conflicts.rows), (1, 2));
    assert_eq!(conflicts.examples[0].text, "Terrible battery life");
    // positive: 1 2 3 5 11 13 14 18; negative: 4 9 12 15 17; neutral: 6 7 8 10 16 19 20.
    let l = r.labels.as_ref().expect("labels");
    assert_eq!(l.names, ["negative", "neutral", "positive"]);
    assert_eq!(l.counts, [5, 7, 8]);
    assert!((l.imbalance_ratio - 1.6).abs() < 1e-12);
    assert!((l.majority_share - 0.4).abs() < 1e-12);
    // Characters: row 6 is empty; row 14 is the longest (77 characters).
    assert_eq!(r.chars.min, 0);
    assert_eq!(r.chars.max, 77);
    // Tokens: rows 13 and 14 have 15 words + 2 > 12; row 9 has 9 + 2 = 11.
    let t = r.tokens.as_ref().expect("token counter given");
    assert_eq!(t.truncated.examples, [13, 14]);
    assert!((t.truncated_share - 0.1).abs() < 1e-12);
    assert_eq!(t.unknown_tokens, 2);
    assert!((t.unknown_rate - 2.0 / 138.0).abs() < 1e-12);
    // Row 11 "cafÃ©", row 12 "donâ€™t".
    assert_eq!(r.mojibake.examples, [11, 12]);
    // Rows 8 e-mail, 9 card, 10 phone, 15 IP address, 16 IBAN.
    assert_eq!(r.pii.rows.examples, [8, 9, 10, 15, 16]);
    assert_eq!(r.pii.rows.count, 5);
    for kind in PiiKind::ALL {
        assert_eq!(r.pii.by_kind.get(&kind), Some(&1), "{kind:?}");
    }
    // Held out: row 2 (its twin row 1 trains), row 5 (row 4 trains), row 14 (row 13 trains, near).
    let leak = r.leakage.as_ref().expect("split given");
    assert_eq!(leak.exact.examples, [2, 5]);
    assert_eq!(leak.folded.examples, [2, 5]);
    assert_eq!(leak.near.examples, [2, 5, 14]);

    let checks: Vec<(&str, Severity)> = r.findings.iter().map(|f| (f.check, f.severity)).collect();
    assert_eq!(
        checks[0],
        ("leakage", Severity::Error),
        "most severe first: {checks:?}"
    );
    for check in [
        "size",
        "mojibake",
        "empty_texts",
        "exact_duplicates",
        "folded_duplicates",
        "near_duplicates",
        "conflicting_labels",
        "small_classes",
        "truncation",
        "unknown_tokens",
        "personal_data",
    ] {
        let f = r.findings.iter().find(|f| f.check == check);
        let f = f.unwrap_or_else(|| panic!("no {check} finding in {checks:?}"));
        assert!(!f.suggestion.is_empty());
    }
    assert!(
        !checks.iter().any(|(c, _)| *c == "imbalance"),
        "1.6× is not flagged"
    );
}

#[test]
fn cleaning_reports_each_step() {
    let rows = quality_rows();
    let options = CleanOptions {
        repair_mojibake: true,
        nfkc: true,
        whitespace: true,
        redact_pii: true,
        drop_empty: true,
        conflicts: ConflictPolicy::Drop,
        dedupe: Dedupe::Folded,
    };
    let c = clean::clean(
        rows.texts,
        rows.labels,
        &options,
        &NearDupSettings::default(),
    );
    let steps: Vec<(&str, usize, usize)> = c
        .steps
        .iter()
        .map(|s| (s.step, s.changed, s.dropped))
        .collect();
    assert_eq!(
        steps,
        [
            ("repair_mojibake", 2, 0), // rows 11, 12
            ("nfkc", 0, 0),
            ("whitespace", 1, 0),    // row 7 "   " → ""
            ("redact_pii", 5, 0),    // rows 8, 9, 10, 15, 16
            ("drop_empty", 0, 2),    // rows 6, 7
            ("conflicts", 0, 2),     // rows 4, 5
            ("dedupe_folded", 0, 2), // rows 2, 3 (row 1 stays)
        ]
    );
    assert_eq!(c.texts.len(), 14);
    assert_eq!(c.kept[..3], [0, 7, 8], "rows 1, 8, 9 lead the survivors");
    assert!(c.texts.contains(&"The café was great".to_string()));
    assert!(c.texts.contains(&"don’t buy it".to_string()));
    assert!(c.texts.contains(&"Write to me at [EMAIL]".to_string()));
    assert!(c.texts.contains(&"pay to [IBAN] please".to_string()));

    // Majority: a tie (one negative, one positive) drops the text; a 2:1 vote relabels.
    let texts: Vec<String> = ["a", "a", "a", "b", "b"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let labels: Vec<String> = ["x", "x", "y", "x", "y"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let c = clean::clean(
        texts,
        Some(labels),
        &CleanOptions {
            conflicts: ConflictPolicy::Majority,
            ..CleanOptions::default()
        },
        &NearDupSettings::default(),
    );
    assert_eq!(c.texts, ["a", "a", "a"]);
    assert_eq!(
        c.labels.as_deref(),
        Some(&["x".to_string(), "x".into(), "x".into()][..])
    );
    assert_eq!((c.steps[0].changed, c.steps[0].dropped), (1, 2));
}

#[test]
fn encodings_byte_order_marks_and_the_latin1_fallback() {
    for (file, encoding) in [
        ("utf8.csv", TextEncoding::Utf8),
        ("utf8-bom.csv", TextEncoding::Utf8Bom),
        ("utf16le-bom.csv", TextEncoding::Utf16Le),
        ("utf16be-bom.csv", TextEncoding::Utf16Be),
    ] {
        // Semicolon-delimited: the delimiter is sniffed.
        let rows = load_rows(&fixture(file), DataFormat::Csv, "text", Some("label")).expect(file);
        assert_eq!(rows.report.encoding, encoding, "{file}");
        assert_eq!(
            rows.texts,
            ["café au lait", "naïve 🚗 idea", "plain"],
            "{file}"
        );
        assert_eq!(rows.labels.as_deref().map(<[String]>::len), Some(3));
        assert_eq!(rows.report.fallback_rows, 0);
    }
    // A UTF-8 row and a latin-1 row in one file: not UTF-8, so all of it reads as latin-1;
    // both non-ASCII rows are counted, and the UTF-8 one shows (repairable) damage.
    let rows = load_rows(
        &fixture("mixed-latin1.tsv"),
        DataFormat::Tsv,
        "text",
        Some("label"),
    )
    .expect("loads");
    assert_eq!(rows.report.encoding, TextEncoding::Latin1Fallback);
    assert_eq!(rows.report.fallback_rows, 2);
    assert_eq!(rows.texts, ["cafÃ© au lait", "naïve idea", "plain"]);
    let r = inspect(
        &rows.texts,
        rows.labels.as_deref(),
        &rows.report,
        None,
        &InspectOptions::default(),
        None,
    );
    assert_eq!(r.mojibake.examples, [1]);
    assert_eq!(
        hearth_data::mojibake::repair(&rows.texts[0]).as_deref(),
        Some("café au lait")
    );
    assert!(r.findings.iter().any(|f| f.check == "encoding"));
}

#[test]
fn json_arrays_and_plain_text_load() {
    let json = br#"[{"text": "good", "label": "pos"}, {"text": "bad", "label": 0}]"#;
    let rows = load_rows(json, DataFormat::Json, "text", Some("label")).expect("json");
    assert_eq!(rows.texts, ["good", "bad"]);
    assert_eq!(
        rows.labels.as_deref(),
        Some(&["pos".to_string(), "0".into()][..])
    );
    let err = load_rows(br#"{"text": "x"}"#, DataFormat::Json, "text", None).unwrap_err();
    assert!(
        err.to_string().contains("expected an array of objects"),
        "{err}"
    );
    let err = load_rows(br#"[{"text": "x"}, 3]"#, DataFormat::Json, "text", None).unwrap_err();
    assert!(err.to_string().contains("element 1"), "{err}");

    let text = b"first line\n\n  \nsecond line\r\n";
    let rows = load_rows(text, DataFormat::Text, "text", Some("label")).expect("text");
    assert_eq!(rows.texts, ["first line", "second line"]);
    assert!(rows.labels.is_none());
    let err =
        hearth_data::load_classification(text, DataFormat::Text, "text", "label").unwrap_err();
    assert!(err.to_string().contains("has no labels"), "{err}");
}

#[test]
fn stratified_split_keeps_shares_and_duplicates_together() {
    // 3 classes of 40, 40, 20 rows; rows 0..10 are five duplicate pairs.
    let labels: Vec<usize> = (0..100)
        .map(|i| {
            if i < 40 {
                0
            } else if i < 80 {
                1
            } else {
                2
            }
        })
        .collect();
    let texts: Vec<String> = (0..100)
        .map(|i| {
            if i < 10 {
                format!("dup {}", i / 2)
            } else {
                format!("row {i} text")
            }
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let groups = hearth_data::duplicate_groups(&refs, None);
    assert_eq!(groups[1], 0);
    assert_eq!(groups[3], 2);
    let s = hearth_data::stratified_split(&labels, &groups, 0.1, 0.2, 7).expect("splits");
    let mut all: Vec<usize> = s
        .train
        .iter()
        .chain(&s.validation)
        .chain(&s.test)
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>(), "a partition");
    for pair in 0..5 {
        let (a, b) = (2 * pair, 2 * pair + 1);
        let part = |r: usize| {
            [&s.train, &s.validation, &s.test]
                .iter()
                .position(|p| p.contains(&r))
        };
        assert_eq!(part(a), part(b), "duplicates {a} and {b} straddle parts");
    }
    let count = |part: &[usize], class: usize| part.iter().filter(|&&r| labels[r] == class).count();
    // Targets: test 8/8/4, validation 4/4/2; a pair can overshoot a class's part by one.
    for (class, test, val) in [(0, 8, 4), (1, 8, 4), (2, 4, 2)] {
        assert!(
            count(&s.test, class).abs_diff(test) <= 1,
            "class {class} test"
        );
        assert!(
            count(&s.validation, class).abs_diff(val) <= 1,
            "class {class} validation"
        );
    }
    // Seeded and saved: the same inputs give the same split, and it reads back from JSON.
    let again = hearth_data::stratified_split(&labels, &groups, 0.1, 0.2, 7).expect("splits");
    assert_eq!(again, s);
    let json = serde_json::to_string(&s).expect("json");
    assert_eq!(
        serde_json::from_str::<hearth_data::StratifiedSplit>(&json).expect("reads"),
        s
    );
    assert!(hearth_data::stratified_split(&labels, &groups, 0.5, 0.5, 0).is_err());
}

#[test]
fn rows_past_the_limit_are_counted_not_analyzed() {
    let rows = quality_rows();
    let options = InspectOptions {
        max_rows: 5,
        ..InspectOptions::default()
    };
    let r = inspect(
        &rows.texts,
        rows.labels.as_deref(),
        &rows.report,
        None,
        &options,
        None,
    );
    assert_eq!((r.rows, r.analyzed_rows), (20, 5));
    assert_eq!(r.empty_texts.count, 0, "rows 6 and 7 are past the limit");
    assert_eq!(r.exact_duplicates.examples, [vec![1, 2], vec![4, 5]]);
    assert!(r.findings.iter().any(|f| f.check == "analyzed"));
}

#[test]
fn imbalance_is_flagged_by_its_ratio() {
    // 30 "a", 3 "b", 1 "c": ratio 30 (error); then 9 "a", 3 "b": ratio 3 (warning).
    let texts: Vec<String> = (0..34).map(|i| format!("text number {i}")).collect();
    let labels: Vec<String> = (0..34)
        .map(|i| {
            if i < 30 {
                "a"
            } else if i < 33 {
                "b"
            } else {
                "c"
            }
            .to_string()
        })
        .collect();
    let load = hearth_data::LoadReport {
        rows: 34,
        encoding: TextEncoding::Utf8,
        fallback_rows: 0,
        skipped_unlabeled: 0,
    };
    let r = inspect(
        &texts,
        Some(&labels),
        &load,
        None,
        &InspectOptions::default(),
        None,
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.check == "imbalance")
        .expect("flagged");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("30.0×"), "{}", f.message);
    assert!(f.message.contains("88.2%"), "{}", f.message);
    let r = inspect(
        &texts[..12],
        Some(&labels[21..33]),
        &load,
        None,
        &InspectOptions::default(),
        None,
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.check == "imbalance")
        .expect("flagged");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("3.0×"), "{}", f.message);
}
