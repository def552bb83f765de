//! The quantized linear against plain tensor ops on the dequantized matrix: its output, and the
//! gradient it passes to its input (the only one it gives), on Flex with and without autodiff,
//! and (feature `wgpu`) the CubeCL kernels on wgpu against Flex and the dense matmul.

use burn::tensor::{Device, Tensor, TensorData};
use hearth_kernels::{QuantBlocks, QuantFormat, QuantWeight, supports};

/// Deterministic values in about ±3.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5) * 6.0)
        .collect()
}

fn tensor(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn read(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32")
}

fn assert_close(ours: &[f32], reference: &[f32], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}");
    let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * scale.max(1.0),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

/// `y = x·Wᵀ` and `∂(Σ y·c)/∂x` through the quantized op and through a matmul with the dense
/// dequantized matrix, for a matrix larger than one of the kernel's row chunks.
fn check(format: QuantFormat, device: &Device) {
    let (n, out, inp) = (3, 4100, 64);
    let w = values(out * inp, 1);
    let blocks = QuantBlocks::quantize(format, &w, out, inp).expect("blocks");
    let dense = blocks.dequantize();
    let weight = QuantWeight::new(&blocks, device).expect("Flex is supported");
    let x_data = values(n * inp, 2);
    let c = tensor(values(n * out, 3), [n, out], device);

    let grad = |t: Tensor<2>| {
        if device.is_autodiff() {
            t.require_grad()
        } else {
            t
        }
    };
    let x = grad(tensor(x_data.clone(), [n, inp], device));
    let y = weight.forward(x.clone());
    let reference_w = tensor(dense.clone(), [out, inp], device);
    let x_ref = grad(tensor(x_data.clone(), [n, inp], device));
    let y_ref = x_ref.clone().matmul(reference_w.transpose());
    assert_close(&read(y.clone()), &read(y_ref.clone()), "y");

    if device.is_autodiff() {
        let grads = (y * c.clone()).sum().backward();
        let grads_ref = (y_ref.clone() * c).sum().backward();
        let gx = x.grad(&grads).expect("x gets a gradient");
        let gx_ref = x_ref.grad(&grads_ref).expect("x gets a gradient");
        assert_close(&read(gx), &read(gx_ref), "dx");
    }

    // A model's blocks stay where they were built while `valid()` moves its inputs off autodiff.
    let inner = device.clone().inner();
    let y = weight.forward(tensor(x_data, [n, inp], &inner));
    assert_close(&read(y), &read(y_ref.inner()), "y, input without autodiff");
}

#[test]
fn quantized_linear_matches_the_dequantized_matmul_and_its_gradient() {
    let flex = Device::flex();
    assert!(supports(&flex) && supports(&flex.clone().autodiff()));
    for format in QuantFormat::ALL {
        check(format, &flex);
        check(format, &flex.clone().autodiff());
    }
}

#[test]
fn the_transposed_product_is_g_times_w() {
    let device = Device::flex();
    let (n, out, inp) = (2, 5, 32);
    let blocks =
        QuantBlocks::quantize(QuantFormat::Q4, &values(out * inp, 4), out, inp).expect("blocks");
    let weight = QuantWeight::new(&blocks, &device).expect("supported");
    let g = values(n * out, 5);
    let ours = read(weight.forward_transposed(tensor(g.clone(), [n, out], &device)));
    let reference =
        read(tensor(g, [n, out], &device).matmul(tensor(blocks.dequantize(), [out, inp], &device)));
    assert_close(&ours, &reference, "g·W");
}

/// An embedding lookup from quantized rows: rows `ids` (repeats and any order) of the
/// dequantized matrix, bit for bit, with and without autodiff, and no gradient for the blocks.
#[test]
fn rows_are_the_dequantized_rows_of_the_ids() {
    use burn::tensor::Int;
    for device in [Device::flex(), Device::flex().autodiff()] {
        for format in [QuantFormat::Q8, QuantFormat::Q4] {
            let (out, inp) = (7, 96);
            let blocks =
                QuantBlocks::quantize(format, &values(out * inp, 6), out, inp).expect("blocks");
            let dense = blocks.dequantize();
            let weight = QuantWeight::new(&blocks, &device).expect("supported");
            let ids = [6i64, 0, 3, 3, 1];
            let picked = weight.rows(Tensor::<1, Int>::from_data(
                TensorData::new(ids.to_vec(), [ids.len()]),
                &device,
            ));
            assert_eq!(picked.dims(), [ids.len(), inp]);
            assert!(!picked.is_require_grad());
            let expected: Vec<f32> = ids
                .iter()
                .flat_map(|&i| dense[i as usize * inp..(i as usize + 1) * inp].to_vec())
                .collect();
            assert_eq!(read(picked), expected, "{format:?}");
            // A model's blocks stay on the autodiff device while `valid()` moves its ids off it.
            let inner = device.clone().inner();
            let picked = weight.rows(Tensor::<1, Int>::from_data(
                TensorData::new(ids.to_vec(), [ids.len()]),
                &inner,
            ));
            assert_eq!(read(picked), expected, "{format:?}, ids without autodiff");
        }
    }
}

/// The CubeCL kernels on wgpu (natively; Mesa's lavapipe on a machine without a GPU, where
/// `WGPU_BACKEND=vulkan` picks it): the output and the input's gradient under autodiff equal
/// Flex's and a dense matmul of the dequantized blocks, for both formats, on shapes that are
/// not multiples of anything a kernel might tile by (67 rows, one row of input and 37).
#[cfg(feature = "wgpu")]
#[test]
fn on_wgpu_the_kernels_equal_flex_and_the_dequantized_matmul() {
    let wgpu = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    assert!(
        supports(&wgpu) && supports(&wgpu.clone().autodiff()),
        "the quantized linear runs on wgpu"
    );
    let (out, inp) = (67, 96);
    for format in QuantFormat::ALL {
        let blocks =
            QuantBlocks::quantize(format, &values(out * inp, 6), out, inp).expect("blocks");
        let dense = blocks.dequantize();
        for n in [1, 37] {
            let x = values(n * inp, 7);
            let c = values(n * out, 8);
            let run = |device: &Device| {
                let weight = QuantWeight::new(&blocks, device).expect("supported");
                let x = tensor(x.clone(), [n, inp], device).require_grad();
                let y = weight.forward(x.clone());
                let grads = (y.clone() * tensor(c.clone(), [n, out], device))
                    .sum()
                    .backward();
                let gx = x.grad(&grads).expect("x gets a gradient");
                (read(y.inner()), read(gx))
            };
            let (y_gpu, gx_gpu) = run(&wgpu.clone().autodiff());
            let (y_flex, gx_flex) = run(&Device::flex().autodiff());
            let flex = Device::flex();
            let w = tensor(dense.clone(), [out, inp], &flex);
            let y_dense = read(tensor(x.clone(), [n, inp], &flex).matmul(w.clone().transpose()));
            let gx_dense = read(tensor(c.clone(), [n, out], &flex).matmul(w));
            let what = format!("{format:?}, n = {n}");
            assert_within(&y_gpu, &y_flex, 1e-4, &format!("y on wgpu vs Flex, {what}"));
            assert_within(
                &y_gpu,
                &y_dense,
                1e-4,
                &format!("y on wgpu vs dense, {what}"),
            );
            assert_within(
                &gx_gpu,
                &gx_flex,
                1e-4,
                &format!("dx on wgpu vs Flex, {what}"),
            );
            assert_within(
                &gx_gpu,
                &gx_dense,
                1e-4,
                &format!("dx on wgpu vs dense, {what}"),
            );
        }
        // The embedding's lookup: rows of the dequantized matrix, bit for bit.
        let ids = [66i64, 0, 3, 3];
        let picked = QuantWeight::new(&blocks, &wgpu.clone().autodiff())
            .expect("supported")
            .rows(Tensor::<1, burn::tensor::Int>::from_data(
                TensorData::new(ids.to_vec(), [ids.len()]),
                &wgpu.clone().autodiff(),
            ));
        let expected: Vec<f32> = ids
            .iter()
            .flat_map(|&i| dense[i as usize * inp..(i as usize + 1) * inp].to_vec())
            .collect();
        assert_eq!(read(picked), expected, "rows on wgpu, {format:?}");
    }
}

/// Every value within `rel` of the reference's largest magnitude.
#[cfg(feature = "wgpu")]
fn assert_within(ours: &[f32], reference: &[f32], rel: f32, what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}");
    let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!(scale > 0.0, "{what}: a zero reference proves nothing");
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert!((a - b).abs() <= rel * scale, "{what}[{i}]: {a} vs {b}");
    }
}
