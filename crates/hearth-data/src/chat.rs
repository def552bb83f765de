//! Conversations for supervised fine-tuning (SFT) of a chat model.
//!
//! One example is one conversation: a list of turns, each a role (`system`, `user`,
//! `assistant`) and its text. A file gives them in either of the two shapes SFT datasets use:
//!
//! - `messages`: a JSONL/JSON object `{"messages": [{"role": "user", "content": "…"}, …]}`
//!   (OpenAI's and TRL's conversational format);
//! - a prompt and its answer: `prompt` with `response` (or `completion`), and an optional
//!   `system`, as JSONL/JSON keys or CSV/TSV columns. It becomes `[system?, user, assistant]`.
//!
//! A conversation must contain at least one assistant turn (the text the model learns to
//! write) and every turn must have text. Like the rest of the crate this knows nothing about
//! models: applying a chat template and choosing which tokens carry the loss is the trainer's
//! job.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decode::decode_text;
use crate::error::{DataError, RowRef};
use crate::format::DataFormat;
use crate::load::{LoadReport, column_index, csv_reader, csv_row_ref, json_objects};
use crate::{TextEncoding, sniff_delimiter};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

/// The roles a turn may have.
pub const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// Whether a file with these columns (or keys) holds conversations: a `messages` column, or
/// `prompt` with `response` or `completion`.
pub fn is_conversations(columns: &[String]) -> bool {
    let has = |name: &str| columns.iter().any(|c| c == name);
    has("messages") || (has("prompt") && (has("response") || has("completion")))
}

/// What to do with a conversation longer than the max length (TRL's `truncation_mode`,
/// Axolotl's `excess_length_strategy`, with the answer in mind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// Cut the earlier turns, then the start of the prompt (the system prompt and the
    /// template's role headers and end-of-turn markers stay), so the last answer is kept whole
    /// whenever it fits on its own; an answer longer than the max length is cut at its end.
    #[default]
    KeepAnswer,
    /// Keep the first max-length tokens and cut the rest (TRL's `keep_start`): a long prompt
    /// cuts the answer, and a conversation left with no answer token is dropped.
    KeepStart,
    /// Drop every conversation longer than the max length.
    Drop,
}

impl Truncation {
    /// Every policy, in the order reports list them.
    pub const ALL: [Truncation; 3] = [Self::KeepAnswer, Self::KeepStart, Self::Drop];

    /// The name a job file and the CLI use.
    pub fn name(self) -> &'static str {
        match self {
            Self::KeepAnswer => "keep_answer",
            Self::KeepStart => "keep_start",
            Self::Drop => "drop",
        }
    }
}

/// What a max length did to one conversation under a [`Truncation`] policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    /// It fits: nothing was cut.
    Whole,
    /// Earlier turns or the start of the prompt were cut; the last answer is whole.
    PromptCut,
    /// Part of the last answer was cut (some of it is still learned).
    AnswerCut,
    /// Nothing of the answer is left, or the policy drops long conversations: not used.
    Dropped,
}

/// The conversations of a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversations {
    /// One list of turns per example.
    pub items: Vec<Vec<Turn>>,
    /// What loading found out.
    pub report: LoadReport,
}

/// Reads conversations from a JSONL/JSON file (`messages`, or `prompt` + `response` /
/// `completion` [+ `system`]) or a CSV/TSV file (`prompt` and `response` or `completion`
/// columns, optional `system`).
pub fn load_conversations(bytes: &[u8], format: DataFormat) -> Result<Conversations, DataError> {
    let (text, encoding) = decode_text(bytes);
    let rows: Vec<(Vec<Turn>, bool)> = match format {
        DataFormat::Jsonl | DataFormat::Json => json_objects(&text, format)?
            .into_iter()
            .map(|(at, object, non_ascii)| Ok((object_turns(&object, at)?, non_ascii)))
            .collect::<Result<_, DataError>>()?,
        DataFormat::Csv => csv_turns(&text, sniff_delimiter(&text))?,
        DataFormat::Tsv => csv_turns(&text, b'\t')?,
        DataFormat::Text => return Err(DataError::NoConversations),
    };
    if rows.is_empty() {
        return Err(DataError::NoDataRows {
            reason: if text.trim().is_empty() {
                "it is empty"
            } else {
                "no conversation in it"
            },
        });
    }
    let fallback_rows = match encoding {
        TextEncoding::Latin1Fallback => rows.iter().filter(|(_, n)| *n).count(),
        _ => 0,
    };
    Ok(Conversations {
        report: LoadReport {
            rows: rows.len(),
            encoding,
            fallback_rows,
            skipped_unlabeled: 0,
        },
        items: rows.into_iter().map(|(turns, _)| turns).collect(),
    })
}

