//! LoRA on the Llama decoder against PEFT (fixtures from `scripts/fixtures/llama_lora.py`):
//! a PEFT `CAUSAL_LM` adapter loaded in Hearth gives PEFT's logits; an adapter Hearth exported
//! has PEFT's names, shapes and config and gave, loaded by PEFT, the logits Hearth computes; the
//! seeded init starts at the base model; only the factors train; a merge keeps the logits; bad
//! adapters are clear errors. Gradients and one AdamW step against PyTorch are in
//! `crates/hearth-train/tests/causal_lm.rs`. The same export on the tiny Gemma 3
//! (`scripts/fixtures/gemma_lora.py`) loads in PEFT's `Gemma3ForCausalLM` with Hearth's logits.

mod common;

use std::collections::BTreeMap;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{fixture, json, safetensors_f32, strings, tiny_llama, tiny_llama_files};
use hearth_models::host::named_params;
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::llama_lora::{build_causal_lm, merge_causal_lm};
use hearth_models::lora::{LoraSettings, trainable_params};
use hearth_models::peft::{
    AdapterConfig, PeftModel, export_adapter, import_adapter, load_adapter, peft_names,
};

/// The two files of a committed adapter directory.
fn adapter_files(dir: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = fixture(dir);
    let read = |n: &str| std::fs::read(dir.join(n)).expect("adapter file is committed");
    (
        read("adapter_config.json"),
        read("adapter_model.safetensors"),
    )
}

/// The tiny Llama on `device` with the committed adapter directory `dir` loaded.
fn adapted(dir: &str, device: &Device) -> LlamaForCausalLM {
    let (config, weights) = adapter_files(dir);
    load_adapter(tiny_llama(device, 0.0), &config, &weights).expect("the adapter loads")
}

/// Logits `[batch · seq · vocab]` of the fixture's batch (`input_ids`, `attention_mask`).
fn logits(model: &LlamaForCausalLM, fx: &serde_json::Value) -> Vec<f32> {
    let ids = common::ints(&fx["input_ids"]);
    let mask = common::ints(&fx["attention_mask"]);
    let batch = fx["input_ids"].as_array().expect("rows").len();
    let seq = ids.len() / batch;
    let device = model.model.embed_tokens.weight.device();
    let tensor =
        |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [batch, seq]), &device);
    let out = model.forward(tensor(ids), tensor(mask));
    let n = out.shape().num_elements();
    common::read_vec(out.reshape([1, n]))
}

/// A JSON array nested to any depth, flattened.
fn nested_floats(v: &serde_json::Value) -> Vec<f64> {
    match v.as_array() {
        Some(items) => items.iter().flat_map(nested_floats).collect(),
        None => vec![v.as_f64().expect("number")],
    }
}

/// The largest difference between `ours` and the fixture's logits at real (unpadded) positions.
fn worst_logit(ours: &[f32], fx: &serde_json::Value) -> f64 {
    let want = nested_floats(&fx["logits"]);
    let mask = common::ints(&fx["attention_mask"]);
    assert_eq!(ours.len(), want.len());
    let vocab = want.len() / mask.len();
    let mut worst = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
        if mask[i / vocab] == 1 {
            worst = worst.max((f64::from(*a) - b).abs());
        }
    }
    worst
}

