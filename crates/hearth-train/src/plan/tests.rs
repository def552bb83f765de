//! The planner's invariants on all-MiniLM-L6-v2's shape: parameter counts that match the
//! model's, what the strategy and optimizer add, how activations grow, and what fitting
//! proposes against a memory budget and the browser's buffer limits.

use super::*;

/// all-MiniLM-L6-v2's shape.
fn minilm() -> BertConfig {
    BertConfig::from_json(
        br#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
             "num_attention_heads": 12, "intermediate_size": 1536,
             "max_position_embeddings": 512}"#,
    )
    .unwrap()
}

fn job(toml_train: &str) -> JobSpec {
    JobSpec::parse(&format!(
        "[model]\npath = 'm'\n[data]\npath = 'd.csv'\n[train]\n{toml_train}"
    ))
    .unwrap()
}

fn ctx() -> Context {
    Context {
        num_outputs: 3,
        model_file_bytes: 90 << 20,
        ..Context::default()
    }
}

#[test]
fn parameters_match_the_models_count() {
    let e = estimate(&job(""), &minilm(), &ctx());
    // 22,713,216 encoder parameters with the pooler; 74,883 trained (README invariant).
    assert_eq!(e.trainable_params, 74_883);
    assert_eq!(e.total_params - e.trainable_params, 22_713_216);
    assert_eq!(e.part("weights"), 22_713_216 * 4);
}

#[test]
fn strategy_and_optimizer_decide_gradients_and_state() {
    let c = minilm();
    let head = estimate(&job("strategy = 'head'"), &c, &ctx());
    assert_eq!(head.trainable_params, 384 * 3 + 3);
    // No encoder layer is recorded: only the head's input is kept.
    assert!(head.part("activations") < 1 << 20);
    let full = estimate(&job("strategy = 'full'"), &c, &ctx());
    assert_eq!(
        full.part("gradients"),
        full.part("weights") + (384 * 3 + 3) * 4
    );
    assert_eq!(full.part("optimizer state"), 2 * full.part("gradients"));
    let sgd = estimate(&job("optimizer = { name = 'sgd' }"), &c, &ctx());
    assert_eq!(sgd.part("optimizer state"), 0);
    let accum = estimate(&job("gradient_accumulation = 4"), &c, &ctx());
    assert_eq!(accum.part("gradients"), 2 * sgd.part("gradients"));
}

#[test]
fn activations_grow_with_batch_and_quadratically_with_length() {
    let c = minilm();
    let a = |t: &str| estimate(&job(t), &c, &ctx()).part("activations") as f64;
    let base = a("batch_size = 8\nmax_length = 64");
    assert!((a("batch_size = 16\nmax_length = 64") / base - 2.0).abs() < 0.05);
    let longer = a("batch_size = 8\nmax_length = 128") / base;
    assert!(longer > 2.2 && longer < 4.0, "{longer}");
    // Adapters on every linear layer keep their dropped inputs too.
    let all = a("batch_size = 8\nmax_length = 64\n[lora]\ntarget_modules = \
                 ['query', 'key', 'value', 'dense']");
    assert!(all > base);
    // The data's longest row caps the padded length.
    let short = Context {
        longest_row: Some(40),
        ..ctx()
    };
    let e = estimate(&job("max_length = 128"), &c, &short);
    assert_eq!(e.seq_len, 40);
}

#[test]
fn a_job_over_budget_is_refused_with_the_settings_to_change() {
    let c = minilm();
    let limits = Limits::native_cpu(Some(1 << 30), "test budget");
    let j = job("batch_size = 64\nmax_length = 256");
    let plan = fit(&j, &c, &limits, &ctx());
    assert!(!plan.fits);
    let first = &plan.suggestions[0];
    assert!(first.batch_size < 64);
    assert_eq!(first.batch_size * first.gradient_accumulation, 64);
    assert_eq!(first.max_length, 256, "a smaller batch is enough here");
    assert!(first.estimate_bytes <= 1 << 30);
    let err = settle(&j, &plan).unwrap_err().to_string();
    assert!(err.contains("train.batch_size"), "{err}");
    assert!(err.contains("train.fit = \"auto\""), "{err}");
    assert!(err.contains("test budget"), "{err}");
}

