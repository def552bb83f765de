//! The Llama family of decoders (Llama, SmolLM2, and Gemma 3 as a variant of it): RMSNorm,
//! rotary position embeddings, grouped-query attention, a gated MLP and (optionally) tied
//! input/output embeddings.
//!
//! One struct per HF submodule, with HF's field names, so `model.safetensors` loads without a
//! name table (`model.layers.N.self_attn.q_proj.weight` is the burn path too). Rotary
//! embeddings use HF's half-split layout (`rotate_half`); the projections go through
//! [`crate::lora::linear`], so LoRA adapters attach as on BERT.
//!
//! Gemma 3 (transformers' `modeling_gemma3.py`, `model_type` `gemma3_text`) is the same
//! decoder with what [`Gemma3`] lists: the MLP's gate is the tanh-approximated GELU (GeGLU),
//! every RMSNorm scales by `1 + weight`, attention and MLP outputs are normed again before
//! the residual (`post_attention_layernorm`, `post_feedforward_layernorm`; the norm before
//! the MLP is then `pre_feedforward_layernorm`), queries and keys are RMS-normed per head
//! (`q_norm`, `k_norm`), most layers attend only to a sliding window of recent positions with
//! their own rotary base, the embeddings are scaled by √hidden, attention by
//! `query_pre_attn_scalar^-½`, and the logits may be soft-capped. The module names are HF's, so
//! LoRA targets and PEFT's adapter names are those of `Gemma3ForCausalLM` with no table.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::store::KeyRemapper;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};
use hearth_kernels::QuantWeight;
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::ModelError;
use crate::host::load_pytorch;
use crate::quant::{self, QuantSlots};

/// `config.json` of a Llama-family model, as transformers writes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LlamaConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); the query heads when absent.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head; `hidden_size / num_attention_heads` when absent.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm's ε.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rotary base (transformers < 5 writes it at the top level).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers ≥ 5 writes the rotary settings here.
    #[serde(default)]
    pub rope_parameters: Option<RopeSettings>,
    /// Whether the output projection is the input embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// The activation of the MLP's gate; only `silu` exists in Llama.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Whether the attention projections have biases (Llama: no).
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether the MLP projections have biases (Llama: no).
    #[serde(default)]
    pub mlp_bias: bool,
    /// transformers' `model_type`; a directory of another family (`bert`) is refused by name.
    #[serde(default)]
    pub model_type: Option<String>,
    /// The context length the model was trained for (a GGUF file's `context_length`), when
    /// the config states it: a job's rows must not be longer.
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
    /// Gemma's name for the MLP's gate activation (`gelu_pytorch_tanh`).
    #[serde(default)]
    pub hidden_activation: Option<String>,
    /// Gemma: attention scores are scaled by `query_pre_attn_scalar^-½` (256 when absent).
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma: how many positions (the query's own included) a sliding-window layer sees.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Gemma: `sliding_attention` or `full_attention` for every layer; absent, every
    /// `sliding_window_pattern`-th layer is global (transformers' default).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Gemma's older form of the layer pattern (6 when absent).
    #[serde(default, alias = "_sliding_window_pattern")]
    pub sliding_window_pattern: Option<usize>,
    /// Gemma (transformers < 5): the rotary base of the sliding-window layers.
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    /// Gemma: logits become `cap · tanh(logits / cap)` when set.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// Gemma 2's soft-capping of attention scores; Gemma 3 has none, and a config that sets it
    /// is refused.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// EmbeddingGemma's bidirectional attention; refused when set.
    #[serde(default)]
    pub use_bidirectional_attention: Option<bool>,
}

/// transformers' `rope_parameters`: one set for every layer (Llama) or one per layer type
/// (Gemma 3: `full_attention` and `sliding_attention`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RopeSettings {
    /// Per layer type.
    PerLayerType(BTreeMap<String, RopeParameters>),
    /// The same for every layer.
    Shared(RopeParameters),
}

/// The attention of one layer type: its rotary settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RopeParameters {
    /// Rotary base (for Gemma's layer types, the top-level default when absent).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Only `default` (no scaling) is supported.
    #[serde(default = "default_rope_type")]
    pub rope_type: String,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_act() -> String {
    "silu".into()
}
fn default_rope_type() -> String {
    "default".into()
}

