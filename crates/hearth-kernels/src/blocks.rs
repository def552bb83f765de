//! Block-quantized matrices on the host: the one layout the kernels read.
//!
//! A matrix `W [rows, cols]` (a linear layer's `[out, in]`, the layout GGUF stores) is cut into
//! blocks of [`BLOCK`] consecutive values along a row, so `cols` must be a multiple of 32. Each
//! block is a run of `u32` words:
//!
//! - word 0: the scale `d` (f32 bits); word 1: the offset `m` (f32 bits, 0 for q8);
//! - [`QuantFormat::Q8`]: 8 words of 4 signed bytes each, value `j` in byte `j` (little-endian),
//!   weight `q·d` (llama.cpp's `Q8_0`, with an f32 scale);
//! - [`QuantFormat::Q4`]: 4 words holding the 16 bytes of ggml's `Q4_0`/`Q4_1` blocks, byte `j`
//!   holding value `j` in its low nibble and value `j + 16` in its high nibble, weight `q·d + m`
//!   (llama.cpp's `Q4_1`; a `Q4_0` block is the same with `m = −8·d`).
//!
//! - [`QuantFormat::F16`] and [`QuantFormat::Bf16`]: no scale or offset, 16 words holding the
//!   32 values as IEEE half or bfloat16 bits, value `2k` in the low and `2k + 1` in the high
//!   half of word `k` (a 16-bit base, rounded to nearest-even from f32 by the `half` crate).
//!
//! So a GGUF file's `Q8_0`, `Q4_0` and `Q4_1` blocks carry over value for value (the f16 scales
//! widen exactly), and any f32 matrix can be quantized to either format. A row of blocks is
//! `cols / 32 · words_per_block` words; the whole matrix is one `[rows, that]` `u32` tensor.
//! The kernels learn the format from [`QuantFormat::code`], one number per format.

use half::{bf16, f16};

/// Values per block.
pub const BLOCK: usize = 32;

/// A block format the kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantFormat {
    /// 8-bit signed values with one f32 scale per block (`Q8_0`-like): 1.25 bytes per weight.
    Q8,
    /// 4-bit values with an f32 scale and offset per block (`Q4_1`-like): 0.75 bytes per weight.
    Q4,
    /// IEEE half-precision values, no scale: 2 bytes per weight.
    F16,
    /// bfloat16 values (f32's exponent, 8 bits of mantissa), no scale: 2 bytes per weight.
    Bf16,
}

impl QuantFormat {
    /// Every format, in [`Self::code`] order.
    pub const ALL: [QuantFormat; 4] = [
        QuantFormat::Q4,
        QuantFormat::Q8,
        QuantFormat::F16,
        QuantFormat::Bf16,
    ];

    /// Bits per stored value (16 for both 16-bit formats: use [`Self::code`] to tell formats
    /// apart).
    pub fn bits(self) -> u32 {
        match self {
            QuantFormat::Q8 => 8,
            QuantFormat::Q4 => 4,
            QuantFormat::F16 | QuantFormat::Bf16 => 16,
        }
    }

    /// The number the kernels receive for this format, one per format: the bits per value for
    /// q4, q8 and f16, and 17 for bf16 (which has 16 bits too).
    pub fn code(self) -> u32 {
        match self {
            QuantFormat::Q8 => 8,
            QuantFormat::Q4 => 4,
            QuantFormat::F16 => 16,
            QuantFormat::Bf16 => 17,
        }
    }

    /// The format whose [`Self::code`] is `code`.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// `u32` words in one block: scale, offset and the packed values (16-bit formats: the
    /// values alone).
    pub fn words_per_block(self) -> usize {
        match self {
            QuantFormat::Q8 | QuantFormat::Q4 => 2 + BLOCK * self.bits() as usize / 32,
            QuantFormat::F16 | QuantFormat::Bf16 => BLOCK / 2,
        }
    }

    /// Bytes one weight takes, scales and offsets included.
    pub fn bytes_per_weight(self) -> f64 {
        (self.words_per_block() * 4) as f64 / BLOCK as f64
    }
}