#[test]
fn auto_adapts_and_off_runs_as_given() {
    let c = minilm();
    let limits = Limits::native_cpu(Some(1 << 30), "test budget");
    let j = job("batch_size = 64\nmax_length = 256\nfit = 'auto'");
    let plan = fit(&j, &c, &limits, &ctx());
    let adapted = settle(&j, &plan).unwrap();
    assert_eq!(adapted.train.effective_batch(), 64);
    assert!(adapted.train.batch_size < 64);
    let fits = fit(&adapted, &c, &limits, &ctx());
    assert!(fits.fits, "{}", render(&fits));
    let off = job("batch_size = 64\nmax_length = 256\nfit = 'off'");
    assert_eq!(settle(&off, &fit(&off, &c, &limits, &ctx())).unwrap(), off);
}

#[test]
fn max_length_shrinks_only_when_no_micro_batch_fits() {
    let c = minilm();
    // Weights and the model file alone take ~200 MiB; batch 1 at 512 tokens does not fit
    // in 330 MiB, a shorter length does.
    let limits = Limits::native_cpu(Some(330 << 20), "small");
    let j = job("batch_size = 4\nmax_length = 512");
    let mut context = ctx();
    context.row_lengths = vec![10, 100, 300, 500];
    let plan = fit(&j, &c, &limits, &context);
    assert!(!plan.fits);
    let s = &plan.suggestions[0];
    assert!(s.max_length < 512, "{s:?}");
    assert!(s.cost.contains("% of rows are longer"), "{}", s.cost);
}

#[test]
fn browser_buffers_are_checked_against_the_adapter() {
    let c = minilm();
    // WebGPU's default maxStorageBufferBindingSize is 128 MiB.
    let limits = Limits::browser(Some(256 << 20), Some(128 << 20));
    let j = job("batch_size = 64\nmax_length = 512");
    let plan = fit(&j, &c, &limits, &ctx());
    assert!(!plan.fits);
    assert!(plan.violations[0].what.contains("attention scores"));
    assert!(plan.violations[0].limit.contains("storage buffer"));
    assert!(plan.suggestions[0].estimate_bytes > 0);
    let ok = fit(
        &job("batch_size = 16\nmax_length = 128"),
        &c,
        &limits,
        &ctx(),
    );
    assert!(ok.fits, "{}", render(&ok));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let limits = Limits::native_cpu(None, "unknown");
    assert!(plan(&job(""), b"{", &limits, &ctx()).is_err());
    let zero = Context {
        num_outputs: 0,
        ..ctx()
    };
    let config = br#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 8}"#;
    assert!(plan(&job(""), config, &limits, &zero).is_err());
    let p = plan(&job(""), config, &limits, &ctx()).unwrap();
    assert!(p.fits && p.notes.iter().any(|n| n.contains("unknown")));
}

/// Llama-3.2-1B's shape (hidden 2048, 16 layers, 32/8 heads, vocab 128256, tied).
fn llama_1b() -> hearth_models::llama::LlamaConfig {
    hearth_models::llama::LlamaConfig::from_json(
        br#"{"vocab_size": 128256, "hidden_size": 2048, "num_hidden_layers": 16,
             "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 8,
             "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true,
             "hidden_act": "silu", "model_type": "llama"}"#,
    )
    .unwrap()
}

