//! The shapes of batches: how far a batch is padded (`train.pad_to_multiple_of`, as
//! transformers' tokenizers pad) and which rows share a batch (`train.group_by_length`, as
//! transformers' `LengthGroupedSampler`).
//!
//! A GPU backend (native wgpu, the page's WebGPU) compiles and tunes its kernels for the shapes
//! it meets; dynamic padding to each batch's longest row makes every text length a new shape.
//! Padding each batch up to a multiple of a small bucket bounds the lengths a run can meet to
//! `max_length / multiple` (docs/BENCHMARKS.md counts the kernels compiled). Padding never
//! changes the numbers: padded positions are masked out of attention, pooling and the loss,
//! and a test holds the losses with and without buckets equal.

use crate::plan::Runtime;

/// The bucket a batch's length is rounded up to on a GPU when the job does not say: small
/// enough to waste little compute at MiniLM's lengths, large enough that a 128-token run meets
/// at most 8 lengths; a multiple of 4, so a GPU vectorizes every length alike.
pub const GPU_PAD_MULTIPLE: usize = 16;

/// How far a batch of rows is padded: to its longest row rounded up to a multiple of
/// `multiple`, never beyond `max_length` (nor below the longest row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// The bucket; 1 pads each batch to its longest row only (dynamic padding).
    pub multiple: usize,
    /// The longest a padded batch gets: the job's `max_length`.
    pub max_length: usize,
}

impl Padding {
    /// Dynamic padding: each batch to its longest row.
    pub const LONGEST: Self = Self {
        multiple: 1,
        max_length: usize::MAX,
    };

    /// The padded length of a batch whose longest row has `longest` tokens.
    pub fn length(self, longest: usize) -> usize {
        longest
            .next_multiple_of(self.multiple.max(1))
            .min(self.max_length.max(longest))
    }
}

impl crate::TrainSettings {
    /// The bucket of this job on `runtime`: `pad_to_multiple_of`, or when absent
    /// [`GPU_PAD_MULTIPLE`] on a GPU and 1 (none) on the CPU, where a new shape costs nothing.
    pub fn pad_multiple(&self, runtime: Runtime) -> usize {
        self.pad_to_multiple_of.unwrap_or(match runtime {
            Runtime::NativeCpu => 1,
            Runtime::NativeGpu | Runtime::Browser => GPU_PAD_MULTIPLE,
        })
    }

    /// The padding of this job's batches on `runtime`.
    pub fn padding(&self, runtime: Runtime) -> Padding {
        Padding {
            multiple: self.pad_multiple(runtime),
            max_length: self.max_length,
        }
    }
}

/// transformers' cap on a mega-batch: at most 50 batches are sorted together.
const MEGA_BATCHES: usize = 50;

/// `order` regrouped so that batches of `batch` rows hold rows of similar `lengths`, as
/// transformers' `get_length_grouped_indices` does: the order is cut into mega-batches of up to
/// 50 batches (fewer for a small dataset, so that there are at least about 4 of them), each is
/// sorted by length, longest first (a stable sort: ties keep their order), and the longest row
/// of all is swapped to the very front, so that a run that runs out of memory does so at its
/// first step. A pure function of its inputs: the seeded order stays the only randomness.
pub fn group_by_length(order: &[usize], lengths: &[usize], batch: usize) -> Vec<usize> {
    let batch = batch.max(1);
    let per_mega = (order.len() / (batch * 4)).clamp(1, MEGA_BATCHES) * batch;
    let length = |i: &usize| lengths.get(*i).copied().unwrap_or(0);
    let mut megas: Vec<Vec<usize>> = order
        .chunks(per_mega)
        .map(|chunk| {
            let mut mega = chunk.to_vec();
            mega.sort_by_key(|i| std::cmp::Reverse(length(i)));
            mega
        })
        .collect();
    // The mega-batch whose first (longest) row is the longest of all: the first of them.
    let longest = megas
        .iter()
        .enumerate()
        .max_by_key(|(at, mega)| (mega.first().map(length), std::cmp::Reverse(*at)))
        .map_or(0, |(at, _)| at);
    if longest != 0 {
        let first = megas[0][0];
        megas[0][0] = megas[longest][0];
        megas[longest][0] = first;
    }
    megas.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_pads_to_its_bucket_within_the_max_length() {
        let p = Padding {
            multiple: 16,
            max_length: 100,
        };
        assert_eq!(p.length(1), 16);
        assert_eq!(p.length(16), 16);
        assert_eq!(p.length(17), 32);
        assert_eq!(p.length(90), 96);
        assert_eq!(p.length(97), 100, "never beyond max_length");
        assert_eq!(p.length(100), 100);
        assert_eq!(Padding::LONGEST.length(37), 37);
        // Every length up to 100 lands on one of 7 lengths.
        let mut lengths: Vec<usize> = (1..=100).map(|l| p.length(l)).collect();
        lengths.dedup();
        assert_eq!(lengths, [16, 32, 48, 64, 80, 96, 100]);
    }

    #[test]
    fn the_default_bucket_depends_on_where_the_run_is() {
        let mut t = crate::TrainSettings::default();
        assert_eq!(t.pad_multiple(Runtime::NativeCpu), 1);
        assert_eq!(t.pad_multiple(Runtime::NativeGpu), GPU_PAD_MULTIPLE);
        assert_eq!(t.pad_multiple(Runtime::Browser), GPU_PAD_MULTIPLE);
        t.pad_to_multiple_of = Some(8);
        assert_eq!(t.pad_multiple(Runtime::NativeCpu), 8);
        t.pad_to_multiple_of = Some(1);
        assert_eq!(t.pad_multiple(Runtime::Browser), 1);
    }

    #[test]
    fn grouping_sorts_mega_batches_and_puts_the_longest_row_first() {
        // 64 rows in a seeded order, lengths that vary a lot.
        let order = hearth_data::python_shuffle_indices(64, 3);
        let lengths: Vec<usize> = (0..64).map(|i| 1 + (i * 37) % 61).collect();
        let grouped = group_by_length(&order, &lengths, 4);
        // A permutation of the order, the same every time.
        let mut sorted = grouped.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..64).collect::<Vec<_>>());
        assert_eq!(grouped, group_by_length(&order, &lengths, 4));
        // 64 / (4 · 4) = 4 batches per mega-batch: 4 mega-batches of 16 rows, each sorted
        // longest first, but for the first row, which the longest row of all was swapped with.
        assert_eq!(lengths[grouped[0]], 61);
        for mega in grouped.chunks(16) {
            assert!(mega[1..].windows(2).all(|w| lengths[w[0]] >= lengths[w[1]]));
        }
        // Grouped batches pad less than the seeded order's.
        let padded = |order: &[usize]| -> usize {
            order
                .chunks(4)
                .map(|b| 4 * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
                .sum()
        };
        assert!(padded(&grouped) < padded(&order) * 3 / 4);
    }
}
