//! BERT-family encoders as HuggingFace `transformers` defines them.
//!
//! Paper: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
//! Understanding" (<https://arxiv.org/abs/1810.04805>). Upstream modeling file:
//! `transformers/models/bert/modeling_bert.py`. Each struct below mirrors one HF submodule and
//! carries its name, so a weight's burn path is its HF name after the one table in
//! [`HF_TO_BURN`] (`LayerNorm` → `layer_norm`, `self` → `self_attention`, both of which Rust
//! cannot spell as field names).
//!
//! LoRA: every projection goes through [`crate::lora::linear`], which computes
//! `x·W + b + s·(dropout(x)·A)·B` when burn's `apply_lora` attached an adapter to the weight,
//! so LoRA dropout acts on the adapter's input only, as in PEFT, and the frozen base weight never
//! takes a weight-sized gradient.

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::store::{
    FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::ModelError;
use crate::activation::{gelu_erf, gelu_tanh, safe_tanh};
use crate::lora::{self, LoraSettings};

/// HuggingFace weight names → burn module paths, for every BERT-family checkpoint.
///
/// Regex patterns applied in order to each tensor name of `model.safetensors`. A
/// `BertForSequenceClassification` checkpoint prefixes the encoder with `bert.`; a plain
/// `BertModel` (as sentence-transformers ships) does not, so the prefix is optional.
pub const HF_TO_BURN: &[(&str, &str)] = &[
    (r"^bert\.", ""),
    (r"\.LayerNorm\.", ".layer_norm."),
    (r"\.attention\.self\.", ".attention.self_attention."),
];

/// Maps one HF weight name to its burn path with [`HF_TO_BURN`], as the loader's remapper does.
pub fn hf_to_burn(name: &str) -> String {
    HF_TO_BURN.iter().fold(
        name.to_string(),
        |acc, (from, to)| match regex::Regex::new(from) {
            Ok(re) => re.replace_all(&acc, *to).into_owned(),
            Err(_) => acc,
        },
    )
}

/// The linear layers of one encoder layer, by their HF module path inside `encoder.layer.N`.
/// PEFT's `target_modules` are matched against these names (and the pooler's).
pub const LAYER_LINEARS: &[&str] = &[
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

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
enum Activation {
    Gelu,
    GeluApprox,
    Relu,
}

impl BertConfig {
    /// Parses and checks `config.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let config: Self = serde_json::from_slice(bytes).map_err(|source| ModelError::Config {
            family: "BERT",
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ModelError> {
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

    fn activation(&self) -> Result<Activation, ModelError> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluApprox),
            "relu" => Ok(Activation::Relu),
            other => Err(ModelError::UnsupportedConfig(format!(
                "hidden_act `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)"
            ))),
        }
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

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
        self.dropout.forward(self.layer_norm.forward(x))
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
        let probs = self.dropout.forward(softmax(scores, 3));
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
        let x = self
            .dropout
            .forward(lora::linear(&self.dense, x, &self.lora_dropout));
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
        let [batch, _, width] = hidden.dims();
        let first = hidden
            .slice([0..batch, 0..1, 0..width])
            .reshape([batch, width]);
        safe_tanh(lora::linear(&self.dense, first, &self.lora_dropout))
    }
}

