//! Supervised fine-tuning (SFT) of a chat model: conversations become token rows through the
//! model's chat template, the loss is the next-token cross-entropy on the assistant's tokens
//! only, and validation reports that loss and its perplexity.
//!
//! - [`tokenize`] renders each conversation with the template and marks which tokens the
//!   assistant wrote (its answer and the end-of-turn marker after it): only those are scored.
//!   A conversation longer than `max_length` is cut as the job's [`Truncation`] says
//!   ([`fit`]): by default the earlier turns and then the start of the prompt go, so the last
//!   answer is kept whole whenever it fits on its own. Every cut and drop is counted
//!   ([`SftReport`]), and the run says so before its first step ([`SftCuts`]).
//! - [`rows`] keeps one conversation per row, or packs several into each row of up to
//!   `max_length` tokens (first fit, in file order). A packed conversation still attends only
//!   to itself and its positions start at 0 ([`LlamaForCausalLM::forward_packed`]), so packing
//!   changes how much padding is computed, not the numbers.
//! - [`Sft`] is the [`Objective`] the generic loop ([`crate::trainer::train_with`]) runs;
//!   [`objective`] builds it for a job.

use burn::module::Module;
use burn::tensor::{Gradients, Int, Tensor, TensorData};
use hearth_data::chat::{Cut, Truncation, Turn};
use hearth_data::quality::ChatFit;
use hearth_models::chat::Message;
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lm_tokenizer::LmTokenizer;
use serde::Serialize;

use crate::batching::Padding;
use crate::collective::Collective;
use crate::job::EarlyStopping;
use crate::loss::{causal_lm_loss, next_token_targets, token_loss};
use crate::metrics::{LanguageModelMetrics, Metrics};
use crate::split::{Assignment, Conversations, SplitData};
use crate::trainer::{BatchLoss, Objective};
use crate::{JobSpec, TrainError};

/// One conversation as tokens: the ids and, for each, whether the loss scores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    /// Token ids of the rendered conversation.
    pub ids: Vec<u32>,
    /// `true` for the assistant's tokens.
    pub scored: Vec<bool>,
}

/// What tokenizing the conversations of one part (training or held-out) found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SftReport {
    /// Conversations read.
    pub conversations: usize,
    /// Conversations cut at `max_length` and kept (`prompt_cut + answer_cut`).
    pub truncated: usize,
    /// Of those, conversations whose earlier turns or prompt start were cut, the answer whole.
    pub prompt_cut: usize,
    /// Of those, conversations whose last answer was cut (part of it is still learned).
    pub answer_cut: usize,
    /// Conversations dropped: nothing of the answer left, or the policy drops long ones.
    pub dropped: usize,
    /// Tokens of the longest conversation before any cut.
    pub longest: usize,
    /// Tokens kept.
    pub tokens: usize,
    /// Tokens scored (the assistant's).
    pub scored_tokens: usize,
}

impl SftReport {
    fn count(&mut self, cut: Cut) {
        match cut {
            Cut::Whole => {}
            Cut::PromptCut => self.prompt_cut += 1,
            Cut::AnswerCut => self.answer_cut += 1,
            Cut::Dropped => self.dropped += 1,
        }
        self.truncated = self.prompt_cut + self.answer_cut;
    }
}

/// What the max length did to a run's conversations, said before the first step (the
/// `started` event carries it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SftCuts {
    /// The policy the run cut with.
    pub truncation: Truncation,
    /// The max length in tokens.
    pub max_length: usize,
    /// The training conversations.
    pub train: SftReport,
    /// The held-out conversations.
    pub eval: SftReport,
    /// What to change when anything was cut or dropped: a larger max length and what it costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl SftCuts {
    /// One line per part and the suggestion, as the CLI prints them before the first step.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (part, r) in [("training", &self.train), ("held-out", &self.eval)] {
            if r.conversations == 0 {
                continue;
            }
            let kept = r.conversations - r.dropped;
            lines.push(format!(
                "{part}: {kept} of {} conversations used at max length {} \
                 (truncation {}): {} whole, {} with the prompt cut and the answer kept, \
                 {} with the answer cut, {} dropped",
                r.conversations,
                self.max_length,
                self.truncation.name(),
                kept - r.truncated,
                r.prompt_cut,
                r.answer_cut,
                r.dropped
            ));
        }
        lines.extend(self.suggestion.clone());
        lines
    }
}

