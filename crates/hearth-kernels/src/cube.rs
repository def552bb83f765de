//! The quantized linear on CubeCL (wgpu natively, WebGPU in the page): two kernels that read the
//! `u32` blocks of [`crate::blocks`] directly — the scale and offset by reinterpreting words 0
//! and 1 as f32, each value by shifting and masking its word — and accumulate in f32. One unit
//! computes one output element, so no dequantized weight exists anywhere, not even a tile of it.
//!
//! Everything they use is in WGSL (u32 and i32 shifts, bitcasts, f32 arithmetic): no f64, no
//! 64-bit integers, no subgroups.

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::tensor::Shape;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use crate::blocks::{BLOCK, QuantFormat};
use crate::extension::QuantLinearBackend;

/// The weight `W[row, col]` of a row of blocks starting at word `row_start`, as f32.
///
/// `code` selects the format ([`QuantFormat::code`]: 4 q4, 8 q8, 16 f16, 17 bf16).
#[cube]
fn weight(blocks: &Tensor<u32>, row_start: usize, col: usize, #[comptime] code: u32) -> f32 {
    let wpb = if code == 4 {
        6usize
    } else if code == 8 {
        10usize
    } else {
        16usize
    };
    let base = row_start + (col / 32) * wpb;
    let j = col % 32;
    if code == 4 {
        // Byte `j % 16` holds value `j` in its low nibble (j < 16) or high nibble (j ≥ 16).
        let byte = j % 16;
        let word = blocks[base + 2 + byte / 4];
        let shift = u32::cast_from((byte % 4) * 8 + (j / 16) * 4);
        let q = (word >> shift) & 15u32;
        f32::cast_from(q) * f32::reinterpret(blocks[base]) + f32::reinterpret(blocks[base + 1])
    } else if code == 8 {
        // Byte `j` is a signed byte: bias it to unsigned, then take the bias off in i32.
        let word = blocks[base + 2 + j / 4];
        let shift = u32::cast_from((j % 4) * 8);
        let q = i32::cast_from(((word >> shift) & 255u32) ^ 128u32) - 128i32;
        f32::cast_from(q) * f32::reinterpret(blocks[base])
    } else {
        // Two 16-bit values to a word, the even one in the low half.
        let half = (blocks[base + j / 2] >> u32::cast_from((j % 2) * 16)) & 65535u32;
        if code == 17 {
            // bfloat16: the top half of an f32.
            f32::reinterpret(half << 16u32)
        } else {
            half_to_f32(half)
        }
    }
}

/// IEEE half precision bits (in the low 16 bits) as f32, subnormals, infinities and NaNs
/// included (WebGPU's WGSL has no f16 without the optional `shader-f16` feature).
#[cube]
fn half_to_f32(half: u32) -> f32 {
    let sign = (half >> 15u32) << 31u32;
    let exp = (half >> 10u32) & 31u32;
    let mant = half & 1023u32;
    let mut value = f32::reinterpret(sign | ((exp + 112u32) << 23u32) | (mant << 13u32));
    if exp == 0u32 {
        // Zero or subnormal: mant · 2⁻²⁴, exactly representable in f32.
        value = f32::cast_from(mant) * 5.960_464_5e-8f32;
        if sign != 0u32 {
            value = -value;
        }
    }
    if exp == 31u32 {
        value = f32::reinterpret(sign | 2_139_095_040u32 | (mant << 13u32));
    }
    value
}

/// `out[i, r] = Σ_c x[i, c] · W[r, c]`, one unit per output element; `x` and `out` are
/// contiguous `[n, cols]` and `[n, rows]`.
#[cube(launch)]
fn quant_linear_kernel<F: Float>(
    x: &Tensor<F>,
    blocks: &Tensor<u32>,
    out: &mut Tensor<F>,
    cols: u32,
    #[comptime] code: u32,
    #[define(F)] _dtype: ElemType,
) {
    let rows = out.shape(1);
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let i = ABSOLUTE_POS / rows;
    let r = ABSOLUTE_POS % rows;
    let cols = cols as usize;
    let words_per_row = blocks.shape(1);
    let row_start = r * words_per_row;
    let x_start = i * cols;
    let mut acc = 0.0f32;
    for c in 0..cols {
        acc += f32::cast_from(x[x_start + c]) * weight(blocks, row_start, c, code);
    }
    out[ABSOLUTE_POS] = F::cast_from(acc);
}

