//! Any bytes, in any format: loading (labelled rows and SFT conversations), column detection, the quality report and every cleaning
//! step end in a value or an error, never a panic.
#![no_main]

use hearth_data::clean::{CleanOptions, ConflictPolicy, Dedupe};
use hearth_data::quality::InspectOptions;
use hearth_data::{DataFormat, load_classification, load_rows};
use libfuzzer_sys::fuzz_target;

const FORMATS: [DataFormat; 5] = [
    DataFormat::Csv,
    DataFormat::Tsv,
    DataFormat::Jsonl,
    DataFormat::Json,
    DataFormat::Text,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let _ = hearth_data::detect_columns(bytes, format);
    let _ = load_classification(bytes, format, "text", "label");
    // SFT conversations (`messages`, prompt/response) from the same bytes.
    let _ = hearth_data::chat::load_conversations(bytes, format);
    let label = (selector & 0x80 != 0).then_some("label");
    // The chunked reader (what `hearth inspect` and the page use) on slices of 1 to 16 bytes.
    let size = usize::from(selector >> 3 & 0x0F) + 1;
    let _ = hearth_data::stream::stream_rows(
        || bytes.chunks(size).map(<[u8]>::to_vec).collect::<Vec<_>>(),
        format,
        "text",
        label,
        &mut |_, _| {},
    );
    let Ok(rows) = load_rows(bytes, format, "text", label) else {
        return;
    };
    let n = rows.texts.len().min(200);
    let texts = &rows.texts[..n];
    let labels = rows.labels.as_ref().map(|l| &l[..n]);
    let split: Vec<usize> = (0..n).collect();
    let (train, eval) = split.split_at(n / 2);
    let count = |t: &str| (t.len() / 3, t.len() % 2);
    let _ = hearth_data::quality::inspect(
        texts,
        labels,
        &rows.report,
        Some((train, eval)),
        &InspectOptions::default(),
        Some(&count),
    );
    let options = CleanOptions {
        repair_mojibake: true,
        nfkc: true,
        whitespace: true,
        redact_pii: true,
        drop_empty: true,
        conflicts: if selector & 1 == 0 {
            ConflictPolicy::Drop
        } else {
            ConflictPolicy::Majority
        },
        dedupe: if selector & 2 == 0 {
            Dedupe::Near
        } else {
            Dedupe::Folded
        },
    };
    let _ = hearth_data::clean::clean(
        texts.to_vec(),
        labels.map(<[String]>::to_vec),
        &options,
        &Default::default(),
    );
});