/// An estimate of the activation memory a micro-batch of `rows` rows of `len` tokens keeps
/// for the backward pass of a Llama-family decoder, in f32: per layer and token the inputs of
/// the two norms, the query, key, value and attention output, two residuals and the MLP's four
/// intermediate tensors, the attention scores and probabilities (`heads × len`), and the
/// logits with their log-softmax. A guide for choosing a max length, not a measurement.
pub fn activation_bytes(
    config: &hearth_models::llama::LlamaConfig,
    rows: usize,
    len: usize,
) -> u64 {
    let h = config.hidden_size as u64;
    let heads = config.num_attention_heads as u64;
    let kv_heads = config
        .num_key_value_heads
        .unwrap_or(config.num_attention_heads) as u64;
    let kv = kv_heads * (h / heads.max(1));
    let per_layer = 6 * h + 2 * kv + 4 * config.intermediate_size as u64 + 2 * heads * len as u64;
    let per_token = config.num_hidden_layers as u64 * per_layer + 2 * config.vocab_size as u64;
    4 * rows as u64 * len as u64 * per_token
}

/// The suggestion of [`SftCuts`]: when a conversation was cut or dropped, the max length that
/// keeps every one whole and the activation memory it needs beside the current one's.
pub fn suggestion(
    cuts: &SftCuts,
    config: &hearth_models::llama::LlamaConfig,
    batch_size: usize,
) -> Option<String> {
    let (t, e) = (&cuts.train, &cuts.eval);
    if t.truncated + t.dropped + e.truncated + e.dropped == 0 {
        return None;
    }
    let longest = t.longest.max(e.longest);
    let mib = |len| activation_bytes(config, batch_size, len) as f64 / (1u64 << 20) as f64;
    let policy = match cuts.truncation {
        Truncation::KeepAnswer => String::new(),
        other => format!(
            ", or the keep_answer truncation (now {}) cuts prompts and keeps the answers",
            other.name()
        ),
    };
    Some(format!(
        "suggestion: a max length of {longest} keeps every conversation whole; its \
         activations need about {:.0} MiB per micro-batch of {batch_size} instead of about {:.0} MiB at {}{policy}",
        mib(longest),
        mib(cuts.max_length),
        cuts.max_length
    ))
}

/// The turns of a conversation as the chat template reads them.
pub fn messages(turns: &[Turn]) -> Vec<Message> {
    turns
        .iter()
        .map(|t| Message {
            role: t.role.clone(),
            content: t.content.clone(),
        })
        .collect()
}

/// Renders and tokenizes every conversation, marking the assistant's tokens; cuts each to
/// `max_length` tokens under `policy` ([`fit`]) and counts what was cut and dropped.
pub fn tokenize(
    tokenizer: &LmTokenizer,
    conversations: &[Vec<Turn>],
    max_length: usize,
    policy: Truncation,
) -> Result<(Vec<Tokenized>, SftReport), TrainError> {
    let mut report = SftReport {
        conversations: conversations.len(),
        ..SftReport::default()
    };
    let mut out = Vec::with_capacity(conversations.len());
    for turns in conversations {
        let fitted = fit(tokenizer, turns, max_length, policy)?;
        report.count(fitted.cut);
        report.longest = report.longest.max(fitted.length);
        if let Some(example) = fitted.example {
            report.tokens += example.ids.len();
            report.scored_tokens += example.scored.iter().skip(1).filter(|&&s| s).count();
            out.push(example);
        }
    }
    Ok((out, report))
}

/// What `max_length` does to one conversation under every policy ([`fit`] under each of
/// [`Truncation::ALL`]), for the data report.
pub fn measure(
    tokenizer: &LmTokenizer,
    turns: &[Turn],
    max_length: usize,
) -> Result<ChatFit, TrainError> {
    let mut fit_all = ChatFit {
        length: 0,
        cuts: [Cut::Whole; 3],
    };
    for (cut, policy) in fit_all.cuts.iter_mut().zip(Truncation::ALL) {
        let fitted = fit(tokenizer, turns, max_length, policy)?;
        *cut = fitted.cut;
        fit_all.length = fitted.length;
    }
    Ok(fit_all)
}

/// One conversation fitted to a max length ([`fit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The tokens to train on; `None` when the conversation is dropped.
    pub example: Option<Tokenized>,
    /// What the cut did.
    pub cut: Cut,
    /// Tokens of the whole conversation before any cut.
    pub length: usize,
}

/// Whether anything is scored: position 0 predicts nothing, so its token never counts.
fn scored_count(scored: &[bool]) -> usize {
    scored.iter().skip(1).filter(|&&s| s).count()
}

