//! The size ladder (docs/QLORA.md, "Size ladder"): random Llama-style models of real shapes
//! (about 0.5B, Llama-3.2-1B's and Llama-3.2-3B's), built in memory from a seeded generator and
//! never written anywhere, each trained for ONE LoRA SFT step (batch 1 × 64 tokens, r 8 on
//! `q_proj`/`v_proj`, AdamW, Flex, one thread) with its base kept as f32, f16, bf16, q8 or q4.
//! Every row runs in a fresh child process (this binary again) whose peak resident memory during
//! the step (`VmHWM`, reset once the model is built: the model, the adapters and everything the
//! step allocates) and step time are printed beside the planner's estimate for the same job
//! ([`hearth_train::plan::estimate_chat`]) and the error, with the whole process's peak (the
//! build included) beside them.
//!
//! ```sh
//! cargo build -p hearth-train --example ladder
//! target/debug/examples/ladder 0.5b,1b f32,f16,q8,q4
//! target/debug/examples/ladder 0.5b f32+ckpt,q4+ckpt   # with gradient checkpointing
//! target/debug/examples/ladder browser   # what the planner accepts for the page
//! ```
//!
//! The projections of a 16-bit or quantized base are drawn one matrix at a time and turned into
//! blocks at once, so no f32 copy of the base ever exists; an f32 base is burn's own lazy
//! initialization, each matrix built in place on first use. The embedding is f32 in the f32 rows
//! and at the mode's format (q8 under q4) in the others, as a real load keeps it.

use std::process::Command;
use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::Device;
use hearth_kernels::QuantBlocks;
use hearth_models::llama::{LlamaConfig, LlamaForCausalLM};
use hearth_models::lora::LoraSettings;
use hearth_models::quant::BaseQuant;
use hearth_train::JobSpec;
use hearth_train::plan::{Context, Limits, estimate_chat, mib, plan_chat};
use hearth_train::sft::Batch;

/// Tokens in the step's one row.
const SEQ: usize = 64;

/// The shapes of the ladder: name, hidden, layers, intermediate, heads, key/value heads.
const SIZES: [(&str, usize, usize, usize, usize, usize); 3] = [
    // A Llama-3.2-style 0.5B: Llama-3.2-1B's vocabulary and head size, half its width.
    ("0.5b", 1024, 24, 4096, 16, 4),
    // Llama-3.2-1B.
    ("1b", 2048, 16, 8192, 32, 8),
    // Llama-3.2-3B.
    ("3b", 3072, 28, 8192, 24, 8),
];

fn config(size: &str) -> Option<LlamaConfig> {
    let (_, h, layers, inter, heads, kv) = SIZES.iter().find(|s| s.0 == size)?;
    let json = serde_json::json!({
        "model_type": "llama", "vocab_size": 128256, "hidden_size": h,
        "num_hidden_layers": layers, "intermediate_size": inter,
        "num_attention_heads": heads, "num_key_value_heads": kv,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true,
        "hidden_act": "silu", "max_position_embeddings": 131072
    });
    LlamaConfig::from_json(json.to_string().as_bytes()).ok()
}

/// `None` for an f32 base; a `+ckpt` suffix (`q4+ckpt`) asks for gradient checkpointing,
/// the second value.
fn precision(name: &str) -> Result<(Option<BaseQuant>, bool), String> {
    let (name, checkpointing) = match name.strip_suffix("+ckpt") {
        Some(name) => (name, true),
        None => (name, false),
    };
    Ok((base(name)?, checkpointing))
}

fn base(name: &str) -> Result<Option<BaseQuant>, String> {
    match name {
        "f32" => Ok(None),
        other => serde_json::from_value(serde_json::Value::String(other.into()))
            .map(Some)
            .map_err(|_| format!("precision `{other}`: f32, f16, bf16, q8 or q4")),
    }
}

/// The job the step stands for (what the planner is asked about).
fn job((quantize, checkpointing): (Option<BaseQuant>, bool)) -> JobSpec {
    let mut model = serde_json::json!({"path": "ladder"});
    if let Some(q) = quantize {
        model["quantize"] = serde_json::Value::String(q.name().into());
    }
    let job = serde_json::json!({
        "model": model,
        "data": {"path": "ladder.jsonl"},
        "task": {"kind": "sft"},
        "lora": {"r": 8, "lora_alpha": 16.0, "lora_dropout": 0.0,
                 "target_modules": ["q_proj", "v_proj"]},
        "train": {"steps": 1, "batch_size": 1, "max_length": SEQ, "warmup_steps": 0,
                  "checkpoint_every": 0, "gradient_checkpointing": checkpointing}
    });
    JobSpec::parse(&job.to_string()).expect("the ladder's job is valid")
}

