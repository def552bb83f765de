//! The quantized linear on Flex (CPU): a range of `W`'s rows is dequantized into a small f32
//! buffer and multiplied with Flex's own matmul, then the next range reuses the buffer's size.
//! So at most [`CHUNK`] dequantized values exist at once, whatever the layer's size, and
//! nothing weight-sized outlives the call.

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::tensor::{DType, FloatDType, Slice, TensorData};

use crate::blocks::{BLOCK, QuantFormat, dequantize_rows};
use crate::extension::QuantLinearBackend;

/// Dequantized values held at once (1 MiB of f32).
const CHUNK: usize = 1 << 18;

/// Calls `f(words, format, rows, cols)` with the words of `blocks` (borrowed from the tensor,
/// never copied: a tied output head's blocks are tens of megabytes), its format, rows and row
/// length in values.
fn with_words<R>(
    blocks: &IntTensor<Flex>,
    bits: u32,
    f: impl FnOnce(&[u32], QuantFormat, usize, usize) -> R,
) -> R {
    let format = QuantFormat::from_code(bits).expect("quantized linear: a block format's code");
    let shape = blocks.shape();
    let (rows, words_per_row) = (shape[0], shape[1]);
    let cols = words_per_row / format.words_per_block() * BLOCK;
    let contiguous = blocks.to_contiguous();
    let start = contiguous.layout().start_offset();
    let words = &contiguous.storage::<u32>()[start..start + rows * words_per_row];
    f(words, format, rows, cols)
}

/// Calls `f(first_row, W[rows, :])` for consecutive row ranges of the matrix, each dequantized
/// to f32 (then to `dtype`).
fn for_row_chunks(
    blocks: &IntTensor<Flex>,
    bits: u32,
    dtype: DType,
    mut f: impl FnMut(usize, FloatTensor<Flex>),
) -> (usize, usize) {
    with_words(blocks, bits, |words, format, rows, cols| {
        let words_per_row = cols / BLOCK * format.words_per_block();
        let step = (CHUNK / cols.max(1)).max(1);
        let device = Default::default();
        let mut buffer = vec![0f32; step.min(rows) * cols];
        let mut first = 0;
        while first < rows {
            let n = step.min(rows - first);
            let values = &mut buffer[..n * cols];
            dequantize_rows(
                format,
                &words[first * words_per_row..(first + n) * words_per_row],
                cols,
                values,
            );
            let chunk = Flex::float_from_data(TensorData::new(values.to_vec(), [n, cols]), &device);
            let chunk = if dtype == DType::F32 {
                chunk
            } else {
                Flex::float_cast(chunk, FloatDType::from(dtype))
            };
            f(first, chunk);
            first += n;
        }
        (rows, cols)
    })
}

impl QuantLinearBackend for Flex {
    fn quant_linear(x: FloatTensor<Self>, blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let dtype = x.dtype();
        if dtype != DType::F32 {
            let mut parts = Vec::new();
            for_row_chunks(&blocks, bits, dtype, |_, w| {
                parts.push(Flex::float_matmul(x.clone(), Flex::float_transpose(w)));
            });
            return Flex::float_cat(parts, 1);
        }
        // Each range's product goes straight to its columns of the output: no list of parts
        // and no concatenation, so a wide layer (a tied output head over a large vocabulary)
        // holds its output once, not twice.
        let (n, rows) = (x.shape()[0], blocks.shape()[0]);
        let mut out = vec![0f32; n * rows];
        for_row_chunks(&blocks, bits, dtype, |first, w| {
            let part = Flex::float_matmul(x.clone(), Flex::float_transpose(w)).to_contiguous();
            let width = part.shape()[1];
            let start = part.layout().start_offset();
            let values = &part.storage::<f32>()[start..start + n * width];
            for (r, row) in values.chunks_exact(width).enumerate() {
                out[r * rows + first..r * rows + first + width].copy_from_slice(row);
            }
        });
        Flex::float_from_data(TensorData::new(out, [n, rows]), &Default::default())
    }

    fn quant_linear_transposed(
        grad: FloatTensor<Self>,
        blocks: IntTensor<Self>,
        bits: u32,
    ) -> FloatTensor<Self> {
        let dtype = grad.dtype();
        let n = grad.shape()[0];
        let mut sum: Option<FloatTensor<Self>> = None;
        for_row_chunks(&blocks, bits, dtype, |first, w| {
            let rows = w.shape()[0];
            let g = Flex::float_slice(
                grad.clone(),
                &[Slice::from(0..n), Slice::from(first..first + rows)],
            );
            let part = Flex::float_matmul(g, w);
            sum = Some(match sum.take() {
                None => part,
                Some(s) => Flex::float_add(s, part),
            });
        });
        sum.expect("quantized linear: a matrix has at least one row")
    }

    fn quant_dequantize(blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let (values, rows, cols) = with_words(&blocks, bits, |words, format, rows, cols| {
            let mut values = vec![0f32; rows * cols];
            dequantize_rows(format, words, cols, &mut values);
            (values, rows, cols)
        });
        Flex::float_from_data(TensorData::new(values, [rows, cols]), &Default::default())
    }
}
