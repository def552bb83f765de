//! The causal-LM loss with the prompt masked equals transformers' on the tiny random Llama
//! (`scripts/fixtures/tiny_llama.py`): labels −100 on the prompt and on padding.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::fixture;
use hearth_models::llama::{LlamaConfig, LlamaForCausalLM};
use hearth_train::loss::causal_lm_loss;

#[test]
fn masked_causal_lm_loss_matches_transformers() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-llama");
    let config = LlamaConfig::from_json(&std::fs::read(dir.join("config.json")).expect("config"))
        .expect("config");
    let device = Device::flex();
    let model = LlamaForCausalLM::init(&config, 0.0, &device)
        .expect("builds")
        .load_safetensors(std::fs::read(dir.join("model.safetensors")).expect("weights"))
        .expect("loads");
    let fx = fixture("tiny_llama.json");
    let rows = |k: &str| -> Vec<Vec<i64>> {
        fx[k]
            .as_array()
            .expect(k)
            .iter()
            .map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_i64().expect("int"))
                    .collect()
            })
            .collect()
    };
    let (ids, mask) = (rows("input_ids"), rows("attention_mask"));
    let prompt: Vec<usize> = fx["prompt_len"]
        .as_array()
        .expect("prompt_len")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect();
    let (batch, seq) = (ids.len(), ids[0].len());
    let mut labels = Vec::new();
    for b in 0..batch {
        for t in 0..seq {
            let scored = t >= prompt[b] && mask[b][t] == 1;
            labels.push(scored.then_some(ids[b][t] as usize));
        }
    }
    let tensor = |v: &[Vec<i64>]| {
        Tensor::<2, Int>::from_data(TensorData::new(v.concat(), [batch, seq]), &device)
    };
    let logits = model.forward(tensor(&ids), tensor(&mask));
    let loss = causal_lm_loss(logits.clone(), &labels)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")[0];
    let want = fx["loss"].as_f64().expect("loss") as f32;
    assert!(
        (loss - want).abs() < 1e-5,
        "loss {loss} vs transformers' {want}"
    );
    // Scoring the prompt too gives another loss: the mask is doing something.
    let all: Vec<Option<usize>> = ids
        .concat()
        .iter()
        .zip(mask.concat())
        .map(|(&i, m)| (m == 1).then_some(i as usize))
        .collect();
    let unmasked = causal_lm_loss(logits, &all)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")[0];
    assert!((unmasked - want).abs() > 1e-3, "{unmasked} vs {want}");
}

/// Every tensor of a safetensors file (F32) by name.
fn safetensors_f32(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<f32>> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect()
}

/// A matrix's values in PEFT's layout (burn keeps the factors transposed), row-major.
fn peft_layout(t: Tensor<2>) -> Vec<f32> {
    t.transpose()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// The largest difference between two equally long vectors.
fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// The PEFT adapter of `scripts/fixtures/llama_lora.py` on the tiny Llama, as llm.c checks
/// GPT-2 against PyTorch: the masked loss, the gradient of every lora_A and lora_B after one
/// backward pass, and every factor after one AdamW step (lr 1e-2, weight decay 0.01) equal
/// PyTorch's within 1e-5.
#[test]
fn lora_gradients_and_one_adamw_step_match_pytorch() {
    use burn::optim::GradientsParams;
    use hearth_models::host::named_params;
    use hearth_models::peft::{load_adapter, peft_names};
    use hearth_train::optim::Optimizer;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let read = |p: &str| std::fs::read(root.join(p)).expect("fixture is committed");
    let device = Device::flex().autodiff();
    let config = LlamaConfig::from_json(&read("tiny-llama/config.json")).expect("config");
    let model = LlamaForCausalLM::init(&config, 0.0, &device)
        .expect("builds")
        .load_safetensors(read("tiny-llama/model.safetensors"))
        .expect("loads");
    let model = load_adapter(
        model,
        &read("peft-llama-adapter/adapter_config.json"),
        &read("peft-llama-adapter/adapter_model.safetensors"),
    )
    .expect("the adapter loads");
    let fx = fixture("tiny_llama_lora.json");
    let reference = safetensors_f32(&read("tiny_llama_lora.safetensors"));

    let rows = |k: &str| -> Vec<i64> {
        fx[k]
            .as_array()
            .expect(k)
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_i64().expect("int"))
            })
            .collect()
    };
    let (ids, mask) = (rows("input_ids"), rows("attention_mask"));
    let batch = fx["input_ids"].as_array().expect("rows").len();
    let seq = ids.len() / batch;
    let prompt: Vec<usize> = fx["prompt_len"]
        .as_array()
        .expect("prompt_len")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect();
    let labels: Vec<Option<usize>> = (0..batch * seq)
        .map(|i| (i % seq >= prompt[i / seq] && mask[i] == 1).then_some(ids[i] as usize))
        .collect();
    let tensor =
        |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [batch, seq]), &device);
    let loss = causal_lm_loss(model.forward(tensor(ids), tensor(mask)), &labels);
    let value = loss
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")[0];
    let want = fx["loss"].as_f64().expect("loss") as f32;
    assert!(
        (value - want).abs() < 1e-5,
        "loss {value} vs PyTorch's {want}"
    );

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let named = named_params(&model);
    let names = peft_names(&model);
    assert_eq!(names.len(), 28, "both factors of 7 projections in 2 layers");
    let mut worst_grad = 0f32;
    for (path, peft) in &names {
        let ours = peft_layout(
            grads
                .get::<2>(named.ids[path])
                .expect("a factor's gradient"),
        );
        let theirs = &reference[&format!("grad.{peft}")];
        assert!(
            theirs.iter().any(|&g| g != 0.0),
            "{peft}: PyTorch's gradient is zero"
        );
        let diff = worst(&ours, theirs);
        assert!(diff < 1e-5, "{peft}: gradient differs by {diff:e}");
        worst_grad = worst_grad.max(diff);
    }

    let mut optimizer = Optimizer::new(0.01);
    let model = optimizer.step(1e-2, model, grads);
    let named = named_params(&model);
    let mut worst_step = 0f32;
    for (path, peft) in &names {
        let ours = peft_layout(named.matrices[path].clone());
        let diff = worst(&ours, &reference[&format!("step.{peft}")]);
        assert!(
            diff < 1e-5,
            "{peft}: after one AdamW step, differs by {diff:e}"
        );
        worst_step = worst_step.max(diff);
    }
    eprintln!(
        "tiny Llama + LoRA vs PyTorch: loss {:e}, gradients {worst_grad:e}, after one AdamW step \
         {worst_step:e}",
        (value - want).abs()
    );
}