/// A `kB` line of `/proc/self/status`, in bytes.
fn proc_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb << 10)
}

/// Resident and peak memory so far, on stderr.
fn stage(what: &str) {
    eprintln!(
        "{what}: resident {} MiB, peak {} MiB",
        proc_bytes("VmRSS:") >> 20,
        proc_bytes("VmHWM:") >> 20
    );
}

/// xorshift64*: a seeded stream of uniform values in ±`bound`.
struct Draw(u64);

impl Draw {
    fn fill(&mut self, n: usize, bound: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let u =
                    (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
                (2.0 * u - 1.0) * bound
            })
            .collect()
    }
}

/// One row, in this (child) process: build, one step, print the numbers as one JSON line.
fn child(size: &str, (quantize, checkpointing): (Option<BaseQuant>, bool)) -> Result<(), String> {
    let config = config(size).ok_or_else(|| format!("size `{size}`"))?;
    let device = Device::flex().autodiff();
    let started = Instant::now();
    let mut model = LlamaForCausalLM::init(&config, 0.0, &device).map_err(|e| e.to_string())?;
    if let Some(mode) = quantize {
        let format = mode.format().ok_or("keep needs a GGUF file's blocks")?;
        let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
        for m in hearth_train::plan::decoder_modules(&config) {
            let values = draw.fill(m.d_in * m.d_out, 1.0 / (m.d_in as f32).sqrt());
            let blocks = QuantBlocks::quantize(format, &values, m.d_out, m.d_in)
                .map_err(|e| e.to_string())?;
            drop(values);
            model
                .quantize_projection(&m.weight_path, &blocks, &device)
                .map_err(|e| e.to_string())?;
        }
        // The embedding (and with it the tied head) at the format the mode gives it, built a
        // range of rows at a time so that its f32 values never exist whole.
        let name = "model.embed_tokens.weight";
        let embedding = mode.format_for(name).ok_or("a requantizing mode")?;
        let (vocab, hidden) = (config.vocab_size, config.hidden_size);
        let mut blocks = QuantBlocks {
            format: embedding,
            rows: 0,
            cols: hidden,
            words: Vec::new(),
        };
        while blocks.rows < vocab {
            let n = (vocab - blocks.rows).min(8192);
            let values = draw.fill(n * hidden, 1.0);
            let part =
                QuantBlocks::quantize(embedding, &values, n, hidden).map_err(|e| e.to_string())?;
            blocks.words.extend(part.words);
            blocks.rows += n;
        }
        model
            .quantize_projection(name, &blocks, &device)
            .map_err(|e| e.to_string())?;
    }
    stage("projections built");
    let settings = LoraSettings {
        r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.0,
        ..LoraSettings::for_decoder()
    };
    let model = model.with_lora(&settings).map_err(|e| e.to_string())?;
    stage("adapters attached");
    let model = model.seeded_lora(7).map_err(|e| e.to_string())?;
    stage("adapters drawn");
    let built = started.elapsed().as_secs_f64();
    let (built_peak, built_rss) = (proc_bytes("VmHWM:"), proc_bytes("VmRSS:"));

    let mut draw = 0x2545_f491_4f6c_dd1du64;
    let ids: Vec<i64> = (0..SEQ)
        .map(|_| {
            draw ^= draw << 13;
            draw ^= draw >> 7;
            draw ^= draw << 17;
            (draw % config.vocab_size as u64) as i64
        })
        .collect();
    let batch = Batch {
        batch: 1,
        seq: SEQ,
        labels: ids.iter().map(|&i| Some(i as usize)).collect(),
        ids,
        segments: vec![1; SEQ],
    };
    let mut optim = AdamWConfig::new().init();
    // From here the peak is the step's own (Linux: "5" resets VmHWM to the resident size).
    let whole_peak = proc_bytes("VmHWM:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let (loss, grads) = if checkpointing {
        // What the SFT objective does with train.gradient_checkpointing.
        let mut accumulated = GradientsAccumulator::new();
        let loss = batch
            .checkpointed_gradients(&model, &|loss| loss, &mut |g| {
                accumulated.accumulate(&model, GradientsParams::from_grads(g, &model))
            })
            .map_err(|e| e.to_string())?;
        stage("forward and backward");
        (loss, accumulated.grads())
    } else {
        let loss = batch.loss(&model).map_err(|e| e.to_string())?;
        stage("forward");
        let grads = loss.backward();
        stage("backward");
        (loss, GradientsParams::from_grads(grads, &model))
    };
    let value = loss
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?[0];
    let _model = optim.step(1e-4, model, grads);
    let step = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "step_peak": proc_bytes("VmHWM:"), "whole_peak": whole_peak.max(proc_bytes("VmHWM:")),
            "build_peak": built_peak, "built_rss": built_rss,
            "build_s": built, "step_s": step, "loss": value
        })
    );
    Ok(())
}

