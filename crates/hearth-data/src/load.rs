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
    /// Rows left out because their label cell was blank (only when asked to skip them).
    #[serde(default)]
    pub skipped_unlabeled: usize,
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
    /// The label cell; blank when the row has none (refused or skipped by `load_rows_with`).
    label: Option<String>,
    non_ascii: bool,
    at: RowRef,
}

/// A file's texts and (when a label column was named) label strings, in file order, before
/// labels become indices: what the quality report reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawRows {
    /// The texts.
    pub texts: Vec<String>,
    /// The label of each text, if a label column was read.
    pub labels: Option<Vec<String>>,
    /// What loading found out.
    pub report: LoadReport,
}

/// Reads the texts and, with `label_column`, the labels of a file in any [`DataFormat`].
///
/// A plain-text file has one text per non-blank line and no labels. Errors are those of
/// [`load_classification`], except that one class or no labels at all are fine here.
pub fn load_rows(
    bytes: &[u8],
    format: DataFormat,
    text_column: &str,
    label_column: Option<&str>,
) -> Result<RawRows, DataError> {
    load_rows_with(bytes, format, text_column, label_column, false)
}

/// [`load_rows`], leaving out rows whose label cell is blank when `skip_unlabeled` (counted
/// in the report) instead of refusing the file.
pub fn load_rows_with(
    bytes: &[u8],
    format: DataFormat,
    text_column: &str,
    label_column: Option<&str>,
    skip_unlabeled: bool,
) -> Result<RawRows, DataError> {
    let (text, encoding) = decode_text(bytes);
    let records = read_records(&text, format, text_column, label_column)?;
    if records.is_empty() {
        return Err(DataError::NoDataRows {
            reason: if text.is_empty() {
                "it is empty"
            } else if text.trim().is_empty() {
                "it holds only blank lines"
            } else if matches!(format, DataFormat::Json) {
                "the array is empty"
            } else {
                "there is a header but no rows below it"
            },
        });
    }
    let rows = records.len();
    let fallback_rows = match encoding {
        TextEncoding::Latin1Fallback => records.iter().filter(|r| r.non_ascii).count(),
        _ => 0,
    };
    let has_labels = label_column.is_some() && format.has_columns();
    let mut texts = Vec::with_capacity(rows);
    let mut labels = Vec::with_capacity(if has_labels { rows } else { 0 });
    let mut skipped_unlabeled = 0;
    for record in records {
        if has_labels && record.label.as_deref().is_none_or(is_blank) {
            if skip_unlabeled {
                skipped_unlabeled += 1;
                continue;
            }
            return Err(DataError::MissingLabel {
                at: record.at,
                column: label_column.unwrap_or_default().to_owned(),
            });
        }
        texts.push(record.text);
        if has_labels {
            labels.push(record.label.unwrap_or_default());
        }
    }
    Ok(RawRows {
        texts,
        labels: has_labels.then_some(labels),
        report: LoadReport {
            rows,
            encoding,
            fallback_rows,
            skipped_unlabeled,
        },
    })
}

fn read_records(
    text: &str,
    format: DataFormat,
    text_column: &str,
    label_column: Option<&str>,
) -> Result<Vec<RawRecord>, DataError> {
    match format {
        DataFormat::Csv => read_csv(text, sniff_delimiter(text), text_column, label_column),
        DataFormat::Tsv => read_csv(text, b'\t', text_column, label_column),
        DataFormat::Jsonl | DataFormat::Json => {
            json_records(text, format, text_column, label_column)
        }
        DataFormat::Text => Ok(read_lines(text)),
    }
}

/// The delimiter of a CSV-like file: of `,` `;` `|` and tab, the one that appears (outside
/// quotes) the same non-zero number of times on the most of the first 20 lines, preferring
/// the comma on ties. A file with one column has none of them and reads the same either way.
pub fn sniff_delimiter(text: &str) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b'\t', b';', b'|'];
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    let count = |line: &str, d: u8| {
        let mut quoted = false;
        line.bytes()
            .filter(|&b| {
                if b == b'"' {
                    quoted = !quoted;
                }
                !quoted && b == d
            })
            .count()
    };
    let mut best = (0usize, b',');
    for d in CANDIDATES {
        let Some(first) = lines.first().map(|l| count(l, d)) else {
            continue;
        };
        if first == 0 {
            continue;
        }
        let agreeing = lines.iter().filter(|l| count(l, d) == first).count();
        if agreeing > best.0 {
            best = (agreeing, d);
        }
    }
    best.1
}

fn read_lines(text: &str) -> Vec<RawRecord> {
    (1..)
        .zip(text.lines())
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(line, l)| RawRecord {
            text: l.to_owned(),
            label: None,
            non_ascii: !l.is_ascii(),
            at: RowRef::JsonlLine { line },
        })
        .collect()
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
    if !format.has_columns() {
        return Err(DataError::NoLabels);
    }
    let rows = load_rows(bytes, format, text_column, Some(label_column))?;
    finish(rows, label_column)
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

/// Turns rows read with a label column (and perhaps cleaned) into a classification dataset:
/// label strings become indices of the sorted distinct labels. Fewer than two classes, or rows
/// without labels, are errors that name `label_column`.
pub fn into_classification(raw: RawRows, label_column: &str) -> Result<Dataset, DataError> {
    if raw.labels.is_none() {
        return Err(DataError::NoLabels);
    }
    if raw.texts.is_empty() {
        return Err(DataError::NoDataRows {
            reason: "no rows are left",
        });
    }
    finish(raw, label_column)
}