impl LlamaConfig {
    /// Parses and checks `config.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let config: Self = serde_json::from_slice(bytes).map_err(|source| ModelError::Config {
            family: "Llama",
            source,
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::UnsupportedConfig(m));
        if let Some(kind) = self.model_type.as_deref()
            && kind != "llama"
            && kind != GEMMA3
        {
            return bad(format!(
                "model_type `{kind}`: a chat model must be a Llama-family decoder (model_type \
                 llama, e.g. SmolLM2, or {GEMMA3}, Gemma 3), or a .gguf file of one"
            ));
        }
        if self.is_gemma3() {
            self.check_gemma3()?;
        } else if self.hidden_act != "silu" {
            return bad(format!(
                "hidden_act `{}`: Llama's MLP gate is silu",
                self.hidden_act
            ));
        }
        let ropes: Vec<&RopeParameters> = match &self.rope_parameters {
            None => Vec::new(),
            Some(RopeSettings::Shared(r)) => vec![r],
            Some(RopeSettings::PerLayerType(types)) => types.values().collect(),
        };
        if let Some(r) = ropes.iter().find(|r| r.rope_type != "default") {
            return bad(format!(
                "rope_type `{}` is not supported (only default)",
                r.rope_type
            ));
        }
        if self.num_attention_heads == 0 || self.hidden_size == 0 || self.vocab_size == 0 {
            return bad("hidden_size, num_attention_heads and vocab_size must be positive".into());
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even for rotary embeddings",
                self.head_dim()
            ));
        }
        let kv = self.kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {kv}",
                self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// What Gemma 3 adds, checked: the activation, the layer pattern, the window and the scales.
    fn check_gemma3(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::UnsupportedConfig(m));
        let act = self
            .hidden_activation
            .as_deref()
            .unwrap_or("gelu_pytorch_tanh");
        if act != "gelu_pytorch_tanh" {
            return bad(format!(
                "hidden_activation `{act}`: Gemma 3's MLP gate is gelu_pytorch_tanh"
            ));
        }
        if self.attn_logit_softcapping.is_some() {
            return bad(
                "attn_logit_softcapping is set: soft-capped attention scores (Gemma 2) are not \
                 supported; Gemma 3 has none"
                    .into(),
            );
        }
        if self.use_bidirectional_attention == Some(true) {
            return bad(
                "use_bidirectional_attention is true: an embedding model, not a causal language \
                 model"
                    .into(),
            );
        }
        if let Some(types) = &self.layer_types {
            if types.len() != self.num_hidden_layers {
                return bad(format!(
                    "layer_types lists {} layers, num_hidden_layers is {}",
                    types.len(),
                    self.num_hidden_layers
                ));
            }
            if let Some(t) = types
                .iter()
                .find(|t| *t != SLIDING_ATTENTION && *t != FULL_ATTENTION)
            {
                return bad(format!(
                    "layer_types holds `{t}`: a Gemma 3 layer is {SLIDING_ATTENTION} or \
                     {FULL_ATTENTION}"
                ));
            }
        }
        if self.sliding_window == Some(0) || self.sliding_window_pattern == Some(0) {
            return bad("sliding_window and sliding_window_pattern must be positive".into());
        }
        let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        if !positive(self.final_logit_softcapping) || !positive(self.query_pre_attn_scalar) {
            return bad(
                "final_logit_softcapping and query_pre_attn_scalar must be positive".into(),
            );
        }
        Ok(())
    }

    /// Whether this is Gemma 3 (`model_type` `gemma3_text`).
    pub fn is_gemma3(&self) -> bool {
        self.model_type.as_deref() == Some(GEMMA3)
    }

    /// Whether layer `i` attends only to a sliding window (Gemma 3's local layers).
    pub fn is_sliding(&self, i: usize) -> bool {
        if !self.is_gemma3() {
            return false;
        }
        match &self.layer_types {
            Some(types) => types.get(i).is_some_and(|t| t == SLIDING_ATTENTION),
            None => !(i + 1).is_multiple_of(self.sliding_window_pattern.unwrap_or(6).max(1)),
        }
    }

    /// The positions layer `i` sees, its own included: all (`None`) or a sliding window.
    pub fn window(&self, i: usize) -> Option<usize> {
        self.is_sliding(i)
            .then(|| self.sliding_window.unwrap_or(GEMMA3_WINDOW))
    }

    /// The rotary base of layer `i`: Gemma 3's local base on its sliding-window layers, the
    /// global one elsewhere.
    pub fn layer_rope_theta(&self, i: usize) -> f64 {
        if !self.is_gemma3() {
            return self.rope_theta();
        }
        let sliding = self.is_sliding(i);
        let kind = if sliding {
            SLIDING_ATTENTION
        } else {
            FULL_ATTENTION
        };
        let stated = match &self.rope_parameters {
            Some(RopeSettings::PerLayerType(types)) => types.get(kind).and_then(|r| r.rope_theta),
            Some(RopeSettings::Shared(r)) if !sliding => r.rope_theta,
            _ => None,
        };
        match (stated, sliding) {
            (Some(theta), _) => theta,
            (None, true) => self.rope_local_base_freq.unwrap_or(10_000.0),
            (None, false) => self.rope_theta.unwrap_or(1_000_000.0),
        }
    }

    /// What attention scores are divided by: `√head_dim`, or Gemma's `√query_pre_attn_scalar`.
    pub fn score_divisor(&self) -> f64 {
        if self.is_gemma3() {
            self.query_pre_attn_scalar.unwrap_or(256.0).sqrt()
        } else {
            (self.head_dim() as f64).sqrt()
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Rotary base (of every layer in a Llama; [`Self::layer_rope_theta`] per layer).
    pub fn rope_theta(&self) -> f64 {
        let shared = match &self.rope_parameters {
            Some(RopeSettings::Shared(r)) => r.rope_theta,
            _ => None,
        };
        shared.or(self.rope_theta).unwrap_or(10_000.0)
    }
}

/// Gemma 3's `model_type`.
pub const GEMMA3: &str = "gemma3_text";
/// A Gemma 3 layer attending to a sliding window.
pub const SLIDING_ATTENTION: &str = "sliding_attention";
/// A Gemma 3 layer attending to every earlier position.
pub const FULL_ATTENTION: &str = "full_attention";
/// transformers' default `sliding_window` for Gemma 3.
const GEMMA3_WINDOW: usize = 4096;

/// RMSNorm: `x / √(mean(x²) + ε) · weight`, or Gemma's `· (1 + weight)` (the weight is stored
/// as HF stores it either way).
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// The per-channel scale (Gemma: the scale less one).
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    eps: f64,
    /// 0, or 1 for Gemma's `1 + weight`.
    #[module(skip)]
    offset: f64,
}

