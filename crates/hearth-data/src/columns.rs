//! The columns a file offers, and a guess of which hold the text and the label, so a form can
//! be pre-filled before the user picks.

use serde::Serialize;
use serde_json::Value;

use crate::{DataError, DataFormat, decode_text, sniff_delimiter};

/// A file's columns and the guessed text and label columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Columns {
    /// CSV header names, or the keys of the first JSONL object, in file order.
    pub names: Vec<String>,
    /// The column most likely to hold the text.
    pub text: Option<String>,
    /// The column most likely to hold the label.
    pub label: Option<String>,
}

const TEXT_NAMES: &[&str] = &[
    "text", "sentence", "content", "review", "tweet", "message", "body", "document", "input",
];
const LABEL_NAMES: &[&str] = &[
    "label",
    "labels",
    "sentiment",
    "class",
    "category",
    "target",
    "intent",
    "y",
];

/// Reads only the header (CSV) or the first record (JSONL) and guesses the roles.
///
/// A name from a list of usual names wins; otherwise the text is the column with the longest
/// values in the first rows and the label the one with the fewest distinct values.
pub fn detect_columns(bytes: &[u8], format: DataFormat) -> Result<Columns, DataError> {
    const SAMPLE: usize = 200;
    let (text, _) = decode_text(bytes);
    let objects_to_rows = |objects: Vec<serde_json::Map<String, Value>>| {
        let names: Vec<String> = objects
            .first()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let rows = objects
            .iter()
            .map(|o| {
                names
                    .iter()
                    .map(|n| match o.get(n) {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => String::new(),
                    })
                    .collect()
            })
            .collect();
        (names, rows)
    };
    let (names, rows): (Vec<String>, Vec<Vec<String>>) = match format {
        DataFormat::Text => {
            return Ok(Columns {
                names: vec!["text".into()],
                text: Some("text".into()),
                label: None,
            });
        }
        DataFormat::Csv | DataFormat::Tsv => {
            let delimiter = if format == DataFormat::Tsv {
                b'\t'
            } else {
                sniff_delimiter(&text)
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(text.as_bytes());
            let names = reader.headers()?.iter().map(str::to_owned).collect();
            let rows = reader
                .records()
                .take(SAMPLE)
                .filter_map(Result::ok)
                .map(|r| r.iter().map(str::to_owned).collect())
                .collect();
            (names, rows)
        }
        DataFormat::Jsonl => {
            let mut objects = Vec::new();
            for (line_no, line) in (1_usize..).zip(text.lines()) {
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value =
                    serde_json::from_str(line).map_err(|source| DataError::Json {
                        line: line_no,
                        source,
                    })?;
                if let Value::Object(object) = value {
                    objects.push(object);
                }
                if objects.len() >= SAMPLE {
                    break;
                }
            }
            objects_to_rows(objects)
        }
        DataFormat::Json => {
            let value: Value = serde_json::from_str(&text)
                .map_err(|source| DataError::Json { line: 1, source })?;
            let Value::Array(items) = value else {
                return Err(DataError::NotAnArray {
                    found: "something other than an array".into(),
                });
            };
            objects_to_rows(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Object(o) => Some(o),
                        _ => None,
                    })
                    .take(SAMPLE)
                    .collect(),
            )
        }
    };
    if names.is_empty() {
        return Err(DataError::NoDataRows {
            reason: "no columns were found in it",
        });
    }
    let by_name = |wanted: &[&str], exclude: Option<&String>| {
        wanted.iter().find_map(|w| {
            names
                .iter()
                .find(|n| n.trim().eq_ignore_ascii_case(w) && Some(*n) != exclude)
                .cloned()
        })
    };
    let column = |i: usize| rows.iter().filter_map(move |r| r.get(i));
    let mean_len = |i: usize| {
        let (sum, n) = column(i).fold((0usize, 0usize), |(s, n), v| (s + v.chars().count(), n + 1));
        if n == 0 { 0.0 } else { sum as f64 / n as f64 }
    };
    let text = by_name(TEXT_NAMES, None).or_else(|| {
        (0..names.len())
            .max_by(|&a, &b| mean_len(a).total_cmp(&mean_len(b)))
            .map(|i| names[i].clone())
    });
    let label = by_name(LABEL_NAMES, text.as_ref()).or_else(|| {
        (0..names.len())
            .filter(|&i| Some(&names[i]) != text.as_ref())
            .min_by_key(|&i| {
                let mut distinct: Vec<&String> = column(i).collect();
                distinct.sort();
                distinct.dedup();
                distinct.len()
            })
            .map(|i| names[i].clone())
    });
    Ok(Columns { names, text, label })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_names_win() {
        let c = detect_columns(
            b"sentiment,confidence,text\npos,0.9,hello there\n",
            DataFormat::Csv,
        )
        .unwrap();
        assert_eq!(c.names, ["sentiment", "confidence", "text"]);
        assert_eq!(c.text.as_deref(), Some("text"));
        assert_eq!(c.label.as_deref(), Some("sentiment"));
    }

    #[test]
    fn unusual_names_are_guessed_from_values() {
        let csv =
            b"a,b\nx,a long sentence of words\ny,another long sentence here\nx,and a third one\n";
        let c = detect_columns(csv, DataFormat::Csv).unwrap();
        assert_eq!(c.text.as_deref(), Some("b"));
        assert_eq!(c.label.as_deref(), Some("a"));
    }

    #[test]
    fn jsonl_keys_are_columns() {
        let jsonl =
            b"{\"review\": \"good film\", \"stars\": 5}\n{\"review\": \"bad\", \"stars\": 1}\n";
        let c = detect_columns(jsonl, DataFormat::Jsonl).unwrap();
        assert_eq!(c.names, ["review", "stars"]);
        assert_eq!(c.text.as_deref(), Some("review"));
        assert_eq!(c.label.as_deref(), Some("stars"));
        assert!(detect_columns(b"{oops\n", DataFormat::Jsonl).is_err());
    }

    #[test]
    fn an_empty_file_has_no_columns() {
        assert!(detect_columns(b"", DataFormat::Csv).is_err());
    }
}
