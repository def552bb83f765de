//! Dropout whose masks come from a counter-based generator, Philox4x32-10 (Salmon et al. 2011,
//! the generator PyTorch and JAX use on GPUs), drawn on the host.
//!
//! Every mask is a pure function of the step's seed ([`reseed`]), the position of the dropout
//! call in the step's forward passes, and the element's coordinates: the row's place in the
//! step's global batch ([`set_rows`]) and its position in the row. So a mask depends neither on
//! the backend (Flex natively, wgpu, WebGPU in the page), nor on threads, nor on how a batch is
//! split: the page and the CLI drop the same elements; so do one model and replicas or MPI
//! ranks that each compute a share of the rows, padded to their own lengths; and a resumed run
//! draws what an uninterrupted one would. Burn's `Dropout::forward` instead draws a Bernoulli
//! tensor from the device's RNG (ChaCha on Flex, one element at a time), which differs by
//! backend and was a large part of a CPU step.
//!
//! The stream is per thread: a step's forward passes run on the thread that trains.

use std::cell::{Cell, RefCell};

use burn::nn::Dropout;
use burn::tensor::{Tensor, TensorData};
use rand_philox::{Philox, splitmix64};

thread_local! {
    /// The step's seed and the number of dropout calls drawn since it was set.
    static STREAM: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// The places in the step's global batch of the rows computed now.
    static ROWS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Starts the masks of a step: the calls that follow draw from `seed`'s streams, call 0 first.
pub fn reseed(seed: u64) {
    STREAM.set((seed, 0));
}

/// Where the current step's stream stands: the masks the next calls draw. Gradient
/// checkpointing keeps it before each layer and returns to it ([`set_position`]) to draw the
/// layer's masks again when it recomputes the layer.
pub fn position() -> (u64, u64) {
    STREAM.get()
}

/// Returns the stream to a [`position`] taken earlier.
pub fn set_position(at: (u64, u64)) {
    STREAM.set(at);
}

/// The rows of the tensors computed from now on, by their places in the step's global batch
/// (the first dimension of every tensor dropout sees). Without it, or when a tensor has
/// another number of rows, row `i` is place `i`.
pub fn set_rows(rows: impl IntoIterator<Item = u64>) {
    ROWS.with_borrow_mut(|r| {
        r.clear();
        r.extend(rows);
    });
}

/// The next call's position in the current step's stream.
fn next_call() -> (u64, u64) {
    let (seed, call) = STREAM.get();
    STREAM.set((seed, call + 1));
    (seed, call)
}

/// `dropout` applied to `x` (rows first): each element kept with probability `1 − p` and
/// scaled by `1/(1 − p)`, zeroed otherwise; `x` unchanged outside training (a device without
/// autodiff, a frozen layer, or `p = 0`), as burn's `Dropout::forward`.
pub fn apply<const D: usize>(dropout: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !dropout.training.is_enabled() || !x.device().is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    let (seed, call) = next_call();
    let dims = x.dims();
    let values = ROWS.with_borrow(|rows| {
        if D > 0 && rows.len() == dims[0] {
            mask(seed, call, dropout.prob, &dims, rows)
        } else {
            let places: Vec<u64> = (0..dims.first().copied().unwrap_or(1) as u64).collect();
            mask(seed, call, dropout.prob, &dims, &places)
        }
    });
    let mask = Tensor::<D>::from_data(TensorData::new(values, dims), &x.device());
    x * mask
}

/// Bits each coordinate of an element within its row takes in the element's word index.
const COORD_BITS: u32 = 20;

/// The mask of one dropout call over a tensor of shape `dims` whose rows sit at `places` in
/// the global batch: one value per element, `1/(1 − p)` (kept) or 0 (dropped).
///
/// The element at coordinates `(row, c₁, …, cₘ)` is kept when word `Σ cᵢ·2^(20·(m−i))` of
/// Philox's stream `places[row]` under the key of `(seed, call)` is below `(1 − p)·2³²`: the
/// word depends on the coordinates, not on the tensor's padded extent, and the keep
/// probability is exact to 2⁻³². Rows of more than three further dimensions, or with one past
/// 2²⁰, are numbered flat.
pub fn mask(seed: u64, call: u64, p: f64, dims: &[usize], places: &[u64]) -> Vec<f32> {
    let keep = 1.0 - p;
    // Words below the threshold are kept; `keep < 1`, so the threshold fits in u32.
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let key = splitmix64(seed ^ splitmix64(call.wrapping_add(0x5851_F42D_4C95_7F2D)));
    let key = [key as u32, (key >> 32) as u32];
    let n: usize = dims.iter().product();
    let mut inner: Vec<usize> = dims.iter().skip(1).copied().collect();
    if inner.len() > 3 || inner.iter().any(|&d| d >= 1 << COORD_BITS) {
        inner = vec![inner.iter().product()];
    }
    let last = inner.last().copied().unwrap_or(1);
    let runs: usize = inner.iter().rev().skip(1).product();
    let mut out = vec![0.0f32; n];
    let mut words = vec![0u32; last];
    let mut at = 0;
    for &place in places {
        let mut coords = vec![0usize; inner.len().saturating_sub(1)];
        for _ in 0..runs {
            let word = coords
                .iter()
                .fold(0u64, |w, &c| (w + c as u64) << COORD_BITS);
            let mut rng = Philox::new(key, (u128::from(place) << 64) | u128::from(word / 4));
            rng.fill_u32(&mut words);
            for (o, &w) in out[at..at + last].iter_mut().zip(&words) {
                *o = if u64::from(w) < threshold { scale } else { 0.0 };
            }
            at += last;
            // The next run: the coordinates before the last, in row-major order.
            for (c, &d) in coords.iter_mut().zip(&inner).rev() {
                *c += 1;
                if *c < d {
                    break;
                }
                *c = 0;
            }
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
    fn masks_keep_the_expected_share_and_depend_only_on_seed_call_and_coordinates() {
        let dims = [4, 50, 1000];
        let rows = [0, 1, 2, 3];
        let a = mask(7, 3, 0.1, &dims, &rows);
        assert_eq!(a, mask(7, 3, 0.1, &dims, &rows), "a function of its inputs");
        assert_ne!(
            a,
            mask(7, 4, 0.1, &dims, &rows),
            "another call draws another mask"
        );
        assert_ne!(
            a,
            mask(8, 3, 0.1, &dims, &rows),
            "another seed draws another mask"
        );
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / a.len() as f64;
        // Binomial standard deviation at n = 200,000 is 0.00067: 5 of them.
        assert!((kept - 0.9).abs() < 0.0034, "kept {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));

        // Rows 1 and 3 alone, padded to 30 positions instead of 50: each element keeps its
        // value, as a replica computing those two rows would draw them.
        let share = mask(7, 3, 0.1, &[2, 30, 1000], &[1, 3]);
        for (i, &row) in [1usize, 3].iter().enumerate() {
            for pos in 0..30 {
                let whole = &a[(row * 50 + pos) * 1000..][..1000];
                let part = &share[(i * 30 + pos) * 1000..][..1000];
                assert_eq!(whole, part, "row {row}, position {pos}");
            }
        }
    }

    #[test]
    fn training_drops_the_same_elements_after_a_reseed_and_evaluation_drops_none() {
        let dropout = DropoutConfig::new(0.5).init();
        let device = Device::flex().autodiff();
        let x = Tensor::<3>::ones([4, 3, 64], &device);
        let draw = || {
            apply(&dropout, x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        reseed(11);
        let (first, second) = (draw(), draw());
        assert_ne!(first, second, "each call in a step draws its own mask");
        reseed(11);
        assert_eq!(draw(), first, "a reseeded step draws the same masks");
        assert!(first.contains(&0.0) && first.contains(&2.0));
        // The last two rows, as places 2 and 3 of the batch, get the same masks.
        reseed(11);
        set_rows([2, 3]);
        let tail = apply(&dropout, Tensor::<3>::ones([2, 3, 64], &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        set_rows([]);
        assert_eq!(tail, first[2 * 3 * 64..]);
        let plain = Tensor::<2>::ones([4, 64], &Device::flex());
        let kept = apply(&dropout, plain)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            kept.iter().all(|&v| v == 1.0),
            "no dropout without autodiff"
        );
    }
}
