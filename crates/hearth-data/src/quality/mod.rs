//! The data-quality report: what a file holds and what in it would hurt fine-tuning, computed
//! before a single step runs.
//!
//! Checks: empty texts; exact duplicates; duplicates after folding case, spaces and
//! punctuation; near-duplicates (Jaccard similarity of word 3-gram sets at or above a stated
//! threshold, [`crate::neardup`]); the same text under different labels; label balance; text
//! length in characters and, given a tokenizer, in tokens with the share cut at the max length
//! and the unknown-token rate; encoding damage ([`crate::mojibake`]); personal data
//! ([`crate::pii`]); and, given a split, held-out rows that also appear in training. Every
//! finding has a severity and a plain suggestion. Row numbers in the report are 1-based data
//! rows, as a spreadsheet shows them below the header.
//!
//! Token figures come from a caller's closure, so this crate never knows about models.
//!
//! The code is laid out the same way: `report` holds the report's types, `builder` computes
//! the figures row by row, and `findings` turns the figures into findings. Conversations
//! (chat-model SFT data) have their own report in `chat`, over the same types.

mod builder;
mod chat;
mod findings;
mod report;

pub use builder::ReportBuilder;
pub use chat::{
    ChatFit, ChatMeasure, ChatReport, ChatTokenReport, PolicyCounts, inspect_chat,
    inspect_chat_bytes,
};
pub use report::{
    ConflictExample, Conflicts, Finding, Groups, InspectOptions, LabelStats, Leakage, LengthStats,
    PiiReport, QualityReport, RowSet, Severity, TokenReport,
};

use crate::LoadReport;

/// Counts the tokens of a text without truncation, and how many of them are the unknown token.
pub type TokenCounter<'a> = &'a dyn Fn(&str) -> (usize, usize);

/// An owned [`TokenCounter`], as a [`ReportBuilder`] keeps it.
pub type BoxedTokenCounter<'a> = Box<dyn Fn(&str) -> (usize, usize) + 'a>;

/// Inspects `texts` (and `labels`, parallel, when the file has them).
///
/// `split` gives the training and held-out row indices of a planned run for the leakage
/// check; `tokens` counts tokens with the chosen model's tokenizer. The same as pushing every
/// row through a [`ReportBuilder`].
pub fn inspect(
    texts: &[String],
    labels: Option<&[String]>,
    load: &LoadReport,
    split: Option<(&[usize], &[usize])>,
    options: &InspectOptions,
    tokens: Option<TokenCounter<'_>>,
) -> QualityReport {
    let tokens = tokens.map(|count| Box::new(count) as BoxedTokenCounter<'_>);
    let mut builder = ReportBuilder::new(options.clone(), tokens);
    for (i, text) in texts.iter().enumerate() {
        builder.push(text, labels.and_then(|l| l.get(i)).map(String::as_str));
    }
    builder.finish(load, split)
}

/// The planned run's hold-out, for the leakage check: `eval_fraction` of the rows (or
/// `eval_rows`) held out by the seeded shuffle the training split uses. `None` when that would
/// hold out nothing or everything.
pub fn planned_holdout(
    rows: usize,
    eval_rows: Option<usize>,
    eval_fraction: f64,
    seed: u64,
) -> Option<crate::Split> {
    let n_eval = eval_rows.unwrap_or_else(|| (rows as f64 * eval_fraction).round() as usize);
    (n_eval > 0 && n_eval < rows)
        .then(|| crate::holdout_split(rows, n_eval, seed).ok())
        .flatten()
}