/// An SFT job at batch 1 × 64 tokens, LoRA r 8 on q/v, with `quantize` as `model.quantize`.
fn chat_job(quantize: Option<&str>) -> JobSpec {
    let mut model = serde_json::json!({"path": "m"});
    if let Some(q) = quantize {
        model["quantize"] = q.into();
    }
    let job = serde_json::json!({
        "model": model, "data": {"path": "d.jsonl"}, "task": {"kind": "sft"},
        "lora": {"r": 8, "target_modules": ["q_proj", "v_proj"]},
        "train": {"batch_size": 1, "max_length": 64}
    });
    JobSpec::parse(&job.to_string()).unwrap()
}

/// Llama-3.2-1B: 973,078,528 projection weights, 262,668,288 in the (tied) embedding and
/// 67,584 in the norms (1.24B, its published size), and PEFT's 851,968 trainable parameters
/// for r 8 on q_proj/v_proj.
const LLAMA_1B_PROJECTIONS: u64 = 973_078_528;
const LLAMA_1B_F32: u64 = 262_668_288 + 67_584;

#[test]
fn a_chat_estimate_counts_the_models_parameters() {
    let e = estimate_chat(&chat_job(None), &llama_1b(), &ctx());
    assert_eq!(e.trainable_params, 851_968);
    assert_eq!(
        e.total_params,
        LLAMA_1B_PROJECTIONS + LLAMA_1B_F32 + 851_968
    );
    assert_eq!(e.part("adapters"), 851_968 * 4);
    assert_eq!(e.part("optimizer state"), 2 * 851_968 * 4);
    assert_eq!(e.seq_len, 64);
}

#[test]
fn the_base_is_counted_at_the_precision_the_job_keeps_it() {
    let c = llama_1b();
    let weights = |q: Option<&str>| estimate_chat(&chat_job(q), &c, &ctx()).part("weights");
    // The tied embedding at the mode's format (q8 under q4), the norms in f32.
    let (embedding, norms) = (262_668_288, 67_584 * 4);
    assert_eq!(
        weights(None),
        (LLAMA_1B_PROJECTIONS + embedding) * 4 + norms
    );
    assert_eq!(
        weights(Some("f16")),
        (LLAMA_1B_PROJECTIONS + embedding) * 2 + norms
    );
    assert_eq!(weights(Some("bf16")), weights(Some("f16")));
    // q8: 32 bytes and an f32 scale per 32 weights; q4: 16 bytes, scale and offset.
    assert_eq!(
        weights(Some("q8")),
        (LLAMA_1B_PROJECTIONS + embedding) * 5 / 4 + norms
    );
    assert_eq!(
        weights(Some("q4")),
        LLAMA_1B_PROJECTIONS * 3 / 4 + embedding * 5 / 4 + norms
    );
    assert_eq!(
        weights(Some("keep")),
        weights(Some("q8")),
        "keep: at most q8's"
    );
    assert_eq!(
        projection_bytes_per_weight(Some(hearth_models::quant::BaseQuant::Q4), 40),
        4.0,
        "rows that do not split into blocks stay f32"
    );
}

#[test]
fn a_quantized_base_adds_the_kernels_transient_buffers() {
    let c = llama_1b();
    let workspace = |q: Option<&str>| estimate_chat(&chat_job(q), &c, &ctx()).part("workspace");
    // The largest projection (gate/up/down, 2048 × 8192) as q4 blocks, and two 1 MiB ranges.
    assert_eq!(
        workspace(Some("q4")) - workspace(None),
        2048 * 8192 * 3 / 4 + (2 << 20)
    );
    assert_eq!(
        workspace(Some("f16")) - workspace(None),
        2048 * 8192 * 2 + (2 << 20)
    );
    // Activations do not depend on the base's precision; they grow with the tokens.
    let act = |j: &JobSpec| estimate_chat(j, &c, &ctx()).part("activations");
    assert_eq!(act(&chat_job(Some("q4"))), act(&chat_job(None)));
    let mut longer = chat_job(None);
    longer.train.max_length = 128;
    assert!(act(&longer) > 2 * act(&chat_job(None)) - act(&chat_job(None)) / 10);
}

