//! Reading a text-classification dataset into texts, label indices and class names.
//!
//! Both formats end in the same place: one text and one label string per record, in file
//! order. The label strings then become indices into the sorted list of distinct labels, which
//! is the order Python's `sorted()` gives, so class `i` here is class `i` in the reference.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::{DataError, DataFormat, RowRef, TextEncoding, decode_text};

/// What loading found out about the file, for the user and for a run's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// Data rows (CSV) or non-blank lines (JSONL) read.
    pub rows: usize,
    /// How the bytes were decoded.
    pub encoding: TextEncoding,
    /// Under the latin-1 fallback, the rows holding at least one byte above 0x7F, whose text may
    /// not read as the author meant. Always 0 for UTF-8 files.
    pub fallback_rows: usize,
}

/// A loaded dataset: parallel `texts` and `labels`, with `labels[i]` an index into
/// `label_names`, which are the distinct labels sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub texts: Vec<String>,
    pub labels: Vec<usize>,
    pub label_names: Vec<String>,
    pub report: LoadReport,
}

impl Dataset {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no examples (a loaded dataset never is; a filtered one may be).
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.label_names.len()
    }

    /// The index of a class by name, for mapping user-facing labels back to model outputs.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.label_names
            .binary_search_by(|probe| probe.as_str().cmp(name))
            .ok()
    }

    /// How many examples each class has, in `label_names` order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.label_names.len()];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(label) {
                *count += 1;
            }
        }
        counts
    }
}

/// One record as read from the file, before labels become indices.
struct RawRecord {
    text: String,
    label: String,
    non_ascii: bool,
}

/// Loads a classification dataset from the bytes of a CSV or JSONL file.
///
/// `text_column` and `label_column` name a CSV header or a JSONL key. An empty text is kept
/// (data-quality checks report it later); a missing or blank label is an error, as is a label
/// column with fewer than two classes.
pub fn load_classification(
    bytes: &[u8],
    format: DataFormat,
    text_column: &str,
    label_column: &str,
) -> Result<Dataset, DataError> {
    let (text, encoding) = decode_text(bytes);
    let records = match format {
        DataFormat::Csv => read_csv(&text, text_column, label_column)?,
        DataFormat::Jsonl => read_jsonl(&text, text_column, label_column)?,
    };
    if records.is_empty() {
        return Err(DataError::NoDataRows {
            // A JSONL file with a non-blank line always yields a record or an error, so only a
            // CSV file can get as far as a header with nothing below it.
            reason: if text.is_empty() {
                "it is empty"
            } else if text.trim().is_empty() {
                "it holds only blank lines"
            } else {
                "there is a header but no rows below it"
            },
        });
    }
    finish(records, label_column, encoding)
}

/// Reads a dataset file from disk, taking the format from its extension unless one is given.
/// Only a convenience for native callers: everything else works on bytes.
pub fn load_path(
    path: &Path,
    format: Option<DataFormat>,
    text_column: &str,
    label_column: &str,
) -> Result<Dataset, DataError> {
    let format = DataFormat::resolve(format, path)?;
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_classification(&bytes, format, text_column, label_column)
}

/// Turns label strings into indices of the sorted distinct labels and builds the report.
fn finish(
    records: Vec<RawRecord>,
    label_column: &str,
    encoding: TextEncoding,
) -> Result<Dataset, DataError> {
    let rows = records.len();
    let fallback_rows = match encoding {
        TextEncoding::Utf8 => 0,
        TextEncoding::Latin1Fallback => records.iter().filter(|r| r.non_ascii).count(),
    };

    // Grouping row numbers by label in a BTreeMap visits the labels in sorted order, which
    // hands out the class indices without any lookup that could fail.
    let mut rows_by_label: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut texts = Vec::with_capacity(rows);
    for (row, record) in records.into_iter().enumerate() {
        rows_by_label.entry(record.label).or_default().push(row);
        texts.push(record.text);
    }
    if rows_by_label.len() < 2 {
        return Err(DataError::SingleClass {
            column: label_column.to_owned(),
            class: rows_by_label.into_keys().next().unwrap_or_default(),
            rows,
        });
    }
    let mut labels = vec![0; rows];
    let mut label_names = Vec::with_capacity(rows_by_label.len());
    for (class, (name, members)) in rows_by_label.into_iter().enumerate() {
        for row in members {
            labels[row] = class;
        }
        label_names.push(name);
    }
    Ok(Dataset {
        texts,
        labels,
        label_names,
        report: LoadReport {
            rows,
            encoding,
            fallback_rows,
        },
    })
}