impl RmsNorm {
    fn new(width: usize, eps: f64, gemma: bool, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([width], device)),
            eps,
            offset: if gemma { 1.0 } else { 0.0 },
        }
    }

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let rms = x
            .clone()
            .powi_scalar(2)
            .mean_dim(D - 1)
            .add_scalar(self.eps)
            .sqrt();
        let width = self.weight.dims()[0];
        let mut shape = [1; D];
        shape[D - 1] = width;
        let scale = if self.offset == 0.0 {
            self.weight.val()
        } else {
            self.weight.val().add_scalar(self.offset)
        };
        (x / rms) * scale.reshape(shape)
    }
}

/// Self-attention with rotary embeddings and grouped key/value heads.
#[derive(Module, Debug)]
pub struct LlamaAttention {
    /// Queries.
    pub q_proj: Linear,
    /// Keys.
    pub k_proj: Linear,
    /// Values.
    pub v_proj: Linear,
    /// Output.
    pub o_proj: Linear,
    /// Gemma: the RMSNorm of every query head (over `head_dim`), before the rotation.
    pub q_norm: Option<RmsNorm>,
    /// Gemma: the RMSNorm of every key head.
    pub k_norm: Option<RmsNorm>,
    lora_dropout: Dropout,
    /// The projections kept quantized (none with an f32 base).
    #[module(skip)]
    pub(crate) quant: QuantSlots,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
    /// This layer's rotary base.
    #[module(skip)]
    rope_theta: f64,
    /// The positions a query sees, its own included, when the layer has a sliding window.
    #[module(skip)]
    window: Option<usize>,
    /// What the scores `q·k` are divided by.
    #[module(skip)]
    score_divisor: f64,
}

/// The gated MLP: `down(act(gate(x)) · up(x))`, SwiGLU (`act` = silu) or Gemma's GeGLU (the
/// tanh approximation of GELU).
#[derive(Module, Debug)]
pub struct LlamaMlp {
    /// Gate.
    pub gate_proj: Linear,
    /// Up.
    pub up_proj: Linear,
    /// Down.
    pub down_proj: Linear,
    lora_dropout: Dropout,
    /// Whether the gate is GELU (tanh) rather than silu.
    #[module(skip)]
    gelu: bool,
    /// The projections kept quantized (none with an f32 base).
    #[module(skip)]
    pub(crate) quant: QuantSlots,
}

