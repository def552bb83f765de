//! The data report for conversations (chat-model SFT data): what a file of conversations holds
//! and what in it would hurt fine-tuning, with the classifier report's types where the checks
//! are the same ones.
//!
//! Checks: rows that are not conversations; turns per conversation; roles outside
//! [`ROLES`](crate::chat::ROLES) and turns out of order; empty turns, and conversations with no
//! answer or an empty one; lengths in the model's tokens after its chat template, with the
//! share the max length cuts and what each [`Truncation`] policy would do with them; the same
//! prompt exactly, after folding or nearly ([`crate::neardup`]); the same prompt with
//! different answers; personal data in any turn ([`crate::pii`]); and, given a split,
//! held-out conversations whose prompt is also a training prompt. A conversation's *prompt*
//! is every turn before its last answer (the system turn included), its *answer* the last
//! assistant turn. Row numbers are 1-based data rows.
//!
//! Token figures come from a caller's closure ([`ChatMeasure`]), so this crate never knows
//! about models or templates.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::report::{groups, row_set};
use super::{
    ConflictExample, Conflicts, Finding, Groups, InspectOptions, Leakage, LengthStats, PiiReport,
    RowSet, Severity,
};
use crate::chat::{Cut, ROLES, RawConversations, Truncation, Turn};
use crate::hash::text_hash;
use crate::neardup::{self, NearDupSettings};
use crate::pii::{self, PiiKind};
use crate::{DataError, TextEncoding};

/// What a max length does to one conversation: its tokens after the chat template, and its
/// cut under each policy of [`Truncation::ALL`], in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatFit {
    /// Tokens of the rendered conversation, before any cut.
    pub length: usize,
    /// The cut under each policy, in [`Truncation::ALL`]'s order.
    pub cuts: [Cut; 3],
}

/// Measures a conversation with the chosen model's tokenizer and chat template at the report's
/// max length; an error (the template refuses the conversation) is the report's finding.
pub type ChatMeasure<'a> = &'a dyn Fn(&[Turn]) -> Result<ChatFit, String>;

/// What one truncation policy would do with the conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyCounts {
    /// The policy.
    pub truncation: Truncation,
    /// Conversations that fit whole.
    pub whole: usize,
    /// Conversations whose earlier turns or prompt start are cut, the answer whole.
    pub prompt_cut: usize,
    /// Conversations whose answer is cut (part of it still learned).
    pub answer_cut: usize,
    /// Conversations not trained on.
    pub dropped: usize,
}

/// Token figures of conversations, from the chosen model's tokenizer and chat template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatTokenReport {
    /// Tokens per conversation after the chat template, before any cut.
    pub lengths: LengthStats,
    /// The max length the figures below refer to.
    pub max_length: usize,
    /// Conversations longer than `max_length` tokens.
    pub longer: RowSet,
    /// Their share of the measured conversations.
    pub longer_share: f64,
    /// What each policy would do, in [`Truncation::ALL`]'s order.
    pub policies: Vec<PolicyCounts>,
    /// Conversations the chat template refused to render.
    pub template_errors: RowSet,
    /// The first refusal's message.
    pub template_error: Option<String>,
}