/// Turns label strings into indices of the sorted distinct labels.
fn finish(raw: RawRows, label_column: &str) -> Result<Dataset, DataError> {
    let RawRows {
        texts,
        labels,
        report,
    } = raw;
    let rows = texts.len();
    // Grouping row numbers by label in a BTreeMap visits the labels in sorted order, which
    // hands out the class indices without any lookup that could fail.
    let mut rows_by_label: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (row, label) in labels.unwrap_or_default().into_iter().enumerate() {
        rows_by_label.entry(label).or_default().push(row);
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
        report,
    })
}

/// Finds the single header position named `column`.
pub(crate) fn column_index(headers: &csv::StringRecord, column: &str) -> Result<usize, DataError> {
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

/// A CSV reader with a header row. The defaults match Python's `csv` module: double quotes,
/// doubled quotes as an escape, quoted newlines kept verbatim, blank lines skipped. Ragged rows
/// are errors rather than being padded, so no field silently lands in the wrong column.
pub(crate) fn csv_reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// Where CSV data row `row` (1-based), read as `record`, came from.
pub(crate) fn csv_row_ref(row: u64, record: &csv::StringRecord) -> RowRef {
    RowRef::CsvRow {
        row,
        line: record.position().map_or(0, csv::Position::line),
    }
}

fn read_csv(
    text: &str,
    delimiter: u8,
    text_column: &str,
    label_column: Option<&str>,
) -> Result<Vec<RawRecord>, DataError> {
    let mut reader = csv_reader(text, delimiter);
    let headers = reader.headers()?.clone();
    if headers.is_empty() {
        return Ok(Vec::new());
    }
    let text_index = column_index(&headers, text_column)?;
    let label_index = label_column
        .map(|c| column_index(&headers, c).map(|i| (i, c)))
        .transpose()?;

    let mut records = Vec::new();
    for (row, result) in (1_u64..).zip(reader.records()) {
        let record = result?;
        let at = csv_row_ref(row, &record);
        let label = label_index.map(|(index, _)| record.get(index).unwrap_or_default().to_owned());
        records.push(RawRecord {
            text: record.get(text_index).unwrap_or_default().to_owned(),
            label,
            non_ascii: record.iter().any(|field| !field.is_ascii()),
            at,
        });
    }
    Ok(records)
}

/// The records of a JSONL or JSON file: one per object.
fn json_records(
    text: &str,
    format: DataFormat,
    text_column: &str,
    label_column: Option<&str>,
) -> Result<Vec<RawRecord>, DataError> {
    json_objects(text, format)?
        .into_iter()
        .map(|(at, object, non_ascii)| {
            let mut record = object_record(&object, at, text_column, label_column)?;
            record.non_ascii = non_ascii;
            Ok(record)
        })
        .collect()
}

/// One JSON object of a file: where it came from, its fields, and whether its source text is
/// not plain ASCII.
pub(crate) type JsonObject = (RowRef, serde_json::Map<String, Value>, bool);

/// The objects of a JSONL file (one per non-blank line) or a JSON file (an array of them).
pub(crate) fn json_objects(text: &str, format: DataFormat) -> Result<Vec<JsonObject>, DataError> {
    let mut out = Vec::new();
    if matches!(format, DataFormat::Json) {
        let value: Value =
            serde_json::from_str(text).map_err(|source| DataError::Json { line: 1, source })?;
        let Value::Array(items) = value else {
            return Err(DataError::NotAnArray {
                found: describe(&value),
            });
        };
        for (index, item) in items.into_iter().enumerate() {
            let Value::Object(object) = item else {
                return Err(DataError::ElementNotAnObject {
                    index,
                    found: describe(&item),
                });
            };
            let non_ascii = object
                .iter()
                .any(|(k, v)| !k.is_ascii() || !v.to_string().is_ascii());
            out.push((RowRef::JsonElement { index }, object, non_ascii));
        }
        return Ok(out);
    }
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
        out.push((
            RowRef::JsonlLine { line: line_no },
            object,
            !line.is_ascii(),
        ));
    }
    Ok(out)
}

/// The text and label of one JSON object.
fn object_record(
    object: &serde_json::Map<String, Value>,
    at: RowRef,
    text_column: &str,
    label_column: Option<&str>,
) -> Result<RawRecord, DataError> {
    let line = match at {
        RowRef::JsonlLine { line } => line,
        RowRef::JsonElement { index } => index,
        RowRef::CsvRow { line, .. } => line as usize,
    };
    let missing = |column: &str| DataError::MissingKey {
        column: column.to_owned(),
        line,
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
    let label = match label_column {
        None => None,
        Some(label_column) => Some(match object.get(label_column) {
            None => return Err(missing(label_column)),
            Some(Value::String(label)) => label.clone(),
            Some(Value::Null) => String::new(),
            Some(Value::Bool(flag)) => flag.to_string(),
            Some(Value::Number(number)) => number.to_string(),
            Some(other) => {
                return Err(DataError::UnsupportedLabel {
                    at,
                    column: label_column.to_owned(),
                    found: describe(other),
                });
            }
        }),
    };
    Ok(RawRecord {
        text,
        label,
        non_ascii: false,
        at,
    })
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