/// One decoder layer (pre-norm residual blocks; Gemma's also norm each block's output).
#[derive(Module, Debug)]
pub struct LlamaLayer {
    /// Attention.
    pub self_attn: LlamaAttention,
    /// MLP.
    pub mlp: LlamaMlp,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Llama: the norm before the MLP. Gemma: the norm of the attention's output, before the
    /// residual.
    pub post_attention_layernorm: RmsNorm,
    /// Gemma: the norm before the MLP.
    pub pre_feedforward_layernorm: Option<RmsNorm>,
    /// Gemma: the norm of the MLP's output, before the residual.
    pub post_feedforward_layernorm: Option<RmsNorm>,
}

/// The decoder stack (HF `LlamaModel`).
#[derive(Module, Debug)]
pub struct LlamaModel {
    /// Token embeddings `[vocab, hidden]`.
    pub embed_tokens: Embedding,
    /// Decoder layers.
    pub layers: Vec<LlamaLayer>,
    /// Final norm.
    pub norm: RmsNorm,
    /// The embedding's rows as blocks when the base is quantized ([`crate::quant`]):
    /// `embed_tokens` then holds a placeholder, and a tied output head reads these too.
    #[module(skip)]
    pub(crate) embed_quant: Option<QuantWeight>,
}

/// A Llama-family causal language model (HF `LlamaForCausalLM`).
#[derive(Module, Debug)]
pub struct LlamaForCausalLM {
    /// The decoder.
    pub model: LlamaModel,
    /// The output projection; `None` when tied to the input embedding.
    pub lm_head: Option<Linear>,
    /// An untied output head's blocks when the base is quantized (`lm_head` holds a
    /// placeholder then).
    #[module(skip)]
    pub(crate) head_quant: Option<QuantWeight>,
    /// Gemma: the factor on the embeddings (√hidden).
    #[module(skip)]
    embed_scale: Option<f64>,
    /// Gemma: logits become `cap · tanh(logits / cap)`.
    #[module(skip)]
    final_logit_softcapping: Option<f64>,
}

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

impl LlamaForCausalLM {
    /// An uninitialized model of `config`'s shape (load weights with [`Self::load_safetensors`]).
    /// `lora_dropout` is the dropout on adapter inputs once adapters are attached.
    pub fn init(
        config: &LlamaConfig,
        lora_dropout: f64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.check()?;
        let (h, d) = (config.hidden_size, config.head_dim());
        let (heads, kv) = (config.num_attention_heads, config.kv_heads());
        let gemma = config.is_gemma3();
        let eps = config.rms_norm_eps;
        let dropout = || DropoutConfig::new(lora_dropout).init();
        let norm = |width| RmsNorm::new(width, eps, gemma, device);
        let gemma_norm = |width| gemma.then(|| norm(width));
        let layers = (0..config.num_hidden_layers)
            .map(|i| LlamaLayer {
                self_attn: LlamaAttention {
                    q_proj: linear(h, heads * d, config.attention_bias, device),
                    k_proj: linear(h, kv * d, config.attention_bias, device),
                    v_proj: linear(h, kv * d, config.attention_bias, device),
                    o_proj: linear(heads * d, h, config.attention_bias, device),
                    q_norm: gemma_norm(d),
                    k_norm: gemma_norm(d),
                    lora_dropout: dropout(),
                    quant: QuantSlots::default(),
                    heads,
                    kv_heads: kv,
                    head_dim: d,
                    rope_theta: config.layer_rope_theta(i),
                    window: config.window(i),
                    score_divisor: config.score_divisor(),
                },
                mlp: LlamaMlp {
                    gate_proj: linear(h, config.intermediate_size, config.mlp_bias, device),
                    up_proj: linear(h, config.intermediate_size, config.mlp_bias, device),
                    down_proj: linear(config.intermediate_size, h, config.mlp_bias, device),
                    lora_dropout: dropout(),
                    gelu: gemma,
                    quant: QuantSlots::default(),
                },
                input_layernorm: norm(h),
                post_attention_layernorm: norm(h),
                pre_feedforward_layernorm: gemma_norm(h),
                post_feedforward_layernorm: gemma_norm(h),
            })
            .collect();
        Ok(Self {
            model: LlamaModel {
                embed_tokens: EmbeddingConfig::new(config.vocab_size, h).init(device),
                layers,
                norm: norm(h),
                embed_quant: None,
            },
            lm_head: (!config.tie_word_embeddings)
                .then(|| linear(h, config.vocab_size, false, device)),
            head_quant: None,
            // transformers keeps √hidden as an f32 buffer.
            embed_scale: gemma.then(|| f64::from((h as f64).sqrt() as f32)),
            final_logit_softcapping: if gemma {
                config.final_logit_softcapping
            } else {
                None
            },
        })
    }