/// The report of a file of conversations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatReport {
    /// Data rows read.
    pub rows: usize,
    /// Rows that are conversations (the others are `unreadable`).
    pub conversations: usize,
    /// How the file was decoded.
    pub encoding: TextEncoding,
    /// Under the latin-1 fallback, rows with bytes above 0x7F.
    pub fallback_rows: usize,
    /// Rows that are not conversations (a turn that is not `{role, content}` strings, an
    /// object with neither `messages` nor `prompt` and `response`).
    pub unreadable: RowSet,
    /// The first unreadable row's error.
    pub unreadable_error: Option<String>,
    /// Turns per conversation.
    pub turns: LengthStats,
    /// Conversations with a role outside `system`, `user`, `assistant` (training refuses them).
    pub role_errors: RowSet,
    /// Conversations whose known roles are out of order: a system turn after the first, a user
    /// or assistant turn following one of its own role, or an assistant turn first.
    pub role_order: RowSet,
    /// Conversations with an empty or whitespace-only system or user turn (training refuses
    /// them).
    pub empty_turns: RowSet,
    /// Conversations with no assistant turn (training refuses them).
    pub missing_answers: RowSet,
    /// Conversations with an empty assistant turn (training refuses them).
    pub empty_answers: RowSet,
    /// Conversations sharing a prompt byte for byte.
    pub exact_duplicates: Groups,
    /// Prompts equal after folding case, spaces and punctuation, but not byte-identical.
    pub folded_duplicates: Groups,
    /// Near-duplicate prompt clusters that are not all one folded prompt.
    pub near_duplicates: Groups,
    /// The near-duplicate settings used.
    pub near_settings: NearDupSettings,
    /// The same prompt with different answers.
    pub conflicting_answers: Conflicts,
    /// Token figures, when a model was given.
    pub tokens: Option<ChatTokenReport>,
    /// Conversations with personal data in any turn.
    pub pii: PiiReport,
    /// Held-out conversations whose prompt is also a training prompt, when a split was given.
    pub leakage: Option<Leakage>,
    /// Everything worth acting on, most severe first.
    pub findings: Vec<Finding>,
}

/// A conversation's prompt (every turn before its last answer, as `role: content` lines) and
/// its answer (the last assistant turn), `None` without one.
fn prompt_and_answer(turns: &[Turn]) -> (String, Option<&str>) {
    let last = turns.iter().rposition(|t| t.role == "assistant");
    let before = &turns[..last.unwrap_or(turns.len())];
    let prompt = before
        .iter()
        .map(|t| format!("{}: {}", t.role, t.content))
        .collect::<Vec<_>>()
        .join("\n");
    (prompt, last.map(|i| turns[i].content.as_str()))
}

/// Whether the known roles of `turns` are out of order (see [`ChatReport::role_order`]).
fn out_of_order(turns: &[Turn]) -> bool {
    let mut previous: Option<&str> = None;
    for (i, turn) in turns.iter().enumerate() {
        let role = turn.role.as_str();
        let bad = match role {
            "system" => i > 0,
            "user" | "assistant" => {
                previous == Some(role) || (role == "assistant" && previous.is_none())
            }
            _ => false,
        };
        if bad {
            return true;
        }
        if role != "system" {
            previous = Some(role);
        }
    }
    false
}