/// The modules carrying adapters, by their names under `LlamaForCausalLM`, as PEFT lists them.
fn adapted_modules(model: &LlamaForCausalLM) -> Vec<String> {
    let mut names: Vec<String> = peft_names(model)
        .into_iter()
        .filter_map(|(_, peft)| {
            Some(
                peft.strip_suffix(".lora_A.weight")?
                    .strip_prefix("base_model.model.")?
                    .to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

/// Hearth's logits with the adapter directory `dir` equal PEFT's (`logits_fixture`), the
/// adapter adapts the modules PEFT adapted with PEFT's scaling, and it moves the logits.
fn logits_match_peft(dir: &str, logits_fixture: &str) -> f64 {
    let fx = json(logits_fixture);
    let device = Device::flex();
    let model = adapted(dir, &device);
    let worst = worst_logit(&logits(&model, &fx), &fx);
    assert!(
        worst < 1e-5,
        "{dir}: largest logit difference to PEFT {worst:e}"
    );
    eprintln!("{dir}: largest logit difference to PEFT {worst:e}");
    assert_eq!(adapted_modules(&model), strings(&fx["adapted_modules"]));
    let (config, _) = adapter_files(dir);
    let scale = AdapterConfig::from_json(&config)
        .expect("config")
        .settings()
        .scale();
    assert_eq!(scale, fx["scaling"].as_f64().expect("scaling"));
    let moved = worst_logit(&logits(&tiny_llama(&device, 0.0), &fx), &fx);
    assert!(moved > 1e-2, "the adapter changed nothing: {moved:e}");
    worst
}

#[test]
fn an_adapter_made_by_peft_gives_peft_s_logits() {
    logits_match_peft("peft-llama-adapter", "tiny_llama_lora.json");
}

/// The adapter of `examples/llama_adapter.rs`, loaded by PEFT, gave the logits Hearth computes;
/// Hearth still writes exactly those files, with PEFT's tensor names, shapes and config values.
#[test]
fn an_adapter_exported_by_hearth_loads_in_peft_with_hearth_s_logits() {
    logits_match_peft("hearth-llama-adapter", "hearth_llama_adapter_logits.json");
    let (config, weights) = adapter_files("hearth-llama-adapter");
    let model = adapted("hearth-llama-adapter", &Device::flex());
    let again = pollster::block_on(export_adapter(&model)).expect("exports");
    assert!(again == weights, "the exported tensors changed");
    let settings = AdapterConfig::from_json(&config)
        .expect("config")
        .settings();
    let written = AdapterConfig::for_causal_lm(&settings, "tests/fixtures/tiny-llama");
    let committed: serde_json::Value = serde_json::from_slice(&config).expect("json");
    assert_eq!(serde_json::to_value(&written).expect("json"), committed);

    // The same settings saved by PEFT: the same tensor names and shapes, and every field
    // Hearth writes has PEFT's value.
    let (peft_config, peft_weights) = adapter_files("peft-llama-adapter");
    let shapes = |bytes: &[u8]| -> BTreeMap<String, Vec<usize>> {
        safetensors_f32(bytes)
            .into_iter()
            .map(|(name, (shape, _))| (name, shape))
            .collect()
    };
    let ours = shapes(&weights);
    assert_eq!(ours, shapes(&peft_weights));
    assert_eq!(ours.len(), 2 * 7 * 2);
    assert_eq!(
        ours["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"],
        [4, 96]
    );
    assert_eq!(
        ours["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"],
        [32, 4]
    );
    let peft: serde_json::Value = serde_json::from_slice(&peft_config).expect("json");
    for (key, value) in committed.as_object().expect("object") {
        let same = match (value.as_f64(), peft[key].as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => *value == peft[key],
        };
        assert!(same, "{key}: Hearth writes {value}, PEFT {}", peft[key]);
    }
    assert_eq!(committed["task_type"], "CAUSAL_LM");
    assert_eq!(committed["bias"], "none");
}

/// PEFT's init drawn from a seed: `lora_B` zero, so the model starts as the base; `lora_A`
/// within ±1/√in; the same seed gives the same factors. Only the factors are trainable, as many
/// parameters as PEFT's adapter holds.
#[test]
fn the_seeded_init_starts_at_the_base_model() {
    let (_, peft_weights) = adapter_files("peft-llama-adapter");
    let settings = LoraSettings {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        target_modules: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
        .map(String::from)
        .to_vec(),
        ..LoraSettings::for_decoder()
    };
    let device = Device::flex();
    let model = build_causal_lm(&tiny_llama_files(), &settings, 3, &device).expect("builds");
    let fx = json("tiny_llama.json");
    let base = logits(&tiny_llama(&device, 0.0), &fx);
    let ours = logits(&model, &fx);
    let delta = ours
        .iter()
        .zip(&base)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert_eq!(delta, 0.0, "the seeded adapter moved the logits");

    let exported = pollster::block_on(export_adapter(&model)).expect("exports");
    for (name, (shape, values)) in safetensors_f32(&exported) {
        if name.contains("lora_B") {
            assert!(values.iter().all(|&v| v == 0.0), "{name}");
        } else {
            let bound = 1.0 / (shape[1] as f32).sqrt();
            assert!(values.iter().all(|v| v.abs() <= bound), "{name}");
            assert!(values.iter().any(|&v| v != 0.0), "{name}");
        }
    }
    let again = build_causal_lm(&tiny_llama_files(), &settings, 3, &device).expect("builds");
    let same = pollster::block_on(export_adapter(&again)).expect("exports");
    assert!(same == exported, "the same seed drew other factors");

    let trainable = build_causal_lm(
        &tiny_llama_files(),
        &settings,
        3,
        &device.clone().autodiff(),
    )
    .expect("builds on autodiff");
    let peft_count: usize = safetensors_f32(&peft_weights)
        .values()
        .map(|(_, v)| v.len())
        .sum();
    assert_eq!(trainable_params(&trainable), peft_count);
    assert_eq!(peft_count, 7424);
    // PEFT's default targets for Llama, q_proj and v_proj, at r 8: 2 · 8 · (64 + 64 + 64 + 32).
    let default = build_causal_lm(
        &tiny_llama_files(),
        &LoraSettings::for_decoder(),
        3,
        &device.autodiff(),
    )
    .expect("builds");
    assert_eq!(trainable_params(&default), 2 * 8 * (64 + 64 + 64 + 32));
}

/// One backward pass through an adapted model reaches every factor and nothing else.
#[test]
fn only_the_factors_get_gradients() {
    let device = Device::flex().autodiff();
    let (config, weights) = adapter_files("peft-llama-adapter");
    let model = load_adapter(tiny_llama(&device, 0.0), &config, &weights).expect("loads");
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 17, 33, 5], [1, 4]), &device);
    let loss = model
        .forward(ids, Tensor::ones([1, 4], &device))
        .powi_scalar(2)
        .mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let named = named_params(&model);
    let mut factors = 0;
    for (path, id) in &named.ids {
        let has = if named.matrices.contains_key(path) {
            grads.get::<2>(*id).is_some()
        } else {
            grads.get::<1>(*id).is_some()
        };
        let factor = path.contains(".lora.");
        assert_eq!(has, factor, "{path}: gradient {has}");
        factors += usize::from(factor);
    }
    assert_eq!(factors, 28);
}

/// Rewrites an adapter file: `edit` gets every tensor by name (shape, values).
fn edited(
    weights: &[u8],
    edit: impl FnOnce(&mut BTreeMap<String, (Vec<usize>, Vec<f32>)>),
) -> Vec<u8> {
    let mut tensors = safetensors_f32(weights);
    edit(&mut tensors);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, (s, v))| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = bytes.iter().map(|(n, s, b)| {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
            .expect("view");
        (n.clone(), view)
    });
    safetensors::serialize(views, None).expect("serializes")
}