    /// Loads HF weights from the bytes of `model.safetensors` (half precision cast to f32).
    /// Every tensor the config implies must be there with its shape, and no layer past
    /// `num_hidden_layers` ([`crate::compat::llama_weights`]).
    pub fn load_safetensors(self, bytes: Vec<u8>) -> Result<Self, ModelError> {
        self.load_safetensors_except(bytes, |_| false)
    }

    /// [`Self::load_safetensors`] for a file that leaves out the parameters `elsewhere` names
    /// (the projections a quantized base holds as blocks, [`crate::quant`]).
    pub(crate) fn load_safetensors_except(
        mut self,
        bytes: Vec<u8>,
        elsewhere: impl Fn(&str) -> bool,
    ) -> Result<Self, ModelError> {
        if let Some(names) = crate::compat::tensor_names(&bytes) {
            crate::compat::llama_weights(self.layout(), &names)?;
        }
        let result = load_pytorch(&mut self, bytes, KeyRemapper::new())?;
        crate::error::check_loaded(
            &result,
            elsewhere,
            "is num_hidden_layers or tie_word_embeddings right?",
        )?;
        Ok(self)
    }

    /// What decides this model's tensor names: its layers, a tied output and the biases.
    pub fn layout(&self) -> crate::compat::LlamaLayout {
        let layer = self.model.layers.first();
        crate::compat::LlamaLayout {
            layers: self.model.layers.len(),
            tied: self.lm_head.is_none(),
            attention_bias: layer.is_some_and(|l| l.self_attn.q_proj.bias.is_some()),
            mlp_bias: layer.is_some_and(|l| l.mlp.gate_proj.bias.is_some()),
            gemma: layer.is_some_and(|l| l.pre_feedforward_layernorm.is_some()),
        }
    }