/// A prompt as a report quotes it: at most 200 characters.
fn quote(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The report of `data`'s conversations. `split` gives the training and held-out rows of a
/// planned run (indices into `data.rows`) for the leakage check; `measure` gives the token
/// figures at `options.max_length`.
pub fn inspect_chat(
    data: &RawConversations,
    split: Option<(&[usize], &[usize])>,
    options: &InspectOptions,
    measure: Option<ChatMeasure<'_>>,
) -> ChatReport {
    let ex = options.examples;
    let rows = data.rows.len();
    let mut unreadable = Vec::new();
    let mut unreadable_error = None;
    let mut turn_counts = Vec::new();
    let (mut role_errors, mut role_order, mut empty_turns) = (Vec::new(), Vec::new(), Vec::new());
    let (mut missing, mut empty_answers) = (Vec::new(), Vec::new());
    let (mut pii_rows, mut pii_kinds) = (Vec::new(), BTreeMap::<PiiKind, usize>::new());
    let mut lengths = Vec::new();
    let mut longer = Vec::new();
    let mut policies: Vec<PolicyCounts> = Truncation::ALL
        .iter()
        .map(|&truncation| PolicyCounts {
            truncation,
            whole: 0,
            prompt_cut: 0,
            answer_cut: 0,
            dropped: 0,
        })
        .collect();
    let (mut template_errors, mut template_error) = (Vec::new(), None);
    // Per row: the prompt (empty for an unreadable row), its hashes, and the answer.
    let mut prompts: Vec<String> = Vec::with_capacity(rows);
    let mut answers: Vec<Option<String>> = Vec::with_capacity(rows);
    for (row, read) in data.rows.iter().enumerate() {
        let turns = match read {
            Ok(turns) => turns,
            Err(e) => {
                unreadable.push(row);
                unreadable_error.get_or_insert_with(|| e.to_string());
                prompts.push(String::new());
                answers.push(None);
                continue;
            }
        };
        turn_counts.push(turns.len());
        let unknown = turns.iter().any(|t| !ROLES.contains(&t.role.as_str()));
        if unknown {
            role_errors.push(row);
        }
        if out_of_order(turns) {
            role_order.push(row);
        }
        let empty = |t: &Turn| t.content.trim().is_empty();
        let empty_turn = turns.iter().any(|t| t.role != "assistant" && empty(t));
        if empty_turn {
            empty_turns.push(row);
        }
        let has_answer = turns.iter().any(|t| t.role == "assistant");
        let empty_answer = turns.iter().any(|t| t.role == "assistant" && empty(t));
        if !has_answer {
            missing.push(row);
        }
        if empty_answer {
            empty_answers.push(row);
        }
        let mut kinds: Vec<PiiKind> = turns
            .iter()
            .flat_map(|t| pii::find_pii(&t.content))
            .map(|m| m.kind)
            .collect();
        if !kinds.is_empty() {
            pii_rows.push(row);
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                *pii_kinds.entry(k).or_default() += 1;
            }
        }
        // Only conversations training would accept are measured: the template may refuse
        // the others, and the run never sees them.
        let trainable = !unknown && !empty_turn && has_answer && !empty_answer;
        if let (Some(measure), true) = (measure, trainable) {
            match measure(turns) {
                Ok(fit) => {
                    lengths.push(fit.length);
                    if fit.length > options.max_length {
                        longer.push(row);
                    }
                    for (counts, cut) in policies.iter_mut().zip(fit.cuts) {
                        match cut {
                            Cut::Whole => counts.whole += 1,
                            Cut::PromptCut => counts.prompt_cut += 1,
                            Cut::AnswerCut => counts.answer_cut += 1,
                            Cut::Dropped => counts.dropped += 1,
                        }
                    }
                }
                Err(e) => {
                    template_errors.push(row);
                    template_error.get_or_insert(e);
                }
            }
        }
        let (prompt, answer) = prompt_and_answer(turns);
        prompts.push(prompt);
        answers.push(answer.map(str::to_string));
    }

    // Duplicates among the prompts of readable rows: exact, folded, near.
    let readable = |i: &usize| data.rows[*i].is_ok() && !prompts[*i].trim().is_empty();
    let exact_hash: Vec<u64> = prompts.iter().map(|p| text_hash(p).max(1)).collect();
    let folded_text: Vec<String> = prompts.iter().map(|p| neardup::fold(p)).collect();
    let folded_hash: Vec<u64> = folded_text.iter().map(|f| text_hash(f).max(1)).collect();
    let clusters = |hashes: &[u64], keep: &dyn Fn(&usize) -> bool| -> Vec<Vec<usize>> {
        let mut by: HashMap<u64, Vec<usize>> = HashMap::new();
        for i in (0..rows).filter(|i| readable(i) && keep(i)) {
            by.entry(hashes[i]).or_default().push(i);
        }
        let mut out: Vec<Vec<usize>> = by.into_values().filter(|g| g.len() > 1).collect();
        out.sort_by_key(|g| g[0]);
        out
    };
    let exact_groups = clusters(&exact_hash, &|_| true);
    let folded_all = clusters(&folded_hash, &|i| !folded_text[*i].is_empty());
    let folded: Vec<Vec<usize>> = folded_all
        .iter()
        .filter(|g| g.iter().any(|&i| exact_hash[i] != exact_hash[g[0]]))
        .cloned()
        .collect();
    let sample: Vec<usize> = (0..rows)
        .filter(readable)
        .take(options.near_sample)
        .collect();
    let texts: Vec<&str> = sample.iter().map(|&i| prompts[i].as_str()).collect();
    let near_all: Vec<Vec<usize>> = neardup::near_duplicate_groups(&texts, &options.near)
        .into_iter()
        .map(|g| g.into_iter().map(|k| sample[k]).collect())
        .collect();
    let near: Vec<Vec<usize>> = near_all
        .iter()
        .filter(|g| g.iter().any(|&i| folded_hash[i] != folded_hash[g[0]]))
        .cloned()
        .collect();

    // The same prompt with different answers.
    let mut conflicting = Conflicts::default();
    for g in &exact_groups {
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for &i in g {
            if let Some(answer) = &answers[i] {
                *per.entry(answer.clone()).or_default() += 1;
            }
        }
        if per.len() > 1 {
            conflicting.texts += 1;
            conflicting.rows += per.values().sum::<usize>();
            if conflicting.examples.len() < ex {
                conflicting.examples.push(ConflictExample {
                    text: quote(&prompts[g[0]]),
                    labels: per.into_iter().map(|(a, n)| (quote(&a), n)).collect(),
                });
            }
        }
    }

    let leakage = split.map(|(train, eval)| {
        let in_train = |hashes: &[u64]| -> std::collections::HashSet<u64> {
            train
                .iter()
                .filter(|i| **i < rows && readable(i))
                .map(|&i| hashes[i])
                .collect()
        };
        let (train_exact, train_folded) = (in_train(&exact_hash), in_train(&folded_hash));
        let mut cluster_of: HashMap<usize, usize> = HashMap::new();
        for (k, g) in near_all.iter().enumerate() {
            for &i in g {
                cluster_of.insert(i, k);
            }
        }
        let train_clusters: std::collections::HashSet<usize> = train
            .iter()
            .filter_map(|i| cluster_of.get(i).copied())
            .collect();
        let held: Vec<usize> = eval
            .iter()
            .copied()
            .filter(|i| *i < rows && readable(i))
            .collect();
        let exact = |i: usize| train_exact.contains(&exact_hash[i]);
        let folded = |i: usize| {
            exact(i) || (!folded_text[i].is_empty() && train_folded.contains(&folded_hash[i]))
        };
        let near = |i: usize| {
            folded(i)
                || cluster_of
                    .get(&i)
                    .is_some_and(|k| train_clusters.contains(k))
        };
        Leakage {
            exact: row_set(held.iter().copied().filter(|&i| exact(i)), ex),
            folded: row_set(held.iter().copied().filter(|&i| folded(i)), ex),
            near: row_set(held.iter().copied().filter(|&i| near(i)), ex),
        }
    });

    let tokens = measure.map(|_| {
        let longer = row_set(longer, ex);
        ChatTokenReport {
            lengths: LengthStats::of(&lengths),
            max_length: options.max_length,
            longer_share: if lengths.is_empty() {
                0.0
            } else {
                longer.count as f64 / lengths.len() as f64
            },
            longer,
            policies,
            template_errors: row_set(template_errors, ex),
            template_error,
        }
    });

    let mut report = ChatReport {
        rows,
        conversations: rows - unreadable.len(),
        encoding: data.report.encoding,
        fallback_rows: data.report.fallback_rows,
        unreadable: row_set(unreadable, ex),
        unreadable_error,
        turns: LengthStats::of(&turn_counts),
        role_errors: row_set(role_errors, ex),
        role_order: row_set(role_order, ex),
        empty_turns: row_set(empty_turns, ex),
        missing_answers: row_set(missing, ex),
        empty_answers: row_set(empty_answers, ex),
        exact_duplicates: groups(&exact_groups, ex),
        folded_duplicates: groups(&folded, ex),
        near_duplicates: groups(&near, ex),
        near_settings: options.near,
        conflicting_answers: conflicting,
        tokens,
        pii: PiiReport {
            by_kind: pii_kinds,
            rows: row_set(pii_rows, ex),
        },
        leakage,
        findings: Vec::new(),
    };
    report.findings = chat_findings(&report);
    report
}

