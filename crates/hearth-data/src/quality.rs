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

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::neardup::{self, NearDupSettings};
use crate::pii::{self, PiiKind};
use crate::{LoadReport, TextEncoding, mojibake};

/// Counts the tokens of a text without truncation, and how many of them are the unknown token.
pub type TokenCounter<'a> = &'a dyn Fn(&str) -> (usize, usize);

/// What to check and how.
#[derive(Debug, Clone, Serialize)]
pub struct InspectOptions {
    /// Near-duplicate search settings (threshold 0.8 by default).
    pub near: NearDupSettings,
    /// The training max length in tokens, for the share of texts it cuts.
    pub max_length: usize,
    /// Example rows listed per finding.
    pub examples: usize,
}

impl Default for InspectOptions {
    fn default() -> Self {
        Self {
            near: NearDupSettings::default(),
            max_length: 128,
            examples: 5,
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
    fn of(lengths: &[usize]) -> Self {
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

fn row_set(rows: impl IntoIterator<Item = usize>, examples: usize) -> RowSet {
    let mut set = RowSet::default();
    for row in rows {
        if set.examples.len() < examples {
            set.examples.push(row + 1);
        }
        set.count += 1;
    }
    set
}

fn groups(clusters: &[Vec<usize>], examples: usize) -> Groups {
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

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Inspects `texts` (and `labels`, parallel, when the file has them).
///
/// `split` gives the training and held-out row indices of a planned run for the leakage
/// check; `tokens` counts tokens with the chosen model's tokenizer.
pub fn inspect(
    texts: &[String],
    labels: Option<&[String]>,
    load: &LoadReport,
    split: Option<(&[usize], &[usize])>,
    options: &InspectOptions,
    tokens: Option<TokenCounter<'_>>,
) -> QualityReport {
    let n = texts.len();
    let ex = options.examples;
    let empty: Vec<usize> = (0..n).filter(|&i| texts[i].trim().is_empty()).collect();

    // Exact duplicates among non-empty texts.
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in texts.iter().enumerate() {
        if !t.trim().is_empty() {
            by_text.entry(t.as_str()).or_default().push(i);
        }
    }
    let mut exact: Vec<Vec<usize>> = by_text.values().filter(|g| g.len() > 1).cloned().collect();
    exact.sort();

    // Folded duplicates with at least two distinct raw texts.
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Empty texts fold to the same nothing; they are reported on their own.
    let folded_all: Vec<Vec<usize>> = neardup::folded_duplicate_groups(&refs)
        .into_iter()
        .map(|g| {
            g.into_iter()
                .filter(|&i| !refs[i].trim().is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|g| g.len() > 1)
        .collect();
    let distinct = |g: &Vec<usize>| {
        let mut raw: Vec<&str> = g.iter().map(|&i| refs[i]).collect();
        raw.sort_unstable();
        raw.dedup();
        raw.len() > 1
    };
    let folded: Vec<Vec<usize>> = folded_all.iter().filter(|g| distinct(g)).cloned().collect();
    let folded_key: Vec<Option<usize>> = {
        let mut key = vec![None; n];
        for (k, g) in folded_all.iter().enumerate() {
            for &i in g {
                key[i] = Some(k);
            }
        }
        key
    };
    let near_all = neardup::near_duplicate_groups(&refs, &options.near);
    let near: Vec<Vec<usize>> = near_all
        .iter()
        .filter(|g| {
            let first = folded_key[g[0]];
            first.is_none() || g.iter().any(|&i| folded_key[i] != first)
        })
        .cloned()
        .collect();

    // Labels: distribution and conflicts.
    let (label_stats, conflicts) = match labels {
        None => (None, None),
        Some(labels) => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for l in labels {
                *counts.entry(l.as_str()).or_default() += 1;
            }
            let max = counts.values().copied().max().unwrap_or(0);
            let min = counts.values().copied().min().unwrap_or(0);
            let stats = LabelStats {
                names: counts.keys().map(|s| s.to_string()).collect(),
                counts: counts.values().copied().collect(),
                imbalance_ratio: if min == 0 {
                    0.0
                } else {
                    max as f64 / min as f64
                },
                majority_share: if n == 0 { 0.0 } else { max as f64 / n as f64 },
            };
            let mut conflict = Conflicts::default();
            let mut groups_sorted: Vec<&Vec<usize>> = by_text.values().collect();
            groups_sorted.sort();
            for g in groups_sorted {
                let mut per: BTreeMap<String, usize> = BTreeMap::new();
                for &i in g {
                    *per.entry(labels[i].clone()).or_default() += 1;
                }
                if per.len() > 1 {
                    conflict.texts += 1;
                    conflict.rows += g.len();
                    if conflict.examples.len() < ex {
                        conflict.examples.push(ConflictExample {
                            text: texts[g[0]].clone(),
                            labels: per,
                        });
                    }
                }
            }
            (Some(stats), Some(conflict))
        }
    };

    let chars: Vec<usize> = texts.iter().map(|t| t.chars().count()).collect();
    let token_report = tokens.map(|count| {
        let (mut lengths, mut unknown) = (Vec::with_capacity(n), 0usize);
        for t in texts {
            let (len, unk) = count(t);
            lengths.push(len);
            unknown += unk;
        }
        let total: usize = lengths.iter().sum();
        let truncated = row_set((0..n).filter(|&i| lengths[i] > options.max_length), ex);
        TokenReport {
            lengths: LengthStats::of(&lengths),
            max_length: options.max_length,
            truncated_share: if n == 0 {
                0.0
            } else {
                truncated.count as f64 / n as f64
            },
            truncated,
            unknown_rate: if total == 0 {
                0.0
            } else {
                unknown as f64 / total as f64
            },
            unknown_tokens: unknown,
        }
    });

    let mojibake_rows = row_set((0..n).filter(|&i| mojibake::is_damaged(&texts[i])), ex);
    let mut pii_report = PiiReport::default();
    let mut pii_rows = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let found = pii::find_pii(t);
        if found.is_empty() {
            continue;
        }
        pii_rows.push(i);
        let mut kinds: Vec<PiiKind> = found.iter().map(|m| m.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for k in kinds {
            *pii_report.by_kind.entry(k).or_default() += 1;
        }
    }
    pii_report.rows = row_set(pii_rows, ex);

    let leakage = split.map(|(train, eval)| {
        let in_train: std::collections::HashSet<&str> =
            train.iter().map(|&i| texts[i].as_str()).collect();
        let folded_train: std::collections::HashSet<usize> =
            train.iter().filter_map(|&i| folded_key[i]).collect();
        let mut near_of = vec![None; n];
        for (k, g) in near_all.iter().enumerate() {
            for &i in g {
                near_of[i] = Some(k);
            }
        }
        let near_train: std::collections::HashSet<usize> =
            train.iter().filter_map(|&i| near_of[i]).collect();
        let nonempty = |i: &&usize| !texts[**i].trim().is_empty();
        let exact_rows = eval
            .iter()
            .filter(nonempty)
            .filter(|&&i| in_train.contains(texts[i].as_str()));
        let folded_rows = eval.iter().filter(nonempty).filter(|&&i| {
            in_train.contains(texts[i].as_str())
                || folded_key[i].is_some_and(|k| folded_train.contains(&k))
        });
        let near_rows = eval.iter().filter(nonempty).filter(|&&i| {
            in_train.contains(texts[i].as_str())
                || folded_key[i].is_some_and(|k| folded_train.contains(&k))
                || near_of[i].is_some_and(|k| near_train.contains(&k))
        });
        Leakage {
            exact: row_set(exact_rows.copied(), ex),
            folded: row_set(folded_rows.copied(), ex),
            near: row_set(near_rows.copied(), ex),
        }
    });

    let mut report = QualityReport {
        rows: n,
        encoding: load.encoding,
        fallback_rows: load.fallback_rows,
        empty_texts: row_set(empty.iter().copied(), ex),
        exact_duplicates: groups(&exact, ex),
        folded_duplicates: groups(&folded, ex),
        near_duplicates: groups(&near, ex),
        near_settings: options.near,
        conflicting_labels: conflicts,
        labels: label_stats,
        chars: LengthStats::of(&chars),
        tokens: token_report,
        mojibake: mojibake_rows,
        pii: pii_report,
        leakage,
        findings: Vec::new(),
    };
    report.findings = findings(&report);
    report
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

/// The findings of a report, most severe first.
fn findings(r: &QualityReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let n = r.rows;
    let mut add = |check, severity, message: String, suggestion: &str, rows: Vec<usize>| {
        out.push(Finding {
            check,
            severity,
            message,
            suggestion: suggestion.to_string(),
            rows,
        })
    };
    if n < 100 {
        add(
            "size",
            Severity::Warning,
            format!("only {n} rows: fine-tuning needs more examples to generalize"),
            "collect more labelled examples (a few hundred per class is a good start)",
            Vec::new(),
        );
    }
    if r.fallback_rows > 0 {
        add(
            "encoding",
            Severity::Info,
            format!(
                "the file is not valid UTF-8; it was read as latin-1, which touches {} rows ({:.1}%)",
                r.fallback_rows,
                percent(r.fallback_rows, n)
            ),
            "save the file as UTF-8 if you can; damaged rows are listed under encoding damage",
            Vec::new(),
        );
    }
    if r.mojibake.count > 0 {
        add(
            "mojibake",
            Severity::Warning,
            format!(
                "{} rows ({:.1}%) show encoding damage such as \"Ã©\" for \"é\" or \"â€™\" for \"’\"",
                r.mojibake.count,
                percent(r.mojibake.count, n)
            ),
            "turn on \"repair encoding damage\" in cleaning: it undoes it exactly",
            r.mojibake.examples.clone(),
        );
    }
    if r.empty_texts.count > 0 {
        add(
            "empty_texts",
            Severity::Warning,
            format!(
                "{} rows have an empty or whitespace-only text",
                r.empty_texts.count
            ),
            "drop them (cleaning: drop empty texts)",
            r.empty_texts.examples.clone(),
        );
    }
    let dup = &r.exact_duplicates;
    if dup.groups > 0 {
        let share = percent(dup.redundant, n);
        add(
            "exact_duplicates",
            if share >= 1.0 {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "{} texts occur more than once: {} rows, {} of them repeats ({share:.1}%)",
                dup.groups, dup.rows, dup.redundant
            ),
            "deduplicate (cleaning: exact); repeats overweight those texts and can leak into evaluation",
            dup.examples.first().cloned().unwrap_or_default(),
        );
    }
    if r.folded_duplicates.groups > 0 {
        add(
            "folded_duplicates",
            Severity::Info,
            format!(
                "{} groups of texts ({} rows) differ only in case, spacing or punctuation",
                r.folded_duplicates.groups, r.folded_duplicates.rows
            ),
            "deduplicate with folding (cleaning: folded)",
            r.folded_duplicates
                .examples
                .first()
                .cloned()
                .unwrap_or_default(),
        );
    }
    if r.near_duplicates.groups > 0 {
        add(
            "near_duplicates",
            Severity::Info,
            format!(
                "{} clusters of near-duplicate texts ({} rows; word 3-gram Jaccard similarity ≥ {})",
                r.near_duplicates.groups, r.near_duplicates.rows, r.near_settings.threshold
            ),
            "review them; deduplicate near matches (cleaning: near) if they are copies",
            r.near_duplicates
                .examples
                .first()
                .cloned()
                .unwrap_or_default(),
        );
    }
    if let Some(c) = &r.conflicting_labels
        && c.texts > 0
    {
        add(
            "conflicting_labels",
            Severity::Warning,
            format!(
                "{} texts carry different labels in different rows ({} rows)",
                c.texts, c.rows
            ),
            "drop them or keep each text's majority label (cleaning: conflicts)",
            Vec::new(),
        );
    }
    if let Some(l) = &r.labels {
        if l.imbalance_ratio >= 3.0 {
            add(
                "imbalance",
                if l.imbalance_ratio >= 10.0 {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                format!(
                    "the largest class has {:.1}× the rows of the smallest; always predicting it scores {:.1}% accuracy",
                    l.imbalance_ratio,
                    100.0 * l.majority_share
                ),
                "watch macro-F1 rather than accuracy, use a stratified split, weight the classes, or collect more of the small ones",
                Vec::new(),
            );
        }
        let small: Vec<String> = l
            .names
            .iter()
            .zip(&l.counts)
            .filter(|(_, c)| **c < 10)
            .map(|(name, c)| format!("{name} ({c})"))
            .collect();
        if !small.is_empty() {
            add(
                "small_classes",
                Severity::Warning,
                format!("classes with fewer than 10 rows: {}", small.join(", ")),
                "collect more examples of them or merge them into a related class",
                Vec::new(),
            );
        }
    }
    if let Some(t) = &r.tokens {
        if t.truncated.count > 0 {
            add(
                "truncation",
                if t.truncated_share >= 0.05 {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!(
                    "{} texts ({:.1}%) are longer than {} tokens and will be cut (longest {})",
                    t.truncated.count,
                    100.0 * t.truncated_share,
                    t.max_length,
                    t.lengths.max
                ),
                "raise the max length (its cost grows with it) or split long texts",
                t.truncated.examples.clone(),
            );
        }
        if t.unknown_rate >= 0.01 {
            add(
                "unknown_tokens",
                Severity::Warning,
                format!(
                    "{:.1}% of tokens are the unknown token: the model's vocabulary does not cover this text",
                    100.0 * t.unknown_rate
                ),
                "check the language and the encoding, or pick a model whose tokenizer fits the data",
                Vec::new(),
            );
        }
    }
    if r.pii.rows.count > 0 {
        let kinds: Vec<String> = r
            .pii
            .by_kind
            .iter()
            .map(|(k, c)| format!("{} {c}", k.describe()))
            .collect();
        add(
            "personal_data",
            Severity::Warning,
            format!(
                "{} rows contain personal data ({})",
                r.pii.rows.count,
                kinds.join(", ")
            ),
            "redact it before training (cleaning: redact personal data); a model can memorize and repeat it",
            r.pii.rows.examples.clone(),
        );
    }
    if let Some(l) = &r.leakage
        && l.near.count > 0
    {
        add(
            "leakage",
            if l.exact.count > 0 {
                Severity::Error
            } else {
                Severity::Warning
            },
            format!(
                "{} held-out rows also appear in training ({} exactly, {} after folding, {} as near-duplicates): evaluation would overstate accuracy",
                l.near.count, l.exact.count, l.folded.count, l.near.count
            ),
            "deduplicate before splitting, or use the duplicate-aware split",
            l.near.examples.clone(),
        );
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}
