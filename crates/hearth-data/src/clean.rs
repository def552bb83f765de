//! Opt-in cleaning: each step is chosen by the user and reports what it changed.
//!
//! Steps run in a fixed order, each on the result of the one before: repair encoding damage,
//! Unicode NFKC, trim and collapse whitespace, redact personal data, drop empty texts, resolve
//! conflicting labels, deduplicate. Rows keep their file order; `kept` maps every surviving row
//! back to its row in the file, so [`rewrite`] can write them back with every other column.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use crate::load::{column_index, csv_reader};
use crate::neardup::{self, NearDupSettings};
use crate::{DataError, DataFormat, decode_text, mojibake, pii, sniff_delimiter};

/// Which duplicates to drop (the first row of each group stays).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedupe {
    /// Keep every row.
    #[default]
    None,
    /// Byte-identical texts.
    Exact,
    /// Texts equal after folding case, spaces and punctuation.
    Folded,
    /// Near-duplicates (and folded ones) at the report's similarity threshold.
    Near,
}

/// What to do with a text that carries different labels in different rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Leave them.
    #[default]
    Keep,
    /// Drop every row of such a text.
    Drop,
    /// Give every row of such a text its most frequent label (drop the text on a tie).
    Majority,
}

/// The cleaning the user chose; everything off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanOptions {
    /// Undo UTF-8-read-as-latin-1 and cp1252 damage.
    pub repair_mojibake: bool,
    /// Unicode NFKC (compatibility forms: full-width letters, ligatures, superscripts).
    pub nfkc: bool,
    /// Trim, and collapse runs of whitespace to one space.
    pub whitespace: bool,
    /// Replace personal data with typed placeholders (`[EMAIL]`, `[PHONE]`, …).
    pub redact_pii: bool,
    /// Drop empty and whitespace-only texts.
    pub drop_empty: bool,
    /// Conflicting labels.
    pub conflicts: ConflictPolicy,
    /// Duplicates.
    pub dedupe: Dedupe,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// The step.
    pub step: &'static str,
    /// Rows whose text (or label) it changed.
    pub changed: usize,
    /// Rows it dropped.
    pub dropped: usize,
}

/// The cleaned rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cleaned {
    /// Texts.
    pub texts: Vec<String>,
    /// Labels, when the input had them.
    pub labels: Option<Vec<String>>,
    /// For each row, its 0-based row in the input.
    pub kept: Vec<usize>,
    /// Every step that ran, in order.
    pub steps: Vec<StepReport>,
}

struct Rows {
    texts: Vec<String>,
    labels: Option<Vec<String>>,
    kept: Vec<usize>,
}

impl Rows {
    fn map(&mut self, step: &'static str, f: impl Fn(&str) -> Option<String>) -> StepReport {
        let mut changed = 0;
        for t in &mut self.texts {
            if let Some(new) = f(t)
                && new != *t
            {
                *t = new;
                changed += 1;
            }
        }
        StepReport {
            step,
            changed,
            dropped: 0,
        }
    }

