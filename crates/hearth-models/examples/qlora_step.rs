//! QLoRA measured on SmolLM2-135M-Instruct (Flex, CPU): load the Q4_1 GGUF, keep the base f32 or
//! quantize it (the `Quantize` mapper below), compare the fixture prompt's logits with transformers'
//! (f32), attach LoRA r=8 to every projection and time forward + backward + SGD steps at batch
//! 2 × 64 tokens. Prints resident memory after each stage and the peak during the steps.
//!
//! ```sh
//! cargo build -p hearth-models --example qlora_step
//! /usr/bin/time -v target/debug/examples/qlora_step q8 3
//! ```
//!
//! The first argument is `none`, `q8` or `q4`; the second the number of steps (default 3). Flags
//! after them: `whole` keeps the peak of the whole run instead of resetting it before the steps,
//! `checkpointing` turns on burn's gradient checkpointing, `skip-fixture` skips the logit check.
//! glibc keeps freed blocks of up to 32 MiB in the heap once it has freed larger ones, so run it
//! with `MALLOC_MMAP_THRESHOLD_=65536` to see memory that is really free as free.
//! docs/QLORA.md records the results.

use std::time::Instant;

use burn::module::{Lora, Module, ModuleMapper, Param, ParamGroup};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::quantization::{QuantScheme, QuantValue, ScaleDtype};
use burn::tensor::{Device, Int, Tensor, TensorData};
use hearth_models::llama::LlamaForCausalLM;
use hearth_models::lora::trainable_params;
use serde::Deserialize;

/// How the frozen base weights of a model are stored while adapters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BaseQuant {
    /// f32, as loaded.
    None,
    /// 8-bit symmetric integers, one f32 scale per block of 32.
    Q8,
    /// 4-bit symmetric integers (−7..7), one f32 scale per block of 32.
    Q4,
}

/// Values that share one scale, along the input dimension of a weight.
const BLOCK: u8 = 32;

impl BaseQuant {
    fn value(self) -> Option<QuantValue> {
        match self {
            BaseQuant::None => None,
            BaseQuant::Q8 => Some(QuantValue::Q8S),
            BaseQuant::Q4 => Some(QuantValue::Q4S),
        }
    }
}

/// The scheme of a weight of `dims`, blocked along the axis that is its input: dimension 0 of a
/// linear weight (burn stores `[d_in, d_out]`), dimension 1 of an embedding `[vocab, hidden]`.
fn scheme(value: QuantValue, along_rows: bool) -> QuantScheme {
    let block: &[u8] = if along_rows { &[BLOCK, 1] } else { &[BLOCK] };
    QuantScheme::default()
        .with_value(value)
        .per_block(block, ScaleDtype::F32)
}

/// Which parameters are quantized, by burn path: the seven projections of every layer, a separate
/// `lm_head`, and the token embedding (the output projection when tied).
fn is_base_weight(path: &str) -> bool {
    const PROJECTIONS: [&str; 7] = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ];
    path == "model.embed_tokens.weight"
        || path == "lm_head.weight"
        || path.strip_suffix(".weight").is_some_and(|module| {
            module.starts_with("model.layers.")
                && PROJECTIONS
                    .iter()
                    .any(|p| module.rsplit('.').next() == Some(p))
        })
}

struct Quantize {
    value: QuantValue,
    path: Vec<String>,
    count: usize,
}

impl ModuleMapper for Quantize {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        if D != 2 || !is_base_weight(&path) {
            return param;
        }
        let shape = param.lazy_shape();
        let (rows, cols) = (shape[0], shape[1]);
        let along_rows = path != "model.embed_tokens.weight";
        let blocked = if along_rows { rows } else { cols };
        if !blocked.is_multiple_of(usize::from(BLOCK)) {
            // A width that is no multiple of the block keeps its f32 weight rather than fail.
            return param;
        }
        self.count += 1;
        let scheme = scheme(self.value, along_rows);
        param.map(|w| w.quantize_dynamic(&scheme))
    }
}