/// `ids` cut to `max_length` from the right; `cut` when nothing scored was lost, else
/// [`Cut::AnswerCut`], or [`Cut::Dropped`] when nothing scored is left.
fn cut_right(
    mut ids: Vec<u32>,
    mut scored: Vec<bool>,
    max_length: usize,
    cut: Cut,
) -> (Option<Tokenized>, Cut) {
    let before = scored_count(&scored);
    ids.truncate(max_length);
    scored.truncate(max_length);
    let after = scored_count(&scored);
    let cut = match after {
        0 => return (None, Cut::Dropped),
        n if n == before => cut,
        _ => Cut::AnswerCut,
    };
    (Some(Tokenized { ids, scored }), cut)
}

/// One conversation as tokens of at most `max_length`, cut under `policy`:
///
/// - `keep_answer`: turns after the last answer go first (nothing in them is scored), then
///   whole earlier exchanges from the front (the next turn kept is a user turn, so the roles
///   still alternate), then the text of the prompt from its start, and only if the answer still
///   does not fit beside it the text of the system prompt from its start; the template's role
///   headers and end-of-turn markers stay. If even then it is too long, the answer itself is
///   longer than the max length: its end is cut (with the end-of-turn marker, so the model is
///   not taught to stop there).
/// - `keep_start`: the first `max_length` tokens.
/// - `drop`: a conversation that does not fit is dropped.
///
/// A conversation left with no scored token is dropped.
pub fn fit(
    tokenizer: &LmTokenizer,
    turns: &[Turn],
    max_length: usize,
    policy: Truncation,
) -> Result<Fitted, TrainError> {
    let (ids, scored) = tokenizer.chat_with_mask(&messages(turns))?;
    let length = ids.len();
    let done = |(example, cut): (Option<Tokenized>, Cut)| Fitted {
        example,
        cut,
        length,
    };
    if length <= max_length {
        return Ok(done(if scored_count(&scored) == 0 {
            (None, Cut::Dropped)
        } else {
            (Some(Tokenized { ids, scored }), Cut::Whole)
        }));
    }
    let cut = match policy {
        Truncation::Drop => (None, Cut::Dropped),
        Truncation::KeepStart => cut_right(ids, scored, max_length, Cut::PromptCut),
        Truncation::KeepAnswer => keep_answer(tokenizer, turns, max_length)?,
    };
    Ok(done(cut))
}

/// [`fit`]'s `keep_answer` cut of a conversation longer than `max_length`.
fn keep_answer(
    tokenizer: &LmTokenizer,
    turns: &[Turn],
    max_length: usize,
) -> Result<(Option<Tokenized>, Cut), TrainError> {
    let Some(last) = turns.iter().rposition(|t| t.role == "assistant") else {
        return Ok((None, Cut::Dropped));
    };
    let system = turns
        .iter()
        .take_while(|t| t.role == "system")
        .count()
        .min(last);
    let with = |first: usize| -> Vec<Turn> {
        turns[..system]
            .iter()
            .chain(&turns[first..=last])
            .cloned()
            .collect()
    };
    // Whole turns from the front: every start that keeps a user turn first.
    let starts: Vec<usize> = (system..last)
        .filter(|&k| k == system || turns[k].role == "user")
        .collect();
    for &first in &starts {
        let (ids, scored) = tokenizer.chat_with_mask(&messages(&with(first)))?;
        if ids.len() <= max_length {
            return Ok(if scored_count(&scored) == 0 {
                (None, Cut::Dropped)
            } else {
                (Some(Tokenized { ids, scored }), Cut::PromptCut)
            });
        }
    }
    // The last exchange alone is too long: cut text, the prompt's first.
    let first = starts.last().copied().unwrap_or(last);
    let kept = with(first);
    let encoding = tokenizer.chat_with_contents(&messages(&kept))?;
    let answer = kept.len() - 1;
    let prompt = (system..answer).chain(0..system);
    let removable: Vec<usize> = prompt
        .filter_map(|m| encoding.contents.get(m).cloned().flatten())
        .flatten()
        .collect();
    let excess = encoding.ids.len() - max_length.min(encoding.ids.len());
    let mut drop = vec![false; encoding.ids.len()];
    for &p in removable.iter().take(excess) {
        drop[p] = true;
    }
    let (ids, scored): (Vec<u32>, Vec<bool>) = encoding
        .ids
        .iter()
        .zip(&encoding.scored)
        .zip(&drop)
        .filter(|(_, gone)| !**gone)
        .map(|((&id, &s), _)| (id, s))
        .unzip();
    Ok(cut_right(ids, scored, max_length, Cut::PromptCut))
}

