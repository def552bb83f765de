//! LoRA on PEFT-named target modules, on top of burn's own `apply_lora`.
//!
//! burn's [`burn::module::Lora`] freezes a module's parameters and attaches trainable factors
//! `A [in, r]`, `B [r, out]` to the 2-D weights in a [`ParamGroup`]. This module chooses that
//! group the way PEFT reads `target_modules` (a module is targeted when its HF name equals a
//! target or ends with `.target`), and computes adapted layers as
//! `x·W + b + s·(dropout(x)·A)·B`: PEFT's placement of LoRA dropout (on the adapter input only),
//! and no weight-sized gradient for the frozen `W`.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::nn::{Dropout, Linear};
use burn::tensor::Tensor;
use burn::tensor::module::linear as linear_op;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::host::{PathMapper, map_paths};

/// The LoRA hyper-parameters of a job, named as PEFT's `LoraConfig` names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    /// Rank of the factors.
    #[serde(default = "default_r")]
    pub r: usize,
    /// Scaling numerator: the update is `alpha / r · A·B`.
    #[serde(default = "default_alpha")]
    pub lora_alpha: f64,
    /// Dropout on the adapter's input.
    #[serde(default = "default_dropout")]
    pub lora_dropout: f64,
    /// HF module names (or name suffixes) to adapt, e.g. `query`, `value`, `attention.output.dense`.
    /// When left out: BERT's `query` and `value`; a decoder wants [`LoraSettings::for_decoder`]'s.
    #[serde(default = "default_targets")]
    pub target_modules: Vec<String>,
    /// rsLoRA: scale the update by `alpha / √r` instead of `alpha / r` (PEFT's `use_rslora`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_rslora: bool,
    /// Only these layer indices get adapters (PEFT's `layers_to_transform`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_to_transform: Option<Vec<usize>>,
}

fn default_r() -> usize {
    8
}
fn default_alpha() -> f64 {
    16.0
}
fn default_dropout() -> f64 {
    0.1
}
fn default_targets() -> Vec<String> {
    vec!["query".into(), "value".into()]
}

impl Default for LoraSettings {
    fn default() -> Self {
        Self {
            r: default_r(),
            lora_alpha: default_alpha(),
            lora_dropout: default_dropout(),
            target_modules: default_targets(),
            use_rslora: false,
            layers_to_transform: None,
        }
    }
}

/// PEFT's default targets for Llama-family decoders (`q_proj`, `v_proj`, from its
/// `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`).
pub const DECODER_TARGETS: &[&str] = &["q_proj", "v_proj"];

