//! Operations Hearth needs that burn does not have, as burn backend extensions.
//!
//! One for now: a frozen block-quantized linear layer, `y = x·Wᵀ` with `W` kept as q8 or q4
//! blocks ([`blocks`]) and dequantized a range of rows at a time inside the kernel ([`flex`]),
//! with its own backward ([`backward`]) that computes `∂x = g·W` from the blocks again and gives
//! `W` no gradient. burn's own quantized matmul under autodiff keeps the whole dequantized
//! weight from the forward to the backward pass (docs/QLORA.md); this one keeps only the blocks.
//!
//! This crate may name backends, behind features (`flex`, and `wgpu` for the CubeCL kernels); every other library crate stays
//! backend-free and asks [`supports`] before it builds a [`QuantWeight`].

pub mod blocks;
pub mod extension;

#[cfg(feature = "flex")]
mod flex;

#[cfg(feature = "wgpu")]
mod cube;

mod backward;

pub use blocks::{BLOCK, BlockError, QuantBlocks, QuantFormat};
pub use extension::{QuantLinearBackend, QuantWeight, Unsupported, supports};
