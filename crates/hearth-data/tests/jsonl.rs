//! Loading JSONL datasets: string, integer and boolean labels, blank lines, and line numbers.

// A failed unwrap is exactly the report a failing test should give.
#![allow(clippy::unwrap_used)]

use hearth_data::{DataFormat, TextEncoding, load_classification};

fn jsonl(data: &str) -> hearth_data::Dataset {
    load_classification(data.as_bytes(), DataFormat::Jsonl, "text", "label").unwrap()
}

#[test]
fn string_labels_and_blank_lines() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reviews.jsonl"
    ))
    .unwrap();
    let data = load_classification(&bytes, DataFormat::Jsonl, "text", "label").unwrap();
    assert_eq!(data.texts, ["great product 👍", "awful", "it is fine"]);
    assert_eq!(data.label_names, ["negative", "neutral", "positive"]);
    assert_eq!(data.labels, [2, 0, 1]);
    assert_eq!(data.report.rows, 3);
    assert_eq!(data.report.encoding, TextEncoding::Utf8);
}

#[test]
fn integer_labels_become_their_decimal_strings() {
    let data = jsonl(
        "{\"text\": \"a\", \"label\": 1}\n\
         {\"text\": \"b\", \"label\": 0}\n\
         {\"text\": \"c\", \"label\": 10}\n\
         {\"text\": \"d\", \"label\": 2}\n",
    );
    // Names sort as strings, as Python's sorted() sorts str labels: "10" comes before "2".
    assert_eq!(data.label_names, ["0", "1", "10", "2"]);
    assert_eq!(data.labels, [1, 0, 2, 3]);
}

#[test]
fn boolean_labels_become_true_and_false() {
    let data = jsonl("{\"text\": \"a\", \"label\": true}\n{\"text\": \"b\", \"label\": false}");
    assert_eq!(data.label_names, ["false", "true"]);
    assert_eq!(data.labels, [1, 0]);
}

#[test]
fn an_empty_text_is_kept() {
    let data = jsonl("{\"text\": \"\", \"label\": \"a\"}\n{\"text\": \"b\", \"label\": \"b\"}\n");
    assert_eq!(data.texts, ["", "b"]);
}

#[test]
fn latin1_fallback_counts_lines_with_high_bytes() {
    let bytes =
        b"{\"text\": \"caf\xE9\", \"label\": \"a\"}\n{\"text\": \"plain\", \"label\": \"b\"}\n";
    let data = load_classification(bytes, DataFormat::Jsonl, "text", "label").unwrap();
    assert_eq!(data.texts, ["caf\u{e9}", "plain"]);
    assert_eq!(data.report.encoding, TextEncoding::Latin1Fallback);
    assert_eq!(data.report.fallback_rows, 1);
}
