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

/// An owned [`TokenCounter`], as a [`ReportBuilder`] keeps it.
pub type BoxedTokenCounter<'a> = Box<dyn Fn(&str) -> (usize, usize) + 'a>;

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

/// A growable array in blocks of 64 Ki values: growing never copies what is stored (a `Vec`
/// would briefly need twice its size to double), which matters at millions of rows.
#[derive(Debug)]
struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

const BLOCK: usize = 1 << 16;

impl<T: Copy> Blocks<T> {
    fn push(&mut self, value: T) {
        if self.blocks.last().is_none_or(|b| b.len() == BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        if let Some(block) = self.blocks.last_mut() {
            block.push(value);
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.blocks.iter().flatten().copied()
    }
}

impl<T> std::ops::Index<usize> for Blocks<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.blocks[i / BLOCK][i % BLOCK]
    }
}

/// A deterministic 64-bit hash of a text (FNV-1a, then the splitmix64 finalizer).
fn text_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// No hash: an empty text (exact) or a text that folds to nothing (folded).
const NONE: u64 = 0;

/// The report, built one row at a time with a few bytes of state per row, so a file can be
/// inspected as it streams in (see [`crate::stream`]) without holding its texts.
///
/// Per row it keeps a 64-bit hash of the text and of its folded form, the character and token
/// counts and the label index (about 28 bytes); texts themselves only for the first
/// [`InspectOptions::near_sample`] rows, where near-duplicates are searched (and from which
/// conflicting-label examples are quoted). Exact and folded
/// duplicates, conflicts and leakage are found through the hashes (a false match needs a
/// 64-bit collision: about one in 10^9 for a 10-million-row file).
pub struct ReportBuilder<'a> {
    options: InspectOptions,
    tokens: Option<BoxedTokenCounter<'a>>,
    exact: Blocks<u64>,
    folded: Blocks<u64>,
    chars: Blocks<u32>,
    token_lengths: Blocks<u32>,
    unknown: usize,
    labels: Blocks<u32>,
    label_names: HashMap<String, u32>,
    has_labels: bool,
    sample: Vec<String>,
    empty: Vec<usize>,
    mojibake: Vec<usize>,
    mojibake_count: usize,
    pii_rows: Vec<usize>,
    pii_count: usize,
    pii_kinds: BTreeMap<PiiKind, usize>,
    empty_total: usize,
    skipped: usize,
}

impl std::fmt::Debug for ReportBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportBuilder")
            .field("rows", &self.exact.len())
            .finish()
    }
}

impl<'a> ReportBuilder<'a> {
    /// An empty report.
    pub fn new(options: InspectOptions, tokens: Option<BoxedTokenCounter<'a>>) -> Self {
        Self {
            options,
            tokens,
            exact: Blocks::default(),
            folded: Blocks::default(),
            chars: Blocks::default(),
            token_lengths: Blocks::default(),
            unknown: 0,
            labels: Blocks::default(),
            label_names: HashMap::new(),
            has_labels: false,
            sample: Vec::new(),
            empty: Vec::new(),
            mojibake: Vec::new(),
            mojibake_count: 0,
            pii_rows: Vec::new(),
            pii_count: 0,
            pii_kinds: BTreeMap::new(),
            empty_total: 0,
            skipped: 0,
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.exact.len() + self.skipped
    }

    /// Adds the next row.
    pub fn push(&mut self, text: &str, label: Option<&str>) {
        let row = self.exact.len();
        if row >= self.options.max_rows {
            self.skipped += 1;
            return;
        }
        let ex = self.options.examples;
        let is_empty = text.trim().is_empty();
        let exact = if is_empty {
            NONE
        } else {
            text_hash(text).max(1)
        };
        let folded_text = neardup::fold(text);
        let folded = if folded_text.is_empty() {
            NONE
        } else {
            text_hash(&folded_text).max(1)
        };
        self.exact.push(exact);
        self.folded.push(folded);
        self.chars
            .push(u32::try_from(text.chars().count()).unwrap_or(u32::MAX));
        if let Some(count) = &self.tokens {
            let (len, unknown) = count(text);
            self.token_lengths
                .push(u32::try_from(len).unwrap_or(u32::MAX));
            self.unknown += unknown;
        }
        if let Some(label) = label {
            self.has_labels = true;
            let next = u32::try_from(self.label_names.len()).unwrap_or(u32::MAX);
            let id = *self.label_names.entry(label.to_string()).or_insert(next);
            self.labels.push(id);
        }
        if row < self.options.near_sample {
            self.sample.push(text.to_string());
        }
        if is_empty {
            self.empty_total += 1;
            if self.empty.len() < ex {
                self.empty.push(row);
            }
        }
        if mojibake::is_damaged(text) {
            self.mojibake_count += 1;
            if self.mojibake.len() < ex {
                self.mojibake.push(row);
            }
        }
        let found = pii::find_pii(text);
        if !found.is_empty() {
            self.pii_count += 1;
            if self.pii_rows.len() < ex {
                self.pii_rows.push(row);
            }
            let mut kinds: Vec<PiiKind> = found.iter().map(|m| m.kind).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                *self.pii_kinds.entry(k).or_default() += 1;
            }
        }
    }