/// Why a matrix cannot become blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The row length is not a positive multiple of [`BLOCK`].
    Width(usize),
    /// The data does not hold `rows × cols` values (or blocks).
    Length {
        /// What the shape needs.
        expected: usize,
        /// What was given.
        found: usize,
    },
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockError::Width(cols) => write!(
                f,
                "a row of {cols} values does not split into blocks of {BLOCK}"
            ),
            BlockError::Length { expected, found } => {
                write!(f, "expected {expected} values or bytes, found {found}")
            }
        }
    }
}

impl std::error::Error for BlockError {}

/// A block-quantized `[rows, cols]` matrix in the kernels' layout (see the module's docs).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantBlocks {
    /// The format of every block.
    pub format: QuantFormat,
    /// Rows (a linear layer's outputs).
    pub rows: usize,
    /// Values in a row (a linear layer's inputs), a multiple of [`BLOCK`].
    pub cols: usize,
    /// `rows × cols / 32 × words_per_block` words, row by row.
    pub words: Vec<u32>,
}

fn check_shape(rows: usize, cols: usize, found: usize, per_row: usize) -> Result<(), BlockError> {
    if cols == 0 || !cols.is_multiple_of(BLOCK) {
        return Err(BlockError::Width(cols));
    }
    let expected = rows * per_row;
    if found != expected {
        return Err(BlockError::Length { expected, found });
    }
    Ok(())
}

