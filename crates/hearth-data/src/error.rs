//! The errors of loading and splitting a dataset.
//!
//! Every message says what was found, not only what was wrong, so a user can fix the file
//! without opening a debugger: the columns that do exist, the row or line that failed, the one
//! class that was seen.

use std::fmt;
use std::path::PathBuf;

/// Where in the file a record came from.
///
/// CSV records are counted as data rows (the header is not a row) together with the line the
/// record starts on, because a quoted field with a newline makes the two differ. JSONL records
/// are named by their line, counting blank lines too, so the number matches an editor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRef {
    /// A CSV data row, 1-based, and the 1-based line it starts on.
    CsvRow { row: u64, line: u64 },
    /// A JSONL line, 1-based (or a plain-text line).
    JsonlLine { line: usize },
    /// An element of a JSON array, 0-based.
    JsonElement { index: usize },
}

impl fmt::Display for RowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CsvRow { row, line } => write!(f, "row {row} (line {line})"),
            Self::JsonlLine { line } => write!(f, "line {line}"),
            Self::JsonElement { index } => write!(f, "array element {index}"),
        }
    }
}

/// Everything that can go wrong while loading or splitting a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the file has no data rows ({reason})")]
    NoDataRows { reason: &'static str },

    #[error("no column named `{}`; the file has columns: {}", shown_name(.column), shown_list(.found))]
    MissingColumn { column: String, found: Vec<String> },

    #[error(
        "line {line} has no key named `{}`; that object has keys: {}",
        shown_name(.column),
        shown_list(.found)
    )]
    MissingKey {
        column: String,
        line: usize,
        found: Vec<String>,
    },

    #[error(
        "the column `{}` appears {count} times in the header, so it is unclear which \
         one to read; rename the others",
        shown_name(.column)
    )]
    DuplicateColumn { column: String, count: usize },

    #[error("{at} has no value in label column `{}`", shown_name(.column))]
    MissingLabel { at: RowRef, column: String },

    #[error(
        "{at}: label column `{}` holds {}; a label must be a string, a number or a boolean",
        shown_name(.column),
        shown_name(.found)
    )]
    UnsupportedLabel {
        at: RowRef,
        column: String,
        found: String,
    },

    #[error(
        "{at}: text column `{}` holds {}; the text must be a string",
        shown_name(.column),
        shown_name(.found)
    )]
    UnsupportedText {
        at: RowRef,
        column: String,
        found: String,
    },

    #[error(
        "the label column `{}` has only one class (`{}`) across {rows} rows; \
         classification needs at least two",
        shown_name(.column),
        shown_name(.class)
    )]
    SingleClass {
        column: String,
        class: String,
        rows: usize,
    },

    #[error(
        "data row {row}: column `{}` holds `{}`, not a number; a regression target \
         must be a finite number",
        shown_name(.column),
        shown_name(.value)
    )]
    NotANumber {
        row: usize,
        column: String,
        value: String,
    },

    #[error(
        "the label column `{}` has no labels at all (labels of a row are separated by \
         `{}`)",
        shown_name(.column),
        shown_name(.separator)
    )]
    NoLabelsInColumn { column: String, separator: String },

    #[error("malformed CSV: {source}")]
    Csv {
        #[from]
        source: csv::Error,
    },

    #[error("malformed CSV at line {line}: {}", shown(.message, MESSAGE_CHARS))]
    CsvAt { line: usize, message: String },

    #[error("line {line} is not valid JSON: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "line {line} holds {}, but each line of a JSONL file must be an object",
        shown_name(.found)
    )]
    NotAnObject { line: usize, found: String },

    #[error(
        "the JSON file holds {}; expected an array of objects, one per example",
        shown_name(.found)
    )]
    NotAnArray { found: String },

    #[error(
        "element {index} of the JSON array holds {}; each element must be an object",
        shown_name(.found)
    )]
    ElementNotAnObject { index: usize, found: String },

    #[error(
        "a plain-text file has no labels (one example per line); training needs a CSV, TSV, \
         JSONL or JSON file with a label column"
    )]
    NoLabels,

    #[error(
        "{at} has neither `messages` nor `prompt` with `response` (or `completion`); that \
         object has keys: {}",
        shown_list(.found)
    )]
    NotAConversation { at: RowRef, found: Vec<String> },

    #[error("{at}, turn {index}: {}", shown(.problem, MESSAGE_CHARS))]
    BadTurn {
        at: RowRef,
        index: usize,
        problem: String,
    },

    #[error(
        "{at} has no assistant turn: a conversation must include the answer the model learns \
         to write"
    )]
    NoAssistantTurn { at: RowRef },

    #[error(
        "a plain-text file holds no conversations; use JSONL/JSON with `messages` or \
         `prompt` + `response`, or CSV/TSV with `prompt` and `response` columns"
    )]
    NoConversations,

    #[error(
        "cannot tell the format of `{}` from its extension; expected .csv, .tsv, .jsonl, \
         .ndjson, .json or .txt, or name the format explicitly",
        shown_name(.name)
    )]
    UnknownExtension { name: String },

    #[error(
        "cleaned {from} rows cannot be written as {to} without losing columns; name the output \
         with the input's extension"
    )]
    RewriteFormat {
        from: crate::DataFormat,
        to: crate::DataFormat,
    },
    #[error(
        "unknown data format `{}`; expected csv, tsv, jsonl, json or text",
        shown_name(.name)
    )]
    UnknownFormatName { name: String },

    #[error("cannot read {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "an evaluation split of {n_eval} rows leaves nothing to train on: the dataset has \
         {n_rows} rows"
    )]
    NothingToTrain { n_eval: usize, n_rows: usize },

    #[error(
        "validation ({validation}) and test ({test}) shares must each be in [0, 1) and leave \
         rows to train on"
    )]
    BadFractions { validation: f64, test: f64 },
}