/// Finds the single header position named `column`.
fn column_index(headers: &csv::StringRecord, column: &str) -> Result<usize, DataError> {
    let matches: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(_, name)| *name == column)
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [] => Err(DataError::MissingColumn {
            column: column.to_owned(),
            found: headers.iter().map(str::to_owned).collect(),
        }),
        [only] => Ok(*only),
        _ => Err(DataError::DuplicateColumn {
            column: column.to_owned(),
            count: matches.len(),
        }),
    }
}

/// A label that is absent or only whitespace names no class, so it is reported rather than
/// becoming a class of its own.
fn is_blank(label: &str) -> bool {
    label.trim().is_empty()
}

fn read_csv(
    text: &str,
    text_column: &str,
    label_column: &str,
) -> Result<Vec<RawRecord>, DataError> {
    // The defaults match Python's `csv` module: comma, double quotes, doubled quotes as an
    // escape, quoted newlines kept verbatim, blank lines skipped. Ragged rows are errors
    // rather than being padded, so no field silently lands in the wrong column.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    if headers.is_empty() {
        return Ok(Vec::new());
    }
    let text_index = column_index(&headers, text_column)?;
    let label_index = column_index(&headers, label_column)?;

    let mut records = Vec::new();
    for (row, result) in (1_u64..).zip(reader.records()) {
        let record = result?;
        let at = RowRef::CsvRow {
            row,
            line: record.position().map_or(0, csv::Position::line),
        };
        let label = record.get(label_index).unwrap_or_default();
        if is_blank(label) {
            return Err(DataError::MissingLabel {
                at,
                column: label_column.to_owned(),
            });
        }
        records.push(RawRecord {
            text: record.get(text_index).unwrap_or_default().to_owned(),
            label: label.to_owned(),
            non_ascii: record.iter().any(|field| !field.is_ascii()),
        });
    }
    Ok(records)
}

fn read_jsonl(
    text: &str,
    text_column: &str,
    label_column: &str,
) -> Result<Vec<RawRecord>, DataError> {
    let mut records = Vec::new();
    for (line_no, line) in (1_usize..).zip(text.split('\n')) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|source| DataError::Json {
            line: line_no,
            source,
        })?;
        let Value::Object(object) = value else {
            return Err(DataError::NotAnObject {
                line: line_no,
                found: describe(&value),
            });
        };
        let at = RowRef::JsonlLine { line: line_no };
        let missing = |column: &str| DataError::MissingKey {
            column: column.to_owned(),
            line: line_no,
            found: object.keys().cloned().collect(),
        };

        let text = match object.get(text_column) {
            None => return Err(missing(text_column)),
            Some(Value::String(text)) => text.clone(),
            Some(other) => {
                return Err(DataError::UnsupportedText {
                    at,
                    column: text_column.to_owned(),
                    found: describe(other),
                });
            }
        };
        let label = match object.get(label_column) {
            None => return Err(missing(label_column)),
            Some(Value::String(label)) if !is_blank(label) => label.clone(),
            Some(Value::String(_) | Value::Null) => {
                return Err(DataError::MissingLabel {
                    at,
                    column: label_column.to_owned(),
                });
            }
            Some(Value::Bool(flag)) => flag.to_string(),
            Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
            Some(other) => {
                return Err(DataError::UnsupportedLabel {
                    at,
                    column: label_column.to_owned(),
                    found: describe(other),
                });
            }
        };
        records.push(RawRecord {
            text,
            label,
            non_ascii: !line.is_ascii(),
        });
    }
    Ok(records)
}

/// Names a JSON value's kind (and small values themselves) for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.
mod tests {
    use super::*;

    fn csv(data: &str) -> Result<Dataset, DataError> {
        load_classification(data.as_bytes(), DataFormat::Csv, "text", "label")
    }

    #[test]
    fn labels_index_sorted_names() {
        let data = csv("label,text\nb,one\na,two\nc,three\na,four\n").unwrap();
        assert_eq!(data.label_names, ["a", "b", "c"]);
        assert_eq!(data.labels, [1, 0, 2, 0]);
        assert_eq!(data.class_counts(), [2, 1, 1]);
        assert_eq!(data.label_index("c"), Some(2));
        assert_eq!(data.label_index("z"), None);
        assert_eq!(data.num_classes(), 3);
        assert_eq!(data.len(), 4);
    }

    #[test]
    fn an_empty_text_is_kept() {
        let data = csv("label,text\na,\nb,x\n").unwrap();
        assert_eq!(data.texts, ["", "x"]);
    }

    #[test]
    fn a_whitespace_label_counts_as_missing() {
        let err = csv("label,text\na,x\n  ,y\n").unwrap_err().to_string();
        assert_eq!(err, "row 2 (line 3) has no value in label column `label`");
    }
}
