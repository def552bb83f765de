//! Fitting a job to the limits: the estimate checked against them, and when it does not fit,
//! gradient checkpointing, smaller micro-batches with more gradient accumulation (keeping the
//! effective batch), then shorter `max_length`s only if no micro-batch is enough; [`settle`]
//! turns the answer into the job a run uses, as `train.fit` asks.

use hearth_models::bert::BertConfig;

use super::{
    Context, FitMode, Limits, MemoryEstimate, Plan, Runtime, Suggestion, Violation, estimate,
};
use crate::{JobSpec, TrainError, TrainSettings};

/// Checks an estimate against `limits`.
pub(super) fn violations(e: &MemoryEstimate, limits: &Limits) -> (u64, Vec<Violation>) {
    let mut out = Vec::new();
    let checked = match limits.runtime {
        Runtime::NativeCpu => e.total_bytes(),
        Runtime::NativeGpu | Runtime::Browser => e.device_bytes(),
    };
    if let Some(budget) = limits.memory_bytes
        && checked > budget
    {
        out.push(Violation {
            what: "the estimate".into(),
            needed: checked,
            limit: limits
                .memory_source
                .clone()
                .unwrap_or_else(|| "the memory budget".into()),
            allowed: budget,
        });
    }
    if let Some(heap) = limits.wasm_heap_bytes
        && e.host_bytes() > heap
    {
        out.push(Violation {
            what: "the model file and data".into(),
            needed: e.host_bytes(),
            limit: "the wasm heap".into(),
            allowed: heap,
        });
    }
    if let Some(largest) = limits.largest_buffer()
        && e.largest_buffer.1 > largest
    {
        out.push(Violation {
            what: e.largest_buffer.0.clone(),
            needed: e.largest_buffer.1,
            limit: "the adapter's largest storage buffer".into(),
            allowed: largest,
        });
    }
    (checked, out)
}

/// Micro-batches to try below `batch`: halving, then every size down to 1.
fn smaller_batches(batch: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut b = batch / 2;
    while b >= 1 {
        out.push(b);
        b /= 2;
    }
    out
}