impl QuantBlocks {
    /// `data` (`rows × cols` f32 values, row-major) quantized to `format`, block by block:
    /// q8 with `d = max|w| / 127` (as llama.cpp's `Q8_0`), q4 with `d = (max − min) / 15`,
    /// `m = min` (as `Q4_1`), each value rounded to the nearest step; f16 and bf16 each value
    /// rounded to the nearest (ties to even) 16-bit value, as `half` converts.
    pub fn quantize(
        format: QuantFormat,
        data: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<Self, BlockError> {
        check_shape(rows, cols, data.len(), cols)?;
        let mut words = Vec::with_capacity(rows * cols / BLOCK * format.words_per_block());
        for block in data.chunks_exact(BLOCK) {
            match format {
                QuantFormat::Q8 => {
                    let amax = block.iter().fold(0f32, |a, &w| a.max(w.abs()));
                    let d = amax / 127.0;
                    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
                    let mut bytes = [0u8; BLOCK];
                    for (b, &w) in bytes.iter_mut().zip(block) {
                        *b = (w * inv).round().clamp(-127.0, 127.0) as i8 as u8;
                    }
                    push_block(&mut words, d, 0.0, &bytes);
                }
                QuantFormat::Q4 => {
                    let min = block.iter().fold(f32::INFINITY, |a, &w| a.min(w));
                    let max = block.iter().fold(f32::NEG_INFINITY, |a, &w| a.max(w));
                    let d = (max - min) / 15.0;
                    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
                    let q = |w: f32| ((w - min) * inv).round().clamp(0.0, 15.0) as u8;
                    let mut bytes = [0u8; BLOCK / 2];
                    for (j, b) in bytes.iter_mut().enumerate() {
                        *b = q(block[j]) | (q(block[j + BLOCK / 2]) << 4);
                    }
                    push_block(&mut words, d, min, &bytes);
                }
                QuantFormat::F16 => push_halves(
                    &mut words,
                    block.iter().map(|&w| f16::from_f32(w).to_bits()),
                ),
                QuantFormat::Bf16 => push_halves(
                    &mut words,
                    block.iter().map(|&w| bf16::from_f32(w).to_bits()),
                ),
            }
        }
        Ok(Self {
            format,
            rows,
            cols,
            words,
        })
    }

    /// ggml's `Q8_0` blocks (34 bytes: f16 scale, 32 signed bytes), value for value.
    pub fn from_q8_0(data: &[u8], rows: usize, cols: usize) -> Result<Self, BlockError> {
        check_shape(rows, cols, data.len(), cols / BLOCK * 34)?;
        let mut words = Vec::with_capacity(rows * cols / BLOCK * 10);
        for b in data.chunks_exact(34) {
            push_block(&mut words, le_f16(b[0], b[1]), 0.0, &b[2..34]);
        }
        Ok(Self {
            format: QuantFormat::Q8,
            rows,
            cols,
            words,
        })
    }

    /// ggml's `Q4_0` blocks (18 bytes: f16 scale, 16 bytes of nibbles, weight `(q − 8)·d`),
    /// value for value as `q·d + m` with `m = −8·d`.
    pub fn from_q4_0(data: &[u8], rows: usize, cols: usize) -> Result<Self, BlockError> {
        check_shape(rows, cols, data.len(), cols / BLOCK * 18)?;
        let mut words = Vec::with_capacity(rows * cols / BLOCK * 6);
        for b in data.chunks_exact(18) {
            let d = le_f16(b[0], b[1]);
            push_block(&mut words, d, -8.0 * d, &b[2..18]);
        }
        Ok(Self {
            format: QuantFormat::Q4,
            rows,
            cols,
            words,
        })
    }

    /// ggml's `Q4_1` blocks (20 bytes: f16 scale, f16 minimum, 16 bytes of nibbles), value for
    /// value.
    pub fn from_q4_1(data: &[u8], rows: usize, cols: usize) -> Result<Self, BlockError> {
        check_shape(rows, cols, data.len(), cols / BLOCK * 20)?;
        let mut words = Vec::with_capacity(rows * cols / BLOCK * 6);
        for b in data.chunks_exact(20) {
            push_block(
                &mut words,
                le_f16(b[0], b[1]),
                le_f16(b[2], b[3]),
                &b[4..20],
            );
        }
        Ok(Self {
            format: QuantFormat::Q4,
            rows,
            cols,
            words,
        })
    }

    /// A GGUF `Q4_K` tensor's blocks as q4 blocks, value for value: each super-block of 256 is
    /// eight sub-blocks of 32 whose values are `d·sc·q − dmin·m` with 4-bit `q`, which is a q4
    /// block with scale `d·sc` and offset `−dmin·m` (both exact in f32), so the dequantized
    /// values are gguf-py's bit for bit. Rows must be whole super-blocks (as ggml requires).
    pub fn from_q4_k(data: &[u8], rows: usize, cols: usize) -> Result<Self, BlockError> {
        if !cols.is_multiple_of(256) {
            return Err(BlockError::Width(cols));
        }
        check_shape(rows, cols, data.len(), cols / 256 * 144)?;
        let mut words = Vec::with_capacity(rows * cols / BLOCK * 6);
        for b in data.chunks_exact(144) {
            let (d, dmin) = (le_f16(b[0], b[1]), le_f16(b[2], b[3]));
            let (scales, qs) = (&b[4..16], &b[16..144]);
            for j in 0..8 {
                let (sc, m) = hearth_gguf::scale_min_k4(scales, j);
                // Sub-block j: the low (even j) or high (odd j) nibbles of 32 bytes.
                let (bytes, shift) = (&qs[(j / 2) * 32..(j / 2) * 32 + 32], 4 * (j % 2));
                let q = |i: usize| (bytes[i] >> shift) & 0x0F;
                let packed: Vec<u8> = (0..BLOCK / 2).map(|i| q(i) | (q(i + 16) << 4)).collect();
                push_block(
                    &mut words,
                    d * f32::from(sc),
                    -(dmin * f32::from(m)),
                    &packed,
                );
            }
        }
        Ok(Self {
            format: QuantFormat::Q4,
            rows,
            cols,
            words,
        })
    }

    /// Words in one row of blocks.
    pub fn words_per_row(&self) -> usize {
        self.cols / BLOCK * self.format.words_per_block()
    }

    /// The matrix the blocks stand for, row-major (the reference the kernels are tested against).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        dequantize_rows(self.format, &self.words, self.cols, &mut out);
        out
    }
}