    /// Next-token logits `[batch, seq, vocab]` for `input_ids` `[batch, seq]`; positions with
    /// `attention_mask` 0 (padding) are never attended to. Positions count from 0 in every row.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let bias = |window| attention_bias(attention_mask.clone(), 0, window, &device);
        let positions: Vec<usize> = (0..seq).collect();
        self.run(input_ids, bias, &positions, None)
    }

    /// Logits of rows that each hold several sequences one after another (packing):
    /// `segments` `[batch · seq]` numbers the sequence every position belongs to (0 for
    /// padding). A position attends only to earlier positions of its own sequence and its
    /// rotary position restarts at 0 where its sequence starts, so every packed sequence gets
    /// the logits it would get alone.
    pub fn forward_packed(&self, input_ids: Tensor<2, Int>, segments: &[u32]) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let packed = Packed::new(segments, batch, seq);
        self.run(
            input_ids,
            |w| packed.bias(w, &device),
            &packed.positions,
            None,
        )
    }

    /// Logits `[batch, seq, vocab]` of `input_ids` continuing the sequence `cache` holds (no
    /// padding: every row is as long as the others), and `cache` extended by them. The first
    /// call starts from an empty [`KvCache`]; each later one feeds only the new tokens, so
    /// generating `n` tokens costs `n` one-token passes instead of `n` passes over the prefix.
    pub fn forward_cached(&self, input_ids: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let past = cache.len;
        let bias = |window| {
            attention_bias(
                Tensor::ones([batch, past + seq], &device),
                past,
                window,
                &device,
            )
        };
        let positions: Vec<usize> = (past..past + seq).collect();
        let logits = self.run(input_ids, bias, &positions, Some(cache));
        cache.len = past + seq;
        logits
    }

    /// The decoder over `input_ids` at rotary `positions` (`[seq]`, shared by every row, or
    /// `[batch · seq]`), attention biased by `bias(window)` `[batch or 1, 1, seq, keys]` (for
    /// layers that see every earlier position, `window` `None`, or a sliding window), reading
    /// and extending `cache` when given.
    fn run(
        &self,
        input_ids: Tensor<2, Int>,
        bias: impl Fn(Option<usize>) -> Tensor<4>,
        positions: &[usize],
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let mut x = self.embed(input_ids);
        let mut shared = LayerInputs::new(bias, positions, seq, &x.device());
        if let Some(cache) = cache.as_deref_mut() {
            cache.layers.resize_with(self.model.layers.len(), || None);
        }
        for (i, layer) in self.model.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = layer.forward(x, shared.get(&layer.self_attn), slot);
        }
        self.head(x)
    }

    /// Tokens in the vocabulary (the logits of a position).
    pub fn vocab_size(&self) -> usize {
        match &self.model.embed_quant {
            Some(q) => q.dims()[0],
            None => self.model.embed_tokens.weight.dims()[0],
        }
    }

    /// The scaled token embeddings `[batch, seq, hidden]` of `input_ids`.
    fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let x = match &self.model.embed_quant {
            Some(q) => {
                let [_, hidden] = q.dims();
                q.rows(input_ids.reshape([batch * seq]))
                    .reshape([batch, seq, hidden])
            }
            None => self.model.embed_tokens.forward(input_ids),
        };
        match self.embed_scale {
            Some(scale) => x.mul_scalar(scale),
            None => x,
        }
    }

    /// The logits `[batch, seq, vocab]` of the last layer's output: the final norm, the output
    /// head (tied or not, quantized or not) and Gemma's soft-capping, all per position.
    fn head(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let x = self.model.norm.forward(x);
        let logits = match (&self.lm_head, &self.model.embed_quant) {
            (Some(head), _) => quant::linear(
                head,
                self.head_quant.as_ref(),
                x,
                &DropoutConfig::new(0.0).init(),
            ),
            (None, Some(q)) => {
                let [vocab, _] = q.dims();
                q.forward(x.reshape([batch * seq, hidden]))
                    .reshape([batch, seq, vocab])
            }
            (None, None) => {
                let w = self.model.embed_tokens.weight.val();
                let [vocab, _] = w.dims();
                x.reshape([batch * seq, hidden])
                    .matmul(w.transpose())
                    .reshape([batch, seq, vocab])
            }
        };
        match self.final_logit_softcapping {
            // tanh is ±1 in f32 well before the clamp's ±10.
            Some(cap) => crate::activation::safe_tanh(logits.div_scalar(cap)).mul_scalar(cap),
            None => logits,
        }
    }

    /// One training pass of packed rows (as [`Self::forward_packed`]) with gradient
    /// checkpointing, as transformers' `gradient_checkpointing` does it: the forward pass keeps
    /// only each decoder layer's input, and the backward pass recomputes one layer at a time
    /// (its dropout masks drawn again, the same) and backpropagates through it alone. The
    /// logits are never whole either: the head and `loss` run on `chunk` positions at a time.
    ///
    /// `loss(logits, positions)` is the loss's share of the flattened positions `positions`
    /// (`[n, vocab]` logits, row-major over `[batch, seq]`); the shares add up to the loss.
    /// Each backward pass's gradients go to `sink` (the parameters of one layer, or of the
    /// head); they add up to what `loss(forward_packed(…)).backward()` gives. Returns the loss,
    /// untracked.
    pub fn backward_packed_checkpointed(
        &self,
        input_ids: Tensor<2, Int>,
        segments: &[u32],
        chunk: usize,
        loss: &dyn Fn(Tensor<2>, std::ops::Range<usize>) -> Tensor<1>,
        sink: &mut dyn FnMut(Gradients),
    ) -> Tensor<1> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let packed = Packed::new(segments, batch, seq);
        let mut shared =
            LayerInputs::new(|w| packed.bias(w, &device), &packed.positions, seq, &device);
        let mut forward =
            |layer: &LlamaLayer, x: Tensor<3>| layer.forward(x, shared.get(&layer.self_attn), None);
        let layers = &self.model.layers;
        let (x, kept) = crate::checkpoint::forward(layers, self.embed(input_ids), &mut forward);
        // The head and the loss, `chunk` positions at a time.
        let [_, _, hidden] = x.dims();
        let n = batch * seq;
        let flat = x.reshape([n, hidden]);
        let mut total: Option<Tensor<1>> = None;
        let mut upstream = Vec::new();
        let chunk = chunk.max(1);
        for from in (0..n).step_by(chunk) {
            let to = (from + chunk).min(n);
            let part = flat
                .clone()
                .slice([from..to, 0..hidden])
                .detach()
                .require_grad();
            let logits = self.head(part.clone().reshape([1, to - from, hidden]));
            let [_, _, vocab] = logits.dims();
            let share = loss(logits.reshape([to - from, vocab]), from..to);
            let grads = share.backward();
            upstream.push(part.grad(&grads).unwrap_or_else(|| part.zeros_like()));
            sink(grads);
            let share = share.detach();
            total = Some(match total {
                Some(t) => t + share,
                None => share,
            });
        }
        let upstream = Tensor::from_inner(Tensor::cat(upstream, 0)).reshape([batch, seq, hidden]);
        kept.backward(layers, Some(upstream), &mut forward, sink);
        total.unwrap_or_else(|| Tensor::zeros([1], &device))
    }
}

