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
use crate::bert::hf_to_burn;

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

impl LoraSettings {
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
        Ok(())
    }

    /// The scale `alpha / r` applied to `A·B`.
    pub fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }
}

/// One linear layer of a model, by its HF module name and the burn path of its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearModule {
    /// HF module path, e.g. `encoder.layer.0.attention.self.query`.
    pub hf_name: String,
    /// burn parameter path of the weight, e.g. `encoder.layer.0.attention.self_attention.query.weight`.
    pub weight_path: String,
}

impl LinearModule {
    /// Derives the burn path from the HF name through the family's one mapping table.
    pub fn from_hf(hf_name: &str) -> Self {
        Self {
            hf_name: hf_name.to_string(),
            weight_path: hf_to_burn(&format!("{hf_name}.weight")),
        }
    }

    /// PEFT's rule: the module's name equals the target or ends with `.target`.
    pub fn matches(&self, target: &str) -> bool {
        self.hf_name == target || self.hf_name.ends_with(&format!(".{target}"))
    }
}

/// The parameter group of the weights `target_modules` selects.
///
/// Every target must match at least one module: a typo must not silently train nothing.
pub fn target_group(
    modules: &[LinearModule],
    targets: &[String],
) -> Result<ParamGroup, ModelError> {
    let mut paths = Vec::new();
    for target in targets {
        let hits: Vec<&LinearModule> = modules.iter().filter(|m| m.matches(target)).collect();
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
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    let rows = x.shape().num_elements() / d_in.max(1);
    let x = x.reshape([rows, d_in]);
    let bias = layer.bias.as_ref().map(Param::val);
    let y = match layer.weight.adapter() {
        None => linear_op(x, layer.weight.val(), bias),
        Some(adapter) => {
            let low = dropout.forward(x.clone()).matmul(adapter.a.val());
            let update = low.matmul(adapter.b.val()).mul_scalar(adapter.scale);
            linear_op(x, layer.weight.base(), bias) + update
        }
    };
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
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

    #[test]
    fn hf_names_map_through_the_family_table() {
        let m = LinearModule::from_hf("encoder.layer.3.attention.self.query");
        assert_eq!(
            m.weight_path,
            "encoder.layer.3.attention.self_attention.query.weight"
        );
        let m = LinearModule::from_hf("encoder.layer.0.attention.output.dense");
        assert_eq!(
            m.weight_path,
            "encoder.layer.0.attention.output.dense.weight"
        );
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
        .map(|n| LinearModule::from_hf(n))
        .collect();
        assert!(modules[0].matches("query"));
        assert!(!modules[0].matches("uery"));
        assert!(modules[2].matches("attention.output.dense"));
        assert!(!modules[3].matches("attention.output.dense"));
        assert_eq!(modules.iter().filter(|m| m.matches("dense")).count(), 3);
        let err = target_group(&modules, &["qkv".to_string()]).unwrap_err();
        assert!(
            err.to_string().contains("`qkv` matches no linear layer"),
            "{err}"
        );
        assert!(err.to_string().contains("query"), "{err}");
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
        assert_eq!(LoraSettings::default().scale(), 2.0);
    }
}
