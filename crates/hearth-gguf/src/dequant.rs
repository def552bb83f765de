//! Dequantizing ggml tensor data to f32, for the types small Llama-family GGUF files use.
//!
//! Block layouts, as ggml's `ggml-common.h` defines them (all little-endian, 32 weights a block):
//!
//! - `Q8_0`: f16 scale `d`, then 32 × i8 `q`; weight `j` is `q[j] · d`.
//! - `Q4_0`: f16 scale `d`, then 16 bytes of 4-bit values; weight `j` (j < 16) is the low nibble
//!   of byte `j`, weight `j + 16` the high nibble of byte `j`; each is `(nibble − 8) · d`.
//! - `Q4_1`: f16 scale `d`, f16 minimum `m`, then 16 bytes as in `Q4_0`; each weight is
//!   `nibble · d + m`.
//!
//! So the nibbles are not interleaved in element order: the low halves of the 16 bytes are the
//! first 16 weights of the block, the high halves the last 16.

use half::{bf16, f16};

use crate::error::{GgufError, Result};
use crate::ggml::GgmlType;

/// Dequantizes `n_elements` elements of type `ggml_type` stored in `data` (which must be
/// exactly their size) to f32, in storage order.
pub fn dequantize(ggml_type: GgmlType, data: &[u8], n_elements: u64) -> Result<Vec<f32>> {
    let bad_length = || GgufError::BadDataLength {
        ggml_type,
        len: data.len(),
        n_elements,
    };
    let expected = ggml_type.bytes_for(n_elements).ok_or_else(bad_length)?;
    if expected != data.len() as u64 {
        return Err(bad_length());
    }
    if !can_dequantize(ggml_type) {
        return Err(GgufError::UnsupportedType {
            tensor: String::new(),
            ggml_type,
        });
    }
    // Every type handled here takes at least 9/16 of a byte per element (Q4_0), so the output is
    // at most 1.8 × data.len() elements; it is allocated only once the type is known to be one.
    let block = ggml_type.block_size() as usize;
    let type_size = ggml_type.type_size() as usize;
    let mut out = Vec::with_capacity(data.len() / type_size * block);
    match ggml_type {
        GgmlType::F32 => {
            out.extend(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        GgmlType::F16 => out.extend(data.chunks_exact(2).map(|b| le_f16(b[0], b[1]))),
        GgmlType::BF16 => {
            out.extend(
                data.chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            );
        }
        GgmlType::Q8_0 => {
            for b in data.chunks_exact(type_size) {
                let d = le_f16(b[0], b[1]);
                out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in data.chunks_exact(type_size) {
                let d = le_f16(b[0], b[1]);
                let qs = &b[2..18];
                out.extend(qs.iter().map(|&q| (f32::from(q & 0x0F) - 8.0) * d));
                out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in data.chunks_exact(type_size) {
                let d = le_f16(b[0], b[1]);
                let m = le_f16(b[2], b[3]);
                let qs = &b[4..20];
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0F) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
        other => {
            return Err(GgufError::UnsupportedType {
                tensor: String::new(),
                ggml_type: other,
            });
        }
    }
    Ok(out)
}

/// Whether [`dequantize`] handles `ggml_type`: F32, F16, BF16, Q8_0, Q4_0 and Q4_1.
pub fn can_dequantize(ggml_type: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ggml_type, F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1)
}

fn le_f16(lo: u8, hi: u8) -> f32 {
    f16::from_le_bytes([lo, hi]).to_f32()
}