/// A file's conversations as written, for the data report: each row's turns before the checks
/// training makes (a role outside [`ROLES`], a turn with no text and a conversation with no
/// answer are the report's findings, not errors), or the error that makes a row unreadable
/// (a turn that is not `{role, content}` strings, an object that is not a conversation).
#[derive(Debug)]
pub struct RawConversations {
    /// One entry per data row, in file order.
    pub rows: Vec<Result<Vec<Turn>, DataError>>,
    /// What loading found out.
    pub report: LoadReport,
}

/// Reads a file's conversations without [`load_conversations`]'s checks (see
/// [`RawConversations`]); an error only where the file itself cannot be read (not JSON, no
/// `prompt` column, plain text).
pub fn read_conversations(bytes: &[u8], format: DataFormat) -> Result<RawConversations, DataError> {
    let (text, encoding) = decode_text(bytes);
    let rows: Vec<(Result<Vec<Turn>, DataError>, bool)> = match format {
        DataFormat::Jsonl | DataFormat::Json => json_objects(&text, format)?
            .into_iter()
            .map(|(at, object, non_ascii)| (raw_object_turns(&object, at), non_ascii))
            .collect(),
        DataFormat::Csv | DataFormat::Tsv => {
            let delimiter = match format {
                DataFormat::Tsv => b'\t',
                _ => sniff_delimiter(&text),
            };
            raw_csv_turns(&text, delimiter)?
                .into_iter()
                .map(|(turns, non_ascii, _)| (Ok(turns), non_ascii))
                .collect()
        }
        DataFormat::Text => return Err(DataError::NoConversations),
    };
    let fallback_rows = match encoding {
        TextEncoding::Latin1Fallback => rows.iter().filter(|(_, n)| *n).count(),
        _ => 0,
    };
    Ok(RawConversations {
        report: LoadReport {
            rows: rows.len(),
            encoding,
            fallback_rows,
            skipped_unlabeled: 0,
        },
        rows: rows.into_iter().map(|(turns, _)| turns).collect(),
    })
}

/// The turns of a `[system?, user, assistant]` example, unchecked.
fn raw_pair_turns(system: Option<String>, prompt: String, response: String) -> Vec<Turn> {
    let mut turns = Vec::with_capacity(3);
    if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
        turns.push(Turn {
            role: "system".into(),
            content: system,
        });
    }
    turns.push(Turn {
        role: "user".into(),
        content: prompt,
    });
    turns.push(Turn {
        role: "assistant".into(),
        content: response,
    });
    turns
}

/// Every turn has a known role and text; at least one turn is the assistant's.
fn check_turns(turns: &[Turn], at: RowRef) -> Result<(), DataError> {
    for (index, turn) in turns.iter().enumerate() {
        if !ROLES.contains(&turn.role.as_str()) {
            return Err(DataError::BadTurn {
                at,
                index,
                problem: format!("role `{}` is not one of {}", turn.role, ROLES.join(", ")),
            });
        }
        if turn.content.trim().is_empty() {
            return Err(DataError::BadTurn {
                at,
                index,
                problem: format!("the {} turn has no text", turn.role),
            });
        }
    }
    if !turns.iter().any(|t| t.role == "assistant") {
        return Err(DataError::NoAssistantTurn { at });
    }
    Ok(())
}

fn object_turns(
    object: &serde_json::Map<String, Value>,
    at: RowRef,
) -> Result<Vec<Turn>, DataError> {
    let turns = raw_object_turns(object, at)?;
    check_turns(&turns, at)?;
    Ok(turns)
}

/// An object's turns, read but not checked.
fn raw_object_turns(
    object: &serde_json::Map<String, Value>,
    at: RowRef,
) -> Result<Vec<Turn>, DataError> {
    let string = |key: &str| -> Result<Option<String>, DataError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(DataError::BadTurn {
                at,
                index: 0,
                problem: format!("`{key}` holds {}, not a string", kind(other)),
            }),
        }
    };
    if let Some(messages) = object.get("messages") {
        let Value::Array(items) = messages else {
            return Err(DataError::BadTurn {
                at,
                index: 0,
                problem: format!("`messages` holds {}, not a list of turns", kind(messages)),
            });
        };
        let turns = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let field = |key: &str| match item.get(key) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    found => Err(DataError::BadTurn {
                        at,
                        index,
                        problem: format!(
                            "a turn needs a string `{key}`, found {}",
                            found.map_or_else(|| "nothing".to_string(), kind)
                        ),
                    }),
                };
                Ok(Turn {
                    role: field("role")?,
                    content: field("content")?,
                })
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        return Ok(turns);
    }
    let response = match string("response")? {
        Some(r) => Some(r),
        None => string("completion")?,
    };
    match (string("prompt")?, response) {
        (Some(prompt), Some(response)) => Ok(raw_pair_turns(string("system")?, prompt, response)),
        _ => Err(DataError::NotAConversation {
            at,
            found: object.keys().cloned().collect(),
        }),
    }
}

fn csv_turns(text: &str, delimiter: u8) -> Result<Vec<(Vec<Turn>, bool)>, DataError> {
    raw_csv_turns(text, delimiter)?
        .into_iter()
        .map(|(turns, non_ascii, at)| {
            check_turns(&turns, at)?;
            Ok((turns, non_ascii))
        })
        .collect()
}

