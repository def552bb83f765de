//! `cargo xtask tiny-bert`: writes the browser tests' tiny random BERT
//! ([`hearth_fixtures::TinyBert::BROWSER`]: 2 layers, hidden 32, the first `vocab` ids of a real
//! WordPiece tokenizer) as a HuggingFace model directory, so it goes through exactly the
//! loading path a real model does.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use hearth_fixtures::{TinyBert, restrict_tokenizer};

/// Writes `config.json`, `model.safetensors` and `tokenizer.json` into `out`.
pub fn write(tokenizer: &Path, out: &Path, vocab: usize) -> Result<()> {
    let source = fs::read(tokenizer).with_context(|| {
        format!(
            "reading {} (run scripts/fetch-assets.sh first)",
            tokenizer.display()
        )
    })?;
    let model = TinyBert {
        vocab,
        ..TinyBert::BROWSER
    };
    fs::create_dir_all(out)?;
    fs::write(
        out.join("tokenizer.json"),
        serde_json::to_vec(&restrict_tokenizer(&source, vocab)?)?,
    )?;
    fs::write(
        out.join("config.json"),
        serde_json::to_vec_pretty(&model.config())?,
    )?;
    fs::write(out.join("model.safetensors"), model.safetensors()?)?;
    eprintln!("tiny BERT written to {}", out.display());
    Ok(())
}
