//! Dequantizing ggml tensor data to f32, for the types small GGUF files use, bit for bit as
//! gguf-py's `gguf.quants` (numpy, f32 arithmetic, no fused multiply-add) computes them.
//!
//! Block layouts, as ggml's `ggml-common.h` defines them (all little-endian). The legacy types
//! hold 32 weights a block:
//!
//! - `Q8_0`: f16 scale `d`, then 32 × i8 `q`; weight `j` is `q[j] · d`.
//! - `Q4_0`: f16 scale `d`, then 16 bytes of 4-bit values; weight `j` (j < 16) is the low nibble
//!   of byte `j`, weight `j + 16` the high nibble of byte `j`; each is `(nibble − 8) · d`.
//! - `Q4_1`: f16 scale `d`, f16 minimum `m`, then 16 bytes as in `Q4_0`; each weight is
//!   `nibble · d + m`.
//! - `Q5_0`: f16 `d`, 4 bytes `qh` (a u32: bit `j` is the fifth bit of weight `j`), 16 bytes of
//!   nibbles as in `Q4_0`; each weight is `((nibble | bit << 4) − 16) · d`.
//! - `Q5_1`: f16 `d`, f16 `m`, then `qh` and the nibbles as in `Q5_0`; each weight is
//!   `(nibble | bit << 4) · d + m`.
//!
//! So the nibbles are not interleaved in element order: the low halves of the 16 bytes are the
//! first 16 weights of the block, the high halves the last 16.
//!
//! The K-quants hold 256 weights a block ("super-block") in sub-blocks of 16 or 32 weights, each
//! with its own small integer scale (and minimum) under the block's f16 scales. Within a block,
//! the quants of weights `e` and `e + 32·k` share bytes: a byte of 2-bit quants holds four
//! weights 32 apart (in groups of 128), a byte of nibbles two weights 32 apart (in groups of
//! 64), and a byte of high bits (`hmask`/`qh`) eight weights 32 apart.
//!
//! - `Q2_K` (84 bytes): 16 scale bytes (low nibble: the sub-block's scale, high nibble: its
//!   minimum; 16 sub-blocks of 16), 64 bytes of 2-bit quants, f16 `d`, f16 `dmin`; weight `e` is
//!   `(d · sc) · q − (dmin · m)`.
//! - `Q3_K` (110 bytes): 32 bytes `hmask`, 64 bytes of 2-bit quants, 12 bytes of sixteen packed
//!   6-bit scales, f16 `d`; weight `e` is `(d · (sc − 32)) · (q − 4·(1 − hbit))`.
//! - `Q4_K` (144 bytes): f16 `d`, f16 `dmin`, 12 bytes of eight packed 6-bit scales and minimums
//!   (8 sub-blocks of 32), 128 bytes of nibbles; weight `e` is `(d · sc) · q − (dmin · m)`.
//! - `Q5_K` (176 bytes): as `Q4_K` with 32 bytes `qh` before the nibbles, the fifth bit of each
//!   quant.
//! - `Q6_K` (210 bytes): 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 × i8 scales
//!   (16 sub-blocks of 16), f16 `d`; weight `e` is `(d · sc) · (q − 32)`.

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
    // Every type handled here takes at least 2.625 bits per element (Q2_K), so the output is at
    // most about 3 × data.len() elements; it is allocated only once the type is known to be one.
    let block = ggml_type.block_size() as usize;
    let type_size = ggml_type.type_size() as usize;
    let mut out = Vec::with_capacity(data.len() / type_size * block);
    let blocks = data.chunks_exact(type_size);
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
            for b in blocks {
                let d = le_f16(b[0], b[1]);
                out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in blocks {
                let d = le_f16(b[0], b[1]);
                let qs = &b[2..18];
                out.extend(qs.iter().map(|&q| (f32::from(q & 0x0F) - 8.0) * d));
                out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in blocks {
                let d = le_f16(b[0], b[1]);
                let m = le_f16(b[2], b[3]);
                let qs = &b[4..20];
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0F) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
        GgmlType::Q5_0 => {
            for b in blocks {
                let d = le_f16(b[0], b[1]);
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                let q5 = |j: usize, nibble: u8| nibble | ((((qh >> j) & 1) as u8) << 4);
                let qs = &b[6..22];
                // gguf-py: `(q - 16) as i8, then as f32, times d`.
                let w = |q: u8| f32::from(q as i8 - 16) * d;
                out.extend(qs.iter().enumerate().map(|(j, &q)| w(q5(j, q & 0x0F))));
                out.extend(qs.iter().enumerate().map(|(j, &q)| w(q5(j + 16, q >> 4))));
            }
        }
        GgmlType::Q5_1 => {
            for b in blocks {
                let d = le_f16(b[0], b[1]);
                let m = le_f16(b[2], b[3]);
                let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                let q5 = |j: usize, nibble: u8| nibble | ((((qh >> j) & 1) as u8) << 4);
                let qs = &b[8..24];
                let w = |q: u8| f32::from(q) * d + m;
                out.extend(qs.iter().enumerate().map(|(j, &q)| w(q5(j, q & 0x0F))));
                out.extend(qs.iter().enumerate().map(|(j, &q)| w(q5(j + 16, q >> 4))));
            }
        }
        GgmlType::Q2_K => blocks.for_each(|b| q2_k(b, &mut out)),
        GgmlType::Q3_K => blocks.for_each(|b| q3_k(b, &mut out)),
        GgmlType::Q4_K => blocks.for_each(|b| q4_k(b, &mut out)),
        GgmlType::Q5_K => blocks.for_each(|b| q5_k(b, &mut out)),
        GgmlType::Q6_K => blocks.for_each(|b| q6_k(b, &mut out)),
        other => {
            return Err(GgufError::UnsupportedType {
                tensor: String::new(),
                ggml_type: other,
            });
        }
    }
    Ok(out)
}

