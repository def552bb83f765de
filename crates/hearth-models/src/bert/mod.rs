//! BERT-family encoders as HuggingFace `transformers` defines them.
//!
//! Paper: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
//! Understanding" (<https://arxiv.org/abs/1810.04805>). Upstream modeling file:
//! `transformers/models/bert/modeling_bert.py`. Each struct below mirrors one HF submodule and
//! carries its name, so a weight's burn path is its HF name after the one two-way table in
//! [`names`] (`LayerNorm` → `layer_norm`, `self` → `self_attention`, both of which Rust cannot
//! spell as field names). The config is in [`config`], the sequence-classification head in
//! [`classifier`].
//!
//! LoRA: every projection goes through [`crate::lora::linear`], which computes
//! `x·W + b + s·(dropout(x)·A)·B` when burn's `apply_lora` attached an adapter to the weight,
//! so LoRA dropout acts on the adapter's input only, as in PEFT, and the frozen base weight never
//! takes a weight-sized gradient.

mod classifier;
mod config;
pub mod names;

pub use classifier::{BertForSequenceClassification, Pooling, head_weights, import_head};
pub use config::BertConfig;
pub(crate) use config::FAMILY;
pub use names::{burn_to_hf, hf_to_burn};

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::store::KeyRemapper;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::ModelError;
use crate::activation::{gelu_erf, gelu_tanh, safe_tanh};
use crate::host::load_pytorch;
use crate::{dropout, lora};
use config::Activation;

/// A tokenized batch on the device: ids, segment ids and the padding mask, all `[batch, seq]`.
#[derive(Debug, Clone)]
pub struct BertInput {
    /// Token ids.
    pub input_ids: Tensor<2, Int>,
    /// Segment ids (all zero for single sentences).
    pub token_type_ids: Tensor<2, Int>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor<2, Int>,
}

impl BertInput {
    /// Moves a host-side [`crate::tokenizer::Encoded`] batch to `device`.
    pub fn new(batch: &crate::tokenizer::Encoded, device: &Device) -> Self {
        let shape = [batch.batch_size, batch.seq_len];
        let to_tensor = |v: &[i64]| Tensor::from_data(TensorData::new(v.to_vec(), shape), device);
        Self {
            input_ids: to_tensor(&batch.input_ids),
            token_type_ids: to_tensor(&batch.token_type_ids),
            attention_mask: to_tensor(&batch.attention_mask),
        }
    }
}

/// Word, position and token-type embeddings, summed and normalized (HF `BertEmbeddings`).
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertEmbeddings {
    fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            word_embeddings: EmbeddingConfig::new(config.vocab_size, h).init(device),
            position_embeddings: EmbeddingConfig::new(config.max_position_embeddings, h)
                .init(device),
            token_type_embeddings: EmbeddingConfig::new(config.type_vocab_size, h).init(device),
            layer_norm: LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(token_type_ids);
        dropout::apply(&self.dropout, self.layer_norm.forward(x))
    }
}

/// Multi-head self-attention with the padding mask (HF `BertSelfAttention`).
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    dropout: Dropout,
    lora_dropout: Dropout,
    num_heads: usize,
    head_dim: usize,
}

impl BertSelfAttention {
    fn init(config: &BertConfig, lora_dropout: f64, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            query: LinearConfig::new(h, h).init(device),
            key: LinearConfig::new(h, h).init(device),
            value: LinearConfig::new(h, h).init(device),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            lora_dropout: DropoutConfig::new(lora_dropout).init(),
            num_heads: config.num_attention_heads,
            head_dim: config.head_dim(),
        }
    }

    /// `mask_bias` is `[batch, 1, 1, seq]`: 0 on real tokens, a large negative on padding.
    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let heads = |t: Tensor<3>| {
            t.reshape([batch, seq, self.num_heads, self.head_dim])
                .swap_dims(1, 2)
        };
        let q = heads(lora::linear(&self.query, x.clone(), &self.lora_dropout));
        let k = heads(lora::linear(&self.key, x.clone(), &self.lora_dropout));
        let v = heads(lora::linear(&self.value, x, &self.lora_dropout));
        let scores = q.matmul(k.swap_dims(2, 3)) / (self.head_dim as f64).sqrt() + mask_bias;
        let probs = dropout::apply(&self.dropout, softmax(scores, 3));
        probs
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, seq, hidden])
    }
}

/// Output projection, dropout, residual and LayerNorm (HF `BertSelfOutput` and `BertOutput`).
#[derive(Module, Debug)]
pub struct BertResidualOutput {
    dense: Linear,
    layer_norm: LayerNorm,
    dropout: Dropout,
    lora_dropout: Dropout,
}

