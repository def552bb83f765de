//! Opt-in augmentation for classification: new training rows made from existing ones by the
//! "easy data augmentation" operations of Wei & Zou (2019, <https://arxiv.org/abs/1901.11196>)
//! that need no word lists: random swap (exchange two words, `n` times) and random deletion
//! (drop each word with probability `p`, keeping at least one). Apply it to training rows only;
//! validation and test rows must stay as the user wrote them.

use serde::{Deserialize, Serialize};

use crate::PythonRandom;

/// Which operation makes the copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentMethod {
    /// Swap two random words, `max(1, p · words)` times.
    RandomSwap,
    /// Delete each word with probability `p`.
    RandomDeletion,
}

/// Augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentSettings {
    /// The operation.
    pub method: AugmentMethod,
    /// New rows per original row.
    pub copies: usize,
    /// Strength: the share of words swapped or deleted (0.1 in the paper).
    pub p: f64,
    /// Seed of the draws.
    pub seed: u64,
}

fn chance(rng: &mut PythonRandom, p: f64) -> bool {
    (rng.randbelow(1 << 30) as f64) < p * f64::from(1u32 << 30)
}

/// One augmented copy of `text`.
pub fn augment_text(text: &str, settings: &AugmentSettings, rng: &mut PythonRandom) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 2 {
        return words.join(" ");
    }
    match settings.method {
        AugmentMethod::RandomSwap => {
            let times = ((settings.p * words.len() as f64).round() as usize).max(1);
            for _ in 0..times {
                let a = rng.randbelow(words.len() as u64) as usize;
                let b = rng.randbelow(words.len() as u64) as usize;
                words.swap(a, b);
            }
            words.join(" ")
        }
        AugmentMethod::RandomDeletion => {
            let kept: Vec<&str> = words
                .iter()
                .copied()
                .filter(|_| !chance(rng, settings.p))
                .collect();
            if kept.is_empty() {
                let only = rng.randbelow(words.len() as u64) as usize;
                words[only].to_string()
            } else {
                kept.join(" ")
            }
        }
    }
}

/// `copies` augmented rows for every row of `texts` (training rows only), with their labels:
/// the originals are not included.
pub fn augment<L: Clone>(
    texts: &[String],
    labels: &[L],
    settings: &AugmentSettings,
) -> (Vec<String>, Vec<L>) {
    let mut rng = PythonRandom::new(settings.seed);
    let mut out_texts = Vec::with_capacity(texts.len() * settings.copies);
    let mut out_labels = Vec::with_capacity(texts.len() * settings.copies);
    for (text, label) in texts.iter().zip(labels) {
        for _ in 0..settings.copies {
            out_texts.push(augment_text(text, settings, &mut rng));
            out_labels.push(label.clone());
        }
    }
    (out_texts, out_labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(method: AugmentMethod, p: f64) -> AugmentSettings {
        AugmentSettings {
            method,
            copies: 2,
            p,
            seed: 7,
        }
    }

    #[test]
    fn swap_keeps_the_words_and_deletion_keeps_a_subsequence() {
        let text = "the quick brown fox jumps over the lazy dog".to_string();
        let mut sorted_words: Vec<&str> = text.split(' ').collect();
        sorted_words.sort_unstable();
        let (out, labels) = augment(
            std::slice::from_ref(&text),
            &[1],
            &settings(AugmentMethod::RandomSwap, 0.2),
        );
        assert_eq!(labels, [1, 1]);
        for o in &out {
            let mut w: Vec<&str> = o.split(' ').collect();
            w.sort_unstable();
            assert_eq!(w, sorted_words);
        }
        assert!(out.iter().any(|o| *o != text), "{out:?}");
        let (out, _) = augment(
            std::slice::from_ref(&text),
            &[0],
            &settings(AugmentMethod::RandomDeletion, 0.3),
        );
        for o in &out {
            let mut rest = text.split(' ');
            for w in o.split(' ') {
                assert!(rest.any(|x| x == w), "{o} is not a subsequence");
            }
            assert!(!o.is_empty());
        }
        // Seeded: the same settings give the same rows.
        let again = augment(
            std::slice::from_ref(&text),
            &[0],
            &settings(AugmentMethod::RandomDeletion, 0.3),
        );
        assert_eq!(again.0, out);
    }

    #[test]
    fn short_texts_survive() {
        let s = settings(AugmentMethod::RandomDeletion, 1.0);
        let mut rng = PythonRandom::new(0);
        assert_eq!(augment_text("", &s, &mut rng), "");
        assert_eq!(augment_text("one", &s, &mut rng), "one");
        assert_eq!(
            augment_text("two words", &s, &mut rng).split(' ').count(),
            1
        );
    }
}