/// Whether [`dequantize`] handles `ggml_type`: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and
/// the K-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K.
pub fn can_dequantize(ggml_type: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ggml_type,
        F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q2_K | Q3_K | Q4_K | Q5_K | Q6_K
    )
}

fn le_f16(lo: u8, hi: u8) -> f32 {
    f16::from_le_bytes([lo, hi]).to_f32()
}

/// The 2-bit quant of weight `e` (0..256) from 64 bytes: four weights 32 apart share a byte,
/// in two groups of 128.
fn two_bits(qs: &[u8], e: usize) -> u8 {
    (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3
}

/// The high bit of weight `e` (0..256) from 32 bytes: bit `e / 32` of byte `e % 32`.
fn high_bit(qh: &[u8], e: usize) -> u8 {
    (qh[e % 32] >> (e / 32)) & 1
}

/// The nibble of weight `e` (0..256) from 128 bytes: two weights 32 apart share a byte, in four
/// groups of 64.
fn nibble(qs: &[u8], e: usize) -> u8 {
    (qs[(e / 64) * 32 + e % 32] >> (4 * ((e / 32) % 2))) & 0x0F
}

/// `Q2_K`: `scales[16] qs[64] d dmin`.
fn q2_k(b: &[u8], out: &mut Vec<f32>) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let d = le_f16(b[80], b[81]);
    let dmin = le_f16(b[82], b[83]);
    for (s, &sc) in scales.iter().enumerate() {
        let dl = d * f32::from(sc & 0x0F);
        let ml = dmin * f32::from(sc >> 4);
        out.extend((s * 16..s * 16 + 16).map(|e| dl * f32::from(two_bits(qs, e)) - ml));
    }
}

/// `Q3_K`: `hmask[32] qs[64] scales[12] d`. The sixteen 6-bit scales: the low four bits of
/// scale `i` are the low (i < 8) or high (i ≥ 8) nibble of byte `i % 8`, the top two bits are
/// bits `2·(i / 4)`.. of byte `8 + i % 4`; each is stored plus 32.
fn q3_k(b: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = le_f16(b[108], b[109]);
    for s in 0..16 {
        let low = (scales[s % 8] >> (4 * (s / 8))) & 0x0F;
        let high = (scales[8 + s % 4] >> (2 * (s / 4))) & 0x03;
        let sc = ((low | (high << 4)) as i8) - 32;
        let dl = d * f32::from(sc);
        out.extend((s * 16..s * 16 + 16).map(|e| {
            // The quant is offset by 4 when its hmask bit is clear.
            let q = two_bits(qs, e) as i8 - (((high_bit(hmask, e) ^ 1) << 2) as i8);
            dl * f32::from(q)
        }));
    }
}

/// The scale and minimum of sub-block `j` (0..8) of a `Q4_K`/`Q5_K` block from its 12 packed
/// bytes (ggml's `get_scale_min_k4`): for j < 4 the low six bits of bytes `j` and `j + 4`; for
/// j ≥ 4 a nibble of byte `j + 4` with the top two bits of bytes `j − 4` and `j`.
pub fn scale_min_k4(scales: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 0x3F, scales[j + 4] & 0x3F)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 2) & 0x30),
            (scales[j + 4] >> 4) | ((scales[j] >> 2) & 0x30),
        )
    }
}

/// `Q4_K`: `d dmin scales[12] qs[128]`.
fn q4_k(b: &[u8], out: &mut Vec<f32>) {
    let d = le_f16(b[0], b[1]);
    let dmin = le_f16(b[2], b[3]);
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(scales, j);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        out.extend((j * 32..j * 32 + 32).map(|e| dl * f32::from(nibble(qs, e)) - ml));
    }
}

/// `Q5_K`: `d dmin scales[12] qh[32] qs[128]`.
fn q5_k(b: &[u8], out: &mut Vec<f32>) {
    let d = le_f16(b[0], b[1]);
    let dmin = le_f16(b[2], b[3]);
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(scales, j);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        out.extend((j * 32..j * 32 + 32).map(|e| {
            let q = nibble(qs, e) | (high_bit(qh, e) << 4);
            dl * f32::from(q) - ml
        }));
    }
}

/// `Q6_K`: `ql[128] qh[64] scales[16] d`. The low nibble of weight `e` is in `ql` as in a 4-bit
/// block of 128 weights for each half (two weights 64 apart share a byte), its top two bits in
/// `qh` as 2-bit quants (four weights 32 apart share a byte).
fn q6_k(b: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = le_f16(b[208], b[209]);
    for (s, &sc) in scales.iter().enumerate() {
        let dl = d * f32::from(sc as i8);
        out.extend((s * 16..s * 16 + 16).map(|e| {
            let (half, r) = (e / 128, e % 128);
            let low = (ql[half * 64 + r % 64] >> (4 * (r / 64))) & 0x0F;
            let q = low | (two_bits(qh, e) << 4);
            dl * f32::from(q as i8 - 32)
        }));
    }
}