/// The most characters of one name (a column, a label, a value) a message shows.
pub const NAME_CHARS: usize = 80;
/// The most names a list in a message shows.
pub const LIST_NAMES: usize = 20;
/// The most characters of a longer piece of text (a parser's message) a message shows.
const MESSAGE_CHARS: usize = 400;

/// User text (a column name, a label, a cell, a file name) as a message shows it: control
/// characters and invisible formatting characters written as escapes (`\n`, `\u{1b}`,
/// `\u{202e}`), so a message can neither move the terminal's cursor nor hide part of itself,
/// and cut after `max_chars` characters with `…`. Every message of Hearth that echoes what a
/// user's file holds goes through it.
pub fn shown(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in text.chars() {
        let invisible = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{feff}');
        let piece = if invisible {
            match c {
                '\n' => "\\n".to_owned(),
                '\r' => "\\r".to_owned(),
                '\t' => "\\t".to_owned(),
                _ => format!("\\u{{{:x}}}", u32::from(c)),
            }
        } else {
            c.to_string()
        };
        let width = piece.chars().count();
        if count + width > max_chars {
            out.push('…');
            return out;
        }
        count += width;
        out.push_str(&piece);
    }
    out
}

/// One name for a message: [`shown`] with [`NAME_CHARS`].
fn shown_name(text: &str) -> String {
    shown(text, NAME_CHARS)
}

/// Joins names for a message, each [`shown`], at most [`LIST_NAMES`] of them, saying so
/// plainly when there are none and how many more there are.
pub fn shown_list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_owned();
    }
    let mut out: Vec<String> = names
        .iter()
        .take(LIST_NAMES)
        .map(|n| shown_name(n))
        .collect();
    if names.len() > LIST_NAMES {
        out.push(format!("… ({} more)", names.len() - LIST_NAMES));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_and_cut() {
        assert_eq!(shown("plain text", 80), "plain text");
        assert_eq!(
            shown("a\x1b[2Jb\nc\u{202e}d", 80),
            "a\\u{1b}[2Jb\\nc\\u{202e}d"
        );
        assert_eq!(shown("naïve café", 80), "naïve café");
        assert_eq!(shown("abcdef", 4), "abcd…");
        // An escape is never cut in half.
        assert_eq!(shown("ab\u{1}", 5), "ab…");
        let header = "x".repeat(10_000_000);
        assert_eq!(shown(&header, 80).chars().count(), 81);
    }

    #[test]
    fn a_garbage_header_gives_a_bounded_message() {
        // A binary file's "header": one huge name and control bytes in thousands of columns.
        let mut found: Vec<String> = (0..5000).map(|i| format!("c{i}\x07\x1b")).collect();
        found.push("y".repeat(10_000_000));
        let message = DataError::MissingColumn {
            column: "text\u{0}".into(),
            found,
        }
        .to_string();
        assert!(message.len() < 3000, "{} bytes", message.len());
        assert!(!message.chars().any(char::is_control), "{message}");
        assert!(
            message.starts_with("no column named `text\\u{0}`"),
            "{message}"
        );
        assert!(message.contains("c0\\u{7}\\u{1b}, c1\\u{7}"), "{message}");
        assert!(message.ends_with("… (4981 more)"), "{message}");
    }
}
