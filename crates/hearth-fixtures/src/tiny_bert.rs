//! Tiny random BERT checkpoints: HF's `config.json` and `model.safetensors` with HF's tensor
//! names and shapes, drawn from a fixed seed, so a test model goes through exactly the loading
//! path a real checkpoint does at a fraction of the cost. The browser tests' model
//! ([`TinyBert::BROWSER`], written by `cargo xtask tiny-bert`) and the model tests' one are
//! both built here.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::{Value, json};

/// What building a tiny model can go wrong on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("parsing the tokenizer: {0}")]
    Json(#[from] serde_json::Error),
    #[error("serializing the weights: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("bad standard deviation: {0}")]
    Normal(#[from] rand_distr::NormalError),
    #[error("{0}")]
    Tokenizer(String),
}

/// How the weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// As a freshly initialized HF model: biases 0 and LayerNorm weights 1; every other weight
    /// N(0, `std`), but the feed-forward input weights N(0, `ffn_std`).
    Fresh { std: f64, ffn_std: f64 },
    /// Every tensor N(0, `std`) in f32, LayerNorm weights around 1 instead of 0, so that a
    /// bias or a norm weight that is lost or misplaced changes the outputs. Drawn in the order
    /// of the model tests' first builder (embeddings, pooler, then each layer's linears before
    /// its norms), so that its values stay the ones those tests were written against: one of
    /// them counts parameters that only rounding moves.
    Noisy { std: f64 },
}

/// A tiny BERT's shape, seed and initialization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyBert {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub positions: usize,
    pub seed: u64,
    pub init: Init,
}

impl TinyBert {
    /// The browser tests' model: 2 layers, hidden 32, the first 4,000 ids of MiniLM's
    /// WordPiece vocabulary (see [`restrict_tokenizer`]).
    pub const BROWSER: TinyBert = TinyBert {
        vocab: 4000,
        hidden: 32,
        layers: 2,
        heads: 2,
        intermediate: 64,
        positions: 128,
        seed: 20_261_128,
        // Larger than BERT's 0.02 so that a random model's sentence vectors differ visibly.
        // The feed-forward input weights are larger still, so GELU sees pre-activations beyond
        // ±13 as real checkpoints do (MiniLM's first layers reach ±24): where a driver's `tanh`
        // overflows (SwiftShader), a GELU backward through `tanh` turns those into NaN, and the
        // browser test would see it.
        init: Init::Fresh {
            std: 0.1,
            ffn_std: 0.8,
        },
    };

    /// The model tests' model (hearth-models' `tests/common`): 4 layers, so that
    /// `layers_to_transform = [1, 3]` leaves layers out; hidden 32; 64 ids (the tests feed
    /// ids, not text).
    pub const MODEL_TESTS: TinyBert = TinyBert {
        vocab: 64,
        hidden: 32,
        layers: 4,
        heads: 2,
        intermediate: 64,
        positions: 32,
        seed: 7,
        init: Init::Noisy { std: 0.2 },
    };

