//! What Hearth's tests and `cargo xtask tiny-bert` share, so that there is one of each: the
//! builder of tiny random BERT checkpoints ([`TinyBert`]) and the paths of the committed
//! PyTorch fixtures that `scripts/fixtures/` writes ([`fixture`], [`json`]).
//!
//! A test support crate: it is never published and no library crate depends on it.

mod tiny_bert;

use std::path::PathBuf;

pub use tiny_bert::{Error, Init, TinyBert, restrict_tokenizer};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A committed fixture file or directory (see tests/fixtures/README.md).
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A committed JSON fixture, parsed. Panics when it is missing or not JSON: for tests only.
pub fn json(name: &str) -> serde_json::Value {
    let bytes = std::fs::read(fixture(name)).expect("fixture is committed");
    serde_json::from_slice(&bytes).expect("fixture is JSON")
}