/// Training or evaluation rows: one conversation per row, or (`packing`) several per row of
/// at most `max_length` tokens. Each row lists its conversations by index.
pub fn rows(examples: &[Tokenized], packing: bool, max_length: usize) -> Vec<Vec<usize>> {
    if !packing {
        return (0..examples.len()).map(|i| vec![i]).collect();
    }
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        let len = e.ids.len();
        match rows.iter_mut().find(|(used, _)| used + len <= max_length) {
            Some((used, members)) => {
                *used += len;
                members.push(i);
            }
            None => rows.push((len, vec![i])),
        }
    }
    rows.into_iter().map(|(_, members)| members).collect()
}

/// A batch of rows on the host: ids `[batch, seq]` padded with `pad_id`, the conversation of
/// every position (1-based within its row, 0 for padding) and the label of every position
/// (its token where scored).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rows.
    pub batch: usize,
    /// Length of the longest row.
    pub seq: usize,
    /// Token ids.
    pub ids: Vec<i64>,
    /// Conversation number of every position; 0 is padding.
    pub segments: Vec<u32>,
    /// The token to predict at each position, `None` where nothing is scored.
    pub labels: Vec<Option<usize>>,
}

impl Batch {
    /// The rows `members` of `examples`, padded to the longest.
    pub fn new(examples: &[Tokenized], members: &[&[usize]], pad_id: u32) -> Self {
        Self::padded(examples, members, pad_id, Padding::LONGEST)
    }

    /// The rows `members` of `examples`, padded to the longest as `padding` rounds it up.
    pub fn padded(
        examples: &[Tokenized],
        members: &[&[usize]],
        pad_id: u32,
        padding: Padding,
    ) -> Self {
        let lengths: Vec<usize> = members
            .iter()
            .map(|row| row.iter().map(|&i| examples[i].ids.len()).sum())
            .collect();
        let seq = padding.length(lengths.iter().copied().max().unwrap_or(0).max(1));
        let batch = members.len();
        let mut out = Self {
            batch,
            seq,
            ids: Vec::with_capacity(batch * seq),
            segments: Vec::with_capacity(batch * seq),
            labels: Vec::with_capacity(batch * seq),
        };
        for (row, len) in members.iter().zip(&lengths) {
            for (n, &i) in row.iter().enumerate() {
                let e = &examples[i];
                out.ids.extend(e.ids.iter().map(|&id| i64::from(id)));
                out.segments
                    .extend(std::iter::repeat_n(n as u32 + 1, e.ids.len()));
                out.labels.extend(
                    e.ids
                        .iter()
                        .zip(&e.scored)
                        .map(|(&id, &s)| s.then_some(id as usize)),
                );
            }
            out.ids
                .extend(std::iter::repeat_n(i64::from(pad_id), seq - len));
            out.segments.extend(std::iter::repeat_n(0, seq - len));
            out.labels.extend(std::iter::repeat_n(None, seq - len));
        }
        out
    }

    /// Tokens that are not padding.
    pub fn real_tokens(&self) -> usize {
        self.segments.iter().filter(|&&s| s != 0).count()
    }

    /// Positions whose next token is scored.
    pub fn scored_tokens(&self) -> usize {
        (0..self.batch)
            .map(|b| {
                self.labels[b * self.seq + 1..(b + 1) * self.seq]
                    .iter()
                    .filter(|l| l.is_some())
                    .count()
            })
            .sum()
    }

    /// The token ids `[batch, seq]` on `model`'s device.
    fn ids_tensor(&self, model: &LlamaForCausalLM) -> Result<Tensor<2, Int>, TrainError> {
        let device = model
            .devices()
            .into_iter()
            .next()
            .ok_or_else(|| TrainError::Job("the model has no parameters".into()))?;
        Ok(Tensor::<2, Int>::from_data(
            TensorData::new(self.ids.clone(), [self.batch, self.seq]),
            &device,
        ))
    }

    /// The mean loss over the scored tokens of `model` on this batch.
    pub fn loss(&self, model: &LlamaForCausalLM) -> Result<Tensor<1>, TrainError> {
        let logits = model.forward_packed(self.ids_tensor(model)?, &self.segments);
        Ok(causal_lm_loss(logits, &self.labels))
    }

