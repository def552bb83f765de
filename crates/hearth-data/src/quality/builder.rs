//! [`ReportBuilder`]: the quality report built one row at a time, with a few bytes of state per
//! row, so a file can be inspected as it streams in.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::findings::findings;
use super::report::{groups, row_set};
use super::{
    BoxedTokenCounter, ConflictExample, Conflicts, InspectOptions, LabelStats, Leakage,
    LengthStats, PiiReport, QualityReport, RowSet, TokenReport,
};
use crate::hash::text_hash;
use crate::neardup;
use crate::pii::{self, PiiKind};
use crate::{LoadReport, mojibake};

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

/// Values per block.
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
            let (stats, conflict) = self.label_figures(&exact_groups);
            (Some(stats), Some(conflict))
        } else {
            (None, None)
        };
        let token_report = self.token_report();
        let leakage = split.map(|(train, eval)| self.leakage(train, eval, &near_all));

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

    /// The label distribution, and the texts that occur under more than one label.
    fn label_figures(&self, exact_groups: &[Vec<usize>]) -> (LabelStats, Conflicts) {
        let n = self.exact.len();
        let ex = self.options.examples;
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
        for g in exact_groups {
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
        (stats, conflict)
    }

    /// The token figures, when a token counter was given.
    fn token_report(&self) -> Option<TokenReport> {
        let n = self.exact.len();
        let ex = self.options.examples;
        self.tokens.as_ref().map(|_| {
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
        })
    }

    /// Which held-out rows (`eval`) also appear among the training rows (`train`): exactly,
    /// after folding, or in one near-duplicate cluster (`near_all`) with one.
    fn leakage(&self, train: &[usize], eval: &[usize], near_all: &[Vec<usize>]) -> Leakage {
        let n = self.exact.len();
        let ex = self.options.examples;
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
        let near_train: HashSet<usize> = train
            .iter()
            .filter_map(|i| near_of.get(i).copied())
            .collect();
        let valid = |i: &&usize| **i < n && self.exact[**i] != NONE;
        let exact_hit = |i: usize| train_exact.binary_search(&self.exact[i]).is_ok();
        let folded_hit = |i: usize| {
            exact_hit(i)
                || (self.folded[i] != NONE && train_folded.binary_search(&self.folded[i]).is_ok())
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
    }
}

/// Copies `u32` figures into a `Vec<usize>` for [`LengthStats::of`].
fn widen(v: &Blocks<u32>) -> Vec<usize> {
    v.iter().map(|x| x as usize).collect()
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
