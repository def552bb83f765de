//! Adapters in HuggingFace PEFT's own format: `adapter_config.json` + `adapter_model.safetensors`.
//!
//! PEFT names a factor after the HF module it adapts
//! (`base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight`,
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`) and stores it the PyTorch
//! way: `lora_A` as `[r, in]`, `lora_B` as `[out, r]`, where burn keeps `A [in, r]` and
//! `B [r, out]`. Export and import are these plain transforms (rename, transpose) plus, for a
//! classifier, the trained head under `base_model.model.classifier.*`, listed in
//! `modules_to_save`. What differs between model families is data ([`AdapterFamily`]); the
//! transforms are written once, for every [`PeftModel`]. Reading tensors back is async so that
//! export also works in a browser.

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::error::first_errors;
use crate::host::{
    HostTensor, NamedParams, PathVisitor, load_host, pytorch_metadata, serialize, to_host,
};
use crate::lora::{LAYER_STACKS, LinearModule, LoraSettings};

/// The prefix PEFT puts before HF module names of a `PeftModel` (any task type).
const PREFIX: &str = "base_model.model.";

/// What a family's PEFT adapters look like: the task, where the adapted modules sit, the name
/// of the layer stack and the modules trained in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdapterFamily {
    /// The model family, for messages.
    pub name: &'static str,
    /// PEFT's `task_type`.
    pub task_type: &'static str,
    /// The path of the adapted submodule, the same in HF's model and in burn's (`bert.` inside
    /// `BertForSequenceClassification`); empty when the modules' names start at the root.
    pub module_prefix: &'static str,
    /// PEFT's `layers_pattern`: the name of the numbered layer stack ([`LAYER_STACKS`]).
    pub layers_pattern: &'static str,
    /// The HF path of the layer stack, for messages (`encoder.layer`).
    pub layers_path: &'static str,
    /// PEFT's `modules_to_save`: modules trained in full and saved with the adapter, whose
    /// `weight` and `bias` are at the same path in HF and burn.
    pub modules_to_save: &'static [&'static str],
}

/// A BERT encoder with a classification head (`BertForSequenceClassification`).
pub const BERT_CLASSIFIER: AdapterFamily = AdapterFamily {
    name: "BERT",
    task_type: "SEQ_CLS",
    module_prefix: "bert.",
    layers_pattern: "layer",
    layers_path: "encoder.layer",
    modules_to_save: &["classifier"],
};

/// A Llama-family causal language model (`LlamaForCausalLM`; `lm_head` is never adapted).
pub const LLAMA_CAUSAL_LM: AdapterFamily = AdapterFamily {
    name: "Llama",
    task_type: "CAUSAL_LM",
    module_prefix: "",
    layers_pattern: "layers",
    layers_path: "model.layers",
    modules_to_save: &[],
};

/// Every family whose adapters Hearth reads and writes.
pub const FAMILIES: &[AdapterFamily] = &[BERT_CLASSIFIER, LLAMA_CAUSAL_LM];

/// A model whose LoRA adapters are saved and loaded in PEFT's format.
pub trait PeftModel: Module + Sized {
    /// How the family's adapters are named and configured.
    const FAMILY: AdapterFamily;

    /// Every linear layer LoRA may adapt, in model order; names and paths are relative to
    /// [`AdapterFamily::module_prefix`].
    fn adaptable_modules(&self) -> Vec<LinearModule>;

    /// Attaches adapters to the modules `settings` targets and freezes the base.
    fn with_lora(self, settings: &LoraSettings) -> Result<Self, ModelError>;
}

/// `adapter_config.json`, with the fields PEFT writes for a LoRA adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// Always `LORA`.
    pub peft_type: String,
    /// `SEQ_CLS` for classification adapters, `CAUSAL_LM` for decoders.
    pub task_type: String,
    /// Rank.
    pub r: usize,
    /// Scaling numerator.
    pub lora_alpha: f64,
    /// Dropout on the adapter's input during training.
    pub lora_dropout: f64,
    /// Adapted HF module names.
    pub target_modules: Vec<String>,
    /// Which biases were trained: `none`.
    pub bias: String,
    /// Whether the scale is `alpha / sqrt(r)` (rsLoRA).
    #[serde(default)]
    pub use_rslora: bool,
    /// Only these layers carry adapters; every layer when `null`. PEFT accepts one index or a
    /// list.
    #[serde(default)]
    pub layers_to_transform: Option<OneOrMany<usize>>,
    /// The name of the layer stack `layers_to_transform` counts in (`layer` for BERT's
    /// `encoder.layer.N`, `layers` for Llama's `model.layers.N`); PEFT takes the numbered
    /// segment of a module name when `null`.
    #[serde(default)]
    pub layers_pattern: Option<OneOrMany<String>>,
    /// Modules trained in full and saved with the adapter (a classifier's head); `null` when
    /// there are none.
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// The base model the adapter belongs to.
    pub base_model_name_or_path: String,
    /// Whether the adapter is for inference only.
    #[serde(default)]
    pub inference_mode: bool,
}

impl AdapterConfig {
    /// The config of a classification adapter trained with `settings`.
    pub fn for_classification(settings: &LoraSettings, base_model: &str) -> Self {
        Self::for_family(&BERT_CLASSIFIER, settings, base_model)
    }

    /// The config of a causal-LM (decoder) adapter trained with `settings`.
    pub fn for_causal_lm(settings: &LoraSettings, base_model: &str) -> Self {
        Self::for_family(&LLAMA_CAUSAL_LM, settings, base_model)
    }

    /// The config of an adapter of `family` trained with `settings`.
    pub fn for_family(family: &AdapterFamily, settings: &LoraSettings, base_model: &str) -> Self {
        let saved: Vec<String> = family
            .modules_to_save
            .iter()
            .map(|m| m.to_string())
            .collect();
        Self {
            peft_type: "LORA".into(),
            task_type: family.task_type.into(),
            r: settings.r,
            lora_alpha: settings.lora_alpha,
            lora_dropout: settings.lora_dropout,
            target_modules: settings.target_modules.clone(),
            bias: "none".into(),
            use_rslora: settings.use_rslora,
            layers_to_transform: settings.layers_to_transform.clone().map(OneOrMany::Many),
            layers_pattern: settings
                .layers_to_transform
                .as_ref()
                .map(|_| OneOrMany::One(family.layers_pattern.into())),
            modules_to_save: (!saved.is_empty()).then_some(saved),
            base_model_name_or_path: base_model.into(),
            inference_mode: true,
        }
    }

    /// Parses `adapter_config.json` and checks it describes something Hearth can load.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let config: Self = serde_json::from_slice(bytes)
            .map_err(|e| ModelError::Lora(format!("adapter_config.json: {e}")))?;
        if config.peft_type != "LORA" {
            return Err(ModelError::Lora(format!(
                "adapter_config.json: peft_type is `{}`, only LORA is supported",
                config.peft_type
            )));
        }
        if let Some(patterns) = &config.layers_pattern {
            let patterns = patterns.as_slice();
            let family = FAMILIES.iter().find(|f| f.task_type == config.task_type);
            let known = |p: &String| match family {
                Some(f) => p == f.layers_pattern,
                None => LAYER_STACKS.contains(&p.as_str()),
            };
            // PEFT treats an empty pattern as no pattern.
            if !patterns.is_empty() && !patterns.iter().any(known) {
                let stack = family.map_or_else(
                    || format!("any model Hearth loads (its stacks are {LAYER_STACKS:?})"),
                    |f| format!("a {} model (its layers are `{}.N`)", f.name, f.layers_path),
                );
                return Err(ModelError::Lora(format!(
                    "adapter_config.json: layers_pattern {patterns:?} names no layer stack of {stack}"
                )));
            }
        }
        config.settings().validate().map_err(|e| match e {
            ModelError::Lora(msg) => ModelError::Lora(format!("adapter_config.json: {msg}")),
            other => other,
        })?;
        Ok(config)
    }

    /// Refuses an adapter of another family than `family` (by PEFT's `task_type`): a SEQ_CLS
    /// adapter on a decoder, say.
    pub fn check_family(&self, family: &AdapterFamily) -> Result<(), ModelError> {
        if self.task_type == family.task_type {
            return Ok(());
        }
        Err(ModelError::Lora(format!(
            "adapter_config.json: task_type is `{}`, but this {} model takes `{}` adapters",
            self.task_type, family.name, family.task_type
        )))
    }

    /// The LoRA settings the adapter was trained with.
    pub fn settings(&self) -> LoraSettings {
        LoraSettings {
            r: self.r,
            lora_alpha: self.lora_alpha,
            lora_dropout: self.lora_dropout,
            target_modules: self.target_modules.clone(),
            use_rslora: self.use_rslora,
            // PEFT reads an empty list as "every layer".
            layers_to_transform: self
                .layers_to_transform
                .as_ref()
                .map(|l| l.as_slice().to_vec())
                .filter(|l| !l.is_empty()),
        }
    }
}

/// A field PEFT accepts as one value or a list (`layers_to_transform`, `layers_pattern`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(v) => std::slice::from_ref(v),
            Self::Many(v) => v,
        }
    }
}

/// burn path → PEFT name of everything an adapter saves: both factors of every adapted module
/// and the family's `modules_to_save` (a classifier's head). Only parameters the model actually
/// carries are listed.
pub fn peft_names<M: PeftModel>(model: &M) -> Vec<(String, String)> {
    // Shapes, not values: a quantized projection's placeholder must not be made dense.
    let shapes = crate::host::visit_paths(model, Shapes::default()).0;
    let mut out = Vec::new();
    let prefix = M::FAMILY.module_prefix;
    for module in model.adaptable_modules() {
        for (factor, peft) in [('a', "lora_A"), ('b', "lora_B")] {
            let path = factor_path(&format!("{prefix}{}", module.weight_path), factor);
            if shapes.get(&path).is_some_and(|s| s.len() == 2) {
                out.push((
                    path,
                    format!("{PREFIX}{prefix}{}.{peft}.weight", module.hf_name),
                ));
            }
        }
    }
    for (path, peft) in saved_names(&M::FAMILY) {
        if shapes.contains_key(&path) {
            out.push((path, peft));
        }
    }
    out
}

/// burn path and PEFT name of the `weight` and `bias` of every module of `modules_to_save`.
fn saved_names(family: &AdapterFamily) -> Vec<(String, String)> {
    family
        .modules_to_save
        .iter()
        .flat_map(|m| ["weight", "bias"].map(|p| (format!("{m}.{p}"), format!("{PREFIX}{m}.{p}"))))
        .collect()
}

/// The burn path of a LoRA factor (`a` or `b`) attached to the weight at `weight_path`.
pub fn factor_path(weight_path: &str, factor: char) -> String {
    format!("{weight_path}.lora.{factor}")
}

/// The PEFT tensors of a model's adapters (and head), by PEFT name, in PEFT's layout.
async fn peft_tensors<M: PeftModel>(model: &M) -> Result<BTreeMap<String, HostTensor>, ModelError> {
    let names = peft_names(model);
    // Only the adapters' (and head's) values: reading every parameter would make a quantized
    // projection's placeholder dense.
    let wanted = names.iter().map(|(path, _)| path.clone()).collect();
    let mut named = crate::host::visit_paths(model, Wanted(wanted, NamedParams::default())).1;
    if !names.iter().any(|(path, _)| path.contains(".lora.")) {
        return Err(ModelError::Lora(
            "the model has no LoRA adapters to save".into(),
        ));
    }
    let mut out = BTreeMap::new();
    for (path, peft) in names {
        let host = if let Some(t) = named.matrices.remove(&path) {
            to_host(t).await?.transposed()
        } else if let Some(t) = named.vectors.remove(&path) {
            to_host(t).await?
        } else {
            return Err(ModelError::Lora(format!(
                "the model has no parameter `{path}`"
            )));
        };
        out.insert(peft, host);
    }
    Ok(out)
}

/// Initial values of every trainable tensor, drawn on the host from `seed` so that a run
/// starts from the same numbers on every backend (the browser's WebGPU and the CLI's CPU):
/// `lora_A` uniform in ±1/√in as PEFT's Kaiming-uniform init (a = √5) gives, `lora_B` zero,
/// and a head (`modules_to_save`, a classifier's) normal with standard deviation `head_std`
/// (transformers' `initializer_range`) and a zero bias. A decoder has no head: `head_std` is
/// not read ([`crate::llama::LlamaForCausalLM::seeded_lora`]).
pub fn seeded_init<M: PeftModel>(model: M, seed: u64, head_std: f64) -> Result<M, ModelError> {
    use rand::{RngExt, SeedableRng};
    use rand_distr::{Distribution, Normal};

    // Shapes only: reading a quantized projection's placeholder weight as a tensor would
    // materialize it in f32 (its zero-stride view made dense), the copy QLoRA exists to avoid.
    let shapes = crate::host::visit_paths(&model, Shapes::default()).0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, head_std)
        .map_err(|e| ModelError::UnsupportedConfig(format!("initializer_range: {e}")))?;
    let mut tensors = BTreeMap::new();
    for (path, peft) in peft_names(&model) {
        // PEFT layout: burn's [in, out] matrices transposed.
        let shape: Vec<usize> = match shapes.get(&path).map(Vec::as_slice) {
            Some(&[rows, cols]) => vec![cols, rows],
            Some(&[n]) => vec![n],
            _ => {
                return Err(ModelError::Lora(format!(
                    "the model has no parameter `{path}`"
                )));
            }
        };
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if peft.ends_with(".lora_A.weight") {
            let bound = 1.0 / (shape[1] as f64).sqrt();
            (0..n)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect()
        } else if !peft.contains(".lora_") && peft.ends_with(".weight") {
            (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
        } else {
            vec![0.0; n]
        };
        tensors.insert(peft, HostTensor { shape, data });
    }
    let bytes = serialize(&tensors, None)?;
    import_adapter(model, &bytes)
}

/// [`NamedParams`] of the parameters whose paths are in the set, the others left untouched.
struct Wanted(std::collections::BTreeSet<String>, NamedParams);

impl PathVisitor for Wanted {
    fn visit<const D: usize>(
        &mut self,
        path: &str,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        if self.0.contains(path) {
            self.1.visit(path, param);
        }
    }
}

/// The shape of every float parameter by burn path, read without touching its values.
#[derive(Default)]
struct Shapes(BTreeMap<String, Vec<usize>>);

impl PathVisitor for Shapes {
    fn visit<const D: usize>(
        &mut self,
        path: &str,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        self.0
            .insert(path.to_string(), param.lazy_shape().dims::<D>().to_vec());
    }
}

/// `adapter_model.safetensors` of a trained model, as PEFT writes it (metadata
/// `{"format": "pt"}`).
pub async fn export_adapter<M: PeftModel>(model: &M) -> Result<Vec<u8>, ModelError> {
    serialize(&peft_tensors(model).await?, pytorch_metadata())
}

/// A PEFT adapter directory's two files loaded onto `model` (without adapters): the config's
/// family and settings are checked, adapters attached as it describes, and the tensors
/// imported ([`import_adapter`]).
pub fn load_adapter<M: PeftModel>(
    model: M,
    adapter_config: &[u8],
    adapter_safetensors: &[u8],
) -> Result<M, ModelError> {
    let config = AdapterConfig::from_json(adapter_config)?;
    config.check_family(&M::FAMILY)?;
    import_adapter(model.with_lora(&config.settings())?, adapter_safetensors)
}

/// Loads a PEFT adapter's tensors into a model that already carries adapters of the same
/// rank on the same targets (see [`PeftModel::with_lora`]).
///
/// Every tensor of the file must land in the model and every adapter of the model must be
/// filled: a partial load would silently evaluate a different model.
/// A tensor holding NaN or an infinity is refused, by name ([`crate::host::check_finite`]).
pub fn import_adapter<M: PeftModel>(model: M, adapter_safetensors: &[u8]) -> Result<M, ModelError> {
    crate::host::check_finite(adapter_safetensors, "adapter_model.safetensors")?;
    let file = safetensors::SafeTensors::deserialize(adapter_safetensors)
        .map_err(|e| ModelError::Lora(format!("adapter_model.safetensors cannot be read: {e}")))?;
    let family = M::FAMILY;
    let saved: HashMap<String, String> = saved_names(&family)
        .into_iter()
        .map(|(path, peft)| (peft, path))
        .collect();
    let weights: HashMap<String, String> = model
        .adaptable_modules()
        .into_iter()
        .map(|m| {
            (
                format!("{}{}", family.module_prefix, m.hf_name),
                m.weight_path,
            )
        })
        .collect();
    let mut burn_tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        let Some(host) = HostTensor::from_view(&view) else {
            return Err(ModelError::Lora(format!(
                "adapter tensor `{name}` is {:?}; only F32 adapters are supported",
                view.dtype()
            )));
        };
        let burn_name = match saved.get(&name) {
            Some(path) => path.clone(),
            None => factor_for(&name, &weights, &family)?,
        };
        let host = if host.shape.len() == 2 {
            host.transposed()
        } else {
            host
        };
        burn_tensors.insert(burn_name, host);
    }
    let mut model = model;
    let result = load_host(&mut model, &burn_tensors).map_err(ModelError::Lora)?;
    if !result.errors.is_empty() {
        return Err(ModelError::Lora(format!(
            "the adapter does not fit the model (is r the same as in adapter_config.json?): {}",
            first_errors(&result, 4)
        )));
    }
    if !result.unused.is_empty() {
        return Err(ModelError::Lora(format!(
            "the adapter has tensors for modules this model does not adapt: {}",
            result.unused.join(", ")
        )));
    }
    let unfilled: Vec<&str> = result
        .missing
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| {
            p.contains(".lora.")
                || family
                    .modules_to_save
                    .iter()
                    .any(|m| p.starts_with(&format!("{m}.")))
        })
        .collect();
    if !unfilled.is_empty() {
        return Err(ModelError::Lora(format!(
            "the adapter file lacks {} tensor(s) its config implies, e.g. {}",
            unfilled.len(),
            unfilled[0]
        )));
    }
    Ok(model)
}

/// The burn path of the factor a PEFT tensor name holds, given the model's linear layers
/// (HF module name → burn weight path).
fn factor_for(
    name: &str,
    weights: &HashMap<String, String>,
    family: &AdapterFamily,
) -> Result<String, ModelError> {
    let Some(hf) = name.strip_prefix(PREFIX) else {
        return Err(ModelError::Lora(format!(
            "adapter tensor `{name}` does not start with `{PREFIX}`"
        )));
    };
    let (module, factor) = if let Some(m) = hf.strip_suffix(".lora_A.weight") {
        (m, 'a')
    } else if let Some(m) = hf.strip_suffix(".lora_B.weight") {
        (m, 'b')
    } else {
        return Err(ModelError::Lora(format!(
            "adapter tensor `{name}` is neither a lora_A nor a lora_B weight nor a module a {} \
             adapter saves",
            family.name
        )));
    };
    let Some(weight) = weights.get(module) else {
        return Err(ModelError::Lora(format!(
            "adapter tensor `{name}` adapts `{module}`, which is not a linear layer of this {} \
             model",
            family.name
        )));
    };
    Ok(format!(
        "{}{}",
        family.module_prefix,
        factor_path(weight, factor)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> Result<AdapterConfig, ModelError> {
        let mut value = serde_json::json!({
            "peft_type": "LORA", "task_type": "SEQ_CLS", "r": 8, "lora_alpha": 16,
            "lora_dropout": 0.1, "target_modules": ["query", "value"], "bias": "none",
            "modules_to_save": ["classifier"], "base_model_name_or_path": "m"
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            value[k] = v.clone();
        }
        AdapterConfig::from_json(&serde_json::to_vec(&value).unwrap_or_default())
    }

    #[test]
    fn layer_settings_read_as_peft_writes_them() {
        // Absent fields (older PEFT): rsLoRA off, every layer.
        let plain = config(serde_json::json!({})).expect("parses").settings();
        assert!(!plain.use_rslora);
        assert_eq!(plain.layers_to_transform, None);
        // One index, a list, an empty list (PEFT: every layer); the pattern as a string or list.
        let one = config(serde_json::json!({"layers_to_transform": 2, "use_rslora": true}))
            .expect("parses")
            .settings();
        assert_eq!(one.layers_to_transform, Some(vec![2]));
        assert!(one.use_rslora);
        let listed = config(serde_json::json!({
            "layers_to_transform": [0, 5], "layers_pattern": ["layer"]
        }))
        .expect("parses");
        assert_eq!(listed.settings().layers_to_transform, Some(vec![0, 5]));
        let empty = config(serde_json::json!({"layers_to_transform": []})).expect("parses");
        assert_eq!(empty.settings().layers_to_transform, None);
        let err = config(serde_json::json!({
            "layers_to_transform": [1], "layers_pattern": "layers"
        }))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("layers_pattern [\"layers\"] names no layer stack"),
            "{err}"
        );
        // A decoder's stack is `layers`; BERT's name is not one of its stacks.
        let decoder = config(serde_json::json!({
            "task_type": "CAUSAL_LM", "layers_to_transform": [1], "layers_pattern": "layers",
            "modules_to_save": null
        }))
        .expect("parses");
        decoder
            .check_family(&LLAMA_CAUSAL_LM)
            .expect("a decoder adapter");
        assert!(decoder.check_family(&BERT_CLASSIFIER).is_err());
        let err = config(serde_json::json!({
            "task_type": "CAUSAL_LM", "layers_to_transform": [1], "layers_pattern": "layer"
        }))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Llama model (its layers are `model.layers.N`)"),
            "{err}"
        );
        let err = config(serde_json::json!({"r": 0})).unwrap_err().to_string();
        assert!(
            err.contains("adapter_config.json: r must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn layer_settings_are_written_as_peft_reads_them() {
        let settings = LoraSettings {
            use_rslora: true,
            layers_to_transform: Some(vec![1, 3]),
            ..LoraSettings::default()
        };
        let written = serde_json::to_value(AdapterConfig::for_classification(&settings, "m"))
            .expect("serializes");
        assert_eq!(written["use_rslora"], true);
        assert_eq!(written["layers_to_transform"], serde_json::json!([1, 3]));
        assert_eq!(written["layers_pattern"], "layer");
        let back =
            AdapterConfig::from_json(&serde_json::to_vec(&written).expect("json")).expect("parses");
        assert_eq!(back.settings(), settings);
        let plain = serde_json::to_value(AdapterConfig::for_classification(
            &LoraSettings::default(),
            "m",
        ))
        .expect("serializes");
        assert_eq!(plain["layers_to_transform"], serde_json::Value::Null);
        assert_eq!(plain["layers_pattern"], serde_json::Value::Null);
        let decoder =
            serde_json::to_value(AdapterConfig::for_causal_lm(&settings, "m")).expect("serializes");
        assert_eq!(decoder["task_type"], "CAUSAL_LM");
        assert_eq!(decoder["layers_pattern"], "layers");
        assert_eq!(decoder["modules_to_save"], serde_json::Value::Null);
        assert_eq!(plain["modules_to_save"], serde_json::json!(["classifier"]));
    }
}