/// Every row's turns, unchecked, whether the row has non-ASCII text, and where it is; or the
/// error that the file has no `prompt`/`response` columns.
fn raw_csv_turns(text: &str, delimiter: u8) -> Result<Vec<(Vec<Turn>, bool, RowRef)>, DataError> {
    let mut reader = csv_reader(text, delimiter);
    let headers = reader.headers()?.clone();
    if headers.is_empty() {
        return Ok(Vec::new());
    }
    let has = |name: &str| headers.iter().any(|h| h == name);
    let prompt = column_index(&headers, "prompt")?;
    let response = if has("response") || !has("completion") {
        column_index(&headers, "response")?
    } else {
        column_index(&headers, "completion")?
    };
    let system = has("system")
        .then(|| column_index(&headers, "system"))
        .transpose()?;
    let mut out = Vec::new();
    for (row, record) in (1_u64..).zip(reader.records()) {
        let record = record?;
        let at = csv_row_ref(row, &record);
        let cell = |i: usize| record.get(i).unwrap_or_default().to_string();
        let turns = raw_pair_turns(system.map(cell), cell(prompt), cell(response));
        out.push((turns, record.iter().any(|f| !f.is_ascii()), at));
    }
    Ok(out)
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(roles_contents: &[(&str, &str)]) -> Vec<Turn> {
        roles_contents
            .iter()
            .map(|(r, c)| Turn {
                role: (*r).into(),
                content: (*c).into(),
            })
            .collect()
    }

    #[test]
    fn every_shape_reads_into_turns() {
        let jsonl = concat!(
            r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"#,
            "\n\n",
            r#"{"prompt": "2+2?", "response": "4"}"#,
            "\n",
            r#"{"prompt": "Name?", "completion": "Hearth", "system": "You are Hearth."}"#,
            "\n"
        );
        let c = load_conversations(jsonl.as_bytes(), DataFormat::Jsonl).expect("loads");
        assert_eq!(c.items.len(), 3);
        assert_eq!(
            c.items[0],
            turns(&[
                ("system", "Be brief."),
                ("user", "Hi"),
                ("assistant", "Hello.")
            ])
        );
        assert_eq!(c.items[1], turns(&[("user", "2+2?"), ("assistant", "4")]));
        assert_eq!(
            c.items[2],
            turns(&[
                ("system", "You are Hearth."),
                ("user", "Name?"),
                ("assistant", "Hearth")
            ])
        );
        let csv = "prompt,response\n\"Hi, you\",\"Hello,\nthere\"\n";
        let c = load_conversations(csv.as_bytes(), DataFormat::Csv).expect("loads");
        assert_eq!(
            c.items,
            [turns(&[
                ("user", "Hi, you"),
                ("assistant", "Hello,\nthere")
            ])]
        );
        let json = r#"[{"prompt": "a", "response": "b"}]"#;
        let c = load_conversations(json.as_bytes(), DataFormat::Json).expect("loads");
        assert_eq!(c.report.rows, 1);
    }

    #[test]
    fn latin1_files_are_read_and_counted() {
        let bytes = b"prompt,response\ncaf\xe9?,oui\n";
        let c = load_conversations(bytes, DataFormat::Csv).expect("loads");
        assert_eq!(c.items[0][0].content, "café?");
        assert_eq!(c.report.fallback_rows, 1);
    }

    #[test]
    fn bad_conversations_are_named_errors() {
        let cases: [(&str, DataFormat, &str); 9] = [
            (r#"{"text": "x"}"#, DataFormat::Jsonl, "line 1 has neither"),
            (
                r#"{"messages": [{"role": "user", "content": "x"}]}"#,
                DataFormat::Jsonl,
                "no assistant turn",
            ),
            (
                r#"{"messages": [{"role": "bot", "content": "x"}]}"#,
                DataFormat::Jsonl,
                "role `bot`",
            ),
            (
                r#"{"messages": [{"role": "user"}]}"#,
                DataFormat::Jsonl,
                "string `content`",
            ),
            (r#"{"messages": "hi"}"#, DataFormat::Jsonl, "not a list"),
            (
                r#"{"prompt": "x", "response": "  "}"#,
                DataFormat::Jsonl,
                "has no text",
            ),
            (
                r#"{"prompt": 3, "response": "x"}"#,
                DataFormat::Jsonl,
                "not a string",
            ),
            ("question,answer\na,b\n", DataFormat::Csv, "`prompt`"),
            ("one\ntwo\n", DataFormat::Text, "plain-text"),
        ];
        for (text, format, want) in cases {
            let err = load_conversations(text.as_bytes(), format)
                .expect_err(text)
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(load_conversations(b"", DataFormat::Jsonl).is_err());
        assert!(load_conversations(b"{not json", DataFormat::Jsonl).is_err());
    }
}