/// Where each position of packed rows sits: its rotary position (restarting at each
/// sequence's start) and which earlier positions it may attend to.
struct Packed<'a> {
    segments: &'a [u32],
    starts: Vec<usize>,
    positions: Vec<usize>,
    batch: usize,
    seq: usize,
}

impl<'a> Packed<'a> {
    fn new(segments: &'a [u32], batch: usize, seq: usize) -> Self {
        let mut starts = Vec::with_capacity(batch * seq);
        for b in 0..batch {
            let row = &segments[b * seq..(b + 1) * seq];
            let mut start = 0;
            for q in 0..seq {
                if q == 0 || row[q] != row[q - 1] {
                    start = q;
                }
                starts.push(start);
            }
        }
        let positions = starts
            .iter()
            .enumerate()
            .map(|(i, s)| i % seq - s)
            .collect();
        Self {
            segments,
            starts,
            positions,
            batch,
            seq,
        }
    }

    /// The attention bias `[batch, 1, seq, seq]`: 0 where a position may attend (an earlier
    /// position of its own sequence, within `window` when given), −1e9 elsewhere.
    fn bias(&self, window: Option<usize>, device: &Device) -> Tensor<4> {
        let (batch, seq) = (self.batch, self.seq);
        let mut bias = vec![-1e9f32; batch * seq * seq];
        for (i, &start) in self.starts.iter().enumerate() {
            let q = i % seq;
            if self.segments[i] == 0 {
                continue;
            }
            let first = window.map_or(start, |w| start.max((q + 1).saturating_sub(w)));
            for k in first..=q {
                bias[i * seq + k] = 0.0;
            }
        }
        Tensor::<4>::from_data(TensorData::new(bias, [batch, 1, seq, seq]), device)
    }
}

/// The attention biases and rotary tables the layers share, made once per sliding window and
/// rotary base, on first use.
struct LayerInputs<'a, F> {
    bias: F,
    positions: &'a [usize],
    seq: usize,
    device: Device,
    biases: Vec<(Option<usize>, Tensor<4>)>,
    rotations: Vec<(f64, (Tensor<4>, Tensor<4>))>,
}

impl<'a, F: Fn(Option<usize>) -> Tensor<4>> LayerInputs<'a, F> {
    fn new(bias: F, positions: &'a [usize], seq: usize, device: &Device) -> Self {
        Self {
            bias,
            positions,
            seq,
            device: device.clone(),
            biases: Vec::new(),
            rotations: Vec::new(),
        }
    }

    /// The bias and the rotary `(cos, sin)` of a layer with attention `attn`.
    fn get(&mut self, attn: &LlamaAttention) -> (Tensor<4>, &(Tensor<4>, Tensor<4>)) {
        let b = match self.biases.iter().position(|(w, _)| *w == attn.window) {
            Some(b) => b,
            None => {
                self.biases.push((attn.window, (self.bias)(attn.window)));
                self.biases.len() - 1
            }
        };
        let r = match self
            .rotations
            .iter()
            .position(|(t, _)| *t == attn.rope_theta)
        {
            Some(r) => r,
            None => {
                let cs = rotary(
                    self.positions,
                    self.seq,
                    attn.head_dim,
                    attn.rope_theta,
                    &self.device,
                );
                self.rotations.push((attn.rope_theta, cs));
                self.rotations.len() - 1
            }
        };
        (self.biases[b].1.clone(), &self.rotations[r].1)
    }
}

impl LlamaLayer {
    /// The layer over `x` `[batch, seq, hidden]` with its attention `bias` and rotary
    /// `(cos, sin)`, reading and extending `slot` (its keys and values so far) when given.
    fn forward(
        &self,
        x: Tensor<3>,
        (bias, (cos, sin)): (Tensor<4>, &(Tensor<4>, Tensor<4>)),
        slot: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let h = self.input_layernorm.forward(x.clone());
        let a = self.self_attn.forward(h, cos, sin, bias, slot);
        match (
            &self.pre_feedforward_layernorm,
            &self.post_feedforward_layernorm,
        ) {
            (Some(pre), Some(post)) => {
                let x = x + self.post_attention_layernorm.forward(a);
                let m = self.mlp.forward(pre.forward(x.clone()));
                x + post.forward(m)
            }
            _ => {
                let x = x + a;
                let h = self.post_attention_layernorm.forward(x.clone());
                x + self.mlp.forward(h)
            }
        }
    }
}