/// An adapter that does not fit is an error that says why, never a panic or a partial load.
#[test]
fn adapters_that_do_not_fit_are_clear_errors() {
    let device = Device::flex();
    let (config, weights) = adapter_files("peft-llama-adapter");
    let with_config = |edit: serde_json::Value| {
        let mut value: serde_json::Value = serde_json::from_slice(&config).expect("json");
        for (k, v) in edit.as_object().expect("object") {
            value[k] = v.clone();
        }
        serde_json::to_vec(&value).expect("json")
    };
    let load = |config: &[u8], weights: &[u8]| {
        load_adapter(tiny_llama(&device, 0.0), config, weights)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };

    let err = load(
        &with_config(serde_json::json!({"task_type": "SEQ_CLS"})),
        &weights,
    );
    assert!(
        err.contains("task_type is `SEQ_CLS`") && err.contains("takes `CAUSAL_LM` adapters"),
        "{err}"
    );
    // BERT's adapter on a decoder is refused by its task type too.
    let (bert_config, bert_weights) = adapter_files("peft-adapter");
    let err = load(&bert_config, &bert_weights);
    assert!(err.contains("task_type is `SEQ_CLS`"), "{err}");

    let err = load(&with_config(serde_json::json!({"r": 8})), &weights);
    assert!(
        err.contains("does not fit the model (is r the same"),
        "{err}"
    );

    let err = load(
        &config,
        &edited(&weights, |t| {
            t.remove("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
        }),
    );
    assert!(
        err.contains("lacks 1 tensor(s)")
            && err.contains("model.layers.1.mlp.up_proj.weight.lora.b"),
        "{err}"
    );

    let err = load(
        &config,
        &edited(&weights, |t| {
            t.insert(
                "base_model.model.model.layers.0.self_attn.rotary_emb.lora_A.weight".into(),
                (vec![4, 64], vec![0.0; 256]),
            );
        }),
    );
    assert!(
        err.contains("adapts `model.layers.0.self_attn.rotary_emb`, which is not a linear layer"),
        "{err}"
    );
    let err = load(
        &config,
        &edited(&weights, |t| {
            t.insert(
                "base_model.model.lm_head.weight".into(),
                (vec![128, 64], vec![0.0; 8192]),
            );
        }),
    );
    assert!(
        err.contains("`base_model.model.lm_head.weight` is neither a lora_A nor a lora_B"),
        "{err}"
    );

    // Adapters on q_proj only do not take a file with factors for every projection.
    let err = load(
        &with_config(serde_json::json!({"target_modules": ["q_proj"]})),
        &weights,
    );
    assert!(err.contains("modules this model does not adapt"), "{err}");
    let err = load(
        &with_config(serde_json::json!({"layers_to_transform": [0], "layers_pattern": "layer"})),
        &weights,
    );
    assert!(
        err.contains("names no layer stack of a Llama model"),
        "{err}"
    );
    let err = load(&config, b"not safetensors");
    assert!(err.contains("cannot be read"), "{err}");
    let model = tiny_llama(&device, 0.0);
    assert!(
        import_adapter(model, &weights).is_err(),
        "no adapters attached"
    );
}

/// An adapter Hearth exported on the tiny Gemma 3 (every projection of its six layers), loaded
/// by PEFT on transformers' `Gemma3ForCausalLM`, gave the logits Hearth computes with it: the
/// module names, scaling and layout are PEFT's for Gemma too.
#[test]
fn a_gemma_adapter_exported_by_hearth_loads_in_peft_with_hearth_s_logits() {
    let device = Device::flex();
    let dir = fixture("tiny-gemma");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("tiny-gemma is committed");
    let config =
        hearth_models::llama::LlamaConfig::from_json(&read("config.json")).expect("config");
    let base = || {
        LlamaForCausalLM::init(&config, 0.0, &device)
            .expect("builds")
            .load_safetensors(read("model.safetensors"))
            .expect("loads")
    };
    let (adapter_config, weights) = adapter_files("hearth-gemma-adapter");
    let model = load_adapter(base(), &adapter_config, &weights).expect("the adapter loads");
    let fx = json("hearth_gemma_adapter_logits.json");
    let worst = worst_logit(&logits(&model, &fx), &fx);
    assert!(worst < 1e-5, "largest logit difference to PEFT {worst:e}");
    assert_eq!(adapted_modules(&model), strings(&fx["adapted_modules"]));
    assert_eq!(adapted_modules(&model).len(), 6 * 7);
    let moved = worst_logit(&logits(&base(), &fx), &fx);
    assert!(moved > 1e-2, "the adapter changed nothing: {moved:e}");
    let again = pollster::block_on(export_adapter(&model)).expect("exports");
    assert!(again == weights, "the exported tensors changed");
}

/// The adapter folded into the weights: HF's tensor names and shapes, and the adapted logits
/// from a plain model loaded from them.
#[test]
fn a_merged_model_gives_the_adapted_logits() {
    let device = Device::flex();
    let model = adapted("peft-llama-adapter", &device);
    let fx = json("tiny_llama_lora.json");
    let want = logits(&model, &fx);
    let files = tiny_llama_files();
    let merged = pollster::block_on(merge_causal_lm(model, &files.config)).expect("merges");
    let shapes = |bytes: &[u8]| -> BTreeMap<String, Vec<usize>> {
        safetensors_f32(bytes)
            .into_iter()
            .map(|(n, (s, _))| (n, s))
            .collect()
    };
    assert_eq!(shapes(&merged.weights), shapes(&files.weights));
    let plain = tiny_llama(&device, 0.0)
        .load_safetensors(merged.weights)
        .expect("the merged weights load");
    assert!(peft_names(&plain).is_empty());
    let ours = logits(&plain, &fx);
    let worst = ours
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-5, "merged vs adapted: {worst:e}");
    let base = logits(&tiny_llama(&device, 0.0), &fx);
    let moved = base
        .iter()
        .zip(&ours)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(moved > 1e-2, "merging changed nothing: {moved:e}");
    assert_eq!(
        <LlamaForCausalLM as PeftModel>::FAMILY.task_type,
        "CAUSAL_LM"
    );
}

