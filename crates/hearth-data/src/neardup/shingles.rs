//! Shingles: the word or character n-grams a folded text is compared by, their fixed 64-bit
//! hashes, the exact Jaccard similarity of two shingle sets, and [`ShingleSets`], the sets of
//! many texts as sorted ids of interned shingles.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use super::CHAR_GRAM;
use crate::hash::{fnv1a, mix64};

/// Which kind of shingle a string is, so a word n-gram never equals a character n-gram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum ShingleKind {
    Words,
    Chars,
}

/// Calls `f` with every shingle of a folded text (with repeats): word `shingle`-grams, or
/// character 4-grams when there are fewer words, or the whole text when it has fewer than 4
/// characters. Nothing for an empty text. All shingles are slices of `folded`.
pub(super) fn for_each_shingle<'a>(
    folded: &'a str,
    shingle: usize,
    mut f: impl FnMut(ShingleKind, &'a str),
) {
    if folded.is_empty() {
        return;
    }
    let shingle = shingle.max(1);
    // (start, end) byte offsets of each word; a folded text has single spaces only.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, byte) in folded.bytes().enumerate() {
        if byte == b' ' {
            words.push((start, i));
            start = i + 1;
        }
    }
    words.push((start, folded.len()));
    if words.len() >= shingle {
        for w in words.windows(shingle) {
            if let (Some(first), Some(last)) = (w.first(), w.last()) {
                f(ShingleKind::Words, &folded[first.0..last.1]);
            }
        }
        return;
    }
    let mut bounds: Vec<usize> = folded.char_indices().map(|(i, _)| i).collect();
    bounds.push(folded.len());
    if bounds.len() <= CHAR_GRAM {
        f(ShingleKind::Chars, folded);
        return;
    }
    for w in bounds.windows(CHAR_GRAM + 1) {
        if let (Some(&s), Some(&e)) = (w.first(), w.last()) {
            f(ShingleKind::Chars, &folded[s..e]);
        }
    }
}

/// Jaccard similarity of two sorted, deduplicated slices; 0.0 when either is empty.
pub(super) fn jaccard_sorted<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// 64-bit hash of a shingle, the same on every platform: the kind and length, then the UTF-8
/// bytes eight at a time (little-endian, the last chunk padded with zeros), each step mixed
/// with the splitmix64 finalizer.
pub(super) fn shingle_hash(kind: ShingleKind, s: &str) -> u64 {
    let tag: u64 = match kind {
        ShingleKind::Words => 0x5157_4F52_4453_0001,
        ShingleKind::Chars => 0x4348_4152_5300_0002,
    };
    let bytes = s.as_bytes();
    let mut h = mix64(tag ^ (bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = mix64(h ^ u64::from_le_bytes(word));
    }
    h
}

/// The shingle sets of distinct folded texts, each as the sorted, deduplicated ids of interned
/// shingle strings (so the Jaccard check is exact), with every shingle's 32-bit hash, the input
/// of the MinHash functions.
pub(super) struct ShingleSets {
    ids: Vec<u32>,
    starts: Vec<usize>,
    base_hashes: Vec<u32>,
}

impl ShingleSets {
    /// The sets of `texts` (folded), with `shingle` words per word shingle.
    ///
    /// The interner is keyed by the shingle's 64-bit hash (also its MinHash input); on a hit the
    /// strings are compared, and the astronomically rare true collision goes to a second map.
    pub(super) fn new(texts: &[&str], shingle: usize) -> Self {
        let mut by_hash: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>> = HashMap::default();
        let mut collided: HashMap<(ShingleKind, &str), u32> = HashMap::new();
        let mut shingles: Vec<(ShingleKind, &str)> = Vec::new();
        let mut base_hashes: Vec<u32> = Vec::new();
        let mut set_ids: Vec<u32> = Vec::new();
        let mut set_starts: Vec<usize> = Vec::with_capacity(texts.len() + 1);
        set_starts.push(0);
        for &text in texts {
            let start = set_ids.len();
            for_each_shingle(text, shingle, |kind, s| {
                let h = shingle_hash(kind, s);
                let next = u32::try_from(shingles.len()).unwrap_or(u32::MAX);
                let id = match by_hash.entry(h) {
                    Entry::Occupied(slot)
                        if shingles.get(*slot.get() as usize) == Some(&(kind, s)) =>
                    {
                        *slot.get()
                    }
                    Entry::Occupied(_) => *collided.entry((kind, s)).or_insert_with(|| {
                        shingles.push((kind, s));
                        base_hashes.push((h ^ (h >> 32)) as u32);
                        next
                    }),
                    Entry::Vacant(slot) => {
                        slot.insert(next);
                        shingles.push((kind, s));
                        base_hashes.push((h ^ (h >> 32)) as u32);
                        next
                    }
                };
                set_ids.push(id);
            });
            let set = &mut set_ids[start..];
            set.sort_unstable();
            let mut kept = 0;
            for k in 0..set.len() {
                if k == 0 || set[k] != set[kept - 1] {
                    set[kept] = set[k];
                    kept += 1;
                }
            }
            set_ids.truncate(start + kept);
            set_starts.push(set_ids.len());
        }
        Self {
            ids: set_ids,
            starts: set_starts,
            base_hashes,
        }
    }

    /// How many texts.
    pub(super) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// The shingle ids of text `d`, sorted and distinct.
    pub(super) fn set(&self, d: usize) -> &[u32] {
        &self.ids[self.starts[d]..self.starts[d + 1]]
    }

    /// The 32-bit hashes of text `d`'s shingles, the input of its MinHash signature.
    pub(super) fn hashes(&self, d: usize) -> impl Iterator<Item = u32> + '_ {
        self.set(d).iter().map(|&id| self.base_hashes[id as usize])
    }
}

/// A hasher for keys that already are good 64-bit hashes: passes a `u64` through.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for u64 keys; FNV-1a keeps it correct for anything else.
        self.0 = fnv1a(self.0, bytes);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}