impl LoraSettings {
    /// The defaults for a Llama-family decoder: Hearth's r, alpha and dropout with PEFT's default
    /// targets for Llama ([`DECODER_TARGETS`]). [`LoraSettings::default`] targets BERT's `query`
    /// and `value`, which a decoder does not have.
    pub fn for_decoder() -> Self {
        Self {
            target_modules: DECODER_TARGETS.iter().map(|t| t.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Checks the values a user typed.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.r == 0 {
            return Err(ModelError::Lora("r must be at least 1".into()));
        }
        if !self.lora_alpha.is_finite() || self.lora_alpha <= 0.0 {
            return Err(ModelError::Lora(format!(
                "lora_alpha must be a positive number, found {}",
                self.lora_alpha
            )));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(ModelError::Lora(format!(
                "lora_dropout must be in [0, 1), found {}",
                self.lora_dropout
            )));
        }
        if self.target_modules.is_empty() {
            return Err(ModelError::Lora("target_modules is empty".into()));
        }
        if self.layers_to_transform.as_ref().is_some_and(Vec::is_empty) {
            return Err(ModelError::Lora(
                "layers_to_transform is empty; leave it out to adapt every layer".into(),
            ));
        }
        Ok(())
    }

    /// The scale applied to `A·B`: `alpha / r`, or `alpha / √r` with rsLoRA (PEFT's `scaling`).
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// The `alpha` to hand burn's [`burn::module::Lora::new`], which scales by `alpha / r`:
    /// `scale · r`, so that burn's adapters carry [`LoraSettings::scale`] with or without rsLoRA.
    pub fn burn_alpha(&self) -> f64 {
        self.scale() * self.r as f64
    }

    /// Whether `module` lies in `layers_to_transform` (every module does when it is absent; a
    /// module outside the layer stack, such as BERT's pooler, never does when it is given).
    pub fn in_layers(&self, module: &LinearModule) -> bool {
        match &self.layers_to_transform {
            None => true,
            Some(layers) => module.layer().is_some_and(|l| layers.contains(&l)),
        }
    }

    /// Checks `layers_to_transform` against the model's number of layers.
    pub fn check_layers(&self, num_layers: usize) -> Result<(), ModelError> {
        if let Some(layers) = &self.layers_to_transform
            && let Some(bad) = layers.iter().find(|&&l| l >= num_layers)
        {
            return Err(ModelError::Lora(format!(
                "layers_to_transform names layer {bad}, but this model has {num_layers} \
                 layers (0 to {})",
                num_layers.saturating_sub(1)
            )));
        }
        Ok(())
    }
}

/// One linear layer of a model, by its HF module name and the burn path of its weight, with
/// its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearModule {
    /// HF module path, e.g. `encoder.layer.0.attention.self.query` or
    /// `model.layers.0.self_attn.q_proj`.
    pub hf_name: String,
    /// burn parameter path of the weight, e.g. `encoder.layer.0.attention.self_attention.query.weight`.
    pub weight_path: String,
    /// Input width (rows of burn's `[in, out]` weight).
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
}

/// The names of the numbered layer stacks in HF models: BERT's `encoder.layer.N`, Llama's
/// `model.layers.N`. PEFT's `layers_pattern` names one of them.
pub const LAYER_STACKS: &[&str] = &["layer", "layers"];

impl LinearModule {
    /// Derives the burn path from the HF name through the family's one mapping table
    /// (`to_burn` maps an HF weight name to its burn path; the identity for Llama, whose burn
    /// paths are HF's names); `[d_in, d_out]` is the layer's shape.
    pub fn from_hf(hf_name: &str, to_burn: impl Fn(&str) -> String, shape: [usize; 2]) -> Self {
        let [d_in, d_out] = shape;
        Self {
            hf_name: hf_name.to_string(),
            weight_path: to_burn(&format!("{hf_name}.weight")),
            d_in,
            d_out,
        }
    }

    /// PEFT's rule: the module's name equals the target or ends with `.target`.
    pub fn matches(&self, target: &str) -> bool {
        self.hf_name == target || self.hf_name.ends_with(&format!(".{target}"))
    }

    /// The layer the module belongs to (`encoder.layer.N.…` or `model.layers.N.…` → `N`);
    /// `None` outside the layer stack (BERT's pooler, a decoder's `lm_head`).
    ///
    /// This is the index PEFT's `layers_to_transform` selects, with `layers_pattern` absent
    /// (the numbered segment of the name) or the stack's name ([`LAYER_STACKS`]).
    pub fn layer(&self) -> Option<usize> {
        let segments: Vec<&str> = self.hf_name.split('.').collect();
        segments
            .windows(2)
            .find(|w| LAYER_STACKS.contains(&w[0]))
            .and_then(|w| w[1].parse().ok())
    }
}

/// The modules `settings` adapts, in model order: those a target matches by PEFT's rule
/// ([`LinearModule::matches`]), within `layers_to_transform` when given. The same selection
/// as [`target_group`], without its checks (a target that matches nothing is simply absent):
/// what a memory estimate counts before the model exists.
pub fn targeted<'a>(modules: &'a [LinearModule], settings: &LoraSettings) -> Vec<&'a LinearModule> {
    modules
        .iter()
        .filter(|m| settings.target_modules.iter().any(|t| m.matches(t)) && settings.in_layers(m))
        .collect()
}

