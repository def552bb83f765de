//! Reading GGUF files, llama.cpp's single-file model format, for Hearth's Llama-family models.
//!
//! [`Gguf::parse`] reads a whole file from a byte slice (so it works the same natively and in
//! the browser): the header (versions 2 and 3), the metadata as typed [`Value`]s, the tensor
//! infos, and the data section, every range checked. [`Gguf::dequantize`] turns a tensor into
//! f32 for the types small models are shipped in (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
//! and the K-quants Q2_K … Q6_K, bit for bit as gguf-py computes them); the
//! typed getters (`get_u32`, `get_str`, `get_array_str`, …) and [`LlamaConfig::from_gguf`] read
//! the metadata. A malformed or truncated file is a [`GgufError`] that says what is wrong, never
//! a panic.
//!
//! Tensors keep ggml's layout: dimensions are listed innermost first ([`TensorInfo::dims`];
//! [`TensorInfo::shape`] gives the PyTorch order) and data is in ggml's element order. Note that
//! llama.cpp's converter permutes the rows of Llama's `attn_q` and `attn_k` weights for its
//! interleaved RoPE; undoing that (or using interleaved RoPE) is the model loader's business,
//! not this crate's. This crate knows nothing about burn or about models beyond the config keys.

mod access;
mod dequant;
mod error;
mod file;
mod ggml;
mod llama;
mod value;

pub use dequant::{can_dequantize, dequantize, scale_min_k4};
pub use error::{GgufError, Result};
pub use file::{DEFAULT_ALIGNMENT, Gguf, MAX_ARRAY_DEPTH, MAX_DIMS, TensorInfo};
pub use ggml::GgmlType;
pub use llama::{DEFAULT_ROPE_FREQ_BASE, LlamaConfig};
pub use value::{Value, ValueType};
