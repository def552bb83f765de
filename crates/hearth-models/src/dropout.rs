//! Dropout whose masks come from a counter-based generator, Philox4x32-10 (Salmon et al. 2011,
//! the generator PyTorch and JAX use on GPUs), drawn on the host.
//!
//! Every mask is a pure function of `(seed, call, element)`: the seed the training loop sets
//! for a step ([`reseed`]), the position of the dropout call in that step's forward passes,
//! and the element's index. So a mask does not depend on the backend (Flex natively, wgpu,
//! WebGPU in the page), on threads, or on what ran before: the page and the CLI drop the same
//! elements, a resumed run draws what an uninterrupted one would, and replicas training on
//! different threads each draw their own stream without sharing a generator. Burn's
//! `Dropout::forward` instead draws a Bernoulli tensor from the device's own RNG (ChaCha on
//! Flex, one element at a time), which differs by backend and was a large part of a CPU step.
//!
//! The stream is per thread: a step's forward passes run on the thread that trains.

use std::cell::Cell;

use burn::nn::Dropout;
use burn::tensor::{Tensor, TensorData};
use rand_philox::Philox;

thread_local! {
    /// The step's seed and the number of dropout calls drawn since it was set.
    static STREAM: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Starts the masks of a step: the calls that follow draw from `seed`'s streams, call 0 first.
pub fn reseed(seed: u64) {
    STREAM.set((seed, 0));
}

/// The next call's position in the current step's stream.
fn next_call() -> (u64, u64) {
    let (seed, call) = STREAM.get();
    STREAM.set((seed, call + 1));
    (seed, call)
}

/// `dropout` applied to `x`: each element kept with probability `1 − p` and scaled by
/// `1/(1 − p)`, zeroed otherwise; `x` unchanged outside training (a device without autodiff,
/// a frozen layer, or `p = 0`), as burn's `Dropout::forward`.
pub fn apply<const D: usize>(dropout: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !dropout.training.is_enabled() || !x.device().is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    let (seed, call) = next_call();
    let dims = x.dims();
    let values = mask(seed, call, dropout.prob, x.shape().num_elements());
    let mask = Tensor::<D>::from_data(TensorData::new(values, dims), &x.device());
    x * mask
}

/// The mask of one dropout call: `n` values, each `1/(1 − p)` (kept) or 0 (dropped).
///
/// Element `i` is kept when the `i`-th 32-bit word of Philox's stream `call` under key `seed`
/// is below `(1 − p)·2³²`: one word per element, so the keep probability is exact to 2⁻³².
pub fn mask(seed: u64, call: u64, p: f64, n: usize) -> Vec<f32> {
    let keep = 1.0 - p;
    // Words below the threshold are kept; `keep < 1`, so the threshold fits in u32.
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let mut rng = Philox::from_u64_seed_stream(seed, call);
    let mut out = vec![0.0f32; n];
    let mut words = [0u32; 1024];
    for chunk in out.chunks_mut(words.len()) {
        let words = &mut words[..chunk.len()];
        rng.fill_u32(words);
        for (o, &w) in chunk.iter_mut().zip(words.iter()) {
            *o = if u64::from(w) < threshold { scale } else { 0.0 };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use burn::nn::DropoutConfig;
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn masks_keep_the_expected_share_and_depend_only_on_seed_and_call() {
        let n = 200_000;
        let a = mask(7, 3, 0.1, n);
        assert_eq!(a, mask(7, 3, 0.1, n), "a mask is a function of its inputs");
        assert_ne!(a, mask(7, 4, 0.1, n), "another call draws another mask");
        assert_ne!(a, mask(8, 3, 0.1, n), "another seed draws another mask");
        // A shorter mask is the start of the longer one: chunking does not change the words.
        assert_eq!(mask(7, 3, 0.1, 1500), a[..1500]);
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        // Binomial standard deviation at n = 200,000 is 0.00067: 5 of them.
        assert!((kept - 0.9).abs() < 0.0034, "kept {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
    }

    #[test]
    fn training_drops_the_same_elements_after_a_reseed_and_evaluation_drops_none() {
        let dropout = DropoutConfig::new(0.5).init();
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::ones([4, 64], &device);
        let draw = || {
            apply(&dropout, x.clone())
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        reseed(11);
        let (first, second) = (draw(), draw());
        assert_ne!(first, second, "each call in a step draws its own mask");
        reseed(11);
        assert_eq!(draw(), first, "a reseeded step draws the same masks");
        assert!(first.iter().any(|&v| v == 0.0) && first.iter().any(|&v| v == 2.0));
        let plain = Tensor::<2>::ones([4, 64], &Device::flex());
        let kept = apply(&dropout, plain).into_data().to_vec::<f32>().unwrap();
        assert!(kept.iter().all(|&v| v == 1.0), "no dropout without autodiff");
    }
}
