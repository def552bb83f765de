//! A quantized base under LoRA (QLoRA): the decoder's projections, the token embedding (and
//! with it a tied output head) and an untied output head kept as q8, q4, f16 or bf16 blocks on
//! the device ([`hearth_kernels::QuantWeight`]), multiplied or gathered without a dense copy and
//! frozen, while the adapters and the norms stay f32.
//!
//! A quantized module keeps its place in the module tree (its path, its shape and the adapter
//! burn's `apply_lora` attaches to a `Linear`), but its weight is a zero-stride placeholder of the
//! right shape that takes no memory and is never read: [`linear`] computes the base product from
//! the blocks instead, and the embedding gathers its rows from them ([`QuantWeight::rows`]). The
//! blocks live beside the modules, out of the module tree ([`QuantSlots`] and the model's
//! skipped fields), so neither the optimizer, nor a checkpoint, nor an adapter export ever sees
//! them.

use std::collections::BTreeMap;

use burn::module::{Param, ParamId};
use burn::nn::{Dropout, Linear};
use burn::tensor::{Device, Tensor};
use hearth_kernels::{QuantBlocks, QuantFormat, QuantWeight};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::lora;

/// How a job keeps the base model's projection weights (`model.quantize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseQuant {
    /// 8-bit blocks of 32 with an f32 scale (`Q8_0`-like), requantized from any source.
    Q8,
    /// 4-bit blocks of 32 with an f32 scale and offset (`Q4_1`-like), requantized from any
    /// source (a `Q4_1` GGUF file's blocks come back value for value).
    Q4,
    /// A GGUF file's own blocks where the kernel reads them: `Q8_0`, `Q4_0`, `Q4_1` and `Q4_K`
    /// value for value, 5- and 6-bit types (`Q5_0`, `Q5_1`, `Q5_K`, `Q6_K`) as q8 blocks;
    /// other tensors, and every weight of a safetensors file, stay f32.
    Keep,
    /// IEEE half precision, each weight rounded to nearest-even from f32 (an f16 file's
    /// weights come back value for value).
    F16,
    /// bfloat16, each weight rounded to nearest-even from f32 (a bf16 file's weights come back
    /// value for value).
    Bf16,
}

impl BaseQuant {
    /// The name a job file writes.
    pub fn name(self) -> &'static str {
        match self {
            BaseQuant::Q8 => "q8",
            BaseQuant::Q4 => "q4",
            BaseQuant::Keep => "keep",
            BaseQuant::F16 => "f16",
            BaseQuant::Bf16 => "bf16",
        }
    }

    /// The block format a requantizing mode produces (`None` for `keep`).
    pub fn format(self) -> Option<QuantFormat> {
        match self {
            BaseQuant::Q8 => Some(QuantFormat::Q8),
            BaseQuant::Q4 => Some(QuantFormat::Q4),
            BaseQuant::F16 => Some(QuantFormat::F16),
            BaseQuant::Bf16 => Some(QuantFormat::Bf16),
            BaseQuant::Keep => None,
        }
    }

    /// The block format a requantizing mode gives `hf_weight`: the mode's own, except that the
    /// token embedding and the output head get q8 under `q4` (as llama.cpp's `Q4_K_M` keeps
    /// `token_embd` at 6 bits or more: 4-bit rows move SmolLM2's loss by 0.3 before any
    /// training).
    pub fn format_for(self, hf_weight: &str) -> Option<QuantFormat> {
        let format = self.format()?;
        Some(
            if format == QuantFormat::Q4 && (hf_weight == EMBEDDING || hf_weight == HEAD) {
                QuantFormat::Q8
            } else {
                format
            },
        )
    }

    /// Bytes per weight of the token embedding (and of an untied head) under this mode: f32's 4
    /// without one, q8's under `q4` and `keep` (at most; a file's own 4-bit embedding is less).
    pub fn embedding_bytes_per_weight(mode: Option<Self>) -> f64 {
        match mode {
            None => 4.0,
            Some(m) => m
                .format_for(EMBEDDING)
                .unwrap_or(QuantFormat::Q8)
                .bytes_per_weight(),
        }
    }

    /// Bytes per weight of a requantized projection (`keep`: at most a q8 block's).
    pub fn bytes_per_weight(self) -> f64 {
        self.format().unwrap_or(QuantFormat::Q8).bytes_per_weight()
    }
}

/// Checks that `device` runs the quantized linear, before anything is loaded.
pub fn check_device(device: &Device) -> Result<(), ModelError> {
    if hearth_kernels::supports(device) {
        Ok(())
    } else {
        Err(ModelError::UnsupportedConfig(
            hearth_kernels::Unsupported(format!("{device:?}")).to_string()
                + "; leave model.quantize out (f32 base) on this device",
        ))
    }
}