impl BertResidualOutput {
    fn init(config: &BertConfig, d_in: usize, lora_dropout: f64, device: &Device) -> Self {
        Self {
            dense: LinearConfig::new(d_in, config.hidden_size).init(device),
            layer_norm: LayerNormConfig::new(config.hidden_size)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            lora_dropout: DropoutConfig::new(lora_dropout).init(),
        }
    }

    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let x = dropout::apply(
            &self.dropout,
            lora::linear(&self.dense, x, &self.lora_dropout),
        );
        self.layer_norm.forward(x + residual)
    }
}

/// Self-attention and its output block (HF `BertAttention`).
#[derive(Module, Debug)]
pub struct BertAttention {
    self_attention: BertSelfAttention,
    output: BertResidualOutput,
}

/// The feed-forward expansion (HF `BertIntermediate`).
#[derive(Module, Debug)]
pub struct BertIntermediate {
    dense: Linear,
    lora_dropout: Dropout,
    #[module(skip)]
    act: Activation,
}

impl BertIntermediate {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = lora::linear(&self.dense, x, &self.lora_dropout);
        match self.act {
            Activation::Gelu => gelu_erf(x),
            Activation::GeluApprox => gelu_tanh(x),
            Activation::Relu => relu(x),
        }
    }
}

/// One encoder layer (HF `BertLayer`).
#[derive(Module, Debug)]
pub struct BertLayer {
    attention: BertAttention,
    intermediate: BertIntermediate,
    output: BertResidualOutput,
}

impl BertLayer {
    fn init(config: &BertConfig, act: Activation, lora_dropout: f64, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            attention: BertAttention {
                self_attention: BertSelfAttention::init(config, lora_dropout, device),
                output: BertResidualOutput::init(config, h, lora_dropout, device),
            },
            intermediate: BertIntermediate {
                dense: LinearConfig::new(h, config.intermediate_size).init(device),
                lora_dropout: DropoutConfig::new(lora_dropout).init(),
                act,
            },
            output: BertResidualOutput::init(
                config,
                config.intermediate_size,
                lora_dropout,
                device,
            ),
        }
    }

    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let attended = self.attention.self_attention.forward(x.clone(), mask_bias);
        let x = self.attention.output.forward(attended, x);
        let inner = self.intermediate.forward(x.clone());
        self.output.forward(inner, x)
    }
}

/// The stack of encoder layers (HF `BertEncoder`).
#[derive(Module, Debug)]
pub struct BertEncoder {
    layer: Vec<BertLayer>,
}

/// Dense + tanh over the first ([CLS]) token (HF `BertPooler`).
#[derive(Module, Debug)]
pub struct BertPooler {
    dense: Linear,
    lora_dropout: Dropout,
}

impl BertPooler {
    fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        safe_tanh(lora::linear(
            &self.dense,
            first_token(hidden),
            &self.lora_dropout,
        ))
    }
}

/// The BERT encoder (HF `BertModel`).
#[derive(Module, Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    encoder: BertEncoder,
    pooler: Option<BertPooler>,
    /// The config it was built from: the shapes of its linear layers.
    #[module(skip)]
    config: BertConfig,
}

impl BertModel {
    /// Builds a randomly initialized encoder; [`BertModel::load_safetensors`] fills it.
    ///
    /// `lora_dropout` is the dropout on adapter inputs; it only acts once adapters are attached.
    pub fn init(
        config: &BertConfig,
        lora_dropout: f64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if !(0.0..1.0).contains(&lora_dropout) {
            return Err(ModelError::Lora(format!(
                "lora_dropout must be in [0, 1), found {lora_dropout}"
            )));
        }
        let act = config.activation()?;
        let h = config.hidden_size;
        Ok(Self {
            embeddings: BertEmbeddings::init(config, device),
            encoder: BertEncoder {
                layer: (0..config.num_hidden_layers)
                    .map(|_| BertLayer::init(config, act, lora_dropout, device))
                    .collect(),
            },
            pooler: Some(BertPooler {
                dense: LinearConfig::new(h, h).init(device),
                lora_dropout: DropoutConfig::new(lora_dropout).init(),
            }),
            config: config.clone(),
        })
    }

    /// Loads HF weights from the bytes of `model.safetensors`.
    ///
    /// Every encoder tensor must be present with the shape `config.json` implies; the pooler is
    /// optional (sentence-transformers checkpoints may lack it), and tensors the encoder does not
    /// use (`position_ids`, a classification head) are ignored. Half-precision weights are cast
    /// to f32.
    ///
    /// A file with layers past `num_hidden_layers` is refused ([`crate::compat::bert_weights`]):
    /// loading it would silently keep the first layers only.
    pub fn load_safetensors(mut self, bytes: Vec<u8>) -> Result<Self, ModelError> {
        if let Some(names) = crate::compat::tensor_names(&bytes) {
            crate::compat::bert_weights(&self.config, &names)?;
        }
        let remapper = checkpoint_remapper(&bytes)?;
        let result = load_pytorch(&mut self, bytes, remapper)?;
        crate::error::check_loaded(
            &result,
            |p| p.starts_with("pooler."),
            "is num_hidden_layers right, and is this a BERT-family checkpoint?",
        )?;
        if result.missing.iter().any(|(p, _)| p.starts_with("pooler.")) {
            self.pooler = None;
        }
        Ok(self)
    }