/// The model with its projection and embedding weights quantized as `quant` says, and how many
/// weight matrices that was. [`BaseQuant::None`] returns the model unchanged.
fn quantize_base(model: LlamaForCausalLM, quant: BaseQuant) -> (LlamaForCausalLM, usize) {
    let Some(value) = quant.value() else {
        return (model, 0);
    };
    let mut mapper = Quantize {
        value,
        path: Vec::new(),
        count: 0,
    };
    let model = model.map(&mut mapper);
    (model, mapper.count)
}

const BATCH: usize = 2;
const SEQ: usize = 64;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `VmRSS`-style line of `/proc/self/status`, in MiB.
fn proc_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn memory(stage: &str) {
    println!(
        "{stage:<28} rss {:>7.1} MiB   peak so far {:>7.1} MiB",
        proc_mib("VmRSS:"),
        proc_mib("VmHWM:")
    );
}

fn to_vec(t: Tensor<3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 logits")
}

/// Largest |Δ| against the fixture's logits (transformers, f32) and how many positions keep
/// transformers' top token.
fn compare_with_fixture(model: &LlamaForCausalLM, device: &Device) {
    let fx: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/smollm2_logits.json")).expect("fixture"),
    )
    .expect("json");
    let ids: Vec<i64> = fx["input_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect();
    let seq = ids.len();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq]), device);
    let logits = model.forward(input, Tensor::<2, Int>::ones([1, seq], device));
    let vocab = logits.dims()[2];
    let all = to_vec(logits);
    let (mut worst, mut same_top) = (0.0f32, 0);
    let positions = fx["positions"].as_array().expect("positions");
    for (t, pos) in positions.iter().enumerate() {
        let row = &all[t * vocab..(t + 1) * vocab];
        let top = pos["top_ids"].as_array().expect("top ids");
        let want = pos["top_logits"].as_array().expect("top logits");
        for (id, w) in top.iter().zip(want) {
            let got = row[id.as_u64().expect("id") as usize];
            worst = worst.max((got - w.as_f64().expect("logit") as f32).abs());
        }
        let best = (0..vocab).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        if best as u64 == top[0].as_u64().expect("id") {
            same_top += 1;
        } else {
            let margin = want[0].as_f64().expect("logit") - want[1].as_f64().expect("logit");
            println!(
                "position {t}: top token changed; transformers' top-2 margin there {margin:.3}"
            );
        }
    }
    let last = &all[(seq - 1) * vocab..];
    for (i, w) in fx["last_logits_0_512"]
        .as_array()
        .expect("last logits")
        .iter()
        .enumerate()
    {
        worst = worst.max((last[i] - w.as_f64().expect("logit") as f32).abs());
    }
    println!(
        "fixture prompt ({seq} tokens): max |Δlogit| vs transformers f32 {worst:.4}, \
         top token kept at {same_top}/{} positions",
        positions.len()
    );

    // The greedy answer, the prefix recomputed each step, against transformers'.
    let want: Vec<i64> = fx["greedy_ids"]
        .as_array()
        .expect("greedy ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect();
    let mut ids: Vec<i64> = fx["input_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect();
    let mut answer = Vec::new();
    while answer.len() < want.len() {
        let n = ids.len();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, n]), device);
        let logits = model.forward(input, Tensor::<2, Int>::ones([1, n], device));
        let last = to_vec(logits.slice([0..1, n - 1..n, 0..vocab]));
        let next = (0..vocab).fold(0, |b, i| if last[i] > last[b] { i } else { b }) as i64;
        answer.push(next);
        ids.push(next);
    }
    let same = answer.iter().zip(&want).take_while(|(a, b)| a == b).count();
    println!(
        "greedy answer: first {same} of transformers' {} tokens equal",
        want.len()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let quant: BaseQuant = serde_json::from_value(serde_json::Value::String(
        args.next().unwrap_or_else(|| "none".into()),
    ))
    .expect("first argument: none, q8 or q4");
    let steps: usize = args.next().map_or(3, |s| s.parse().expect("steps"));
    // `whole`: keep the peak of the whole run (what `/usr/bin/time -v` reports); otherwise the
    // peak is reset before the steps, so the last line is the training step's own.
    // `checkpointing`: burn's gradient checkpointing on the autodiff device. `skip-fixture`: no
    // logit comparison (the quantized forward is slow on Flex).
    let flags: Vec<String> = args.collect();
    let flag = |f: &str| flags.iter().any(|x| x == f);
    let whole = flag("whole");
    println!("base {quant:?}, {steps} steps of batch {BATCH} × {SEQ} tokens");
    memory("start");

    let device = if flag("checkpointing") {
        Device::flex().autodiff().gradient_checkpointing()
    } else {
        Device::flex().autodiff()
    };
    let bytes = std::fs::read(root().join("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("run scripts/fetch-assets.sh");
    let (model, config) =
        hearth_models::gguf::load_llama_gguf(&bytes, 0.0, &device).expect("loads");
    drop(bytes);
    memory("loaded (f32)");
    let started = Instant::now();
    let (model, quantized) = quantize_base(model, quant);
    println!(
        "quantized {quantized} weight matrices in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    memory("base stored");

    if !flag("skip-fixture") {
        let started = Instant::now();
        compare_with_fixture(&model.clone().valid(), &device.clone().inner());
        println!(
            "fixture forward and greedy answer {:.2} s",
            started.elapsed().as_secs_f64()
        );
        memory("after fixture forward");
    }

    let projections = [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ];
    let paths: Vec<String> = (0..config.num_hidden_layers)
        .flat_map(|l| {
            projections
                .iter()
                .map(move |p| format!("model.layers.{l}.{p}.weight"))
        })
        .collect();
    let model = model.apply_lora(Lora::new(8, 16.0).set_param_group(ParamGroup::from_paths(paths)));
    println!("trainable parameters: {}", trainable_params(&model));
    memory("adapters attached");

    // A fixed pseudo-random batch: the step's cost does not depend on the text.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let ids: Vec<i64> = (0..BATCH * SEQ)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % config.vocab_size as u64) as i64
        })
        .collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [BATCH, SEQ]), &device);
    let mask = Tensor::<2, Int>::ones([BATCH, SEQ], &device);
    let targets = input
        .clone()
        .slice([0..BATCH, 1..SEQ])
        .unsqueeze_dim::<3>(2);

    let mut optim = SgdConfig::new().init();
    let mut model = model;
    // From here the peak is the training step's alone (Linux: "5" resets VmHWM).
    if !whole {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        memory("peak reset");
    }
    for step in 0..steps {
        let started = Instant::now();
        let logits = model.forward(input.clone(), mask.clone());
        let vocab = logits.dims()[2];
        let log_probs = log_softmax(logits.slice([0..BATCH, 0..SEQ - 1, 0..vocab]), 2);
        let loss = log_probs.gather(2, targets.clone()).mean().neg();
        let value = loss
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("loss")[0];
        let grads = loss.backward();
        if step == 0 {
            // Gradients reach the factors and not the (quantized) base.
            let q = &model.model.layers[0].self_attn.q_proj.weight;
            let adapter = q.adapter().expect("adapter");
            println!(
                "gradients: A {}, B {}, base {}, embedding {}",
                adapter.a.val().grad(&grads).is_some(),
                adapter.b.val().grad(&grads).is_some(),
                q.base().grad(&grads).is_some(),
                model.model.embed_tokens.weight.val().grad(&grads).is_some(),
            );
        }
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(1e-2, model, grads);
        println!(
            "step {step}: loss {value:.4}, {:.2} s",
            started.elapsed().as_secs_f64()
        );
        memory("after step");
    }
}
