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

    #[error("no column named `{column}`; the file has columns: {}", list(.found))]
    MissingColumn { column: String, found: Vec<String> },

    #[error(
        "line {line} has no key named `{column}`; that object has keys: {}",
        list(.found)
    )]
    MissingKey {
        column: String,
        line: usize,
        found: Vec<String>,
    },

    #[error(
        "the column `{column}` appears {count} times in the header, so it is unclear which \
         one to read; rename the others"
    )]
    DuplicateColumn { column: String, count: usize },

    #[error("{at} has no value in label column `{column}`")]
    MissingLabel { at: RowRef, column: String },

    #[error(
        "{at}: label column `{column}` holds {found}; a label must be a string, a number or \
         a boolean"
    )]
    UnsupportedLabel {
        at: RowRef,
        column: String,
        found: String,
    },

    #[error("{at}: text column `{column}` holds {found}; the text must be a string")]
    UnsupportedText {
        at: RowRef,
        column: String,
        found: String,
    },

    #[error(
        "the label column `{column}` has only one class (`{class}`) across {rows} rows; \
         classification needs at least two"
    )]
    SingleClass {
        column: String,
        class: String,
        rows: usize,
    },

    #[error(
        "data row {row}: column `{column}` holds `{value}`, not a number; a regression target \
         must be a finite number"
    )]
    NotANumber {
        row: usize,
        column: String,
        value: String,
    },

    #[error(
        "the label column `{column}` has no labels at all (labels of a row are separated by \
         `{separator}`)"
    )]
    NoLabelsInColumn { column: String, separator: String },

    #[error("malformed CSV: {source}")]
    Csv {
        #[from]
        source: csv::Error,
    },

    #[error("malformed CSV at line {line}: {message}")]
    CsvAt { line: usize, message: String },

    #[error("line {line} is not valid JSON: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },

    #[error("line {line} holds {found}, but each line of a JSONL file must be an object")]
    NotAnObject { line: usize, found: String },

    #[error("the JSON file holds {found}; expected an array of objects, one per example")]
    NotAnArray { found: String },

    #[error("element {index} of the JSON array holds {found}; each element must be an object")]
    ElementNotAnObject { index: usize, found: String },

    #[error(
        "a plain-text file has no labels (one example per line); training needs a CSV, TSV, \
         JSONL or JSON file with a label column"
    )]
    NoLabels,

    #[error(
        "{at} has neither `messages` nor `prompt` with `response` (or `completion`); that \
         object has keys: {}",
        list(.found)
    )]
    NotAConversation { at: RowRef, found: Vec<String> },

    #[error("{at}, turn {index}: {problem}")]
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
        "cannot tell the format of `{name}` from its extension; expected .csv, .tsv, .jsonl, \
         .ndjson, .json or .txt, or name the format explicitly"
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
    #[error("unknown data format `{name}`; expected csv, tsv, jsonl, json or text")]
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

/// Joins names for a message, saying so plainly when there are none.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}