/// The parameter group of the weights `settings` selects: `target_modules` by PEFT's suffix rule,
/// restricted to the layers of `layers_to_transform` when given (as in PEFT, a module outside the
/// layer stack, such as BERT's pooler, is then never adapted).
///
/// Every target must match at least one module: a typo must not silently train nothing. A layer
/// index the model does not have is an error.
pub fn target_group(
    modules: &[LinearModule],
    settings: &LoraSettings,
    num_layers: usize,
) -> Result<ParamGroup, ModelError> {
    settings.check_layers(num_layers)?;
    let mut paths = Vec::new();
    for target in &settings.target_modules {
        let hits: Vec<&LinearModule> = modules
            .iter()
            .filter(|m| m.matches(target) && settings.in_layers(m))
            .collect();
        if hits.is_empty() && settings.layers_to_transform.is_some() {
            return Err(ModelError::Lora(format!(
                "target module `{target}` matches no linear layer in layers_to_transform {:?}",
                settings.layers_to_transform.as_deref().unwrap_or_default()
            )));
        }
        if hits.is_empty() {
            let mut names: Vec<&str> = modules
                .iter()
                .map(|m| m.hf_name.rsplit('.').next().unwrap_or(&m.hf_name))
                .collect();
            names.sort_unstable();
            names.dedup();
            return Err(ModelError::Lora(format!(
                "target module `{target}` matches no linear layer; this model has: {}",
                names.join(", ")
            )));
        }
        paths.extend(hits.into_iter().map(|m| m.weight_path.clone()));
    }
    paths.sort();
    paths.dedup();
    Ok(ParamGroup::from_paths(paths))
}

/// A linear layer that honours an attached LoRA adapter: `x·W + b + s·(dropout(x)·A)·B`.
///
/// Without an adapter this is the plain layer and `dropout` is not used. Leading dimensions are
/// folded into rows first, so each projection is one large matrix product rather than a batch of
/// small ones (several times faster on CPU backends).
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>, dropout: &Dropout) -> Tensor<D> {
    adapted(layer, x, dropout, linear_op)
}

/// [`linear`] with the base product `x·Wᵀ + b` computed by `base` from the folded rows, the
/// layer's frozen weight and its bias (a quantized projection takes it from its blocks).
pub fn adapted<const D: usize>(
    layer: &Linear,
    x: Tensor<D>,
    dropout: &Dropout,
    base: impl FnOnce(Tensor<2>, Tensor<2>, Option<Tensor<1>>) -> Tensor<2>,
) -> Tensor<D> {
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    let rows = x.shape().num_elements() / d_in.max(1);
    let bias = layer.bias.as_ref().map(Param::val);
    let y = match layer.weight.adapter() {
        None => base(x.reshape([rows, d_in]), layer.weight.val(), bias),
        Some(adapter) => {
            // Dropout sees the rows of the batch before they are folded (its masks follow
            // each row's place in the batch).
            let dropped = crate::dropout::apply(dropout, x.clone()).reshape([rows, d_in]);
            let x = x.reshape([rows, d_in]);
            let low = dropped.matmul(adapter.a.val());
            let update = low.matmul(adapter.b.val()).mul_scalar(adapter.scale);
            base(x, layer.weight.base(), bias) + update
        }
    };
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// `module` computing as its base model: every LoRA adapter's `B` factor replaced by zeros, so
/// each update `s·(x·A)·B` is exactly 0. For comparing answers with and without a trained
/// adapter; the base weights are shared, not copied, and `module` itself is unchanged (burn
/// 0.22 offers no public way to detach an adapter).
pub fn without_adapters<M: Module>(module: M) -> M {
    struct ZeroB;
    impl PathMapper for ZeroB {
        fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if format!(".{path}").ends_with(".lora.b") {
                let zeros = param.base().zeros_like();
                Param::initialized(param.id, zeros)
            } else {
                param
            }
        }
    }
    map_paths(module, ZeroB)
}