/// Detaching the adapters gives the base model's logits back, and leaves the adapted model as
/// it was (the weights are shared, not moved).
#[test]
fn detached_adapters_give_the_base_logits() {
    let device = Device::flex();
    let fx = json("tiny_llama.json");
    let base = logits(&tiny_llama(&device, 0.0), &fx);
    let model = adapted("peft-llama-adapter", &device);
    let with = logits(&model, &fx);
    let without = logits(&hearth_models::lora::without_adapters(model.clone()), &fx);
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert_eq!(diff(&without, &base), 0.0);
    assert!(diff(&with, &base) > 1e-3, "the adapter changes the logits");
    assert_eq!(diff(&logits(&model, &fx), &with), 0.0);
}

/// The tiny Llama on `device` with adapters on all seven projections and non-zero `B`
/// factors (so that every factor gets a gradient), from `weights` or, with `mode`, from
/// `weights` with its projections quantized.
fn adapted_tiny(
    weights: Vec<u8>,
    mode: Option<hearth_models::quant::BaseQuant>,
    device: &Device,
) -> LlamaForCausalLM {
    adapted_with(tiny_llama_files().config, weights, mode, 0.0, device)
}

/// [`adapted_tiny`] for any Llama-family `config` and `weights`, with LoRA dropout `dropout`.
fn adapted_with(
    config: Vec<u8>,
    weights: Vec<u8>,
    mode: Option<hearth_models::quant::BaseQuant>,
    dropout: f64,
    device: &Device,
) -> LlamaForCausalLM {
    use hearth_models::host::{PathMapper, map_paths};
    struct FillB;
    impl PathMapper for FillB {
        fn map<const D: usize>(
            &mut self,
            path: &str,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            if !path.ends_with(".lora.b") {
                return param;
            }
            let base = param.val();
            let (shape, device) = (base.shape(), base.device());
            let n = shape.num_elements() as i64;
            let values = Tensor::<1, Int>::arange(0..n, &device)
                .float()
                .mul_scalar(0.37)
                .sin()
                .mul_scalar(0.05)
                .reshape(shape)
                .require_grad();
            burn::module::Param::initialized(param.id, values)
        }
    }
    let config = hearth_models::llama::LlamaConfig::from_json(&config).expect("config");
    let model = LlamaForCausalLM::init(&config, dropout, device).expect("builds");
    let model = match mode {
        None => model.load_safetensors(weights),
        Some(mode) => model.load_safetensors_quantized(&weights, mode, device),
    }
    .expect("loads");
    let settings = LoraSettings {
        r: 4,
        lora_dropout: dropout,
        target_modules: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
        .map(String::from)
        .to_vec(),
        ..LoraSettings::for_decoder()
    };
    let model = model
        .with_lora(&settings)
        .expect("adapters")
        .seeded_lora(7)
        .expect("init");
    map_paths(model, FillB)
}