    /// The report of every row pushed. `split` gives the training and held-out rows of a
    /// planned run for the leakage check.
    pub fn finish(self, load: &LoadReport, split: Option<(&[usize], &[usize])>) -> QualityReport {
        let n = self.exact.len();
        let ex = self.options.examples;
        let exact_groups = runs(&self.exact);
        let folded_all = runs(&self.folded);
        let folded: Vec<Vec<usize>> = folded_all
            .iter()
            .filter(|g| g.iter().any(|&i| self.exact[i] != self.exact[g[0]]))
            .cloned()
            .collect();
        let sample: Vec<&str> = self.sample.iter().map(String::as_str).collect();
        let near_all = neardup::near_duplicate_groups(&sample, &self.options.near);
        let near: Vec<Vec<usize>> = near_all
            .iter()
            .filter(|g| {
                let first = self.folded[g[0]];
                first == NONE || g.iter().any(|&i| self.folded[i] != first)
            })
            .cloned()
            .collect();

        let (label_stats, conflicts) = if self.has_labels {
            let mut names: Vec<(&String, u32)> =
                self.label_names.iter().map(|(k, &v)| (k, v)).collect();
            names.sort();
            let mut counts_by_id = vec![0usize; names.len()];
            for l in self.labels.iter() {
                if let Some(c) = counts_by_id.get_mut(l as usize) {
                    *c += 1;
                }
            }
            let counts: Vec<usize> = names
                .iter()
                .map(|(_, id)| counts_by_id[*id as usize])
                .collect();
            let name_of: HashMap<u32, &String> = names.iter().map(|(n, id)| (*id, *n)).collect();
            let max = counts.iter().copied().max().unwrap_or(0);
            let min = counts.iter().copied().min().unwrap_or(0);
            let stats = LabelStats {
                names: names.iter().map(|(n, _)| n.to_string()).collect(),
                counts,
                imbalance_ratio: if min == 0 {
                    0.0
                } else {
                    max as f64 / min as f64
                },
                majority_share: if n == 0 { 0.0 } else { max as f64 / n as f64 },
            };
            let mut conflict = Conflicts::default();
            for g in &exact_groups {
                let mut per: BTreeMap<String, usize> = BTreeMap::new();
                for &i in g {
                    let name = name_of.get(&self.labels[i]).map_or("", |s| s.as_str());
                    *per.entry(name.to_string()).or_default() += 1;
                }
                if per.len() > 1 {
                    conflict.texts += 1;
                    conflict.rows += g.len();
                    // Texts are kept for the near-duplicate sample only.
                    if conflict.examples.len() < ex
                        && let Some(text) = self.sample.get(g[0])
                    {
                        conflict.examples.push(ConflictExample {
                            text: text.clone(),
                            labels: per,
                        });
                    }
                }
            }
            (Some(stats), Some(conflict))
        } else {
            (None, None)
        };

        let widen = |v: &Blocks<u32>| v.iter().map(|x| x as usize).collect::<Vec<usize>>();
        let token_report = self.tokens.map(|_| {
            let lengths = widen(&self.token_lengths);
            let total: usize = lengths.iter().sum();
            let truncated = row_set((0..n).filter(|&i| lengths[i] > self.options.max_length), ex);
            TokenReport {
                lengths: LengthStats::of(&lengths),
                max_length: self.options.max_length,
                truncated_share: if n == 0 {
                    0.0
                } else {
                    truncated.count as f64 / n as f64
                },
                truncated,
                unknown_rate: if total == 0 {
                    0.0
                } else {
                    self.unknown as f64 / total as f64
                },
                unknown_tokens: self.unknown,
            }
        });

        let leakage = split.map(|(train, eval)| {
            let sorted = |hashes: &Blocks<u64>| {
                let mut v: Vec<u64> = train
                    .iter()
                    .filter(|&&i| i < hashes.len())
                    .map(|&i| hashes[i])
                    .filter(|&h| h != NONE)
                    .collect();
                v.sort_unstable();
                v
            };
            let (train_exact, train_folded) = (sorted(&self.exact), sorted(&self.folded));
            let mut near_of: HashMap<usize, usize> = HashMap::new();
            for (k, g) in near_all.iter().enumerate() {
                for &i in g {
                    near_of.insert(i, k);
                }
            }
            let near_train: std::collections::HashSet<usize> = train
                .iter()
                .filter_map(|i| near_of.get(i).copied())
                .collect();
            let valid = |i: &&usize| **i < n && self.exact[**i] != NONE;
            let exact_hit = |i: usize| train_exact.binary_search(&self.exact[i]).is_ok();
            let folded_hit = |i: usize| {
                exact_hit(i)
                    || (self.folded[i] != NONE
                        && train_folded.binary_search(&self.folded[i]).is_ok())
            };
            let near_hit =
                |i: usize| folded_hit(i) || near_of.get(&i).is_some_and(|k| near_train.contains(k));
            Leakage {
                exact: row_set(
                    eval.iter().filter(valid).copied().filter(|&i| exact_hit(i)),
                    ex,
                ),
                folded: row_set(
                    eval.iter()
                        .filter(valid)
                        .copied()
                        .filter(|&i| folded_hit(i)),
                    ex,
                ),
                near: row_set(
                    eval.iter().filter(valid).copied().filter(|&i| near_hit(i)),
                    ex,
                ),
            }
        });

        let mut report = QualityReport {
            rows: n + self.skipped,
            analyzed_rows: n,
            encoding: load.encoding,
            fallback_rows: load.fallback_rows,
            empty_texts: RowSet {
                count: self.empty_total,
                examples: self.empty.iter().map(|r| r + 1).collect(),
            },
            exact_duplicates: groups(&exact_groups, ex),
            folded_duplicates: groups(&folded, ex),
            near_duplicates: groups(&near, ex),
            near_settings: self.options.near,
            near_sample: n.min(self.options.near_sample),
            conflicting_labels: conflicts,
            labels: label_stats,
            chars: LengthStats::of(&widen(&self.chars)),
            tokens: token_report,
            mojibake: RowSet {
                count: self.mojibake_count,
                examples: self.mojibake.iter().map(|r| r + 1).collect(),
            },
            pii: PiiReport {
                rows: RowSet {
                    count: self.pii_count,
                    examples: self.pii_rows.iter().map(|r| r + 1).collect(),
                },
                by_kind: self.pii_kinds,
            },
            leakage,
            findings: Vec::new(),
        };
        report.findings = findings(&report);
        report
    }
}

