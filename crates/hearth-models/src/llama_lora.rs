//! LoRA on the Llama decoder, saved and loaded as PEFT's `CAUSAL_LM` adapters.
//!
//! The decoder's burn paths are HF's names (`model.layers.N.self_attn.q_proj.weight`), so the
//! linear layers map to themselves and PEFT's tensor names are
//! `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`. The attention and MLP
//! projections of every layer may be adapted; `lm_head` (tied to the embedding in small models)
//! never is, as in PEFT's defaults. Attaching, the seeded init, export and import are the
//! family-independent code of [`crate::lora`] and [`crate::peft`]; this file only says which
//! layers a decoder has. A merge folds the adapters into the weights and writes HF's
//! `LlamaForCausalLM` again.

use burn::module::Module;
use burn::tensor::Device;

use crate::host::pytorch_safetensors;
use crate::llama::{LlamaConfig, LlamaForCausalLM};
use crate::lora::{self, LinearModule, LoraSettings};
use crate::merge::MergedModel;
use crate::peft::{self, AdapterFamily, LLAMA_CAUSAL_LM, PeftModel};
use crate::{ModelError, ModelFiles};

impl LlamaForCausalLM {
    /// HF module paths, burn parameter paths and shapes of every linear layer LoRA may adapt,
    /// in model order (`model.layers.0.self_attn.q_proj`, …); `lm_head` is left out.
    pub fn linear_modules(&self) -> Vec<LinearModule> {
        self.model
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, layer)| {
                let (attn, mlp) = (&layer.self_attn, &layer.mlp);
                [
                    ("self_attn.q_proj", &attn.q_proj),
                    ("self_attn.k_proj", &attn.k_proj),
                    ("self_attn.v_proj", &attn.v_proj),
                    ("self_attn.o_proj", &attn.o_proj),
                    ("mlp.gate_proj", &mlp.gate_proj),
                    ("mlp.up_proj", &mlp.up_proj),
                    ("mlp.down_proj", &mlp.down_proj),
                ]
                .map(|(name, linear)| {
                    LinearModule::from_hf(
                        &format!("model.layers.{i}.{name}"),
                        str::to_string,
                        linear.weight.lazy_shape().dims::<2>(),
                    )
                })
            })
            .collect()
    }

    /// The number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.model.layers.len()
    }

    /// Attaches LoRA adapters to the target modules and freezes everything else (embeddings,
    /// norms, the untargeted projections): only the factors train.
    ///
    /// The adapters scale by [`LoraSettings::scale`] and sit only in `layers_to_transform` when
    /// given. burn draws their initial values; [`Self::seeded_lora`] replaces them with PEFT's
    /// init drawn from a seed. The dropout on adapter inputs is the `lora_dropout` the model was
    /// built with ([`LlamaForCausalLM::init`]). Targets for a decoder are its own names
    /// (`q_proj`, `v_proj`: [`LoraSettings::for_decoder`]), not BERT's default `query`/`value`.
    pub fn with_lora(self, settings: &LoraSettings) -> Result<Self, ModelError> {
        settings.validate()?;
        let group = lora::target_group(&self.linear_modules(), settings, self.num_layers())?;
        Ok(self.apply_lora(
            burn::module::Lora::new(settings.r, settings.burn_alpha()).set_param_group(group),
        ))
    }

    /// The adapters' factors drawn on the host from `seed` as PEFT initializes them (`lora_A`
    /// uniform in ±1/√in, `lora_B` zero, so the adapted model starts equal to the base), the
    /// same numbers on every backend ([`peft::seeded_init`]).
    pub fn seeded_lora(self, seed: u64) -> Result<Self, ModelError> {
        peft::seeded_init(self, seed, 0.0)
    }
}

/// PEFT sees the decoder's modules from the root (`model.layers.N.…`) and saves no head.
impl PeftModel for LlamaForCausalLM {
    const FAMILY: AdapterFamily = LLAMA_CAUSAL_LM;

    fn adaptable_modules(&self) -> Vec<LinearModule> {
        self.linear_modules()
    }