    /// Whether the checkpoint carried pooler weights.
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// Number of encoder layers.
    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    /// The last hidden state `[batch, seq, hidden]`.
    pub fn forward(&self, input: &BertInput) -> Tensor<3> {
        let mask_bias = mask_bias(input);
        let mut x = self.embed(input);
        for layer in &self.encoder.layer {
            x = layer.forward(x, mask_bias.clone());
        }
        x
    }

    /// The embeddings' output, the first layer's input `[batch, seq, hidden]`.
    fn embed(&self, input: &BertInput) -> Tensor<3> {
        self.embeddings
            .forward(input.input_ids.clone(), input.token_type_ids.clone())
    }

    /// The encoder layers, first to last.
    fn layers(&self) -> &[BertLayer] {
        &self.encoder.layer
    }

    /// Attention-mask weighted mean of the last hidden state `[batch, hidden]`
    /// (sentence-transformers' mean pooling, without normalization).
    pub fn mean_pooled(&self, input: &BertInput) -> Tensor<2> {
        mean_pool(self.forward(input), input.attention_mask.clone())
    }

    /// HF module paths, burn parameter paths and shapes of every linear layer, in model order
    /// ([`BertConfig::linear_modules`] with this checkpoint's pooler).
    ///
    /// Names are relative to the encoder (`encoder.layer.0.attention.self.query`), as PEFT sees
    /// them under a `BertModel`; [`lora`] matches `target_modules` against them.
    pub fn linear_modules(&self) -> Vec<lora::LinearModule> {
        self.config.linear_modules(self.has_pooler())
    }

    /// The pooler's output over the [CLS] token `[batch, hidden]`, or the raw [CLS] state when
    /// the checkpoint has no pooler.
    fn cls_pooled(&self, hidden: Tensor<3>) -> Tensor<2> {
        match &self.pooler {
            Some(pooler) => pooler.forward(hidden),
            // `BertForSequenceClassification::new` refuses CLS pooling without a pooler; the
            // raw [CLS] state is the only sensible reading if a caller got here anyway.
            None => first_token(hidden),
        }
    }
}

/// The attention scores' bias `[batch, 1, 1, seq]`: 0 on real tokens, a large negative on
/// padding (HF adds the dtype's minimum; any large negative gives the same softmax).
fn mask_bias(input: &BertInput) -> Tensor<4> {
    let mask = input.attention_mask.clone().float();
    let [batch, seq] = mask.dims();
    (mask.neg() + 1.0)
        .mul_scalar(-1e9)
        .reshape([batch, 1, 1, seq])
}

/// The hidden state of the first ([CLS]) token: `[batch, seq, hidden]` → `[batch, hidden]`.
fn first_token(hidden: Tensor<3>) -> Tensor<2> {
    let [batch, _, width] = hidden.dims();
    hidden
        .slice([0..batch, 0..1, 0..width])
        .reshape([batch, width])
}

/// The store's key remapper for a checkpoint: each tensor name of the file renamed to its
/// encoder path by [`names::checkpoint_to_encoder`]. A file whose header cannot be read gets
/// none, and the store reports it.
fn checkpoint_remapper(bytes: &[u8]) -> Result<KeyRemapper, ModelError> {
    let Ok(file) = safetensors::SafeTensors::deserialize(bytes) else {
        return Ok(KeyRemapper::new());
    };
    let renames: Vec<(String, String)> = file
        .names()
        .into_iter()
        .filter_map(|name| {
            let path = names::checkpoint_to_encoder(name);
            (path != *name).then(|| (format!("^{}$", regex::escape(name)), path))
        })
        .collect();
    KeyRemapper::from_patterns(renames)
        .map_err(|e| ModelError::Weights(format!("bad name table: {e}")))
}

/// Mask-weighted mean over the sequence: `[batch, seq, hidden]`, `[batch, seq]` → `[batch, hidden]`.
fn mean_pool(hidden: Tensor<3>, attention_mask: Tensor<2, Int>) -> Tensor<2> {
    let [batch, seq, width] = hidden.dims();
    let mask = attention_mask.float().reshape([batch, seq, 1]);
    let summed = (hidden * mask.clone()).sum_dim(1).reshape([batch, width]);
    let counts = mask.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
    summed / counts
}