/// Appends one block: scale, offset, then `bytes` packed little-endian into words.
fn push_block(words: &mut Vec<u32>, d: f32, m: f32, bytes: &[u8]) {
    words.push(d.to_bits());
    words.push(m.to_bits());
    words.extend(
        bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
}

/// Appends one 16-bit block: the values' bits two to a word, the even value in the low half.
fn push_halves(words: &mut Vec<u32>, bits: impl Iterator<Item = u16>) {
    let mut low = None;
    for b in bits {
        match low.take() {
            None => low = Some(b),
            Some(lo) => words.push(u32::from(lo) | (u32::from(b) << 16)),
        }
    }
}

fn le_f16(lo: u8, hi: u8) -> f32 {
    f16::from_le_bytes([lo, hi]).to_f32()
}

/// Dequantizes whole rows of blocks (`words`, rows of `cols` values) into `out` (as many rows of
/// `cols` f32 values): the loop the Flex kernel runs on one range of rows at a time.
pub fn dequantize_rows(format: QuantFormat, words: &[u32], cols: usize, out: &mut [f32]) {
    let wpb = format.words_per_block();
    for (block, values) in words.chunks_exact(wpb).zip(out.chunks_exact_mut(BLOCK)) {
        match format {
            QuantFormat::F16 => {
                for (pair, &w) in values.chunks_exact_mut(2).zip(block) {
                    pair[0] = f16::from_bits(w as u16).to_f32();
                    pair[1] = f16::from_bits((w >> 16) as u16).to_f32();
                }
                continue;
            }
            QuantFormat::Bf16 => {
                for (pair, &w) in values.chunks_exact_mut(2).zip(block) {
                    pair[0] = bf16::from_bits(w as u16).to_f32();
                    pair[1] = bf16::from_bits((w >> 16) as u16).to_f32();
                }
                continue;
            }
            QuantFormat::Q8 | QuantFormat::Q4 => {}
        }
        let d = f32::from_bits(block[0]);
        let m = f32::from_bits(block[1]);
        match format {
            QuantFormat::Q8 => {
                for (k, &w) in block[2..].iter().enumerate() {
                    for (i, b) in w.to_le_bytes().into_iter().enumerate() {
                        values[4 * k + i] = f32::from(b as i8) * d;
                    }
                }
            }
            QuantFormat::Q4 => {
                for (k, &w) in block[2..].iter().enumerate() {
                    for (i, b) in w.to_le_bytes().into_iter().enumerate() {
                        let j = 4 * k + i;
                        values[j] = f32::from(b & 0x0F) * d + m;
                        values[j + BLOCK / 2] = f32::from(b >> 4) * d + m;
                    }
                }
            }
            QuantFormat::F16 | QuantFormat::Bf16 => unreachable!("handled above"),
        }
    }
    debug_assert_eq!(out.len() % cols.max(1), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect()
    }

    #[test]
    fn quantizing_keeps_every_weight_within_half_a_step() {
        let data = ramp(2 * 64);
        for format in [QuantFormat::Q8, QuantFormat::Q4] {
            let q = QuantBlocks::quantize(format, &data, 2, 64).expect("blocks");
            assert_eq!(q.words.len(), 2 * q.words_per_row());
            let back = q.dequantize();
            for (block, (orig, deq)) in data.chunks(32).zip(back.chunks(32)).enumerate() {
                let d = f32::from_bits(q.words[block * format.words_per_block()]);
                for (a, b) in orig.iter().zip(deq) {
                    assert!((a - b).abs() <= d / 2.0 + 1e-6, "{format:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn ggml_blocks_carry_over_value_for_value() {
        // One Q4_1 block: d = 0.5, m = −1, nibble j = j % 16 in both halves.
        let mut q4_1 = Vec::new();
        q4_1.extend(f16::from_f32(0.5).to_le_bytes());
        q4_1.extend(f16::from_f32(-1.0).to_le_bytes());
        q4_1.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let q = QuantBlocks::from_q4_1(&q4_1, 1, 32).expect("q4_1");
        let w = q.dequantize();
        assert_eq!(w[3], 3.0 * 0.5 - 1.0);
        assert_eq!(w[16 + 3], 12.0 * 0.5 - 1.0);

        let mut q4_0 = Vec::new();
        q4_0.extend(f16::from_f32(0.25).to_le_bytes());
        q4_0.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let w = QuantBlocks::from_q4_0(&q4_0, 1, 32)
            .expect("q4_0")
            .dequantize();
        assert_eq!(w[0], -8.0 * 0.25);
        assert_eq!(w[16], 7.0 * 0.25);

        let mut q8_0 = Vec::new();
        q8_0.extend(f16::from_f32(2.0).to_le_bytes());
        q8_0.extend((0..32i8).map(|j| (j - 16) as u8));
        let w = QuantBlocks::from_q8_0(&q8_0, 1, 32)
            .expect("q8_0")
            .dequantize();
        assert_eq!(w[0], -32.0);
        assert_eq!(w[31], 30.0);
    }

    #[test]
    fn sixteen_bit_blocks_round_as_half_does_and_come_back_bit_exact() {
        // Values that need rounding (ties included), the extremes, subnormals and signed zero.
        let mut data = ramp(3 * 32);
        data[0] = 1.0 + f32::EPSILON * 3.0;
        data[1] = 65504.0;
        data[2] = 1.0e-7;
        data[3] = -0.0;
        data[4] = 1.0 + 2f32.powi(-11); // f16 tie: rounds to even (1.0)
        data[5] = 1.0 + 2f32.powi(-8); // bf16 tie: rounds to even (1.0)
        data[6] = 3.0e38;
        data[7] = -1.0e-40;
        for format in [QuantFormat::F16, QuantFormat::Bf16] {
            let q = QuantBlocks::quantize(format, &data, 3, 32).expect("blocks");
            assert_eq!(format.words_per_block(), 16);
            assert_eq!(format.bytes_per_weight(), 2.0);
            assert_eq!(q.words.len(), 3 * 16);
            let back = q.dequantize();
            for (j, (&w, &got)) in data.iter().zip(&back).enumerate() {
                let (bits, want) = match format {
                    QuantFormat::F16 => (f16::from_f32(w).to_bits(), f16::from_f32(w).to_f32()),
                    _ => (bf16::from_f32(w).to_bits(), bf16::from_f32(w).to_f32()),
                };
                let word = q.words[j / 2];
                let stored = if j % 2 == 0 {
                    word as u16
                } else {
                    (word >> 16) as u16
                };
                assert_eq!(stored, bits, "{format:?} value {j}");
                assert_eq!(got.to_bits(), want.to_bits(), "{format:?} value {j}");
            }
            // Values already representable come back as they are.
            let again = QuantBlocks::quantize(format, &back, 3, 32).expect("blocks");
            assert_eq!(again, q, "{format:?}");
        }
        assert_eq!(back_of(QuantFormat::F16, 1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(back_of(QuantFormat::Bf16, 1.0 + 2f32.powi(-8)), 1.0);
        assert_eq!(
            back_of(QuantFormat::F16, 1.0 + 3.0 * 2f32.powi(-11)),
            1.0 + 2f32.powi(-9)
        );
    }

    fn back_of(format: QuantFormat, w: f32) -> f32 {
        let mut data = [0.0; 32];
        data[0] = w;
        QuantBlocks::quantize(format, &data, 1, 32)
            .expect("blocks")
            .dequantize()[0]
    }

    #[test]
    fn every_format_has_its_own_code() {
        for format in QuantFormat::ALL {
            assert_eq!(QuantFormat::from_code(format.code()), Some(format));
        }
        let codes: std::collections::BTreeSet<u32> =
            QuantFormat::ALL.iter().map(|f| f.code()).collect();
        assert_eq!(codes.len(), QuantFormat::ALL.len());
        assert_eq!(QuantFormat::from_code(0), None);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert_eq!(
            QuantBlocks::quantize(QuantFormat::Q8, &[0.0; 40], 1, 40),
            Err(BlockError::Width(40))
        );
        assert!(matches!(
            QuantBlocks::from_q8_0(&[0; 33], 1, 32),
            Err(BlockError::Length { .. })
        ));
    }
}
