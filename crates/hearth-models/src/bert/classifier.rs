//! The sequence-classification head on a BERT encoder (HF `BertForSequenceClassification`,
//! with mean pooling as an alternative), how a run prepares it (LoRA, head only, full), and
//! the head's own file: `classifier.weight` and `classifier.bias` under HF's names, what a
//! linear probe saves and what a merged or fully trained model carries.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use serde::Deserialize;

use super::{BertConfig, BertInput, BertModel};
use crate::ModelError;
use crate::host::{HostTensor, load_host, pytorch_metadata, serialize, to_host};
use crate::lora::{self, LoraSettings};
use crate::peft::{AdapterFamily, BERT_CLASSIFIER, PeftModel};

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
        self.head(self.bert.forward(input), input)
    }

    /// The logits from the encoder's last hidden state: pooling, dropout, the classifier.
    fn head(&self, hidden: Tensor<3>, input: &BertInput) -> Tensor<2> {
        let pooled = match self.pooling {
            Pooling::Mean => super::mean_pool(hidden, input.attention_mask.clone()),
            Pooling::Cls => self.bert.cls_pooled(hidden),
        };
        self.classifier
            .forward(crate::dropout::apply(&self.dropout, pooled))
    }

    /// `loss` of the logits of `input` with gradient checkpointing ([`crate::checkpoint`]): the
    /// gradients of the loss go to `sink` in parts that add up to those of one backward pass
    /// (the head's and the loss's first, from the last hidden state, then each encoder layer's,
    /// last first), and the loss comes back untracked.
    pub fn backward_checkpointed(
        &self,
        input: &BertInput,
        loss: &dyn Fn(Tensor<2>) -> Tensor<1>,
        sink: &mut dyn FnMut(Gradients),
    ) -> Tensor<1> {
        let layers = self.bert.layers();
        let mask_bias = super::mask_bias(input);
        let mut forward =
            |layer: &super::BertLayer, x: Tensor<3>| layer.forward(x, mask_bias.clone());
        let (last, kept) = crate::checkpoint::forward(layers, self.bert.embed(input), &mut forward);
        let value = loss(self.head(last.clone(), input));
        let grads = value.backward();
        let upstream = last.grad(&grads).map(Tensor::<3>::from_inner);
        sink(grads);
        kept.backward(layers, upstream, &mut forward, sink);
        value.detach()
    }
}

/// PEFT sees the encoder's linear layers under `bert.`, and saves the head (`classifier`).
impl PeftModel for BertForSequenceClassification {
    const FAMILY: AdapterFamily = BERT_CLASSIFIER;

    fn adaptable_modules(&self) -> Vec<lora::LinearModule> {
        self.bert.linear_modules()
    }

    fn with_lora(self, settings: &LoraSettings) -> Result<Self, ModelError> {
        Self::with_lora(self, settings)
    }
}

/// `head.safetensors`: the head under HF's names and layout (`classifier.weight [out, hidden]`,
/// `classifier.bias [out]`).
pub async fn head_weights(model: &BertForSequenceClassification) -> Result<Vec<u8>, ModelError> {
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "classifier.weight".to_string(),
        to_host(model.classifier.weight.val()).await?.transposed(),
    );
    if let Some(bias) = &model.classifier.bias {
        tensors.insert("classifier.bias".to_string(), to_host(bias.val()).await?);
    }
    serialize(&tensors, pytorch_metadata())
}

/// Replaces the head with `classifier.weight` and `classifier.bias` from a safetensors file under
/// HF's names (`head.safetensors`, or a full model's `model.safetensors`), keeping each
/// parameter's id and whether it trains.
pub fn import_head(
    model: BertForSequenceClassification,
    safetensors_bytes: &[u8],
) -> Result<BertForSequenceClassification, ModelError> {
    let file = safetensors::SafeTensors::deserialize(safetensors_bytes)
        .map_err(|e| ModelError::Weights(format!("the head's weights cannot be read: {e}")))?;
    let [hidden, outputs] = model.classifier.weight.dims();
    let read = |name: &str, shape: &[usize]| -> Result<HostTensor, ModelError> {
        let view = file.tensor(name).map_err(|_| {
            ModelError::WeightsMismatch(format!("the trained weights have no `{name}`"))
        })?;
        match HostTensor::from_view(&view) {
            Some(host) if host.shape == shape => Ok(host),
            _ => Err(ModelError::WeightsMismatch(format!(
                "`{name}` is {:?} {:?}, expected F32 {shape:?} (the head has {outputs} outputs)",
                view.dtype(),
                view.shape()
            ))),
        }
    };
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "classifier.weight".to_string(),
        read("classifier.weight", &[outputs, hidden])?.transposed(),
    );
    tensors.insert(
        "classifier.bias".to_string(),
        read("classifier.bias", &[outputs])?,
    );
    let mut model = model;
    let result = load_host(&mut model, &tensors).map_err(ModelError::WeightsMismatch)?;
    if !result.errors.is_empty() || !result.unused.is_empty() {
        return Err(ModelError::WeightsMismatch(format!(
            "the head's weights do not fit the model: {:?} {:?}",
            result.errors, result.unused
        )));
    }
    Ok(model)
}