/// Groups (two rows or more) of rows sharing a hash other than [`NONE`]: rows ascending,
/// groups in order of their first row.
fn runs(hashes: &Blocks<u64>) -> Vec<Vec<usize>> {
    let mut keyed: Vec<(u64, usize)> =
        Vec::with_capacity(hashes.iter().filter(|&h| h != NONE).count());
    keyed.extend(
        hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| *h != NONE)
            .map(|(i, h)| (h, i)),
    );
    keyed.sort_unstable();
    let mut out: Vec<Vec<usize>> = keyed
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
        .map(|run| run.iter().map(|x| x.1).collect())
        .collect();
    out.sort_by_key(|g| g[0]);
    out
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
    if r.analyzed_rows < n {
        add(
            "analyzed",
            Severity::Info,
            format!(
                "the file has {n} rows; the figures below cover the first {}",
                r.analyzed_rows
            ),
            "inspect a sample or split the file for the rest",
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
                "{} clusters of near-duplicate texts ({} rows; word 3-gram Jaccard similarity ≥ {}{})",
                r.near_duplicates.groups,
                r.near_duplicates.rows,
                r.near_settings.threshold,
                if r.near_sample < n {
                    format!(", searched among the first {} rows", r.near_sample)
                } else {
                    String::new()
                }
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