/// Number of parameters that will receive gradients (counted on an autodiff device).
pub fn trainable_params<M: Module>(module: &M) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.base().is_require_grad() {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut count = Count(0);
    module.visit(&mut count);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module whose burn path is its HF name (the names are all these tests read).
    fn module(hf_name: &str) -> LinearModule {
        LinearModule::from_hf(hf_name, str::to_string, [4, 4])
    }

    #[test]
    fn targets_follow_peft_suffix_rule() {
        let modules: Vec<LinearModule> = [
            "encoder.layer.0.attention.self.query",
            "encoder.layer.0.attention.self.value",
            "encoder.layer.0.attention.output.dense",
            "encoder.layer.0.output.dense",
            "pooler.dense",
        ]
        .iter()
        .map(|n| module(n))
        .collect();
        assert!(modules[0].matches("query"));
        assert!(!modules[0].matches("uery"));
        assert!(modules[2].matches("attention.output.dense"));
        assert!(!modules[3].matches("attention.output.dense"));
        assert_eq!(modules.iter().filter(|m| m.matches("dense")).count(), 3);
        let settings = |targets: &[&str], layers: Option<Vec<usize>>| LoraSettings {
            target_modules: targets.iter().map(|t| t.to_string()).collect(),
            layers_to_transform: layers,
            ..LoraSettings::default()
        };
        let err = target_group(&modules, &settings(&["qkv"], None), 1).unwrap_err();
        assert!(
            err.to_string().contains("`qkv` matches no linear layer"),
            "{err}"
        );
        assert!(err.to_string().contains("query"), "{err}");

        // `dense` in every layer also adapts the pooler; restricted to layers, it does not.
        assert_eq!(modules[4].layer(), None);
        assert_eq!(modules[3].layer(), Some(0));
        let group = target_group(&modules, &settings(&["dense"], None), 1).unwrap();
        assert!(group.matches(&burn::module::ParamId::new(), Some("pooler.dense.weight")));
        let group = target_group(&modules, &settings(&["dense"], Some(vec![0])), 1).unwrap();
        assert!(!group.matches(&burn::module::ParamId::new(), Some("pooler.dense.weight")));
        assert!(group.matches(
            &burn::module::ParamId::new(),
            Some("encoder.layer.0.output.dense.weight")
        ));
        let err = target_group(&modules, &settings(&["pooler.dense"], Some(vec![0])), 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("in layers_to_transform [0]"), "{err}");
        let err = target_group(&modules, &settings(&["query"], Some(vec![0, 6])), 6)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 6") && err.contains("6 layers (0 to 5)"),
            "{err}"
        );
    }

    #[test]
    fn decoder_layers_are_numbered_like_encoder_layers() {
        let q = module("model.layers.12.self_attn.q_proj");
        assert_eq!(q.weight_path, "model.layers.12.self_attn.q_proj.weight");
        assert_eq!(q.layer(), Some(12));
        assert!(q.matches("q_proj") && q.matches("self_attn.q_proj"));
        assert_eq!(module("lm_head").layer(), None);
        let settings = LoraSettings::for_decoder();
        assert_eq!(settings.target_modules, ["q_proj", "v_proj"]);
        settings.validate().expect("valid");
    }

    #[test]
    fn rslora_scales_by_the_square_root_of_r() {
        let rs = LoraSettings {
            r: 16,
            lora_alpha: 8.0,
            use_rslora: true,
            ..LoraSettings::default()
        };
        assert_eq!(rs.scale(), 2.0);
        // burn scales by alpha / r: the alpha it gets must give back the same scale.
        assert_eq!(rs.burn_alpha() / rs.r as f64, rs.scale());
        let plain = LoraSettings {
            use_rslora: false,
            ..rs.clone()
        };
        assert_eq!(plain.scale(), 0.5);
        assert_eq!(plain.burn_alpha(), 8.0);
    }

    #[test]
    fn settings_reject_nonsense() {
        let bad = LoraSettings {
            r: 0,
            ..LoraSettings::default()
        };
        assert!(bad.validate().is_err());
        let bad = LoraSettings {
            lora_dropout: 1.0,
            ..LoraSettings::default()
        };
        assert!(bad.validate().is_err());
        let bad = LoraSettings {
            layers_to_transform: Some(vec![]),
            ..LoraSettings::default()
        };
        assert!(bad.validate().is_err());
        assert_eq!(LoraSettings::default().scale(), 2.0);
    }
}
