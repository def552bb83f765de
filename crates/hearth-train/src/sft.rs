//! Supervised fine-tuning (SFT) of a chat model: conversations become token rows through the
//! model's chat template, the loss is the next-token cross-entropy on the assistant's tokens
//! only, and validation reports that loss and its perplexity.
//!
//! - [`tokenize`] renders each conversation with the template and marks which tokens the
//!   assistant wrote (its answer and the end-of-turn marker after it): only those are scored.
//!   A conversation longer than `max_length` is cut at the end; one left with no assistant
//!   token is dropped and counted.
//! - [`rows`] keeps one conversation per row, or packs several into each row of up to
//!   `max_length` tokens (first fit, in file order). A packed conversation still attends only
//!   to itself and its positions start at 0 ([`LlamaForCausalLM::forward_packed`]), so packing
//!   changes how much padding is computed, not the numbers.
//! - [`Sft`] is the [`Objective`] the generic loop ([`crate::trainer::train_with`]) runs;
//!   [`objective`] builds it for a job.

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use hearth_data::chat::Turn;
use hearth_models::chat::Message;
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lm_tokenizer::LmTokenizer;
use serde::Serialize;

use crate::collective::Collective;
use crate::job::EarlyStopping;
use crate::loss::causal_lm_loss;
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

/// What tokenizing the conversations found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SftReport {
    /// Conversations read.
    pub conversations: usize,
    /// Conversations cut at `max_length`.
    pub truncated: usize,
    /// Conversations dropped because cutting left no assistant token.
    pub dropped: usize,
    /// Tokens kept.
    pub tokens: usize,
    /// Tokens scored (the assistant's).
    pub scored_tokens: usize,
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

/// Renders and tokenizes every conversation, marking the assistant's tokens; cuts each at
/// `max_length` tokens and drops those left with nothing to learn.
pub fn tokenize(
    tokenizer: &LmTokenizer,
    conversations: &[Vec<Turn>],
    max_length: usize,
) -> Result<(Vec<Tokenized>, SftReport), TrainError> {
    let mut report = SftReport {
        conversations: conversations.len(),
        ..SftReport::default()
    };
    let mut out = Vec::with_capacity(conversations.len());
    for turns in conversations {
        let (mut ids, mut scored) = tokenizer.chat_with_mask(&messages(turns))?;
        if ids.len() > max_length {
            ids.truncate(max_length);
            scored.truncate(max_length);
            report.truncated += 1;
        }
        // Position 0 predicts nothing, so its token is never scored.
        if scored.iter().skip(1).any(|&s| s) {
            report.tokens += ids.len();
            report.scored_tokens += scored.iter().skip(1).filter(|&&s| s).count();
            out.push(Tokenized { ids, scored });
        } else {
            report.dropped += 1;
        }
    }
    Ok((out, report))
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
        let lengths: Vec<usize> = members
            .iter()
            .map(|row| row.iter().map(|&i| examples[i].ids.len()).sum())
            .collect();
        let seq = lengths.iter().copied().max().unwrap_or(0).max(1);
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

    /// The mean loss over the scored tokens of `model` on this batch.
    pub fn loss(&self, model: &LlamaForCausalLM) -> Result<Tensor<1>, TrainError> {
        let device = model
            .devices()
            .into_iter()
            .next()
            .ok_or_else(|| TrainError::Job("the model has no parameters".into()))?;
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(self.ids.clone(), [self.batch, self.seq]),
            &device,
        );
        let logits = model.forward_packed(ids, &self.segments);
        Ok(causal_lm_loss(logits, &self.labels))
    }
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
        }
    }

    /// The training rows `rows`, padded into one batch on the host.
    fn train_batch(&self, rows: &[usize]) -> Batch {
        let members: Vec<&[usize]> = rows
            .iter()
            .map(|&r| self.train_rows[r].as_slice())
            .collect();
        Batch::new(&self.train, &members, self.pad_id)
    }
}

/// The mean loss per scored token of `model` (dropout off) over `rows` of `examples`, and
/// its perplexity.
pub async fn evaluate_lm(
    model: &LlamaForCausalLM,
    examples: &[Tokenized],
    rows: &[Vec<usize>],
    pad_id: u32,
    batch_size: usize,
) -> Result<LanguageModelMetrics, TrainError> {
    let model = model.valid();
    let (mut total, mut tokens) = (0.0f64, 0usize);
    for chunk in rows.chunks(batch_size.max(1)) {
        let members: Vec<&[usize]> = chunk.iter().map(Vec::as_slice).collect();
        let batch = Batch::new(examples, &members, pad_id);
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

    fn mean_over(&self, rows: &[usize]) -> usize {
        self.train_batch(rows).scored_tokens()
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
        let part = evaluate_lm(model, &self.eval, &mine, self.pad_id, self.eval_batch).await?;
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
/// template, in rows (packed or not), and what tokenizing the training conversations found.
pub fn objective(
    job: &JobSpec,
    tokenizer: &LmTokenizer,
    data: &SplitData<Conversations>,
) -> Result<(Sft, SftReport), TrainError> {
    let crate::Task::Sft { packing, .. } = job.task else {
        return Err(TrainError::Job("the job's task is not sft".into()));
    };
    let max_length = job.train.max_length;
    let (train, report) = tokenize(tokenizer, &data.train, max_length)?;
    let (eval, _) = tokenize(tokenizer, &data.eval, max_length)?;
    if train.is_empty() {
        return Err(TrainError::Job(format!(
            "no training conversation has an assistant token within train.max_length \
             {max_length} ({} dropped)",
            report.dropped
        )));
    }
    let sft = Sft::new(
        train,
        eval,
        packing,
        max_length,
        tokenizer.pad_id().unwrap_or(0),
        job.train.batch_size,
    );
    Ok((sft, report))
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