/// The keys and values of every layer for the positions seen so far, so that generation feeds
/// one new token per step ([`LlamaForCausalLM::forward_cached`]).
#[derive(Debug, Default)]
pub struct KvCache {
    /// Per layer: keys and values `[batch, kv_heads, positions, head_dim]`, rotary applied.
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `cos` and `sin` `[rows, 1, seq, head_dim]` of HF's rotary embedding at `positions` (`rows`
/// runs of `seq`): frequencies `θ^(−2i/d)` for `i < d/2`, repeated for both halves.
fn rotary(
    positions: &[usize],
    seq: usize,
    d: usize,
    theta: f64,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let half = d / 2;
    let rows = positions.len() / seq.max(1);
    let mut cos = Vec::with_capacity(positions.len() * d);
    let mut sin = Vec::with_capacity(positions.len() * d);
    for &pos in positions {
        for j in 0..d {
            let i = j % half;
            // f32 inverse frequencies, as transformers computes them, then the f32 product.
            let inv = (1.0 / theta.powf((2 * i) as f64 / d as f64)) as f32;
            let angle = pos as f32 * inv;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let t = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [rows, 1, seq, d]), device);
    (t(cos), t(sin))
}

/// The additive attention bias `[batch, 1, seq, past + seq]` for `seq` queries at positions
/// `past..past + seq` over `mask`'s `past + seq` keys: 0 where a query may look, a large
/// negative on future positions, on padding keys and, with a sliding `window`, on keys
/// `window` or more positions back.
fn attention_bias(
    mask: Tensor<2, Int>,
    past: usize,
    window: Option<usize>,
    device: &Device,
) -> Tensor<4> {
    let [batch, keys] = mask.dims();
    let seq = keys - past;
    let mut causal = vec![0f32; seq * keys];
    for q in 0..seq {
        let first = window.map_or(0, |w| (past + q + 1).saturating_sub(w));
        for k in (0..first).chain(past + q + 1..keys) {
            causal[q * keys + k] = -1e9;
        }
    }
    let causal = Tensor::<4>::from_data(TensorData::new(causal, [1, 1, seq, keys]), device);
    let padding = (mask.float().neg() + 1.0)
        .mul_scalar(-1e9)
        .reshape([batch, 1, 1, keys]);
    causal + padding
}

/// HF's `rotate_half` applied: `x·cos + [−x₂, x₁]·sin` over `[.., d]`.
fn apply_rotary(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, h, s, d] = x.dims();
    let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..d / 2]);
    let x2 = x.clone().slice([0..b, 0..h, 0..s, d / 2..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

impl LlamaAttention {
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        bias: Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let d = self.head_dim;
        let split = |t: Tensor<3>, heads: usize| t.reshape([batch, seq, heads, d]).swap_dims(1, 2);
        let proj = |layer: &Linear, name: &str, x: Tensor<3>| {
            quant::linear(layer, self.quant.get(name), x, &self.lora_dropout)
        };
        let q = split(proj(&self.q_proj, "q_proj", x.clone()), self.heads);
        let k = split(proj(&self.k_proj, "k_proj", x.clone()), self.kv_heads);
        let v = split(proj(&self.v_proj, "v_proj", x), self.kv_heads);
        let (q, k) = match (&self.q_norm, &self.k_norm) {
            (Some(qn), Some(kn)) => (qn.forward(q), kn.forward(k)),
            _ => (q, k),
        };
        let q = apply_rotary(q, cos, sin);
        let mut k = apply_rotary(k, cos, sin);
        let mut v = v;
        if let Some(slot) = cache {
            if let Some((past_k, past_v)) = slot.take() {
                k = Tensor::cat(vec![past_k, k], 2);
                v = Tensor::cat(vec![past_v, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let keys = k.dims()[2];
        // Grouped-query attention: key/value head i serves query heads i·rep .. (i+1)·rep.
        let rep = self.heads / self.kv_heads;
        let repeat = |t: Tensor<4>| {
            t.reshape([batch, self.kv_heads, 1, keys, d])
                .expand([batch, self.kv_heads, rep, keys, d])
                .reshape([batch, self.heads, keys, d])
        };
        let (k, v) = (repeat(k), repeat(v));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar(self.score_divisor) + bias;
        let out =
            softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([batch, seq, self.heads * d]);
        proj(&self.o_proj, "o_proj", out)
    }
}

impl LlamaMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let proj = |layer: &Linear, name: &str, x: Tensor<3>| {
            quant::linear(layer, self.quant.get(name), x, &self.lora_dropout)
        };
        let gate = proj(&self.gate_proj, "gate_proj", x.clone());
        let gate = if self.gelu {
            crate::activation::gelu_tanh(gate)
        } else {
            silu(gate)
        };
        let up = proj(&self.up_proj, "up_proj", x);
        proj(&self.down_proj, "down_proj", gate * up)
    }
}
