//! Duplicate and near-duplicate detection among the texts of a dataset.
//!
//! Three levels, from strict to loose:
//!
//! * **Exact duplicates** (byte-identical texts) are left to the caller.
//! * **Folded duplicates** ([`folded_duplicate_groups`]): texts that become identical after
//!   [`fold`], which lowercases them and turns every run of characters that are not letters or
//!   digits (spaces, punctuation, emoji, combining marks) into a single space. "I love it!!" and
//!   "i love it" are folded duplicates.
//! * **Near-duplicates** ([`near_duplicate_groups`]): texts that share most of their
//!   *shingles*. A text's shingles are the word 3-grams of its folded form ("i love driverless
//!   cars" has "i love driverless" and "love driverless cars"). A text with fewer words than that
//!   uses the character 4-grams of its folded form instead ("good day" has "good", "ood ",
//!   "od d", ...), and a folded text of fewer than 4 characters is its own single shingle. Two
//!   texts are near-duplicates when the *Jaccard similarity* of their shingle sets — shingles in
//!   both divided by shingles in either — is at least the threshold, 0.8 by default: at least 80%
//!   of all their distinct shingles are shared. Changing the last word of a 12-word tweet keeps
//!   9 of 11 shingles (0.82, a near-duplicate); changing a word in its middle keeps 7 of 13
//!   (0.54, not one), because every word is part of three word 3-grams.
//!
//! Comparing every pair of texts would take quadratic time, so candidates are found with
//! MinHash and locality-sensitive hashing (LSH). Each distinct folded text gets a signature of
//! `permutations` numbers (128 by default): for each of that many fixed hash functions, the
//! smallest hash of any of its shingles. Two texts agree on one of those numbers with
//! probability equal to their Jaccard similarity. The signature is cut into `bands` bands of
//! `permutations / bands` numbers (32 bands of 4 by default); texts that agree on a whole band
//! land in the same bucket and become a candidate pair. With the defaults a pair at similarity
//! 0.8 is missed with a probability of about 5e-8 and a pair at 0.3 becomes a candidate only
//! about a fifth of the time. Every candidate pair is then **verified** by computing the exact
//! Jaccard similarity of the two shingle sets, so nothing below the threshold is ever reported;
//! only recall rests on chance. With a fixed seed the result is the same on every platform and
//! every run: the hashes are written out here (shingles are hashed eight bytes at a time with
//! the splitmix64 mixer, and MinHash function `p` is `x * a_p + b_p` mod 2^32 with constants
//! drawn from a splitmix64 sequence started at the seed), never the standard library's randomly
//! seeded hasher. On the repository's 38,158 tweets the clusters are exactly those found by
//! comparing all 728 million pairs. Verified pairs are joined with union-find, so a cluster
//! is a connected component: if a is like b and b is like c, a, b and c form one cluster even
//! when a and c are less alike than the threshold.
//!
//! Texts with identical folded forms always are near-duplicates (similarity 1) and are handled
//! once, as one entry, before any hashing, so 38,000 copies of one tweet cost as much as one
//! copy. Texts whose folded form is empty (empty, whitespace, punctuation or emoji only) have no
//! shingles and are never part of a group.
//!
//! **The cap.** A bucket of `m` texts holds `m (m - 1) / 2` candidate pairs, which explodes on
//! template-like data (thousands of tweets differing in one token). In a bucket of more than
//! [`FULL_BUCKET_MAX`] (200) texts, each text is compared only with the [`BUCKET_WINDOW`] (32)
//! texts before it in the bucket (in row order), instead of with all of them. Pairs already in
//! one cluster are never verified again, so a large bucket of genuine near-duplicates still
//! ends up in one cluster at a cost linear in its size. The price: in such an oversized bucket,
//! two near-duplicates more than 32 members apart that are not linked through other texts or
//! other bands may be missed. Work is thus bounded by about `bands × texts × 32`
//! verifications whatever the data.
//!
//! The code follows the same steps: `shingles` turns folded texts into shingle sets, `lsh`
//! finds and verifies candidate pairs, and `union_find` joins the verified pairs into clusters.

mod lsh;
mod shingles;
mod union_find;

use std::collections::HashMap;

use shingles::{ShingleKind, ShingleSets, for_each_shingle, jaccard_sorted};
use union_find::UnionFind;

/// Buckets with at most this many texts have all their pairs compared; see the module docs.
pub const FULL_BUCKET_MAX: usize = 200;
/// In a larger bucket, each text is compared with this many texts before it; see the module docs.
pub const BUCKET_WINDOW: usize = 32;
/// Length, in characters, of the shingles of texts with fewer words than the word shingle.
const CHAR_GRAM: usize = 4;

/// `text` folded for duplicate detection: Unicode lowercase, every char that is not
/// alphanumeric treated as a separator, runs of separators collapsed to one space, trimmed.
/// "Hello,   WORLD!!" → "hello world".
///
/// The lowercasing comes first, so a character whose lowercase form holds a combining mark
/// ("İ" → "i" + U+0307) keeps only its letter; folding a folded text changes nothing.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    // Appends one lowercased character: a letter or digit as it is, anything else as (at most)
    // one space before the next letter or digit.
    let mut put = |l: char| {
        if l.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(l);
        } else {
            pending_space = true;
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            put(c.to_ascii_lowercase());
        } else {
            c.to_lowercase().for_each(&mut put);
        }
    }
    out
}

