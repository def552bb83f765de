//! `config.json` of a BERT-family model: the serde struct transformers' file maps to, its
//! checks, and what follows from it alone (the feed-forward activation, the list of linear
//! layers with their shapes).

use serde::Deserialize;

use super::names::hf_to_burn;
use crate::ModelError;
use crate::error::parse_config;
use crate::lora::LinearModule;

/// The family's name in messages.
pub(crate) const FAMILY: &str = "BERT";

/// `config.json` of a BERT-family model, as transformers writes it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu` is the exact, erf-based GELU).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Dropout on embeddings and sublayer outputs.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Number of learned positions.
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: usize,
    /// Only `absolute` positions are supported.
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
    /// Dropout before a classification head; `hidden_dropout_prob` when absent.
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// Standard deviation of the normal init of new weights (the classification head).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_position_type() -> String {
    "absolute".into()
}
fn default_init_range() -> f64 {
    0.02
}

/// The feed-forward activations HF's BERT config may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activation {
    Gelu,
    GeluApprox,
    Relu,
}

impl BertConfig {
    /// Parses and checks `config.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let config: Self = parse_config(bytes, FAMILY)?;
        config.validate()?;
        Ok(config)
    }

    pub(super) fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::UnsupportedConfig(msg));
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                self.position_embedding_type
            ));
        }
        self.activation()?;
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} must be in [0, 1), found {p}"));
            }
        }
        Ok(())
    }

    pub(super) fn activation(&self) -> Result<Activation, ModelError> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluApprox),
            "relu" => Ok(Activation::Relu),
            other => Err(ModelError::UnsupportedConfig(format!(
                "hidden_act `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)"
            ))),
        }
    }

    pub(super) fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Every linear layer of a BERT of this config, in model order, with its HF module path
    /// (relative to the encoder, as PEFT sees it under a `BertModel`), burn weight path and
    /// `[in, out]`: the six of each encoder layer, then the pooler's when the checkpoint has
    /// one. LoRA's target matching ([`crate::lora::target_group`]) and the planner's count of
    /// adapted layers both read this list.
    pub fn linear_modules(&self, pooler: bool) -> Vec<LinearModule> {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let layer = [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", h, i),
            ("output.dense", i, h),
        ];
        let mut out: Vec<LinearModule> = (0..self.num_hidden_layers)
            .flat_map(|n| {
                layer.iter().map(move |&(name, d_in, d_out)| {
                    LinearModule::from_hf(
                        &format!("encoder.layer.{n}.{name}"),
                        hf_to_burn,
                        [d_in, d_out],
                    )
                })
            })
            .collect();
        if pooler {
            out.push(LinearModule::from_hf("pooler.dense", hf_to_burn, [h, h]));
        }
        out
    }
}
