//! A tiny random BERT for browser tests: 2 layers, hidden 32, the first `vocab` ids of a real
//! WordPiece tokenizer, weights drawn from a fixed seed. Same file layout and tensor names as a
//! HuggingFace BERT checkpoint, so it goes through exactly the loading path a real model does.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::{Value, json};

const HIDDEN: usize = 32;
const LAYERS: usize = 2;
const HEADS: usize = 2;
const INTERMEDIATE: usize = 64;
const POSITIONS: usize = 128;
const SEED: u64 = 20_261_128;
/// Larger than BERT's 0.02 so that a random model's sentence vectors differ visibly.
const STD: f64 = 0.1;
/// The feed-forward input weights are larger still, so GELU sees pre-activations beyond ±13 as
/// real checkpoints do (MiniLM's first layers reach ±24): where a driver's `tanh` overflows
/// (SwiftShader), a GELU backward through `tanh` turns those into NaN, and the browser test
/// would see it.
const FFN_STD: f64 = 0.8;

/// The tokenizer restricted to ids below `vocab` (BERT vocabularies put special tokens, single
/// characters and the most frequent words first).
fn tiny_tokenizer(source: &[u8], vocab: usize) -> Result<Value> {
    let mut tok: Value = serde_json::from_slice(source).context("parsing the tokenizer")?;
    let Some(entries) = tok["model"]["vocab"].as_object_mut() else {
        bail!("the tokenizer has no WordPiece vocabulary");
    };
    entries.retain(|_, id| id.as_u64().is_some_and(|id| (id as usize) < vocab));
    if entries.len() != vocab {
        bail!("the tokenizer's ids below {vocab} are not contiguous");
    }
    if let Some(added) = tok["added_tokens"].as_array()
        && added
            .iter()
            .any(|t| t["id"].as_u64().is_none_or(|id| id as usize >= vocab))
    {
        bail!("a special token of the tokenizer lies above id {vocab}");
    }
    tok["truncation"] = Value::Null;
    tok["padding"] = Value::Null;
    Ok(tok)
}

fn config(vocab: usize) -> Value {
    json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute"
    })
}

/// HF tensor names and shapes of the model, in a fixed order.
fn shapes(vocab: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![vocab, HIDDEN],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![POSITIONS, HIDDEN],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, HIDDEN],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            out.push((format!("{p}.{m}.weight"), vec![HIDDEN, HIDDEN]));
            out.push((format!("{p}.{m}.bias"), vec![HIDDEN]));
        }
        out.push((
            format!("{p}.attention.output.LayerNorm.weight"),
            vec![HIDDEN],
        ));
        out.push((format!("{p}.attention.output.LayerNorm.bias"), vec![HIDDEN]));
        out.push((
            format!("{p}.intermediate.dense.weight"),
            vec![INTERMEDIATE, HIDDEN],
        ));
        out.push((format!("{p}.intermediate.dense.bias"), vec![INTERMEDIATE]));
        out.push((
            format!("{p}.output.dense.weight"),
            vec![HIDDEN, INTERMEDIATE],
        ));
        out.push((format!("{p}.output.dense.bias"), vec![HIDDEN]));
        out.push((format!("{p}.output.LayerNorm.weight"), vec![HIDDEN]));
        out.push((format!("{p}.output.LayerNorm.bias"), vec![HIDDEN]));
    }
    out.push(("pooler.dense.weight".into(), vec![HIDDEN, HIDDEN]));
    out.push(("pooler.dense.bias".into(), vec![HIDDEN]));
    out
}

fn weights(vocab: usize) -> Result<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let normal = Normal::new(0.0, STD)?;
    let ffn = Normal::new(0.0, FFN_STD)?;
    let mut bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, shape) in shapes(vocab) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if name.contains("LayerNorm.weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else if name.ends_with("intermediate.dense.weight") {
            (0..n).map(|_| ffn.sample(&mut rng) as f32).collect()
        } else {
            (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
        };
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.insert(name, (shape, raw));
    }
    let views = bytes
        .iter()
        .map(|(name, (shape, raw))| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), raw)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, None)?)
}

/// Writes `config.json`, `model.safetensors` and `tokenizer.json` into `out`.
pub fn write(tokenizer: &Path, out: &Path, vocab: usize) -> Result<()> {
    let source = fs::read(tokenizer).with_context(|| {
        format!(
            "reading {} (run scripts/fetch-assets.sh first)",
            tokenizer.display()
        )
    })?;
    fs::create_dir_all(out)?;
    fs::write(
        out.join("tokenizer.json"),
        serde_json::to_vec(&tiny_tokenizer(&source, vocab)?)?,
    )?;
    fs::write(
        out.join("config.json"),
        serde_json::to_vec_pretty(&config(vocab))?,
    )?;
    fs::write(out.join("model.safetensors"), weights(vocab)?)?;
    eprintln!("tiny BERT written to {}", out.display());
    Ok(())
}