    fn with_lora(self, settings: &LoraSettings) -> Result<Self, ModelError> {
        Self::with_lora(self, settings)
    }
}

/// A Llama-family decoder with LoRA adapters attached, ready to train on `device`: `config.json`
/// and `model.safetensors` from `files`, adapters on `lora`'s targets with their input dropout,
/// factors drawn from `seed` ([`LlamaForCausalLM::seeded_lora`]), or `files.adapter` (a PEFT
/// `adapter_model.safetensors` of the same settings) when given.
pub fn build_causal_lm(
    files: &ModelFiles,
    lora: &LoraSettings,
    seed: u64,
    device: &Device,
) -> Result<LlamaForCausalLM, ModelError> {
    lora.validate()?;
    let config = LlamaConfig::from_json(&files.config)?;
    let model = LlamaForCausalLM::init(&config, lora.lora_dropout, device)?
        .load_safetensors(files.weights.clone())?
        .with_lora(lora)?
        .seeded_lora(seed)?;
    match &files.adapter {
        None => Ok(model),
        Some(adapter) => peft::import_adapter(model, adapter),
    }
}

/// Merges the model's adapters into its weights (`W + s·A·B`, burn's `materialize`) and writes
/// HF's `LlamaForCausalLM`: `model.safetensors` with every parameter under its HF name (linear
/// weights as `[out, in]`, the embedding as `[vocab, hidden]`, no `lm_head` when tied) and the
/// base's `config.json` unchanged. Reading back is async, so the page can merge too.
pub async fn merge_causal_lm(
    model: LlamaForCausalLM,
    base_config: &[u8],
) -> Result<MergedModel, ModelError> {
    LlamaConfig::from_json(base_config)?;
    if model.is_quantized() {
        // Its projections' weights are placeholders; the blocks are not the f32 base to merge into.
        return Err(ModelError::Lora(
            "this model's base is quantized (model.quantize); merge the adapter into the \
             model loaded in f32 instead"
                .into(),
        ));
    }
    let weights = pytorch_safetensors(&model.materialize(), str::to_string, |path| {
        path.contains("embed_tokens")
    })
    .await?;
    Ok(MergedModel {
        config: base_config.to_vec(),
        weights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn tiny() -> LlamaForCausalLM {
        let config = LlamaConfig::from_json(
            br#"{"vocab_size": 16, "hidden_size": 8, "intermediate_size": 12,
                 "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 1,
                 "tie_word_embeddings": true}"#,
        )
        .expect("config");
        LlamaForCausalLM::init(&config, 0.0, &Device::flex()).expect("builds")
    }

    #[test]
    fn targets_follow_peft_s_rule_on_decoder_names() {
        let model = tiny();
        let modules = model.linear_modules();
        assert_eq!(modules.len(), 3 * 7);
        assert_eq!(modules[0].hf_name, "model.layers.0.self_attn.q_proj");
        assert_eq!(
            modules[0].weight_path,
            "model.layers.0.self_attn.q_proj.weight"
        );
        let settings = LoraSettings {
            r: 2,
            target_modules: vec!["q_proj".into(), "mlp.down_proj".into()],
            layers_to_transform: Some(vec![0, 2]),
            ..LoraSettings::for_decoder()
        };
        let adapted = model.with_lora(&settings).expect("attaches");
        let mut names: Vec<String> = peft::peft_names(&adapted)
            .into_iter()
            .map(|(_, peft)| peft)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight",
                "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                "base_model.model.model.layers.2.mlp.down_proj.lora_A.weight",
                "base_model.model.model.layers.2.mlp.down_proj.lora_B.weight",
                "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight",
                "base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight",
            ]
        );
        // BERT's default targets name nothing in a decoder: an error that lists its layers.
        let err = tiny()
            .with_lora(&LoraSettings::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`query` matches no linear layer") && err.contains("q_proj"),
            "{err}"
        );
        let err = tiny()
            .with_lora(&LoraSettings {
                layers_to_transform: Some(vec![3]),
                ..LoraSettings::for_decoder()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 layers (0 to 2)"), "{err}");
    }
}