/// The BERT encoder (HF `BertModel`).
#[derive(Module, Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    encoder: BertEncoder,
    pooler: Option<BertPooler>,
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
        })
    }

    /// Loads HF weights from the bytes of `model.safetensors`.
    ///
    /// Every encoder tensor must be present with the shape `config.json` implies; the pooler is
    /// optional (sentence-transformers checkpoints may lack it), and tensors the encoder does not
    /// use (`position_ids`, a classification head) are ignored. Half-precision weights are cast
    /// to f32.
    pub fn load_safetensors(mut self, bytes: Vec<u8>) -> Result<Self, ModelError> {
        let remapper = KeyRemapper::from_patterns(HF_TO_BURN.to_vec())
            .map_err(|e| ModelError::Weights(format!("bad name table: {e}")))?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .remap(remapper)
            .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
            .validate(false)
            .allow_partial(true);
        let result = self
            .load_from(&mut store)
            .map_err(|e| ModelError::Weights(e.to_string()))?;
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
        let mask = input.attention_mask.clone().float();
        let [batch, seq] = mask.dims();
        // HF adds the dtype's minimum to masked scores; any large negative gives the same softmax.
        let mask_bias = (mask.neg() + 1.0)
            .mul_scalar(-1e9)
            .reshape([batch, 1, 1, seq]);
        let mut x = self
            .embeddings
            .forward(input.input_ids.clone(), input.token_type_ids.clone());
        for layer in &self.encoder.layer {
            x = layer.forward(x, mask_bias.clone());
        }
        x
    }

    /// Attention-mask weighted mean of the last hidden state `[batch, hidden]`
    /// (sentence-transformers' mean pooling, without normalization).
    pub fn mean_pooled(&self, input: &BertInput) -> Tensor<2> {
        mean_pool(self.forward(input), input.attention_mask.clone())
    }

    /// HF module paths and burn parameter paths of every linear layer, in model order.
    ///
    /// Names are relative to the encoder (`encoder.layer.0.attention.self.query`), as PEFT sees
    /// them under a `BertModel`; [`lora`] matches `target_modules` against them.
    pub fn linear_modules(&self) -> Vec<lora::LinearModule> {
        let mut out = Vec::new();
        for i in 0..self.encoder.layer.len() {
            for name in LAYER_LINEARS {
                out.push(lora::LinearModule::from_hf(
                    &format!("encoder.layer.{i}.{name}"),
                    hf_to_burn,
                ));
            }
        }
        if self.pooler.is_some() {
            out.push(lora::LinearModule::from_hf("pooler.dense", hf_to_burn));
        }
        out
    }
}

/// Mask-weighted mean over the sequence: `[batch, seq, hidden]`, `[batch, seq]` → `[batch, hidden]`.
fn mean_pool(hidden: Tensor<3>, attention_mask: Tensor<2, Int>) -> Tensor<2> {
    let [batch, seq, width] = hidden.dims();
    let mask = attention_mask.float().reshape([batch, seq, 1]);
    let summed = (hidden * mask.clone()).sum_dim(1).reshape([batch, width]);
    let counts = mask.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
    summed / counts
}

/// How a sequence becomes one vector for the classification head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// HF's `BertForSequenceClassification`: the pooler (dense + tanh) over the [CLS] token.
    #[default]
    Cls,
    /// Attention-mask weighted mean of the last hidden state.
    Mean,
}

/// A BERT encoder with a sequence-classification head (HF `BertForSequenceClassification`,
/// with mean pooling as an alternative): one output per label, or one for regression.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    /// The encoder; LoRA adapters attach here.
    pub bert: BertModel,
    dropout: Dropout,
    /// The head, `[hidden, num_labels]`; trained in full alongside the adapters.
    pub classifier: Linear,
    #[module(skip)]
    pooling: Pooling,
}

