//! Activations composed from elementary tensor ops, so their gradients are the exact derivatives
//! on every backend.
//!
//! burn's `gelu` computes the exact (erf) GELU forward but, on the cubecl backends (wgpu, WebGPU),
//! takes its backward from burn's default `gelu_backward`, the derivative of the tanh
//! approximation, which evaluates `tanh(0.0357·x³ + 0.798·x)`. SwiftShader's `tanh`, which is
//! what Chromium's WebGPU runs on without a GPU, returns NaN for arguments beyond about ±89, so
//! that backward is NaN for |x| ≳ 13, a pre-activation MiniLM reaches in its first layers. The
//! versions here avoid both the approximate derivative and `tanh` of large arguments.

use burn::tensor::Tensor;

/// `tanh` with its argument clamped to ±10, where `tanh` is already ±1 in f32
/// (1 − tanh(10) ≈ 4e-9), so no driver sees an argument its `tanh` might overflow on.
pub fn safe_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clamp(-10.0, 10.0).tanh()
}

/// Exact GELU, `x·Φ(x) = x·(1 + erf(x/√2))/2` (HF `gelu`), differentiated through `erf`.
pub fn gelu_erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) / 2.0
}

/// The tanh approximation of GELU (HF `gelu_new`, `gelu_pytorch_tanh`):
/// `x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2`.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044_715) * SQRT_2_OVER_PI;
    x * (safe_tanh(inner) + 1.0) / 2.0
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn points() -> Vec<f32> {
        (-400..=400).map(|i| i as f32 / 10.0).collect()
    }

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    /// Forward values and gradients, on autodiff Flex.
    fn eval(f: fn(Tensor<1>) -> Tensor<1>) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let xs = points();
        let x =
            Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device).require_grad();
        let y = f(x.clone());
        let grads = y.clone().sum().backward();
        let dx = x.grad(&grads).unwrap();
        (values(y), values(dx))
    }

    fn erf(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.26 is too coarse here; integrate Φ' numerically instead.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelu_erf_and_its_gradient_are_exact_and_finite() {
        let (y, dy) = eval(gelu_erf);
        for ((x, y), dy) in points().into_iter().zip(y).zip(dy) {
            let x = x as f64;
            let phi = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
            let pdf = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (y as f64 - x * phi).abs() < 1e-5 * (1.0 + x.abs()),
                "gelu({x})"
            );
            assert!(
                (dy as f64 - (phi + x * pdf)).abs() < 1e-5,
                "gelu'({x}) = {dy}"
            );
        }
    }

    #[test]
    fn gelu_tanh_matches_burn_and_stays_finite() {
        let (y, dy) = eval(gelu_tanh);
        let (reference, _) = eval(burn::tensor::activation::gelu_approximate);
        for ((y, r), dy) in y.iter().zip(&reference).zip(&dy) {
            assert!((y - r).abs() < 1e-5 * (1.0 + r.abs()), "{y} vs {r}");
            assert!(dy.is_finite());
        }
        let (t, dt) = eval(safe_tanh);
        for ((x, t), dt) in points().into_iter().zip(t).zip(dt) {
            assert!((t - x.tanh()).abs() < 1e-6);
            assert!((dt - (1.0 - x.tanh() * x.tanh())).abs() < 1e-6);
        }
    }
}