/// QLoRA's gradients are LoRA's: with q8, q4, f16 and bf16 bases, the factors' gradients equal
/// (within 1e-4 relative) those of the f32 model whose projections hold the dequantized blocks
/// (for f16 and bf16: the weights rounded to 16 bits), and the logits agree too, with and
/// without autodiff. Only the factors train; the blocks get none.
#[test]
fn lora_gradients_on_a_quantized_base_equal_the_dequantized_f32_path() {
    use hearth_models::host::{HostTensor, read_f32_tensors, serialize};
    use hearth_models::quant::{BaseQuant, quantize_host};

    let device = Device::flex().autodiff();
    let weights = tiny_llama_files().weights;
    let ids: Vec<i64> = (0..16).map(|i| (i * 37 + 5) % 128).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 8]), &device);
    let mask = Tensor::<2, Int>::ones([2, 8], &device);
    for mode in [
        BaseQuant::Q8,
        BaseQuant::Q4,
        BaseQuant::F16,
        BaseQuant::Bf16,
    ] {
        // The reference: an f32 model with the blocks' values as its projection weights.
        let mut tensors = read_f32_tensors(&weights).expect("tensors");
        let blocks = quantize_host(&mut tensors, mode).expect("blocks");
        assert_eq!(
            blocks.len(),
            15,
            "two layers of seven projections and the embedding"
        );
        for (name, q) in &blocks {
            let shape = vec![q.rows, q.cols];
            tensors.insert(
                name.clone(),
                HostTensor {
                    shape,
                    data: q.dequantize(),
                },
            );
        }
        let dense = adapted_tiny(serialize(&tensors, None).expect("bytes"), None, &device);
        let quantized = adapted_tiny(weights.clone(), Some(mode), &device);
        assert!(quantized.is_quantized() && !dense.is_quantized());
        assert_eq!(trainable_params(&quantized), trainable_params(&dense));

        let mut results = Vec::new();
        for model in [&quantized, &dense] {
            let logits = model.forward(ids.clone(), mask.clone());
            let [b, s, v] = logits.dims();
            let weights = Tensor::<1, Int>::arange(0..(b * s * v) as i64, &device)
                .float()
                .mul_scalar(0.011)
                .cos()
                .reshape([b, s, v]);
            let loss = (logits.clone() * weights).sum();
            let grads = GradientsParams::from_grads(loss.backward(), model);
            let named = named_params(model);
            let mut factors = BTreeMap::new();
            for path in named.matrices.keys() {
                let grad = grads.get::<2>(named.ids[path]);
                assert_eq!(grad.is_some(), path.contains(".lora."), "{mode:?} {path}");
                if let Some(g) = grad {
                    factors.insert(path.clone(), common::read_vec(g));
                }
            }
            let valid = burn::module::Module::valid(model)
                .forward(ids.clone().inner(), mask.clone().inner());
            let n = b * s * v;
            results.push((
                common::read_vec(logits.reshape([1, n])),
                common::read_vec(valid.reshape([1, n])),
                factors,
            ));
        }
        let (q, d) = (&results[0], &results[1]);
        let close = |a: &[f32], b: &[f32], what: &str| {
            let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
            let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(scale > 0.0, "{mode:?} {what}: all zero");
            assert!(
                worst <= 1e-4 * scale,
                "{mode:?} {what}: {worst} vs scale {scale}"
            );
        };
        close(&q.0, &d.0, "logits");
        close(&q.1, &d.1, "logits without autodiff");
        assert_eq!(q.2.len(), 28, "{mode:?}: A and B of 14 projections");
        assert_eq!(
            q.2.keys().collect::<Vec<_>>(),
            d.2.keys().collect::<Vec<_>>()
        );
        for (path, g) in &q.2 {
            close(g, &d.2[path], path);
        }
    }
}

