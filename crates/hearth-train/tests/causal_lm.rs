//! The causal-LM loss with the prompt masked equals transformers' on the tiny random Llama
//! (`scripts/make_llama_fixtures.py`): labels −100 on the prompt and on padding.

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