    /// [`Self::loss`] with gradient checkpointing
    /// ([`LlamaForCausalLM::backward_packed_checkpointed`]): the gradients of `scale(loss)`
    /// go to `sink` in parts, and the loss comes back untracked.
    pub fn checkpointed_gradients(
        &self,
        model: &LlamaForCausalLM,
        scale: &dyn Fn(Tensor<1>) -> Tensor<1>,
        sink: &mut dyn FnMut(Gradients),
    ) -> Result<Tensor<1>, TrainError> {
        let ids = self.ids_tensor(model)?;
        let targets = next_token_targets(&self.labels, self.batch, self.seq);
        let scored = self.scored_tokens();
        // The loss itself, for the step's report; its scaled shares are backpropagated.
        let loss = std::cell::RefCell::new(Tensor::<1>::zeros([1], &ids.device()));
        model.backward_packed_checkpointed(
            ids,
            &self.segments,
            logits_chunk(model.vocab_size()),
            &|logits, at| {
                let share = token_loss(logits, &targets[at], scored);
                loss.replace_with(|sum| sum.clone() + share.clone().detach());
                scale(share)
            },
            sink,
        );
        Ok(loss.into_inner())
    }
}

/// The most bytes of logits a checkpointed step holds at once.
const LOGITS_CHUNK_BYTES: usize = 16 << 20;

/// Positions whose f32 logits over `vocab` tokens fit [`LOGITS_CHUNK_BYTES`] (one at least): the
/// chunk a checkpointed step runs the head and the loss on. SmolLM2's 49,152 tokens: 85.
pub fn logits_chunk(vocab: usize) -> usize {
    (LOGITS_CHUNK_BYTES / (4 * vocab.max(1))).max(1)
}

/// The SFT objective: the training and held-out rows of tokenized conversations.
#[derive(Debug)]
pub struct Sft {
    /// Tokenized training conversations.
    pub train: Vec<Tokenized>,
    /// The training rows (conversation indices, one or packed).
    pub train_rows: Vec<Vec<usize>>,
    /// Tokenized held-out conversations.
    pub eval: Vec<Tokenized>,
    /// The held-out rows.
    pub eval_rows: Vec<Vec<usize>>,
    /// The padding token.
    pub pad_id: u32,
    /// Rows per evaluation batch.
    pub eval_batch: usize,
    /// How far batches are padded ([`Padding::LONGEST`] unless the run sets its bucket).
    pub padding: Padding,
    /// What the max length did to the conversations, for the `started` event.
    pub cuts: Option<SftCuts>,
    /// Gradient checkpointing (`train.gradient_checkpointing`): each decoder layer recomputed
    /// in the backward pass, the logits computed a few positions at a time
    /// ([`LlamaForCausalLM::backward_packed_checkpointed`]).
    pub checkpointing: bool,
}

impl Sft {
    /// Training and held-out conversations in rows of `max_length` (packed or not).
    pub fn new(
        train: Vec<Tokenized>,
        eval: Vec<Tokenized>,
        packing: bool,
        max_length: usize,
        pad_id: u32,
        eval_batch: usize,
    ) -> Self {
        Self {
            train_rows: rows(&train, packing, max_length),
            eval_rows: rows(&eval, packing, max_length),
            train,
            eval,
            pad_id,
            eval_batch: eval_batch.max(1),
            padding: Padding::LONGEST,
            cuts: None,
            checkpointing: false,
        }
    }

    /// The training rows `rows`, padded into one batch on the host.
    fn train_batch(&self, rows: &[usize]) -> Batch {
        let members: Vec<&[usize]> = rows
            .iter()
            .map(|&r| self.train_rows[r].as_slice())
            .collect();
        Batch::padded(&self.train, &members, self.pad_id, self.padding)
    }
}

/// The mean loss per scored token of `model` (dropout off) over `rows` of `examples`, and
/// its perplexity.
pub async fn evaluate_lm(
    model: &LlamaForCausalLM,
    examples: &[Tokenized],
    rows: &[Vec<usize>],
    pad_id: u32,
    padding: Padding,
    batch_size: usize,
) -> Result<LanguageModelMetrics, TrainError> {
    let model = model.valid();
    let (mut total, mut tokens) = (0.0f64, 0usize);
    for chunk in rows.chunks(batch_size.max(1)) {
        let members: Vec<&[usize]> = chunk.iter().map(Vec::as_slice).collect();
        let batch = Batch::padded(examples, &members, pad_id, padding);
        let scored = batch.scored_tokens();
        if scored == 0 {
            continue;
        }
        let loss = batch.loss(&model)?;
        let value = loss
            .into_data_async()
            .await
            .map_err(|e| TrainError::Device(format!("{e:?}")))?
            .convert::<f64>()
            .try_into_vec::<f64>()
            .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        total += value.first().copied().unwrap_or(f64::NAN) * scored as f64;
        tokens += scored;
    }
    let loss = if tokens == 0 {
        f64::NAN
    } else {
        total / tokens as f64
    };
    Ok(LanguageModelMetrics {
        n: rows.len(),
        tokens,
        loss,
        perplexity: loss.exp(),
    })
}

