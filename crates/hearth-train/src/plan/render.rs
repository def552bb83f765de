//! The plan in words: the table `hearth plan` prints, the refusal a job that does not fit
//! gets, and the mebibytes both are written in.

use super::{Place, Plan};

impl Plan {
    /// The one-paragraph refusal, naming the settings to change.
    pub fn refusal(&self) -> String {
        let mut msg = String::from("the job does not fit: ");
        let parts: Vec<String> = self
            .violations
            .iter()
            .map(|v| {
                format!(
                    "{} needs {} but {} is {}",
                    v.what,
                    mib(v.needed),
                    v.limit,
                    mib(v.allowed)
                )
            })
            .collect();
        msg.push_str(&parts.join("; "));
        match self.suggestions.first() {
            Some(s) => msg.push_str(&format!(
                ". Set train.batch_size = {}, train.gradient_accumulation = {}{}{} (about {}), \
                 or train.fit = \"auto\" to let the planner choose",
                s.batch_size,
                s.gradient_accumulation,
                if s.max_length != self.job_max_length {
                    format!(", train.max_length = {}", s.max_length)
                } else {
                    String::new()
                },
                checkpointing(s),
                mib(s.estimate_bytes),
            )),
            None => msg.push_str(
                ". No micro-batch or max_length fits: use a smaller model, the `head` \
                 strategy (a classifier) or a quantized base (a chat model, model.quantize), or \
                 a machine with more memory",
            ),
        }
        msg
    }
}

/// ", train.gradient_checkpointing = true" when a suggestion turns it on.
fn checkpointing(s: &super::Suggestion) -> &'static str {
    match s.gradient_checkpointing {
        true => ", train.gradient_checkpointing = true",
        false => "",
    }
}

/// Mebibytes, for messages.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The plan as a table for a terminal.
pub fn render(plan: &Plan) -> String {
    let e = &plan.estimate;
    let mut out = format!(
        "memory plan: micro-batch {} × {} tokens, {} of {} parameters trained\n",
        e.batch_size, e.seq_len, e.trainable_params, e.total_params
    );
    for p in &e.parts {
        out.push_str(&format!(
            "  {:<18} {:>10}  {:<6}  {}\n",
            p.name,
            mib(p.bytes),
            match p.place {
                Place::Device => "device",
                Place::Host => "host",
            },
            p.detail
        ));
    }
    out.push_str(&format!(
        "  {:<18} {:>10}\n  largest buffer: {} ({})\n",
        "total",
        mib(e.total_bytes()),
        e.largest_buffer.0,
        mib(e.largest_buffer.1)
    ));
    let l = &plan.limits;
    let mut limits = Vec::new();
    if let Some(m) = l.memory_bytes {
        limits.push(format!(
            "memory {} ({})",
            mib(m),
            l.memory_source.as_deref().unwrap_or("given")
        ));
    }
    if let Some(b) = l.max_buffer_size {
        limits.push(format!("maxBufferSize {}", mib(b)));
    }
    if let Some(b) = l.max_storage_binding {
        limits.push(format!("maxStorageBufferBindingSize {}", mib(b)));
    }
    if let Some(b) = l.wasm_heap_bytes {
        limits.push(format!("wasm heap {}", mib(b)));
    }
    out.push_str(&format!(
        "limits: {}\n",
        if limits.is_empty() {
            "none known".into()
        } else {
            limits.join(", ")
        }
    ));
    out.push_str(&format!(
        "verdict: {}\n",
        if plan.fits {
            format!("fits ({} checked)", mib(plan.checked_bytes))
        } else {
            plan.refusal()
        }
    ));
    for s in &plan.suggestions {
        out.push_str(&format!(
            "suggest: batch_size {} × gradient_accumulation {}, max_length {}{} → {}: {}\n",
            s.batch_size,
            s.gradient_accumulation,
            s.max_length,
            checkpointing(s),
            mib(s.estimate_bytes),
            s.cost
        ));
    }
    if let Some(s) = &plan.chosen {
        out.push_str(&format!(
            "auto: running with batch_size {}, gradient_accumulation {}, max_length {}{}\n",
            s.batch_size,
            s.gradient_accumulation,
            s.max_length,
            checkpointing(s)
        ));
    }
    for n in &plan.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!("checkpointing: {}\n", plan.checkpointing));
    out
}