    /// HF's `config.json` of a `BertModel` of this shape, without dropout.
    pub fn config(&self) -> Value {
        json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.intermediate,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "max_position_embeddings": self.positions,
            "type_vocab_size": 2,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "position_embedding_type": "absolute"
        })
    }

    /// HF's tensor names and shapes (`[out, in]` for linear weights), in HF's module order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (h, inner) = (self.hidden, self.intermediate);
        let mut out = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                vec![self.vocab, h],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![self.positions, h],
            ),
            ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ];
        let mut module = |name: String, rows: usize, cols: Option<usize>| {
            // A LayerNorm (no `cols`) has a weight and a bias of the width; a linear layer a
            // weight [rows, cols] and a bias [rows].
            let weight = cols.map_or(vec![rows], |cols| vec![rows, cols]);
            out.push((format!("{name}.weight"), weight));
            out.push((format!("{name}.bias"), vec![rows]));
        };
        module("embeddings.LayerNorm".into(), h, None);
        for l in 0..self.layers {
            let p = format!("encoder.layer.{l}");
            for m in ["query", "key", "value"] {
                module(format!("{p}.attention.self.{m}"), h, Some(h));
            }
            module(format!("{p}.attention.output.dense"), h, Some(h));
            module(format!("{p}.attention.output.LayerNorm"), h, None);
            module(format!("{p}.intermediate.dense"), inner, Some(h));
            module(format!("{p}.output.dense"), h, Some(inner));
            module(format!("{p}.output.LayerNorm"), h, None);
        }
        module("pooler.dense".into(), h, Some(h));
        out
    }

    /// [`TinyBert::tensors`] in the order their values are drawn: HF's module order, but for
    /// [`Init::Noisy`]'s.
    fn draw_order(&self) -> Vec<(String, Vec<usize>)> {
        let mut tensors = self.tensors();
        if let Init::Noisy { .. } = self.init {
            // A stable sort: embeddings, pooler, then per layer its linears, then its norms.
            tensors.sort_by_key(|(name, _)| {
                if name.starts_with("embeddings.") {
                    0
                } else if name.starts_with("pooler.") {
                    1
                } else {
                    let layer = name.split('.').nth(2).and_then(|l| l.parse().ok());
                    2 + 2 * layer.unwrap_or(0) + usize::from(name.contains("LayerNorm"))
                }
            });
        }
        tensors
    }

    /// The values of one tensor, drawn from `rng` as [`Init`] says.
    fn draw(&self, name: &str, n: usize, rng: &mut rand::rngs::StdRng) -> Result<Vec<f32>, Error> {
        let norm_weight = name.contains("LayerNorm.weight");
        match self.init {
            Init::Fresh { .. } if norm_weight => Ok(vec![1.0; n]),
            Init::Fresh { .. } if name.ends_with(".bias") => Ok(vec![0.0; n]),
            Init::Fresh { std, ffn_std } => {
                let ffn = name.ends_with("intermediate.dense.weight");
                let normal = Normal::new(0.0, if ffn { ffn_std } else { std })?;
                Ok((0..n).map(|_| normal.sample(rng) as f32).collect())
            }
            Init::Noisy { std } => {
                let normal = Normal::new(0.0f32, std as f32)?;
                let offset = if norm_weight { 1.0 } else { 0.0 };
                Ok((0..n).map(|_| offset + normal.sample(rng)).collect())
            }
        }
    }

    /// `model.safetensors`: every tensor of [`TinyBert::tensors`], F32, drawn from the seed.
    pub fn safetensors(&self) -> Result<Vec<u8>, Error> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let mut bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (name, shape) in self.draw_order() {
            let values = self.draw(&name, shape.iter().product(), &mut rng)?;
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
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(safetensors::serialize(views, None)?)
    }
}