impl BertForSequenceClassification {
    /// Wraps a loaded encoder with a freshly initialized head, as transformers does
    /// (normal with `initializer_range` std, zero bias).
    pub fn new(
        bert: BertModel,
        config: &BertConfig,
        num_labels: usize,
        pooling: Pooling,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if num_labels == 0 {
            return Err(ModelError::UnsupportedConfig(
                "a head needs at least one output".into(),
            ));
        }
        if pooling == Pooling::Cls && !bert.has_pooler() {
            return Err(ModelError::UnsupportedConfig(
                "CLS pooling needs the pooler weights, which this checkpoint lacks; use mean pooling"
                    .into(),
            ));
        }
        let classifier = LinearConfig::new(config.hidden_size, num_labels)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: config.initializer_range,
            })
            .init(device);
        let classifier = Linear {
            bias: classifier
                .bias
                .map(|_| Param::from_tensor(Tensor::zeros([num_labels], device))),
            weight: classifier.weight,
        };
        Ok(Self {
            bert,
            dropout: DropoutConfig::new(
                config
                    .classifier_dropout
                    .unwrap_or(config.hidden_dropout_prob),
            )
            .init(),
            classifier,
            pooling,
        })
    }

    /// Attaches LoRA adapters to the encoder's target modules; the head stays trainable and the
    /// rest of the encoder is frozen.
    ///
    /// The adapters scale by [`LoraSettings::scale`] (`alpha / r`, or `alpha / √r` with rsLoRA)
    /// and sit only in `layers_to_transform` when it is given.
    pub fn with_lora(self, settings: &LoraSettings) -> Result<Self, ModelError> {
        settings.validate()?;
        let modules = self.bert.linear_modules();
        let group = lora::target_group(&modules, settings, self.bert.num_layers())?;
        Ok(Self {
            bert: self.bert.apply_lora(
                burn::module::Lora::new(settings.r, settings.burn_alpha()).set_param_group(group),
            ),
            ..self
        })
    }

    /// The same model with dropout `p` before the head instead of the config's.
    pub fn with_head_dropout(self, p: f64) -> Self {
        Self {
            dropout: DropoutConfig::new(p).init(),
            ..self
        }
    }

    /// Freezes the whole encoder: only the head trains (a linear probe). No adapters.
    pub fn head_only(self) -> Self {
        Self {
            bert: self.bert.no_grad(),
            ..self
        }
    }

    /// The same model with the head's bias set to `bias` (one value per output), e.g. a
    /// regression head starting at the mean target rather than at 0.
    pub fn with_head_bias(mut self, bias: &[f32]) -> Result<Self, ModelError> {
        if bias.len() != self.num_labels() {
            return Err(ModelError::UnsupportedConfig(format!(
                "{} bias values for a head with {} outputs",
                bias.len(),
                self.num_labels()
            )));
        }
        let device = self.classifier.weight.device();
        let value = Tensor::<1>::from_data(TensorData::new(bias.to_vec(), [bias.len()]), &device);
        self.classifier.bias = Some(Param::from_tensor(value));
        Ok(self)
    }

    /// Every weight of the encoder and the head trains (full fine-tuning). No adapters.
    pub fn full(self) -> Self {
        self.set_require_grad(true)
    }

    /// The pooling this head uses.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Number of labels the head predicts.
    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Classification logits `[batch, num_labels]`.
    pub fn forward(&self, input: &BertInput) -> Tensor<2> {
        let pooled = match self.pooling {
            Pooling::Mean => self.bert.mean_pooled(input),
            Pooling::Cls => {
                let hidden = self.bert.forward(input);
                match &self.bert.pooler {
                    Some(pooler) => pooler.forward(hidden),
                    // `new` refuses CLS pooling without a pooler; the raw [CLS] state is the
                    // only sensible reading if a caller got here anyway.
                    None => {
                        let [batch, _, width] = hidden.dims();
                        hidden
                            .slice([0..batch, 0..1, 0..width])
                            .reshape([batch, width])
                    }
                }
            }
        };
        self.classifier.forward(self.dropout.forward(pooled))
    }
}

/// PEFT sees the encoder's linear layers under `bert.`, and saves the head (`classifier`).
impl crate::peft::PeftModel for BertForSequenceClassification {
    const FAMILY: crate::peft::AdapterFamily = crate::peft::BERT_CLASSIFIER;

    fn adaptable_modules(&self) -> Vec<lora::LinearModule> {
        self.bert.linear_modules()
    }

    fn with_lora(self, settings: &LoraSettings) -> Result<Self, ModelError> {
        Self::with_lora(self, settings)
    }
}
