//! The findings of a quality report: which figures are worth acting on, how much each matters,
//! and what to do about it, in plain words.

use super::{Finding, QualityReport, Severity};

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `high` when `worse`, else `low`: the severity of a finding that grows with its figures.
fn escalate(worse: bool, high: Severity, low: Severity) -> Severity {
    if worse { high } else { low }
}

/// The findings of a report, most severe first.
pub(super) fn findings(r: &QualityReport) -> Vec<Finding> {
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
            escalate(share >= 1.0, Severity::Warning, Severity::Info),
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
                escalate(
                    l.imbalance_ratio >= 10.0,
                    Severity::Error,
                    Severity::Warning,
                ),
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
                format!(
                    "classes with fewer than 10 rows: {}",
                    crate::shown_list(&small)
                ),
                "collect more examples of them or merge them into a related class",
                Vec::new(),
            );
        }
    }
    if let Some(t) = &r.tokens {
        if t.truncated.count > 0 {
            add(
                "truncation",
                escalate(t.truncated_share >= 0.05, Severity::Warning, Severity::Info),
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
            escalate(l.exact.count > 0, Severity::Error, Severity::Warning),
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
