//! Opt-in cleaning: each step is chosen by the user and reports what it changed.
//!
//! Steps run in a fixed order, each on the result of the one before: repair encoding damage,
//! Unicode NFKC, trim and collapse whitespace, redact personal data, drop empty texts, resolve
//! conflicting labels, deduplicate. Rows keep their file order; `kept` maps every surviving row
//! back to its row in the file.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::neardup::{self, NearDupSettings};
use crate::{mojibake, pii};

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