impl Objective for Sft {
    type Model = LlamaForCausalLM;

    /// The base model's validation loss, before any step, is the figure a run is judged by.
    fn evaluate_first(&self) -> bool {
        true
    }

    fn train_rows(&self) -> usize {
        self.train_rows.len()
    }

    fn conversations(&self) -> Option<SftCuts> {
        self.cuts.clone()
    }

    fn eval_rows(&self) -> usize {
        self.eval_rows.len()
    }

    fn batch_loss(&self, model: &Self::Model, rows: &[usize]) -> Result<BatchLoss, TrainError> {
        let batch = self.train_batch(rows);
        Ok(BatchLoss {
            loss: batch.loss(model)?,
            real_tokens: batch.real_tokens(),
            padded_tokens: batch.batch * batch.seq,
        })
    }

    fn batch_gradients(
        &self,
        model: &Self::Model,
        rows: &[usize],
        scale: &dyn Fn(Tensor<1>) -> Tensor<1>,
        sink: &mut dyn FnMut(Gradients),
    ) -> Result<BatchLoss, TrainError> {
        if !self.checkpointing {
            return crate::trainer::whole_batch_gradients(self, model, rows, scale, sink);
        }
        let batch = self.train_batch(rows);
        Ok(BatchLoss {
            loss: batch.checkpointed_gradients(model, scale, sink)?,
            real_tokens: batch.real_tokens(),
            padded_tokens: batch.batch * batch.seq,
        })
    }

    fn mean_over(&self, rows: &[usize]) -> usize {
        self.train_batch(rows).scored_tokens()
    }

    fn row_lengths(&self) -> Option<Vec<usize>> {
        Some(
            self.train_rows
                .iter()
                .map(|row| row.iter().map(|&i| self.train[i].ids.len()).sum())
                .collect(),
        )
    }

    async fn evaluate(
        &self,
        model: &Self::Model,
        collective: &dyn Collective,
    ) -> Result<Metrics, TrainError> {
        if collective.size() == 1 {
            return Ok(Metrics::LanguageModel(
                evaluate_lm(
                    model,
                    &self.eval,
                    &self.eval_rows,
                    self.pad_id,
                    self.padding,
                    self.eval_batch,
                )
                .await?,
            ));
        }
        // Each rank scores its share of the rows; the loss sums and token counts add up.
        let n = self.eval_rows.len();
        let mine: Vec<Vec<usize>> = crate::collective::shard(n, collective)
            .map(|i| self.eval_rows[i].clone())
            .collect();
        let part = evaluate_lm(
            model,
            &self.eval,
            &mine,
            self.pad_id,
            self.padding,
            self.eval_batch,
        )
        .await?;
        let total = if part.tokens == 0 {
            0.0
        } else {
            part.loss * part.tokens as f64
        };
        let mut sums = [total, part.tokens as f64];
        collective.sum_f64(&mut sums)?;
        let loss = if sums[1] == 0.0 {
            f64::NAN
        } else {
            sums[0] / sums[1]
        };
        Ok(Metrics::LanguageModel(LanguageModelMetrics {
            n,
            tokens: sums[1] as usize,
            loss,
            perplexity: loss.exp(),
        }))
    }

    fn stop_value(&self, rule: &EarlyStopping, metrics: &Metrics) -> Option<f64> {
        rule.metric
            .unwrap_or(crate::job::StopMetric::Loss)
            .of(metrics)
    }

    async fn trained_weights(
        &self,
        model: &Self::Model,
        _strategy: hearth_models::Strategy,
    ) -> Result<Vec<u8>, TrainError> {
        Ok(hearth_models::peft::export_adapter(model).await?)
    }
}

/// Reads the job's conversations from the file's bytes and holds out `data.eval_rows` (or
/// `data.eval_fraction`) of them after the seeded shuffle every Hearth split uses.
pub fn load_conversations(
    job: &JobSpec,
    bytes: &[u8],
) -> Result<SplitData<Conversations>, TrainError> {
    let format = crate::split::data_format(job)?;
    let conversations = hearth_data::chat::load_conversations(bytes, format)?;
    let n = conversations.items.len();
    let split = hearth_data::holdout_split(n, job.eval_rows(n), job.train.seed)?;
    let pick = |idx: &[usize]| -> Conversations {
        idx.iter()
            .map(|&i| conversations.items[i].clone())
            .collect()
    };
    Ok(SplitData {
        train: pick(&split.train),
        eval: pick(&split.eval),
        test: Vec::new(),
        labels: Vec::new(),
        class_counts: Vec::new(),
        rows: n,
        report: conversations.report,
        assignment: Assignment {
            method: crate::SplitMethod::Holdout,
            seed: job.train.seed,
            train: split.train,
            validation: split.eval,
            test: Vec::new(),
            augmented: 0,
        },
    })
}