#[test]
fn a_chat_plan_checks_the_browsers_buffers() {
    let c = llama_1b();
    // The embedding [128256, 2048] f32 (1 GiB) is past WebGPU's default 128 MiB binding,
    // whatever the projections' precision.
    let defaults = Limits::browser(Some(256 << 20), Some(128 << 20));
    let plan = plan_chat(&chat_job(Some("q4")), &c, &defaults, &ctx());
    assert!(!plan.fits);
    assert!(plan.violations[0].what.contains("embedding"), "{plan:?}");
    let large = Limits::browser(Some(2 << 30), Some(2 << 30));
    let plan = plan_chat(&chat_job(Some("q4")), &c, &large, &ctx());
    assert!(plan.fits, "{}", render(&plan));
    // The wasm heap holds the model file: an f32 1B file (4.9 GB) is past 4 GiB.
    let f32_file = Context {
        model_file_bytes: (LLAMA_1B_PROJECTIONS + LLAMA_1B_F32) * 4,
        ..ctx()
    };
    let plan = plan_chat(&chat_job(None), &c, &large, &f32_file);
    assert!(!plan.fits);
    assert!(
        plan.violations
            .iter()
            .any(|v| v.limit.contains("wasm heap"))
    );
}

/// Replicas on threads each hold what they train, its gradients and optimizer state; they
/// share a frozen base (a trained one becomes each replica's own); their shares of
/// a batch keep one batch's activations between them.
#[test]
fn each_replica_holds_what_it_trains() {
    let c = minilm();
    for (strategy, base_trained) in [("full", true), ("lora", false)] {
        let j = job(&format!("strategy = '{strategy}'"));
        let one = estimate(&j, &c, &ctx());
        let two = estimate(
            &j,
            &c,
            &Context {
                replicas: 2,
                ..ctx()
            },
        );
        for part in ["adapters + head", "gradients", "optimizer state"] {
            assert_eq!(two.part(part), 2 * one.part(part), "{strategy} {part}");
        }
        let weights = if base_trained { 2 } else { 1 };
        assert_eq!(
            two.part("weights"),
            weights * one.part("weights"),
            "{strategy}"
        );
        // The weights file is freed once the model is built, before the training peak.
        for part in ["activations", "workspace", "runtime", "model file + data"] {
            assert_eq!(two.part(part), one.part(part), "{strategy} {part}");
        }
        assert_eq!(
            estimate(
                &j,
                &c,
                &Context {
                    replicas: 1,
                    ..ctx()
                }
            ),
            one
        );
    }
}

/// Gradient checkpointing keeps each encoder layer's input instead of its graph: far less at a
/// long length, and the planner offers it first when a job does not fit.
#[test]
fn checkpointing_keeps_layer_inputs_and_is_suggested_first() {
    let c = minilm();
    let plain = job("batch_size = 32\nmax_length = 256");
    let checkpointed = job("batch_size = 32\nmax_length = 256\ngradient_checkpointing = true");
    let (a, b) = (
        estimate(&plain, &c, &ctx()).part("activations"),
        estimate(&checkpointed, &c, &ctx()).part("activations"),
    );
    assert!(4 * b < a, "{b} vs {a}");
    let budget = estimate(&checkpointed, &c, &ctx()).total_bytes() + (1 << 20);
    let p = fit(
        &plain,
        &c,
        &Limits::native_cpu(Some(budget), "test"),
        &ctx(),
    );
    assert!(!p.fits);
    let first = &p.suggestions[0];
    assert!(first.gradient_checkpointing, "{first:?}");
    assert_eq!((first.batch_size, first.max_length), (32, 256));
    // A head-only job has no encoder layer to recompute: nothing to checkpoint.
    let head = job("batch_size = 32\nmax_length = 256\nstrategy = 'head'");
    let p = fit(
        &head,
        &c,
        &Limits::native_cpu(Some(1 << 20), "test"),
        &ctx(),
    );
    assert!(p.suggestions.iter().all(|s| !s.gradient_checkpointing));
}