/// A 16-bit source file's weights come back value for value: the tiny Llama written as f16 (and
/// as bf16) safetensors, loaded with `quantize = "f16"` (`"bf16"`), keeps every projection's
/// stored bits in its blocks, and its logits are those of the f32 model loaded from the same
/// file (which widens the same values).
#[test]
fn a_sixteen_bit_file_keeps_its_weights_bit_for_bit() {
    use burn::tensor::{bf16, f16};
    use hearth_models::host::read_f32_tensors;
    use hearth_models::quant::{BaseQuant, quantize_host};
    use safetensors::{Dtype, tensor::TensorView};

    let device = Device::flex();
    let f32_tensors = read_f32_tensors(&tiny_llama_files().weights).expect("tensors");
    let ids: Vec<i64> = (0..16).map(|i| (i * 29 + 3) % 128).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 8]), &device);
    let mask = Tensor::<2, Int>::ones([2, 8], &device);
    for (mode, dtype) in [(BaseQuant::F16, Dtype::F16), (BaseQuant::Bf16, Dtype::BF16)] {
        // The file: every tensor as 16-bit values (little-endian), and those values' bits.
        let bits: BTreeMap<&String, Vec<u16>> = f32_tensors
            .iter()
            .map(|(name, t)| {
                let b = t.data.iter().map(|&w| match mode {
                    BaseQuant::F16 => f16::from_f32(w).to_bits(),
                    _ => bf16::from_f32(w).to_bits(),
                });
                (name, b.collect())
            })
            .collect();
        let bytes: BTreeMap<&String, Vec<u8>> = bits
            .iter()
            .map(|(name, b)| (*name, b.iter().flat_map(|v| v.to_le_bytes()).collect()))
            .collect();
        let views: Vec<(String, TensorView<'_>)> = f32_tensors
            .iter()
            .map(|(name, t)| {
                let view = TensorView::new(dtype, t.shape.clone(), &bytes[name]).expect("view");
                (name.clone(), view)
            })
            .collect();
        let file = safetensors::serialize(views, None).expect("file");

        let mut tensors = read_f32_tensors(&file).expect("reads");
        let blocks = quantize_host(&mut tensors, mode).expect("blocks");
        assert_eq!(
            blocks.len(),
            15,
            "{mode:?}: two layers of seven projections and the embedding"
        );
        for (name, q) in &blocks {
            let stored: Vec<u16> = q
                .words
                .iter()
                .flat_map(|w| [*w as u16, (*w >> 16) as u16])
                .collect();
            assert_eq!(&stored, &bits[name], "{mode:?} {name}");
        }

        let config = hearth_models::llama::LlamaConfig::from_json(&tiny_llama_files().config)
            .expect("config");
        let init = || LlamaForCausalLM::init(&config, 0.0, &device).expect("builds");
        let sixteen = init()
            .load_safetensors_quantized(&file, mode, &device)
            .expect("loads 16-bit");
        assert!(sixteen.is_quantized());
        let wide = init().load_safetensors(file.clone()).expect("loads f32");
        let n = 2 * 8 * config.vocab_size;
        let a = common::read_vec(sixteen.forward(ids.clone(), mask.clone()).reshape([1, n]));
        let b = common::read_vec(wide.forward(ids.clone(), mask.clone()).reshape([1, n]));
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            scale > 0.0 && worst <= 1e-5 * scale,
            "{mode:?}: {worst} vs {scale}"
        );
    }
}

