//! Every load error names what it found: the columns that exist, the row or line that failed,
//! the lone class. These tests pin the messages a user will read.

// A failed unwrap is exactly the report a failing test should give.
#![allow(clippy::unwrap_used)]

use hearth_data::{DataError, DataFormat, load_classification};

fn csv_err(data: &str, text: &str, label: &str) -> DataError {
    load_classification(data.as_bytes(), DataFormat::Csv, text, label).unwrap_err()
}

fn jsonl_err(data: &str) -> DataError {
    load_classification(data.as_bytes(), DataFormat::Jsonl, "text", "label").unwrap_err()
}

#[test]
fn an_empty_file_has_no_data_rows() {
    for format in [DataFormat::Csv, DataFormat::Jsonl] {
        let err = load_classification(b"", format, "text", "label").unwrap_err();
        assert_eq!(err.to_string(), "the file has no data rows (it is empty)");
    }
}

#[test]
fn a_header_without_rows_has_no_data_rows() {
    let err = csv_err("sentiment,text\r\n", "text", "sentiment");
    assert!(matches!(err, DataError::NoDataRows { .. }));
    assert_eq!(
        err.to_string(),
        "the file has no data rows (there is a header but no rows below it)"
    );
    let err = jsonl_err("\n  \n\n");
    assert_eq!(
        err.to_string(),
        "the file has no data rows (it holds only blank lines)"
    );
}

#[test]
fn a_missing_csv_column_lists_the_columns_found() {
    let err = csv_err(
        "sentiment,confidence,text\npositive,1,x\n",
        "txt",
        "sentiment",
    );
    assert_eq!(
        err.to_string(),
        "no column named `txt`; the file has columns: sentiment, confidence, text"
    );
    let err = csv_err("sentiment,confidence,text\npositive,1,x\n", "text", "label");
    assert!(
        err.to_string().starts_with("no column named `label`;"),
        "{err}"
    );
}

#[test]
fn a_duplicated_column_is_ambiguous() {
    let err = csv_err("text,label,text\na,b,c\n", "text", "label");
    assert_eq!(
        err.to_string(),
        "the column `text` appears 2 times in the header, so it is unclear which one to read; \
         rename the others"
    );
}

#[test]
fn a_missing_jsonl_key_names_the_line_and_the_keys_found() {
    let err =
        jsonl_err("{\"text\": \"a\", \"label\": \"x\"}\n\n{\"body\": \"b\", \"label\": \"y\"}\n");
    assert_eq!(
        err.to_string(),
        "line 3 has no key named `text`; that object has keys: body, label"
    );
}

#[test]
fn an_empty_csv_label_names_the_row_and_its_line() {
    // The quoted newline in row 1 makes row 2 start on line 4, and the message says both.
    let err = csv_err("text,label\n\"two\nlines\",a\nnext,\n", "text", "label");
    assert!(matches!(err, DataError::MissingLabel { .. }));
    assert_eq!(
        err.to_string(),
        "row 2 (line 4) has no value in label column `label`"
    );
}

#[test]
fn missing_jsonl_labels_name_the_line() {
    for label in ["\"\"", "null", "\"   \""] {
        let data = format!(
            "{{\"text\": \"a\", \"label\": \"x\"}}\n{{\"text\": \"b\", \"label\": {label}}}\n"
        );
        let err = jsonl_err(&data);
        assert_eq!(
            err.to_string(),
            "line 2 has no value in label column `label`",
            "label {label}"
        );
    }
}

#[test]
fn unsupported_jsonl_values_are_named() {
    let err = jsonl_err("{\"text\": \"a\", \"label\": {\"x\": 1}}\n");
    assert_eq!(
        err.to_string(),
        "line 1: label column `label` holds an object; a label must be a string, a number or \
         a boolean"
    );
    let err = jsonl_err("{\"text\": \"a\", \"label\": [1]}\n");
    assert!(err.to_string().contains("holds an array"), "{err}");
    let err = jsonl_err("{\"text\": 5, \"label\": \"a\"}\n");
    assert_eq!(
        err.to_string(),
        "line 1: text column `text` holds the number 5; the text must be a string"
    );
}

#[test]
fn a_single_class_is_reported_with_its_name_and_row_count() {
    let mut data = String::from("sentiment,text\n");
    for i in 0..500 {
        data.push_str(&format!("positive,text {i}\n"));
    }
    let err = csv_err(&data, "text", "sentiment");
    assert_eq!(
        err.to_string(),
        "the label column `sentiment` has only one class (`positive`) across 500 rows; \
         classification needs at least two"
    );
}

#[test]
fn a_ragged_csv_row_reports_its_position() {
    let err = csv_err("label,text\na,x\nb,y,extra\n", "text", "label");
    assert!(matches!(err, DataError::Csv { .. }));
    let message = err.to_string();
    assert!(message.starts_with("malformed CSV: "), "{message}");
    assert!(message.contains("line: 3"), "{message}");
    assert!(message.contains("3 fields"), "{message}");
}

#[test]
fn a_stray_quote_that_shifts_fields_is_reported() {
    // Python's csv reads `"x"y` as `xy` and so does this reader; the comma after it then makes
    // a third field, which is caught as a ragged row instead of misreading the columns.
    let err = csv_err("label,text\na,\"x\"y,z\n", "text", "label");
    assert!(err.to_string().contains("line: 2"), "{err}");
}

#[test]
fn malformed_json_names_the_line_and_serde_json_message() {
    let err = jsonl_err("{\"text\": \"a\", \"label\": \"x\"}\n\n{\"text\": \"b\", \"label\": }\n");
    assert!(matches!(err, DataError::Json { line: 3, .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("line 3 is not valid JSON: "),
        "{message}"
    );
    assert!(message.contains("expected value"), "{message}");
}

#[test]
fn a_line_that_is_not_an_object_is_an_error() {
    let err = jsonl_err("{\"text\": \"a\", \"label\": \"x\"}\n[\"b\", \"y\"]\n");
    assert_eq!(
        err.to_string(),
        "line 2 holds an array, but each line of a JSONL file must be an object"
    );
}
