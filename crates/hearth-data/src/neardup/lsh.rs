//! Locality-sensitive hashing: MinHash signatures cut into bands, texts that agree on a band
//! as candidate pairs, and every candidate pair verified by its exact Jaccard similarity (with
//! the cap on oversized buckets the module header of [`super`] describes).

use super::shingles::{ShingleSets, jaccard_sorted};
use super::union_find::UnionFind;
use super::{BUCKET_WINDOW, FULL_BUCKET_MAX, NearDupSettings};
use crate::hash::{mix64, splitmix64};

/// The texts of `sets` joined wherever a verified pair links them: candidate pairs from shared
/// LSH buckets, each kept when its exact Jaccard similarity reaches `settings.threshold`.
pub(super) fn link_similar(sets: &ShingleSets, settings: &NearDupSettings) -> UnionFind {
    let threshold = settings.threshold;
    let band_entries = band_entries(sets, settings);

    // Candidate pairs from shared buckets, each verified exactly; union-find of verified pairs.
    let mut forest = UnionFind::new(sets.len());
    let verify = |a: usize, b: usize, forest: &mut UnionFind| {
        if forest.find(a) == forest.find(b) {
            return;
        }
        let (sa, sb) = (sets.set(a), sets.set(b));
        // Jaccard ≤ smaller / larger set size: skip pairs whose sizes already rule them out.
        // (Division, like the Jaccard itself, so both round the same way.)
        let (small, large) = (sa.len().min(sb.len()), sa.len().max(sb.len()));
        if (small as f64 / large as f64) < threshold {
            return;
        }
        if jaccard_sorted(sa, sb) >= threshold {
            forest.union(a, b);
        }
    };
    let key_of = |entry: u64| entry >> 32;
    let text_of = |entry: u64| (entry & 0xFFFF_FFFF) as usize;
    for mut entries in band_entries {
        entries.sort_unstable();
        let mut start = 0;
        while start < entries.len() {
            let key = key_of(entries[start]);
            let mut end = start + 1;
            while end < entries.len() && key_of(entries[end]) == key {
                end += 1;
            }
            let bucket = &entries[start..end];
            let full = bucket.len() <= FULL_BUCKET_MAX;
            for (j, &b) in bucket.iter().enumerate() {
                let from = if full {
                    0
                } else {
                    j.saturating_sub(BUCKET_WINDOW)
                };
                for &a in &bucket[from..j] {
                    verify(text_of(a), text_of(b), &mut forest);
                }
            }
            start = end;
        }
    }
    forest
}

/// MinHash signatures, reduced at once to one 32-bit key per band: for each band, one entry a
/// text.
///
/// A band entry packs the key above the text's number, so sorting plain u64s groups a band's
/// buckets with their members in ascending order. Two different bands of signatures get the
/// same 32-bit key with probability 2^-32, which only adds a candidate pair that verification
/// rejects.
fn band_entries(sets: &ShingleSets, settings: &NearDupSettings) -> Vec<Vec<u64>> {
    let n = sets.len();
    let permutations = settings.permutations.max(1);
    let bands = settings.bands.clamp(1, permutations);
    let rows = permutations / bands;
    let hasher = MinHasher::new(settings.seed, bands * rows);
    let mut band_entries: Vec<Vec<u64>> = (0..bands).map(|_| Vec::with_capacity(n)).collect();
    let mut signature = vec![u32::MAX; bands * rows];
    for d in 0..n {
        hasher.sign(sets.hashes(d), &mut signature);
        for (b, entries) in band_entries.iter_mut().enumerate() {
            let mut key = mix64(b as u64 ^ 0x9E37_79B9_7F4A_7C15);
            for &v in &signature[b * rows..(b + 1) * rows] {
                key = mix64(key ^ u64::from(v));
            }
            entries.push((key & 0xFFFF_FFFF_0000_0000) | d as u64);
        }
    }
    band_entries
}

/// The MinHash hash functions: function `p` maps a shingle's (already well mixed) 32-bit hash
/// `x` to `x * mul[p] + add[p]` (mod 2^32), a bijection of u32 for odd `mul[p]`. The constants
/// come from a splitmix64 sequence started at the seed. (Multiply-add on hashed input is the
/// classic cheap MinHash family; 32-bit arithmetic keeps it fast natively and in wasm.)
struct MinHasher {
    mul: Vec<u32>,
    add: Vec<u32>,
}

impl MinHasher {
    fn new(seed: u64, permutations: usize) -> Self {
        let mut state = seed;
        let mut mul = Vec::with_capacity(permutations);
        let mut add = Vec::with_capacity(permutations);
        for _ in 0..permutations {
            let r = splitmix64(&mut state);
            mul.push((r >> 32) as u32 | 1);
            add.push(r as u32);
        }
        Self { mul, add }
    }

    /// Writes into `signature` (one slot per hash function) the least value of each function
    /// over the shingle hashes; `u32::MAX` everywhere when there are none.
    fn sign(&self, shingle_hashes: impl Iterator<Item = u32>, signature: &mut [u32]) {
        signature.fill(u32::MAX);
        for x in shingle_hashes {
            for ((slot, &m), &a) in signature.iter_mut().zip(&self.mul).zip(&self.add) {
                *slot = (*slot).min(x.wrapping_mul(m).wrapping_add(a));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MinHasher;
    use crate::neardup::shingles::{ShingleKind, shingle_hash};

    #[test]
    fn minhash_agreement_estimates_jaccard() {
        // Two sets sharing `common` shingles with `extra` more each: Jaccard
        // common / (common + 2 extra). Averaged over 200 pairs and 128 functions, the share of
        // equal signature slots must be close to it (standard error below 0.003).
        let hasher = MinHasher::new(0, 128);
        let hash = |s: String| {
            let h = shingle_hash(ShingleKind::Words, &s);
            (h ^ (h >> 32)) as u32
        };
        for (common, extra) in [(40, 5), (20, 10), (10, 20), (5, 40)] {
            let jaccard = common as f64 / (common + 2 * extra) as f64;
            let (mut equal, mut total) = (0usize, 0usize);
            let (mut sa, mut sb) = (vec![0u32; 128], vec![0u32; 128]);
            for pair in 0..200 {
                let shared: Vec<u32> = (0..common).map(|i| hash(format!("p{pair} c{i}"))).collect();
                let only_a = (0..extra).map(|i| hash(format!("p{pair} a{i}")));
                let only_b = (0..extra).map(|i| hash(format!("p{pair} b{i}")));
                hasher.sign(shared.iter().copied().chain(only_a), &mut sa);
                hasher.sign(shared.iter().copied().chain(only_b), &mut sb);
                equal += sa.iter().zip(&sb).filter(|(x, y)| x == y).count();
                total += 128;
            }
            let estimate = equal as f64 / total as f64;
            assert!(
                (estimate - jaccard).abs() < 0.02,
                "Jaccard {jaccard}: MinHash agreement {estimate}"
            );
        }
    }
}