/// Groups of row indices (each sorted ascending, groups sorted by first index, only groups of
/// ≥ 2) whose [`fold`]ed texts are identical. (Exact byte-identical duplicates are a subset;
/// the caller handles those separately.)
///
/// Texts whose folded form is empty (no letter or digit at all: empty, whitespace, punctuation
/// or emoji only) are left out: "😀" and "😂" both fold to "", yet are not duplicates.
pub fn folded_duplicate_groups(texts: &[&str]) -> Vec<Vec<usize>> {
    let folded: Vec<String> = texts.iter().map(|t| fold(t)).collect();
    let (_, members) = group_folded(&folded);
    members.into_iter().filter(|g| g.len() >= 2).collect()
}

/// Settings of the similarity search.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NearDupSettings {
    /// Least Jaccard similarity of two texts' shingle sets for them to count as
    /// near-duplicates, in (0, 1]. 0.8 by default.
    pub threshold: f64,
    /// Words per shingle (word n-grams of the folded text). 3 by default; 0 counts as 1.
    pub shingle: usize,
    /// Length of the MinHash signature. 128 by default; 0 counts as 1.
    pub permutations: usize,
    /// LSH bands the signature is cut into, each of `permutations / bands` numbers (leftover
    /// numbers are not computed). 32 by default; clamped to 1..=permutations.
    pub bands: usize,
    /// Seed of the MinHash hash functions.
    pub seed: u64,
}

impl Default for NearDupSettings {
    fn default() -> Self {
        Self {
            threshold: 0.8,
            shingle: 3,
            permutations: 128,
            bands: 32,
            seed: 0,
        }
    }
}

/// Clusters of near-duplicate rows: MinHash signatures, LSH banding to find candidate pairs,
/// every candidate pair verified by the exact Jaccard similarity of the shingle sets against
/// `settings.threshold`, clusters the connected components of verified pairs (see the module
/// docs). Texts whose folded forms are identical are near-duplicates too (Jaccard 1). Texts
/// with an empty folded form are never in a cluster. Output: each cluster's indices sorted,
/// clusters sorted by first index, only clusters of ≥ 2.
pub fn near_duplicate_groups(texts: &[&str], settings: &NearDupSettings) -> Vec<Vec<usize>> {
    let folded: Vec<String> = texts.iter().map(|t| fold(t)).collect();
    // One entry per distinct non-empty folded text, in order of first appearance.
    let (distinct, members) = group_folded(&folded);
    if distinct.is_empty() {
        return Vec::new();
    }
    let distinct_texts: Vec<&str> = distinct.iter().map(|&i| folded[i].as_str()).collect();
    let sets = ShingleSets::new(&distinct_texts, settings.shingle.max(1));
    let forest = lsh::link_similar(&sets, settings);
    clusters(forest, &members, settings.threshold)
}

/// The clusters of rows: the distinct folded texts joined in `forest`, each expanded back to
/// its rows (`members`). A text's own copies form a cluster too, since identical folded texts
/// have similarity 1.
fn clusters(mut forest: UnionFind, members: &[Vec<usize>], threshold: f64) -> Vec<Vec<usize>> {
    let identical_ok = 1.0 >= threshold;
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    let mut cluster_of_root: HashMap<usize, usize> = HashMap::new();
    for (d, rows_of_d) in members.iter().enumerate() {
        let root = forest.find(d);
        let singleton_root = root == d && forest.size[d] == 1;
        if singleton_root {
            if identical_ok && rows_of_d.len() >= 2 {
                clusters.push(rows_of_d.clone());
            }
            continue;
        }
        let slot = *cluster_of_root.entry(root).or_insert_with(|| {
            clusters.push(Vec::new());
            clusters.len() - 1
        });
        clusters[slot].extend_from_slice(rows_of_d);
    }
    for c in &mut clusters {
        c.sort_unstable();
    }
    clusters.retain(|c| c.len() >= 2);
    clusters.sort_unstable_by_key(|c| c.first().copied().unwrap_or(usize::MAX));
    clusters
}

/// Exact Jaccard similarity of the shingle sets of two texts under `settings` (for reports and
/// tests). 0.0 when either text has no shingles (its folded form is empty).
pub fn similarity(a: &str, b: &str, settings: &NearDupSettings) -> f64 {
    let shingle = settings.shingle.max(1);
    let (fa, fb) = (fold(a), fold(b));
    let set = |text: &str| {
        let mut v: Vec<(ShingleKind, String)> = Vec::new();
        for_each_shingle(text, shingle, |kind, s| v.push((kind, s.to_owned())));
        v.sort_unstable();
        v.dedup();
        v
    };
    jaccard_sorted(&set(&fa), &set(&fb))
}

/// Distinct non-empty folded texts: the row of each one's first appearance, and all its rows
/// (ascending), both in order of first appearance.
fn group_folded(folded: &[String]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut first: Vec<usize> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (row, text) in folded.iter().enumerate() {
        if text.is_empty() {
            continue;
        }
        let slot = *index.entry(text.as_str()).or_insert_with(|| {
            first.push(row);
            members.push(Vec::new());
            members.len() - 1
        });
        members[slot].push(row);
    }
    (first, members)
}

#[cfg(test)]
mod tests;