/// The SFT objective of `job` on `data`: the conversations tokenized with `tokenizer`'s chat
/// template and cut to `train.max_length` under `task.truncation`, in rows (packed or not),
/// and what cutting did to each part (its suggestion is the caller's, who knows the model).
pub fn objective(
    job: &JobSpec,
    tokenizer: &LmTokenizer,
    data: &SplitData<Conversations>,
) -> Result<(Sft, SftCuts), TrainError> {
    let crate::Task::Sft {
        packing,
        truncation,
        ..
    } = job.task
    else {
        return Err(TrainError::Job("the job's task is not sft".into()));
    };
    let max_length = job.train.max_length;
    let (train, train_report) = tokenize(tokenizer, &data.train, max_length, truncation)?;
    let (eval, eval_report) = tokenize(tokenizer, &data.eval, max_length, truncation)?;
    if train.is_empty() {
        return Err(TrainError::Job(format!(
            "no training conversation has an assistant token within train.max_length \
             {max_length} under task.truncation = \"{}\" ({} dropped)",
            truncation.name(),
            train_report.dropped
        )));
    }
    let cuts = SftCuts {
        truncation,
        max_length,
        train: train_report,
        eval: eval_report,
        suggestion: None,
    };
    let mut sft = Sft::new(
        train,
        eval,
        packing,
        max_length,
        tokenizer.pad_id().unwrap_or(0),
        job.train.batch_size,
    );
    sft.cuts = Some(cuts.clone());
    sft.checkpointing = job.train.gradient_checkpointing;
    Ok((sft, cuts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(ids: &[u32], scored: &[bool]) -> Tokenized {
        Tokenized {
            ids: ids.to_vec(),
            scored: scored.to_vec(),
        }
    }

    /// SmolLM2-135M-Instruct's tokenizer and chat template (ChatML, with a default system turn
    /// written when a conversation has none).
    fn smollm2() -> LmTokenizer {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        let bytes = std::fs::read(path).expect("SmolLM2's GGUF: run scripts/fetch-assets.sh");
        LmTokenizer::from_gguf_bytes(&bytes).expect("tokenizer")
    }

    fn turns(pairs: &[(&str, &str)]) -> Vec<Turn> {
        pairs
            .iter()
            .map(|(role, content)| Turn {
                role: (*role).into(),
                content: (*content).into(),
            })
            .collect()
    }

    /// The committed long conversations: a spam-or-ham question over an e-mail of a few
    /// hundred tokens, answered in one word (`scripts/fixtures/long_emails.py`).
    fn long_emails() -> Vec<Vec<Turn>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/long_emails_sft.jsonl"
        );
        let bytes = std::fs::read(path).expect("fixture");
        hearth_data::chat::load_conversations(&bytes, hearth_data::DataFormat::Jsonl)
            .expect("loads")
            .items
    }

    #[test]
    fn keep_answer_cuts_the_prompt_start_and_keeps_every_answer() {
        let tokenizer = smollm2();
        let conversations = long_emails();
        let max = 128;
        for convo in &conversations {
            let fitted = fit(&tokenizer, convo, max, Truncation::KeepAnswer).expect("fits");
            assert_eq!(fitted.cut, Cut::PromptCut);
            assert!(fitted.length > max, "the fixture's conversations are long");
            let kept = fitted.example.expect("kept");
            assert_eq!(kept.ids.len(), max);
            // The kept tokens: everything before the prompt's text (the system turn, or the
            // template's default one, and the user header), the prompt's last tokens, then
            // everything after it unchanged: the end of the user turn, the assistant header,
            // the answer and its end-of-turn marker.
            let whole = tokenizer
                .chat_with_contents(&messages(convo))
                .expect("encodes");
            let prompt = whole.contents[convo.len() - 2].clone().expect("located");
            let keep = max - (whole.ids.len() - prompt.len());
            let expected: Vec<u32> = whole.ids[..prompt.start]
                .iter()
                .chain(&whole.ids[prompt.end - keep..])
                .copied()
                .collect();
            assert_eq!(kept.ids, expected);
            let answer: Vec<u32> = kept
                .ids
                .iter()
                .zip(&kept.scored)
                .filter(|(_, s)| **s)
                .map(|(&id, _)| id)
                .collect();
            let text = tokenizer.decode(&answer, false).expect("decodes");
            let want = format!("{}<|im_end|>", convo[convo.len() - 1].content);
            assert_eq!(text, want);
            let head = tokenizer.decode(&kept.ids[..4], false).expect("decodes");
            assert!(head.starts_with("<|im_start|>system\n"), "{head}");
        }
        // Today's cut from the right loses every answer; `drop` drops every conversation.
        for (policy, dropped) in [(Truncation::KeepStart, 80), (Truncation::Drop, 80)] {
            let (kept, report) = tokenize(&tokenizer, &conversations, max, policy).expect("ok");
            assert_eq!(
                (report.dropped, kept.len()),
                (dropped, 80 - dropped),
                "{policy:?}"
            );
        }
        let (kept, report) =
            tokenize(&tokenizer, &conversations, max, Truncation::KeepAnswer).expect("ok");
        assert_eq!(kept.len(), 80);
        assert_eq!(
            (report.prompt_cut, report.answer_cut, report.dropped),
            (80, 0, 0)
        );
        assert_eq!(report.truncated, 80);
    }

    #[test]
    fn keep_answer_drops_earlier_turns_whole_and_cuts_a_long_answer() {
        let tokenizer = smollm2();
        let long = "word ".repeat(60);
        let convo = turns(&[
            ("user", "Tell me a story."),
            ("assistant", long.trim()),
            ("user", "Thanks. Is it over?"),
            ("assistant", "Yes."),
        ]);
        let whole = tokenizer.chat_with_mask(&messages(&convo)).expect("ok").0;
        let last = tokenizer
            .chat_with_mask(&messages(&convo[2..]))
            .expect("ok")
            .0;
        assert!(last.len() < 60 && whole.len() > 60);
        let fitted = fit(&tokenizer, &convo, 60, Truncation::KeepAnswer).expect("fits");
        // The first exchange goes whole: what is left is the last exchange as the template
        // writes it alone (its default system turn included).
        assert_eq!(fitted.cut, Cut::PromptCut);
        assert_eq!(fitted.example.expect("kept").ids, last);
        // An answer longer than the max length on its own is cut at its end and counted.
        let convo = turns(&[("user", "Count."), ("assistant", long.trim())]);
        let fitted = fit(&tokenizer, &convo, 40, Truncation::KeepAnswer).expect("fits");
        assert_eq!(fitted.cut, Cut::AnswerCut);
        let kept = fitted.example.expect("kept");
        assert_eq!(kept.ids.len(), 40);
        let text = tokenizer.decode(&kept.ids, false).expect("decodes");
        // The prompt's text went first (its turn's header and end marker stay), then the
        // answer's end with its end-of-turn marker.
        assert!(
            text.contains("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\nword word"),
            "{text}"
        );
        assert!(text.ends_with("word"), "{text}");
        let (_, report) = tokenize(&tokenizer, &[convo], 40, Truncation::KeepAnswer).expect("ok");
        assert_eq!(
            (report.answer_cut, report.truncated, report.dropped),
            (1, 1, 0)
        );
    }

    #[test]
    fn packing_fills_rows_first_fit_in_order() {
        let e = [
            ex(&[1; 5], &[false; 5]),
            ex(&[1; 4], &[false; 4]),
            ex(&[1; 3], &[false; 3]),
            ex(&[1; 2], &[false; 2]),
        ];
        assert_eq!(rows(&e, false, 8), [vec![0], vec![1], vec![2], vec![3]]);
        assert_eq!(rows(&e, true, 8), [vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn a_batch_pads_segments_and_labels() {
        let e = [
            ex(&[1, 2, 3], &[false, true, true]),
            ex(&[4, 5], &[false, true]),
            ex(&[6], &[false]),
        ];
        let b = Batch::new(&e, &[&[0, 1], &[2]], 0);
        assert_eq!((b.batch, b.seq), (2, 5));
        assert_eq!(b.ids, [1, 2, 3, 4, 5, 6, 0, 0, 0, 0]);
        assert_eq!(b.segments, [1, 1, 1, 2, 2, 1, 0, 0, 0, 0]);
        assert_eq!(
            b.labels,
            [
                None,
                Some(2),
                Some(3),
                None,
                Some(5),
                None,
                None,
                None,
                None,
                None
            ]
        );
        assert_eq!(b.real_tokens(), 6);
        assert_eq!(b.scored_tokens(), 3);
    }
}
