//! Loading CSV datasets: UTF-8 with and without a byte-order mark, quoting, and the latin-1
//! fallback that must agree with Python byte for byte.

// A failed unwrap is exactly the report a failing test should give.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use hearth_data::{DataFormat, TextEncoding, load_classification, load_path};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn utf8_csv_loads_in_file_order() {
    let bytes = "sentiment,confidence,text\n\
                 positive,0.9,I love it 😀\n\
                 negative,0.8,Não gostei\n\
                 neutral,0.5,ok\n";
    let data = load_classification(bytes.as_bytes(), DataFormat::Csv, "text", "sentiment").unwrap();
    assert_eq!(data.texts, ["I love it 😀", "Não gostei", "ok"]);
    assert_eq!(data.label_names, ["negative", "neutral", "positive"]);
    assert_eq!(data.labels, [2, 0, 1]);
    assert_eq!(data.report.rows, 3);
    assert_eq!(data.report.encoding, TextEncoding::Utf8);
    // Non-ASCII text in a UTF-8 file is ordinary, not a fallback casualty.
    assert_eq!(data.report.fallback_rows, 0);
}

#[test]
fn a_byte_order_mark_does_not_stick_to_the_first_column() {
    let bytes = b"\xEF\xBB\xBFlabel,text\r\na,x\r\nb,y\r\n";
    let data = load_classification(bytes, DataFormat::Csv, "text", "label").unwrap();
    assert_eq!(data.texts, ["x", "y"]);
    assert_eq!(data.label_names, ["a", "b"]);
}

#[test]
fn quoted_fields_keep_commas_quotes_and_newlines() {
    let bytes = "label,text\n\
                 a,\"one, two\"\n\
                 b,\"line one\nline two\"\n\
                 a,\"she said \"\"hi\"\"\"\n\
                 b,\"crlf\r\ninside\"\n\
                 \n\
                 a,after a blank line\n";
    let data = load_classification(bytes.as_bytes(), DataFormat::Csv, "text", "label").unwrap();
    assert_eq!(
        data.texts,
        [
            "one, two",
            "line one\nline two",
            "she said \"hi\"",
            "crlf\r\ninside",
            "after a blank line",
        ]
    );
    assert_eq!(data.labels, [0, 1, 0, 1, 0]);
}

#[test]
fn latin1_fallback_matches_python_and_counts_touched_rows() {
    // Expected values from:
    // python3 -c "import csv,io; p='tests/fixtures/latin1.csv'; rows=list(csv.DictReader(io.StringIO(open(p,'rb').read().decode('latin-1')))); print([r['text'] for r in rows]); print(sum(any(ord(c)>127 for c in ''.join(r.values())) for r in rows))"
    let bytes = std::fs::read(fixture("latin1.csv")).unwrap();
    let data = load_classification(&bytes, DataFormat::Csv, "text", "label").unwrap();
    assert_eq!(
        data.texts,
        [
            "caf\u{e9} au lait",
            "it\u{92}s bad",
            "plain ascii",
            "quoted \u{e9}, with a comma",
            "ascii text but a non-ASCII note",
        ]
    );
    assert_eq!(data.report.encoding, TextEncoding::Latin1Fallback);
    assert_eq!(data.report.rows, 5);
    // Every row with a byte above 0x7F counts, in any column (the last row's is in `note`).
    assert_eq!(data.report.fallback_rows, 4);
}

#[test]
fn one_invalid_byte_anywhere_switches_the_whole_file() {
    // The first row is valid UTF-8 on its own, but the decision is per file, as in Python, so
    // its two bytes become two latin-1 characters.
    let bytes = b"label,text\na,caf\xC3\xA9\nb,bad \xFF\n";
    let data = load_classification(bytes, DataFormat::Csv, "text", "label").unwrap();
    assert_eq!(data.texts, ["caf\u{c3}\u{a9}", "bad \u{ff}"]);
    assert_eq!(data.report.fallback_rows, 2);
}

#[test]
fn load_path_detects_the_format_from_the_extension() {
    let data = load_path(&fixture("latin1.csv"), None, "text", "label").unwrap();
    assert_eq!(data.report.rows, 5);
    let data = load_path(&fixture("reviews.jsonl"), None, "text", "label").unwrap();
    assert_eq!(data.report.rows, 3);
}

#[test]
fn load_path_names_a_file_it_cannot_read() {
    let err = load_path(&fixture("absent.csv"), None, "text", "label")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read ") && err.contains("absent.csv"),
        "{err}"
    );
}

#[test]
fn dataset_serializes_for_json_output() {
    let data =
        load_classification(b"label,text\na,x\nb,y\n", DataFormat::Csv, "text", "label").unwrap();
    let json = serde_json::to_value(&data.report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"rows": 2, "encoding": "utf8", "fallback_rows": 0, "skipped_unlabeled": 0})
    );
}