    fn retain(&mut self, keep: &[bool]) -> usize {
        let mut i = 0;
        let before = self.texts.len();
        self.texts.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        i = 0;
        self.kept.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        if let Some(labels) = &mut self.labels {
            i = 0;
            labels.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        before - self.texts.len()
    }
}

/// Cleans rows as `options` says. `near` is the similarity setting for [`Dedupe::Near`].
pub fn clean(
    texts: Vec<String>,
    labels: Option<Vec<String>>,
    options: &CleanOptions,
    near: &NearDupSettings,
) -> Cleaned {
    let kept = (0..texts.len()).collect();
    let mut rows = Rows {
        texts,
        labels,
        kept,
    };
    let mut steps = Vec::new();
    if options.repair_mojibake {
        steps.push(rows.map("repair_mojibake", mojibake::repair));
    }
    if options.nfkc {
        steps.push(rows.map("nfkc", |t| Some(t.nfkc().collect())));
    }
    if options.whitespace {
        steps.push(rows.map("whitespace", |t| {
            Some(t.split_whitespace().collect::<Vec<_>>().join(" "))
        }));
    }
    if options.redact_pii {
        steps.push(rows.map("redact_pii", |t| {
            let (redacted, found) = pii::redact_pii(t);
            (!found.is_empty()).then_some(redacted)
        }));
    }
    if options.drop_empty {
        let keep: Vec<bool> = rows.texts.iter().map(|t| !t.trim().is_empty()).collect();
        let dropped = rows.retain(&keep);
        steps.push(StepReport {
            step: "drop_empty",
            changed: 0,
            dropped,
        });
    }
    if options.conflicts != ConflictPolicy::Keep
        && let Some(labels) = rows.labels.clone()
    {
        let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, t) in rows.texts.iter().enumerate() {
            by_text.entry(t.as_str()).or_default().push(i);
        }
        let mut keep = vec![true; rows.texts.len()];
        let mut relabel: Vec<(usize, String)> = Vec::new();
        for group in by_text.values() {
            let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
            for &i in group {
                *votes.entry(labels[i].as_str()).or_default() += 1;
            }
            if votes.len() < 2 {
                continue;
            }
            let top = votes.values().copied().max().unwrap_or(0);
            let winners: Vec<&str> = votes
                .iter()
                .filter(|(_, v)| **v == top)
                .map(|(l, _)| *l)
                .collect();
            match (options.conflicts, winners.as_slice()) {
                (ConflictPolicy::Majority, [winner]) => {
                    for &i in group {
                        if labels[i] != *winner {
                            relabel.push((i, winner.to_string()));
                        }
                    }
                }
                _ => {
                    for &i in group {
                        keep[i] = false;
                    }
                }
            }
        }
        let changed = relabel.len();
        if let Some(l) = &mut rows.labels {
            for (i, label) in relabel {
                l[i] = label;
            }
        }
        let dropped = rows.retain(&keep);
        steps.push(StepReport {
            step: "conflicts",
            changed,
            dropped,
        });
    }
    if options.dedupe != Dedupe::None {
        let refs: Vec<&str> = rows.texts.iter().map(String::as_str).collect();
        let groups: Vec<Vec<usize>> = match options.dedupe {
            Dedupe::None => Vec::new(),
            Dedupe::Exact => {
                let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
                for (i, t) in refs.iter().enumerate() {
                    by_text.entry(t).or_default().push(i);
                }
                by_text.into_values().collect()
            }
            Dedupe::Folded => neardup::folded_duplicate_groups(&refs),
            Dedupe::Near => {
                let mut g = neardup::folded_duplicate_groups(&refs);
                g.extend(neardup::near_duplicate_groups(&refs, near));
                g
            }
        };
        // Overlapping groups (folded and near) join into one component; its first row stays.
        let root = crate::split::components(refs.len(), &groups);
        let keep: Vec<bool> = (0..refs.len()).map(|i| root[i] == i).collect();
        let dropped = rows.retain(&keep);
        steps.push(StepReport {
            step: match options.dedupe {
                Dedupe::Exact => "dedupe_exact",
                Dedupe::Folded => "dedupe_folded",
                _ => "dedupe_near",
            },
            changed: 0,
            dropped,
        });
    }
    Cleaned {
        texts: rows.texts,
        labels: rows.labels,
        kept: rows.kept,
        steps,
    }
}

