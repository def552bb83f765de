//! The wasm module behind Hearth's page. It runs inside a module Web Worker (`web/worker.js`)
//! and does all the heavy work there: WebGPU set-up, model loading, tokenization, training,
//! evaluation and adapter export. It is a thin shell over the same crates the CLI uses; its
//! exports take and return bytes and JSON strings, and every failure is an error value with a
//! message for the user, never a panic (a panic would still reach the page through the hook
//! installed at start-up).

#![cfg(target_arch = "wasm32")]

mod api;
mod inspect;
mod run;
mod trained;

pub use api::*;
pub use inspect::*;
pub use run::*;
pub use trained::*;