/// Reads `bytes` as conversations and reports on them ([`inspect_chat`]); an error only when
/// the file itself cannot be read as conversations.
pub fn inspect_chat_bytes(
    bytes: &[u8],
    format: crate::DataFormat,
    split: Option<(&[usize], &[usize])>,
    options: &InspectOptions,
    measure: Option<ChatMeasure<'_>>,
) -> Result<ChatReport, DataError> {
    let data = crate::chat::read_conversations(bytes, format)?;
    Ok(inspect_chat(&data, split, options, measure))
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The findings of a chat report, most severe first.
fn chat_findings(r: &ChatReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let n = r.conversations;
    let mut add = |check, severity, message: String, suggestion: &str, rows: &[usize]| {
        out.push(Finding {
            check,
            severity,
            message,
            suggestion: suggestion.to_string(),
            rows: rows.to_vec(),
        })
    };
    if r.unreadable.count > 0 {
        add(
            "unreadable",
            Severity::Error,
            format!(
                "{} rows are not conversations (first: {})",
                r.unreadable.count,
                r.unreadable_error.as_deref().unwrap_or("")
            ),
            "give each row `messages` (a list of {role, content}) or `prompt` and `response`",
            &r.unreadable.examples,
        );
    }
    if n < 50 {
        add(
            "size",
            Severity::Warning,
            format!("only {n} conversations: fine-tuning needs more examples to generalize"),
            "collect more conversations (a few hundred is a good start)",
            &[],
        );
    }
    if r.fallback_rows > 0 {
        add(
            "encoding",
            Severity::Info,
            format!(
                "the file is not valid UTF-8; it was read as latin-1, which touches {} rows",
                r.fallback_rows
            ),
            "save the file as UTF-8 if you can",
            &[],
        );
    }
    for (check, set, message, suggestion) in [
        (
            "role_errors",
            &r.role_errors,
            "have a role other than system, user or assistant",
            "name every turn's role system, user or assistant; training refuses the others",
        ),
        (
            "empty_turns",
            &r.empty_turns,
            "have an empty system or user turn",
            "fill in or remove the empty turns; training refuses them",
        ),
        (
            "missing_answers",
            &r.missing_answers,
            "have no assistant turn: nothing to learn",
            "add the answer, or drop them; training refuses them",
        ),
        (
            "empty_answers",
            &r.empty_answers,
            "have an empty assistant turn",
            "write the answer, or drop them; training refuses them",
        ),
    ] {
        if set.count > 0 {
            add(
                check,
                Severity::Error,
                format!("{} conversations {message}", set.count),
                suggestion,
                &set.examples,
            );
        }
    }
    if r.role_order.count > 0 {
        add(
            "role_order",
            Severity::Warning,
            format!(
                "{} conversations have turns out of order (a system turn after the first, two \
                 user or two assistant turns in a row, or an assistant turn first)",
                r.role_order.count
            ),
            "alternate user and assistant turns after an optional system turn; many chat \
             templates refuse or garble other orders",
            &r.role_order.examples,
        );
    }
    if let Some(t) = &r.tokens {
        if t.template_errors.count > 0 {
            add(
                "template_errors",
                Severity::Error,
                format!(
                    "the chat template refuses {} conversations (first: {})",
                    t.template_errors.count,
                    t.template_error.as_deref().unwrap_or("")
                ),
                "fix those conversations' roles and order, or give another chat template",
                &t.template_errors.examples,
            );
        }
        if t.longer.count > 0 {
            let policy = |p: Truncation| t.policies.iter().find(|c| c.truncation == p);
            let dropped: Vec<String> = t
                .policies
                .iter()
                .map(|c| {
                    format!(
                        "{} drops {} and cuts {} answers",
                        c.truncation.name(),
                        c.dropped,
                        c.answer_cut
                    )
                })
                .collect();
            let lost = policy(Truncation::KeepAnswer).map_or(0, |c| c.dropped + c.answer_cut);
            add(
                "truncation",
                if lost > 0 || t.longer_share >= 0.05 {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!(
                    "{} conversations ({:.1}%) are longer than {} tokens after the chat \
                     template (longest {}): {}",
                    t.longer.count,
                    100.0 * t.longer_share,
                    t.max_length,
                    t.lengths.max,
                    dropped.join("; ")
                ),
                "keep the keep_answer truncation (the default: it cuts prompts, not answers), \
                 or raise the max length (its memory grows with it) to keep them whole",
                &t.longer.examples,
            );
        }
    }
    let dup = &r.exact_duplicates;
    if dup.groups > 0 {
        add(
            "exact_duplicates",
            if percent(dup.redundant, n) >= 1.0 {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "{} prompts occur more than once: {} conversations, {} of them repeats",
                dup.groups, dup.rows, dup.redundant
            ),
            "deduplicate; repeats overweight those prompts and can leak into evaluation",
            dup.examples.first().map_or(&[], Vec::as_slice),
        );
    }
    if r.folded_duplicates.groups > 0 {
        add(
            "folded_duplicates",
            Severity::Info,
            format!(
                "{} groups of prompts ({} conversations) differ only in case, spacing or \
                 punctuation",
                r.folded_duplicates.groups, r.folded_duplicates.rows
            ),
            "review them; deduplicate if they are copies",
            r.folded_duplicates
                .examples
                .first()
                .map_or(&[], Vec::as_slice),
        );
    }
    if r.near_duplicates.groups > 0 {
        add(
            "near_duplicates",
            Severity::Info,
            format!(
                "{} clusters of near-duplicate prompts ({} conversations; word 3-gram Jaccard \
                 similarity ≥ {})",
                r.near_duplicates.groups, r.near_duplicates.rows, r.near_settings.threshold
            ),
            "review them; deduplicate near matches if they are copies",
            r.near_duplicates
                .examples
                .first()
                .map_or(&[], Vec::as_slice),
        );
    }
    if r.conflicting_answers.texts > 0 {
        add(
            "conflicting_answers",
            Severity::Warning,
            format!(
                "{} prompts have different answers in different conversations ({} \
                 conversations)",
                r.conflicting_answers.texts, r.conflicting_answers.rows
            ),
            "keep one answer per prompt unless the variety is intended",
            &[],
        );
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
                "{} conversations contain personal data ({})",
                r.pii.rows.count,
                kinds.join(", ")
            ),
            "redact it before training; a chat model can memorize and repeat it",
            &r.pii.rows.examples,
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
                "{} held-out conversations have a prompt also in training ({} exactly, {} \
                 after folding, {} as near-duplicates): the validation loss would overstate \
                 how well the model generalizes",
                l.near.count, l.exact.count, l.folded.count, l.near.count
            ),
            "deduplicate the prompts before splitting",
            &l.near.examples,
        );
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/fixtures/chat_report.jsonl`, written by hand with one problem or two per row
    /// (see the fixtures' README); every figure below is counted by hand from it.
    fn fixture() -> RawConversations {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/chat_report.jsonl"
        );
        let bytes = std::fs::read(path).expect("fixture");
        crate::chat::read_conversations(&bytes, crate::DataFormat::Jsonl).expect("reads")
    }

    #[test]
    fn the_chat_report_counts_what_a_hand_count_finds() {
        let data = fixture();
        // A stand-in for a tokenizer: one token per character of the turns' text, and a cut
        // that keeps the answer under keep_answer and drops under the other two policies.
        let measure = |turns: &[Turn]| -> Result<ChatFit, String> {
            let length = turns.iter().map(|t| t.content.chars().count()).sum();
            let cuts = if length > 40 {
                [Cut::PromptCut, Cut::Dropped, Cut::Dropped]
            } else {
                [Cut::Whole; 3]
            };
            Ok(ChatFit { length, cuts })
        };
        let options = InspectOptions {
            max_length: 40,
            ..InspectOptions::default()
        };
        let train: Vec<usize> = (0..14).filter(|i| ![1, 4, 13].contains(i)).collect();
        let r = inspect_chat(&data, Some((&train, &[1, 4, 13])), &options, Some(&measure));
        assert_eq!((r.rows, r.conversations), (14, 13));
        assert_eq!(r.unreadable.examples, [12]);
        assert_eq!((r.turns.min, r.turns.p50, r.turns.max), (2, 2, 3));
        assert!((r.turns.mean - 29.0 / 13.0).abs() < 1e-12);
        assert_eq!(r.role_errors.examples, [8]);
        assert_eq!(r.role_order.examples, [7, 9]);
        assert_eq!(r.empty_turns.examples, [11]);
        assert_eq!(r.missing_answers.examples, [7]);
        assert_eq!(r.empty_answers.examples, [6]);
        let dup = &r.exact_duplicates;
        assert_eq!((dup.groups, dup.rows, dup.redundant), (2, 4, 2));
        assert_eq!(dup.examples, [vec![1, 2], vec![4, 5]]);
        assert_eq!(r.folded_duplicates.examples, [vec![1, 2, 3]]);
        assert_eq!(r.near_duplicates.examples, [vec![13, 14]]);
        assert_eq!(
            (r.conflicting_answers.texts, r.conflicting_answers.rows),
            (1, 2)
        );
        let answers: Vec<&String> = r.conflicting_answers.examples[0].labels.keys().collect();
        assert_eq!(answers, ["Barcelona.", "Madrid."]);
        assert_eq!(r.pii.rows.examples, [10]);
        assert_eq!(r.pii.by_kind.get(&PiiKind::Email), Some(&1));
        let leak = r.leakage.as_ref().expect("split given");
        assert_eq!(leak.exact.examples, [2, 5]);
        assert_eq!(leak.folded.examples, [2, 5]);
        assert_eq!(leak.near.examples, [2, 5, 14]);
        // Only the nine conversations training accepts are measured (rows 1–5, 9, 10, 13,
        // 14: 36, 36, 41, 36, 39, 18, 59, 107 and 93 characters); four are over 40.
        let t = r.tokens.as_ref().expect("measured");
        assert_eq!((t.lengths.min, t.lengths.max), (18, 107));
        assert_eq!(t.longer.examples, [3, 10, 13, 14]);
        assert!((t.longer_share - 4.0 / 9.0).abs() < 1e-12);
        let counts: Vec<[usize; 4]> = t
            .policies
            .iter()
            .map(|p| [p.whole, p.prompt_cut, p.answer_cut, p.dropped])
            .collect();
        assert_eq!(counts, [[5, 4, 0, 0], [5, 0, 0, 4], [5, 0, 0, 4]]);
        // Every problem is a finding, training's refusals as errors.
        let checks: Vec<(&str, Severity)> =
            r.findings.iter().map(|f| (f.check, f.severity)).collect();
        for check in [
            "unreadable",
            "role_errors",
            "empty_turns",
            "missing_answers",
            "empty_answers",
            "leakage",
        ] {
            assert!(
                checks.contains(&(check, Severity::Error)),
                "{check}: {checks:?}"
            );
        }
        for check in [
            "role_order",
            "exact_duplicates",
            "conflicting_answers",
            "personal_data",
            "truncation",
        ] {
            assert!(
                checks.contains(&(check, Severity::Warning)),
                "{check}: {checks:?}"
            );
        }
    }

    #[test]
    fn a_file_of_clean_conversations_has_no_problem_findings() {
        let bytes = b"{\"prompt\": \"Name a colour of the sky.\", \"response\": \"Blue.\"}\n\
                      {\"messages\": [{\"role\": \"user\", \"content\": \"Two plus two?\"}, \
                      {\"role\": \"assistant\", \"content\": \"Four.\"}]}\n";
        let r = inspect_chat_bytes(
            bytes,
            crate::DataFormat::Jsonl,
            None,
            &InspectOptions::default(),
            None,
        )
        .expect("reads");
        let checks: Vec<&str> = r.findings.iter().map(|f| f.check).collect();
        assert_eq!(checks, ["size"]);
        assert!(r.tokens.is_none() && r.leakage.is_none());
    }
}
