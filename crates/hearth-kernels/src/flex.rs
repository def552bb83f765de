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

/// The words of `blocks` (contiguous), its format, rows and row length in values.
fn layout(blocks: &IntTensor<Flex>, bits: u32) -> (Vec<u32>, QuantFormat, usize, usize) {
    let format = QuantFormat::from_code(bits).expect("quantized linear: a block format's code");
    let shape = blocks.shape();
    let (rows, words_per_row) = (shape[0], shape[1]);
    let cols = words_per_row / format.words_per_block() * BLOCK;
    let contiguous = blocks.to_contiguous();
    let words = contiguous.storage::<u32>();
    let start = contiguous.layout().start_offset();
    (
        words[start..start + rows * words_per_row].to_vec(),
        format,
        rows,
        cols,
    )
}

/// Calls `f(first_row, W[rows, :])` for consecutive row ranges of the matrix, each dequantized
/// to f32 (then to `dtype`).
fn for_row_chunks(
    blocks: &IntTensor<Flex>,
    bits: u32,
    dtype: DType,
    mut f: impl FnMut(usize, FloatTensor<Flex>),
) -> (usize, usize) {
    let (words, format, rows, cols) = layout(blocks, bits);
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
}

impl QuantLinearBackend for Flex {
    fn quant_linear(x: FloatTensor<Self>, blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let dtype = x.dtype();
        let mut parts = Vec::new();
        for_row_chunks(&blocks, bits, dtype, |_, w| {
            parts.push(Flex::float_matmul(x.clone(), Flex::float_transpose(w)));
        });
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            Flex::float_cat(parts, 1)
        }
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
}
