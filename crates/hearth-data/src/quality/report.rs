//! What a quality report holds: the options it is computed with, its figures, and its findings
//! with their severities. Plain serializable data; [`super::ReportBuilder`] fills it in.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::TextEncoding;
use crate::neardup::NearDupSettings;
use crate::pii::PiiKind;

/// What to check and how.
#[derive(Debug, Clone, Serialize)]
pub struct InspectOptions {
    /// Near-duplicate search settings (threshold 0.8 by default).
    pub near: NearDupSettings,
    /// The training max length in tokens, for the share of texts it cuts.
    pub max_length: usize,
    /// Example rows listed per finding.
    pub examples: usize,
    /// Near-duplicates are searched among this many first rows (all rows of most files): the
    /// search keeps their texts, everything else keeps a few bytes per row.
    pub near_sample: usize,
    /// Rows analyzed at most; further rows are only counted. Bounds the memory a huge file of
    /// tiny rows can take (about 30–60 bytes per analyzed row).
    pub max_rows: usize,
}

impl Default for InspectOptions {
    fn default() -> Self {
        Self {
            near: NearDupSettings::default(),
            max_length: 128,
            examples: 5,
            near_sample: 50_000,
            max_rows: 10_000_000,
        }
    }
}

/// How sure a finding is to hurt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Likely to cost accuracy; look at it.
    Warning,
    /// Makes the evaluation or the run wrong; fix it before training.
    Error,
}

/// One finding, with what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which check: `empty_texts`, `exact_duplicates`, `near_duplicates`, ….
    pub check: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// What was found, with the figures.
    pub message: String,
    /// What to do.
    pub suggestion: String,
    /// Example rows (1-based).
    pub rows: Vec<usize>,
}

/// Rows that share a property.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RowSet {
    /// How many rows.
    pub count: usize,
    /// The first few (1-based).
    pub examples: Vec<usize>,
}

/// Groups of rows holding the same (or nearly the same) text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Groups {
    /// Number of groups.
    pub groups: usize,
    /// Rows in some group.
    pub rows: usize,
    /// Rows beyond the first of each group: what deduplication would drop.
    pub redundant: usize,
    /// The first few groups (1-based rows).
    pub examples: Vec<Vec<usize>>,
}

/// Texts that appear under more than one label.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Conflicts {
    /// Distinct texts with more than one label.
    pub texts: usize,
    /// Rows holding such a text.
    pub rows: usize,
    /// The first few: the text and how often each label is given to it.
    pub examples: Vec<ConflictExample>,
}

/// One text with conflicting labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictExample {
    /// The text.
    pub text: String,
    /// Label → rows giving it.
    pub labels: BTreeMap<String, usize>,
}

/// The label distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelStats {
    /// Label names, sorted.
    pub names: Vec<String>,
    /// Rows per label, in `names` order.
    pub counts: Vec<usize>,
    /// Largest class count over the smallest.
    pub imbalance_ratio: f64,
    /// Share of the largest class: the accuracy of always predicting it.
    pub majority_share: f64,
}

/// A length distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LengthStats {
    /// Shortest.
    pub min: usize,
    /// Mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: usize,
    /// 90th percentile (nearest rank).
    pub p90: usize,
    /// 99th percentile (nearest rank).
    pub p99: usize,
    /// Longest.
    pub max: usize,
}

impl LengthStats {
    /// The distribution of `lengths` (all zero when there are none).
    pub(super) fn of(lengths: &[usize]) -> Self {
        if lengths.is_empty() {
            return Self::default();
        }
        let mut sorted = lengths.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[i - 1]
        };
        Self {
            min: sorted[0],
            mean: sorted.iter().sum::<usize>() as f64 / sorted.len() as f64,
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Token figures, from the chosen model's tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenReport {
    /// Tokens per text, special tokens included, before truncation.
    pub lengths: LengthStats,
    /// The max length the figures below refer to.
    pub max_length: usize,
    /// Texts longer than `max_length` tokens.
    pub truncated: RowSet,
    /// Their share of all rows.
    pub truncated_share: f64,
    /// Unknown tokens over all tokens.
    pub unknown_rate: f64,
    /// Unknown tokens.
    pub unknown_tokens: usize,
}

/// Personal data found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PiiReport {
    /// Rows holding any.
    pub rows: RowSet,
    /// Rows holding each kind.
    pub by_kind: BTreeMap<PiiKind, usize>,
}

/// Held-out rows that also appear in training.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Leakage {
    /// Held-out rows whose exact text is a training text.
    pub exact: RowSet,
    /// Held-out rows equal to a training text after folding (exact ones included).
    pub folded: RowSet,
    /// Held-out rows in a near-duplicate cluster with a training row (folded ones included).
    pub near: RowSet,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Rows read.
    pub rows: usize,
    /// How the file was decoded.
    pub encoding: TextEncoding,
    /// Under the latin-1 fallback, rows with bytes above 0x7F.
    pub fallback_rows: usize,
    /// Empty or whitespace-only texts.
    pub empty_texts: RowSet,
    /// Byte-identical texts (empty ones aside).
    pub exact_duplicates: Groups,
    /// Texts equal after folding case, spaces and punctuation, but not byte-identical.
    pub folded_duplicates: Groups,
    /// Near-duplicate clusters that are not all one folded text.
    pub near_duplicates: Groups,
    /// The near-duplicate settings used.
    pub near_settings: NearDupSettings,
    /// Rows the near-duplicate search covered (the first ones).
    pub near_sample: usize,
    /// Rows analyzed (the first ones; all unless the file exceeds `max_rows`).
    pub analyzed_rows: usize,
    /// The same text under different labels.
    pub conflicting_labels: Option<Conflicts>,
    /// The label distribution.
    pub labels: Option<LabelStats>,
    /// Characters per text.
    pub chars: LengthStats,
    /// Tokens per text, when a tokenizer was given.
    pub tokens: Option<TokenReport>,
    /// Texts with encoding damage that can be repaired.
    pub mojibake: RowSet,
    /// Personal data.
    pub pii: PiiReport,
    /// Training/held-out overlap, when a split was given.
    pub leakage: Option<Leakage>,
    /// Everything worth acting on, most severe first.
    pub findings: Vec<Finding>,
}

/// The first `examples` of `rows` (0-based, shown 1-based) and how many there are.
pub(super) fn row_set(rows: impl IntoIterator<Item = usize>, examples: usize) -> RowSet {
    let mut set = RowSet::default();
    for row in rows {
        if set.examples.len() < examples {
            set.examples.push(row + 1);
        }
        set.count += 1;
    }
    set
}

/// The figures of duplicate `clusters` (0-based rows, shown 1-based), with the first
/// `examples` of them.
pub(super) fn groups(clusters: &[Vec<usize>], examples: usize) -> Groups {
    let rows: usize = clusters.iter().map(Vec::len).sum();
    Groups {
        groups: clusters.len(),
        rows,
        redundant: rows - clusters.len(),
        examples: clusters
            .iter()
            .take(examples)
            .map(|g| g.iter().map(|r| r + 1).collect())
            .collect(),
    }
}