/// What the planner says of each size and precision in the page ([`plan_chat`] against
/// [`Limits::browser`]): at WebGPU's default limits (256 MiB buffers, 128 MiB storage
/// bindings) and at an adapter offering 2 GiB for both, with the base's bytes as the model
/// file the wasm heap holds. Nothing is built or run.
fn browser() -> Result<(), String> {
    let limits = [
        (
            "WebGPU defaults",
            Limits::browser(Some(256 << 20), Some(128 << 20)),
        ),
        (
            "2 GiB adapter",
            Limits::browser(Some(2 << 30), Some(2 << 30)),
        ),
    ];
    println!("| size | base | model file | largest tensor | WebGPU defaults | 2 GiB adapter |");
    println!("|---|---|---:|---|---|---|");
    for (size, ..) in SIZES {
        let config = config(size).ok_or("size")?;
        for p in ["f32", "f16", "q8", "q4"] {
            let job = job(precision(p)?);
            let bare = Context {
                num_outputs: 1,
                ..Context::default()
            };
            let file = estimate_chat(&job, &config, &bare).part("weights");
            let ctx = Context {
                model_file_bytes: file,
                ..bare
            };
            let verdicts: Vec<String> = limits
                .iter()
                .map(|(_, l)| {
                    let plan = plan_chat(&job, &config, l, &ctx);
                    if plan.fits {
                        "fits".to_string()
                    } else {
                        plan.violations
                            .iter()
                            .map(|v| format!("{} > {}", v.what, v.limit))
                            .collect::<Vec<_>>()
                            .join("; ")
                    }
                })
                .collect();
            let e = &plan_chat(&job, &config, &limits[0].1, &ctx).estimate;
            println!(
                "| {size} | {p} | {} | {} ({}) | {} | {} |",
                mib(file),
                e.largest_buffer.0,
                mib(e.largest_buffer.1),
                verdicts[0],
                verdicts[1]
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let [_, size, q] = &args[..] else {
            return Err("--child SIZE PRECISION".into());
        };
        return child(size, precision(q)?);
    }
    if args.first().map(String::as_str) == Some("browser") {
        return browser();
    }
    let sizes = args.first().map_or("0.5b,1b,3b", String::as_str);
    let precisions = args.get(1).map_or("f32,f16,q8,q4", String::as_str);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "| size | parameters | base | step peak | whole-run peak | planner | error | step | build |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|"
    );
    for size in sizes.split(',') {
        let config = config(size).ok_or_else(|| format!("size `{size}`: 0.5b, 1b or 3b"))?;
        for p in precisions.split(',') {
            let quantize = precision(p)?;
            let ctx = Context {
                num_outputs: 1,
                ..Context::default()
            };
            let estimate = estimate_chat(&job(quantize), &config, &ctx);
            let out = Command::new(&exe)
                .args(["--child", size, p])
                .env("RAYON_NUM_THREADS", "1")
                // glibc otherwise keeps the build's freed buffers resident (its mmap threshold
                // grows with every large block freed), and they would count as the step's.
                .env("MALLOC_MMAP_THRESHOLD_", "65536")
                .output()
                .map_err(|e| e.to_string())?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout.lines().last().unwrap_or_default();
            let Ok(row) = serde_json::from_str::<serde_json::Value>(line) else {
                println!(
                    "| {size} | | {p} | failed ({}): {} | | {} | | | |",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    mib(estimate.total_bytes())
                );
                continue;
            };
            let peak = row["step_peak"].as_u64().unwrap_or(0);
            let whole = row["whole_peak"].as_u64().unwrap_or(0);
            let predicted = estimate.total_bytes();
            let error = (predicted as f64 - peak as f64) / peak as f64 * 100.0;
            println!(
                "| {size} | {:.2}B | {p} | {} | {} | {} | {error:+.1}% | {:.1} s | {:.1} s |",
                estimate.total_params as f64 / 1e9,
                mib(peak),
                mib(whole),
                mib(predicted),
                row["step_s"].as_f64().unwrap_or(f64::NAN),
                row["build_s"].as_f64().unwrap_or(f64::NAN),
            );
            eprintln!(
                "{size} {p}: loss {}, peak {} MiB while building, {} MiB resident when built, parts {:?}",
                row["loss"],
                row["build_peak"].as_u64().unwrap_or(0) >> 20,
                row["built_rss"].as_u64().unwrap_or(0) >> 20,
                estimate
                    .parts
                    .iter()
                    .map(|p| (p.name.as_str(), p.bytes >> 20))
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
