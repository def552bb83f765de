//! Writes a LoRA adapter on the tiny random Llama (or Gemma 3), as Hearth exports it, for
//! `scripts/fixtures/llama_lora.py` (`gemma_lora.py`) to load in PEFT
//! (`tests/fixtures/hearth-llama-adapter/`, `hearth-gemma-adapter/`).
//!
//! `cargo run -p hearth-models --example llama_adapter -- MODEL_DIR OUT_DIR`
//!
//! Every projection of every layer is adapted (r 4, alpha 8). `lora_A` is drawn from seed 1
//! (`LlamaForCausalLM::seeded_lora`); `lora_B`, which that init leaves at zero as PEFT does, is
//! overwritten with fixed values so the adapter changes the logits visibly.

use std::path::PathBuf;

use burn::tensor::Device;
use hearth_models::ModelFiles;
use hearth_models::llama_lora::build_causal_lm;
use hearth_models::lora::LoraSettings;
use hearth_models::peft::{AdapterConfig, export_adapter};

mod common;
use common::with_nonzero_b;

/// The settings of the committed adapter: PEFT's `LoraConfig(r=4, lora_alpha=8,
/// lora_dropout=0.0)` on every projection.
fn settings() -> LoraSettings {
    LoraSettings {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        target_modules: [
            "down_proj",
            "gate_proj",
            "k_proj",
            "o_proj",
            "q_proj",
            "up_proj",
            "v_proj",
        ]
        .map(String::from)
        .to_vec(),
        use_rslora: false,
        layers_to_transform: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [model_dir, out] = args.as_slice() else {
        return Err("usage: llama_adapter MODEL_DIR OUT_DIR".into());
    };
    let read = |n: &str| std::fs::read(model_dir.join(n));
    let mut files = ModelFiles {
        config: read("config.json")?,
        weights: read("model.safetensors")?,
        tokenizer: Vec::new(),
        adapter: None,
    };
    let device = Device::flex();
    let seeded = build_causal_lm(&files, &settings(), 1, &device)?;
    let first = pollster::block_on(export_adapter(&seeded))?;
    files.adapter = Some(with_nonzero_b(&first)?);
    let model = build_causal_lm(&files, &settings(), 1, &device)?;
    let weights = pollster::block_on(export_adapter(&model))?;
    // The base as the fixture script names it (`tests/fixtures/tiny-llama`, relative).
    let config = AdapterConfig::for_causal_lm(&settings(), &model_dir.to_string_lossy());
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("adapter_config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    std::fs::write(out.join("adapter_model.safetensors"), weights)?;
    Ok(())
}