/// A WordPiece `tokenizer.json` restricted to its ids below `vocab` (BERT vocabularies put
/// special tokens, single characters and the most frequent words first), without truncation
/// or padding.
pub fn restrict_tokenizer(source: &[u8], vocab: usize) -> Result<Value, Error> {
    let mut tok: Value = serde_json::from_slice(source)?;
    let Some(entries) = tok["model"]["vocab"].as_object_mut() else {
        return Err(Error::Tokenizer(
            "the tokenizer has no WordPiece vocabulary".into(),
        ));
    };
    entries.retain(|_, id| id.as_u64().is_some_and(|id| (id as usize) < vocab));
    if entries.len() != vocab {
        return Err(Error::Tokenizer(format!(
            "the tokenizer's ids below {vocab} are not contiguous"
        )));
    }
    if let Some(added) = tok["added_tokens"].as_array()
        && added
            .iter()
            .any(|t| t["id"].as_u64().is_none_or(|id| id as usize >= vocab))
    {
        return Err(Error::Tokenizer(format!(
            "a special token of the tokenizer lies above id {vocab}"
        )));
    }
    tok["truncation"] = Value::Null;
    tok["padding"] = Value::Null;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    const SMALL: TinyBert = TinyBert {
        vocab: 16,
        hidden: 8,
        layers: 2,
        heads: 2,
        intermediate: 12,
        positions: 10,
        seed: 1,
        init: Init::Fresh {
            std: 0.1,
            ffn_std: 0.8,
        },
    };

    fn values(bytes: &[u8]) -> BTreeMap<String, Vec<f32>> {
        let file = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
        file.tensors()
            .into_iter()
            .map(|(name, view)| {
                let v = view.data().chunks_exact(4);
                let v = v.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                (name, v.collect())
            })
            .collect()
    }

    #[test]
    fn every_tensor_of_hf_bert_is_written_once_with_its_shape() {
        let tensors = SMALL.tensors();
        // Embeddings (3 + LayerNorm), 16 per layer (6 linears, 2 LayerNorms), the pooler.
        assert_eq!(tensors.len(), 5 + 16 * SMALL.layers + 2);
        let bytes = SMALL.safetensors().expect("builds");
        let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
        assert_eq!(file.len(), tensors.len());
        for (name, shape) in &tensors {
            assert_eq!(
                file.tensor(name).expect("written").shape(),
                shape.as_slice()
            );
        }
        let shape = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
        };
        assert_eq!(
            shape("encoder.layer.1.intermediate.dense.weight"),
            Some(vec![12, 8])
        );
        assert_eq!(
            shape("embeddings.word_embeddings.weight"),
            Some(vec![16, 8])
        );
    }

    #[test]
    fn fresh_weights_have_zero_biases_and_unit_norms_and_noisy_ones_do_not() {
        let fresh = values(&SMALL.safetensors().expect("builds"));
        let noisy = TinyBert {
            init: Init::Noisy { std: 0.2 },
            ..SMALL
        };
        let noisy = values(&noisy.safetensors().expect("builds"));
        for (name, v) in &fresh {
            if name.contains("LayerNorm.weight") {
                assert!(v.iter().all(|x| *x == 1.0), "{name}");
                assert!(noisy[name].iter().any(|x| *x != 1.0), "{name}");
            } else if name.ends_with(".bias") {
                assert!(v.iter().all(|x| *x == 0.0), "{name}");
                assert!(noisy[name].iter().any(|x| *x != 0.0), "{name}");
            } else {
                assert!(v.iter().any(|x| *x != 0.0), "{name}");
            }
        }
        assert_eq!(fresh, values(&SMALL.safetensors().expect("builds")));
    }

    /// Both models change only on purpose: the browser test compares the page with the CLI on
    /// BROWSER (written with a pretty config) and docs/BROWSER.md's timings were taken on it;
    /// hearth-models' strategy tests were written against MODEL_TESTS (one of them counts
    /// parameters that only rounding moves).
    #[test]
    fn the_two_models_are_the_committed_ones() {
        let digest = |bytes: &[u8]| format!("{:x}", Sha256::digest(bytes));
        let browser_config = serde_json::to_vec_pretty(&TinyBert::BROWSER.config());
        let tests_config = serde_json::to_vec(&TinyBert::MODEL_TESTS.config());
        for (model, config, weights_sha, config_sha) in [
            (
                TinyBert::BROWSER,
                browser_config,
                "25eb65711df632137246b68285b1a7c4927f3551e496457646cfea4308677217",
                "2bab9d3aa550f32879271838ca67596d507820b6d3162f1529fc247d9b8ab8c4",
            ),
            (
                TinyBert::MODEL_TESTS,
                tests_config,
                "d29e8901bd256cf2a5eb4da7688a3a3c5be301a8d35ac75e317240f1a2ebc312",
                "2ffc0df6f8898bab917669159de8bf6dccc671b971ed059aeb1bf2bc34b7ecde",
            ),
        ] {
            let weights = model.safetensors().expect("builds");
            assert_eq!(digest(&weights), weights_sha, "{model:?}");
            assert_eq!(digest(&config.expect("json")), config_sha, "{model:?}");
        }
    }

    #[test]
    fn a_tokenizer_is_cut_to_its_first_ids_or_refused() {
        let source = json!({
            "added_tokens": [{"id": 0, "content": "[PAD]"}, {"id": 2, "content": "[CLS]"}],
            "truncation": {"max_length": 128},
            "padding": null,
            "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "a": 1, "[CLS]": 2, "b": 3}}
        });
        let bytes = serde_json::to_vec(&source).expect("json");
        let cut = restrict_tokenizer(&bytes, 3).expect("cuts");
        assert_eq!(
            cut["model"]["vocab"],
            json!({"[PAD]": 0, "a": 1, "[CLS]": 2})
        );
        assert_eq!(cut["truncation"], Value::Null);
        // [CLS] (id 2) would be lost below 2 ids.
        assert!(restrict_tokenizer(&bytes, 2).is_err());
        assert!(restrict_tokenizer(b"{}", 2).is_err());
    }
}
