//! Writes an rsLoRA adapter restricted to layers 1 and 3, as Hearth exports it, for
//! `scripts/fixtures/rslora.py` to load in PEFT (`tests/fixtures/hearth-rslora-adapter/`).
//!
//! `cargo run -p hearth-models --example rslora_adapter -- MODEL_DIR OUT_DIR`
//!
//! The factors and the head are drawn from a fixed seed (`peft::seeded_init`); `lora_B`, which
//! that init leaves at zero as PEFT does, and the head are overwritten with fixed values so the
//! adapter changes the logits visibly.

use std::path::PathBuf;

use burn::tensor::Device;
use hearth_models::bert::Pooling;
use hearth_models::lora::LoraSettings;
use hearth_models::{ModelFiles, Strategy, Trained, build_for_strategy, export_trained, peft};

mod common;
use common::with_nonzero_b;

fn settings() -> LoraSettings {
    LoraSettings {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        target_modules: vec!["query".into(), "value".into()],
        use_rslora: true,
        layers_to_transform: Some(vec![1, 3]),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [model_dir, out] = args.as_slice() else {
        return Err("usage: rslora_adapter MODEL_DIR OUT_DIR".into());
    };
    let read = |n: &str| std::fs::read(model_dir.join(n));
    let mut files = ModelFiles {
        config: read("config.json")?,
        weights: read("model.safetensors")?,
        tokenizer: read("tokenizer.json")?,
        adapter: None,
    };
    let device = Device::flex();
    let labels: Vec<String> = ["negative", "neutral", "positive"]
        .map(String::from)
        .to_vec();
    let build = |files: &ModelFiles| {
        build_for_strategy(
            files,
            3,
            Pooling::Cls,
            &settings(),
            Strategy::Lora,
            1,
            &device,
        )
    };
    let seeded = build(&files)?;
    let first = pollster::block_on(peft::export_adapter(&seeded))?;
    files.adapter = Some(with_nonzero_b(&first)?);
    let model = build(&files)?;
    let trained = pollster::block_on(export_trained(
        &model,
        Strategy::Lora,
        &settings(),
        &files,
        "all-MiniLM-L6-v2",
        &labels,
        hearth_models::merge::ProblemType::SingleLabel,
    ))?;
    assert!(matches!(trained, Trained::Adapter { .. }));
    std::fs::create_dir_all(out)?;
    for (name, bytes) in trained.files()? {
        std::fs::write(out.join(name), bytes)?;
    }
    Ok(())
}