/// Gradient checkpointing changes what is kept, not what is computed: on packed rows (two
/// sequences in one row, padding in the other), with LoRA dropout 0.1, the factors' gradients
/// of a checkpointed pass (layers recomputed one at a time, logits in chunks of 3 positions)
/// equal one plain backward pass's within 1e-5 of their scale, for the tiny Llama (f32 and
/// q4) and the tiny Gemma 3 (sliding windows, extra norms, soft-capped logits); the loss is the
/// same, and the dropout stream ends where the plain pass leaves it.
#[test]
fn checkpointed_gradients_equal_one_backward_pass() {
    use burn::optim::GradientsAccumulator;
    use hearth_models::dropout;
    use hearth_models::quant::BaseQuant;

    let device = Device::flex().autodiff();
    let gemma = fixture("tiny-gemma");
    let read = |n: &str| std::fs::read(gemma.join(n)).expect("tiny-gemma is committed");
    let llama = tiny_llama_files();
    let cases = [
        (
            "llama f32",
            llama.config.clone(),
            llama.weights.clone(),
            None,
        ),
        ("llama q4", llama.config, llama.weights, Some(BaseQuant::Q4)),
        (
            "gemma f32",
            read("config.json"),
            read("model.safetensors"),
            None,
        ),
    ];
    let segments: Vec<u32> = [[1, 1, 1, 2, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 0, 0]].concat();
    for (name, config, weights, mode) in cases {
        let model = adapted_with(config, weights, mode, 0.1, &device);
        let vocab = model.vocab_size();
        let ids: Vec<i64> = (0..16).map(|i| (i * 37 + 5) % 100).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 8]), &device);
        // A loss linear in the logits, so that every position's gradient differs.
        let weights = Tensor::<1, Int>::arange(0..(16 * vocab) as i64, &device)
            .float()
            .mul_scalar(0.011)
            .cos()
            .reshape([16, vocab]);
        let share = |logits: Tensor<2>, at: std::ops::Range<usize>| {
            (logits * weights.clone().slice([at, 0..vocab])).sum()
        };

        dropout::reseed(42);
        let logits = model
            .forward_packed(ids.clone(), &segments)
            .reshape([16, vocab]);
        let plain_loss = share(logits, 0..16);
        let plain = GradientsParams::from_grads(plain_loss.backward(), &model);
        let plain_end = dropout::position();

        dropout::reseed(42);
        let mut accumulated = GradientsAccumulator::new();
        let loss = model.backward_packed_checkpointed(ids, &segments, 3, &share, &mut |g| {
            accumulated.accumulate(&model, GradientsParams::from_grads(g, &model));
        });
        let checkpointed = accumulated.grads();
        assert_eq!(dropout::position(), plain_end, "{name}: the dropout stream");

        let (a, b) = (
            common::read_vec(loss.reshape([1, 1])),
            common::read_vec(plain_loss.reshape([1, 1])),
        );
        assert!(
            (a[0] - b[0]).abs() <= 1e-5 * b[0].abs().max(1.0),
            "{name}: loss {a:?} vs {b:?}"
        );
        let named = named_params(&model);
        let mut compared = 0;
        for path in named.matrices.keys() {
            let id = named.ids[path];
            let (c, p) = (checkpointed.get::<2>(id), plain.get::<2>(id));
            assert_eq!(c.is_some(), p.is_some(), "{name} {path}");
            let (Some(c), Some(p)) = (c, p) else { continue };
            let (c, p) = (common::read_vec(c), common::read_vec(p));
            let scale = p.iter().fold(0f32, |m, x| m.max(x.abs()));
            let worst = c
                .iter()
                .zip(&p)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(scale > 0.0, "{name} {path}: no gradient");
            assert!(
                worst <= 1e-5 * scale,
                "{name} {path}: {worst:e} vs scale {scale:e}"
            );
            compared += 1;
        }
        assert!(compared >= 28, "{name}: {compared} factors compared");
    }
}
