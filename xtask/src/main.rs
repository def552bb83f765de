//! Repository tasks, run as `cargo xtask <task>`:
//!
//! - `web`: builds the wasm module (profile `wasm-size`), binds it with the pinned `wasm-bindgen` CLI,
//!   shrinks it with `wasm-opt` where installed, and assembles `static/` from `web/`.
//! - `serve`: `web`, then serves `static/` on 127.0.0.1 with the demo model and data.
//! - `tiny-bert`: writes a small random BERT model directory for browser tests.

mod serve;
mod tiny;
mod web;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Hearth repository tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the page into static/: wasm module, worker and page sources.
    Web,
    /// Build the page and serve it on 127.0.0.1.
    Serve {
        /// Port to listen on; 0 picks a free one (printed on start).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Serve static/ as it is, without building first.
        #[arg(long)]
        no_build: bool,
        /// Serve this model folder as the demo model (the browser tests: the tiny BERT).
        #[arg(long)]
        demo_model: Option<PathBuf>,
        /// Serve this file as the demo data (the browser tests: tests/browser/tiny.csv).
        #[arg(long)]
        demo_data: Option<PathBuf>,
    },
    /// Write a tiny random BERT (config.json, model.safetensors, tokenizer.json).
    TinyBert {
        /// Output directory.
        #[arg(long, default_value = "assets/tiny-bert")]
        out: PathBuf,
        /// The tokenizer whose first `--vocab` ids the tiny model keeps.
        #[arg(long, default_value = "assets/all-MiniLM-L6-v2/tokenizer.json")]
        tokenizer: PathBuf,
        /// Vocabulary size.
        #[arg(long, default_value_t = 4000)]
        vocab: usize,
    },
}

/// The repository root (xtask lives one level below it).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Web => web::build(&root()),
        Task::Serve {
            port,
            no_build,
            demo_model,
            demo_data,
        } => {
            if !no_build {
                web::fetch_assets(&root())?;
                web::build(&root())?;
            }
            let default = serve::Demo::default();
            let demo = serve::Demo {
                model: demo_model.unwrap_or(default.model),
                data: demo_data.unwrap_or(default.data),
            };
            serve::serve(&root(), port, demo)
        }
        Task::TinyBert {
            out,
            tokenizer,
            vocab,
        } => tiny::write(&root().join(tokenizer), &root().join(out), vocab),
    }
}