/// One JSON object's fields in the file's order (serde_json's map sorts its keys).
struct OrderedObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedObject, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry::<String, Value>()? {
                    fields.push(field);
                }
                Ok(OrderedObject(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// A label cell as the loaders read it (`null` is blank, numbers and booleans as written).
fn label_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A changed label in the kind of value the old one was: a number stays a number and a boolean
/// a boolean where the new label reads as one.
fn label_value(old: &Value, new: &str) -> Value {
    match old {
        Value::Number(_) => serde_json::from_str::<serde_json::Number>(new)
            .map_or_else(|_| Value::String(new.to_owned()), Value::Number),
        Value::Bool(_) if new == "true" || new == "false" => Value::Bool(new == "true"),
        _ => Value::String(new.to_owned()),
    }
}

impl OrderedObject {
    /// The object with `text` (and `label`) in place of its text and label fields, or `None`
    /// when they already hold those.
    fn replaced(
        mut self,
        columns: (&str, Option<&str>),
        text: &str,
        label: Option<&str>,
    ) -> Option<Self> {
        let mut changed = false;
        for (key, value) in &mut self.0 {
            if key == columns.0 && value.as_str() != Some(text) {
                *value = Value::String(text.to_owned());
                changed = true;
            } else if Some(key.as_str()) == columns.1
                && let Some(label) = label
                && label_string(value) != label
            {
                *value = label_value(value, label);
                changed = true;
            }
        }
        changed.then_some(self)
    }

    fn to_json(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(key, value)| format!("{}:{}", Value::String(key.clone()), value))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// The cleaned rows in `to`, with every column of the input file (`bytes`, in `format`, read
/// with `text_column` and `label_column` into the rows [`clean`] cleaned): each kept row is
/// its row of the file with the text (and label) replaced by the cleaned one; every other cell
/// keeps its value and its place. CSV and TSV keep the header and the columns' order (and the
/// delimiter, unless `to` is the other of the two); JSONL and JSON keep each object's keys in
/// order, a JSONL row nothing changed in exactly as it was; plain text is one text a line (or
/// a one-column CSV). A JSON file's rows cannot become CSV cells, nor the other way round:
/// those are refused.
pub fn rewrite(
    bytes: &[u8],
    format: DataFormat,
    text_column: &str,
    label_column: Option<&str>,
    cleaned: &Cleaned,
    to: DataFormat,
) -> Result<Vec<u8>, DataError> {
    use DataFormat::{Csv, Json, Jsonl, Text, Tsv};
    let (text, _) = decode_text(bytes);
    let label = |i: usize| cleaned.labels.as_ref().map(|l| l[i].as_str());
    let lost = |row: usize| DataError::CsvAt {
        line: row + 1,
        message: "the file changed while it was being cleaned".into(),
    };
    match (format, to) {
        (Csv | Tsv, Csv | Tsv) => {
            let delimiter = if format == Tsv {
                b'\t'
            } else {
                sniff_delimiter(&text)
            };
            let out = match to {
                _ if to == format => delimiter,
                Tsv => b'\t',
                _ => b',',
            };
            let mut reader = csv_reader(&text, delimiter);
            let headers = reader.headers()?.clone();
            let text_index = column_index(&headers, text_column)?;
            let label_index = label_column
                .map(|c| column_index(&headers, c))
                .transpose()?;
            let records = reader.records().collect::<Result<Vec<_>, _>>()?;
            let mut writer = csv::WriterBuilder::new()
                .delimiter(out)
                .from_writer(Vec::new());
            writer.write_record(&headers)?;
            for (i, &row) in cleaned.kept.iter().enumerate() {
                let record = records.get(row).ok_or_else(|| lost(row))?;
                let cells = record.iter().enumerate().map(|(c, cell)| {
                    if c == text_index {
                        cleaned.texts[i].as_str()
                    } else if Some(c) == label_index {
                        label(i).unwrap_or(cell)
                    } else {
                        cell
                    }
                });
                writer.write_record(cells)?;
            }
            writer.into_inner().map_err(|e| DataError::CsvAt {
                line: 0,
                message: e.to_string(),
            })
        }
        (Jsonl | Json, Jsonl | Json) => {
            // Each row as its JSON text, the original one where nothing changed.
            let rows: Vec<(usize, String)> = if format == Json {
                let objects: Vec<OrderedObject> = serde_json::from_str(&text)
                    .map_err(|source| DataError::Json { line: 1, source })?;
                objects
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| (i, o.to_json()))
                    .collect()
            } else {
                (1..)
                    .zip(text.split('\n'))
                    .map(|(n, l)| (n, l.strip_suffix('\r').unwrap_or(l)))
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(n, l)| (n, l.to_owned()))
                    .collect()
            };
            let mut lines = Vec::with_capacity(cleaned.kept.len());
            for (i, &row) in cleaned.kept.iter().enumerate() {
                let (line, json) = rows.get(row).ok_or_else(|| lost(row))?;
                let object: OrderedObject =
                    serde_json::from_str(json).map_err(|source| DataError::Json {
                        line: *line,
                        source,
                    })?;
                lines.push(
                    match object.replaced((text_column, label_column), &cleaned.texts[i], label(i))
                    {
                        Some(changed) => changed.to_json(),
                        None => json.clone(),
                    },
                );
            }
            let mut out = if to == Json {
                format!("[\n{}\n]", lines.join(",\n"))
            } else {
                lines.join("\n")
            };
            out.push('\n');
            Ok(out.into_bytes())
        }
        (Text, Text) => {
            let mut out = cleaned.texts.join("\n");
            out.push('\n');
            Ok(out.into_bytes())
        }
        (Text, Csv | Tsv) => {
            let mut writer = csv::WriterBuilder::new()
                .delimiter(if to == Tsv { b'\t' } else { b',' })
                .from_writer(Vec::new());
            writer.write_record([text_column])?;
            for t in &cleaned.texts {
                writer.write_record([t])?;
            }
            writer.into_inner().map_err(|e| DataError::CsvAt {
                line: 0,
                message: e.to_string(),
            })
        }
        _ => Err(DataError::RewriteFormat { from: format, to }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.
mod tests {
    use super::*;

    fn cleaned(bytes: &[u8], format: DataFormat, label: Option<&str>) -> Cleaned {
        let rows = crate::load_rows(bytes, format, "text", label).unwrap();
        let options = CleanOptions {
            whitespace: true,
            drop_empty: true,
            ..CleanOptions::default()
        };
        clean(
            rows.texts,
            rows.labels,
            &options,
            &NearDupSettings::default(),
        )
    }

    #[test]
    fn a_cleaned_csv_keeps_every_column_in_place() {
        let csv =
            b"id;text;label;note\n1;  a   b ;x;keep me\n2;   ;y;gone\n3;c;\"x\";\"q;uoted\"\n";
        let c = cleaned(csv, DataFormat::Csv, Some("label"));
        let out = rewrite(
            csv,
            DataFormat::Csv,
            "text",
            Some("label"),
            &c,
            DataFormat::Csv,
        );
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "id;text;label;note\n1;a b;x;keep me\n3;c;x;\"q;uoted\"\n"
        );
        let tsv = rewrite(
            csv,
            DataFormat::Csv,
            "text",
            Some("label"),
            &c,
            DataFormat::Tsv,
        );
        assert_eq!(
            String::from_utf8(tsv.unwrap()).unwrap(),
            "id\ttext\tlabel\tnote\n1\ta b\tx\tkeep me\n3\tc\tx\tq;uoted\n"
        );
    }

    #[test]
    fn a_cleaned_jsonl_keeps_every_key_in_order() {
        let jsonl = b"{\"z\": 1, \"text\": \" a  b \", \"label\": 2, \"meta\": {\"k\": [1, 2]}}\n\n{\"text\": \"\", \"label\": 1}\n{\"text\":\"same\",  \"z\":true,\"label\":1}\r\n";
        let c = cleaned(jsonl, DataFormat::Jsonl, Some("label"));
        let out = rewrite(
            jsonl,
            DataFormat::Jsonl,
            "text",
            Some("label"),
            &c,
            DataFormat::Jsonl,
        );
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "{\"z\":1,\"text\":\"a b\",\"label\":2,\"meta\":{\"k\":[1,2]}}\n\
             {\"text\":\"same\",  \"z\":true,\"label\":1}\n"
        );
        let refused = rewrite(
            jsonl,
            DataFormat::Jsonl,
            "text",
            Some("label"),
            &c,
            DataFormat::Csv,
        );
        assert!(refused.unwrap_err().to_string().contains("jsonl"));
    }

    #[test]
    fn a_relabelled_number_stays_a_number() {
        let old = Value::from(3);
        assert_eq!(label_value(&old, "4"), Value::from(4));
        assert_eq!(label_value(&old, "four"), Value::from("four"));
        assert_eq!(label_value(&Value::Bool(true), "false"), Value::Bool(false));
    }
}