/// The quantized projections of one decoder block, by field name (`q_proj`, `down_proj`, …);
/// empty when the base is f32.
#[derive(Debug, Clone, Default)]
pub struct QuantSlots(BTreeMap<&'static str, QuantWeight>);

impl QuantSlots {
    /// The blocks of projection `name`, when it is quantized.
    pub fn get(&self, name: &str) -> Option<&QuantWeight> {
        self.0.get(name)
    }

    /// Holds `weight` as projection `name`'s base.
    pub fn insert(&mut self, name: &'static str, weight: QuantWeight) {
        self.0.insert(name, weight);
    }

    /// Bytes the blocks take on the device.
    pub fn bytes(&self) -> usize {
        self.0.values().map(QuantWeight::bytes).sum()
    }

    /// Whether no projection is quantized.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `layer` with its weight replaced by a placeholder of the same `[in, out]` shape that holds
/// one value (a zero-stride view), frozen: the blocks stand for the weight from now on.
pub fn placeholder(layer: Linear, device: &Device) -> Linear {
    Linear {
        weight: placeholder_param(&layer.weight, device),
        ..layer
    }
}

/// A frozen zero-stride stand-in for `weight`, of its shape and id, holding one value.
fn placeholder_param(weight: &Param<Tensor<2>>, device: &Device) -> Param<Tensor<2>> {
    let dims = weight.lazy_shape().dims::<2>();
    let id: ParamId = weight.id;
    let view = Tensor::<2>::zeros([1, 1], device).expand(dims);
    Param::initialized(id, view).set_require_grad(false)
}

/// The blocks of a `[out, in]` matrix on `device`.
pub fn upload(blocks: &QuantBlocks, device: &Device) -> Result<QuantWeight, ModelError> {
    QuantWeight::new(blocks, device).map_err(|e| ModelError::UnsupportedConfig(e.to_string()))
}

/// `layer` applied to `x` as [`lora::linear`] does, with the base product taken from `quant`'s
/// blocks when the projection is quantized: `x·Wᵀ + b + s·(dropout(x)·A)·B`.
pub fn linear<const D: usize>(
    layer: &Linear,
    quant: Option<&QuantWeight>,
    x: Tensor<D>,
    dropout: &Dropout,
) -> Tensor<D> {
    let Some(quant) = quant else {
        return lora::linear(layer, x, dropout);
    };
    // The placeholder weight is never multiplied: the blocks give the base product.
    lora::adapted(layer, x, dropout, |x, _placeholder, bias| {
        let y = quant.forward(x);
        match bias {
            Some(bias) => y + bias.unsqueeze(),
            None => y,
        }
    })
}

/// The token embedding's HF name.
const EMBEDDING: &str = "model.embed_tokens.weight";
/// An untied output head's HF name.
const HEAD: &str = "lm_head.weight";

/// Whether `hf_weight` is a matrix a quantized base keeps as blocks: a decoder projection
/// (`model.layers.N.self_attn.q_proj.weight`, …), the token embedding or an untied output head.
pub fn is_projection(hf_weight: &str) -> bool {
    hf_weight == EMBEDDING || hf_weight == HEAD || split_projection(hf_weight).is_some()
}

/// `model.layers.N.{self_attn|mlp}.NAME.weight` → `(N, attention?, NAME)`.
fn split_projection(hf_weight: &str) -> Option<(usize, bool, &'static str)> {
    let rest = hf_weight.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer = layer.parse().ok()?;
    let module = rest.strip_suffix(".weight")?;
    const ATTENTION: [&str; 4] = ["q_proj", "k_proj", "v_proj", "o_proj"];
    const MLP: [&str; 3] = ["gate_proj", "up_proj", "down_proj"];
    if let Some(name) = module.strip_prefix("self_attn.") {
        return ATTENTION
            .into_iter()
            .find(|n| *n == name)
            .map(|n| (layer, true, n));
    }
    let name = module.strip_prefix("mlp.")?;
    MLP.into_iter()
        .find(|n| *n == name)
        .map(|n| (layer, false, n))
}

/// The projections of `tensors` (HF names, PyTorch's `[out, in]` layout) quantized as `mode`
/// says, taken out of the map: what stays in it is loaded as f32. `keep` takes nothing from an
/// f32 file (it has no blocks to keep); a matrix whose rows do not split into blocks of 32 stays.
pub fn quantize_host(
    tensors: &mut BTreeMap<String, crate::host::HostTensor>,
    mode: BaseQuant,
) -> Result<BTreeMap<String, QuantBlocks>, ModelError> {
    // `keep` requantizes nothing: it has no format of its own.
    let names: Vec<(String, QuantFormat)> = tensors
        .iter()
        .filter(|(name, t)| {
            is_projection(name) && t.shape.len() == 2 && t.shape[1] % hearth_kernels::BLOCK == 0
        })
        .filter_map(|(name, _)| Some((name.clone(), mode.format_for(name)?)))
        .collect();
    let mut blocks = BTreeMap::new();
    for (name, format) in names {
        let Some(t) = tensors.remove(&name) else {
            continue;
        };
        let q = QuantBlocks::quantize(format, &t.data, t.shape[0], t.shape[1])
            .map_err(|e| ModelError::Weights(format!("{name}: {e}")))?;
        blocks.insert(name, q);
    }
    Ok(blocks)
}

impl crate::llama::LlamaForCausalLM {
    /// Makes projection `hf_weight` (`model.layers.N.self_attn.q_proj.weight`, …) quantized:
    /// `blocks` (`[out, in]`) on `device` become its base, and its `Linear` keeps only a
    /// placeholder weight ([`placeholder`]). Call before attaching adapters.
    pub fn quantize_projection(
        &mut self,
        hf_weight: &str,
        blocks: &QuantBlocks,
        device: &Device,
    ) -> Result<(), ModelError> {
        let bad = |m: String| ModelError::WeightsMismatch(format!("{hf_weight}: {m}"));
        if hf_weight == EMBEDDING || hf_weight == HEAD {
            let (weight, slot) = if hf_weight == EMBEDDING {
                (
                    &mut self.model.embed_tokens.weight,
                    &mut self.model.embed_quant,
                )
            } else {
                let head = self
                    .lm_head
                    .as_mut()
                    .ok_or_else(|| bad("the output head is tied to the embedding".into()))?;
                (&mut head.weight, &mut self.head_quant)
            };
            // The embedding is `[vocab, hidden]` as HF has it, a head's burn weight `[in, out]`.
            let dims = weight.lazy_shape().dims::<2>();
            let expected = if hf_weight == EMBEDDING {
                dims
            } else {
                [dims[1], dims[0]]
            };
            if [blocks.rows, blocks.cols] != expected {
                return Err(bad(format!(
                    "shape [{}, {}], the config says {expected:?}",
                    blocks.rows, blocks.cols
                )));
            }
            *slot = Some(upload(blocks, device)?);
            *weight = placeholder_param(weight, device);
            return Ok(());
        }
        let (layer, attention, name) =
            split_projection(hf_weight).ok_or_else(|| bad("not a projection weight".into()))?;
        let layers = self.model.layers.len();
        let block = self
            .model
            .layers
            .get_mut(layer)
            .ok_or_else(|| bad(format!("layer {layer}, but the config has {layers} layers")))?;
        let (linear, slots) = if attention {
            let a = &mut block.self_attn;
            let linear = match name {
                "q_proj" => &mut a.q_proj,
                "k_proj" => &mut a.k_proj,
                "v_proj" => &mut a.v_proj,
                _ => &mut a.o_proj,
            };
            (linear, &mut a.quant)
        } else {
            let m = &mut block.mlp;
            let linear = match name {
                "gate_proj" => &mut m.gate_proj,
                "up_proj" => &mut m.up_proj,
                _ => &mut m.down_proj,
            };
            (linear, &mut m.quant)
        };
        let [d_in, d_out] = linear.weight.lazy_shape().dims::<2>();
        if [blocks.rows, blocks.cols] != [d_out, d_in] {
            return Err(bad(format!(
                "shape [{}, {}], the config says [{d_out}, {d_in}]",
                blocks.rows, blocks.cols
            )));
        }
        slots.insert(name, upload(blocks, device)?);
        *linear = placeholder(linear.clone(), device);
        Ok(())
    }

    /// Bytes the quantized weights take on the device (0 with an f32 base).
    pub fn quantized_bytes(&self) -> usize {
        let ends = [&self.model.embed_quant, &self.head_quant]
            .into_iter()
            .flatten()
            .map(QuantWeight::bytes);
        self.model
            .layers
            .iter()
            .map(|l| l.self_attn.quant.bytes() + l.mlp.quant.bytes())
            .chain(ends)
            .sum()
    }

    /// Whether any projection is quantized.
    pub fn is_quantized(&self) -> bool {
        self.quantized_bytes() > 0
    }

    /// Loads HF weights as [`Self::load_safetensors`] does, the projections quantized as `mode`
    /// says ([`quantize_host`]) and kept as blocks on `device`; the rest stays f32.
    pub fn load_safetensors_quantized(
        self,
        bytes: &[u8],
        mode: BaseQuant,
        device: &Device,
    ) -> Result<Self, ModelError> {
        check_device(device)?;
        let mut tensors = crate::host::read_f32_tensors(bytes)?;
        let blocks = quantize_host(&mut tensors, mode)?;
        let rest = crate::host::serialize(&tensors, None)?;
        drop(tensors);
        self.load_quantized(rest, &blocks, device)
    }

    /// The f32 tensors in `rest` (a safetensors file in PyTorch's layout) and the projections
    /// in `blocks` (HF names), which `rest` must not hold, on `device`.
    pub fn load_quantized(
        mut self,
        rest: Vec<u8>,
        blocks: &BTreeMap<String, QuantBlocks>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        for (name, q) in blocks {
            self.quantize_projection(name, q, device)?;
        }
        self.load_safetensors_except(rest, |path| blocks.contains_key(path))
    }
}