/// `out[i, c] = Σ_r g[i, r] · W[r, c]`, one unit per output element; `g` and `out` are
/// contiguous `[n, rows]` and `[n, cols]`.
#[cube(launch)]
fn quant_linear_transposed_kernel<F: Float>(
    g: &Tensor<F>,
    blocks: &Tensor<u32>,
    out: &mut Tensor<F>,
    #[comptime] code: u32,
    #[define(F)] _dtype: ElemType,
) {
    let cols = out.shape(1);
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let i = ABSOLUTE_POS / cols;
    let c = ABSOLUTE_POS % cols;
    let rows = g.shape(1);
    let words_per_row = blocks.shape(1);
    let g_start = i * rows;
    let mut acc = 0.0f32;
    for r in 0..rows {
        acc += f32::cast_from(g[g_start + r]) * weight(blocks, r * words_per_row, c, code);
    }
    out[ABSOLUTE_POS] = F::cast_from(acc);
}

/// `out[r, c] = W[r, c]`, one unit per element; `out` is contiguous `[rows, cols]`.
#[cube(launch)]
fn quant_dequantize_kernel(blocks: &Tensor<u32>, out: &mut Tensor<f32>, #[comptime] code: u32) {
    let cols = out.shape(1);
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let r = ABSOLUTE_POS / cols;
    let c = ABSOLUTE_POS % cols;
    out[ABSOLUTE_POS] = weight(blocks, r * blocks.shape(1), c, code);
}

/// The format, rows and row length in values of `[rows, words_per_row]` blocks.
fn layout(blocks: &CubeTensor, bits: u32) -> (QuantFormat, usize, usize) {
    let format = QuantFormat::from_code(bits).expect("quantized linear: a block format's code");
    let shape = blocks.meta.shape();
    let cols = shape[1] / format.words_per_block() * BLOCK;
    (format, shape[0], cols)
}

/// An uninitialized contiguous `[n, width]` output like `like` (same device and dtype), the
/// cube count and dim for one unit per element.
fn output(like: &CubeTensor, n: usize, width: usize) -> (CubeTensor, CubeCount, CubeDim) {
    let out = empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::new([n, width]),
        like.dtype,
    );
    let units = n * width;
    let cube_dim = CubeDim::new(&like.client, units);
    let cube_count = calculate_cube_count_elemwise(&like.client, units, cube_dim);
    (out, cube_count, cube_dim)
}

impl QuantLinearBackend for CubeBackend {
    fn quant_linear(x: FloatTensor<Self>, blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let (format, rows, cols) = layout(&blocks, bits);
        x.assert_is_on_same_device(&blocks);
        let x = into_contiguous(x);
        let blocks = into_contiguous(blocks);
        let n = x.meta.shape()[0];
        let (out, cube_count, cube_dim) = output(&x, n, rows);
        if n * rows > 0 {
            let dtype = dtype_to_storage_type(x.dtype);
            quant_linear_kernel::launch(
                &out.client,
                cube_count,
                cube_dim,
                x.into_tensor_arg(),
                blocks.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                cols as u32,
                format.code(),
                dtype,
            );
        }
        out
    }

    fn quant_linear_transposed(
        grad: FloatTensor<Self>,
        blocks: IntTensor<Self>,
        bits: u32,
    ) -> FloatTensor<Self> {
        let (format, _, cols) = layout(&blocks, bits);
        grad.assert_is_on_same_device(&blocks);
        let grad = into_contiguous(grad);
        let blocks = into_contiguous(blocks);
        let n = grad.meta.shape()[0];
        let (out, cube_count, cube_dim) = output(&grad, n, cols);
        if n * cols > 0 {
            let dtype = dtype_to_storage_type(grad.dtype);
            quant_linear_transposed_kernel::launch(
                &out.client,
                cube_count,
                cube_dim,
                grad.into_tensor_arg(),
                blocks.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                format.code(),
                dtype,
            );
        }
        out
    }

    fn quant_dequantize(blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let (format, rows, cols) = layout(&blocks, bits);
        let blocks = into_contiguous(blocks);
        let out = empty_device_contiguous_dtype(
            blocks.client.clone(),
            blocks.device.clone(),
            Shape::new([rows, cols]),
            burn::tensor::DType::F32,
        );
        let units = rows * cols;
        if units > 0 {
            let cube_dim = CubeDim::new(&blocks.client, units);
            let cube_count = calculate_cube_count_elemwise(&blocks.client, units, cube_dim);
            quant_dequantize_kernel::launch(
                &out.client,
                cube_count,
                cube_dim,
                blocks.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                format.code(),
            );
        }
        out
    }
}