/// Checks `job` against `limits` and, when it does not fit, proposes settings that do, least
/// costly first: gradient checkpointing at the job's settings, then the largest micro-batch
/// (keeping the effective batch through accumulation) and shorter `max_length`s only if no
/// micro-batch is enough, without and then with checkpointing. With `train.fit = "auto"`,
/// picks the first.
pub fn fit(job: &JobSpec, config: &BertConfig, limits: &Limits, ctx: &Context) -> Plan {
    let estimate = estimate(job, config, ctx);
    let (checked_bytes, violations) = violations(&estimate, limits);
    let mut notes = Vec::new();
    if limits.memory_bytes.is_none() {
        notes.push(format!(
            "the memory budget is unknown ({}); only buffer limits were checked",
            limits
                .memory_source
                .as_deref()
                .unwrap_or("no limit was given")
        ));
    }
    if let Some(longest) = ctx.longest_row
        && longest < job.train.max_length
    {
        notes.push(format!(
            "the longest training row is {longest} tokens, so no batch is padded beyond it \
             (max_length is {})",
            job.train.max_length
        ));
    }
    let mut suggestions = Vec::new();
    if !violations.is_empty() {
        let t = &job.train;
        let effective = t.effective_batch();
        let mut lengths = vec![t.max_length];
        let mut len = t.max_length / 2;
        while len >= 16 {
            lengths.push(len);
            len /= 2;
        }
        // Checkpointing first (the same batches and texts, more time), where there is a
        // trained encoder layer to recompute; then the largest micro-batch of each length,
        // without and then with checkpointing.
        let recomputes = !t.gradient_checkpointing && t.strategy != crate::Strategy::Head;
        let mut candidates = Vec::new();
        if recomputes {
            candidates.push((t.max_length, t.batch_size, true));
        }
        let modes: &[bool] = if recomputes {
            &[false, true]
        } else {
            &[t.gradient_checkpointing]
        };
        for &checkpointing in modes {
            for &max_length in &lengths {
                if max_length != t.max_length {
                    candidates.push((max_length, t.batch_size, checkpointing));
                }
                for batch_size in smaller_batches(t.batch_size) {
                    candidates.push((max_length, batch_size, checkpointing));
                }
            }
        }
        let mut found = std::collections::BTreeSet::new();
        for (max_length, batch_size, checkpointing) in candidates {
            // The largest micro-batch of each length and checkpointing is the one worth showing.
            if found.contains(&(max_length, checkpointing)) {
                continue;
            }
            let accumulation = effective.div_ceil(batch_size);
            let trial = JobSpec {
                train: TrainSettings {
                    batch_size,
                    gradient_accumulation: accumulation,
                    max_length,
                    gradient_checkpointing: checkpointing,
                    ..t.clone()
                },
                ..job.clone()
            };
            let (bytes, v) = self::violations(&self::estimate(&trial, config, ctx), limits);
            if !v.is_empty() {
                continue;
            }
            found.insert((max_length, checkpointing));
            let mut cost = Vec::new();
            if checkpointing && !t.gradient_checkpointing {
                cost.push(
                    "gradient checkpointing recomputes each encoder layer in the backward pass: \
                     one more forward pass per step"
                        .to_string(),
                );
            }
            if batch_size != t.batch_size {
                cost.push(format!(
                    "micro-batches of {batch_size} with {accumulation} accumulation steps keep \
                     the effective batch of {}; each step runs {accumulation} smaller passes, \
                     which use the device less fully",
                    batch_size * accumulation
                ));
            }
            if max_length != t.max_length {
                cost.push(match ctx.share_longer_than(max_length) {
                    Some(share) => format!(
                        "texts are cut at {max_length} tokens: {:.1}% of rows are longer",
                        100.0 * share
                    ),
                    None => format!(
                        "texts longer than {max_length} tokens are cut, which can lose what \
                         decides their label"
                    ),
                });
            }
            suggestions.push(Suggestion {
                batch_size,
                gradient_accumulation: accumulation,
                max_length,
                gradient_checkpointing: checkpointing,
                estimate_bytes: bytes,
                cost: cost.join("; "),
            });
            if suggestions.len() == 2 {
                break;
            }
        }
    }
    let chosen = (job.train.fit == FitMode::Auto)
        .then(|| suggestions.first().cloned())
        .flatten();
    Plan {
        fits: violations.is_empty(),
        estimate,
        limits: limits.clone(),
        checked_bytes,
        violations,
        suggestions,
        chosen,
        job_max_length: job.train.max_length,
        checkpointing: checkpointing_note(job),
        notes,
    }
}

/// What the plan says about activation checkpointing (docs/PLANNER.md has the details).
fn checkpointing_note(job: &JobSpec) -> String {
    if job.train.gradient_checkpointing {
        "on: each encoder layer is recomputed in the backward pass from its input, the only \
         activation kept per layer; the estimate counts that"
            .into()
    } else {
        "off: train.gradient_checkpointing keeps only each encoder layer's input and recomputes \
         the layer in the backward pass (one more forward pass per step)"
            .into()
    }
}

/// The job a run should use: unchanged when it fits or `train.fit = "off"`, adapted with
/// `"auto"`, refused with `"check"` (the error names the settings to change).
pub fn settle(job: &JobSpec, plan: &Plan) -> Result<JobSpec, TrainError> {
    if plan.fits {
        return Ok(job.clone());
    }
    match (job.train.fit, &plan.chosen) {
        (FitMode::Off, _) => Ok(job.clone()),
        (FitMode::Auto, Some(s)) => Ok(s.apply(job)),
        _ => Err(TrainError::Job(plan.refusal())),
    }
}
